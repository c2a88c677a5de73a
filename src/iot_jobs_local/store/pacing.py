"""Queries behind the lifecycle in time: due deadlines, job pacing and the rollout queue."""

from __future__ import annotations

from collections.abc import Iterable

from ..jobs.model import Execution
from ..jobs.rollout import Pacing
from .base import StoreBase, json_list
from .executions import _SELECT, _execution


class PacingQueries(StoreBase):
    # execution deadlines ----------------------------------------------------------------------
    def due_executions(self, now: float, limit: int) -> list[Execution]:
        """IN_PROGRESS executions whose deadline is at or before ``now``, earliest first."""
        rows = self._db.execute(
            f"{_SELECT} WHERE deadline IS NOT NULL AND deadline <= ? AND status = 'IN_PROGRESS' "
            "ORDER BY deadline LIMIT ?",
            (now, limit),
        )
        return [_execution(row) for row in rows]

    def next_deadline(self) -> float | None:
        row = self._db.execute(
            "SELECT MIN(deadline) FROM executions WHERE deadline IS NOT NULL AND status = 'IN_PROGRESS'"
        ).fetchone()
        return None if row[0] is None else float(row[0])

    def attempts(self, job_id: str, thing_name: str) -> list[Execution]:
        """Every execution of the job on the thing, by execution number."""
        rows = self._db.execute(
            f"{_SELECT} WHERE job_id = ? AND thing_name = ? ORDER BY execution_number", (job_id, thing_name)
        )
        return [_execution(row) for row in rows]

    # job pacing -------------------------------------------------------------------------------
    def get_pacing(self, job_id: str) -> Pacing | None:
        row = self._db.execute("SELECT next_batch_at, ended FROM job_pacing WHERE job_id = ?", (job_id,)).fetchone()
        return None if row is None else Pacing(job_id, row[0], bool(row[1]))

    def put_pacing(self, pacing: Pacing, wake_at: float | None) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO job_pacing (job_id, next_batch_at, ended, wake_at) VALUES (?, ?, ?, ?)",
            (pacing.job_id, pacing.next_batch_at, int(pacing.ended), wake_at),
        )

    def delete_pacing(self, job_id: str) -> None:
        self._db.execute("DELETE FROM job_pacing WHERE job_id = ?", (job_id,))
        self._db.execute("DELETE FROM rollout_queue WHERE job_id = ?", (job_id,))

    def due_jobs(self, now: float, limit: int) -> list[str]:
        rows = self._db.execute(
            "SELECT job_id FROM job_pacing WHERE wake_at IS NOT NULL AND wake_at <= ? ORDER BY wake_at LIMIT ?",
            (now, limit),
        )
        return [row[0] for row in rows]

    def next_wake(self) -> float | None:
        row = self._db.execute("SELECT MIN(wake_at) FROM job_pacing WHERE wake_at IS NOT NULL").fetchone()
        return None if row[0] is None else float(row[0])

    # the rollout queue ------------------------------------------------------------------------
    def enqueue_rollout(self, job_id: str, entries: Iterable[tuple[str, str]]) -> None:
        """Things (with the target that covers them) waiting for their execution, in this order."""
        row = self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM rollout_queue WHERE job_id = ?", (job_id,))
        start = int(row.fetchone()[0])
        self._db.executemany(
            "INSERT INTO rollout_queue (job_id, seq, thing_name, target) VALUES (?, ?, ?, ?)",
            ((job_id, start + i, thing, target) for i, (thing, target) in enumerate(entries, 1)),
        )

    def take_rollout(self, job_id: str, limit: int | None) -> list[str]:
        """Remove and return the next ``limit`` waiting things (all of them for None)."""
        rows = self._db.execute(
            "SELECT seq, thing_name FROM rollout_queue WHERE job_id = ? ORDER BY seq LIMIT ?",
            (job_id, -1 if limit is None else limit),
        ).fetchall()
        if rows:
            self._db.execute("DELETE FROM rollout_queue WHERE job_id = ? AND seq <= ?", (job_id, rows[-1][0]))
        return [row[1] for row in rows]

    def clear_rollout(self, job_id: str) -> None:
        self._db.execute("DELETE FROM rollout_queue WHERE job_id = ?", (job_id,))

    def rollout_targets(self, job_id: str) -> list[str]:
        """The targets whose things are still waiting, in their first order."""
        rows = self._db.execute(
            "SELECT target FROM rollout_queue WHERE job_id = ? GROUP BY target ORDER BY MIN(seq)", (job_id,)
        )
        return [row[0] for row in rows]

    def rolling_out(self, job_ids: Iterable[str]) -> set[str]:
        """Which of the jobs still have things waiting for their rollout."""
        rows = self._db.execute(
            "SELECT DISTINCT job_id FROM rollout_queue WHERE job_id IN (SELECT value FROM json_each(?))",
            (json_list(job_ids),),
        )
        return {row[0] for row in rows}

    # the clock --------------------------------------------------------------------------------
    def latest_timestamp(self) -> float | None:
        """The latest time the state records (a restarted fast clock continues from it)."""
        row = self._db.execute(
            "SELECT MAX(t) FROM (SELECT MAX(last_updated_at) AS t FROM jobs "
            "UNION ALL SELECT MAX(last_updated_at) FROM executions "
            "UNION ALL SELECT MAX(created_at) FROM thing_groups "
            "UNION ALL SELECT MAX(created_at) FROM job_templates)"
        ).fetchone()
        return None if row[0] is None else float(row[0])
