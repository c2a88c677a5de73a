"""The one way the service opens its SQLite database, and runs a transaction on it.

WAL with ``synchronous=NORMAL``: a committed transaction survives the death of the process
(``kill -9``) because it is in the WAL file before ``COMMIT`` returns; only an OS crash or power
loss can drop the last transactions. Both the jobs store and the identity store use this.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def connect(path: Path) -> sqlite3.Connection:
    """Autocommit mode (transactions are explicit), usable from the event loop's thread."""
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA busy_timeout=5000")
    return db


@contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[None]:
    """Everything inside commits together, or not at all."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


@contextmanager
def savepoint(db: sqlite3.Connection) -> Iterator[None]:
    """Inside an open transaction: everything inside is kept, or undone alone."""
    db.execute("SAVEPOINT operation")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK TO operation")
        db.execute("RELEASE operation")
        raise
    db.execute("RELEASE operation")
