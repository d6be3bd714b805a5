"""Definitions through the API (create, idempotent by code, validation naming the field,
patch, archive), coupon rewards, and leaderboards with members' consent."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from setia.core.db import Database
from setia.tenants import service as tenants
from tests.badges.support import define, progress, purchase, send
from tests.conftest import TenantFixture, make_tenant
from tests.events.helpers import row_counts

BASE: dict[str, Any] = {
    "code": "lima",
    "names": {"id": "Lima Kali", "en": "Five Times"},
    "criteria": {"event_type": "purchase", "measure": "count", "target": 5},
}


def test_create_is_idempotent_by_code(client: TestClient, tenant: TenantFixture) -> None:
    h = tenant.headers
    r = client.post("/v1/badges", json=BASE, headers=h)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["name"] == "Lima Kali"
    assert body["criteria"] == {"event_type": "purchase", "measure": "count", "target": "5"}
    assert body["period"] == {"type": "all_time", "recurring": False}
    again = client.post("/v1/badges", json=BASE, headers=h)
    assert again.status_code == 200
    assert again.json()["id"] == body["id"]
    taken = client.post("/v1/badges", json={**BASE, "kind": "challenge"}, headers=h)
    assert taken.status_code == 409
    assert taken.json()["code"] == "badge_code_taken"
    assert taken.json()["field"] == "code"
    assert client.get("/v1/badges/lima", headers=h).json()["id"] == body["id"]
    assert [d["code"] for d in client.get("/v1/badges", headers=h).json()] == ["lima"]


BAD: list[tuple[dict[str, Any], str]] = [
    (
        {"criteria": {"event_type": "refund", "measure": "count", "target": 1}},
        "criteria.event_type",
    ),
    ({"criteria": {"event_type": "purchase", "measure": "count", "target": 0}}, "criteria.target"),
    (
        {"criteria": {"event_type": "purchase", "measure": "count", "target": "2.5"}},
        "criteria.target",
    ),
    ({"criteria": {"event_type": "purchase", "measure": "first", "target": 2}}, "criteria.target"),
    ({"criteria": {"event_type": "purchase", "measure": "sum", "target": 5}}, "criteria.field"),
    (
        {
            "criteria": {
                "event_type": "purchase",
                "measure": "sum",
                "field": "event.store",
                "target": 5,
            }
        },
        "criteria.field",
    ),
    (
        {
            "criteria": {
                "event_type": "purchase",
                "measure": "distinct",
                "field": "member.tags",
                "target": 5,
            }
        },
        "criteria.field",
    ),
    (
        {
            "criteria": {
                "event_type": "purchase",
                "measure": "count",
                "field": "item.sku",
                "target": 5,
            }
        },
        "criteria.field",
    ),
    (
        {
            "criteria": {
                "event_type": "purchase",
                "measure": "count",
                "target": 5,
                "items_where": {"field": "item.category", "op": "eq", "value": "coffee"},
            }
        },
        "criteria.items_where",
    ),
    (
        {
            "criteria": {
                "event_type": "purchase",
                "measure": "distinct",
                "field": "item.sku",
                "target": 5,
                "items_where": {"field": "item.colour", "op": "eq", "value": "red"},
            }
        },
        "criteria.items_where.field",
    ),
    (
        {
            "criteria": {
                "event_type": "purchase",
                "measure": "count",
                "target": 5,
                "conditions": {"all": [{"field": "event.amount", "op": "gte", "value": "abc"}]},
            }
        },
        "criteria.conditions.all[0].value",
    ),
    (
        {
            "criteria": {
                "event_type": "purchase",
                "measure": "count",
                "target": 5,
                "conditions": {"any": [{"field": "member.tier", "op": "eq", "value": "gold"}]},
            }
        },
        "criteria.conditions.any[0].field",
    ),
    (
        {"criteria": {"event_type": "purchase", "measure": "streak", "target": 4}},
        "criteria.streak_unit",
    ),
    (
        {
            "criteria": {
                "event_type": "purchase",
                "measure": "count",
                "target": 4,
                "streak_unit": "week",
            }
        },
        "criteria.streak_unit",
    ),
    ({"period": {"type": "campaign", "ends_at": "2026-12-01T00:00:00+07:00"}}, "period.starts_at"),
    (
        {
            "period": {
                "type": "campaign",
                "starts_at": "2026-12-01T00:00:00+07:00",
                "ends_at": "2026-11-01T00:00:00+07:00",
            }
        },
        "period.ends_at",
    ),
    ({"period": {"type": "month"}}, "period.month"),
    (
        {
            "period": {
                "type": "month",
                "month": "2026-12",
                "starts_at": "2026-12-05T00:00:00+07:00",
            }
        },
        "period.starts_at",
    ),
    ({"period": {"type": "all_time", "recurring": True}}, "period.recurring"),
    (
        {"rewards": {"coupon_campaign_id": "01a20b9c-4456-7e5a-b918-9a3fe5f78cb6"}},
        "rewards.coupon_campaign_id",
    ),
]


@pytest.mark.parametrize(("change", "field"), BAD, ids=[f for _c, f in BAD])
def test_a_bad_definition_names_the_field_and_writes_nothing(
    client: TestClient, db: Database, tenant: TenantFixture, change: dict[str, Any], field: str
) -> None:
    r = client.post("/v1/badges", json={**BASE, **change}, headers=tenant.headers)
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "invalid_badge"
    assert r.json()["field"] == field
    assert row_counts(db, ("badge_definitions",)) == {"badge_definitions": 0}


def test_shape_errors_are_validation_errors(client: TestClient, tenant: TenantFixture) -> None:
    for body in (
        {**BASE, "code": "Bad Code"},
        {**BASE, "names": {"ms": "hanya melayu"}},
        {**BASE, "image_url": "ftp://x"},
        {**BASE, "criteria": {**BASE["criteria"], "measure": "average"}},
        {**BASE, "period": {"type": "month", "month": "2026-13"}},
    ):
        r = client.post("/v1/badges", json=body, headers=tenant.headers)
        assert r.status_code == 422, body


def test_patch_and_archive(client: TestClient, db: Database, tenant: TenantFixture) -> None:
    h = tenant.headers
    d = client.post("/v1/badges", json=BASE, headers=h).json()
    r = client.patch(
        f"/v1/badges/{d['id']}",
        json={
            "names": {"id": "Lima!"},
            "rewards": {"points": 10},
            "criteria": {**BASE["criteria"], "target": 2},
        },
        headers=h,
    )
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "Lima!"
    assert r.json()["rewards"]["points"] == 10
    assert r.json()["criteria"]["target"] == "2"
    send(client, tenant, purchase("M1", "2026-10-01T10:00:00+07:00"))
    r = client.patch(
        f"/v1/badges/{d['id']}", json={"criteria": {**BASE["criteria"], "target": 9}}, headers=h
    )
    assert r.status_code == 409
    assert r.json()["code"] == "badge_has_progress"
    r = client.patch(f"/v1/badges/{d['id']}", json={"rewards": {"points": 25}}, headers=h)
    assert r.status_code == 200
    send(client, tenant, purchase("M1", "2026-10-02T10:00:00+07:00"))
    assert progress(db, tenant, "M1", "lima")["reward_points"] == 25
    r = client.patch(f"/v1/badges/{d['id']}", json={"status": "archived"}, headers=h)
    assert r.json()["status"] == "archived"
    assert r.json()["archived_at"] is not None
    assert client.get("/v1/badges", headers=h).json() == []
    assert len(client.get("/v1/badges?status=all", headers=h).json()) == 1
    assert client.get("/v1/badges/nope", headers=h).status_code == 404


def test_a_one_month_definition_can_be_edited_and_posted_back(
    client: TestClient, tenant: TenantFixture
) -> None:
    """A single month answers with its month and its bounds; a patch of its rewards or names
    keeps it, and its answer posted back is the same definition."""
    h = tenant.headers
    body = {**BASE, "code": "desember", "period": {"type": "month", "month": "2026-12"}}
    r = client.post("/v1/badges", json=body, headers=h)
    assert r.status_code == 201, r.text
    assert r.json()["period"] == {
        "type": "month",
        "recurring": False,
        "month": "2026-12",
        "starts_at": "2026-11-30T17:00:00+00:00",  # midnight in Jakarta
        "ends_at": "2026-12-31T17:00:00+00:00",
    }
    r = client.patch("/v1/badges/desember", json={"rewards": {"points": 50}}, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["rewards"]["points"] == 50
    r = client.patch("/v1/badges/desember", json={"names": {"id": "Desember"}}, headers=h)
    assert r.status_code == 200, r.text
    got = client.get("/v1/badges/desember", headers=h).json()
    again = {k: got[k] for k in ("code", "kind", "names", "descriptions", "criteria", "period")}
    r = client.post("/v1/badges", json={**again, "rewards": {"points": 50}}, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["id"] == got["id"]


def test_a_one_month_definition_keeps_its_bounds_when_the_tenant_changes_time_zone(
    client: TestClient, db: Database, tenant: TenantFixture
) -> None:
    """December in Jakarta is another window than December in Kuala Lumpur: after the move,
    the definition's answer sent back (or a patch that leaves the period alone) changes
    nothing (with members' progress on it, a moved window would even be refused); naming the
    month alone keeps it too."""
    h = tenant.headers
    body = {**BASE, "code": "desember", "period": {"type": "month", "month": "2026-12"}}
    assert client.post("/v1/badges", json=body, headers=h).status_code == 201
    before = client.get("/v1/badges/desember", headers=h).json()
    with db.session() as s:
        tenants.update_tenant(s, tenant.tenant_id, {"timezone": "Asia/Kuala_Lumpur"}, actor="t")
        s.commit()
    got = client.get("/v1/badges/desember", headers=h).json()
    assert got["period"] == before["period"]  # still midnight in Jakarta, still "2026-12"
    again = {k: got[k] for k in ("code", "kind", "names", "descriptions", "criteria", "period")}
    r = client.post("/v1/badges", json={**again, "rewards": got["rewards"]}, headers=h)
    assert r.status_code == 200, r.text
    for patch in (
        {"period": got["period"]},
        {"period": {"type": "month", "month": "2026-12"}},
        {"criteria": got["criteria"]},
        {"rewards": {"points": 75}},
    ):
        r = client.patch("/v1/badges/desember", json=patch, headers=h)
        assert r.status_code == 200, (patch, r.text)
        assert r.json()["period"] == before["period"]
    # The month's window in the new zone, given explicitly, moves it there.
    moved = {
        "type": "month",
        "month": "2026-12",
        "starts_at": "2026-11-30T16:00:00+00:00",
        "ends_at": "2026-12-31T16:00:00+00:00",
    }
    r = client.patch("/v1/badges/desember", json={"period": moved}, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["period"]["starts_at"] == "2026-11-30T16:00:00+00:00"
    # Any other bounds are still refused.
    wrong = {**moved, "starts_at": "2026-11-30T12:00:00+00:00"}
    r = client.patch("/v1/badges/desember", json={"period": wrong}, headers=h)
    assert r.status_code == 422, r.text


@pytest.mark.parametrize("new_zone", ["UTC", "Pacific/Honolulu", "Asia/Tokyo"])
def test_a_one_month_definition_keeps_its_month_in_any_new_time_zone(
    client: TestClient, db: Database, tenant: TenantFixture, new_zone: str
) -> None:
    """West of Jakarta the stored start is still 30 November there: the answer must still
    say December, and the month alone keeps it."""
    h = tenant.headers
    body = {**BASE, "code": "desember", "period": {"type": "month", "month": "2026-12"}}
    assert client.post("/v1/badges", json=body, headers=h).status_code == 201
    before = client.get("/v1/badges/desember", headers=h).json()["period"]
    with db.session() as s:
        tenants.update_tenant(s, tenant.tenant_id, {"timezone": new_zone}, actor="t")
        s.commit()
    assert client.get("/v1/badges/desember", headers=h).json()["period"] == before
    r = client.patch(
        "/v1/badges/desember", json={"period": {"type": "month", "month": "2026-12"}}, headers=h
    )
    assert r.status_code == 200, r.text
    assert r.json()["period"] == before


def test_another_tenant_cannot_see_or_change_a_definition(
    client: TestClient, db: Database, tenant: TenantFixture
) -> None:
    d = client.post("/v1/badges", json=BASE, headers=tenant.headers).json()
    other = make_tenant(db)
    assert client.get(f"/v1/badges/{d['id']}", headers=other.headers).status_code == 404
    assert client.post(f"/v1/badges/{d['id']}/archive", headers=other.headers).status_code == 404
    assert client.get(f"/v1/badges/{d['id']}/leaderboard", headers=other.headers).status_code == 404


def test_a_coupon_reward_is_a_code_bound_to_the_member(
    client: TestClient, db: Database, tenant: TenantFixture
) -> None:
    h = tenant.headers
    camp = client.post(
        "/v1/coupon-campaigns",
        json={
            "code": "hadiah-badge",
            "names": {"id": "Hadiah"},
            "discount": {"type": "fixed", "amount": "10000"},
        },
        headers={**h, "Idempotency-Key": "c1"},
    )
    assert camp.status_code == 201, camp.text
    define(
        client,
        tenant,
        "dua",
        {"event_type": "purchase", "measure": "count", "target": 2},
        rewards={"points": 5, "coupon_campaign_id": camp.json()["id"]},
    )
    (a, _b) = send(
        client,
        tenant,
        purchase("M1", "2026-10-01T10:00:00+07:00"),
        purchase("M1", "2026-10-02T10:00:00+07:00"),
    )
    body = client.get(f"/v1/members/{a['member_id']}/badges", headers=h).json()
    reward = body["earned"][0]["reward"]
    assert reward["points"] == 5
    assert reward["coupon_code"]
    coupon = client.get(f"/v1/coupons/{reward['coupon_code']}", headers=h)
    assert coupon.status_code == 200, coupon.text
    assert coupon.json()["member_id"] == a["member_id"]


def test_leaderboard_shows_only_members_who_opted_in(
    client: TestClient, db: Database, tenant: TenantFixture
) -> None:
    h = tenant.headers
    d = define(
        client,
        tenant,
        "tiga",
        {"event_type": "purchase", "measure": "count", "target": 3},
        kind="challenge",
        period={"type": "month", "recurring": True},
    )
    ids: dict[str, str] = {}
    for name, ext, n in (
        ("Budi Santoso", "B", 3),
        ("Siti Aminah", "S", 2),
        ("Rahasia Orang", "R", 3),
        ("Ani", "A", 1),
    ):
        r = client.post("/v1/members", json={"external_id": ext, "name": name}, headers=h)
        assert r.status_code == 201, r.text
        ids[ext] = r.json()["id"]
        send(client, tenant, *[purchase(ext, f"2026-10-0{i + 1}T10:00:00+07:00") for i in range(n)])
    board = client.get(f"/v1/badges/{d['id']}/leaderboard?period=2026-10", headers=h).json()
    assert board["data"] == []
    for ext in ("B", "S", "A"):
        r = client.put(
            f"/v1/members/{ids[ext]}/leaderboard-consent",
            json={
                "opted_in": True,
                "source": "app",
                **({"display_name": "Siti"} if ext == "S" else {}),
            },
            headers=h,
        )
        assert r.status_code == 200, r.text
    assert r.json()["shown_as"] == "Ani"
    board = client.get(f"/v1/badges/{d['id']}/leaderboard?period=2026-10", headers=h).json()
    assert [(row["rank"], row["display_name"], row["value"]) for row in board["data"]] == [
        (1, "Budi S.", "3"),
        (2, "Siti", "2"),
        (3, "Ani", "1"),
    ]
    assert board["data"][0]["completed_at"] is not None
    assert set(board["data"][0]) == {"rank", "display_name", "value", "completed_at"}
    # Opting out removes the member at once; the history of choices is kept.
    client.put(
        f"/v1/members/{ids['B']}/leaderboard-consent",
        json={"opted_in": False, "source": "app"},
        headers=h,
    )
    board = client.get("/v1/badges/tiga/leaderboard?period=2026-10", headers=h).json()
    assert [row["display_name"] for row in board["data"]] == ["Siti", "Ani"]
    consent = client.get(f"/v1/members/{ids['B']}/leaderboard-consent", headers=h).json()
    assert consent["opted_in"] is False
    assert consent["shown_as"] is None
    assert row_counts(db, ("badge_leaderboard_consents",)) == {"badge_leaderboard_consents": 4}
    # Another month has its own board.
    assert (
        client.get(f"/v1/badges/{d['id']}/leaderboard?period=2026-09", headers=h).json()["data"]
        == []
    )
    # A monthly challenge has no all-time board: said so, not answered with an empty one.
    r = client.get(f"/v1/badges/{d['id']}/leaderboard?period=all", headers=h)
    assert (r.status_code, r.json()["code"], r.json()["field"]) == (422, "invalid_period", "period")
    r = client.get(f"/v1/badges/{d['id']}/leaderboard?period=2026-13", headers=h)
    assert r.status_code == 422
    r = client.put(
        f"/v1/members/{ids['A']}/leaderboard-consent",
        json={"opted_in": True, "source": " "},
        headers=h,
    )
    assert r.status_code in (400, 422)
