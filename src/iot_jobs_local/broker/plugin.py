"""The CONNECT-time plugin (``connect_auth.c``): compiled once per source and Mosquitto version,
kept in the user's cache directory, and refused if anyone but us could have changed it.

Mosquitto loads the plugin into a process that holds the device port, so a plugin file another
user could write would be a way in: the cache directory is created 0700, and a file or directory
that group or others may write, or that someone else owns, is rebuilt in a fresh private place.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

SOURCE = Path(__file__).with_name("connect_auth.c")
BUILD_HINT = "sudo apt-get install -y gcc libc6-dev mosquitto-dev libmosquitto-dev libssl-dev   (Debian/Ubuntu)"
COMPILE_FLAGS = ("-O2", "-Wall", "-fPIC", "-shared", "-pthread")


class PluginError(RuntimeError):
    """The plugin could not be built (no compiler, no headers) or its cache is not private."""


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "iot-jobs-local"


def _private(path: Path) -> bool:
    """Ours, and nobody else may write it."""
    info = path.lstat()
    return (
        not stat.S_ISLNK(info.st_mode)
        and info.st_uid == os.geteuid()
        and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    )


def _compiler() -> str:
    for name in (os.environ.get("CC"), "cc", "gcc"):
        if name and shutil.which(name):
            return name
    raise PluginError(f"no C compiler found to build the broker's CONNECT plugin. Install: {BUILD_HINT}")


def plugin_path(mosquitto_version: str, directory: Path | None = None) -> Path:
    """The plugin for this Mosquitto, built now if it is not in the cache yet."""
    source = SOURCE.read_bytes()
    digest = hashlib.sha256(source + mosquitto_version.encode()).hexdigest()[:16]
    directory = directory or cache_dir()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not _private(directory):
        raise PluginError(f"{directory} is not private (owned by another user or writable by others)")
    target = directory / f"connect_auth-{digest}.so"
    if target.exists():
        if _private(target):
            return target
        target.unlink()
    with tempfile.TemporaryDirectory(dir=directory) as scratch:
        built = Path(scratch) / "connect_auth.so"
        command = [_compiler(), *COMPILE_FLAGS, "-o", str(built), str(SOURCE), "-lcrypto"]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            first = (result.stderr.strip().splitlines() or ["(no output)"])[0]
            raise PluginError(f"could not build the broker's CONNECT plugin ({first}). Install: {BUILD_HINT}")
        built.chmod(0o700)
        os.replace(built, target)
    return target
