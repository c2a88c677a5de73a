"""Queries on the thing registry: things, thing groups and group membership."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from typing import Any

from ..jobs.model import Thing, ThingGroup
from .base import Cursor, Page, StoreBase, json_list, json_map, page

_THING_COLUMNS = "thing_name, thing_id, thing_arn, attributes, version, thing_type_name"
_GROUP_COLUMNS = "name, group_id, arn, created_at, parent_name, description, attributes, version"

#: A set of groups (``json_each`` parameter) and all their descendants.
_SUBTREE = """
WITH RECURSIVE sub(name) AS (
    SELECT value FROM json_each(?)
    UNION
    SELECT g.name FROM thing_groups AS g JOIN sub ON g.parent_name = sub.name
)
"""
#: A group and all its ancestors, with their depth below it (0 for the group itself).
_ANCESTORS = """
WITH RECURSIVE anc(name, depth) AS (
    SELECT ?, 0
    UNION ALL
    SELECT g.parent_name, anc.depth + 1 FROM thing_groups AS g JOIN anc ON g.name = anc.name
    WHERE g.parent_name IS NOT NULL
)
"""


def _thing(row: sqlite3.Row) -> Thing:
    return Thing(row[0], row[1], row[2], json_map(row[3]), row[4], row[5])


def _thing_values(thing: Thing) -> tuple[Any, ...]:
    return (
        thing.thing_name,
        thing.thing_id,
        thing.thing_arn,
        json.dumps(thing.attributes) if thing.attributes else "{}",
        thing.version,
        thing.thing_type_name,
    )


def _group(row: sqlite3.Row) -> ThingGroup:
    return ThingGroup(row[0], row[1], row[2], row[3], row[4], row[5], json_map(row[6]), row[7])


class RegistryQueries(StoreBase):
    # things -----------------------------------------------------------------------------------
    def get_thing(self, name: str) -> Thing | None:
        row = self._db.execute(f"SELECT {_THING_COLUMNS} FROM things WHERE thing_name = ?", (name,)).fetchone()
        return None if row is None else _thing(row)

    def existing_things(self, names: Iterable[str]) -> set[str]:
        rows = self._db.execute(
            "SELECT thing_name FROM things WHERE thing_name IN (SELECT value FROM json_each(?))", (json_list(names),)
        )
        return {row[0] for row in rows}

    def insert_thing(self, thing: Thing) -> bool:
        """Add a thing unless one has its name (one statement, atomic on its own): whether it was added."""
        cursor = self._db.execute(
            f"INSERT INTO things ({_THING_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (thing_name) DO NOTHING",
            _thing_values(thing),
        )
        return cursor.rowcount == 1

    def put_thing(self, thing: Thing) -> None:
        self._db.execute(
            f"INSERT OR REPLACE INTO things ({_THING_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)", _thing_values(thing)
        )

    def delete_thing(self, name: str) -> None:
        self._db.execute("DELETE FROM group_members WHERE thing_name = ?", (name,))
        self._db.execute("DELETE FROM things WHERE thing_name = ?", (name,))

    def list_things(
        self,
        *,
        attribute_name: str | None,
        attribute_value: str | None,
        prefix: bool,
        thing_type_name: str | None,
        after: Cursor | None,
        limit: int,
    ) -> Page[Thing]:
        """By name. With an attribute name only, the things that have that attribute."""
        query = f"SELECT {_THING_COLUMNS} FROM things WHERE 1"
        params: list[Any] = []
        if attribute_name is not None:
            path = f'$."{attribute_name}"'
            if attribute_value is None:
                query += " AND json_type(attributes, ?) IS NOT NULL"
                params.append(path)
            elif prefix:
                query += " AND substr(json_extract(attributes, ?), 1, ?) = ?"
                params.extend((path, len(attribute_value), attribute_value))
            else:
                query += " AND json_extract(attributes, ?) = ?"
                params.extend((path, attribute_value))
        if thing_type_name is not None:
            query += " AND thing_type_name = ?"
            params.append(thing_type_name)
        if after is not None:
            query += " AND thing_name > ?"
            params.extend(after)
        query += " ORDER BY thing_name LIMIT ?"
        things = [_thing(r) for r in self._db.execute(query, (*params, limit + 1))]
        return page(things, limit, lambda t: (t.thing_name,))

    # groups -----------------------------------------------------------------------------------
    def get_group(self, name: str) -> ThingGroup | None:
        row = self._db.execute(f"SELECT {_GROUP_COLUMNS} FROM thing_groups WHERE name = ?", (name,)).fetchone()
        return None if row is None else _group(row)

    def group_name_by_id(self, group_id: str) -> str | None:
        row = self._db.execute("SELECT name FROM thing_groups WHERE group_id = ?", (group_id,)).fetchone()
        return None if row is None else str(row[0])

    def existing_groups(self, names: Iterable[str]) -> set[str]:
        rows = self._db.execute(
            "SELECT name FROM thing_groups WHERE name IN (SELECT value FROM json_each(?))", (json_list(names),)
        )
        return {row[0] for row in rows}

    def put_group(self, group: ThingGroup) -> None:
        self._db.execute(
            f"INSERT OR REPLACE INTO thing_groups ({_GROUP_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                group.name,
                group.group_id,
                group.arn,
                group.created_at,
                group.parent_name,
                group.description,
                json.dumps(group.attributes),
                group.version,
            ),
        )

    def delete_group(self, name: str) -> None:
        self._db.execute("DELETE FROM group_members WHERE group_name = ?", (name,))
        self._db.execute("DELETE FROM thing_groups WHERE name = ?", (name,))

    def has_child_groups(self, name: str) -> bool:
        return (
            self._db.execute("SELECT 1 FROM thing_groups WHERE parent_name = ? LIMIT 1", (name,)).fetchone() is not None
        )

    def ancestors(self, name: str) -> list[ThingGroup]:
        """The group's ancestors from the root down to its parent (empty for a root group)."""
        rows = self._db.execute(
            f"{_ANCESTORS} SELECT {', '.join('g.' + c.strip() for c in _GROUP_COLUMNS.split(','))} "
            "FROM anc JOIN thing_groups AS g ON g.name = anc.name WHERE anc.depth > 0 ORDER BY anc.depth DESC",
            (name,),
        )
        return [_group(r) for r in rows]

    def roots(self, names: Iterable[str]) -> dict[str, str]:
        """The root group of each given group."""
        out: dict[str, str] = {}
        for name in names:
            row = self._db.execute(f"{_ANCESTORS} SELECT name FROM anc ORDER BY depth DESC LIMIT 1", (name,)).fetchone()
            out[name] = row[0]
        return out

    def list_groups(
        self, *, parent: str | None, prefix: str | None, recursive: bool, after: Cursor | None, limit: int
    ) -> Page[ThingGroup]:
        """By name: the top-level groups (``recursive``: all groups), or the children of ``parent``
        (``recursive``: all its descendants)."""
        params: list[Any] = []
        if parent is None:
            where = "1" if recursive else "parent_name IS NULL"
            query = f"SELECT {_GROUP_COLUMNS} FROM thing_groups WHERE {where}"
        elif recursive:
            query = (
                f"{_SUBTREE} SELECT {_GROUP_COLUMNS} FROM thing_groups "
                "WHERE name IN (SELECT name FROM sub) AND name != ?"
            )
            params.extend((json_list([parent]), parent))
        else:
            query = f"SELECT {_GROUP_COLUMNS} FROM thing_groups WHERE parent_name = ?"
            params.append(parent)
        if prefix is not None:
            query += " AND substr(name, 1, ?) = ?"
            params.extend((len(prefix), prefix))
        if after is not None:
            query += " AND name > ?"
            params.extend(after)
        query += " ORDER BY name LIMIT ?"
        groups = [_group(r) for r in self._db.execute(query, (*params, limit + 1))]
        return page(groups, limit, lambda g: (g.name,))

    # membership -------------------------------------------------------------------------------
    def add_member(self, group_name: str, thing_name: str) -> None:
        self._db.execute(
            "INSERT OR IGNORE INTO group_members (group_name, thing_name) VALUES (?, ?)", (group_name, thing_name)
        )

    def remove_member(self, group_name: str, thing_name: str) -> None:
        self._db.execute("DELETE FROM group_members WHERE group_name = ? AND thing_name = ?", (group_name, thing_name))

    def groups_of_thing(self, thing_name: str) -> list[str]:
        rows = self._db.execute(
            "SELECT group_name FROM group_members WHERE thing_name = ? ORDER BY group_name", (thing_name,)
        )
        return [row[0] for row in rows]

    def direct_members(self, group_name: str) -> list[str]:
        rows = self._db.execute("SELECT thing_name FROM group_members WHERE group_name = ?", (group_name,))
        return [row[0] for row in rows]

    def things_in_groups(self, group_names: Iterable[str]) -> list[str]:
        """Every thing in the groups or their descendants, each once, by name."""
        rows = self._db.execute(
            f"{_SUBTREE} SELECT DISTINCT thing_name FROM group_members WHERE group_name IN (SELECT name FROM sub) "
            "ORDER BY thing_name",
            (json_list(group_names),),
        )
        return [row[0] for row in rows]

    def list_things_in_group(self, name: str, recursive: bool, after: Cursor | None, limit: int) -> Page[str]:
        if recursive:
            query = (
                f"{_SUBTREE} SELECT DISTINCT thing_name FROM group_members WHERE group_name IN (SELECT name FROM sub)"
            )
            params: list[Any] = [json_list([name])]
        else:
            query = "SELECT thing_name FROM group_members WHERE group_name = ?"
            params = [name]
        if after is not None:
            query += " AND thing_name > ?"
            params.extend(after)
        query += " ORDER BY thing_name LIMIT ?"
        names = [row[0] for row in self._db.execute(query, (*params, limit + 1))]
        return page(names, limit, lambda n: (n,))

    def list_groups_of_thing(self, thing_name: str, after: Cursor | None, limit: int) -> Page[ThingGroup]:
        query = (
            f"SELECT {', '.join('g.' + c.strip() for c in _GROUP_COLUMNS.split(','))} FROM group_members AS m "
            "JOIN thing_groups AS g ON g.name = m.group_name WHERE m.thing_name = ?"
        )
        params: list[Any] = [thing_name]
        if after is not None:
            query += " AND g.name > ?"
            params.extend(after)
        query += " ORDER BY g.name LIMIT ?"
        groups = [_group(r) for r in self._db.execute(query, (*params, limit + 1))]
        return page(groups, limit, lambda g: (g.name,))
