"""policies/control-plane-iam-policy.json allows every control-plane operation the console calls."""

from __future__ import annotations

import json
import re
from pathlib import Path

import iot_jobs.control_plane

ROOT = Path(__file__).resolve().parents[2]


def _operations() -> set[str]:
    source = Path(iot_jobs.control_plane.__file__).read_text()
    return set(re.findall(r'_call\(\s*"([A-Za-z]+)"', source))


def test_policy_covers_every_console_operation() -> None:
    policy = json.loads((ROOT / "policies" / "control-plane-iam-policy.json").read_text())
    allowed: set[str] = set()
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow"
        actions = statement["Action"]
        allowed.update([actions] if isinstance(actions, str) else actions)
    operations = _operations()
    assert {"CreateJob", "ListJobs", "CancelJob", "ListJobExecutionsForJob", "DescribeJob"} <= operations
    missing = sorted(f"iot:{op}" for op in operations if f"iot:{op}" not in allowed)
    assert not missing, f"policies/control-plane-iam-policy.json lacks {missing}"


def test_readme_explains_every_permission() -> None:
    policy = json.loads((ROOT / "policies" / "control-plane-iam-policy.json").read_text())
    readme = (ROOT / "policies" / "README.md").read_text()
    for statement in policy["Statement"]:
        actions = statement["Action"]
        for action in [actions] if isinstance(actions, str) else actions:
            assert f"| `{action}` |" in readme, action
