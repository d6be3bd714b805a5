"""Effects, recorded end to end through POST /v1/events: what lands in the ledger, per rule."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from dateutil.relativedelta import relativedelta
from sqlalchemy import select

from setia.core.db import Database
from setia.ledger.models import Lot, Transfer
from setia.ledger.verify import verify
from setia.programs import service as programs
from setia.programs.models import Program
from setia.rules.models import RuleAward
from tests.conftest import TenantFixture
from tests.rules.helpers import Api, by_rule, item, local

COFFEE = {"field": "item.category", "op": "eq", "value": "coffee"}
NOT_DELIVERY = {"field": "item.sku", "op": "ne", "value": "DELIVERY"}
BASKET = [
    item("KOPI-SUSU", 2, 25000, category="coffee"),
    item("LATTE", 1, 32000, category="coffee"),
    item("CROISSANT", 1, 22000, category="bakery"),
    item("DELIVERY", 1, 15000, category="fee"),
]  # 119000 in all, 104000 without delivery, 3 coffee units


def configure(db: Database, t: TenantFixture, **changes: Any) -> None:
    with db.session() as s:
        program = s.get(Program, t.program_id)
        assert program is not None
        programs.update_program(s, program, changes, actor="test")


def lots(db: Database, transfer_ids: list[str]) -> dict[str, Lot]:
    with db.session() as s:
        rows = s.execute(
            select(Lot).where(Lot.transfer_id.in_([uuid.UUID(t) for t in transfer_ids]))
        ).scalars()
        return {str(lot.transfer_id): lot for lot in rows}


def ledger_ok(db: Database) -> None:
    with db.session() as s:
        report = verify(s)
        assert report.ok, report.checks


def test_per_amount_on_the_whole_order(api: Api, db: Database) -> None:
    api.add_rule(name="Double", effect={"type": "per_amount", "points": 2, "per": "1000"})
    res = api.purchase(119_000, items=BASKET)
    assert by_rule(res) == {"Base earn rate": 119, "Double": 238}
    assert res["points"]["earned"] == 357
    ledger_ok(db)


def test_per_amount_on_matching_items_only_excludes_delivery(api: Api, db: Database) -> None:
    api.add_rule(
        name="No delivery",
        effect={
            "type": "per_amount",
            "points": 1,
            "per": "1000",
            "scope": "items",
            "items_where": NOT_DELIVERY,
        },
    )
    api.add_rule(
        name="Coffee 5%",
        effect={
            "type": "per_amount",
            "points": 5,
            "per": "100000",
            "scope": "items",
            "items_where": {"any": [COFFEE, {"field": "item.brand", "op": "eq", "value": "X"}]},
        },
    )
    res = api.purchase(119_000, items=BASKET)
    # 104000 without delivery; coffee is 2×25000 + 32000 = 82000 → 4.1 → 4 (floor).
    assert by_rule(res) == {"Base earn rate": 119, "No delivery": 104, "Coffee 5%": 4}
    # Without items nothing matches: the effect gives nothing, and says so.
    res = api.purchase(119_000)
    assert by_rule(res) == {"Base earn rate": 119}
    skipped = {s["rule_name"]: s for s in res["points"]["not_fired"]}
    assert skipped["No delivery"]["reason"] == "no_points"
    assert skipped["No delivery"]["details"] == {"computed": 0}
    ledger_ok(db)


@pytest.mark.parametrize(("rounding", "points"), [("floor", 3), ("ceil", 4), ("round", 4)], ids=str)
def test_per_amount_rounding(api: Api, rounding: str, points: int) -> None:
    api.add_rule(
        name="R", effect={"type": "per_amount", "points": 1, "per": "25000", "rounding": rounding}
    )
    res = api.purchase(87_500)  # 3.5 units of 25000
    assert by_rule(res)["R"] == points


def test_fixed_points(api: Api) -> None:
    api.add_rule(name="Welcome back", effect={"type": "fixed", "points": 500})
    res = api.purchase(10_000)
    assert by_rule(res) == {"Base earn rate": 10, "Welcome back": 500}


def test_multiplier_of_the_base_rule(api: Api, db: Database, tenant: TenantFixture) -> None:
    api.add_rule(name="2x", effect={"type": "multiplier", "factor": "2"})
    api.add_rule(name="1.5x", effect={"type": "multiplier", "factor": "1.5"})
    res = api.purchase(85_000)
    # ×2 doubles the base (a bonus equal to it); ×1.5 adds half of it, floored.
    assert by_rule(res) == {"Base earn rate": 85, "2x": 85, "1.5x": 42}
    # The multiplier follows the program's base rate, not a fixed number.
    configure(db, tenant, earn_points=3)
    res = api.purchase(85_000)
    assert by_rule(res) == {"Base earn rate": 255, "2x": 255, "1.5x": 127}
    # Factor 1 gives no bonus: explained as nothing to give.
    api.add_rule(name="1x", effect={"type": "multiplier", "factor": "1"})
    res = api.purchase(85_000)
    assert "1x" not in by_rule(res)
    assert {s["rule_name"]: s["reason"] for s in res["points"]["not_fired"]} == {"1x": "no_points"}


def test_multiplier_does_not_multiply_other_bonuses(api: Api) -> None:
    api.add_rule(name="Fixed", effect={"type": "fixed", "points": 1000}, priority=150)
    api.add_rule(name="3x", effect={"type": "multiplier", "factor": "3"}, priority=300)
    res = api.purchase(50_000)
    assert by_rule(res) == {"Base earn rate": 50, "Fixed": 1000, "3x": 100}


def test_per_item(api: Api) -> None:
    api.add_rule(name="Per coffee", effect={"type": "per_item", "points": 5, "items_where": COFFEE})
    api.add_rule(name="Per unit", effect={"type": "per_item", "points": 1})
    res = api.purchase(119_000, items=BASKET)
    assert by_rule(res) == {"Base earn rate": 119, "Per coffee": 15, "Per unit": 5}


def test_add_tag(api: Api, db: Database) -> None:
    api.add_rule(
        name="Big spender",
        conditions={"field": "event.amount", "op": "gte", "value": "1000000"},
        effect={"type": "add_tag", "tag": "big-spender"},
    )
    api.add_rule(
        name="VIP bonus",
        conditions={"field": "member.tags", "op": "contains", "value": "big-spender"},
        effect={"type": "fixed", "points": 100},
    )
    small = api.purchase(50_000)
    member_id = small["member_id"]
    assert by_rule(small) == {"Base earn rate": 50}
    assert api.get(f"/v1/members/{member_id}").json()["tags"] == []
    big = api.purchase(1_500_000)
    # The tag is given by this event: the bonus that needs it is evaluated on the member as
    # the event found them (tags before the event).
    assert by_rule(big) == {"Base earn rate": 1500}
    assert api.get(f"/v1/members/{member_id}").json()["tags"] == ["big-spender"]
    # The event explains the tag it gave, though it carries no points.
    shown = api.get(f"/v1/events/{big['id']}").json()["points"]
    assert [(t["rule_name"], t["tag"], t["points"]) for t in shown["tags_added"]] == [
        ("Big spender", "big-spender", 0)
    ]
    assert "tags_added" not in small["points"]
    after = api.purchase(50_000)
    assert by_rule(after) == {"Base earn rate": 50, "VIP bonus": 100}
    # The tag award is recorded once (with no points and no ledger transfer).
    with db.session() as s:
        tag_rows = s.execute(select(RuleAward).where(RuleAward.points == 0)).scalars().all()
        assert [(r.event_id, r.rule_revision) for r in tag_rows] == [
            (uuid.UUID(big["event_id"]), 1)
        ]
    ledger_ok(db)


def test_effect_pending_days_and_expiry_override_the_programs(
    api: Api, db: Database, tenant: TenantFixture
) -> None:
    configure(db, tenant, pending_days=14, expiry_policy="after_duration", expiry_months=12)
    api.add_rule(
        name="Quick", effect={"type": "fixed", "points": 100, "pending_days": 0, "expiry_months": 3}
    )
    api.add_rule(name="Slow", effect={"type": "fixed", "points": 200, "pending_days": 30})
    api.add_rule(name="Default", effect={"type": "fixed", "points": 300})
    at = local(2026, 1, 31, 10)
    res = api.purchase(10_000, at=at)
    occurred = datetime.fromisoformat(res["occurred_at"])
    awards = {a["rule_name"]: a for a in res["points"]["awards"]}
    found = lots(db, [a["transfer_id"] for a in awards.values()])

    def check(name: str, pending: datetime | None, expires: datetime | None) -> None:
        award = awards[name]
        assert award["pending_until"] == (pending.isoformat() if pending else None), name
        assert award["expires_at"] == (expires.isoformat() if expires else None), name
        lot = found[award["transfer_id"]]
        assert lot.pending_until == pending, name
        assert lot.expires_at == expires, name

    year = occurred + relativedelta(months=12)
    check("Base earn rate", occurred + timedelta(days=14), year)
    check("Quick", None, occurred + relativedelta(months=3))  # 31 Jan + 3 months = 30 Apr
    assert awards["Quick"]["expires_at"].startswith("2026-04-30")
    check("Slow", occurred + timedelta(days=30), year)
    check("Default", occurred + timedelta(days=14), year)
    ledger_ok(db)


def test_a_rules_expiry_months_count_in_the_tenants_zone_as_the_programs_do(
    api: Api, db: Database, tenant: TenantFixture
) -> None:
    """Bought at 05:00 on 31 March in Jakarta (still 30 March in UTC): one month on is the
    last day of April there, for the program's own expiry and a rule's alike."""
    configure(db, tenant, expiry_policy="after_duration", expiry_months=1)
    api.add_rule(name="Monthly", effect={"type": "fixed", "points": 100, "expiry_months": 1})
    res = api.purchase(10_000, at=local(2026, 3, 31, 5))
    awards = {a["rule_name"]: a for a in res["points"]["awards"]}
    assert awards["Monthly"]["expires_at"] == awards["Base earn rate"]["expires_at"]
    assert awards["Monthly"]["expires_at"] == "2026-04-29T22:00:00+00:00"  # 30 Apr, 05:00 WIB
    ledger_ok(db)


def test_every_award_is_its_own_transfer_naming_rule_and_revision(api: Api, db: Database) -> None:
    r = api.add_rule(name="Fixed", effect={"type": "fixed", "points": 70})
    res = api.purchase(30_000)
    with db.session() as s:
        transfers = s.execute(
            select(Transfer).where(
                Transfer.id.in_([uuid.UUID(a["transfer_id"]) for a in res["points"]["awards"]])
            )
        ).scalars()
        details = sorted(
            (t.amount, t.details["rule"], t.details["rule_revision"]) for t in transfers
        )
    assert details == [(30, "base", 1), (70, r["id"], 1)]


def test_add_tag_honours_count_limits_and_layering(api: Api, db: Database) -> None:
    api.add_rule(
        name="Promo tag",
        effect={"type": "add_tag", "tag": "promo"},
        limits=[{"period": "lifetime", "max_count": 1}],
        mode="exclusive",
        priority=150,
    )
    api.add_rule(name="Later", effect={"type": "fixed", "points": 5}, priority=200)
    first = api.purchase(10_000)
    # The tag rule fired (exclusive): the later stackable rule is stopped.
    assert by_rule(first) == {"Base earn rate": 10}
    assert first["points"]["tags_added"][0]["tag"] == "promo"
    skipped = {s["rule_name"]: s for s in first["points"]["not_fired"]}
    assert skipped["Later"]["reason"] == "stopped_by_exclusive_rule"
    # Its one firing is used up: it is now explained, and no longer stops anything.
    second = api.purchase(10_000)
    assert by_rule(second) == {"Base earn rate": 10, "Later": 5}
    skipped = {s["rule_name"]: s for s in second["points"]["not_fired"]}
    assert skipped["Promo tag"]["reason"] == "limit_reached"
    assert skipped["Promo tag"]["details"] == {
        "period": "lifetime",
        "max_count": 1,
        "used_count": 1,
    }
    assert "tags_added" not in second["points"]
