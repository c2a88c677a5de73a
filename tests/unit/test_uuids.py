"""``iot_jobs_local.engine.uuids.random_uuid``: the text of a random version 4 UUID."""

from __future__ import annotations

import uuid

from iot_jobs_local.engine.uuids import random_uuid


def test_random_uuids_are_version_4_rfc_4122_in_canonical_text() -> None:
    seen = set()
    for _ in range(2000):
        text = random_uuid()
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
        seen.add(text)
    assert len(seen) == 2000
