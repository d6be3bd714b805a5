"""Helpers for the coupons tests: campaigns made through the service, carts, one unit of work
per call (like the API's entry points)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from setia.core.db import Database
from setia.coupons import service
from setia.coupons.discount import Cart, Line
from setia.coupons.models import Coupon, CouponBatch, CouponCampaign, CouponRedemption
from setia.coupons.schemas import CampaignIn
from setia.members import service as members
from setia.tenants.models import Tenant
from tests.conftest import TenantFixture

T = TypeVar("T")


def tx(db: Database, fn: Callable[[Session], T]) -> T:
    with db.session() as session:
        return fn(session)


def tenant_of(s: Session, t: TenantFixture) -> Tenant:
    tenant = s.get(Tenant, t.tenant_id)
    assert tenant is not None
    return tenant


def make_campaign(db: Database, t: TenantFixture, **kw: Any) -> uuid.UUID:
    body: dict[str, Any] = {
        "code": f"c-{uuid.uuid4().hex[:8]}",
        "names": {"id": "Diskon", "en": "Discount"},
        "discount": {"type": "fixed", "amount": "10000"},
        "currency": "IDR",
        **kw,
    }

    def run(s: Session) -> uuid.UUID:
        c, _ = service.create_campaign(s, tenant_of(s, t), CampaignIn.model_validate(body))
        return c.id

    return tx(db, run)


def new_member(db: Database, t: TenantFixture, external_id: str) -> uuid.UUID:
    def run(s: Session) -> uuid.UUID:
        return members.create_member(
            s, tenant_of(s, t), {"external_id": external_id}, source="test"
        ).id

    return tx(db, run)


def generate(
    db: Database, t: TenantFixture, campaign_id: uuid.UUID, count: int, **kw: Any
) -> list[str]:
    def run(s: Session) -> list[str]:
        batch, _ = service.generate_codes(s, tenant_of(s, t), campaign_id, count=count, **kw)
        return service.batch_codes(s, batch.id, count)

    return tx(db, run)


def cart(
    *items: tuple[str, str, int, str], currency: str = "IDR", shipping: str | None = None
) -> Cart:
    from decimal import Decimal

    return Cart(
        currency=currency,
        lines=tuple(Line(sku, cat or None, qty, Decimal(price)) for sku, cat, qty, price in items),
        shipping=None if shipping is None else Decimal(shipping),
    )


def cart_json(
    *items: tuple[str, str, int, str], currency: str = "IDR", shipping: str | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "currency": currency,
        "items": [
            {"sku": sku, **({"category": cat} if cat else {}), "quantity": qty, "unit_price": price}
            for sku, cat, qty, price in items
        ],
    }
    if shipping is not None:
        out["shipping"] = shipping
    return out


KOPI = ("KOPI-SUSU", "drinks", 2, "25000")


def counts(db: Database) -> dict[str, int]:
    def run(s: Session) -> dict[str, int]:
        return {
            m.__tablename__: int(s.execute(select(func.count()).select_from(m)).scalar_one())
            for m in (CouponCampaign, CouponBatch, Coupon, CouponRedemption)
        }

    return tx(db, run)


def coupon(db: Database, t: TenantFixture, code: str) -> Coupon:
    def run(s: Session) -> Coupon:
        c = service.coupon_by_code(s, t.tenant_id, code)
        assert c is not None
        s.expunge(c)
        return c

    return tx(db, run)
