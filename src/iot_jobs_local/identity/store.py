"""SQLite persistence of certificates, policies and principal attachments. No rules live here.

Same database file as the jobs store, its own connection and its own tables (``identity_*``), so
the two evolve independently. WAL lets both connections (and the ``provision`` CLI when the
service is stopped) use the file; each operation runs in one transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

from ..store import sqlite as sqlite_db

_SCHEMA = """
CREATE TABLE IF NOT EXISTS identity_certificates (
    certificate_id TEXT PRIMARY KEY,
    certificate_arn TEXT NOT NULL,
    status TEXT NOT NULL,
    certificate_pem TEXT NOT NULL,
    common_name TEXT NOT NULL UNIQUE,
    serial_number TEXT NOT NULL,
    not_before REAL NOT NULL,
    not_after REAL NOT NULL,
    creation_date REAL NOT NULL,
    last_modified_date REAL NOT NULL,
    generation_id TEXT NOT NULL,
    customer_version INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS identity_certificates_by_arn ON identity_certificates (certificate_arn);
CREATE TABLE IF NOT EXISTS identity_revoked_serials (
    serial_number TEXT PRIMARY KEY
);
CREATE TABLE IF NOT EXISTS identity_policies (
    policy_name TEXT PRIMARY KEY,
    policy_arn TEXT NOT NULL,
    default_version_id INTEGER NOT NULL,
    last_version_id INTEGER NOT NULL,
    creation_date REAL NOT NULL,
    last_modified_date REAL NOT NULL,
    generation_id TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS identity_policy_versions (
    policy_name TEXT NOT NULL,
    version_id INTEGER NOT NULL,
    document TEXT NOT NULL,
    create_date REAL NOT NULL,
    PRIMARY KEY (policy_name, version_id)
);
CREATE TABLE IF NOT EXISTS identity_policy_targets (
    policy_name TEXT NOT NULL,
    target TEXT NOT NULL,
    attached_at REAL NOT NULL,
    PRIMARY KEY (policy_name, target)
);
CREATE INDEX IF NOT EXISTS identity_policy_targets_by_target ON identity_policy_targets (target);
CREATE TABLE IF NOT EXISTS identity_thing_principals (
    thing_name TEXT NOT NULL,
    principal TEXT NOT NULL,
    principal_type TEXT NOT NULL,
    attached_at REAL NOT NULL,
    PRIMARY KEY (thing_name, principal)
);
CREATE INDEX IF NOT EXISTS identity_thing_principals_by_principal ON identity_thing_principals (principal);
"""


@dataclass(frozen=True)
class Certificate:
    certificate_id: str
    certificate_arn: str
    status: str
    certificate_pem: str
    #: The subject CN: the MQTT username the broker gives a connection made with this certificate.
    common_name: str
    serial_number: int
    not_before: float
    not_after: float
    creation_date: float
    last_modified_date: float
    generation_id: str
    customer_version: int = 1


@dataclass(frozen=True)
class Policy:
    policy_name: str
    policy_arn: str
    default_version_id: int
    last_version_id: int
    creation_date: float
    last_modified_date: float
    generation_id: str


@dataclass(frozen=True)
class PolicyVersion:
    policy_name: str
    version_id: int
    document: str
    create_date: float


@dataclass(frozen=True)
class ThingPrincipal:
    thing_name: str
    principal: str
    principal_type: str


#: Target ARN -> (policy name, default version's document) of each policy attached to it.
DocumentsByTarget = dict[str, list[tuple[str, str]]]

_CERT_COLUMNS = (
    "certificate_id, certificate_arn, status, certificate_pem, common_name, serial_number, not_before, "
    "not_after, creation_date, last_modified_date, generation_id, customer_version"
)


def _certificate(row: sqlite3.Row | tuple[object, ...]) -> Certificate:
    values = list(row)
    values[5] = int(str(values[5]), 16)
    return Certificate(*values)


class IdentityStore:
    """Not thread-safe: used from the service's event loop (or by one CLI process)."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite_db.connect(path)
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def transaction(self) -> AbstractContextManager[None]:
        """Everything inside commits together, or not at all."""
        return sqlite_db.transaction(self._db)

    # certificates -----------------------------------------------------------------------------
    def certificate(self, certificate_id: str) -> Certificate | None:
        row = self._db.execute(
            f"SELECT {_CERT_COLUMNS} FROM identity_certificates WHERE certificate_id = ?", (certificate_id,)
        ).fetchone()
        return None if row is None else _certificate(row)

    def certificate_by_common_name(self, common_name: str) -> Certificate | None:
        row = self._db.execute(
            f"SELECT {_CERT_COLUMNS} FROM identity_certificates WHERE common_name = ?", (common_name,)
        ).fetchone()
        return None if row is None else _certificate(row)

    def put_certificate(self, c: Certificate) -> None:
        self._db.execute(
            f"INSERT OR REPLACE INTO identity_certificates ({_CERT_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                c.certificate_id,
                c.certificate_arn,
                c.status,
                c.certificate_pem,
                c.common_name,
                format(c.serial_number, "x"),
                c.not_before,
                c.not_after,
                c.creation_date,
                c.last_modified_date,
                c.generation_id,
                c.customer_version,
            ),
        )

    def delete_certificate(self, certificate_id: str) -> None:
        self._db.execute("DELETE FROM identity_certificates WHERE certificate_id = ?", (certificate_id,))

    def certificates(self, ascending: bool = False, offset: int = 0, limit: int = -1) -> list[Certificate]:
        order = "ASC" if ascending else "DESC"
        rows = self._db.execute(
            f"SELECT {_CERT_COLUMNS} FROM identity_certificates "
            f"ORDER BY creation_date {order}, certificate_id {order} LIMIT ? OFFSET ?",
            (limit, offset),
        )
        return [_certificate(row) for row in rows]

    def add_revoked_serial(self, serial_number: int) -> None:
        self._db.execute("INSERT OR IGNORE INTO identity_revoked_serials VALUES (?)", (format(serial_number, "x"),))

    def revoked_serials(self) -> list[int]:
        """Serials the broker must refuse: deleted certificates and every certificate not ACTIVE."""
        rows = self._db.execute(
            "SELECT serial_number FROM identity_revoked_serials UNION "
            "SELECT serial_number FROM identity_certificates WHERE status != 'ACTIVE'"
        )
        return [int(row[0], 16) for row in rows]

    # policies ---------------------------------------------------------------------------------
    def policy(self, name: str) -> Policy | None:
        row = self._db.execute("SELECT * FROM identity_policies WHERE policy_name = ?", (name,)).fetchone()
        return None if row is None else Policy(*row)

    def put_policy(self, p: Policy) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO identity_policies VALUES (?,?,?,?,?,?,?)",
            (
                p.policy_name,
                p.policy_arn,
                p.default_version_id,
                p.last_version_id,
                p.creation_date,
                p.last_modified_date,
                p.generation_id,
            ),
        )

    def delete_policy(self, name: str) -> None:
        self._db.execute("DELETE FROM identity_policy_versions WHERE policy_name = ?", (name,))
        self._db.execute("DELETE FROM identity_policies WHERE policy_name = ?", (name,))

    def policies(self, ascending: bool = True, offset: int = 0, limit: int = -1) -> list[Policy]:
        order = "ASC" if ascending else "DESC"
        rows = self._db.execute(
            f"SELECT * FROM identity_policies ORDER BY policy_name {order} LIMIT ? OFFSET ?", (limit, offset)
        )
        return [Policy(*row) for row in rows]

    def version(self, name: str, version_id: int) -> PolicyVersion | None:
        row = self._db.execute(
            "SELECT * FROM identity_policy_versions WHERE policy_name = ? AND version_id = ?", (name, version_id)
        ).fetchone()
        return None if row is None else PolicyVersion(*row)

    def put_version(self, v: PolicyVersion) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO identity_policy_versions VALUES (?,?,?,?)",
            (v.policy_name, v.version_id, v.document, v.create_date),
        )

    def delete_version(self, name: str, version_id: int) -> None:
        self._db.execute(
            "DELETE FROM identity_policy_versions WHERE policy_name = ? AND version_id = ?", (name, version_id)
        )

    def versions(self, name: str) -> list[PolicyVersion]:
        rows = self._db.execute(
            "SELECT * FROM identity_policy_versions WHERE policy_name = ? ORDER BY version_id DESC", (name,)
        )
        return [PolicyVersion(*row) for row in rows]

    # policy attachments -----------------------------------------------------------------------
    def attach_policy(self, name: str, target: str, now: float) -> None:
        self._db.execute("INSERT OR IGNORE INTO identity_policy_targets VALUES (?,?,?)", (name, target, now))

    def detach_policy(self, name: str, target: str) -> None:
        self._db.execute("DELETE FROM identity_policy_targets WHERE policy_name = ? AND target = ?", (name, target))

    def targets_of_policy(self, name: str) -> list[str]:
        rows = self._db.execute(
            "SELECT target FROM identity_policy_targets WHERE policy_name = ? ORDER BY attached_at, target", (name,)
        )
        return [row[0] for row in rows]

    def policies_of_target(self, target: str) -> list[str]:
        rows = self._db.execute(
            "SELECT policy_name FROM identity_policy_targets WHERE target = ? ORDER BY attached_at, policy_name",
            (target,),
        )
        return [row[0] for row in rows]

    def has_target_prefix(self, prefix: str) -> bool:
        """A range on the target index (a fleet has a target per certificate: no scan of them)."""
        upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        row = self._db.execute(
            "SELECT 1 FROM identity_policy_targets WHERE target >= ? AND target < ? LIMIT 1", (prefix, upper)
        ).fetchone()
        return row is not None

    def default_documents_of_target(self, target: str) -> list[tuple[str, str]]:
        """(policy name, default version's document) of every policy attached to ``target``."""
        rows = self._db.execute(
            "SELECT p.policy_name, v.document FROM identity_policy_targets t "
            "JOIN identity_policies p ON p.policy_name = t.policy_name "
            "JOIN identity_policy_versions v ON v.policy_name = p.policy_name AND v.version_id = p.default_version_id "
            "WHERE t.target = ? ORDER BY t.attached_at, p.policy_name",
            (target,),
        )
        return [(row[0], row[1]) for row in rows]

    def all_default_documents(self) -> DocumentsByTarget:
        """``default_documents_of_target`` for every target at once (one query, for a full rebuild)."""
        rows = self._db.execute(
            "SELECT t.target, p.policy_name, v.document FROM identity_policy_targets t "
            "JOIN identity_policies p ON p.policy_name = t.policy_name "
            "JOIN identity_policy_versions v ON v.policy_name = p.policy_name AND v.version_id = p.default_version_id "
            "ORDER BY t.target, t.attached_at, p.policy_name"
        )
        out: DocumentsByTarget = {}
        for target, name, document in rows:
            out.setdefault(target, []).append((name, document))
        return out

    # thing principals -------------------------------------------------------------------------
    def attach_thing(self, thing_name: str, principal: str, principal_type: str, now: float) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO identity_thing_principals VALUES (?,?,?,?)",
            (thing_name, principal, principal_type, now),
        )

    def detach_thing(self, thing_name: str, principal: str) -> None:
        self._db.execute(
            "DELETE FROM identity_thing_principals WHERE thing_name = ? AND principal = ?", (thing_name, principal)
        )

    def principals_of_thing(self, thing_name: str) -> list[ThingPrincipal]:
        rows = self._db.execute(
            "SELECT thing_name, principal, principal_type FROM identity_thing_principals "
            "WHERE thing_name = ? ORDER BY attached_at, principal",
            (thing_name,),
        )
        return [ThingPrincipal(*row) for row in rows]

    def things_of_principal(self, principal: str) -> list[ThingPrincipal]:
        rows = self._db.execute(
            "SELECT thing_name, principal, principal_type FROM identity_thing_principals "
            "WHERE principal = ? ORDER BY attached_at, thing_name",
            (principal,),
        )
        return [ThingPrincipal(*row) for row in rows]

    def all_thing_principals(self) -> dict[str, list[ThingPrincipal]]:
        """``things_of_principal`` for every principal at once (one query, for a full rebuild)."""
        rows = self._db.execute(
            "SELECT thing_name, principal, principal_type FROM identity_thing_principals "
            "ORDER BY principal, attached_at, thing_name"
        )
        out: dict[str, list[ThingPrincipal]] = {}
        for row in rows:
            out.setdefault(row[1], []).append(ThingPrincipal(*row))
        return out

    def common_names_of_things(self, thing_names: Sequence[str]) -> list[str]:
        """The CNs of the certificates attached to these things."""
        out: list[str] = []
        for thing_name in thing_names:
            rows = self._db.execute(
                "SELECT c.common_name FROM identity_thing_principals t "
                "JOIN identity_certificates c ON c.certificate_arn = t.principal WHERE t.thing_name = ?",
                (thing_name,),
            )
            out += [row[0] for row in rows]
        return out
