"""CreateKeysAndCertificate makes its RSA keys in worker processes: they must never outlive the
service, even when it is killed with SIGKILL and has no chance to stop them."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from support.service import ServiceProcess


def _descendants(root: int) -> set[int]:
    """Every process whose chain of parents leads to ``root`` (read from /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry.name)] = int(fields[1])
    found, frontier = set(), {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _python_children(service: ServiceProcess) -> set[int]:
    assert service.pid is not None
    pids = set()
    for pid in _descendants(service.pid):
        try:
            if b"multiprocessing" in Path(f"/proc/{pid}/cmdline").read_bytes():
                pids.add(pid)
        except OSError:
            continue
    return pids


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] if Path(f"/proc/{pid}").exists() else "X"
    return state != "Z"


def test_key_workers_die_with_a_killed_service(service_factory: Callable[..., ServiceProcess]) -> None:
    svc = service_factory()
    made = svc.iot().create_keys_and_certificate(setAsActive=False)
    assert made["keyPair"]["PrivateKey"].startswith("-----BEGIN")
    workers = _python_children(svc)
    assert workers, "no key worker process found under the service"
    svc.kill9()
    deadline = time.monotonic() + 15
    while (left := {pid for pid in workers if _alive(pid)}) and time.monotonic() < deadline:
        time.sleep(0.05)  # polling the process table: there is no event for another process's exit
    assert not left, f"key workers outlived the service: {sorted(left)}"
