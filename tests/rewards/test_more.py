"""Quantities, points plus cash, inactive members, outbox events and listings."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from setia.core.db import Database
from setia.outbox.models import OutboxMessage
from tests.ledger.support import assert_db_sound
from tests.rewards.helpers import Api, counts, refused, reward


def events(db: Database) -> list[dict[str, Any]]:
    with db.session() as s:
        rows = s.execute(
            select(OutboxMessage.topic, OutboxMessage.payload)
            .where(OutboxMessage.topic.like("reward.%"))
            .order_by(OutboxMessage.created_at, OutboxMessage.id)
        ).all()
    return [{"topic": t, **p} for t, p in rows]


def test_quantity_multiplies_points_stock_and_wallet_money(api: Api, db: Database) -> None:
    api.put_reward("MUG", reward("physical", 100, stock_total=3, cash_price="25000"))
    api.put_reward("CB", reward("cashback", 10, cashback_amount="5000"))
    m = api.member()
    api.give(m, 1000)
    red = api.redeem_ok(m, "MUG", quantity=2)
    assert red["points"] == 200
    assert red["cash_price"] == "50000"
    assert api.available(m) == 800
    refused(api.redeem(m, "MUG", quantity=2), 409, "out_of_stock")
    api.redeem_ok(m, "CB", quantity=3)
    assert api.get(f"/v1/members/{m}/wallet").json()["available"] == "15000"
    assert api.available(m) == 770
    r = api.cancel(red["id"])
    assert r.status_code == 200, r.text
    assert api.available(m) == 970
    stock = api.get(f"/v1/programs/{api.tenant.program_id}/rewards/MUG").json()["stock"]
    assert stock["left"] == 3
    assert_db_sound(db)


def test_merged_or_erased_members_cannot_redeem(api: Api, db: Database) -> None:
    api.put_reward("MUG", reward("physical", 10))
    keep, dup, gone = api.member(), api.member(), api.member()
    for m in (keep, dup, gone):
        api.give(m, 100)
    r = api.post(f"/v1/members/{keep}/merge", {"source_member_id": dup, "reason": "duplicate"})
    assert r.status_code in (200, 201), r.text
    r = api.post(f"/v1/members/{gone}/erase", {"reason": "data subject request", "confirm": True})
    assert r.status_code == 200, r.text
    before = counts(db)
    refused(api.redeem(dup, "MUG"), 409, "member_not_active")
    refused(api.redeem(gone, "MUG"), 409, "member_not_active")
    assert counts(db) == before
    api.redeem_ok(keep, "MUG")


def test_outbox_events_and_listings(api: Api, db: Database) -> None:
    api.put_reward("MUG", reward("physical", 10))
    m = api.member()
    api.give(m, 100)
    a = api.redeem_ok(m, "MUG", channel="pos")
    b = api.redeem_ok(m, "MUG")
    api.post(f"/v1/redemptions/{a['id']}/fulfilment", {"status": "shipped", "tracking": "T1"})
    api.cancel(b["id"], "no longer wanted")
    got = [(e["topic"], e["redemption_id"]) for e in events(db)]
    assert got == [
        ("reward.redeemed", a["id"]),
        ("reward.redeemed", b["id"]),
        ("reward.fulfilment_changed", a["id"]),
        ("reward.cancelled", b["id"]),
    ]
    shipped = events(db)[2]
    assert shipped["previous"] == "requested"
    assert shipped["tracking"] == "T1"
    assert shipped["channel"] == "pos"
    assert events(db)[3]["points_returned"] is True
    mine = api.get(f"/v1/members/{m}/redemptions").json()
    assert [r["id"] for r in mine["data"]] == [b["id"], a["id"]]
    page = api.get(f"/v1/programs/{api.tenant.program_id}/redemptions", params={"limit": 1}).json()
    assert [r["id"] for r in page["data"]] == [b["id"]]
    nxt = api.get(
        f"/v1/programs/{api.tenant.program_id}/redemptions",
        params={"limit": 1, "cursor": page["next_cursor"]},
    ).json()
    assert [r["id"] for r in nxt["data"]] == [a["id"]]
    shipped_only = api.get(
        f"/v1/programs/{api.tenant.program_id}/redemptions", params={"status": "shipped"}
    ).json()
    assert [r["id"] for r in shipped_only["data"]] == [a["id"]]
    # an unknown key sees nothing
    refused(
        api.client.get(f"/v1/redemptions/{a['id']}", headers={"Authorization": "Bearer x"}),
        401,
        "unauthorized",
    )


def test_another_tenants_redemption_is_not_found(api: Api, db: Database, client: Any) -> None:
    from tests.conftest import make_tenant

    api.put_reward("MUG", reward("physical", 10))
    m = api.member()
    api.give(m, 100)
    red = api.redeem_ok(m, "MUG")
    other = Api(client, make_tenant(db, name="Toko Lain"))
    before = counts(db)
    refused(other.get(f"/v1/redemptions/{red['id']}"), 404, "redemption_not_found")
    refused(other.cancel(red["id"]), 404, "redemption_not_found")
    refused(
        other.post(f"/v1/redemptions/{red['id']}/fulfilment", {"status": "shipped"}),
        404,
        "redemption_not_found",
    )
    refused(other.get(f"/v1/programs/{api.tenant.program_id}/rewards"), 404, "not_found")
    assert counts(db) == before


def test_confirm_after_the_hold_deadline_is_refused(api: Api, db: Database) -> None:
    from sqlalchemy import text

    api.put_reward("MUG", reward("physical", 10, stock_total=1))
    m = api.member()
    api.give(m, 100)
    held = api.redeem_ok(m, "MUG", confirm=False)
    with db.engine.begin() as conn:
        conn.execute(
            text("UPDATE reward_redemptions SET hold_expires_at = :t WHERE id = :i"),
            {"t": "2020-01-01 00:00:00", "i": held["id"].replace("-", "")}
            if db.dialect == "sqlite"
            else {"t": "2020-01-01T00:00:00+00:00", "i": held["id"]},
        )
    before = counts(db)
    refused(api.post(f"/v1/redemptions/{held['id']}/confirm"), 409, "redemption_expired")
    assert counts(db) == before
    # cancelling it still gives everything back
    assert api.cancel(held["id"]).json()["status"] == "cancelled"
    assert api.available(m) == 100
    assert_db_sound(db)
