"""Everything the service keeps in its state directory is private to its user (0600 / 0700)."""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path

from support.common import unique
from support.service import ServiceProcess


def loose(root: Path) -> list[str]:
    return [
        f"{path.relative_to(root)} {stat.filemode(path.lstat().st_mode)}"
        for path in [root, *root.rglob("*")]
        if not path.is_symlink() and path.lstat().st_mode & 0o077
    ]


def test_the_state_directory_is_private(service: ServiceProcess) -> None:
    service.provision(unique("private"))  # device files too
    assert loose(service.state_dir) == []


def test_files_an_older_version_left_readable_are_made_private(
    service_factory: Callable[[], ServiceProcess],
) -> None:
    svc = service_factory()
    svc.provision(unique("old"))
    svc.stop()
    (svc.state_dir / "pki" / "ca.crt").chmod(0o644)
    (svc.state_dir / "devices").chmod(0o755)
    assert loose(svc.state_dir) != []
    svc.start()
    assert loose(svc.state_dir) == []
