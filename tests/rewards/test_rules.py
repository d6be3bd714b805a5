"""Availability, eligibility, stock per period in the tenant's time zone, member limits,
the member's view of the catalog, and bad input that writes nothing."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from setia.core.db import Database
from setia.core.errors import SetiaError
from setia.core.time import utcnow
from setia.programs.models import Program
from setia.rewards import service
from setia.rewards.schemas import RedemptionIn
from setia.tenants.models import Tenant
from tests.conftest import TenantFixture, make_tenant
from tests.ledger.support import assert_db_sound
from tests.rewards.helpers import Api, counts, refused, reward
from tests.tiers.helpers import tier_set

JKT = ZoneInfo("Asia/Jakarta")


def jkt(y: int, m: int, d: int, hh: int = 12, mm: int = 0, ss: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, ss, tzinfo=JKT)


def redeem_at(db: Database, t: TenantFixture, member: str, ref: str, at: datetime) -> str:
    """Redeem through the service as of ``at`` (the period counters use it)."""
    with db.session() as s:
        tenant = s.get(Tenant, t.tenant_id)
        program = s.get(Program, t.program_id)
        assert tenant is not None
        assert program is not None
        red, _ = service.redeem(
            s,
            tenant,
            program,
            uuid.UUID(member),
            RedemptionIn(reward=ref),
            actor="test",
            idempotency_key=None,
            now=at,
        )
        return red.status


def refused_at(db: Database, t: TenantFixture, member: str, ref: str, at: datetime) -> str:
    with pytest.raises(SetiaError) as exc:
        redeem_at(db, t, member, ref, at)
    return exc.value.code


# --------------------------------------------------------------------------- periods


def test_period_keys_follow_the_tenant_zone() -> None:
    # 23:59 local on Sunday 30 Nov 2025 is 16:59 UTC; 00:00 local Monday is 17:00 UTC.
    before = jkt(2025, 11, 30, 23, 59, 59)
    after = jkt(2025, 12, 1, 0, 0)
    tz = "Asia/Jakarta"
    assert service.period_key("day", before, tz) == "2025-11-30"
    assert service.period_key("day", after, tz) == "2025-12-01"
    assert service.period_key("week", before, tz) == "2025-11-24"
    assert service.period_key("week", after, tz) == "2025-12-01"
    assert service.period_key("month", before, tz) == "2025-11-01"
    assert service.period_key("month", after, tz) == "2025-12-01"
    assert service.period_key("year", after, tz) == "2025-01-01"
    assert service.period_key("lifetime", after, tz) == "lifetime"
    # the same instant is still 30 Nov in UTC
    assert after.astimezone(UTC).date().isoformat() == "2025-11-30"
    assert service.period_key("day", after, "UTC") == "2025-11-30"


def test_daily_stock_resets_at_local_midnight(api: Api, db: Database) -> None:
    api.put_reward("KOPI", reward("physical", 10, stock_per_period=2, stock_period="day"))
    ms = [api.member() for _ in range(4)]
    for m in ms:
        api.give(m, 100)
    assert redeem_at(db, api.tenant, ms[0], "KOPI", jkt(2025, 11, 30, 0, 0)) == "requested"
    assert redeem_at(db, api.tenant, ms[1], "KOPI", jkt(2025, 11, 30, 23, 59, 59)) == "requested"
    assert refused_at(db, api.tenant, ms[2], "KOPI", jkt(2025, 11, 30, 23, 59, 59)) == (
        "out_of_stock"
    )
    # local midnight: 17:00 UTC of the same UTC day
    assert redeem_at(db, api.tenant, ms[2], "KOPI", jkt(2025, 12, 1, 0, 0)) == "requested"
    assert redeem_at(db, api.tenant, ms[3], "KOPI", jkt(2025, 12, 1, 8, 0)) == "requested"
    assert refused_at(db, api.tenant, ms[0], "KOPI", jkt(2025, 12, 1, 9, 0)) == "out_of_stock"
    assert_db_sound(db)


def test_monthly_stock_resets_at_month_end(api: Api, db: Database) -> None:
    api.put_reward("KOPI", reward("physical", 10, stock_per_period=1, stock_period="month"))
    a, b = api.member(), api.member()
    for m in (a, b):
        api.give(m, 100)
    assert redeem_at(db, api.tenant, a, "KOPI", jkt(2026, 2, 1, 0, 0)) == "requested"
    assert refused_at(db, api.tenant, b, "KOPI", jkt(2026, 2, 28, 23, 59, 59)) == "out_of_stock"
    assert redeem_at(db, api.tenant, b, "KOPI", jkt(2026, 3, 1, 0, 0)) == "requested"


def test_total_and_period_stock_together(api: Api, db: Database) -> None:
    api.put_reward(
        "KOPI", reward("physical", 10, stock_total=3, stock_per_period=2, stock_period="day")
    )
    ms = [api.member() for _ in range(4)]
    for m in ms:
        api.give(m, 100)
    assert redeem_at(db, api.tenant, ms[0], "KOPI", jkt(2026, 1, 5)) == "requested"
    assert redeem_at(db, api.tenant, ms[1], "KOPI", jkt(2026, 1, 5)) == "requested"
    assert refused_at(db, api.tenant, ms[2], "KOPI", jkt(2026, 1, 5)) == "out_of_stock"
    assert redeem_at(db, api.tenant, ms[2], "KOPI", jkt(2026, 1, 6)) == "requested"
    assert refused_at(db, api.tenant, ms[3], "KOPI", jkt(2026, 1, 7)) == "out_of_stock"


def test_member_limit_per_week(api: Api, db: Database) -> None:
    api.put_reward("KOPI", reward("physical", 10, member_limit=2, member_limit_period="week"))
    m, other = api.member(), api.member()
    api.give(m, 1000)
    api.give(other, 1000)
    sunday = jkt(2025, 11, 30, 20, 0)
    assert redeem_at(db, api.tenant, m, "KOPI", sunday) == "requested"
    assert redeem_at(db, api.tenant, m, "KOPI", sunday) == "requested"
    assert refused_at(db, api.tenant, m, "KOPI", sunday) == "member_limit_reached"
    # another member is not limited by it
    assert redeem_at(db, api.tenant, other, "KOPI", sunday) == "requested"
    # Monday 00:00 local starts a new week
    assert redeem_at(db, api.tenant, m, "KOPI", jkt(2025, 12, 1, 0, 0)) == "requested"


def test_member_limit_lifetime_through_the_api(api: Api, db: Database) -> None:
    api.put_reward(
        "WELCOME", reward("physical", 10, member_limit=1, member_limit_period="lifetime")
    )
    m = api.member()
    api.give(m, 1000)
    api.redeem_ok(m, "WELCOME")
    before = counts(db)
    body = refused(api.redeem(m, "WELCOME"), 409, "member_limit_reached")
    assert body["limit"] == 1
    assert counts(db) == before
    view = {r["code"]: r for r in api.catalog(m, locale="en")["rewards"]}
    assert view["WELCOME"]["redeemable"] is False
    assert view["WELCOME"]["reason"]["code"] == "member_limit_reached"


# --------------------------------------------------------------------------- eligibility


def set_tiers(api: Api) -> None:
    r = api.put(f"/v1/programs/{api.tenant.program_id}/tier-set", tier_set())
    assert r.status_code == 200, r.text


def override(api: Api, member: str, tier: str) -> None:
    r = api.put(f"/v1/members/{member}/tier/override", {"tier": tier, "reason": "test tier"})
    assert r.status_code == 200, r.text


def test_tier_eligibility_exact_and_or_above(api: Api, db: Database) -> None:
    set_tiers(api)
    api.put_reward("SILVER", reward("physical", 10, eligibility={"tiers": ["silver"]}))
    api.put_reward(
        "SILVER_UP",
        reward("physical", 10, eligibility={"tiers": ["silver"], "tiers_or_above": True}),
    )
    bronze, gold = api.member(), api.member()
    override(api, gold, "gold")
    for m in (bronze, gold):
        api.give(m, 1000)
    before = counts(db)
    body = refused(api.redeem(bronze, "SILVER_UP"), 409, "not_eligible")
    assert body["reason"] == "tier"
    assert body["member_tier"] == "bronze"
    refused(api.redeem(gold, "SILVER"), 409, "not_eligible")
    assert counts(db) == before
    api.redeem_ok(gold, "SILVER_UP")
    view = {r["code"]: r for r in api.catalog(bronze, locale="id")["rewards"]}
    assert view["SILVER"]["reason"]["code"] == "not_eligible_tier"
    # the tier by its name in the member's language, not its code
    assert view["SILVER"]["reason"]["message"] == "Khusus anggota tier Perak"
    view = {r["code"]: r for r in api.catalog(bronze, locale="en")["rewards"]}
    assert view["SILVER"]["reason"]["message"] == "Only for Silver members"
    # unknown tier codes are refused when the reward is saved
    r = api.put(
        f"/v1/programs/{api.tenant.program_id}/rewards/X",
        reward("physical", 1, eligibility={"tiers": ["platinum"]}),
    )
    refused(r, 422, "unknown_tier")


def test_paid_membership_and_tags(api: Api, db: Database) -> None:
    api.put_reward("PLUS", reward("physical", 10, eligibility={"requires_membership": True}))
    api.put_reward("VIP", reward("physical", 10, eligibility={"tags": ["vip", "staff"]}))
    plain = api.member()
    tagged = api.member(tags=["staff"])
    for m in (plain, tagged):
        api.give(m, 1000)
    body = refused(api.redeem(plain, "PLUS"), 409, "not_eligible")
    assert body["reason"] == "plan"
    body = refused(api.redeem(plain, "VIP"), 409, "not_eligible")
    assert body["reason"] == "tags"
    api.redeem_ok(tagged, "VIP")
    r = api.post(
        "/v1/membership-plans",
        {
            "code": "plus",
            "names": {"id": "Member Plus"},
            "price": "49000",
            "currency": "IDR",
            "period": "monthly",
        },
    )
    assert r.status_code == 201, r.text
    r = api.post(
        "/v1/subscriptions",
        {
            "member_id": plain,
            "plan": "plus",
            "payment": {
                "gateway": "midtrans",
                "external_id": "SUB-1",
                "amount": "49000",
                "currency": "IDR",
            },
        },
    )
    assert r.status_code == 201, r.text
    api.redeem_ok(plain, "PLUS")
    assert_db_sound(db)


# --------------------------------------------------------------------------- catalog view


def test_member_catalog_reasons_and_visibility(api: Api, db: Database) -> None:
    now = utcnow()
    api.put_reward("CHEAP", reward("physical", 50))
    api.put_reward("DEAR", reward("physical", 500))
    api.put_reward("HIDDEN", reward("physical", 10, visible=False))
    api.put_reward("GONE", reward("physical", 10, stock_total=0))
    api.put_reward("PAUSED", reward("physical", 10, status="paused"))
    api.put_reward(
        "SOON", reward("physical", 10, available_from=(now + timedelta(days=3)).isoformat())
    )
    api.put_reward(
        "OVER", reward("physical", 10, available_until=(now - timedelta(days=1)).isoformat())
    )
    api.put_reward("OLD", reward("physical", 10))
    r = api.post(f"/v1/programs/{api.tenant.program_id}/rewards/OLD/archive")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "archived"
    m = api.member()
    api.give(m, 100)
    out = api.catalog(m, locale="en")
    assert out["points_available"] == 100
    view = {r["code"]: r for r in out["rewards"]}
    assert set(view) == {"CHEAP", "DEAR", "GONE", "PAUSED", "SOON"}
    assert view["CHEAP"]["redeemable"] is True
    assert view["CHEAP"]["reason"] is None
    assert view["CHEAP"]["name"] == "Kopi Susu (en)"
    dear = view["DEAR"]["reason"]
    assert dear["code"] == "insufficient_points"
    assert dear["points_missing"] == 400
    assert dear["message"] == "You need 400 more Poin"
    assert view["GONE"]["reason"]["code"] == "out_of_stock"
    assert view["GONE"]["stock_left"] == 0
    assert view["PAUSED"]["reason"]["code"] == "paused"
    assert view["SOON"]["reason"]["code"] == "not_yet_available"
    ind = {r["code"]: r for r in api.catalog(m, locale="id")["rewards"]}
    assert ind["DEAR"]["reason"]["message"] == "Poin Anda kurang 400 lagi"
    assert ind["CHEAP"]["name"] == "Kopi Susu (id)"
    # hidden: not listed, but redeemable by its code
    api.redeem_ok(m, "HIDDEN")
    admin = api.get(f"/v1/programs/{api.tenant.program_id}/rewards").json()
    assert {r["code"] for r in admin} == {
        "CHEAP",
        "DEAR",
        "HIDDEN",
        "GONE",
        "PAUSED",
        "SOON",
        "OVER",
        "OLD",
    }
    assert next(r for r in admin if r["code"] == "HIDDEN")["stock"]["used"] == 0


# --------------------------------------------------------------------------- bad input


def test_each_refusal_writes_nothing(api: Api, db: Database, client: Any) -> None:
    now = utcnow()
    api.put_reward("OK", reward("physical", 100, stock_total=5))
    api.put_reward("PAUSED", reward("physical", 10, status="paused"))
    api.put_reward(
        "SOON", reward("physical", 10, available_from=(now + timedelta(days=3)).isoformat())
    )
    api.put_reward(
        "OVER", reward("physical", 10, available_until=(now - timedelta(days=1)).isoformat())
    )
    api.put_reward("OLD", reward("physical", 10))
    api.post(f"/v1/programs/{api.tenant.program_id}/rewards/OLD/archive")
    api.put_reward("GONE", reward("physical", 10, stock_total=0))
    m = api.member()
    api.give(m, 50)
    other = make_tenant(db, name="Toko Lain")
    other_api = Api(client, other)
    stranger = other_api.member()
    other_api.give(stranger, 1000)
    cases: list[tuple[Callable[[], Any], int, str]] = [
        (lambda: api.redeem(m, "NOPE"), 404, "reward_not_found"),
        (lambda: api.redeem(m, str(uuid.uuid4())), 404, "reward_not_found"),
        (lambda: api.redeem(m, "OLD"), 409, "reward_unavailable"),
        (lambda: api.redeem(m, "PAUSED"), 409, "reward_unavailable"),
        (lambda: api.redeem(m, "SOON"), 409, "reward_unavailable"),
        (lambda: api.redeem(m, "OVER"), 409, "reward_unavailable"),
        (lambda: api.redeem(m, "GONE"), 409, "out_of_stock"),
        (lambda: api.redeem(m, "OK"), 409, "insufficient_points"),
        (lambda: api.redeem(m, "OK", quantity=6), 409, "out_of_stock"),
        (lambda: api.redeem(stranger, "OK"), 404, "member_not_found"),
        (lambda: other_api.redeem(stranger, "OK"), 404, "reward_not_found"),
        (lambda: api.redeem(m, "OK", channel="fax"), 422, "validation_error"),
        (lambda: api.redeem(str(uuid.uuid4()), "OK"), 404, "member_not_found"),
    ]
    before = counts(db)
    for call, status, code in cases:
        r = call()
        assert r.status_code == status, (code, r.text)
        if status != 422:
            assert r.json()["code"] == code, r.text
    assert counts(db) == before
    body = refused(api.redeem(m, "SOON"), 409, "reward_unavailable")
    assert body["reason"] == "not_yet_available"
    assert body["available_from"]
    body = refused(api.redeem(m, "OK"), 409, "insufficient_points")
    assert body["available"] == 50
    assert body["missing"] == 50
    assert api.available(m) == 50


def test_min_redeem_balance_applies(api: Api, db: Database) -> None:
    from tests.ledger.support import configure

    configure(db, api.tenant, min_redeem_points=200)
    api.put_reward("KOPI", reward("physical", 50))
    m = api.member()
    api.give(m, 150)
    before = counts(db)
    refused(api.redeem(m, "KOPI"), 409, "below_minimum_redeem")
    assert counts(db) == before


def test_put_validates_each_kind(api: Api) -> None:
    path = f"/v1/programs/{api.tenant.program_id}/rewards"
    refused(api.put(f"{path}/A", reward("cashback", 10)), 422, "missing_field")
    refused(api.put(f"{path}/A", reward("gift_card", 10)), 422, "missing_field")
    refused(api.put(f"{path}/A", reward("discount_coupon", 10)), 422, "missing_field")
    refused(api.put(f"{path}/A", reward("donation", 10)), 422, "missing_field")
    refused(
        api.put(f"{path}/A", reward("discount_coupon", 10, coupon_campaign_id=str(uuid.uuid4()))),
        404,
        "campaign_not_found",
    )
    refused(
        api.put(f"{path}/A", reward("cashback", 10, cashback_amount="10.5")),
        422,
        "too_many_decimals",
    )
    r = api.put(f"{path}/A", reward("physical", 10, stock_period="day"))
    assert r.status_code == 422
    # create 201, same again 200 (revision unchanged), change 200 with a new revision
    first = api.put_reward("A", reward("physical", 10), status=201)
    same = api.put_reward("A", reward("physical", 10), status=200)
    assert same["revision"] == first["revision"] == 1
    changed = api.put_reward("A", reward("physical", 20), status=200)
    assert changed["revision"] == 2
    r = api.patch(f"{path}/A", {"status": "paused", "stock_total": 3})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "paused"
    assert r.json()["stock"]["left"] == 3
    assert r.json()["points"] == 20
    r = api.patch(f"{path}/A", {"kind": "cashback"})
    refused(r, 422, "missing_field")


def test_the_window_needs_an_offset(api: Api) -> None:
    body = reward("physical", 10, available_from="2026-12-01T00:00:00")
    r = api.put(f"/v1/programs/{api.tenant.program_id}/rewards/NOOFFSET", body)
    assert r.status_code == 422, r.text
    body = reward("physical", 10, available_from="2026-12-01T00:00:00+07:00")
    out = api.put_reward("NOOFFSET", body)
    assert datetime.fromisoformat(out["available_from"]) == datetime(2026, 11, 30, 17, tzinfo=UTC)


def test_reasons_use_the_programs_name_for_points_and_local_number_format() -> None:
    from setia.rewards.service import Block, reason_text

    block = Block("insufficient_points", "5279 more points needed", {"missing": 5279})
    assert reason_text(block, "id", "Poin") == "Poin Anda kurang 5.279 lagi"
    assert reason_text(block, "ms", "Mata") == "Anda memerlukan 5,279 Mata lagi"
    assert reason_text(block, "en", "Stars") == "You need 5,279 more Stars"


def test_not_yet_available_names_the_local_day(api: Api) -> None:
    """Available from midnight 1 December in Jakarta (17:00 UTC on 30 November): the
    refusal and the member's catalog name 1 December, the tenant's day."""
    starts = "2027-12-01T00:00:00+07:00"
    api.put_reward("LATER", reward("physical", 10, available_from=starts))
    m = api.member()
    api.give(m, 100)
    body = refused(api.redeem(m, "LATER"), 409, "reward_unavailable")
    assert (body["reason"], body["date"]) == ("not_yet_available", "2027-12-01")
