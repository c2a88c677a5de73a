"""Keep the broker's device ACL and CRL in step with certificates and policies, without a restart.

On every identity change the manager regenerates both files from the database, sends SIGHUP and
waits until Mosquitto has reloaded them (``BrokerWatch.reload``); then it closes the connections of
certificates that stopped being ACTIVE (AWS closes them too, "within a few minutes"). Changes
that arrive while a reload runs are folded into the next one, so a burst costs one reload per
round. ``settled()`` says when every change made so far is in force: the HTTP API waits for it
after each operation, so a caller that attached a policy can rely on it at once.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from pathlib import Path

from ..identity import pki
from ..identity.policies import Statement
from ..identity.service import AccessChange, IdentityService
from . import acl
from .process import Broker
from .watch import BrokerWatch

log = logging.getLogger(__name__)


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


class AccessManager:
    def __init__(
        self,
        identity: IdentityService,
        ca: Callable[[], pki.Issued],
        acl_file: Path,
        crl_file: Path,
    ) -> None:
        self._identity = identity
        self._ca = ca
        self._acl_file = acl_file
        self._crl_file = crl_file
        self._broker: Broker | None = None
        self._watch: BrokerWatch | None = None
        self._requested = 0
        self._applied = 0
        self._revoked: set[str] = set()
        self._needs_live: frozenset[str] = frozenset()
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._worker: asyncio.Task[None] | None = None
        self._compiled: dict[tuple[tuple[int, ...], acl.Subject], tuple[list[Statement], acl.CertificateAcl]] = {}

    def attach(self, broker: Broker, watch: BrokerWatch) -> None:
        """Start reloading ``broker`` on changes (before this, only the files are written)."""
        self._broker = broker
        self._watch = watch

    def write_files(self) -> None:
        live = self._watch.live_client_ids() if self._watch else {}
        cache, self._compiled = self._compiled, {}
        acls = []
        for grant in self._identity.grants():
            subject = acl.Subject(
                grant.common_name,
                self._identity.region,
                self._identity.account,
                grant.things,
                tuple(live.get(grant.common_name, ())),
            )
            # Compiling is the costly part and most certificates did not change since the last
            # rebuild: reuse the section of any whose statements and subject are the same. Parsed
            # statements are shared (policy_book parses each document once) but not hashable
            # (conditions are dicts): the key holds their ids, the value keeps them alive.
            key = (tuple(map(id, grant.statements)), subject)
            found = cache.get(key)
            compiled = found[1] if found is not None else acl.compile_acl(grant.statements, subject)
            self._compiled[key] = (grant.statements, compiled)
            acls.append(compiled)
        self._acl_file.parent.mkdir(parents=True, exist_ok=True)
        _write_atomically(self._acl_file, acl.render(acls).encode())
        _write_atomically(self._crl_file, pki.new_crl(self._ca(), self._identity.revoked_serials()))
        self._needs_live = frozenset(a.common_name for a in acls if a.needs_live_client_ids)

    # triggers ----------------------------------------------------------------------------------
    def on_change(self, change: AccessChange) -> None:
        """Identity listener: something a certificate may do changed."""
        self._revoked |= change.revoked_common_names
        self._request()

    def on_client(self, common_name: str) -> None:
        """Watch listener: rebuild only if this certificate's ACL depends on its live client ids."""
        if common_name in self._needs_live:
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
    async def _apply(self) -> None:
        while self._applied < self._requested:
            target = self._requested
            revoked, self._revoked = self._revoked, set()
            try:
                self.write_files()
                if self._broker is not None and self._watch is not None:
                    await self._watch.reload(self._broker.reload)
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
