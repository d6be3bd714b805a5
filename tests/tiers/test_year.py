"""A simulated year (and the one after) in the tenant's time zone, Asia/Jakarta.

Events are backdated through the API; evaluations run on chosen days; the tiers domain's
clock is moved with the ``clock`` fixture where "today" matters (refunds, overrides, the
member view). Outbox rows are checked for every move.
"""

from __future__ import annotations

from datetime import date

from setia.core.db import Database
from tests.rules.helpers import Api, local
from tests.tiers.conftest import Clock
from tests.tiers.helpers import (
    code_of,
    evaluate,
    history,
    member_id,
    member_row,
    outbox,
    refund,
    setup,
    topics,
    view,
)


def test_upgrade_mid_window_and_downgrade_only_after_retention(
    api: Api, db: Database, clock: Clock
) -> None:
    """Calendar year, kept to the end of the next year, one level at a time, at-risk 30
    days ahead: Silver in March, Gold in July 2025; 2026 only reaches Silver's threshold;
    at-risk once in December 2026; Gold → Silver at the evaluation of 1 Jan 2027."""
    setup(api, at_risk_days=30)
    m = member_id(api.purchase(600_000, at=local(2025, 3, 1)))
    assert member_row(db, m) is None  # still Perunggu: nothing written
    api.purchase(500_000, at=local(2025, 3, 2))
    clock.set(2025, 3, 2)
    v = view(api, m, locale="en")
    assert (v["tier"]["code"], v["secure_until"]) == ("silver", "2026-12-31")
    api.purchase(4_000_000, at=local(2025, 7, 15))
    clock.set(2025, 7, 15)
    v = view(api, m, locale="en")
    assert (v["tier"]["code"], v["secure_until"]) == ("gold", "2026-12-31")
    assert [(o["topic"], o["from"], o["to"], o["on"]) for o in outbox(db)] == [
        ("tier.upgraded", "bronze", "silver", "2025-03-02"),
        ("tier.upgraded", "silver", "gold", "2025-07-15"),
    ]
    # 2026: Rp 1.200.000, enough for Silver only.
    api.purchase(1_200_000, at=local(2026, 2, 1))
    for day in (date(2025, 12, 31), date(2026, 1, 1), date(2026, 6, 1), date(2026, 11, 30)):
        r = evaluate(api, day)
        assert (r["downgraded"], r["at_risk"]) == (0, 0), day
    # 30 days before the downgrade (1 Jan 2027): at-risk, once.
    assert evaluate(api, date(2026, 12, 2))["at_risk"] == 1
    assert evaluate(api, date(2026, 12, 3))["at_risk"] == 0
    assert evaluate(api, date(2026, 12, 31))["at_risk"] == 0
    risk = [o for o in outbox(db) if o["topic"] == "tier.at_risk"]
    assert [(o["tier"], o["would_become"], o["on"]) for o in risk] == [
        ("gold", "silver", "2027-01-01")
    ]
    assert code_of(api, m) == "gold"
    clock.set(2027, 1, 1, 0, 5)
    r = evaluate(api, date(2027, 1, 1))
    assert r["downgraded"] == 1
    assert code_of(api, m) == "silver"
    assert topics(db) == ["tier.upgraded", "tier.upgraded", "tier.at_risk", "tier.downgraded"]
    down = outbox(db)[-1]
    assert (down["from"], down["to"], down["reason"], down["on"]) == (
        "gold",
        "silver",
        "downgraded",
        "2027-01-01",
    )
    assert [h["reason"] for h in history(api, m)] == ["downgraded", "upgraded", "upgraded"]


