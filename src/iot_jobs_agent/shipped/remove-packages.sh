#!/bin/sh
# AWS-Remove-Application: remove-packages.sh USER "PKG [PKG...]" (a space-separated list).
. "$IOT_JOBS_HANDLER_DIR/common.sh"
shift
[ $# -gt 0 ] || { echo "usage: remove-packages.sh USER PACKAGES" >&2; exit 2; }
# shellcheck disable=SC2068 # the list is split into words on purpose
if have apt-get; then
    DEBIAN_FRONTEND=noninteractive; export DEBIAN_FRONTEND
    run apt-get remove -y --purge $@
elif have yum; then
    run yum remove -y $@
else
    echo "neither apt-get nor yum is installed" >&2; exit 1
fi
