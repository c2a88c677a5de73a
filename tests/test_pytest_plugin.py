"""The packaged pytest plugin and ``LocalService``, used as a user would: a small test project
(the example of docs/testing-your-device.md) written into a temporary directory and run with
pytest in a subprocess."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "testing-your-device.md"


def doc_examples() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), re.DOTALL)


def run_pytest(project: Path, *args: str, timeout: float = 180.0) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
        # Only the plugin under test, loaded by name (an installed entry point would load it twice).
        "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
    }
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "iot_jobs_local.testing.pytest_plugin",
            "-q",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(project),
            *args,
        ],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def test_the_documented_example_passes_with_the_plugin(tmp_path: Path) -> None:
    tests, _script = doc_examples()
    (tmp_path / "test_my_device.py").write_text(tests)
    result = run_pytest(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout


def test_the_fixtures_are_inert_unless_asked_for(tmp_path: Path) -> None:
    (tmp_path / "test_plain.py").write_text(
        "import os\n"
        "from pathlib import Path\n\n"
        "def test_nothing_started():\n"
        "    pid = os.getpid()\n"
        "    children = Path(f'/proc/{pid}/task/{pid}/children').read_text().split()\n"
        "    assert children == [], children\n"
    )
    result = run_pytest(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout


def test_reset_fixture_and_serve_arguments(tmp_path: Path) -> None:
    (tmp_path / "test_reset.py").write_text(
        "def test_first(iot_client, unique_name):\n"
        "    iot_client.create_thing(thingName=unique_name('thing'))\n"
        "    assert iot_client.list_things()['things']\n\n"
        "def test_then_empty(iot_jobs_local_reset, iot_client):\n"
        "    assert iot_client.list_things()['things'] == []  # the same client works after the reset\n"
        "    assert iot_jobs_local_reset.info.time_scale == 60\n"
    )
    result = run_pytest(tmp_path, "--iot-jobs-local-arg=--time-scale=60")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout


def test_the_documented_python_api_example_runs(tmp_path: Path) -> None:
    _tests, script = doc_examples()
    (tmp_path / "harness.py").write_text(script)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    result = subprocess.run(
        [sys.executable, "harness.py"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1] == "hello"


def test_the_plugin_is_declared_as_a_pytest11_entry_point() -> None:
    tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from Python 3.11")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["entry-points"]["pytest11"] == {"iot_jobs_local": "iot_jobs_local.testing.pytest_plugin"}


def test_the_installed_package_registers_the_plugin() -> None:
    """What pytest itself reads (any Python the package supports): the installed entry points."""
    found = {ep.name: ep.value for ep in metadata.entry_points(group="pytest11") if ep.name == "iot_jobs_local"}
    if not found:
        pytest.skip("the package is not installed here (only on PYTHONPATH): no entry points to read")
    assert found == {"iot_jobs_local": "iot_jobs_local.testing.pytest_plugin"}


def test_a_failing_test_shows_the_tail_of_the_service_log(tmp_path: Path) -> None:
    (tmp_path / "test_fails.py").write_text(
        "def test_fails(iot_client):\n    iot_client.list_jobs()\n    assert False, 'on purpose'\n"
    )
    result = run_pytest(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "iot-jobs-local log tail (" in result.stdout
    assert "iot-jobs-local ready: mqtts://localhost:" in result.stdout