def test_new_local_year_starts_at_local_midnight(api: Api, db: Database, clock: Clock) -> None:
    """00:30 on 1 Jan in Jakarta is still 31 Dec in UTC: it counts for the new year; 23:30
    on 31 Dec (16:30 UTC) counts for the old one."""
    setup(api)
    late = member_id(api.purchase(1_000_000, at=local(2025, 12, 31, 23, 30), member="LATE"))
    early = member_id(api.purchase(1_000_000, at=local(2026, 1, 1, 0, 30), member="EARLY"))
    assert local(2026, 1, 1, 0, 30).startswith("2026-01-01T00:30")
    clock.set(2026, 1, 1, 9)
    e, lt = view(api, early, locale="en"), view(api, late, locale="en")
    assert (e["tier"]["code"], e["secure_until"]) == ("silver", "2027-12-31")
    assert e["figures"][0]["value"] == "1000000"
    assert (lt["tier"]["code"], lt["secure_until"]) == ("silver", "2026-12-31")
    assert lt["figures"][0]["value"] == "0"
    ups = {o["member_id"]: o["on"] for o in outbox(db)}
    assert ups == {early: "2026-01-01", late: "2025-12-31"}
    # At the end of 2026 the one who bought at 23:30 on 31 Dec 2025 drops; the other stays.
    evaluate(api, date(2027, 1, 1))
    assert (code_of(api, late), code_of(api, early)) == ("bronze", "silver")


RETENTION_MONTHS = {
    "window": {"kind": "rolling", "months": 12},
    "retention": {"kind": "months", "months": 3},
    "grace_days": 7,
    "at_risk_days": 0,
}


def _rolling_gold(api: Api, clock: Clock) -> str:
    m = member_id(api.purchase(3_000_000, at=local(2025, 1, 10)))
    api.purchase(2_500_000, at=local(2025, 2, 10))
    clock.set(2025, 2, 10)
    v = view(api, m, locale="en")
    assert (v["tier"]["code"], v["secure_until"]) == ("gold", "2025-05-10")
    return m


def _roll_off(api: Api, clock: Clock, m: str) -> None:
    # Still 5.5M in the window: each evaluation extends the retention three months.
    evaluate(api, date(2025, 6, 1))
    evaluate(api, date(2026, 1, 9))
    clock.set(2026, 1, 9)
    v = view(api, m)
    assert (v["figures"][0]["value"], v["secure_until"]) == ("5500000", "2026-04-09")
    # 10 Jan 2026: January 2025 leaves the window; 11 Feb: February leaves too.
    clock.set(2026, 1, 10)
    assert view(api, m)["figures"][0]["value"] == "2500000"
    assert view(api, m)["window"] == {"kind": "rolling", "start": "2025-01-11", "end": "2026-01-10"}
    assert evaluate(api, date(2026, 1, 10))["downgraded"] == 0
    clock.set(2026, 2, 11)
    assert view(api, m)["figures"][0]["value"] == "0"
    # Secure until 9 Apr, then seven days of grace: nothing moves before 17 Apr.
    for day in (date(2026, 2, 11), date(2026, 4, 9), date(2026, 4, 10), date(2026, 4, 16)):
        assert evaluate(api, day)["downgraded"] == 0, day
    clock.set(2026, 4, 16)
    assert view(api, m)["in_grace"] is True
    assert code_of(api, m) == "gold"


def test_rolling_window_rolls_off_then_to_qualified_after_grace(
    api: Api, db: Database, clock: Clock
) -> None:
    setup(api, downgrade="to_qualified", **RETENTION_MONTHS)
    m = _rolling_gold(api, clock)
    _roll_off(api, clock, m)
    assert evaluate(api, date(2026, 4, 17))["downgraded"] == 1
    assert code_of(api, m) == "bronze"  # straight to what the figures reach
    assert topics(db) == ["tier.upgraded", "tier.upgraded", "tier.downgraded"]
    assert outbox(db)[-1]["to"] == "bronze"


