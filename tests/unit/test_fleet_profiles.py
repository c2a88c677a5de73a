"""The fleet's pure parts: profiles (parsing, errors with their line), assignment, draws, the status line."""

from __future__ import annotations

import random
from collections import Counter

import pytest
import tomllib

from iot_jobs_fleet import profiles
from iot_jobs_fleet.profiles import Distribution, ProfileError, Share
from iot_jobs_fleet.stats import FleetStats, status_line

GOOD = """
seed = 11

[[share]]
name = "healthy"
fraction = 0.7
duration = "between 5 20"

[[share]]
name = "flaky"
fraction = 0.3
outcome = { fail = 0.5, reject = 0.2, hang = 0.3 }
step_timeout = 2
progress = 3
drop = 0.25
reconnect_after = "exponential 10"
offline = "constant 60"
"""


def test_a_profile_file_is_read_into_shares() -> None:
    profile = profiles.parse(GOOD, tomllib.loads)
    assert profile.seed == 11
    healthy, flaky = profile.shares
    assert healthy == Share("healthy", 0.7, duration=Distribution("between", 5, 20))
    assert flaky.outcome == (("fail", 0.5), ("reject", 0.2), ("hang", 0.3))
    assert (flaky.step_timeout, flaky.progress, flaky.drop) == (2, 3, 0.25)
    assert flaky.reconnect_after == Distribution("exponential", 10)
    assert flaky.offline == Distribution("constant", 60)


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ('[[share]]\nname = "a"\nfraction = 1\noutcome = "explode"\n', 4, 'outcome: outcome "explode" is not one of'),
        ('[[share]]\nname = "a"\nfraction = 1\noutcome = { fail = 0.5 }\n', 4, "outcome shares add up to 0.5"),
        ('[[share]]\nname = "a"\nfraction = 1\nduration = "between 9 3"\n', 4, "MAX is below MIN"),
        ('[[share]]\nname = "a"\nfraction = 1\nduration = -1\n', 4, "not negative"),
        ('[[share]]\nname = "a"\nfraction = 1\nprogress = 1.5\n', 4, "whole number"),
        ('[[share]]\nname = "a"\nfraction = 1\noutcome = "hang"\n', 1, "hangs but has no step_timeout"),
        ('[[share]]\nname = "a"\nfraction = 1\n\n[[share]]\nname = "a"\nfraction = 0\n', 1, "used twice"),
        ("[[share]]\nfraction = 1\n", 1, "a share needs 'name'"),
        ("color = 3\n[[share]]\nname = 'a'\nfraction = 1\n", 1, "unknown top-level key 'color'"),
        ('seed = "x"\n[[share]]\nname = "a"\nfraction = 1\n', 1, "seed must be a whole number"),
        ("", 0, "no [[share]]"),
        ('[[share]]\nname = "a"\n\n\nfraction = 1\nfraction = 1\n', 6, "Cannot overwrite a value"),
    ],
)
def test_profile_errors_name_their_line(text: str, line: int, reason: str) -> None:
    with pytest.raises(ProfileError) as caught:
        profiles.parse(text, tomllib.loads)
    assert caught.value.line == line
    assert reason in caught.value.reason
    assert caught.value.describe("p.toml").startswith(f"p.toml:{line}: " if line else "p.toml: ")


def test_distributions() -> None:
    rng = random.Random(1)
    assert profiles.parse_distribution(5) == Distribution("constant", 5.0)
    assert profiles.parse_distribution("2.5") == Distribution("constant", 2.5)
    between = profiles.parse_distribution(" between 2 10 ")
    assert all(2 <= between.draw(rng) <= 10 for _ in range(100))
    mean = sum(profiles.parse_distribution("exponential 4").draw(rng) for _ in range(4000)) / 4000
    assert 3.5 < mean < 4.5
    for bad in ("between 2", "constant 1 2", "later", True, [1]):
        with pytest.raises(ValueError):
            profiles.parse_distribution(bad)


def test_the_same_seed_gives_the_same_assignment_and_the_shares_are_exact() -> None:
    shares = profiles.parse(GOOD, tomllib.loads).shares
    first = profiles.assign(shares, 1000, seed=3)
    assert first == profiles.assign(shares, 1000, seed=3)
    assert first != profiles.assign(shares, 1000, seed=4)
    assert Counter(first) == {0: 700, 1: 300}
    for total in range(1, 50):
        assert sum(profiles.counts(shares, total)) == total
        assert all(abs(n - s.fraction * total) < 1 for n, s in zip(profiles.counts(shares, total), shares, strict=True))


def test_every_draw_replays_with_its_seed() -> None:
    flaky = profiles.parse(GOOD, tomllib.loads).shares[1]

    def run(seed: int) -> list[tuple[float, str]]:
        out = []
        for device in range(50):
            rng = profiles.execution_rng(seed, device, 1)
            out.append((flaky.duration.draw(rng), flaky.draw_outcome(rng)))
        return out

    assert run(5) == run(5) and run(5) != run(6)
    outcomes = Counter(flaky.draw_outcome(profiles.execution_rng(1, d, n)) for d in range(200) for n in range(10))
    assert set(outcomes) == {"fail", "reject", "hang"}
    assert 0.4 < outcomes["fail"] / 2000 < 0.6


def test_flags_make_shares_with_the_rest_succeeding() -> None:
    profile = profiles.from_flags(duration="between 1 2", fail=0.1, hang=0.05, offline=0.2)
    by_name = {s.name: s for s in profile.shares}
    assert set(by_name) == {"succeed", "succeed-late", "fail", "fail-late", "hang", "hang-late"}
    assert by_name["succeed"].fraction == pytest.approx(0.85 * 0.8)
    assert by_name["hang"].step_timeout == 1  # a hang needs something to time it out
    assert by_name["fail-late"].offline == Distribution("between", 10, 60)
    with pytest.raises(ProfileError, match="more than 1"):
        profiles.from_flags(fail=0.6, reject=0.6)


def test_the_status_line() -> None:
    stats = FleetStats(total=10)
    for _ in range(10):
        stats.move(None, "offline")
    for _ in range(7):
        stats.move("offline", "idle")
    stats.move("idle", "busy")
    stats.count("SUCCEEDED", 4)
    stats.count("FAILED")
    stats.count("reconnected", 2)
    assert status_line(stats, 12.4) == (
        "fleet 12 s: connected 7/10, not yet 3, busy 1, done 5 (SUCCEEDED 4, FAILED 1), reconnects 2"
    )
