"""The connection, transactions and the helpers every query module shares.

WAL with ``synchronous=NORMAL``: a committed transaction survives the death of this process
(``kill -9``) because it is in the WAL file before ``commit()`` returns; only an OS crash or power
loss can drop the last transactions.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from ..jobs.model import Execution, Job
from . import schema
from . import sqlite as sqlite_db

T = TypeVar("T")

#: A page position: the sort key of the last row of the previous page.
Cursor = tuple[Any, ...]


def json_list(values: Iterable[str]) -> str:
    """A set of names as one query parameter, read back with ``json_each(?)`` (no 999-variable limit)."""
    return json.dumps(list(values))


def json_map(text: str) -> dict[str, Any]:
    return {} if text == "{}" else dict(json.loads(text))


class StoreBase:
    """One SQLite database. Not thread-safe: the service uses it from its event loop only."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite_db.connect(path)
        schema.ensure(self._db)
        row = self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM executions").fetchone()
        self._seq = int(row[0])
        #: Executions written in a terminal status by the open transaction (for registry events).
        self.ended: list[Execution] = []
        self._after_commit: list[Callable[[], None]] = []
        self._on_rollback: list[Callable[[], None]] = []
        #: Jobs as last read or written, by id: every device request reads its job (document,
        #: timeouts), and decoding the row's JSON cost more than the query. The service is the only
        #: writer; the memo is forgotten on every rollback (it may hold an uncommitted write).
        self._jobs_read: dict[str, Job] = {}
        #: While a :meth:`batch` is open: what waits for its commit (None: no batch open).
        self._committed: list[Callable[[], None]] | None = None

    def close(self) -> None:
        self._db.close()

    @property
    def changes(self) -> int:
        """Grows with every row this store writes (committed or not): equal values mean nothing
        was written in between, so what was read then still holds (the service is the only writer
        of its jobs, executions and things)."""
        return self._db.total_changes

    def after_commit(self, hook: Callable[[], None], on_rollback: Callable[[], None] | None = None) -> None:
        """Call ``hook`` after every committed transaction, ``on_rollback`` after every rolled-back
        one (which also forgets ``ended``)."""
        self._after_commit.append(hook)
        if on_rollback is not None:
            self._on_rollback.append(on_rollback)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Everything inside commits together, or not at all. Inside a :meth:`batch` it is a
        savepoint: undone alone if it fails, committed with the batch if it does not."""
        try:
            if self._committed is None:
                with sqlite_db.transaction(self._db):
                    yield
            else:
                with sqlite_db.savepoint(self._db):
                    yield
        except BaseException:
            self.ended = []
            self._jobs_read.clear()
            for undo in self._on_rollback:
                undo()
            raise
        for hook in self._after_commit:
            hook()

    @contextmanager
    def batch(self) -> Iterator[None]:
        """One SQLite transaction around several operations (each a savepoint of it), so they share
        one commit. What :meth:`when_committed` is given inside runs after that commit, in order;
        if the commit fails, none of it runs and the error propagates (the caller must then not
        answer as if the operations had happened)."""
        if self._committed is not None:
            yield  # already inside a batch: this one is part of it
            return
        waiting: list[Callable[[], None]] = []
        self._committed = waiting
        try:
            with sqlite_db.transaction(self._db):
                yield
        except BaseException:
            self._jobs_read.clear()
            raise
        finally:
            self._committed = None
        for call in waiting:
            call()

    def when_committed(self, call: Callable[[], None]) -> None:
        """Call ``call`` once what was written so far is committed: now, outside a :meth:`batch`
        (an operation calls this after its transaction), else after the batch's commit."""
        if self._committed is None:
            call()
        else:
            self._committed.append(call)

    def next_seq(self) -> int:
        self._seq += 1
        return self._seq


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a listing, and where the next one starts (None on the last page)."""

    items: list[T]
    cursor: Cursor | None = None


def page(items: list[T], limit: int, key: Callable[[T], Cursor]) -> Page[T]:
    """``items`` was fetched with ``LIMIT limit + 1``: a surplus row means another page follows."""
    if len(items) > limit:
        return Page(items[:limit], key(items[limit - 1]))
    return Page(items)
