"""Saved segments over stored scores and member data, and rules reading stored fields."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from setia.analytics import labels, rfm, segments
from setia.analytics.tables import MemberScore
from setia.core.db import Database
from setia.members.models import Member
from setia.members.service import set_consent
from setia.rules.models import RuleAward
from tests.analytics.test_service_members import random_history
from tests.analytics.test_store import recompute, stored
from tests.conftest import TenantFixture, make_tenant
from tests.ledger.support import member_by_external_id, post_event, tx
from tests.rules.helpers import Api


def seg_body(key: str, flt: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return {
        "key": key,
        "names": {"id": f"Segmen {key}", "en": f"Segment {key}"},
        "descriptions": {"en": "for the tests"},
        "filter": flt,
        **kw,
    }


def create(client: TestClient, t: TenantFixture, body: dict[str, Any]) -> Any:
    return client.post("/v1/analytics/segments", json=body, headers=t.headers)


def all_members(client: TestClient, t: TenantFixture, seg_id: str, limit: int = 7) -> list[str]:
    out: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        r = client.get(f"/v1/analytics/segments/{seg_id}/members", params=params, headers=t.headers)
        assert r.status_code == 200, r.text
        page = r.json()
        out += [m["member_id"] for m in page["data"]]
        cursor = page["next_cursor"]
        if not cursor:
            return out


@pytest.fixture
def scored(db: Database, tenant: TenantFixture) -> dict[uuid.UUID, MemberScore]:
    random_history(db, tenant)
    recompute(db, tenant)
    return stored(db, tenant)


def test_segment_over_stored_fields(
    db: Database, tenant: TenantFixture, client: TestClient, scored: dict[uuid.UUID, MemberScore]
) -> None:
    target = next(iter(scored.values())).rfm_segment
    assert target is not None
    flt = {
        "all": [
            {"field": "rfm_segment", "op": "in", "value": [target]},
            {"field": "p_alive", "op": "gte", "value": 0},
        ]
    }
    r = create(client, tenant, seg_body("target", flt))
    assert r.status_code == 201, r.text
    seg = r.json()
    assert seg["names"] == {"id": "Segmen target", "en": "Segment target"}
    assert seg["program_id"] == str(tenant.program_id)
    expected = sorted(str(m) for m, row in scored.items() if row.rfm_segment == target)
    assert expected
    assert all_members(client, tenant, seg["id"], limit=2) == expected
    count = client.get(f"/v1/analytics/segments/{seg['id']}/count", headers=tenant.headers)
    assert count.json()["members"] == len(expected)
    assert count.json()["computed_at"].startswith("2026-03-01T05:00:00")
    with db.session() as s:
        ids = segments.segment_member_ids(s, tenant.tenant_id, uuid.UUID(seg["id"]))
    assert [str(i) for i in ids] == expected

    # numbers and money: clv above the median; not_in; between; a date field
    clvs = sorted(row.clv for row in scored.values() if row.clv is not None)
    median = clvs[len(clvs) // 2]
    r = create(
        client, tenant, seg_body("valuable", {"field": "clv", "op": "gt", "value": str(median)})
    )
    got = all_members(client, tenant, r.json()["id"])
    assert got == sorted(str(m) for m, row in scored.items() if row.clv and row.clv > median)
    r = create(
        client,
        tenant,
        seg_body("not-target", {"field": "rfm_segment", "op": "not_in", "value": [target]}),
    )
    # members with no stored row (none here) and other segments
    assert len(all_members(client, tenant, r.json()["id"])) == len(scored) - len(expected)
    r = create(
        client,
        tenant,
        seg_body("jan", {"field": "first_purchase_day", "op": "lt", "value": "2026-02-01"}),
    )
    got = all_members(client, tenant, r.json()["id"])
    assert got == sorted(
        str(m)
        for m, row in scored.items()
        if row.first_purchase_day is not None and row.first_purchase_day.isoformat() < "2026-02-01"
    )


def test_segment_over_member_data(
    db: Database, tenant: TenantFixture, client: TestClient, scored: dict[uuid.UUID, MemberScore]
) -> None:
    m0 = member_by_external_id(db, tenant, "m0")
    m1 = member_by_external_id(db, tenant, "m1")

    def prepare(s: Any) -> None:
        a = s.get(Member, m0)
        a.tags = ["vip", "jakarta"]
        a.attributes = {"city": "Bandung", "kids": 2}
        b = s.get(Member, m1)
        b.tags = ["vip"]
        b.locale = "en"
        set_consent(s, a, "whatsapp", True, source="test")
        set_consent(s, b, "whatsapp", True, source="test")
        set_consent(s, b, "whatsapp", False, source="test")

    tx(db, prepare)
    cases = [
        ({"field": "tags", "op": "contains", "value": "vip"}, {m0, m1}),
        (
            {
                "all": [
                    {"field": "tags", "op": "contains", "value": "vip"},
                    {"not": {"field": "tags", "op": "contains", "value": "jakarta"}},
                ]
            },
            {m1},
        ),
        ({"field": "locale", "op": "eq", "value": "en"}, {m1}),
        ({"field": "attributes.city", "op": "eq", "value": "Bandung"}, {m0}),
        ({"field": "attributes.kids", "op": "gte", "value": 1}, {m0}),
        ({"field": "consent.whatsapp", "op": "eq", "value": True}, {m0}),
        (
            {
                "any": [
                    {"field": "attributes.city", "op": "exists"},
                    {"field": "locale", "op": "eq", "value": "en"},
                ]
            },
            {m0, m1},
        ),
    ]
    for i, (flt, want) in enumerate(cases):
        r = create(client, tenant, seg_body(f"m{i}", flt))
        assert r.status_code == 201, r.text
        got = all_members(client, tenant, r.json()["id"])
        assert got == sorted(str(m) for m in want), flt
    # tier: a program without tiers gives no tier, so `exists` is false for everyone
    r = create(client, tenant, seg_body("tiered", {"field": "tier", "op": "exists"}))
    assert all_members(client, tenant, r.json()["id"]) == []
    # a member without stored scores (no order) is not in a segment on stored fields
    post_event(
        db,
        tenant,
        {"id": "signup-1", "type": "review.submitted", "member": {"external_id": "fresh"}},
    )
    fresh = member_by_external_id(db, tenant, "fresh")
    r = create(client, tenant, seg_body("alive", {"field": "p_alive", "op": "exists"}))
    assert str(fresh) not in all_members(client, tenant, r.json()["id"])
    r = create(
        client, tenant, seg_body("no-scores", {"field": "p_alive", "op": "exists", "value": False})
    )
    assert all_members(client, tenant, r.json()["id"]) == [str(fresh)]


@pytest.mark.parametrize(
    ("flt", "field", "fragment"),
    [
        ({"field": "nope", "op": "eq", "value": 1}, "filter.field", "unknown field"),
        ({"field": "clv", "op": "contains", "value": 1}, "filter.op", "does not apply"),
        ({"field": "clv", "op": "gte", "value": "lots"}, "filter.value", "expects a number"),
        ({"field": "rfm_segment", "op": "eq", "value": "vip"}, "filter.value", "unknown rfm"),
        (
            {"all": [{"field": "tags", "op": "contains", "value": "a"}, {"field": "x"}]},
            "filter.all[1].field",
            "unknown field",
        ),
        ({"all": []}, "filter.all", "non-empty"),
        ({"field": "orders", "op": "between", "value": [1]}, "filter.value", "between"),
        ({"field": "loyalty_label", "op": "in", "value": ["loyal", "fan"]}, "filter.value[1]", ""),
        ({"field": "first_purchase_day", "op": "lt", "value": "soon"}, "filter.value", "date"),
        ({"field": "consent.whatsapp", "op": "eq", "value": "yes"}, "filter.value", "true or"),
        ({"field": "orders", "op": "gt"}, "filter", "needs a value"),
        ({"field": "orders", "op": "gt", "value": 1, "extra": 2}, "filter", "unknown key"),
    ],
)
def test_filter_validation(
    db: Database,
    tenant: TenantFixture,
    client: TestClient,
    flt: dict[str, Any],
    field: str,
    fragment: str,
) -> None:
    r = create(client, tenant, seg_body("bad", flt))
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "invalid_filter"
    assert r.json()["field"] == field
    assert fragment in r.json()["detail"]
    assert client.get("/v1/analytics/segments", headers=tenant.headers).json()["data"] == []


def test_segment_crud_idempotency_and_isolation(
    db: Database, tenant: TenantFixture, client: TestClient
) -> None:
    body = seg_body("vip", {"field": "tags", "op": "contains", "value": "vip"})
    first = create(client, tenant, body)
    assert first.status_code == 201
    again = create(client, tenant, body)
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    clash = create(
        client, tenant, {**body, "filter": {"field": "locale", "op": "eq", "value": "en"}}
    )
    assert clash.status_code == 409
    assert clash.json()["code"] == "segment_key_taken"
    r = create(client, tenant, {**body, "key": "Bad Key"})
    assert r.status_code == 422
    assert r.json()["field"] == "key"
    r = create(client, tenant, {**body, "key": "x", "names": {"ms": "only malay"}})
    assert r.status_code == 422
    sid = first.json()["id"]
    r = client.put(
        f"/v1/analytics/segments/{sid}",
        json={**body, "names": {"en": "VIPs"}},
        headers=tenant.headers,
    )
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 2
    assert r.json()["names"] == {"en": "VIPs"}
    listed = client.get("/v1/analytics/segments", headers=tenant.headers).json()
    assert [s["id"] for s in listed["data"]] == [sid]

    other = make_tenant(db, name="Other")
    for method, path in (
        ("get", f"/v1/analytics/segments/{sid}"),
        ("get", f"/v1/analytics/segments/{sid}/members"),
        ("get", f"/v1/analytics/segments/{sid}/count"),
        ("delete", f"/v1/analytics/segments/{sid}"),
    ):
        assert getattr(client, method)(path, headers=other.headers).status_code == 404
    assert client.delete(f"/v1/analytics/segments/{sid}", headers=tenant.headers).status_code == 204
    assert client.get(f"/v1/analytics/segments/{sid}", headers=tenant.headers).status_code == 404


# --- rules read the stored fields ------------------------------------------------------------


def _awards(db: Database, rule_id: str) -> set[uuid.UUID]:
    def run(s: Any) -> set[uuid.UUID]:
        rows = s.execute(select(RuleAward.member_id).where(RuleAward.rule_id == uuid.UUID(rule_id)))
        return {r[0] for r in rows}

    return tx(db, run)


def _purchase(ext: str, n: str) -> dict[str, Any]:
    return {
        "id": f"after-{n}",
        "type": "purchase",
        "member": {"external_id": ext},
        "order_id": f"O-after-{n}",
        "amount": "10000",
        "currency": "IDR",
        "occurred_at": "2026-03-02T10:00:00+07:00",
    }


def test_rules_read_member_rfm_segment(
    db: Database, tenant: TenantFixture, client: TestClient, scored: dict[uuid.UUID, MemberScore]
) -> None:
    by_ext = {f"m{i}": member_by_external_id(db, tenant, f"m{i}") for i in range(25)}
    target = scored[by_ext["m0"]].rfm_segment
    inside = [e for e, m in by_ext.items() if scored[m].rfm_segment == target]
    outside = [e for e, m in by_ext.items() if scored[m].rfm_segment != target]
    assert inside
    assert outside
    api = Api(client, tenant)
    seg_rule = api.add_rule(
        name="Segment bonus",
        conditions={"field": "member.rfm_segment", "op": "eq", "value": target},
    )
    label_rule = api.add_rule(
        name="Scored bonus",
        conditions={
            "all": [
                {"field": "member.loyalty_label", "op": "exists"},
                {"field": "member.p_alive", "op": "gte", "value": "0"},
                {"field": "member.clv", "op": "exists"},
            ]
        },
    )
    # one event at a time (the full path)
    for ext in (inside[0], outside[0], "newcomer"):
        post_event(db, tenant, _purchase(ext, ext))
    got = _awards(db, seg_rule["id"])
    assert got == {by_ext[inside[0]]}
    scored_members = _awards(db, label_rule["id"])
    assert scored_members == {by_ext[inside[0]], by_ext[outside[0]]}  # not the newcomer
    # a batch (the batch path builds its own member context)
    batch = [_purchase(e, f"b-{e}") for e in inside[1:] + outside[1:]]
    r = client.post("/v1/events/batch", json={"events": batch}, headers=tenant.headers)
    assert r.status_code == 200, r.text
    assert r.json()["created"] == len(batch)
    assert _awards(db, seg_rule["id"]) == {by_ext[e] for e in inside}
    assert _awards(db, label_rule["id"]) == set(by_ext.values())


def test_rules_validate_stored_fields(tenant: TenantFixture, client: TestClient) -> None:
    r = client.post(
        "/v1/rules",
        json={
            "name": "bad",
            "triggers": ["purchase"],
            "effect": {"type": "fixed", "points": 1},
            "conditions": {"field": "member.p_alive", "op": "gte", "value": "high"},
        },
        headers=tenant.headers,
    )
    assert r.status_code == 422


# --- filter algebra (Hypothesis) --------------------------------------------------------------


_rows = st.lists(
    st.fixed_dictionaries(
        {
            "rfm_segment": st.none() | st.sampled_from(list(rfm.SEGMENTS)),
            "loyalty_label": st.none() | st.sampled_from(list(labels.LABELS)),
            "p_alive": st.none() | st.floats(0, 1),
            "orders": st.none() | st.integers(0, 20),
            "tags": st.lists(st.sampled_from(["vip", "staff", "student"]), max_size=3),
            "attributes": st.dictionaries(st.sampled_from(["city", "kids"]), st.integers(0, 3)),
        }
    ),
    max_size=30,
)
_leaf = st.one_of(
    st.builds(
        lambda v: {"field": "rfm_segment", "op": "in", "value": v},
        st.lists(st.sampled_from(list(rfm.SEGMENTS)), min_size=1, max_size=3),
    ),
    st.builds(
        lambda op, v: {"field": "p_alive", "op": op, "value": v},
        st.sampled_from(["gt", "gte", "lt", "lte", "eq", "ne"]),
        st.floats(0, 1),
    ),
    st.builds(
        lambda op, v: {"field": "orders", "op": op, "value": v},
        st.sampled_from(["gt", "lte", "eq"]),
        st.integers(0, 20),
    ),
    st.builds(
        lambda op, v: {"field": "tags", "op": op, "value": v},
        st.sampled_from(["contains", "not_contains"]),
        st.sampled_from(["vip", "staff"]),
    ),
    st.builds(lambda v: {"field": "loyalty_label", "op": "exists", "value": v}, st.booleans()),
    st.builds(lambda v: {"field": "attributes.kids", "op": "gte", "value": v}, st.integers(0, 3)),
)
_filters = st.recursive(
    _leaf,
    lambda kids: st.one_of(
        st.builds(lambda c: {"all": c}, st.lists(kids, min_size=1, max_size=3)),
        st.builds(lambda c: {"any": c}, st.lists(kids, min_size=1, max_size=3)),
        st.builds(lambda c: {"not": c}, kids),
    ),
    max_leaves=6,
)


@settings(max_examples=300, deadline=None)
@given(rows=_rows, a=_filters, b=_filters)
def test_filter_algebra(rows: list[dict[str, Any]], a: dict[str, Any], b: dict[str, Any]) -> None:
    """Generated filters validate, and all/any/not behave as intersection, union and
    complement over any members (missing stored values included)."""
    segments.validate(a)
    segments.validate(b)

    def members(f: dict[str, Any]) -> set[int]:
        return {i for i, r in enumerate(rows) if segments.matches(f, r)}

    everyone = set(range(len(rows)))
    assert members({"not": a}) == everyone - members(a)
    assert members({"all": [a, b]}) == members(a) & members(b)
    assert members({"any": [a, b]}) == members(a) | members(b)


def test_sql_prefilter_keeps_exactly_the_python_result(
    db: Database, tenant: TenantFixture, scored: dict[uuid.UUID, MemberScore]
) -> None:
    """Comparisons on stored fields are pushed down to SQL; the members are the same as
    with Python alone, boundaries (a value equal to a member's own) included."""
    rows = list(scored.values())
    clv = next(r.clv for r in rows if r.clv is not None)
    alive = next(r.p_alive for r in rows if r.p_alive is not None)
    day = next(r.first_purchase_day for r in rows if r.first_purchase_day is not None)
    seg = rows[0].rfm_segment
    filters: list[dict[str, Any]] = [
        {"field": "clv", "op": "eq", "value": str(clv)},
        {"field": "clv", "op": "gte", "value": str(clv)},
        {"field": "clv", "op": "lt", "value": str(clv)},
        {"field": "p_alive", "op": "lte", "value": alive},
        {"field": "p_alive", "op": "between", "value": [0, alive]},
        {"field": "first_purchase_day", "op": "eq", "value": day.isoformat()},
        {"field": "first_purchase_day", "op": "gt", "value": day.isoformat()},
        {"field": "rfm_segment", "op": "eq", "value": seg},
        {"field": "rfm_segment", "op": "ne", "value": seg},
        {"field": "clv", "op": "exists", "value": False},
        {
            "any": [
                {"field": "rfm_segment", "op": "in", "value": [seg]},
                {"field": "orders", "op": "gte", "value": 3},
            ]
        },
        {
            "all": [
                {"field": "orders", "op": "between", "value": [2, 4]},
                {"not": {"field": "rfm_segment", "op": "eq", "value": seg}},
                {"field": "tags", "op": "not_contains", "value": "x"},
            ]
        },
    ]
    assert segments.prefilter(filters[0]) is not None
    assert segments.prefilter({"not": filters[0]}) is None
    with db.session() as s:
        for flt in filters:
            pushed = [
                r["member_id"]
                for r in segments.matching(s, tenant.tenant_id, tenant.program_id, flt)
            ]
            plain = [
                r["member_id"]
                for r in segments.matching(
                    s, tenant.tenant_id, tenant.program_id, flt, pushdown=False
                )
            ]
            assert pushed == plain, flt
        assert [
            r["member_id"]
            for r in segments.matching(s, tenant.tenant_id, tenant.program_id, filters[0])
        ] == sorted(m for m, r in scored.items() if r.clv == clv)
