"""Request routing (``iot_jobs_local.http_api.routes``) on the botocore models, memo included."""

from __future__ import annotations

import pytest

from iot_jobs_local.http_api.routes import BadRequest, RouteTable, load_routes


@pytest.fixture(scope="module")
def iot() -> RouteTable:
    return load_routes("iot")


@pytest.fixture(scope="module")
def data() -> RouteTable:
    return load_routes("iot-jobs-data")


def name(table: RouteTable, method: str, path: str, query: dict[str, str] | None = None) -> str | None:
    found = table.match(method, path, query or {})
    return None if found is None else found[0].name


def test_methods_on_one_path_pick_their_operations(iot: RouteTable) -> None:
    assert name(iot, "POST", "/things/t1") == "CreateThing"
    assert name(iot, "GET", "/things/t1") == "DescribeThing"
    assert name(iot, "PATCH", "/things/t1") == "UpdateThing"
    assert name(iot, "DELETE", "/things/t1") == "DeleteThing"
    assert name(iot, "PUT", "/jobs/j1") == "CreateJob"
    assert name(iot, "GET", "/jobs/j1") == "DescribeJob"


def test_labels_are_decoded_and_literals_win(iot: RouteTable, data: RouteTable) -> None:
    found = iot.match("GET", "/things/a%3Ab", {})
    assert found is not None and found[1] == {"thingName": "a:b"}
    assert name(data, "GET", "/things/t1/jobs") == "GetPendingJobExecutions"
    assert name(data, "PUT", "/things/t1/jobs/$next") == "StartNextPendingJobExecution"
    assert name(data, "GET", "/things/t1/jobs/j1") == "DescribeJobExecution"


def test_a_query_does_not_change_the_route_and_is_not_memoised(iot: RouteTable) -> None:
    before = len(iot._memo)
    assert name(iot, "GET", "/things/t1/principals", {"maxResults": "2"}) == "ListThingPrincipals"
    assert len(iot._memo) == before


def test_other_methods_on_a_known_path_are_refused_and_unknown_paths_are_none(iot: RouteTable) -> None:
    with pytest.raises(BadRequest, match="Method PUT is not allowed"):
        iot.match("PUT", "/things/t1", {})
    with pytest.raises(BadRequest):  # asked twice: a refusal is not remembered as "no route"
        iot.match("PUT", "/things/t1", {})
    assert iot.match("GET", "/no-such-resource/x", {}) is None
    assert iot.match("GET", "/no-such-resource/x", {}) is None


def test_memo_answers_like_a_fresh_match_and_hands_out_copies(iot: RouteTable) -> None:
    first = iot.match("GET", "/jobs/j%2D1", {})
    assert first is not None
    first[1]["jobId"] = "changed by a caller"
    again = iot.match("GET", "/jobs/j%2D1", {})
    assert again is not None and again[0] is first[0] and again[1] == {"jobId": "j-1"}


def test_memo_starts_afresh_when_full() -> None:
    table = load_routes("iot")
    table.MEMO_SIZE = 8  # type: ignore[misc]
    for i in range(20):
        assert name(table, "GET", f"/things/t{i}") == "DescribeThing"
    assert len(table._memo) <= 8
