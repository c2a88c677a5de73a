"""The SQLite schema, and the upgrade of databases written by earlier versions.

``PRAGMA user_version`` records the schema version. Version 1 had things, jobs and executions;
version 2 adds thing groups, memberships, job targets, job templates and the indexes behind every
lookup the engine makes; version 3 adds the lifecycle in time: execution deadlines and retry
attempts, the pacing of jobs (``job_pacing``) and the things waiting for their rollout
(``rollout_queue``); version 4 adds the registry event settings (``event_configurations``).
"""

from __future__ import annotations

import sqlite3

VERSION = 4

_TABLES = """
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
    in_progress_deadline REAL,
    step_deadline REAL,
    deadline REAL,
    retry_attempt INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (job_id, thing_name, execution_number)
);
CREATE INDEX IF NOT EXISTS executions_by_thing ON executions (thing_name, status);
CREATE TABLE IF NOT EXISTS thing_groups (
    name TEXT PRIMARY KEY,
    group_id TEXT NOT NULL UNIQUE,
    arn TEXT NOT NULL,
    parent_name TEXT,
    description TEXT,
    attributes TEXT NOT NULL,
    version INTEGER NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS group_members (
    group_name TEXT NOT NULL,
    thing_name TEXT NOT NULL,
    PRIMARY KEY (group_name, thing_name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS job_targets (
    job_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    PRIMARY KEY (job_id, kind, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS job_templates (
    template_id TEXT PRIMARY KEY,
    arn TEXT NOT NULL,
    description TEXT NOT NULL,
    document TEXT NOT NULL,
    created_at REAL NOT NULL,
    config TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS event_configurations (
    event_type TEXT PRIMARY KEY,
    enabled INTEGER NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS executions_by_job_status ON executions (job_id, status);
CREATE INDEX IF NOT EXISTS executions_by_thing_seq ON executions (thing_name, seq);
CREATE INDEX IF NOT EXISTS jobs_by_created ON jobs (created_at, job_id);
CREATE INDEX IF NOT EXISTS thing_groups_by_parent ON thing_groups (parent_name);
CREATE INDEX IF NOT EXISTS group_members_by_thing ON group_members (thing_name);
CREATE INDEX IF NOT EXISTS job_targets_by_target ON job_targets (kind, name);
CREATE INDEX IF NOT EXISTS job_templates_by_created ON job_templates (created_at, template_id);
CREATE INDEX IF NOT EXISTS executions_by_deadline ON executions (deadline) WHERE deadline IS NOT NULL;
CREATE TABLE IF NOT EXISTS job_pacing (
    job_id TEXT PRIMARY KEY,
    next_batch_at REAL,
    ended INTEGER NOT NULL,
    wake_at REAL
);
CREATE INDEX IF NOT EXISTS job_pacing_by_wake ON job_pacing (wake_at) WHERE wake_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS rollout_queue (
    job_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    thing_name TEXT NOT NULL,
    target TEXT NOT NULL,
    PRIMARY KEY (job_id, seq)
) WITHOUT ROWID;
"""

#: Version 1 jobs could target things only; record those targets in ``job_targets``.
_FROM_1 = """
INSERT OR IGNORE INTO job_targets (job_id, kind, name)
SELECT j.job_id, 'thing', substr(t.value, instr(t.value, ':thing/') + 7)
FROM jobs AS j, json_each(j.targets) AS t
WHERE instr(t.value, ':thing/') > 0;
"""

#: Versions 1 and 2 had no deadlines and no retries.
_TO_3 = (
    "ALTER TABLE executions ADD COLUMN in_progress_deadline REAL",
    "ALTER TABLE executions ADD COLUMN step_deadline REAL",
    "ALTER TABLE executions ADD COLUMN deadline REAL",
    "ALTER TABLE executions ADD COLUMN retry_attempt INTEGER NOT NULL DEFAULT 0",
)


def ensure(db: sqlite3.Connection) -> None:
    """Create the schema, or upgrade an older database, in one transaction."""
    version = int(db.execute("PRAGMA user_version").fetchone()[0])
    if version >= VERSION:
        return
    had_jobs = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'jobs'").fetchone()
    db.execute("BEGIN IMMEDIATE")
    try:
        if had_jobs is not None and version < 3:
            for statement in _TO_3:
                db.execute(statement)
        for statement in filter(str.strip, _TABLES.split(";")):
            db.execute(statement)
        if had_jobs is not None and version < 2:
            db.execute(_FROM_1)
        db.execute(f"PRAGMA user_version = {VERSION}")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
