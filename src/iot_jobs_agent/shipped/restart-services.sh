#!/bin/sh
# AWS-Restart-Application: restart-services.sh USER "SERVICE [SERVICE...]".
. "$IOT_JOBS_HANDLER_DIR/common.sh"
shift
[ $# -gt 0 ] || { echo "usage: restart-services.sh USER SERVICES" >&2; exit 2; }
for service in $@; do
    if have systemctl; then
        run systemctl restart "$service"
    elif have service; then
        run service "$service" restart
    else
        echo "neither systemctl nor service is installed" >&2; exit 1
    fi
done
