"""``iot-jobs-fleet`` end to end: a 200-device fleet (one real mutual-TLS MQTT connection per device,
the broker's ACLs and CONNECT gate) against a real service running its clock 120 times faster, so a
virtual minute lasts half a second. One service and one provisioned group serve the module: the
first test pays for provisioning (things, certificates from CSRs, the group's policy); every fleet
after it reuses the identities in the fleet directory.
"""

from __future__ import annotations

import itertools
import json
import re
import stat
import subprocess
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from support.api import group_arn
from support.common import unique
from support.fleet import FleetProcess, assignment, executions, fleet_command, run_fleet, wait_job
from support.service import ServiceProcess, new_service

SCALE = 120  # a virtual minute is 0.5 s
COUNT = 200
GROUP = "fleet-200"
DOC = json.dumps({"operation": "simulated"})


@pytest.fixture(scope="module")
def fast(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    svc = new_service(tmp_path_factory.mktemp("fleet-service"), ("--time-scale", str(SCALE)))
    try:
        yield svc
    finally:
        svc.stop()


@pytest.fixture(scope="module")
def fleet_dir(fast: ServiceProcess, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The module's 200 identities, provisioned once (``--provision-only``) into the group."""
    directory = tmp_path_factory.mktemp("fleet-identities") / "fleet"
    made = subprocess.run(
        fleet_command(fast, directory, "--count", str(COUNT), "--group", GROUP, "--provision-only"),
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    assert f"{COUNT} things in group {GROUP} ready" in made.stderr
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    keys = list(directory.glob("*.key"))
    assert len(keys) == COUNT and all(stat.S_IMODE(k.stat().st_mode) == 0o600 for k in keys)
    return directory


@pytest.fixture
def fleet(fast: ServiceProcess, fleet_dir: Path, tmp_path: Path) -> Iterator[list[FleetProcess]]:
    """Start fleets with ``fleet.append(FleetProcess(...).start())``; all are stopped at the end."""
    started: list[FleetProcess] = []
    yield started
    for process in started:
        process.stop()


def _start(fast: ServiceProcess, fleet_dir: Path, tmp_path: Path, profile: str, *args: str) -> FleetProcess:
    path = tmp_path / "profile.toml"
    path.write_text(profile)
    flags = ("--count", str(COUNT), "--group", GROUP, "--profile-file", str(path), "--seed", "7", *args)
    return FleetProcess(fast, fleet_dir, tmp_path / "fleet.log", *flags).start()


def _shares(profile_path: Path) -> dict[str, str]:
    return assignment("--count", str(COUNT), "--group", GROUP, "--profile-file", str(profile_path), "--seed", "7")


ROLLOUT_PROFILE = """
[[share]]
name = "ok"
fraction = 0.5
duration = "between 20 40"

[[share]]
name = "broken"
fraction = 0.3
duration = "between 20 40"
outcome = "fail"

[[share]]
name = "away"          # offline for the whole test: their executions stay QUEUED until the abort
fraction = 0.2
offline = 100000
"""


def test_a_rollout_paces_executions_and_the_abort_fires_at_its_threshold(
    fast: ServiceProcess, fleet_dir: Path, tmp_path: Path, fleet: list[FleetProcess]
) -> None:
    iot = fast.iot()
    devices = _start(fast, fleet_dir, tmp_path, ROLLOUT_PROFILE)
    fleet.append(devices)
    devices.wait_line(r"200 things in group fleet-200 ready")  # reused: nothing new to make
    devices.wait_line(r"connected 160/200")  # everyone but the away share
    per_minute, threshold, minimum = 40, 20.0, 60
    job = unique("rollout")
    iot.create_job(
        jobId=job,
        targets=[group_arn(fast, GROUP)],
        document=DOC,
        jobExecutionsRolloutConfig={"maximumPerMinute": per_minute},
        abortConfig={
            "criteriaList": [
                {
                    "failureType": "FAILED",
                    "action": "CANCEL",
                    "thresholdPercentage": threshold,
                    "minNumberOfExecutedThings": minimum,
                }
            ]
        },
    )
    aborted = wait_job(iot, job, {"CANCELED", "COMPLETED"})
    assert (aborted["status"], aborted["comment"]) == ("CANCELED", "Job canceled by abort config")

    def settled() -> list[dict[str, object]]:
        rows = executions(fast, job)
        return rows if not any(r["status"] == "IN_PROGRESS" for r in rows) else []

    rows = _until(settled)
    by_status = Counter(str(r["status"]) for r in rows)

    # Executions were created at the pace: batches of at most 40, a virtual minute apart; the
    # abort stopped the rollout before every thing got one.
    batches = sorted(Counter(float(r["queued_at"]) for r in rows).items())
    assert len(batches) >= 2, batches
    assert all(n <= per_minute for _, n in batches), batches
    for (earlier, _), (later, _) in itertools.pairwise(batches):
        assert 59 <= later - earlier <= 120, batches  # never sooner than a minute; late only if the machine is
    assert len(rows) < COUNT, by_status

    # The abort fired at its threshold: met at the cancellation, and not at any failure before
    # (the service checks the criteria when an execution fails).
    cancel_at = min(float(r["last_updated_at"]) for r in rows if r["status"] == "CANCELED")
    ended = sorted((float(r["last_updated_at"]), r["status"]) for r in rows if r["status"] in ("SUCCEEDED", "FAILED"))
    before = [status for at, status in ended if at <= cancel_at]

    def met(statuses: list[object]) -> bool:
        return len(statuses) >= minimum and 100 * statuses.count("FAILED") / len(statuses) >= threshold

    assert met(before), (len(before), Counter(before))
    failures = [i for i, s in enumerate(before) if s == "FAILED"]
    early = [i for i in failures[:-1] if met(before[: i + 1])]
    assert not early, (early, len(before))

    # The IN_PROGRESS devices finished; the rest (never started) are CANCELED, and nothing is left QUEUED.
    started_before = [r for r in rows if r["started_at"] is not None and float(r["started_at"]) <= cancel_at]
    assert all(r["status"] in ("SUCCEEDED", "FAILED") for r in started_before)
    assert any(float(r["last_updated_at"]) > cancel_at for r in started_before), "none was running at the abort"
    assert by_status["CANCELED"] > 0 and all(r["started_at"] is None for r in rows if r["status"] == "CANCELED")
    assert by_status["QUEUED"] == 0 and by_status["IN_PROGRESS"] == 0, by_status
    details = iot.describe_job(jobId=job)["job"]["jobProcessDetails"]
    assert details["numberOfCanceledThings"] == by_status["CANCELED"]


RETRY_PROFILE = """
[[share]]
name = "ok"
fraction = 0.8
duration = "between 5 15"
progress = 1
drop = 0.1
reconnect_after = 5

[[share]]
name = "fails"
fraction = 0.1
duration = 5
outcome = "fail"

[[share]]
name = "hangs"
fraction = 0.1
outcome = "hang"
step_timeout = 1
"""


def test_failures_retry_within_their_budget_and_hanging_devices_time_out(
    fast: ServiceProcess, fleet_dir: Path, tmp_path: Path, fleet: list[FleetProcess]
) -> None:
    iot = fast.iot()
    devices = _start(fast, fleet_dir, tmp_path, RETRY_PROFILE)
    fleet.append(devices)
    devices.connected()
    shares = _shares(tmp_path / "profile.toml")
    assert Counter(shares.values()) == {"ok": 160, "fails": 20, "hangs": 20}
    job = unique("retry")
    iot.create_job(
        jobId=job,
        targets=[group_arn(fast, GROUP)],
        document=DOC,
        jobExecutionsRetryConfig={
            "criteriaList": [
                {"failureType": "FAILED", "numberOfRetries": 2},
                {"failureType": "TIMED_OUT", "numberOfRetries": 1},
            ]
        },
    )
    done = wait_job(iot, job, {"COMPLETED", "CANCELED"}, timeout=20)
    assert done["status"] == "COMPLETED"
    per_thing: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for row in executions(fast, job):
        per_thing[str(row["thing_name"])].append((int(row["retry_attempt"]), str(row["status"])))
    expected = {
        "ok": [(0, "SUCCEEDED")],
        "fails": [(0, "FAILED"), (1, "FAILED"), (2, "FAILED")],  # the first run and its 2 retries
        "hangs": [(0, "TIMED_OUT"), (1, "TIMED_OUT")],  # timed out by the service, retried once
    }
    wrong = {thing: runs for thing, runs in per_thing.items() if runs != expected[shares[thing]]}
    assert not wrong, wrong
    assert set(per_thing) == set(shares)
    log = devices.stop()
    last = log.strip().splitlines()[-1]
    assert "dropped" in last and "reconnects" in last, last  # the ok share's drops came back and finished
    # Every device presented its own certificate: the CONNECT gate refused none (client id = thing).
    assert "refused" not in log and "connection errors" not in last, last


def test_a_continuous_job_reaches_a_device_that_joins_the_group_later(
    fast: ServiceProcess, tmp_path: Path, fleet: list[FleetProcess]
) -> None:
    iot = fast.iot()
    group, directory = unique("late"), tmp_path / "identities"
    flags = ("--group", group, "--job-duration", "5")
    first = FleetProcess(fast, directory, tmp_path / "first.log", "--count", "3", *flags).start()
    fleet.append(first)
    first.connected()
    job = unique("continuous")
    iot.create_job(jobId=job, targets=[group_arn(fast, group)], document=DOC, targetSelection="CONTINUOUS")
    first.wait_line(r"done 3 \(SUCCEEDED 3\)")
    first.stop()

    # A fourth thing joins the group (the fleet reuses the first three identities and makes one).
    second = FleetProcess(fast, directory, tmp_path / "second.log", "--count", "4", *flags).start()
    fleet.append(second)
    second.wait_line(r"4 things in group .* ready")
    second.wait_line(r"done 1 \(SUCCEEDED 1\)")
    statuses = {str(r["thing_name"]): r["status"] for r in executions(fast, job)}
    assert statuses == {f"{group}-{i:04d}": "SUCCEEDED" for i in range(4)}
    assert iot.describe_job(jobId=job)["job"]["status"] == "IN_PROGRESS"  # a CONTINUOUS job stays open


def test_watch_shows_the_rollout_the_fleet_runs_and_writes_its_report(
    fast: ServiceProcess, tmp_path: Path, fleet: list[FleetProcess]
) -> None:
    """``--watch JOB --report FILE --until-done``: the fleet waits for the job, the view prints a line per
    change (stdout is not a terminal), its last counts are DescribeJob's, the report holds the chart's data,
    and the fleet ends by itself once the job is terminal."""
    iot = fast.iot()
    group, job = unique("watched"), unique("watched-job")
    report, out = tmp_path / "rollout.html", tmp_path / "view.txt"
    flags = ("--count", "8", "--group", group, "--job-duration", "20", "--fail", "0.25", "--seed", "3")
    watched = ("--watch", job, "--report", str(report), "--until-done")
    devices = FleetProcess(fast, tmp_path / "ids", tmp_path / "fleet.log", *flags, *watched, stdout=out).start()
    fleet.append(devices)
    devices.connected()
    iot.create_job(jobId=job, targets=[group_arn(fast, group)], document=DOC)
    assert devices.process is not None and devices.process.wait(timeout=60) == 0, devices.log()
    details = iot.describe_job(jobId=job)["job"]
    assert details["status"] == "COMPLETED"
    counts = details["jobProcessDetails"]
    assert (counts["numberOfSucceededThings"], counts["numberOfFailedThings"]) == (6, 2)
    changes = [line for line in out.read_text().splitlines() if line.startswith("[")]
    assert len(changes) >= 2 and "COMPLETED" in changes[-1], out.read_text()
    last = {name: int(n) for name, n in re.findall(r"\b([a-z_]+)=(\d+)", changes[-1])}
    assert (last["succeeded"], last["failed"], last["queued"], last["in_progress"]) == (6, 2, 0, 0)
    found = re.search(r'<script type="application/json" id="rollout-data">(.*?)</script>', report.read_text(), re.S)
    assert found is not None
    data = json.loads(found.group(1))
    assert data["summary"]["counts"]["SUCCEEDED"] == 6 and data["summary"]["counts"]["FAILED"] == 2


def test_devices_offline_at_the_start_get_their_executions_when_they_come(
    fast: ServiceProcess, tmp_path: Path, fleet: list[FleetProcess]
) -> None:
    iot = fast.iot()
    group, directory = unique("offline"), tmp_path / "identities"
    flags = ("--count", "6", "--group", group, "--job-duration", "5", "--offline", "0.5", "--offline-for", "240")
    late = {t for t, share in assignment(*flags).items() if share.endswith("-late")}
    assert len(late) == 3
    devices = FleetProcess(fast, directory, tmp_path / "fleet.log", *flags, "--until-done").start()
    fleet.append(devices)
    devices.wait_line(r"connected 3/6, not yet 3")
    job = unique("snapshot")
    iot.create_job(jobId=job, targets=[group_arn(fast, group)], document=DOC)
    assert wait_job(iot, job, {"COMPLETED"})["jobProcessDetails"]["numberOfSucceededThings"] == 6
    for row in executions(fast, job):
        waited = float(row["started_at"]) - float(row["queued_at"])  # service-clock seconds
        assert (waited > 60) == (row["thing_name"] in late), (row["thing_name"], waited)
    assert devices.process is not None and devices.process.wait(timeout=15) == 0  # --until-done: it ends itself
    assert "done 6 (SUCCEEDED 6)" in devices.stop().strip().splitlines()[-1]


def test_devices_reconnect_after_the_broker_restarts_and_carry_on(
    service_factory: Callable[..., ServiceProcess], tmp_path: Path, fleet: list[FleetProcess]
) -> None:
    svc = service_factory("--time-scale", str(SCALE))
    flags = ("--count", "5", "--group", "restart", "--job-duration", "5")
    devices = FleetProcess(svc, tmp_path / "identities", tmp_path / "fleet.log", *flags).start()
    fleet.append(devices)
    devices.connected()
    svc.restart()  # the service and its Mosquitto go away and come back on the same ports
    devices.wait_line(r"connected 5/5, .*reconnects (?:[5-9]|\d\d)")  # each device at least once
    job = unique("after-restart")
    svc.iot().create_job(jobId=job, targets=[group_arn(svc, "restart")], document=DOC)
    assert wait_job(svc.iot(), job, {"COMPLETED"})["jobProcessDetails"]["numberOfSucceededThings"] == 5


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ('[[share]]\nname = "a"\nfraction = 2\n', 3, "fraction must be a number from 0 to 1, not 2"),
        ('[[share]]\nname = "a"\nfraction = 1\nduration = "soon"\n', 4, '"soon" is not'),
        ('[[share]]\nname = "a"\nfraction = 1\nspeed = 3\n', 4, "unknown key 'speed'"),
        ('[[share]]\nname = "a"\nfraction = = 1\n', 3, "Invalid value"),
        ('[[share]]\nname = "a"\nfraction = 0.5\n', 1, "fractions add up to 0.5, not 1"),
    ],
)
def test_a_profile_file_with_an_error_is_refused_with_its_line(
    tmp_path: Path, text: str, line: int, reason: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    result = run_fleet("--profile-file", str(path), "--print-assignment")
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"iot-jobs-fleet: {path}:{line}: "), lines[0]
    assert reason in lines[0]


def _until(probe: object, timeout: float = 15.0) -> list[dict[str, object]]:
    import time

    deadline = time.monotonic() + timeout
    while True:
        found = probe()  # type: ignore[operator]
        if found:
            return list(found)
        assert time.monotonic() < deadline, "the executions did not settle"
        time.sleep(0.1)  # polling the service's records


def test_behaviour_flags_and_a_profile_file_do_not_go_together(tmp_path: Path) -> None:
    path = tmp_path / "ok.toml"
    path.write_text('[[share]]\nname = "a"\nfraction = 1\n')
    result = run_fleet("--profile-file", str(path), "--hang", "0.1", "--print-assignment")
    assert (result.returncode, result.stdout) == (2, "")
    assert (
        result.stderr
        == "iot-jobs-fleet: --hang and --profile-file do not go together: put it in the profile's shares\n"
    )


@pytest.mark.parametrize("client", ["signed", "boto3"])
def test_a_thing_name_the_service_refuses_is_one_line_with_its_error_code(
    fast: ServiceProcess, fleet_dir: Path, tmp_path: Path, client: str
) -> None:
    """The service refuses a thing name with a space (AWS: ``[a-zA-Z0-9:_-]+``); both provisioning
    clients report it as AWS's code and message on one line, and no identity is written."""
    directory = tmp_path / "refused"
    made = subprocess.run(
        fleet_command(
            fast,
            directory,
            "--count",
            "3",
            "--group",
            "refused",
            "--prefix",
            "bad name ",
            "--provision-only",
            "--provision-client",
            client,
        ),
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert made.returncode != 0
    lines = made.stderr.strip().splitlines()
    assert len(lines) == 1, made.stderr
    assert re.fullmatch(r"iot-jobs-fleet: provisioning failed: InvalidRequestException: .+", lines[0]), lines[0]
    assert not list(directory.glob("*.crt"))
