"""Keep what the broker enforces in step with certificates and policies, one certificate at a time.

Each identity change names the certificates whose rights it may alter (or "all of them", for the
rare change that can reach any: a policy's new default version, a thing group's policy). Only
those are recompiled; the entries that differ are sent to the broker plugin's ACL table
(``acl_feed``), which acknowledges them once they are in force: nothing is re-read whole, nothing
is reloaded, so the cost of a change does not grow with the fleet. Changes that arrive while an
update is under way are folded into the next one (many changes, one round trip).

The CRL still needs Mosquitto to reload (SIGHUP); it changes only when a certificate stops being
ACTIVE or is deleted. Connections made with such a certificate are then closed (AWS closes them
too, "within a few minutes"). ``settled()`` says when every change made so far is in force: the
HTTP API waits for it after each operation, so whatever a call granted or took away holds when
its caller hears back.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path

from ..identity import pki
from ..identity.policies import Statement
from ..identity.service import AccessChange, Grant, IdentityService
from . import acl
from .acl_feed import AclFeed
from .process import Broker
from .watch import BrokerWatch

log = logging.getLogger(__name__)

#: How long a change may wait for the broker's acknowledgement before the API answers anyway.
ACK_TIMEOUT_S = 10.0
#: Certificates recompiled between two turns of the event loop.
STEP = 500


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


class AccessManager:
    def __init__(
        self,
        identity: IdentityService,
        ca: Callable[[], pki.Issued],
        crl_file: Path,
        feed: AclFeed,
    ) -> None:
        self._identity = identity
        self._ca = ca
        self._crl_file = crl_file
        self._feed = feed
        self._broker: Broker | None = None
        self._watch: BrokerWatch | None = None
        self._requested = 0
        self._applied = 0
        self._revoked: set[str] = set()
        self._dirty: set[str] = set()
        self._everything = False
        self._crl_changed = False
        self._needs_live: set[str] = set()
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._worker: asyncio.Task[None] | None = None
        #: CN -> (ids of its statements, subject) and the section compiled from them: a fleet
        #: shares a few parsed documents, and most certificates did not change since last time.
        self._compiled: dict[str, tuple[tuple[tuple[int, ...], acl.Subject], list[Statement], acl.CertificateAcl]] = {}

    def attach(self, broker: Broker, watch: BrokerWatch) -> None:
        """Start applying changes to ``broker`` (before this, only the table and the CRL are kept)."""
        self._broker = broker
        self._watch = watch

    def prepare(self) -> None:
        """Compile every certificate's entries and write the CRL: what a starting broker is given."""
        self._feed.update(self._recompile(None))
        self._write_crl()

    # triggers ----------------------------------------------------------------------------------
    def on_change(self, change: AccessChange) -> None:
        """Identity listener: something some certificates may do changed."""
        self._revoked |= change.revoked_common_names
        if change.common_names is None:
            self._everything = True
        else:
            self._dirty |= change.common_names
        self._crl_changed |= change.crl_changed
        self._request()

    def on_client(self, common_name: str) -> None:
        """Watch listener: recompile only if this certificate's ACL depends on its live client ids."""
        if common_name in self._needs_live:
            self._dirty.add(common_name)
            self._request()

    def _request(self) -> None:
        self._requested += 1
        if self._worker is None or self._worker.done():
            self._worker = asyncio.get_running_loop().create_task(self._apply(), name="broker-access")

    def settled(self) -> asyncio.Future[None] | None:
        """None if every change requested so far is in force on the broker, else a future that
        resolves once it is (no task or future at all on the common path: nothing changed)."""
        if self._applied >= self._requested:
            return None
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((self._requested, waiter))
        return waiter

    # the work ----------------------------------------------------------------------------------
    def _subject(self, grant_cn: str, region: str, account: str, things: tuple[str, ...]) -> acl.Subject:
        live = tuple(self._watch.clients_of(grant_cn)) if self._watch else ()
        return acl.Subject(grant_cn, region, account, things, live)

    def _recompile(self, common_names: Iterable[str] | None) -> dict[str, bytes | None]:
        """The new entries of these certificates (None: every certificate), None for those that
        have no rights any more (not ACTIVE, deleted) or none yet."""
        names = None if common_names is None else set(common_names)
        out, granted = self._start(names), set[str]()
        self._compile(self._identity.grants(names), out, granted)
        self._finish(names, out, granted)
        return out

    async def _recompile_in_steps(self, common_names: Iterable[str] | None) -> dict[str, bytes | None]:
        """``_recompile``, letting the event loop run between every ``STEP`` certificates: a change
        that reaches a whole fleet (a group's policy, a new default version) recompiles thousands."""
        names = None if common_names is None else set(common_names)
        out, granted = self._start(names), set[str]()
        grants = self._identity.grants(names)
        while True:
            step = list(itertools.islice(grants, STEP))
            self._compile(step, out, granted)
            if len(step) < STEP:
                break
            # Whatever changes meanwhile marks its certificates for the next round.
            await asyncio.sleep(0)
        self._finish(names, out, granted)
        return out

    def _start(self, names: set[str] | None) -> dict[str, bytes | None]:
        return {cn: None for cn in (self._feed.table if names is None else names)}

    def _compile(self, grants: Iterable[Grant], out: dict[str, bytes | None], granted: set[str]) -> None:
        for grant in grants:
            granted.add(grant.common_name)
            subject = self._subject(grant.common_name, self._identity.region, self._identity.account, grant.things)
            # Parsed statements are shared (policy_book parses each document once) but not
            # hashable (conditions are dicts): the key holds their ids, the value keeps them alive.
            key = (tuple(map(id, grant.statements)), subject)
            found = self._compiled.get(grant.common_name)
            compiled = found[2] if found is not None and found[0] == key else acl.compile_acl(grant.statements, subject)
            self._compiled[grant.common_name] = (key, grant.statements, compiled)
            if compiled.needs_live_client_ids:
                self._needs_live.add(grant.common_name)
            else:
                self._needs_live.discard(grant.common_name)
            # No entries and no entry at all deny the same: a certificate that may do nothing yet
            # (attached to its thing before the thing joins its group) costs the broker nothing.
            out[grant.common_name] = (compiled.entries_text() or None) if " " not in grant.common_name else None

    def _finish(self, names: set[str] | None, out: dict[str, bytes | None], granted: set[str]) -> None:
        considered = self._compiled.keys() | self._needs_live if names is None else names
        for cn in considered - granted:  # not ACTIVE any more, or deleted
            self._compiled.pop(cn, None)
            self._needs_live.discard(cn)

    def _write_crl(self) -> None:
        self._crl_file.parent.mkdir(parents=True, exist_ok=True)
        _write_atomically(self._crl_file, pki.new_crl(self._ca(), self._identity.revoked_serials()))

    async def _apply(self) -> None:
        while self._applied < self._requested:
            target = self._requested
            revoked, self._revoked = self._revoked, set()
            dirty, self._dirty = self._dirty, set()
            everything, self._everything = self._everything, False
            crl_changed, self._crl_changed = self._crl_changed, False
            try:
                acked = self._feed.update(await self._recompile_in_steps(None if everything else dirty))
                if crl_changed:
                    self._write_crl()
                    if self._broker is not None and self._watch is not None:
                        await self._watch.reload(self._broker.reload)
                if acked is not None:
                    try:
                        await asyncio.wait_for(asyncio.shield(acked), ACK_TIMEOUT_S)
                    except asyncio.TimeoutError:
                        log.warning("the broker did not acknowledge an ACL update within %.0f s", ACK_TIMEOUT_S)
                if self._watch is not None:
                    for common_name in revoked:
                        for client_id in self._watch.clients_of(common_name):
                            self._watch.kick(client_id)
            except Exception:  # keep serving; the next change tries again
                log.exception("could not update the broker's ACL and CRL")
            self._applied = target
            still_waiting = []
            for wanted, waiter in self._waiters:
                if wanted <= self._applied:
                    if not waiter.done():
                        waiter.set_result(None)
                else:
                    still_waiting.append((wanted, waiter))
            self._waiters = still_waiting
