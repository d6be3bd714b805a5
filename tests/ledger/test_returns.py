"""Giving back a spend (RETURN) and the wallet asset: exactly once, lots restored, no mixing."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select

from setia.core.db import Database
from setia.core.time import utcnow
from setia.ledger import service as ledger
from setia.ledger.models import Account, Transfer
from setia.ledger.verify import verify
from tests.conftest import TenantFixture
from tests.ledger.support import assert_db_sound, balance, new_member, tx
from tests.ledger.test_holds import grant, remaining


def ctx(t: TenantFixture, key: str, **kw: object) -> ledger.Context:
    return ledger.Context(
        program_id=t.program_id,
        idempotency_key=key,
        request_hash=ledger.request_hash({"k": key, **kw}),
        source_type="test",
        source_id=key,
    )


def spend(db: Database, t: TenantFixture, member: uuid.UUID, amount: int, key: str) -> Transfer:
    res = tx(db, lambda s: ledger.spend(s, ctx(t, key), member_id=member, amount=amount))
    return tx(db, lambda s: ledger.get_transfer(s, t.program_id, res.transfer_id))


def give_back(
    db: Database, t: TenantFixture, original: Transfer, amount: int, key: str
) -> ledger.Result:
    return tx(
        db,
        lambda s: ledger.return_spent(
            s, ctx(t, key, amount=amount), original=original, amount=amount
        ),
    )


def test_return_restores_the_lots_it_took_latest_expiry_first(
    db: Database, tenant: TenantFixture
) -> None:
    m = new_member(db, tenant, "m1")
    soon = grant(db, tenant, m, 100, utcnow() + timedelta(days=10), "g1")
    late = grant(db, tenant, m, 100, utcnow() + timedelta(days=300), "g2")
    original = spend(db, tenant, m, 150, "s1")  # takes 100 from `soon`, 50 from `late`
    assert remaining(db, soon, late) == [0, 50]
    give_back(db, tenant, original, 60, "r1")
    # The later-expiring lot is refilled first, then the sooner one.
    assert remaining(db, soon, late) == [10, 100]
    again = give_back(db, tenant, original, 60, "r1")
    assert again.created is False
    assert balance(db, tenant, m, utcnow())["available"] == 110
    with pytest.raises(ledger.ReturnExceedsSpent) as exc:
        give_back(db, tenant, original, 91, "r2")
    assert exc.value.extra["returnable"] == 90
    give_back(db, tenant, original, 90, "r3")
    assert remaining(db, soon, late) == [100, 100]
    assert balance(db, tenant, m, utcnow())["available"] == 200
    assert_db_sound(db)


def test_return_of_a_partial_capture_gives_back_at_most_what_was_captured(
    db: Database, tenant: TenantFixture
) -> None:
    m = new_member(db, tenant, "m1")
    grant(db, tenant, m, 100, None, "g1")
    hold = tx(
        db,
        lambda s: ledger.spend(
            s, ctx(tenant, "h"), member_id=m, amount=80, hold_for=timedelta(minutes=5)
        ),
    )

    def capture(s: object) -> ledger.Result:
        from sqlalchemy.orm import Session

        assert isinstance(s, Session)
        h = ledger.get_hold(s, [tenant.program_id], hold.transfer_id)
        return ledger.resolve_hold(s, ctx(tenant, "c"), h, action="capture", amount=30)

    captured = tx(db, capture)
    original = tx(db, lambda s: ledger.get_transfer(s, tenant.program_id, captured.transfer_id))
    with pytest.raises(ledger.ReturnExceedsSpent):
        give_back(db, tenant, original, 31, "r0")
    give_back(db, tenant, original, 30, "r1")
    assert balance(db, tenant, m, utcnow())["available"] == 100
    assert_db_sound(db)


def test_returned_points_repay_debt_first(db: Database, tenant: TenantFixture) -> None:
    m = new_member(db, tenant, "m1")
    grant(db, tenant, m, 100, None, "g1")
    original = spend(db, tenant, m, 100, "s1")
    # A refund of points already spent leaves the member owing 40.
    tx(
        db,
        lambda s: ledger.reverse_order_points(
            s, ctx(tenant, "refund"), member_id=m, amount=40, shortfall_policy="debt"
        ),
    )
    result = give_back(db, tenant, original, 100, "r1")
    assert result.amounts == {"returned": 100, "debt_repaid": 40}
    bal = balance(db, tenant, m, utcnow())
    assert (bal["available"], bal["debt"]) == (60, 0)
    assert_db_sound(db)


def test_wallet_credit_debit_hold_and_return(db: Database, tenant: TenantFixture) -> None:
    m = new_member(db, tenant, "m1")
    pid = tenant.program_id
    tx(db, lambda s: ledger.wallet_credit(s, ctx(tenant, "w1"), member_id=m, amount=25_000))
    with pytest.raises(ledger.InsufficientWallet) as exc:
        tx(db, lambda s: ledger.wallet_debit(s, ctx(tenant, "w2"), member_id=m, amount=25_001))
    assert exc.value.extra["available"] == 25_000
    spent = tx(db, lambda s: ledger.wallet_debit(s, ctx(tenant, "w3"), member_id=m, amount=10_000))
    tx(
        db,
        lambda s: ledger.wallet_debit(
            s, ctx(tenant, "w4"), member_id=m, amount=5_000, hold_for=timedelta(minutes=5)
        ),
    )
    assert tx(db, lambda s: ledger.wallet_balance(s, pid, m)) == {
        "available": 10_000,
        "held": 5_000,
    }
    original = tx(db, lambda s: ledger.get_transfer(s, pid, spent.transfer_id))
    give_back(db, tenant, original, 10_000, "w5")
    assert tx(db, lambda s: ledger.wallet_balance(s, pid, m))["available"] == 20_000
    # The wallet is its own asset: points balances are untouched.
    assert balance(db, tenant, m, utcnow())["available"] == 0
    assert_db_sound(db)


def test_verify_flags_a_transfer_that_mixes_points_and_wallet(
    db: Database, tenant: TenantFixture
) -> None:
    m = new_member(db, tenant, "m1")
    grant(db, tenant, m, 100, None, "g1")

    def corrupt(s: object) -> None:
        from sqlalchemy.orm import Session

        assert isinstance(s, Session)
        wallet = ledger.wallet_account(s, tenant.program_id, m)
        points = ledger.member_accounts(s, tenant.program_id, m).points
        # Bypass the services on purpose: move points into a wallet.
        ledger._move(s, ctx(tenant, "bad"), debit=points, credit=wallet, amount=1, code="BAD")
        report = verify(s)
        assert report.checks["no transfer crosses assets (points / wallet)"]
        s.rollback()

    tx(db, corrupt)
    assert (
        tx(db, lambda s: s.execute(select(Account).where(Account.code == "WALLET")).first()) is None
    )
