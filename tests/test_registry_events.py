"""Registry events for jobs (``$aws/events/job/...``, ``$aws/events/jobExecution/...``): off until
UpdateEventConfigurations enables them, then published as AWS documents them, to a device whose
policy lets it receive them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from support.api import check_error, error_of, thing_with_policy
from support.common import unique
from support.raw_device import RawDevice
from support.service import ServiceProcess

EVENTS = "$aws/events/"


def _watcher(svc: ServiceProcess, raw_device: Callable[..., RawDevice], tmp_path: Path) -> RawDevice:
    """A device whose policy allows its own jobs topics and receiving every registry event."""
    thing = unique("watcher")
    arn = f"arn:aws:iot:{svc.region}:{svc.account}"
    cert, key = thing_with_policy(
        svc,
        thing,
        [
            {"Effect": "Allow", "Action": "iot:Connect", "Resource": f"{arn}:client/*"},
            {
                "Effect": "Allow",
                "Action": ["iot:Publish", "iot:Receive"],
                "Resource": [f"{arn}:topic/$aws/things/{thing}/jobs/*", f"{arn}:topic/$aws/events/*"],
            },
            {
                "Effect": "Allow",
                "Action": "iot:Subscribe",
                "Resource": [f"{arn}:topicfilter/$aws/things/{thing}/jobs/*", f"{arn}:topicfilter/$aws/events/*"],
            },
        ],
        tmp_path,
    )
    return raw_device(thing, service=svc, cert=cert, key=key, subscribe=(f"{EVENTS}#", f"$aws/things/{thing}/jobs/#"))


def _finish(watcher: RawDevice, job: str, status: str, details: dict[str, str] | None = None) -> None:
    body: dict[str, Any] = {"clientToken": unique("c"), "status": status}
    if details:
        body["statusDetails"] = details
    reply = watcher.request(f"$aws/things/{watcher.thing}/jobs/{job}/update", body)
    assert reply.topic.endswith("/accepted"), reply.json()


def test_job_and_execution_events(
    service_factory: Callable[..., ServiceProcess], raw_device: Callable[..., RawDevice], tmp_path: Path
) -> None:
    svc = service_factory()
    iot = svc.iot()
    described = iot.describe_event_configurations()
    assert set(described["eventConfigurations"]) == {
        "THING",
        "THING_GROUP",
        "THING_TYPE",
        "THING_GROUP_MEMBERSHIP",
        "THING_GROUP_HIERARCHY",
        "THING_TYPE_ASSOCIATION",
        "JOB",
        "JOB_EXECUTION",
        "POLICY",
        "CERTIFICATE",
        "CA_CERTIFICATE",
    }
    assert all(c == {"Enabled": False} for c in described["eventConfigurations"].values())
    assert "creationDate" not in described
    watcher = _watcher(svc, raw_device, tmp_path)
    thing_arn = svc.thing_arn(watcher.thing)

    # Off by default: a job that runs to its end publishes nothing under $aws/events.
    quiet = svc.create_job(watcher.thing, {"n": 0})
    _finish(watcher, quiet, "SUCCEEDED")
    watcher.assert_no_message(lambda m: m.topic.startswith(EVENTS), within=0.5)

    iot.update_event_configurations(eventConfigurations={"JOB": {"Enabled": True}, "JOB_EXECUTION": {"Enabled": True}})
    described = iot.describe_event_configurations()
    enabled = {t for t, c in described["eventConfigurations"].items() if c["Enabled"]}
    assert enabled == {"JOB", "JOB_EXECUTION"}
    assert described["creationDate"] <= described["lastModifiedDate"]

    # An execution succeeds, so the SNAPSHOT job completes.
    job = svc.create_job(watcher.thing, {"n": 1}, description="events")
    _finish(watcher, job, "SUCCEEDED", {"step": "done"})
    execution = watcher.expect(f"{EVENTS}jobExecution/{job}/succeeded").json()
    assert {k: v for k, v in execution.items() if k not in ("eventId", "timestamp")} == {
        "eventType": "JOB_EXECUTION",
        "operation": "succeeded",
        "jobId": job,
        "thingArn": thing_arn,
        "status": "SUCCEEDED",
        "statusDetails": {"step": "done"},
    }
    assert isinstance(execution["eventId"], str) and len(str(execution["timestamp"])) == 10
    completed = watcher.expect(f"{EVENTS}job/{job}/completed").json()
    assert completed["eventType"] == "JOB" and completed["operation"] == "completed"
    assert (completed["jobId"], completed["status"], completed["targetSelection"]) == (job, "COMPLETED", "SNAPSHOT")
    assert completed["targets"] == [thing_arn] and completed["description"] == "events"
    assert completed["jobProcessDetails"]["numberOfSucceededThings"] == 1
    assert len(str(completed["createdAt"])) == 13 and completed["completedAt"] >= completed["createdAt"]

    # CancelJob: the job's event, and one for its QUEUED execution; then DeleteJob's two.
    doomed = svc.create_job(watcher.thing, {"n": 2})
    iot.cancel_job(jobId=doomed, comment="no longer needed")
    assert watcher.expect(f"{EVENTS}jobExecution/{doomed}/canceled").json()["status"] == "CANCELED"
    canceled = watcher.expect(f"{EVENTS}job/{doomed}/canceled").json()
    assert canceled["status"] == "CANCELED" and canceled["comment"] == "no longer needed"
    assert canceled["jobProcessDetails"]["numberOfCanceledThings"] == 1
    iot.delete_job(jobId=doomed)
    assert watcher.expect(f"{EVENTS}job/{doomed}/deletion_in_progress").json()["status"] == "DELETION_IN_PROGRESS"
    assert watcher.expect(f"{EVENTS}job/{doomed}/deleted").json()["jobId"] == doomed

    # Turning JOB_EXECUTION off leaves the JOB events on.
    iot.update_event_configurations(eventConfigurations={"JOB_EXECUTION": {"Enabled": False}})
    failed = svc.create_job(watcher.thing, {"n": 3})
    _finish(watcher, failed, "FAILED")
    assert watcher.expect(f"{EVENTS}job/{failed}/completed").json()["jobProcessDetails"]["numberOfFailedThings"] == 1
    watcher.assert_no_message(lambda m: m.topic.startswith(f"{EVENTS}jobExecution/"), within=0.5)

    # The settings are kept across a restart.
    assert svc.stop() == 0
    svc.start()
    after = svc.iot().describe_event_configurations()["eventConfigurations"]
    assert after["JOB"] == {"Enabled": True} and after["JOB_EXECUTION"] == {"Enabled": False}


def test_event_configuration_validation(service: ServiceProcess, iot: Any) -> None:
    check_error(
        error_of(iot.update_event_configurations, eventConfigurations={"JOBS": {"Enabled": True}}),
        "InvalidRequestException",
        400,
    )
    assert iot.describe_event_configurations()["eventConfigurations"]["JOB"] == {"Enabled": False}
