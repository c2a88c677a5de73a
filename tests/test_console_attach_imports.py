"""Attaching a console to a running iot-jobs-local imports neither the service nor boto3/cryptography."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from iot_jobs_local.testing import LocalService


def _console(state: Path, *python_flags: str) -> subprocess.CompletedProcess[str]:
    args = ["--local", "--state-dir", str(state), "--thing", "attach-thing"]
    env = {**os.environ, "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, *python_flags, "-m", "iot_jobs", *args],
        input="",
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def test_attaching_with_an_issued_certificate_skips_the_heavy_imports(tmp_path: Path) -> None:
    with LocalService(tmp_path / "state") as svc:
        first = _console(svc.state.root)  # provisions the thing
        assert first.returncode == 0, first.stderr
        assert svc.state.device_cert("attach-thing").is_file()
        again = _console(svc.state.root, "-X", "importtime")
        assert again.returncode == 0, again.stderr
        imported = {line.rsplit("|", 1)[-1].strip() for line in again.stderr.splitlines() if "import time:" in line}
        for heavy in ("botocore", "cryptography", "iot_jobs_local.service", "iot_jobs_local.engine"):
            assert heavy not in imported, heavy
