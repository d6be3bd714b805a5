"""Demo data: the "Member Plus" plan and a year of subscriptions with their payments.

Everything goes through the same service calls the API uses, at the moment it happened,
so the demo's subscriptions, payments, outbox and bonus points are real.
"""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy.orm import Session

from setia.core.money import to_str
from setia.core.time import as_utc
from setia.memberships import service
from setia.memberships.models import MembershipPlan, Subscription
from setia.memberships.schemas import InitialPayment, PaymentIn, PlanIn
from setia.programs.models import Program
from setia.tenants.models import Tenant

PLAN_CODE = "member-plus"
ACTOR = "demo"


def _gold_tier(session: Session, program: Program) -> str:
    """The program's gold tier's code ("gold", or the demo's "emas"); "gold" when the
    program has no tiers yet (the tiers service then ignores the benefit)."""
    from sqlalchemy import select

    from setia.tiers.models import Tier, TierSet

    rows = session.execute(
        select(Tier.code, Tier.names)
        .join(TierSet, TierSet.id == Tier.tier_set_id)
        .where(TierSet.program_id == program.id)
    ).all()
    for code, names in rows:
        if code in ("gold", "emas") or str((names or {}).get("en", "")).lower() == "gold":
            return str(code)
    return "gold"


def create_plan(session: Session, program: Program) -> MembershipPlan:
    price = Decimal(49000) if program.currency == "IDR" else Decimal("19.90")
    body = PlanIn.model_validate(
        {
            "code": PLAN_CODE,
            "names": {"id": "Member Plus", "ms": "Ahli Plus", "en": "Member Plus"},
            "price": to_str(price, program.currency),
            "currency": program.currency,
            "period": "monthly",
            "trial_days": 7,
            "grace_days": 7,
            "tier_code": _gold_tier(session, program),
            "tier_mode": "protect",
            "earn_multiplier": "1.5",
            "monthly_bonus_points": 500,
            "perks": [
                {"id": "Gratis upsize setiap hari", "en": "Free upsize every day"},
                {"id": "Poin 1,5x untuk setiap pembelian", "en": "1.5x points on every purchase"},
                {"id": "500 poin bonus setiap bulan", "en": "500 bonus points every month"},
            ],
        }
    )
    return service.create_plan(session, program, body, actor=ACTOR)


def create_rule(session: Session, program: Program) -> None:
    """The plan's earn multiplier, applied on purchases by a rule (1.5x the base points)."""
    from setia.rules import service as rules
    from setia.rules.schemas import RuleBody

    body = RuleBody.model_validate(
        {
            "name": "Member Plus 1.5x",
            "triggers": ["purchase"],
            "conditions": {"field": "member.is_paid_member", "op": "eq", "value": True},
            "effect": {"type": "multiplier", "factor": "member.plan_multiplier"},
        }
    )
    rules.create_rule(session, program, body, actor=ACTOR)