def test_rolling_window_one_level_at_a_time(api: Api, db: Database, clock: Clock) -> None:
    setup(api, downgrade="one_level", **RETENTION_MONTHS)
    m = _rolling_gold(api, clock)
    api.purchase(50_000, at=local(2026, 3, 1), order_id="SMALL")
    _roll_off(api, clock, m)
    assert evaluate(api, date(2026, 4, 17))["downgraded"] == 1
    assert code_of(api, m) == "silver"
    clock.set(2026, 4, 17)
    v = view(api, m)
    assert v["secure_until"] == "2026-07-17"  # Silver kept three months from the move
    # Silver was a step down, not reached by figures: a refund cannot revoke it.
    clock.set(2026, 4, 20)
    refund(api, "SMALL", 10_000, at=local(2026, 4, 20))
    assert view(api, m)["revoked_on"] is None
    assert evaluate(api, date(2026, 4, 21))["downgraded"] == 0
    assert evaluate(api, date(2026, 7, 24))["downgraded"] == 0  # grace to 24 Jul
    assert code_of(api, m) == "silver"
    assert evaluate(api, date(2026, 7, 25))["downgraded"] == 1
    assert code_of(api, m) == "bronze"
    assert [(o["topic"], o["to"]) for o in outbox(db)] == [
        ("tier.upgraded", "silver"),
        ("tier.upgraded", "gold"),
        ("tier.downgraded", "silver"),
        ("tier.downgraded", "bronze"),
    ]


def test_refund_below_threshold_moves_back_at_next_evaluation(
    api: Api, db: Database, clock: Clock
) -> None:
    """Silver in March, Gold in May (5.2M); refunds of the May order: 200k keeps Gold (5.0M),
    100k more revokes it; nothing moves until the evaluation, which goes back to Silver."""
    setup(api)
    m = member_id(api.purchase(1_200_000, at=local(2025, 3, 1)))
    api.purchase(4_000_000, at=local(2025, 5, 1), order_id="MAY")
    clock.set(2025, 6, 1)
    assert code_of(api, m) == "gold"
    refund(api, "MAY", 200_000, at=local(2025, 6, 1))
    assert view(api, m)["revoked_on"] is None
    refund(api, "MAY", 100_000, at=local(2025, 6, 1, 13))
    v = view(api, m, locale="en")
    assert (v["tier"]["code"], v["revoked_on"]) == ("gold", "2025-06-01")
    assert v["next_evaluation"]["action"] == "downgrade"
    assert v["next_evaluation"]["tier"]["code"] == "silver"
    assert topics(db) == ["tier.upgraded", "tier.upgraded"]
    r = evaluate(api, date(2025, 6, 2))
    assert r["downgraded"] == 1
    clock.set(2025, 6, 2)
    v = view(api, m)
    assert (v["tier"]["code"], v["secure_until"], v["revoked_on"]) == (
        "silver",
        "2026-12-31",
        None,
    )
    down = outbox(db)[-1]
    assert (down["topic"], down["from"], down["to"], down["reason"]) == (
        "tier.downgraded",
        "gold",
        "silver",
        "revoked",
    )
    # Buying it back re-earns Gold at once.
    api.purchase(100_000, at=local(2025, 6, 3))
    assert code_of(api, m) == "gold"


def test_refund_of_a_straight_jump_falls_to_what_the_window_still_reaches(
    api: Api, db: Database, clock: Clock
) -> None:
    """Perunggu → Emas in one order in 2025; a refund in 2026 leaves 2025 at Perak's level.
    The evaluation (in 2026, whose own figures are nil) moves the member to Perak, which the
    2025 figures still reach and keep until the end of 2026, not to Perunggu."""
    setup(api)
    m = member_id(api.purchase(5_000_000, at=local(2025, 11, 1), order_id="BIG"))
    clock.set(2026, 2, 1)
    refund(api, "BIG", 1_000_000, at=local(2026, 2, 1))
    assert view(api, m)["revoked_on"] == "2026-02-01"
    evaluate(api, date(2026, 2, 2))
    clock.set(2026, 2, 2)
    v = view(api, m)
    assert (v["tier"]["code"], v["secure_until"]) == ("silver", "2026-12-31")
    assert outbox(db)[-1]["to"] == "silver"
    # Refunding all of it: the 2025 figures reach nothing; the next evaluation goes down.
    refund(api, "BIG", 4_000_000, at=local(2026, 2, 3))
    evaluate(api, date(2026, 2, 4))
    assert code_of(api, m) == "bronze"


