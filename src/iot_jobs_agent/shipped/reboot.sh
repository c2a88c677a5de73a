#!/bin/sh
# iot-jobs-agent: safe-to-repeat
# AWS-Reboot: reboot.sh USER, in two phases as the Device Client's. Run 1 writes a lock holding the
# time, reboots and waits for the reboot to stop it: the job stays IN_PROGRESS. After the boot the
# agent finds the job IN_PROGRESS and, because of the line above, runs this again (the restart
# policy in docs/agent.md): run 2 finds the lock and succeeds if the device booted after it was written.
# Dry run (IOT_JOBS_DRY_RUN=1): run 1 writes the lock and waits without rebooting; restarting the
# agent stands for the reboot, and run 2 succeeds without looking at the boot time.
. "$IOT_JOBS_HANDLER_DIR/common.sh"
lock="/var/tmp/iot-jobs-reboot-$IOT_JOBS_THING_NAME-$IOT_JOBS_JOB_ID"
if [ -e "$lock" ]; then
    written=$(cat "$lock")
    rm -f "$lock"
    if [ "${IOT_JOBS_DRY_RUN:-}" = 1 ]; then
        echo "dry run: the agent restarted after the simulated reboot: reboot was successful"
        exit 0
    fi
    booted=$(( $(date +%s) - $(cut -d. -f1 /proc/uptime) ))
    if [ "$written" -lt "$booted" ]; then echo "reboot was successful"; exit 0; fi
    echo "the device did not reboot (the agent restarted, the system did not)" >&2
    exit 1
fi
date +%s > "$lock"
if ! run reboot; then
    rm -f "$lock"
    echo "reboot failed" >&2
    exit 1
fi
echo "rebooting: the job is reported after the boot"
# Wait until the shutdown ends this process (without a reboot, the step timeout fails the job).
# The shutdown signals every process of the agent's service at once: were this handler to die of
# that SIGTERM before the agent had it, the agent would report the job FAILED before it stopped.
# Ignoring it, the handler outlives the agent's shutdown (the agent ends it with SIGKILL after
# --grace and reports nothing), and the job stays IN_PROGRESS for run 2.
trap '' TERM INT HUP
exec sleep 86400
