"""Funnel per referrer and overall, top advocates, period filters in the tenant's local days."""

from __future__ import annotations

from datetime import timedelta

from setia.core.time import utcnow, zone
from tests.referrals.conftest import World, after_window


def _story(world: World) -> dict[str, object]:
    siti, ani = world.member("Siti"), world.member("Ani")
    for _ in range(3):
        world.client.post(f"/v1/members/{siti}/referral/shares", json={}, headers=world.h)
    world.client.post(
        f"/v1/members/{ani}/referral/shares", json={"channel": "sms"}, headers=world.h
    )
    b1, _ = world.referred(siti, "B1")
    b2, _ = world.referred(siti, "B2")
    b3, r3 = world.referred(siti, "B3")
    c1, _ = world.referred(ani, "C1")
    world.buy(b1, "120000")
    world.buy(b2, "80000")
    order = world.buy(c1, "60000")
    world.refund(c1, order, "60000")
    world.settings(review_required=True)
    world.referred(ani, "C2")
    world.client.post(
        f"/v1/referrals/{r3['id']}/reject", json={"reason": "too late"}, headers=world.h
    )
    return {"siti": siti, "ani": ani, "b3": b3}


def test_funnel_overall_and_per_referrer(world: World) -> None:
    who = _story(world)
    # b3's referral is pending, not held: rejecting it is refused, nothing changes.
    world.run(after_window())
    overall = world.client.get("/v1/referrals/funnel", headers=world.h).json()
    assert {k: overall[k] for k in ("shares", "signups", "qualified", "rewarded", "held")} == {
        "shares": 4,
        "signups": 5,
        "qualified": 2,
        "rewarded": 2,
        "held": 1,
    }
    assert overall["cancelled"] == 1
    assert overall["pending"] == 1
    siti = world.client.get(
        "/v1/referrals/funnel", params={"member_id": str(who["siti"])}, headers=world.h
    ).json()
    assert (siti["shares"], siti["signups"], siti["rewarded"]) == (3, 3, 2)
    assert siti["qualified_per_signup"] == round(2 / 3, 4)


def test_period_filters_use_local_days(world: World) -> None:
    _story(world)
    today = utcnow().astimezone(zone("Asia/Jakarta")).date()
    same_day = world.client.get(
        "/v1/referrals/funnel",
        params={"from": today.isoformat(), "to": today.isoformat()},
        headers=world.h,
    ).json()
    assert same_day["signups"] == 5
    assert same_day["shares"] == 4
    tomorrow = (today + timedelta(days=1)).isoformat()
    later = world.client.get(
        "/v1/referrals/funnel", params={"from": tomorrow}, headers=world.h
    ).json()
    assert (later["signups"], later["shares"], later["qualified"]) == (0, 0, 0)
    bad = world.client.get(
        "/v1/referrals/funnel", params={"from": tomorrow, "to": today.isoformat()}, headers=world.h
    )
    assert bad.status_code == 422


def test_top_advocates(world: World) -> None:
    who = _story(world)
    world.run(after_window())
    top = world.client.get("/v1/referrals/top", headers=world.h).json()
    assert [t["member_id"] for t in top] == [str(who["siti"]), str(who["ani"])]
    first = top[0]
    assert (first["rank"], first["signups"], first["qualified"], first["rewarded"]) == (1, 3, 2, 2)
    assert first["referee_spend"] == "200000"
    assert first["currency"] == "IDR"
    assert first["name"] == "Siti"
    assert first["code"]
    assert top[1]["referee_spend"] == "0"
    assert world.client.get("/v1/referrals/top", params={"limit": 1}, headers=world.h).json()[0][
        "member_id"
    ] == str(who["siti"])
