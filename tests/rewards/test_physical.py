"""A physical reward end to end: redeem, fulfil, cancel; stock and points exactly once."""

from __future__ import annotations

from setia.core.db import Database
from tests.ledger.support import assert_db_sound
from tests.rewards.helpers import Api, counts, reward


def test_physical_redeem_ship_deliver(api: Api, db: Database) -> None:
    api.put_reward("TUMBLER", reward("physical", 300, stock_total=5))
    m = api.member()
    api.give(m, 1000)
    red = api.redeem_ok(
        m, "TUMBLER", channel="portal", shipping_address={"line1": "Jl. Sudirman 1"}
    )
    assert red["status"] == "requested"
    assert red["fulfilment_status"] == "requested"
    assert red["points"] == 300
    assert red["capture_transfer_id"]
    assert red["hold_transfer_id"]
    assert api.available(m) == 700
    assert api.points(m)["held"] == 0
    rid = red["id"]
    r = api.post(f"/v1/redemptions/{rid}/fulfilment", {"status": "shipped", "tracking": "JNE1"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "shipped"
    assert r.json()["tracking"] == "JNE1"
    # backwards is refused
    r = api.post(f"/v1/redemptions/{rid}/fulfilment", {"status": "shipped", "tracking": "X"})
    assert r.status_code == 409
    assert r.json()["code"] == "invalid_transition"
    r = api.post(f"/v1/redemptions/{rid}/fulfilment", {"status": "delivered"})
    assert r.status_code == 200
    assert r.json()["status"] == "delivered"
    r = api.cancel(rid)
    assert r.status_code == 409
    assert r.json()["code"] == "not_cancellable"
    stock = api.get(f"/v1/programs/{api.tenant.program_id}/rewards/TUMBLER").json()["stock"]
    assert stock == {
        "total": 5,
        "used": 1,
        "left": 4,
        "per_period": None,
        "period": None,
        "current_period": None,
        "used_this_period": None,
        "left_this_period": None,
    }
    assert_db_sound(db)


def test_cancel_before_shipping_returns_points_and_stock_once(api: Api, db: Database) -> None:
    api.put_reward(
        "TUMBLER",
        reward("physical", 300, stock_total=1, member_limit=1, member_limit_period="lifetime"),
    )
    m = api.member()
    api.give(m, 1000)
    red = api.redeem_ok(m, "TUMBLER")
    assert api.available(m) == 700
    r = api.redeem(m, "TUMBLER")
    assert r.status_code == 409
    assert r.json()["code"] == "out_of_stock"
    r = api.cancel(red["id"], "changed my mind")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "cancelled"
    assert body["fulfilment_status"] == "cancelled"
    assert body["return_transfer_id"]
    assert api.available(m) == 1000
    before = counts(db)
    again = api.cancel(red["id"])
    assert again.status_code == 200
    assert again.json()["status"] == "cancelled"
    assert counts(db) == before
    assert api.available(m) == 1000
    # stock and the lifetime limit are back: the member can redeem it again
    red2 = api.redeem_ok(m, "TUMBLER")
    assert red2["status"] == "requested"
    assert api.available(m) == 700
    r = api.post(f"/v1/redemptions/{red['id']}/fulfilment", {"status": "shipped"})
    assert r.status_code == 409
    assert r.json()["code"] == "invalid_transition"
    assert_db_sound(db)


def test_idempotent_redeem(api: Api, db: Database) -> None:
    api.put_reward("MUG", reward("physical", 100))
    m = api.member()
    api.give(m, 500)
    r1 = api.redeem(m, "MUG", key="k-1")
    assert r1.status_code == 201, r1.text
    before = counts(db)
    r2 = api.redeem(m, "MUG", key="k-1")
    assert r2.status_code == 200
    assert r2.json()["id"] == r1.json()["id"]
    assert counts(db) == before
    r3 = api.redeem(m, "MUG", key="k-1", quantity=2)
    assert r3.status_code == 409
    assert r3.json()["code"] == "idempotency_key_reused"
    assert api.available(m) == 400
    assert_db_sound(db)
