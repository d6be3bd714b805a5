"""The functions other domains call: issue_code, cancel_code, void_for_order, get_*."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from setia.core.db import Database
from setia.coupons import codes, service
from tests.conftest import TenantFixture
from tests.coupons.conftest import KOPI, cart, make_campaign, new_member, tx


def test_issue_code_is_idempotent_per_source_and_single_use(
    db: Database, tenant: TenantFixture
) -> None:
    cid = make_campaign(db, tenant, code_pattern="KOPI-####-????")
    member = new_member(db, tenant, "M1")

    def issue(s: Session, source: str) -> tuple[str, int | None, object]:
        c = service.issue_code(
            s,
            tenant_id=tenant.tenant_id,
            campaign_id=cid,
            member_id=member,
            source_type="reward_redemption",
            source_id=source,
        )
        return c.code, c.max_uses, c.member_id

    first = tx(db, lambda s: issue(s, "r1"))
    again = tx(db, lambda s: issue(s, "r1"))
    other = tx(db, lambda s: issue(s, "r2"))
    assert first == again
    assert other[0] != first[0]
    assert first[1] == 1
    assert first[2] == member
    assert first[0].startswith("KOPI-")
    assert len(first[0]) == len("KOPI-####-????")
    digits, letters = first[0][5:9], first[0][10:]
    assert all(ch in codes.DIGITS for ch in digits)
    assert all(ch in codes.LETTERS for ch in letters)


def test_cancel_and_void_for_order(db: Database, tenant: TenantFixture) -> None:
    cid = make_campaign(db, tenant)
    member = new_member(db, tenant, "M1")
    coupon_id = tx(
        db,
        lambda s: (
            service.issue_code(
                s,
                tenant_id=tenant.tenant_id,
                campaign_id=cid,
                member_id=member,
                source_type="reward_redemption",
                source_id="r1",
            ).id
        ),
    )
    code = tx(db, lambda s: service.get_coupon(s, tenant.tenant_id, coupon_id).code)
    tx(
        db,
        lambda s: service.redeem(
            s, tenant.tenant_id, code=code, order_id="O1", cart=cart(KOPI), member_id=member
        ),
    )
    with pytest.raises(service.CouponUsed):
        tx(
            db,
            lambda s: service.cancel_code(
                s, tenant_id=tenant.tenant_id, coupon_id=coupon_id, reason="x"
            ),
        )
    voided = tx(
        db,
        lambda s: [
            r.id
            for r in service.void_for_order(
                s, tenant_id=tenant.tenant_id, order_id="O1", reason="cancelled"
            )
        ],
    )
    assert len(voided) == 1
    assert (
        tx(
            db,
            lambda s: service.void_for_order(
                s, tenant_id=tenant.tenant_id, order_id="O1", reason="again"
            ),
        )
        == []
    )
    assert tx(db, lambda s: service.get_coupon(s, tenant.tenant_id, coupon_id).uses) == 0
    status = tx(
        db,
        lambda s: (
            service.cancel_code(
                s, tenant_id=tenant.tenant_id, coupon_id=coupon_id, reason="refund"
            ).status
        ),
    )
    assert status == "cancelled"
    again = tx(
        db,
        lambda s: service.cancel_code(
            s, tenant_id=tenant.tenant_id, coupon_id=coupon_id, reason="other"
        ),
    )
    assert again.status == "cancelled"
    assert again.cancel_reason == "refund"
    assert tx(db, lambda s: service.get_campaign(s, tenant.tenant_id, cid).uses) == 0


def test_void_for_order_touches_only_its_tenant(db: Database, tenant: TenantFixture) -> None:
    from tests.conftest import make_tenant

    other = make_tenant(db, name="Other")
    make_campaign(db, tenant, public_code="KITA")
    make_campaign(db, other, public_code="MEREKA")
    tx(
        db,
        lambda s: service.redeem(s, tenant.tenant_id, code="KITA", order_id="O1", cart=cart(KOPI)),
    )
    tx(
        db,
        lambda s: service.redeem(s, other.tenant_id, code="MEREKA", order_id="O1", cart=cart(KOPI)),
    )
    voided = tx(
        db,
        lambda s: [
            r.coupon_id
            for r in service.void_for_order(
                s, tenant_id=tenant.tenant_id, order_id="O1", reason="x"
            )
        ],
    )
    assert len(voided) == 1
    assert tx(db, lambda s: service.coupon_by_code(s, other.tenant_id, "MEREKA").uses) == 1
    assert tx(db, lambda s: service.coupon_by_code(s, tenant.tenant_id, "KITA").uses) == 0
