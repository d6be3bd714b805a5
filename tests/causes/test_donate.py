"""Donating points: the ledger, receipts, matching, refusals and idempotency."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from setia.causes import service as causes
from setia.causes.models import Donation
from setia.core.db import Database
from setia.core.errors import IdempotencyKeyReused, InvalidInput, SetiaError
from setia.ledger.models import Transfer
from setia.ledger.service import BelowMinimumRedeem, InsufficientPoints
from setia.members.service import MemberNotFound
from setia.outbox.models import OutboxMessage
from setia.tenants.models import Tenant
from tests.causes.support import (
    balance,
    cause_row,
    counts,
    donate,
    member_with_points,
    put_cause,
)
from tests.conftest import TenantFixture, make_tenant
from tests.ledger.support import assert_db_sound, configure, tx

JAKARTA = ZoneInfo("Asia/Jakarta")


def test_donate_spends_points_numbers_receipt_and_updates_totals(
    db: Database, tenant: TenantFixture
) -> None:
    configure(db, tenant, cost_per_point=Decimal(10))
    cause_id = put_cause(db, tenant, goal_points=10_000, receipt_prefix="TP")
    sari = member_with_points(db, tenant, 2000)

    given = donate(db, tenant, cause_id, sari, 500)
    d = given.donation
    assert given.created
    assert d.points == 500
    assert d.matched_points == 0
    assert d.value == Decimal(5000)
    assert d.currency == "IDR"
    year = datetime.now(JAKARTA).year
    assert d.receipt_number == f"TP-{year}-000001"
    assert balance(db, tenant, sari) == 1500

    second = donate(db, tenant, cause_id, sari, 300).donation
    assert second.receipt_number == f"TP-{year}-000002"
    cause = cause_row(db, cause_id)
    assert (cause.donated_points, cause.matched_points, cause.donations_count) == (800, 0, 2)

    def check(s: Session) -> None:
        transfer = s.get(Transfer, d.transfer_id)
        assert transfer is not None
        assert transfer.code == "DONATE"
        assert transfer.amount == 500
        topics = list(
            s.execute(
                select(OutboxMessage.payload).where(OutboxMessage.topic == "cause.donated")
            ).scalars()
        )
        assert [p["receipt_number"] for p in topics] == [
            f"TP-{year}-000001",
            f"TP-{year}-000002",
        ]
        assert topics[0]["value"] == "5000"

    tx(db, check)
    assert_db_sound(db)


def test_cause_value_per_point_overrides_program_cost(db: Database, tenant: TenantFixture) -> None:
    configure(db, tenant, cost_per_point=Decimal(10))
    cause_id = put_cause(db, tenant, value_per_point="25")
    m = member_with_points(db, tenant, 1000)
    assert donate(db, tenant, cause_id, m, 40).donation.value == Decimal(1000)


def test_matching_ratio_then_budget_exhausted(db: Database, tenant: TenantFixture) -> None:
    cause_id = put_cause(db, tenant, match_ratio="0.5", match_budget=250)
    m = member_with_points(db, tenant, 10_000)
    got = [donate(db, tenant, cause_id, m, 200).donation.matched_points for _ in range(4)]
    # 100 + 100 fit, the third gets the 50 that is left, the fourth nothing
    assert got == [100, 100, 50, 0]
    cause = cause_row(db, cause_id)
    assert cause.matched_points == 250 == cause.match_budget
    assert cause.donated_points == 800
    assert_db_sound(db)


def test_matching_rounds_down(db: Database, tenant: TenantFixture) -> None:
    cause_id = put_cause(db, tenant, match_ratio="0.5", match_budget=1000)
    m = member_with_points(db, tenant, 1000)
    assert donate(db, tenant, cause_id, m, 101).donation.matched_points == 50


def test_per_member_match_cap(db: Database, tenant: TenantFixture) -> None:
    cause_id = put_cause(
        db, tenant, match_ratio="1", match_budget=100_000, match_cap_per_member=300
    )
    a = member_with_points(db, tenant, 10_000)
    b = member_with_points(db, tenant, 10_000)
    assert donate(db, tenant, cause_id, a, 200).donation.matched_points == 200
    assert donate(db, tenant, cause_id, a, 200).donation.matched_points == 100
    assert donate(db, tenant, cause_id, a, 200).donation.matched_points == 0
    assert donate(db, tenant, cause_id, b, 500).donation.matched_points == 300
    assert cause_row(db, cause_id).matched_points == 600


def test_period_boundaries_in_tenant_time_zone(db: Database, tenant: TenantFixture) -> None:
    cause_id = put_cause(db, tenant, starts_on="2026-03-01", ends_on="2026-03-30")
    m = member_with_points(db, tenant, 10_000)
    first_minute = datetime(2026, 3, 1, 0, 0, tzinfo=JAKARTA)
    last_minute = datetime(2026, 3, 30, 23, 59, tzinfo=JAKARTA)
    next_day = datetime(2026, 3, 31, 0, 0, tzinfo=JAKARTA)
    before = datetime(2026, 2, 28, 23, 59, tzinfo=JAKARTA)

    assert donate(db, tenant, cause_id, m, 100, now=first_minute).created
    late = donate(db, tenant, cause_id, m, 100, now=last_minute).donation
    # 23:59 in Jakarta is 16:59 UTC; the receipt year and day are local
    assert late.receipt_number.startswith("TP-2026-")
    assert late.created_at.astimezone(UTC).hour == 16
    snapshot = counts(db, tenant)
    with pytest.raises(causes.CauseEnded) as ended:
        donate(db, tenant, cause_id, m, 100, now=next_day)
    assert "2026-03-30" in ended.value.detail
    assert ended.value.extra["ends_on"] == "2026-03-30"
    with pytest.raises(causes.CauseNotStarted) as early:
        donate(db, tenant, cause_id, m, 100, now=before)
    assert "2026-03-01" in early.value.detail
    assert counts(db, tenant) == snapshot
    assert balance(db, tenant, m) == 9800


def test_receipt_year_follows_tenant_zone(db: Database, tenant: TenantFixture) -> None:
    cause_id = put_cause(db, tenant, receipt_prefix="SR")
    m = member_with_points(db, tenant, 1000)
    # 31 Dec 2026 18:00 UTC is 1 Jan 2027 01:00 in Jakarta
    d = donate(db, tenant, cause_id, m, 10, now=datetime(2026, 12, 31, 18, 0, tzinfo=UTC))
    assert d.donation.receipt_number == "SR-2027-000001"
    d2 = donate(db, tenant, cause_id, m, 10, now=datetime(2026, 12, 31, 16, 0, tzinfo=UTC))
    assert d2.donation.receipt_number == "SR-2026-000001"


def test_idempotent_retry_and_key_reuse(db: Database, tenant: TenantFixture) -> None:
    cause_id = put_cause(db, tenant, match_ratio="1", match_budget=1000)
    other = put_cause(db, tenant, "sedekah-ramadan")
    m = member_with_points(db, tenant, 1000)
    first = donate(db, tenant, cause_id, m, 100, key="k-1")
    again = donate(db, tenant, cause_id, m, 100, key="k-1")
    assert first.created
    assert not again.created
    assert again.donation.id == first.donation.id
    assert again.donation.receipt_number == first.donation.receipt_number
    assert balance(db, tenant, m) == 900
    assert cause_row(db, cause_id).matched_points == 100
    snapshot = counts(db, tenant)
    with pytest.raises(IdempotencyKeyReused):
        donate(db, tenant, cause_id, m, 200, key="k-1")
    with pytest.raises(IdempotencyKeyReused):
        donate(db, tenant, other, m, 100, key="k-1")
    assert counts(db, tenant) == snapshot


@pytest.mark.parametrize(
    ("setup", "points", "error", "code"),
    [
        ({"status": "draft"}, 100, causes.CauseNotActive, "cause_not_active"),
        ({"status": "closed"}, 100, causes.CauseNotActive, "cause_not_active"),
        ({"min_points": 200}, 100, causes.DonationBelowMinimum, "donation_below_minimum"),
        ({"max_points": 50}, 100, causes.DonationAboveMaximum, "donation_above_maximum"),
        ({}, 5000, InsufficientPoints, "insufficient_points"),
        ({}, 0, InvalidInput, "invalid_input"),
        ({"ends_on": "2020-01-31"}, 100, causes.CauseEnded, "cause_ended"),
        ({"starts_on": "2099-01-01"}, 100, causes.CauseNotStarted, "cause_not_started"),
    ],
)
def test_refusals_write_nothing(
    db: Database,
    tenant: TenantFixture,
    setup: dict[str, object],
    points: int,
    error: type[SetiaError],
    code: str,
) -> None:
    cause_id = put_cause(db, tenant, match_ratio="1", match_budget=1000, **setup)
    m = member_with_points(db, tenant, 1000)
    snapshot = counts(db, tenant)
    with pytest.raises(error) as raised:
        donate(db, tenant, cause_id, m, points)
    assert raised.value.code == code
    assert 400 <= raised.value.status < 500
    assert counts(db, tenant) == snapshot
    assert balance(db, tenant, m) == 1000
    assert_db_sound(db)


def test_program_minimum_balance_applies(db: Database, tenant: TenantFixture) -> None:
    configure(db, tenant, min_redeem_points=500)
    cause_id = put_cause(db, tenant)
    m = member_with_points(db, tenant, 400)
    snapshot = counts(db, tenant)
    with pytest.raises(BelowMinimumRedeem):
        donate(db, tenant, cause_id, m, 100)
    assert counts(db, tenant) == snapshot


def test_tenant_isolation(db: Database, tenant: TenantFixture) -> None:
    other = make_tenant(db, name="Toko Lain")
    cause_id = put_cause(db, tenant)
    foreign_cause = put_cause(db, other)
    stranger = member_with_points(db, other, 1000)
    mine = member_with_points(db, tenant, 1000)
    snapshot = counts(db, tenant)
    with pytest.raises(MemberNotFound):
        donate(db, tenant, cause_id, stranger, 100)
    with pytest.raises(causes.CauseNotFound):
        donate(db, tenant, foreign_cause, mine, 100)
    assert counts(db, tenant) == snapshot
    # receipt numbers are per tenant: both tenants start at 1
    a = donate(db, tenant, cause_id, mine, 10).donation
    b = donate(db, other, foreign_cause, stranger, 10).donation
    assert a.receipt_number == b.receipt_number

    def check(s: Session) -> None:
        tenant_row = s.get(Tenant, tenant.tenant_id)
        assert tenant_row is not None
        with pytest.raises(causes.DonationNotFound):
            causes.get_donation(s, tenant.tenant_id, b.id)

    tx(db, check)


def test_donations_are_append_only(db: Database, tenant: TenantFixture) -> None:
    cause_id = put_cause(db, tenant)
    m = member_with_points(db, tenant, 1000)
    d = donate(db, tenant, cause_id, m, 10).donation

    def tamper(s: Session) -> None:
        row = s.get(Donation, d.id)
        assert row is not None
        row.points = 1
        s.flush()

    with pytest.raises(Exception, match=r"append-only|setia_refuse_change|not allowed"):
        tx(db, tamper)
    assert cause_row(db, cause_id).donated_points == 10


def test_unknown_cause(db: Database, tenant: TenantFixture) -> None:
    m = member_with_points(db, tenant, 1000)
    with pytest.raises(causes.CauseNotFound):
        donate(db, tenant, uuid.uuid4(), m, 10)
