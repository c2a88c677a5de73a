#!/bin/sh
# AWS-Reboot: reboot.sh USER. The job is reported when the agent starts again after the boot: see
# docs/agent.md (restart policy) for why such a document should carry "safeToRepeat".
. "$IOT_JOBS_HANDLER_DIR/common.sh"
lock="${IOT_JOBS_STATE_DIR:-/var/tmp}/iot-jobs-reboot-$IOT_JOBS_JOB_ID"
if [ -e "$lock" ]; then
    booted=$(( $(date +%s) - $(cut -d. -f1 /proc/uptime) ))
    if [ "$(cat "$lock")" -lt "$booted" ]; then rm -f "$lock"; echo "reboot was successful"; exit 0; fi
    rm -f "$lock"; echo "the device did not reboot" >&2; exit 1
fi
[ "${IOT_JOBS_DRY_RUN:-}" = 1 ] || date +%s > "$lock"
run reboot