def test_refund_of_an_older_windows_purchase_leaves_the_tier_alone(
    api: Api, db: Database, clock: Clock
) -> None:
    """Gold in 2025 and earned again in 2026: refunding the whole 2025 order does not touch
    the 2026 qualification, so nothing is revoked and nothing moves."""
    setup(api)
    m = member_id(api.purchase(5_000_000, at=local(2025, 4, 1), order_id="OLD"))
    api.purchase(5_000_000, at=local(2026, 3, 1))
    clock.set(2026, 3, 1)
    assert view(api, m)["secure_until"] == "2027-12-31"
    before = member_row(db, m)
    clock.set(2026, 5, 1)
    refund(api, "OLD", 5_000_000, at=local(2026, 5, 1))
    after = member_row(db, m)
    assert before is not None
    assert after is not None
    assert (after.version, after.revoked_on) == (before.version, None)
    assert evaluate(api, date(2026, 5, 2))["downgraded"] == 0
    assert code_of(api, m) == "gold"
    assert topics(db) == ["tier.upgraded"]


def test_override_expires_at_the_evaluation_after_its_last_day(
    api: Api, db: Database, clock: Clock
) -> None:
    setup(api)
    m = member_id(api.purchase(50_000, at=local(2025, 6, 1)))
    clock.set(2025, 6, 1)
    r = api.put(
        f"/v1/members/{m}/tier/override",
        {"tier": "gold", "until": "2025-06-30", "reason": "Pemilik toko: tamu penting"},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["tier"]["code"], body["earned_tier"]["code"]) == ("gold", "bronze")
    assert body["override"] == {
        "tier": "gold",
        "until": "2025-06-30",
        "reason": "Pemilik toko: tamu penting",
    }
    assert evaluate(api, date(2025, 6, 30))["overrides_ended"] == 0
    assert code_of(api, m) == "gold"
    r2 = evaluate(api, date(2025, 7, 1))
    assert (r2["overrides_ended"], r2["downgraded"]) == (1, 0)
    clock.set(2025, 7, 1)
    v = view(api, m)
    assert (v["tier"]["code"], v["override"]) == ("bronze", None)
    assert [h["reason"] for h in history(api, m)] == ["override_ended", "override"]
    assert history(api, m)[1]["actor"] != "system"
    assert [(o["topic"], o["to"]) for o in outbox(db)] == [
        ("tier.upgraded", "gold"),
        ("tier.downgraded", "bronze"),
    ]


def test_override_below_the_earned_tier_changes_nothing_and_removal(
    api: Api, db: Database, clock: Clock
) -> None:
    setup(api)
    m = member_id(api.purchase(1_500_000, at=local(2025, 6, 1)))
    clock.set(2025, 6, 2)
    r = api.put(f"/v1/members/{m}/tier/override", {"tier": "bronze", "reason": "test rendah"})
    assert r.json()["tier"]["code"] == "silver"
    r = api.put(f"/v1/members/{m}/tier/override", {"tier": "gold", "reason": "naik manual"})
    assert r.json()["tier"]["code"] == "gold"
    r = api.client.delete(f"/v1/members/{m}/tier/override", headers=api.headers)
    assert r.status_code == 200, r.text
    assert (r.json()["tier"]["code"], r.json()["override"]) == ("silver", None)
    assert topics(db) == ["tier.upgraded", "tier.upgraded", "tier.downgraded"]


