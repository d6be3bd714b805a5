"""Each criterion kind, periods and windows, local weeks and months, refunds, rewards,
outbox messages, and what a member sees."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from setia.core.db import Database
from setia.ledger.models import Transfer
from tests.badges.support import custom, define, progress, purchase, send, topics
from tests.conftest import TenantFixture
from tests.ledger.support import assert_db_sound

COFFEE = {"field": "item.category", "op": "eq", "value": "coffee"}


def item(sku: str, category: str = "coffee", qty: int = 1, price: str = "25000") -> dict[str, Any]:
    return {"sku": sku, "category": category, "quantity": qty, "unit_price": price}


def test_count_with_an_items_filter_completes_once_and_rewards_once(
    client: TestClient, db: Database, tenant: TenantFixture
) -> None:
    t = tenant
    define(
        client,
        t,
        "coffee-lover",
        {
            "event_type": "purchase",
            "measure": "count",
            "target": 3,
            "conditions": {"items": {"where": COFFEE}},
        },
        rewards={"points": 500},
    )
    events = [
        purchase("M1", "2026-10-01T10:00:00+07:00", items=[item("KOPI")]),
        purchase("M1", "2026-10-02T10:00:00+07:00", items=[item("ROTI", "bakery")]),
        purchase("M1", "2026-10-03T10:00:00+07:00", items=[item("LATTE")]),
        purchase("M1", "2026-10-04T10:00:00+07:00", items=[item("KOPI"), item("ROTI", "bakery")]),
        purchase("M1", "2026-10-05T10:00:00+07:00", items=[item("KOPI")]),
    ]
    send(client, t, *events)
    row = progress(db, t, "M1", "coffee-lover")
    assert row["value"] == "3"
    assert row["events"] == 3  # the bakery-only purchase does not count; the 5th came after
    assert row["completed_at"] == "2026-10-04T03:00:00+00:00"
    assert row["reward_points"] == 500
    earned = topics(db, "badge.earned")
    assert len(earned) == 1
    assert earned[0][1]["code"] == "coffee-lover"
    with db.session() as s:
        n = s.execute(
            select(func.count()).select_from(Transfer).where(Transfer.source_type == "badge")
        ).scalar_one()
    assert n == 1
    assert_db_sound(db)


def test_sum_of_purchase_amounts_and_progress_messages_by_whole_percent(
    client: TestClient, db: Database, tenant: TenantFixture
) -> None:
    t = tenant
    define(
        client,
        t,
        "sejuta",
        {"event_type": "purchase", "measure": "sum", "field": "event.amount", "target": "1000000"},
        kind="challenge",
    )
    send(
        client,
        t,
        purchase("M1", "2026-10-01T10:00:00+07:00", amount="400000"),
        purchase("M1", "2026-10-02T10:00:00+07:00", amount="4000"),  # 40.0% -> 40.4%: no message
        purchase("M1", "2026-10-03T10:00:00+07:00", amount="596000"),
        purchase("M1", "2026-10-04T10:00:00+07:00", amount="10000"),  # after completion
    )
    row = progress(db, t, "M1", "sejuta")
    assert row["value"] == "1000000"
    assert row["events"] == 3
    assert row["completed_at"] == "2026-10-03T03:00:00+00:00"
    assert [topic for topic, _p in topics(db)] == ["challenge.progressed", "challenge.completed"]


def test_sum_of_an_attribute_and_of_item_quantities(
    client: TestClient, db: Database, tenant: TenantFixture
) -> None:
    t = tenant
    define(
        client,
        t,
        "pelari",
        {
            "event_type": "run.logged",
            "measure": "sum",
            "field": "event.attributes.km",
            "target": "42.2",
        },
    )
    define(
        client,
        t,
        "sepuluh-kopi",
        {
            "event_type": "purchase",
            "measure": "sum",
            "field": "items.quantity",
            "items_where": COFFEE,
            "target": 10,
        },
    )
    send(
        client,
        t,
        custom("M1", "2026-10-01T07:00:00+07:00", "run.logged", attributes={"km": 21.1}),
        custom("M1", "2026-10-02T07:00:00+07:00", "run.logged", attributes={"km": "x"}),
        custom("M1", "2026-10-03T07:00:00+07:00", "run.logged", attributes={"km": "21.1"}),
        purchase(
            "M1",
            "2026-10-01T10:00:00+07:00",
            items=[item("KOPI", qty=6), item("ROTI", "bakery", 9)],
        ),
        purchase("M1", "2026-10-02T10:00:00+07:00", items=[item("LATTE", qty=3)]),
    )
    assert progress(db, t, "M1", "pelari")["completed_at"] == "2026-10-03T00:00:00+00:00"
    row = progress(db, t, "M1", "sepuluh-kopi")
    assert row["value"] == "9"
    assert row["completed_at"] is None


def test_distinct_values_of_items(client: TestClient, db: Database, tenant: TenantFixture) -> None:
    t = tenant
    define(
        client,
        t,
        "penjelajah-kopi",
        {
            "event_type": "purchase",
            "measure": "distinct",
            "field": "item.sku",
            "items_where": COFFEE,
            "target": 3,
        },
    )
    send(
        client,
        t,
        purchase(
            "M1",
            "2026-10-01T10:00:00+07:00",
            items=[item("KOPI"), item("KOPI"), item("ROTI", "bakery")],
        ),
        purchase("M1", "2026-10-02T10:00:00+07:00", items=[item("KOPI")]),
        purchase("M1", "2026-10-03T10:00:00+07:00", items=[item("LATTE")]),
    )
    row = progress(db, t, "M1", "penjelajah-kopi")
    assert row["value"] == "2"
    assert row["state"] == {"values": ["KOPI", "LATTE"]}
    assert row["completed_at"] is None
    send(client, t, purchase("M1", "2026-10-04T10:00:00+07:00", items=[item("MOCHA"), item("TEH")]))
    row = progress(db, t, "M1", "penjelajah-kopi")
    assert row["value"] == "3"
    assert row["completed_at"] == "2026-10-04T03:00:00+00:00"


def test_distinct_stores(client: TestClient, db: Database, tenant: TenantFixture) -> None:
    t = tenant
    define(
        client,
        t,
        "keliling",
        {"event_type": "purchase", "measure": "distinct", "field": "event.store", "target": 2},
    )
    send(
        client,
        t,
        purchase("M1", "2026-10-01T10:00:00+07:00", store="dago"),
        purchase("M1", "2026-10-02T10:00:00+07:00", store="dago"),
        purchase("M1", "2026-10-03T10:00:00+07:00"),
        purchase("M1", "2026-10-04T10:00:00+07:00", store="braga"),
    )
    assert progress(db, t, "M1", "keliling")["completed_at"] == "2026-10-04T03:00:00+00:00"


def test_first_review(client: TestClient, db: Database, tenant: TenantFixture) -> None:
    t = tenant
    define(
        client,
        t,
        "ulasan-pertama",
        {"event_type": "review.submitted", "measure": "first", "target": 1},
        rewards={"points": 50},
    )
    send(
        client,
        t,
        purchase("M1", "2026-10-01T10:00:00+07:00"),
        custom("M1", "2026-10-02T10:00:00+07:00", "review.submitted", attributes={"rating": 5}),
        custom("M1", "2026-10-03T10:00:00+07:00", "review.submitted", attributes={"rating": 4}),
    )
    row = progress(db, t, "M1", "ulasan-pertama")
    assert row["value"] == "1"
    assert row["events"] == 1
    assert row["reward_points"] == 50
    assert row["completed_at"] == "2026-10-02T03:00:00+00:00"


def test_weekly_streak_uses_local_weeks_across_a_month_boundary(
    client: TestClient, db: Database, tenant: TenantFixture
) -> None:
    """Weeks run Monday to Sunday in Jakarta. Sunday 23:30 WIB is still that week; Monday
    06:30 WIB (Sunday 23:30 UTC) is already the next one."""
    t = tenant
    define(
        client,
        t,
        "empat-minggu",
        {"event_type": "purchase", "measure": "streak", "streak_unit": "week", "target": 4},
    )
    send(
        client,
        t,
        purchase("M1", "2026-09-20T23:30:00+07:00"),  # Sunday: week of 14 Sep
        purchase("M1", "2026-09-21T06:30:00+07:00"),  # Monday (Sunday 23:30 UTC): week of 21 Sep
        purchase("M1", "2026-09-22T10:00:00+07:00"),  # same week: no progress
    )
    row = progress(db, t, "M1", "empat-minggu")
    assert row["value"] == "2"
    assert len(row["state"]["buckets"]) == 2
    send(
        client,
        t,
        purchase("M1", "2026-10-04T23:30:00+07:00"),  # Sunday 4 Oct: week of 28 Sep
        purchase("M1", "2026-10-11T16:59:00+00:00"),  # Sunday 23:59 WIB: week of 5 Oct
    )
    row = progress(db, t, "M1", "empat-minggu")
    assert row["value"] == "4"
    assert row["completed_at"] == "2026-10-11T16:59:00+00:00"


def test_a_streak_with_a_gap_starts_again_and_late_events_fill_gaps(
    client: TestClient, db: Database, tenant: TenantFixture
) -> None:
    t = tenant
    define(
        client,
        t,
        "tiga-hari",
        {"event_type": "purchase", "measure": "streak", "streak_unit": "day", "target": 3},
    )
    send(
        client,
        t,
        purchase("M1", "2026-10-01T10:00:00+07:00"),
        purchase("M1", "2026-10-03T10:00:00+07:00"),
        purchase("M1", "2026-10-04T10:00:00+07:00"),
    )
    assert progress(db, t, "M1", "tiga-hari")["value"] == "2"
    send(client, t, purchase("M1", "2026-10-02T00:10:00+07:00"))  # a late event fills the gap
    assert progress(db, t, "M1", "tiga-hari")["completed_at"] == "2026-10-01T17:10:00+00:00"


def test_monthly_streak_across_the_year_end(
    client: TestClient, db: Database, tenant: TenantFixture
) -> None:
    t = tenant
    define(
        client,
        t,
        "tiga-bulan",
        {"event_type": "purchase", "measure": "streak", "streak_unit": "month", "target": 3},
    )
    send(
        client,
        t,
        purchase("M1", "2025-11-30T23:00:00+07:00"),
        purchase("M1", "2025-12-31T23:30:00+07:00"),  # 16:30 UTC, still December in Jakarta
        purchase("M1", "2025-12-31T18:00:00+00:00"),  # 1 January 01:00 WIB
    )
    assert progress(db, t, "M1", "tiga-bulan")["completed_at"] == "2025-12-31T18:00:00+00:00"


def test_recurring_challenge_resets_at_the_local_month_start(
    client: TestClient, db: Database, tenant: TenantFixture
) -> None:
    t = tenant
    define(
        client,
        t,
        "tiga-sebulan",
        {"event_type": "purchase", "measure": "count", "target": 3},
        kind="challenge",
        period={"type": "month", "recurring": True},
        rewards={"points": 100},
    )
    send(
        client,
        t,
        purchase("M1", "2026-09-29T10:00:00+07:00"),
        purchase("M1", "2026-09-30T10:00:00+07:00"),
        purchase("M1", "2026-09-30T23:59:00+07:00"),  # the third in September, local
        purchase("M1", "2026-09-30T17:30:00+00:00"),  # 1 October 00:30 WIB: a new month
        purchase("M1", "2026-10-15T10:00:00+07:00"),
    )
    sep = progress(db, t, "M1", "tiga-sebulan", "2026-09")
    oct_ = progress(db, t, "M1", "tiga-sebulan", "2026-10")
    assert sep["value"] == "3"
    assert sep["completed_at"] == "2026-09-30T16:59:00+00:00"
    assert oct_["value"] == "2"
    assert oct_["completed_at"] is None
    send(client, t, purchase("M1", "2026-10-31T23:00:00+07:00"))
    oct_ = progress(db, t, "M1", "tiga-sebulan", "2026-10")
    assert oct_["completed_at"] == "2026-10-31T16:00:00+00:00"
    assert oct_["reward_points"] == 100
    # Two completions, two rewards: one per period.
    with db.session() as s:
        keys = sorted(
            s.execute(
                select(Transfer.idempotency_key).where(Transfer.source_type == "badge")
            ).scalars()
        )
    assert len(keys) == 2
    assert keys[0].endswith(":2026-09")
    assert keys[1].endswith(":2026-10")
    assert_db_sound(db)


def test_one_month_and_campaign_windows(
    client: TestClient, db: Database, tenant: TenantFixture
) -> None:
    t = tenant
    define(
        client,
        t,
        "oktober",
        {"event_type": "purchase", "measure": "count", "target": 5},
        kind="challenge",
        period={"type": "month", "month": "2026-10"},
    )
    define(
        client,
        t,
        "kampanye",
        {"event_type": "purchase", "measure": "count", "target": 5},
        kind="challenge",
        period={
            "type": "campaign",
            "starts_at": "2026-10-10T00:00:00+07:00",
            "ends_at": "2026-10-20T00:00:00+07:00",
        },
    )
    send(
        client,
        t,
        purchase("M1", "2026-09-30T23:59:00+07:00"),  # before October (local)
        purchase("M1", "2026-10-01T00:00:00+07:00"),
        purchase("M1", "2026-10-10T00:00:00+07:00"),
        purchase("M1", "2026-10-19T23:59:59+07:00"),
        purchase("M1", "2026-10-20T00:00:00+07:00"),  # the campaign's end is exclusive
        purchase("M1", "2026-11-01T00:00:00+07:00"),
    )
    assert progress(db, t, "M1", "oktober")["value"] == "4"
    assert progress(db, t, "M1", "kampanye")["value"] == "2"


def test_refunds_do_not_take_progress_back(
    client: TestClient, db: Database, tenant: TenantFixture
) -> None:
    t = tenant
    define(
        client,
        t,
        "dua",
        {"event_type": "purchase", "measure": "count", "target": 2},
        rewards={"points": 10},
    )
    define(
        client,
        t,
        "jumlah",
        {"event_type": "purchase", "measure": "sum", "field": "event.amount", "target": "900000"},
    )
    first, second = (
        purchase("M1", "2026-10-01T10:00:00+07:00"),
        purchase("M1", "2026-10-02T10:00:00+07:00"),
    )
    send(client, t, first, second)
    before = (progress(db, t, "M1", "dua"), progress(db, t, "M1", "jumlah"))
    r = client.post(
        "/v1/events",
        json={
            "id": "r1",
            "type": "refund",
            "member": {"external_id": "M1"},
            "order_id": second["order_id"],
            "amount": "50000",
            "occurred_at": "2026-10-03T10:00:00+07:00",
        },
        headers=t.headers,
    )
    assert r.status_code == 201, r.text
    assert (progress(db, t, "M1", "dua"), progress(db, t, "M1", "jumlah")) == before
    assert before[0]["completed_at"] is not None
    assert_db_sound(db)


def test_archived_definitions_stop_counting_and_stay_earned(
    client: TestClient, db: Database, tenant: TenantFixture
) -> None:
    t = tenant
    d = define(client, t, "satu", {"event_type": "purchase", "measure": "count", "target": 1})
    other = define(client, t, "lima", {"event_type": "purchase", "measure": "count", "target": 5})
    (ev,) = send(client, t, purchase("M1", "2026-10-01T10:00:00+07:00"))
    r = client.post(f"/v1/badges/{other['id']}/archive", headers=t.headers)
    assert r.status_code == 200
    assert r.json()["status"] == "archived"
    send(client, t, purchase("M1", "2026-10-02T10:00:00+07:00"))
    assert progress(db, t, "M1", "lima")["value"] == "1"
    client.post(f"/v1/badges/{d['code']}/archive", headers=t.headers)
    member = client.get(f"/v1/members/{ev['member_id']}", headers=t.headers).json()
    assert member["badges"] == ["satu"]


def test_what_a_member_sees(client: TestClient, db: Database, tenant: TenantFixture) -> None:
    t = tenant
    define(
        client,
        t,
        "tiga",
        {"event_type": "purchase", "measure": "count", "target": 3},
        names={"id": "Tiga Kali", "en": "Three Times"},
        image_url="https://cdn.example.com/b/tiga.png",
    )
    define(
        client,
        t,
        "satu",
        {"event_type": "purchase", "measure": "count", "target": 1},
        rewards={"points": 5},
    )
    define(client, t, "ulasan", {"event_type": "review.submitted", "measure": "first", "target": 1})
    (ev, _) = send(
        client,
        t,
        purchase("M1", "2026-10-01T10:00:00+07:00"),
        purchase("M1", "2026-10-02T10:00:00+07:00"),
    )
    r = client.get(f"/v1/members/{ev['member_id']}/badges?locale=en", headers=t.headers)
    assert r.status_code == 200
    body = r.json()
    assert body["badges"] == ["satu"]
    assert [e["code"] for e in body["earned"]] == ["satu"]
    assert body["earned"][0]["reward"]["points"] == 5
    shown = {p["code"]: p for p in body["in_progress"]}
    assert set(shown) == {"tiga", "ulasan"}
    assert shown["tiga"]["text"] == "2 of 3"
    assert shown["tiga"]["name"] == "Three Times"
    assert shown["tiga"]["percent"] == 66
    assert shown["tiga"]["image_url"].endswith("tiga.png")
    assert shown["ulasan"]["text"] == "0 of 1"
    r = client.get(f"/v1/members/{ev['member_id']}/badges", headers=t.headers)
    assert {p["code"]: p["text"] for p in r.json()["in_progress"]}["tiga"] == "2 dari 3"
