"""Queries on jobs, their targets and job templates."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from typing import Any

from ..jobs.model import Job, JobStatus, JobTemplate, TargetSelection
from .base import Cursor, Page, StoreBase, json_list, json_map, page

#: Enum members by value: a dictionary lookup is several times cheaper than ``JobStatus(value)``.
_JOB_STATUSES = {s.value: s for s in JobStatus}
_SELECTIONS = {s.value: s for s in TargetSelection}


def _job(row: sqlite3.Row) -> Job:
    return Job(
        job_id=row[0],
        job_arn=row[1],
        document=row[2],
        targets=tuple(json.loads(row[3])),
        target_selection=_SELECTIONS[row[4]],
        status=_JOB_STATUSES[row[5]],
        created_at=row[6],
        last_updated_at=row[7],
        description=row[8],
        completed_at=row[9],
        force_canceled=bool(row[10]),
        reason_code=row[11],
        comment=row[12],
        config=json_map(row[13]),
    )


def _template(row: sqlite3.Row) -> JobTemplate:
    return JobTemplate(row[0], row[1], row[2], row[3], row[4], json.loads(row[5]))


_JOB_COLUMNS = (
    "job_id, job_arn, document, targets, target_selection, status, created_at, last_updated_at, "
    "description, completed_at, force_canceled, reason_code, comment, config"
)
#: How many jobs ``get_job`` remembers (the jobs devices are working on; a few, usually).
_JOBS_REMEMBERED = 64
_TEMPLATE_COLUMNS = "template_id, arn, description, document, created_at, config"

#: For each of a set of things (``json_each`` parameter, given twice): the CONTINUOUS IN_PROGRESS
#: jobs that target it directly or through one of its groups or their ancestors.
_CONTINUOUS_FOR_THINGS = """
WITH RECURSIVE anc(thing, name) AS (
    SELECT thing_name, group_name FROM group_members WHERE thing_name IN (SELECT value FROM json_each(?))
    UNION
    SELECT anc.thing, g.parent_name FROM thing_groups AS g JOIN anc ON g.name = anc.name
    WHERE g.parent_name IS NOT NULL
)
SELECT anc.thing, t.job_id FROM anc
JOIN job_targets AS t ON t.kind = 'thinggroup' AND t.name = anc.name
JOIN jobs AS j ON j.job_id = t.job_id AND j.target_selection = 'CONTINUOUS' AND j.status = 'IN_PROGRESS'
UNION
SELECT t.name, t.job_id FROM job_targets AS t
JOIN jobs AS j ON j.job_id = t.job_id AND j.target_selection = 'CONTINUOUS' AND j.status = 'IN_PROGRESS'
WHERE t.kind = 'thing' AND t.name IN (SELECT value FROM json_each(?))
"""


class JobQueries(StoreBase):
    # jobs -------------------------------------------------------------------------------------
    def get_job(self, job_id: str) -> Job | None:
        job = self._jobs_read.get(job_id)
        if job is not None:
            return job
        row = self._db.execute(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
        if row is None:
            return None
        if len(self._jobs_read) >= _JOBS_REMEMBERED:
            self._jobs_read.clear()
        job = self._jobs_read[job_id] = _job(row)
        return job

    def get_jobs(self, job_ids: Iterable[str]) -> dict[str, Job]:
        rows = self._db.execute(
            f"SELECT {_JOB_COLUMNS} FROM jobs WHERE job_id IN (SELECT value FROM json_each(?))", (json_list(job_ids),)
        )
        return {row[0]: _job(row) for row in rows}

    def put_job(self, job: Job) -> None:
        self._jobs_read.pop(job.job_id, None)
        self._db.execute(
            f"INSERT OR REPLACE INTO jobs ({_JOB_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
        self._jobs_read.pop(job_id, None)
        self.delete_executions_of_job(job_id)
        self._db.execute("DELETE FROM job_targets WHERE job_id = ?", (job_id,))
        self._db.execute("DELETE FROM jobs WHERE job_id = ?", (job_id,))

    def delete_executions_of_job(self, job_id: str) -> None:
        self._db.execute("DELETE FROM executions WHERE job_id = ?", (job_id,))

    def count_jobs_with_status(self, status: str) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM jobs WHERE status = ?", (status,)).fetchone()[0])

    def job_documents(self, job_ids: Iterable[str]) -> dict[str, str]:
        rows = self._db.execute(
            "SELECT job_id, document FROM jobs WHERE job_id IN (SELECT value FROM json_each(?))", (json_list(job_ids),)
        )
        return {row[0]: row[1] for row in rows}

    def list_jobs(
        self,
        *,
        status: str | None,
        target_selection: str | None,
        group_name: str | None,
        namespace_id: str | None,
        after: Cursor | None,
        limit: int,
    ) -> Page[Job]:
        """Newest first."""
        query = f"SELECT {_JOB_COLUMNS} FROM jobs WHERE 1"
        params: list[Any] = []
        if status is not None:
            query += " AND status = ?"
            params.append(status)
        if target_selection is not None:
            query += " AND target_selection = ?"
            params.append(target_selection)
        if group_name is not None:
            query += " AND job_id IN (SELECT job_id FROM job_targets WHERE kind = 'thinggroup' AND name = ?)"
            params.append(group_name)
        if namespace_id is not None:
            query += " AND json_extract(config, '$.namespaceId') = ?"
            params.append(namespace_id)
        if after is not None:
            query += " AND (created_at, job_id) < (?, ?)"
            params.extend(after)
        query += " ORDER BY created_at DESC, job_id DESC LIMIT ?"
        jobs = [_job(r) for r in self._db.execute(query, (*params, limit + 1))]
        return page(jobs, limit, lambda j: (j.created_at, j.job_id))

    # targets ----------------------------------------------------------------------------------
    def add_job_targets(self, job_id: str, targets: Iterable[tuple[str, str]]) -> None:
        """Record (kind, name) targets: kind is ``thing`` or ``thinggroup``."""
        self._db.executemany(
            "INSERT OR IGNORE INTO job_targets (job_id, kind, name) VALUES (?, ?, ?)",
            ((job_id, kind, name) for kind, name in targets),
        )

    def continuous_jobs_for_things(self, thing_names: Iterable[str]) -> dict[str, set[str]]:
        """Each thing's CONTINUOUS IN_PROGRESS jobs, in one query (things without any map to an empty set)."""
        names = list(thing_names)
        out: dict[str, set[str]] = {name: set() for name in names}
        param = json_list(names)
        for thing, job_id in self._db.execute(_CONTINUOUS_FOR_THINGS, (param, param)):
            out[thing].add(job_id)
        return out

    def jobs_targeting_groups(self, group_names: Iterable[str]) -> set[str]:
        rows = self._db.execute(
            "SELECT DISTINCT job_id FROM job_targets WHERE kind = 'thinggroup' "
            "AND name IN (SELECT value FROM json_each(?))",
            (json_list(group_names),),
        )
        return {row[0] for row in rows}

    # templates --------------------------------------------------------------------------------
    def get_template(self, template_id: str) -> JobTemplate | None:
        row = self._db.execute(
            f"SELECT {_TEMPLATE_COLUMNS} FROM job_templates WHERE template_id = ?", (template_id,)
        ).fetchone()
        return None if row is None else _template(row)

    def put_template(self, template: JobTemplate) -> None:
        self._db.execute(
            f"INSERT OR REPLACE INTO job_templates ({_TEMPLATE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
            (
                template.template_id,
                template.arn,
                template.description,
                template.document,
                template.created_at,
                json.dumps(template.config),
            ),
        )

    def delete_template(self, template_id: str) -> None:
        self._db.execute("DELETE FROM job_templates WHERE template_id = ?", (template_id,))

    def list_templates(self, after: Cursor | None, limit: int) -> Page[JobTemplate]:
        """Newest first."""
        query = f"SELECT {_TEMPLATE_COLUMNS} FROM job_templates"
        params: list[Any] = []
        if after is not None:
            query += " WHERE (created_at, template_id) < (?, ?)"
            params.extend(after)
        query += " ORDER BY created_at DESC, template_id DESC LIMIT ?"
        templates = [_template(r) for r in self._db.execute(query, (*params, limit + 1))]
        return page(templates, limit, lambda t: (t.created_at, t.template_id))
