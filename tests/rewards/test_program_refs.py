"""A donation reward points at a cause of its own program: a cause of another program of the
same tenant is refused when the reward is defined (the donation would refuse it at every
redemption)."""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from setia.core.db import Database
from setia.programs import service as programs
from setia.tenants.models import Tenant
from tests.causes.support import put_cause
from tests.conftest import TenantFixture
from tests.ledger.support import tx
from tests.rewards.helpers import Api, refused, reward


def other_program(db: Database, t: TenantFixture) -> TenantFixture:
    def run(s: Session) -> uuid.UUID:
        tenant = s.get(Tenant, t.tenant_id)
        assert tenant is not None
        return programs.create_program(
            s, tenant, actor="test", name="Kopi Kedua", currency="IDR"
        ).id

    return TenantFixture(t.tenant_id, tx(db, run), t.api_key)


def test_a_cause_of_another_program_is_refused(api: Api, db: Database) -> None:
    cause = put_cause(db, other_program(db, api.tenant))
    r = api.put(
        f"/v1/programs/{api.tenant.program_id}/rewards/TREE",
        reward("donation", 100, cause_id=str(cause)),
    )
    refused(r, 404, "cause_not_found")


def test_a_campaign_in_another_currency_is_refused(api: Api, db: Database) -> None:
    """A ringgit program cannot sell rupiah coupons for points: they would never apply to its
    members' carts."""
    from tests.coupons.conftest import make_campaign

    def run(s: Session) -> uuid.UUID:
        tenant = s.get(Tenant, api.tenant.tenant_id)
        assert tenant is not None
        return programs.create_program(s, tenant, actor="test", name="Kopi MY", currency="MYR").id

    ringgit = tx(db, run)
    rupiah = make_campaign(db, api.tenant)  # IDR, the default program's currency
    r = api.put(
        f"/v1/programs/{ringgit}/rewards/DISC",
        reward("discount_coupon", 100, coupon_campaign_id=str(rupiah)),
    )
    body = refused(r, 422, "campaign_currency_mismatch")
    assert body["field"] == "coupon_campaign_id"
    api.put_reward("DISC", reward("discount_coupon", 100, coupon_campaign_id=str(rupiah)))
