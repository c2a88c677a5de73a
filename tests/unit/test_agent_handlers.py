"""The safe-to-repeat mark of a handler (the restart policy's second source besides ``safeToRepeat``)."""

from __future__ import annotations

from pathlib import Path

from iot_jobs_agent import handlers
from iot_jobs_agent.documents import parse


def _dir(tmp_path: Path) -> Path:
    directory = tmp_path / "h"
    directory.mkdir(mode=0o700)
    return directory


def _handler(directory: Path, name: str, text: str) -> None:
    path = directory / name
    path.write_text(text)
    path.chmod(0o700)


def test_the_mark_near_the_top_makes_a_handler_safe_to_repeat(tmp_path: Path) -> None:
    directory = _dir(tmp_path)
    _handler(directory, "twice.sh", "#!/bin/sh\n# iot-jobs-agent: safe-to-repeat\nexit 0\n")
    _handler(directory, "once.sh", "#!/bin/sh\n# iot-jobs-agent: safe-to-repeat (not quite)\nexit 0\n")
    _handler(directory, "late.sh", "#!/bin/sh\n" + "#\n" * 600 + "# iot-jobs-agent: safe-to-repeat\n")
    policy = handlers.Policy(handler_dir=directory.resolve())
    names = ("twice.sh", "once.sh", "late.sh")
    steps = [{"action": {"name": n, "type": "runHandler", "input": {"handler": n}}} for n in names]
    plan = parse({"version": "1.0", "steps": steps})
    assert [handlers.prepare(policy, a).safe_to_repeat for a in plan.actions] == [True, False, False]


def test_the_shipped_reboot_handler_is_marked() -> None:
    shipped = Path(handlers.__file__).parent / "shipped"
    assert handlers.declares_safe_to_repeat(shipped / "reboot.sh")
    assert not handlers.declares_safe_to_repeat(shipped / "install-packages.sh")
