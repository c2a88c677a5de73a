#!/bin/sh
# AWS-Download-File: download-file.sh USER URL PATH. PATH must lie inside IOT_JOBS_DOWNLOAD_DIR
# (iot-jobs-agent --download-dir); a directory PATH keeps the URL's file name.
. "$IOT_JOBS_HANDLER_DIR/common.sh"
url=${2:?usage: download-file.sh USER URL PATH}
out=${3:?usage: download-file.sh USER URL PATH}
allowed=${IOT_JOBS_DOWNLOAD_DIR:?downloads are off: start the agent with --download-dir DIR}
allowed=$(realpath -m -- "$allowed")
if [ -d "$out" ]; then out="$out/$(basename -- "${url%%\?*}")"; fi
target=$(realpath -m -- "$out")
case "$target" in
    "$allowed"/*) ;;
    *) echo "refused: $out is not inside $allowed" >&2; exit 2 ;;
esac
if have curl; then
    run curl --fail --silent --show-error --location --output "$target" -- "$url"
elif have wget; then
    run wget --quiet -O "$target" -- "$url"
else
    echo "neither curl nor wget is installed" >&2; exit 1
fi
echo "downloaded $url to $target"
