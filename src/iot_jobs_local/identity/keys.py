"""RSA-2048 keys for CreateKeysAndCertificate, made in worker processes.

Making one costs ~55 ms of CPU (more on a busy machine) and ``cryptography`` holds the GIL while it
does: made on the event loop, a fleet's keys would stall every other request for minutes. The
workers start on first use, die with the service (``PR_SET_PDEATHSIG``), and are as many as the
machine has cores (the service's own loop keeps running meanwhile).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import multiprocessing
import os
import signal
from concurrent.futures import ProcessPoolExecutor

from . import pki

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    with contextlib.suppress(OSError, AttributeError):  # not Linux: the pool's shutdown stops them
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the service's to handle


class KeyMaker:
    def __init__(self, workers: int | None = None) -> None:
        self._workers = workers or os.cpu_count() or 1
        self._pool: ProcessPoolExecutor | None = None

    async def rsa_key_pair(self) -> pki.KeyPair:
        if self._pool is None:
            # spawn: the service has threads (SQLite, the resolver), which fork does not copy safely; and
            # the workers must be the service's own children for PR_SET_PDEATHSIG to stop them when it
            # dies (a forkserver outlived a kill -9 of the service, and kept its workers alive with it).
            context = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(self._workers, mp_context=context, initializer=_die_with_parent)
        return await asyncio.get_running_loop().run_in_executor(self._pool, pki.new_rsa_key_pair)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
