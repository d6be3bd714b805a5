"""Many tills at once (PostgreSQL: real parallel writers, each thread its own session)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select

from setia.core.db import Database
from setia.coupons import service
from setia.coupons.models import CouponRedemption
from tests.conftest import TenantFixture
from tests.coupons.conftest import KOPI, cart, coupon, generate, make_campaign, new_member

N = 10


def race(
    db: Database, n: int, fn: Callable[[Any, int], Any]
) -> tuple[list[Any], list[BaseException]]:
    """Run ``fn(session, i)`` from ``n`` threads released together, each in its own unit of
    work; returns the results and the errors."""
    barrier = threading.Barrier(n, timeout=60)
    results: list[Any] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run(i: int) -> None:
        try:
            barrier.wait()
            with db.session() as s:
                out = fn(s, i)
            with lock:
                results.append(out)
        except BaseException as exc:
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results, errors


def redemptions(db: Database, **where: Any) -> int:
    with db.session() as s:
        q = select(func.count()).select_from(CouponRedemption)
        for k, v in where.items():
            q = q.where(getattr(CouponRedemption, k) == v)
        return int(s.execute(q).scalar_one())


@pytest.mark.postgres_only
def test_single_use_code_from_ten_tills_is_redeemed_once(
    db: Database, tenant: TenantFixture
) -> None:
    cid = make_campaign(db, tenant)
    code = generate(db, tenant, cid, 1)[0]
    results, errors = race(
        db,
        N,
        lambda s, i: (
            service.redeem(s, tenant.tenant_id, code=code, order_id=f"ORDER-{i}", cart=cart(KOPI))[
                0
            ].id
        ),
    )
    assert len(results) == 1
    assert len(errors) == N - 1
    assert all(isinstance(e, service.CouponRefused) for e in errors)
    assert {e.code for e in errors if isinstance(e, service.CouponRefused)} == {"coupon_used_up"}
    assert redemptions(db) == 1
    assert coupon(db, tenant, code).uses == 1


@pytest.mark.postgres_only
def test_campaign_budget_of_one_on_a_public_code(db: Database, tenant: TenantFixture) -> None:
    cid = make_campaign(db, tenant, public_code="REBUTAN", conditions={"max_uses": 1})
    results, errors = race(
        db,
        N,
        lambda s, i: (
            service.redeem(
                s, tenant.tenant_id, code="REBUTAN", order_id=f"ORDER-{i}", cart=cart(KOPI)
            )[0].id
        ),
    )
    assert len(results) == 1
    assert {e.code for e in errors if isinstance(e, service.CouponRefused)} == {
        "coupon_budget_exhausted"
    }
    assert len(errors) == N - 1
    assert redemptions(db, campaign_id=cid) == 1
    with db.session() as s:
        assert service.get_campaign(s, tenant.tenant_id, cid).uses == 1


@pytest.mark.postgres_only
def test_per_member_limit_under_parallel_redeems(db: Database, tenant: TenantFixture) -> None:
    member = new_member(db, tenant, "M")
    make_campaign(db, tenant, public_code="SATUKALI", conditions={"per_member_limit": 1})
    results, errors = race(
        db,
        N,
        lambda s, i: (
            service.redeem(
                s,
                tenant.tenant_id,
                code="SATUKALI",
                order_id=f"ORDER-{i}",
                cart=cart(KOPI),
                member_id=member,
            )[0].id
        ),
    )
    assert len(results) == 1
    assert len(errors) == N - 1
    assert redemptions(db, member_id=member) == 1


@pytest.mark.postgres_only
def test_same_order_retried_from_ten_threads_makes_one_redemption(
    db: Database, tenant: TenantFixture
) -> None:
    cid = make_campaign(db, tenant)
    code = generate(db, tenant, cid, 1)[0]
    results, errors = race(
        db,
        N,
        lambda s, i: (
            service.redeem(s, tenant.tenant_id, code=code, order_id="ORDER-1", cart=cart(KOPI))[
                0
            ].id
        ),
    )
    assert errors == []
    assert len(set(results)) == 1
    assert redemptions(db) == 1


@pytest.mark.postgres_only
def test_parallel_voids_give_the_use_back_once(db: Database, tenant: TenantFixture) -> None:
    make_campaign(db, tenant, public_code="BATAL", conditions={"max_uses": 5})
    with db.session() as s:
        service.redeem(s, tenant.tenant_id, code="BATAL", order_id="O1", cart=cart(KOPI))
        service.redeem(s, tenant.tenant_id, code="BATAL", order_id="O2", cart=cart(KOPI))
    results, errors = race(
        db,
        N,
        lambda s, i: [
            r.id
            for r in service.void_for_order(
                s, tenant_id=tenant.tenant_id, order_id="O1", reason=f"cancel {i}"
            )
        ],
    )
    assert errors == []
    assert sorted(len(r) for r in results) == [0] * (N - 1) + [1]
    assert coupon(db, tenant, "BATAL").uses == 1
    assert redemptions(db, status="active") == 1