def seed_demo(
    session: Session,
    tenant: Tenant,
    program: Program,
    member_ids: list[uuid.UUID],
    rng: random.Random,
    now: datetime,
) -> dict[str, int]:
    """Create the plan and subscriptions for about 8 % of ``member_ids`` over the last
    year: most renew every month, some cancel, some lapse after a failed payment, a few are
    in their trial, and one had its current month refunded. Returns counts by status."""
    plan = create_plan(session, program)
    create_rule(session, program)
    price = to_str(plan.price, plan.currency)
    chosen = rng.sample(member_ids, k=max(4, len(member_ids) * 8 // 100))
    n = 0

    def pay_id(gateway: str) -> str:
        nonlocal n
        n += 1
        return f"MP-{n:06d}" if gateway == "midtrans" else f"inv_demo_{n:06d}"

    def pay(sub: Subscription, at: datetime, status: str) -> str:
        gateway = "midtrans" if rng.random() < 0.7 else "xendit"
        ext = pay_id(gateway)
        body = PaymentIn(
            subscription_id=sub.id,
            gateway=gateway,
            external_id=ext,
            status=status,
            amount=price,
            currency=plan.currency,
            occurred_at=at,
            payload=_payload(gateway, ext, status, price, at),
        )
        service.record_payment(session, tenant, body, actor=ACTOR, now=at)
        return ext

    refunded = False
    for i, member_id in enumerate(chosen):
        fate = rng.choices(["loyal", "cancel", "lapse", "trial"], weights=[45, 25, 24, 6])[0]
        if fate == "trial":
            start = now - timedelta(days=rng.uniform(0.2, 6.5))
            service.start_subscription(
                session,
                tenant,
                member_id=member_id,
                plan_code=plan.code,
                program_id=program.id,
                started_at=start,
                actor=ACTOR,
                now=start,
            )
            continue
        start = now - timedelta(days=rng.uniform(3, 365), minutes=rng.uniform(0, 600))
        gateway = "midtrans" if rng.random() < 0.7 else "xendit"
        ext = pay_id(gateway)
        sub, _ = service.start_subscription(
            session,
            tenant,
            member_id=member_id,
            plan_code=plan.code,
            program_id=program.id,
            started_at=start,
            payment=InitialPayment(
                gateway=gateway,
                external_id=ext,
                amount=price,
                currency=plan.currency,
                occurred_at=start,
                payload=_payload(gateway, ext, "paid", price, start),
            ),
            actor=ACTOR,
            now=start,
        )
        stop_after = rng.randint(1, 5)
        last_paid: tuple[str, datetime] | None = None
        while True:
            end = as_utc(sub.current_period_end)
            renew_at = end - timedelta(hours=rng.uniform(1, 20))
            if renew_at > now:
                break
            if fate == "loyal" or sub.periods_paid < stop_after:
                last_paid = (pay(sub, renew_at, "paid"), renew_at)
                continue
            if fate == "cancel":
                service.cancel(session, tenant, sub.id, actor=ACTOR, now=end - timedelta(days=3))
                if end <= now:
                    service.grant_bonuses(session, tenant, sub, end)
                    service.advance(session, tenant, sub, end)
            else:
                pay(sub, renew_at, "failed")
                service.grant_bonuses(session, tenant, sub, min(end, now))
                service.advance(
                    session, tenant, sub, min(service.lapse_at(sub, tenant.timezone), now)
                )
            break
        if sub.status in ("active", "trialing", "past_due"):
            service.grant_bonuses(session, tenant, sub, now)
            if as_utc(sub.current_period_end) <= now:
                service.advance(session, tenant, sub, now)
        if (
            not refunded
            and fate == "loyal"
            and last_paid is not None
            and last_paid[1] + timedelta(days=2) < now
            and i > 0
        ):
            ext, at = last_paid
            body = PaymentIn(
                subscription_id=sub.id,
                gateway="midtrans" if ext.startswith("MP-") else "xendit",
                external_id=ext,
                status="refunded",
                amount=price,
                currency=plan.currency,
                occurred_at=at + timedelta(days=1),
                payload={"transaction_status": "refund", "order_id": ext},
            )
            service.record_payment(session, tenant, body, actor=ACTOR, now=at + timedelta(days=1))
            refunded = True
    session.flush()
    counts: dict[str, int] = {}
    for sub in service.list_subscriptions(session, tenant.id, limit=100_000):
        counts[sub.status] = counts.get(sub.status, 0) + 1
    return counts


def _payload(gateway: str, ext: str, status: str, price: str, at: datetime) -> dict[str, object]:
    """What the gateway's webhook would have carried (a trimmed, realistic shape)."""
    if gateway == "midtrans":
        return {
            "order_id": ext,
            "transaction_status": {"paid": "settlement", "failed": "deny"}.get(status, status),
            "gross_amount": f"{price}.00",
            "currency": "IDR",
            "payment_type": "qris",
            "transaction_time": at.strftime("%Y-%m-%d %H:%M:%S"),
        }
    return {
        "id": ext,
        "external_id": ext,
        "status": {"paid": "PAID", "failed": "EXPIRED"}.get(status, status.upper()),
        "paid_amount": price,
        "currency": "IDR",
        "payment_method": "EWALLET",
    }
