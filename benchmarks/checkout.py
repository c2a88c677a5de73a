"""``--compare``: the service of another commit, checked out with ``git worktree`` in a temporary
directory (removed at the end), or another checkout's ``src`` directory given as a path."""

from __future__ import annotations

import contextlib
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from harness import HERE


@contextlib.contextmanager
def compared_source(spec: str) -> Iterator[Path]:
    """The ``src`` directory to run the compared service from: ``spec`` itself if it is a directory
    holding ``iot_jobs_local``, else a git revision of this repository checked out for the run."""
    path = Path(spec)
    if path.is_dir():
        src = path / "src" if (path / "src" / "iot_jobs_local").is_dir() else path
        if not (src / "iot_jobs_local").is_dir():
            raise SystemExit(f"--compare {spec}: no iot_jobs_local package there (give a src directory or a revision)")
        yield src.resolve()
        return
    repo = HERE.parent
    found = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "--verify", "--quiet", f"{spec}^{{commit}}"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if found.returncode != 0:
        raise SystemExit(f"--compare {spec}: neither a directory nor a git revision of {repo}")
    with tempfile.TemporaryDirectory(prefix="bench-compare-") as tmp:
        tree = Path(tmp) / "tree"
        subprocess.run(
            ["git", "-C", str(repo), "worktree", "add", "--detach", "--quiet", str(tree), found.stdout.strip()],
            check=True,
        )
        try:
            yield tree / "src"
        finally:
            subprocess.run(["git", "-C", str(repo), "worktree", "remove", "--force", str(tree)], check=False)
