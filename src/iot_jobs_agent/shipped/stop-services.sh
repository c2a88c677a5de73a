#!/bin/sh
# AWS-Stop-Application: stop-services.sh USER "SERVICE [SERVICE...]".
. "$IOT_JOBS_HANDLER_DIR/common.sh"
shift
[ $# -gt 0 ] || { echo "usage: stop-services.sh USER SERVICES" >&2; exit 2; }
for service in $@; do
    if have systemctl; then
        run systemctl stop "$service"
    elif have service; then
        run service "$service" stop
    else
        echo "neither systemctl nor service is installed" >&2; exit 1
    fi
done