def test_invitation_only_tier_is_reached_only_by_override(
    api: Api, db: Database, clock: Clock
) -> None:
    tiers = setup(api)["tiers"]
    tiers.append(
        {
            "code": "black",
            "names": {"id": "Hitam", "ms": "Hitam", "en": "Black"},
            "thresholds": ["1"],
            "invitation_only": True,
            "earn_multiplier": "2",
        }
    )
    body = {k: v for k, v in setup(api).items() if k not in ("id", "program_id", "revision")}
    body["tiers"] = [{k: v for k, v in t.items() if k not in ("id", "rank")} for t in tiers]
    r = api.put(f"/v1/programs/{api.tenant.program_id}/tier-set", body)
    assert r.status_code == 200, r.text
    m = member_id(api.purchase(50_000_000, at=local(2025, 6, 1)))
    clock.set(2025, 6, 1)
    v = view(api, m, locale="en")
    assert (v["tier"]["code"], v["qualifies_for"]["code"]) == ("gold", "gold")
    assert v["progress"]["next_tier"] is None
    assert evaluate(api, date(2025, 6, 2))["upgraded"] == 0
    r = api.put(f"/v1/members/{m}/tier/override", {"tier": "black", "reason": "undangan"})
    assert r.status_code == 200, r.text
    assert r.json()["tier"]["code"] == "black"
    assert r.json()["benefits"]["earn_multiplier"] == "2.0000"


def test_refunding_everything_of_the_year_leaves_nothing_kept(
    api: Api, db: Database, clock: Clock
) -> None:
    """Perak in March and Emas in May 2025, both orders refunded in June: the tier before
    (Perak) was reached with refunded money in the same window, so it is not kept."""
    setup(api)
    m = member_id(api.purchase(1_200_000, at=local(2025, 3, 1), order_id="A"))
    api.purchase(4_000_000, at=local(2025, 5, 1), order_id="B")
    clock.set(2025, 6, 1)
    refund(api, "B", 4_000_000, at=local(2025, 6, 1))
    refund(api, "A", 1_200_000, at=local(2025, 6, 1, 13))
    v = view(api, m)
    assert (v["tier"]["code"], v["next_evaluation"]["tier"]["code"]) == ("gold", "bronze")
    evaluate(api, date(2025, 6, 2))
    assert code_of(api, m) == "bronze"


def test_refund_keeps_a_tier_earned_in_an_earlier_window(
    api: Api, db: Database, clock: Clock
) -> None:
    """Perak from 2024 (kept to the end of 2025), Emas in one order in 2025 refunded: back
    to Perak until the end of 2025, then down at the evaluation of 1 Jan 2026."""
    setup(api)
    m = member_id(api.purchase(1_000_000, at=local(2024, 3, 1)))
    api.purchase(5_000_000, at=local(2025, 5, 1), order_id="B")
    clock.set(2025, 6, 1)
    refund(api, "B", 5_000_000, at=local(2025, 6, 1))
    evaluate(api, date(2025, 6, 2))
    clock.set(2025, 6, 2)
    v = view(api, m)
    assert (v["tier"]["code"], v["secure_until"]) == ("silver", "2025-12-31")
    evaluate(api, date(2026, 1, 1))
    assert code_of(api, m) == "bronze"


def test_buying_again_before_the_evaluation_undoes_the_revocation(
    api: Api, db: Database, clock: Clock
) -> None:
    setup(api)
    m = member_id(api.purchase(5_000_000, at=local(2025, 5, 1), order_id="B"))
    clock.set(2025, 6, 1)
    refund(api, "B", 1_000_000, at=local(2025, 6, 1))
    assert view(api, m)["revoked_on"] == "2025-06-01"
    api.purchase(1_000_000, at=local(2025, 6, 1, 15))
    v = view(api, m)
    assert (v["tier"]["code"], v["revoked_on"]) == ("gold", None)
    assert v["next_evaluation"]["action"] == "stay"
    assert evaluate(api, date(2025, 6, 2))["downgraded"] == 0
    assert code_of(api, m) == "gold"
    assert topics(db) == ["tier.upgraded"]
