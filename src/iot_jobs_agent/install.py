"""``--install-handlers``: the shipped handlers (``shipped/*.sh``) into the handler directory, mode 700."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from .handlers import Refused, check_directory


def install_handlers(directory: Path) -> list[str]:
    """Copy every shipped handler that is not there yet; never overwrite one (it may be the user's own)."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    check_directory(directory)
    done = []
    for item in sorted(resources.files(__package__).joinpath("shipped").iterdir(), key=lambda i: i.name):
        if not item.name.endswith(".sh"):
            continue
        target = directory / item.name
        if os.path.lexists(target):
            done.append(f"kept {target} (already there)")
            continue
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o700)
        with os.fdopen(fd, "wb") as out:
            out.write(item.read_bytes())
        os.chmod(target, 0o700)
        done.append(f"installed {target}")
    if not done:
        raise Refused("no shipped handlers found in the package")
    return done
