"""SQLite persistence: the schema and one transaction per operation. No rules live here.

WAL with ``synchronous=NORMAL``: a committed transaction survives the death of this process
(``kill -9``) because it is in the WAL file before ``commit()`` returns; only an OS crash or power
loss can drop the last transactions.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .jobs.model import Execution, ExecutionStatus, Job, JobStatus, TargetSelection, Thing

_SCHEMA = """
CREATE TABLE IF NOT EXISTS things (
    thing_name TEXT PRIMARY KEY,
    thing_id TEXT NOT NULL,
    thing_arn TEXT NOT NULL,
    attributes TEXT NOT NULL,
    version INTEGER NOT NULL,
    thing_type_name TEXT
);
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY,
    job_arn TEXT NOT NULL,
    document TEXT NOT NULL,
    targets TEXT NOT NULL,
    target_selection TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at REAL NOT NULL,
    last_updated_at REAL NOT NULL,
    description TEXT,
    completed_at REAL,
    force_canceled INTEGER NOT NULL,
    reason_code TEXT,
    comment TEXT,
    config TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS executions (
    job_id TEXT NOT NULL,
    thing_name TEXT NOT NULL,
    execution_number INTEGER NOT NULL,
    status TEXT NOT NULL,
    queued_at REAL NOT NULL,
    last_updated_at REAL NOT NULL,
    version_number INTEGER NOT NULL,
    started_at REAL,
    status_details TEXT NOT NULL,
    seq INTEGER NOT NULL,
    step_timeout_minutes INTEGER,
    force_canceled INTEGER NOT NULL,
    PRIMARY KEY (job_id, thing_name, execution_number)
);
CREATE INDEX IF NOT EXISTS executions_by_thing ON executions (thing_name, status);
"""

_EXECUTION_COLUMNS = (
    "job_id, thing_name, execution_number, status, queued_at, last_updated_at, version_number, "
    "started_at, status_details, seq, step_timeout_minutes, force_canceled"
)
_PENDING = ("QUEUED", "IN_PROGRESS")


def _execution(row: sqlite3.Row) -> Execution:
    return Execution(
        job_id=row[0],
        thing_name=row[1],
        execution_number=row[2],
        status=ExecutionStatus(row[3]),
        queued_at=row[4],
        last_updated_at=row[5],
        version_number=row[6],
        started_at=row[7],
        status_details=json.loads(row[8]),
        seq=row[9],
        step_timeout_minutes=row[10],
        force_canceled=bool(row[11]),
    )


def _job(row: sqlite3.Row) -> Job:
    return Job(
        job_id=row[0],
        job_arn=row[1],
        document=row[2],
        targets=tuple(json.loads(row[3])),
        target_selection=TargetSelection(row[4]),
        status=JobStatus(row[5]),
        created_at=row[6],
        last_updated_at=row[7],
        description=row[8],
        completed_at=row[9],
        force_canceled=bool(row[10]),
        reason_code=row[11],
        comment=row[12],
        config=json.loads(row[13]),
    )


class Store:
    """One SQLite database. Not thread-safe: the service uses it from its event loop only."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(_SCHEMA)
        row = self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM executions").fetchone()
        self._seq = int(row[0])

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Everything inside commits together, or not at all."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def next_seq(self) -> int:
        self._seq += 1
        return self._seq

    # things -----------------------------------------------------------------------------------
    def get_thing(self, name: str) -> Thing | None:
        row = self._db.execute(
            "SELECT thing_name, thing_id, thing_arn, attributes, version, thing_type_name "
            "FROM things WHERE thing_name = ?",
            (name,),
        ).fetchone()
        if row is None:
            return None
        return Thing(row[0], row[1], row[2], json.loads(row[3]), row[4], row[5])

    def put_thing(self, thing: Thing) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO things VALUES (?, ?, ?, ?, ?, ?)",
            (
                thing.thing_name,
                thing.thing_id,
                thing.thing_arn,
                json.dumps(thing.attributes),
                thing.version,
                thing.thing_type_name,
            ),
        )

    # jobs -------------------------------------------------------------------------------------
    def get_job(self, job_id: str) -> Job | None:
        row = self._db.execute("SELECT * FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
        return None if row is None else _job(row)

    def put_job(self, job: Job) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO jobs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                job.job_id,
                job.job_arn,
                job.document,
                json.dumps(list(job.targets)),
                job.target_selection.value,
                job.status.value,
                job.created_at,
                job.last_updated_at,
                job.description,
                job.completed_at,
                int(job.force_canceled),
                job.reason_code,
                job.comment,
                json.dumps(job.config),
            ),
        )

    def delete_job(self, job_id: str) -> None:
        self._db.execute("DELETE FROM executions WHERE job_id = ?", (job_id,))
        self._db.execute("DELETE FROM jobs WHERE job_id = ?", (job_id,))

    def job_documents(self, job_ids: set[str]) -> dict[str, str]:
        if not job_ids:
            return {}
        marks = ",".join("?" * len(job_ids))
        rows = self._db.execute(f"SELECT job_id, document FROM jobs WHERE job_id IN ({marks})", tuple(job_ids))
        return {row[0]: row[1] for row in rows}

    # executions -------------------------------------------------------------------------------
    def put_execution(self, execution: Execution) -> None:
        self._db.execute(
            f"INSERT OR REPLACE INTO executions ({_EXECUTION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                execution.job_id,
                execution.thing_name,
                execution.execution_number,
                execution.status.value,
                execution.queued_at,
                execution.last_updated_at,
                execution.version_number,
                execution.started_at,
                json.dumps(execution.status_details),
                execution.seq,
                execution.step_timeout_minutes,
                int(execution.force_canceled),
            ),
        )

    def pending_for_thing(self, thing_name: str) -> list[Execution]:
        rows = self._db.execute(
            f"SELECT {_EXECUTION_COLUMNS} FROM executions WHERE thing_name = ? AND status IN (?, ?)",
            (thing_name, *_PENDING),
        )
        return [_execution(row) for row in rows]

    def executions_for_job(self, job_id: str) -> list[Execution]:
        rows = self._db.execute(f"SELECT {_EXECUTION_COLUMNS} FROM executions WHERE job_id = ? ORDER BY seq", (job_id,))
        return [_execution(row) for row in rows]

    def execution(self, job_id: str, thing_name: str, execution_number: int | None = None) -> Execution | None:
        """The given execution, or the latest one of the job on the thing."""
        query = f"SELECT {_EXECUTION_COLUMNS} FROM executions WHERE job_id = ? AND thing_name = ?"
        params: tuple[Any, ...] = (job_id, thing_name)
        if execution_number is not None:
            query += " AND execution_number = ?"
            params += (execution_number,)
        row = self._db.execute(query + " ORDER BY execution_number DESC LIMIT 1", params).fetchone()
        return None if row is None else _execution(row)
