"""RSA-2048 device keys made ahead of time in worker processes (CreateKeysAndCertificate).

One RSA-2048 key costs about 55 ms of CPU and ``cryptography`` holds the GIL while making it, so
made on the request it stalls the service's single event loop for every other caller. The pool
keeps up to ``depth`` keys ready, made by a process pool that starts on the first request (a
service that never makes a key never starts one); a request takes a ready key, or makes one
itself when none is (the first request, or a burst faster than the workers), so the answer never
waits on the pool. Keys are PEM bytes (PKCS#1, as AWS returns them), held only in memory.
"""

from __future__ import annotations

import collections
import concurrent.futures
import multiprocessing
import os
import threading

from . import pki


class KeyPool:
    def __init__(self, depth: int = 64, workers: int | None = None) -> None:
        self._depth = depth
        self._workers = workers or max(1, (os.cpu_count() or 2) - 1)  # leave a core to the event loop
        self._ready: collections.deque[bytes] = collections.deque()
        self._lock = threading.Lock()
        self._in_flight = 0
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        self._closed = False

    def take(self) -> bytes:
        """A fresh RSA-2048 private key (PEM), never handed out twice."""
        try:
            key = self._ready.popleft()
        except IndexError:
            key = None
        self._refill()
        return key if key is not None else pki.new_rsa_key_pem()

    def _refill(self) -> None:
        with self._lock:
            if self._closed:
                return
            if self._pool is None:
                # spawn, not fork: the service has threads (fork would copy their locks mid-use)
                self._pool = concurrent.futures.ProcessPoolExecutor(
                    self._workers, mp_context=multiprocessing.get_context("spawn")
                )
            missing = self._depth - len(self._ready) - self._in_flight
            for _ in range(max(0, missing)):
                self._in_flight += 1
                self._pool.submit(pki.new_rsa_key_pem).add_done_callback(self._done)

    def _done(self, future: concurrent.futures.Future[bytes]) -> None:
        with self._lock:
            self._in_flight -= 1
        if not future.cancelled() and future.exception() is None:
            self._ready.append(future.result())

    def close(self) -> None:
        """Stop the workers (keys not handed out are dropped)."""
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        self._ready.clear()
