"""A database written by the first version of the service (schema 1, no ``user_version``) opens,
is upgraded to the current schema in place, and keeps everything in it.

The DDL below is version 1's, exactly as it shipped (src/iot_jobs_local/store.py at 9551335).
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from iot_jobs_local.clock import Clock
from iot_jobs_local.engine import Engine, Identity
from iot_jobs_local.jobs.model import ExecutionStatus
from iot_jobs_local.jobs.requests import parse_update
from iot_jobs_local.store import Store
from iot_jobs_local.store.schema import VERSION

SCHEMA_1 = """
CREATE TABLE things (
    thing_name TEXT PRIMARY KEY, thing_id TEXT NOT NULL, thing_arn TEXT NOT NULL,
    attributes TEXT NOT NULL, version INTEGER NOT NULL, thing_type_name TEXT
);
CREATE TABLE jobs (
    job_id TEXT PRIMARY KEY, job_arn TEXT NOT NULL, document TEXT NOT NULL, targets TEXT NOT NULL,
    target_selection TEXT NOT NULL, status TEXT NOT NULL, created_at REAL NOT NULL,
    last_updated_at REAL NOT NULL, description TEXT, completed_at REAL, force_canceled INTEGER NOT NULL,
    reason_code TEXT, comment TEXT, config TEXT NOT NULL
);
CREATE TABLE executions (
    job_id TEXT NOT NULL, thing_name TEXT NOT NULL, execution_number INTEGER NOT NULL, status TEXT NOT NULL,
    queued_at REAL NOT NULL, last_updated_at REAL NOT NULL, version_number INTEGER NOT NULL, started_at REAL,
    status_details TEXT NOT NULL, seq INTEGER NOT NULL, step_timeout_minutes INTEGER,
    force_canceled INTEGER NOT NULL,
    PRIMARY KEY (job_id, thing_name, execution_number)
);
CREATE INDEX executions_by_thing ON executions (thing_name, status);
"""

ARN = "arn:aws:iot:us-east-1:123456789012"
T0 = 1_764_300_000.0


def _version_1_database(path: Path) -> None:
    db = sqlite3.connect(path)
    db.executescript(SCHEMA_1)
    db.execute("INSERT INTO things VALUES (?, ?, ?, ?, ?, ?)", ("T", "id-t", f"{ARN}:thing/T", '{"room":"1"}', 1, None))
    for job_id in ("J1", "J2"):
        db.execute(
            "INSERT INTO jobs VALUES (?, ?, ?, ?, 'SNAPSHOT', 'IN_PROGRESS', ?, ?, NULL, NULL, 0, NULL, NULL, '{}')",
            (job_id, f"{ARN}:job/{job_id}", json.dumps({"job": job_id}), json.dumps([f"{ARN}:thing/T"]), T0, T0),
        )
    db.execute(
        "INSERT INTO executions VALUES ('J1', 'T', 1, 'IN_PROGRESS', ?, ?, 2, ?, '{\"step\":\"1\"}', 1, NULL, 0)",
        (T0, T0 + 5, T0 + 5),
    )
    db.execute(
        "INSERT INTO executions VALUES ('J2', 'T', 1, 'QUEUED', ?, ?, 1, NULL, '{}', 2, NULL, 0)", (T0 + 1, T0 + 1)
    )
    db.commit()
    db.close()


def test_a_version_1_database_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite"
    _version_1_database(path)

    store = Store(path)
    try:
        engine = Engine(store, Identity("us-east-1", "123456789012"), Clock(1, not_before=store.latest_timestamp()))
        in_progress, queued = engine.get_pending("T")
        assert [(e.job_id, e.status, e.version_number, dict(e.status_details)) for e in in_progress] == [
            ("J1", ExecutionStatus.IN_PROGRESS, 2, {"step": "1"})
        ]
        assert [(e.job_id, e.queued_at) for e in queued] == [("J2", T0 + 1)]
        job, counts = engine.describe_job("J1")
        assert json.loads(job.document) == {"job": "J1"} and counts == {ExecutionStatus.IN_PROGRESS: 1}
        assert engine.describe_thing("T").attributes == {"room": "1"}

        # The columns version 3 added work on the old rows: the update stores a step timer.
        located = engine.update("T", "J1", parse_update({"status": "IN_PROGRESS", "stepTimeoutInMinutes": 5}))
        assert located.execution.version_number == 3 and located.execution.step_timeout_minutes == 5

        db = sqlite3.connect(path)
        assert db.execute("PRAGMA user_version").fetchone()[0] == VERSION
        # Version 1 jobs targeted things only: the upgrade recorded those targets.
        assert sorted(db.execute("SELECT job_id, kind, name FROM job_targets")) == [
            ("J1", "thing", "T"),
            ("J2", "thing", "T"),
        ]
        db.close()
    finally:
        store.close()

    # Opening the upgraded database again changes nothing.
    again = Store(path)
    try:
        assert Engine(again, Identity("us-east-1", "123456789012"), Clock(1)).get_pending("T")[1][0].job_id == "J2"
    finally:
        again.close()
