"""RFM quintile scores (with ties), the segment grid, and the RFM and member-list endpoints."""

from __future__ import annotations

import uuid

import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from setia.analytics import rfm
from setia.analytics.api import Segment
from setia.core.db import Database
from tests.analytics.test_service_members import AS_OF, random_history
from tests.conftest import TenantFixture


def test_quintiles_distinct() -> None:
    assert rfm.quintile_scores([10, 20, 30, 40, 50]).tolist() == [1, 2, 3, 4, 5]
    assert rfm.quintile_scores([50, 40, 30, 20, 10]).tolist() == [5, 4, 3, 2, 1]
    ten = rfm.quintile_scores(list(range(10)))
    assert ten.tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]


def test_quintiles_ties_take_lowest_rank() -> None:
    # four equal values rank 1 (score 1); the fifth ranks 5 -> 1 + 5*4//5 = 5
    assert rfm.quintile_scores([1, 1, 1, 1, 5]).tolist() == [1, 1, 1, 1, 5]
    # ties in the middle: ranks 1, 2, 2, 4, 5 -> 1, 2, 2, 4, 5
    assert rfm.quintile_scores([1, 2, 2, 3, 4]).tolist() == [1, 2, 2, 4, 5]
    # all equal: everyone 1
    assert rfm.quintile_scores([7, 7, 7]).tolist() == [1, 1, 1]
    assert rfm.quintile_scores([]).tolist() == []


@given(st.lists(st.integers(0, 6), min_size=1, max_size=60))
def test_quintiles_invariants(values: list[int]) -> None:
    scores = rfm.quintile_scores(values)
    assert ((scores >= 1) & (scores <= 5)).all()
    # equal values, equal scores; larger values never score lower
    for a, sa in zip(values, scores, strict=True):
        for b, sb in zip(values, scores, strict=True):
            if a == b:
                assert sa == sb
            if a < b:
                assert sa <= sb
    # independent of the input order
    perm = np.random.default_rng(len(values)).permutation(len(values))
    shuffled = rfm.quintile_scores([values[i] for i in perm])
    assert shuffled.tolist() == [int(scores[i]) for i in perm]


def test_recency_lower_is_better() -> None:
    s = rfm.score([0, 10, 20, 30, 40], [1, 1, 1, 1, 1], [5, 5, 5, 5, 5])
    assert s.r.tolist() == [5, 4, 3, 2, 1]
    assert s.f.tolist() == [1, 1, 1, 1, 1]


def test_grid_is_complete() -> None:
    assert set(rfm.DEFAULT_GRID) == {(r, fm) for r in range(1, 6) for fm in range(1, 6)}
    assert set(rfm.DEFAULT_GRID.values()) == set(rfm.SEGMENTS)
    assert {s.value for s in Segment} == set(rfm.SEGMENTS)


@pytest.mark.parametrize(
    ("r", "f", "m", "segment"),
    [
        (5, 5, 5, "champions"),
        (5, 4, 3, "champions"),  # FM = (4+3)/2 = 3.5 -> 4
        (5, 1, 1, "new"),
        (4, 5, 5, "champions"),
        (4, 4, 4, "loyal"),
        (3, 4, 5, "loyal"),
        (4, 2, 2, "potential_loyalists"),
        (4, 1, 1, "promising"),
        (3, 3, 3, "need_attention"),
        (3, 1, 2, "about_to_sleep"),
        (2, 4, 4, "at_risk"),
        (1, 5, 5, "cant_lose_them"),
        (2, 1, 1, "hibernating"),
        (1, 1, 1, "lost"),
        (1, 2, 1, "lost"),
    ],
)
def test_segment_mapping(r: int, f: int, m: int, segment: str) -> None:
    assert rfm.segment(r, f, m) == segment


def test_rfm_endpoint(db: Database, tenant: TenantFixture, client: TestClient) -> None:
    random_history(db, tenant)
    r = client.get("/v1/analytics/rfm", params={"as_of": AS_OF}, headers=tenant.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["members"] == 25
    assert sum(s["members"] for s in body["segments"]) == 25
    assert sum(s["share"] for s in body["segments"]) == pytest.approx(1.0)
    for s in body["segments"]:
        assert 1 <= s["r"]["min"] <= s["r"]["max"] <= 5
        assert s["orders"]["min"] <= s["orders"]["max"]
        assert s["name"] == rfm.SEGMENTS[s["segment"]]
    assert body["fit"]["model"] == "bgnbd"
    assert set(body["fit"]["params"]) == {"r", "alpha", "a", "b"}
    assert body["fit"]["customers"] == 25
    assert body["predictions_missing"] is None


def test_member_list_pagination_and_segment(
    db: Database, tenant: TenantFixture, client: TestClient
) -> None:
    random_history(db, tenant)
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, object] = {"as_of": AS_OF, "limit": 7}
        if cursor:
            params["cursor"] = cursor
        r = client.get("/v1/analytics/members", params=params, headers=tenant.headers)
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page["data"]) <= 7
        seen += [m["member_id"] for m in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 25
    assert len(set(seen)) == 25
    assert [uuid.UUID(s) for s in seen] == sorted(uuid.UUID(s) for s in seen)

    counts = {
        s["segment"]: s["members"]
        for s in client.get(
            "/v1/analytics/rfm", params={"as_of": AS_OF}, headers=tenant.headers
        ).json()["segments"]
    }
    for seg, n in counts.items():
        r = client.get(
            "/v1/analytics/members",
            params={"as_of": AS_OF, "segment": seg, "limit": 500},
            headers=tenant.headers,
        )
        data = r.json()["data"]
        assert len(data) == n
        assert all(m["segment"] == seg for m in data)
