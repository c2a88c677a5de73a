"""CreateKeysAndCertificate makes its RSA keys in worker processes: they must never outlive the
service, even when it is killed with SIGKILL and has no chance to stop them."""

from __future__ import annotations

from collections.abc import Callable

from support.processes import ExitWatch, pids_with_cmdline, process_parent
from support.service import ServiceProcess


def _descends_from(pid: int, root: int) -> bool:
    while pid > 1:
        parent = process_parent(pid)
        if parent is None:
            return False
        if parent == root:
            return True
        pid = parent
    return False


def test_key_workers_die_with_a_killed_service(service_factory: Callable[..., ServiceProcess]) -> None:
    svc = service_factory()
    made = svc.iot().create_keys_and_certificate(setAsActive=False)
    assert made["keyPair"]["PrivateKey"].startswith("-----BEGIN")
    assert svc.pid is not None
    root = svc.pid
    workers = [pid for pid in pids_with_cmdline("multiprocessing") if _descends_from(pid, root)]
    assert workers, "no key worker process found under the service"
    watches = [ExitWatch(pid) for pid in workers]
    try:
        svc.kill9()
        left = [w.pid for w in watches if not w.wait(15)]
    finally:
        for w in watches:
            w.close()
    assert not left, f"key workers outlived the service: {left}"
