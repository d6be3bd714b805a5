"""The wallet service: Decimal <-> minor units, and the credit seam other domains call."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from setia.core.db import Database
from setia.core.errors import IdempotencyKeyReused
from setia.ledger import service as ledger
from setia.programs.models import Program
from setia.wallet import service as wallet
from tests.conftest import TenantFixture, make_tenant
from tests.ledger.support import assert_db_sound, new_member, tx


def program(s: Session, t: TenantFixture) -> Program:
    found = s.get(Program, t.program_id)
    assert found is not None
    return found


def test_minor_units_follow_the_currency() -> None:
    assert wallet.to_minor(Decimal("25000"), "IDR") == 25000
    assert wallet.to_minor(Decimal("12.50"), "MYR") == 1250
    assert wallet.to_minor(Decimal("12.5"), "MYR") == 1250
    assert wallet.from_minor(1250, "MYR") == Decimal("12.50")
    assert str(wallet.from_minor(1250, "MYR")) == "12.50"
    assert str(wallet.from_minor(25000, "IDR")) == "25000"
    with pytest.raises(wallet.TooManyDecimals):
        wallet.to_minor(Decimal("1.5"), "IDR")
    with pytest.raises(wallet.TooManyDecimals):
        wallet.to_minor(Decimal("1.005"), "MYR")
    for bad in (Decimal(0), Decimal(-1), Decimal("NaN"), Decimal("Infinity")):
        with pytest.raises(wallet.InvalidWalletAmount):
            wallet.to_minor(bad, "IDR")


@given(st.integers(min_value=1, max_value=10**13), st.sampled_from(["IDR", "MYR", "USD", "JPY"]))
def test_minor_round_trip(minor: int, currency: str) -> None:
    assert wallet.to_minor(wallet.from_minor(minor, currency), currency) == minor


def test_credit_is_idempotent_and_checks_the_member(db: Database, tenant: TenantFixture) -> None:
    m = new_member(db, tenant, "w1")

    def credit(s: Session, key: str, amount: str, member: uuid.UUID = m) -> ledger.Result:
        return wallet.credit(
            s,
            program=program(s, tenant),
            member_id=member,
            amount=Decimal(amount),
            code="CASHBACK",
            idempotency_key=key,
            actor="test",
            source_type="redemption",
            source_id="r-1",
        )

    first = tx(db, lambda s: credit(s, "reward:r-1", "15000"))
    assert first.created
    assert first.amounts == {"credited": 15000}
    again = tx(db, lambda s: credit(s, "reward:r-1", "15000"))
    assert again.created is False
    assert again.transfer_id == first.transfer_id
    with pytest.raises(IdempotencyKeyReused):
        tx(db, lambda s: credit(s, "reward:r-1", "16000"))
    got = tx(db, lambda s: wallet.balance(s, program=program(s, tenant), member_id=m))
    assert got == {"available": Decimal(15000), "held": Decimal(0)}
    other = make_tenant(db, name="Other")
    stranger = new_member(db, other, "w1")
    with pytest.raises(wallet.members.MemberNotFound):
        tx(db, lambda s: credit(s, "reward:r-2", "1", stranger))
    with pytest.raises(wallet.InvalidCreditCode):
        tx(
            db,
            lambda s: wallet.credit(
                s,
                program=program(s, tenant),
                member_id=m,
                amount=Decimal(1),
                code="FREE_MONEY",
                idempotency_key="x",
                actor="test",
            ),
        )
    assert_db_sound(db)
