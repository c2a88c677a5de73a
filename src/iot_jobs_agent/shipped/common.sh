# Sourced by the shipped handlers. $1 is runAsUser (the agent already switched user with sudo);
# IOT_JOBS_DRY_RUN=1 (iot-jobs-agent --dry-run) prints each command instead of running it.
set -eu
run() {
    if [ "${IOT_JOBS_DRY_RUN:-}" = 1 ]; then
        echo "dry run: $*"
    else
        "$@"
    fi
}
have() { command -v "$1" >/dev/null 2>&1; }
