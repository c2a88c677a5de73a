"""How many devices the broker is configured for, and the soft open-file limit set for them."""

from __future__ import annotations

import pytest

from iot_jobs_local.broker import limits


def test_the_plan_raises_the_soft_limit_and_lowers_only_the_default() -> None:
    assert limits.plan(None, 1024, 1_048_576) == (10_000, 10_256)
    assert limits.plan(500, 1024, 4096) == (500, 1024)  # already enough: left as it is
    assert limits.plan(None, 1024, 4096) == (4096 - 256, 4096)
    with pytest.raises(limits.LimitError, match="hard limit is 4096"):
        limits.plan(5000, 1024, 4096)
