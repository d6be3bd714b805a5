"""Paid memberships: plans, subscriptions, payments, benefits and the monthly report.

Every function runs inside the caller's transaction and never commits. A subscription row
is locked (``FOR UPDATE`` on PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` already serialises
writers) before it changes, and its ``version`` column makes every update a
compare-and-set. Periods are counted from the subscription's anchor in the tenant's time
zone: period ``n`` starts ``n`` months (or years) after the anchor, so a subscription
anchored on 31 January renews on 28/29 February and then on 31 March.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from dateutil.relativedelta import relativedelta
from sqlalchemy import String, bindparam, func, or_, select
from sqlalchemy.orm import Session

from setia.core.errors import Conflict, IdempotencyKeyReused, InvalidInput, NotFound
from setia.core.money import MoneyError, check_currency, parse_amount, to_str
from setia.core.time import as_utc, utcnow, zone
from setia.ledger import service as ledger
from setia.members import service as members
from setia.memberships.models import (
    LIVE,
    MembershipPlan,
    MembershipPlanRevision,
    Subscription,
    SubscriptionPayment,
)
from setia.memberships.schemas import InitialPayment, PaymentIn, PlanFields, PlanIn, PlanPatch
from setia.outbox.service import publish
from setia.programs import service as programs
from setia.programs.models import Program
from setia.tenants.models import Tenant
from setia.tiers import service as tiers

# --------------------------------------------------------------------------- errors


class PlanNotFound(NotFound):
    code = "plan_not_found"
    title = "Membership plan not found"


class SubscriptionNotFound(NotFound):
    code = "subscription_not_found"
    title = "Subscription not found"


class PaymentNotFound(NotFound):
    code = "payment_not_found"
    title = "Payment not found"


class PlanCodeTaken(Conflict):
    code = "plan_code_taken"
    title = "Another plan of the program has this code"


class PlanRetired(Conflict):
    code = "plan_retired"
    title = "The plan is retired and sells no new subscriptions"


class MembershipExists(Conflict):
    code = "membership_exists"
    title = "The member already has a live subscription in this program"


class PaymentRequired(Conflict):
    code = "payment_required"
    title = "The plan has no trial: start the subscription with its first payment"


class PaymentIdReused(Conflict):
    code = "payment_id_reused"
    title = "This gateway payment id was already recorded with another body"


class PaymentAmountMismatch(Conflict):
    code = "payment_amount_mismatch"
    title = "The payment's amount is not the subscription's price"


class PaymentCurrencyMismatch(Conflict):
    code = "payment_currency_mismatch"
    title = "The payment's currency is not the subscription's"


class RefundExceedsPayment(Conflict):
    code = "refund_exceeds_payment"
    title = "More refunded than the payment paid"


class SubscriptionEnded(Conflict):
    code = "subscription_ended"
    title = "The subscription has ended (lapsed or cancelled)"


class CurrencyMismatch(Conflict):
    code = "currency_mismatch"
    title = "The plan's currency is not the program's"


def _money(value: object, currency: str, field: str) -> Decimal:
    try:
        return parse_amount(value, currency)
    except MoneyError as exc:
        raise InvalidInput(f"{field}: {exc}", extra={"field": field}, code=exc.code) from None


def _currency(value: str) -> str:
    try:
        return check_currency(value)
    except MoneyError as exc:
        raise InvalidInput(str(exc), extra={"field": "currency"}, code=exc.code) from None


# --------------------------------------------------------------------------- plans


def plan_definition(plan: MembershipPlan) -> dict[str, Any]:
    return {
        "code": plan.code,
        "names": plan.names,
        "price": to_str(plan.price, plan.currency),
        "currency": plan.currency,
        "period": plan.period,
        "trial_days": plan.trial_days,
        "grace_days": plan.grace_days,
        "tier_code": plan.tier_code,
        "tier_mode": plan.tier_mode,
        "earn_multiplier": format(plan.earn_multiplier.normalize(), "f"),
        "monthly_bonus_points": plan.monthly_bonus_points,
        "perks": plan.perks.get("items", []),
        "active": plan.active,
    }


def _apply_plan(plan: MembershipPlan, program: Program, body: PlanFields) -> None:
    data = body.model_dump(exclude_unset=True)
    if "currency" in data and data["currency"] is not None:
        currency = _currency(data["currency"])
        if currency != program.currency:
            raise CurrencyMismatch(
                f"the plan's currency {currency} is not the program's {program.currency}"
            )
        plan.currency = currency
    if data.get("price") is not None:
        plan.price = _money(data["price"], plan.currency or program.currency, "price")
    for name in ("period", "trial_days", "grace_days", "monthly_bonus_points", "active"):
        if data.get(name) is not None:
            setattr(plan, name, data[name])
    if "names" in data and data["names"] is not None:
        plan.names = body.names.model_dump(exclude_none=True) if body.names else {}
    if "perks" in data and data["perks"] is not None:
        plan.perks = {"items": [p.model_dump(exclude_none=True) for p in body.perks or []]}
    if "earn_multiplier" in data and data["earn_multiplier"] is not None:
        plan.earn_multiplier = Decimal(data["earn_multiplier"])
    if "tier_code" in data:
        plan.tier_code = data["tier_code"]
        if data["tier_code"] is None:
            plan.tier_mode = None
    if data.get("tier_mode") is not None:
        plan.tier_mode = data["tier_mode"]
    if plan.tier_code and not plan.tier_mode:
        plan.tier_mode = "grant"
    if plan.tier_mode and not plan.tier_code:
        raise InvalidInput("tier_mode needs a tier_code", extra={"field": "tier_mode"})


def _check_tier(session: Session, program: Program, plan: MembershipPlan) -> None:
    """A plan's tier must exist in the program's tier set, or starting it would fail later.
    (A program without tiers ignores the tier benefit until it has them.)"""
    from setia.tiers import service as tiers

    structure = tiers.structure(session, program.id)
    if not plan.tier_code or structure is None:
        return
    known = [t.code for t in structure.tiers]
    if plan.tier_code not in known:
        raise InvalidInput(
            f"tier_code {plan.tier_code!r} is not a tier of this program (its tiers: "
            f"{', '.join(known)})",
            extra={"field": "tier_code"},
            code="tier_not_found",
        )


def _revision(session: Session, plan: MembershipPlan, actor: str) -> None:
    session.add(
        MembershipPlanRevision(
            plan_id=plan.id,
            revision=plan.revision,
            definition=plan_definition(plan),
            changed_by=actor[:100],
        )
    )


def create_plan(session: Session, program: Program, body: PlanIn, *, actor: str) -> MembershipPlan:
    taken = session.execute(
        select(MembershipPlan.id).where(
            MembershipPlan.program_id == program.id, MembershipPlan.code == body.code
        )
    ).first()
    if taken:
        raise PlanCodeTaken(f"the program already has a plan {body.code!r}")
    plan = MembershipPlan(
        program_id=program.id,
        code=body.code,
        names={},
        perks={"items": []},
        currency=program.currency,
        trial_days=0,
        grace_days=0,
        earn_multiplier=Decimal(1),
        monthly_bonus_points=0,
        active=True,
        revision=1,
    )
    _apply_plan(plan, program, body)
    _check_tier(session, program, plan)
    session.add(plan)
    session.flush()
    _revision(session, plan, actor)
    session.flush()
    return plan


def update_plan(
    session: Session, program: Program, plan: MembershipPlan, body: PlanPatch, *, actor: str
) -> MembershipPlan:
    before = plan_definition(plan)
    _apply_plan(plan, program, body)
    _check_tier(session, program, plan)
    if plan_definition(plan) != before:
        plan.revision += 1
        plan.updated_at = utcnow()
        _revision(session, plan, actor)
    session.flush()
    return plan


def list_plans(session: Session, program_id: uuid.UUID) -> list[MembershipPlan]:
    return list(
        session.execute(
            select(MembershipPlan)
            .where(MembershipPlan.program_id == program_id)
            .order_by(MembershipPlan.code)
        ).scalars()
    )


def get_plan(session: Session, tenant_id: uuid.UUID, plan_id: uuid.UUID) -> MembershipPlan:
    plan = session.execute(
        select(MembershipPlan)
        .join(Program, Program.id == MembershipPlan.program_id)
        .where(MembershipPlan.id == plan_id, Program.tenant_id == tenant_id)
    ).scalar_one_or_none()
    if plan is None:
        raise PlanNotFound(f"membership plan {plan_id} not found")
    return plan


def plan_by_code(session: Session, program_id: uuid.UUID, code: str) -> MembershipPlan:
    plan = session.execute(
        select(MembershipPlan).where(
            MembershipPlan.program_id == program_id, MembershipPlan.code == code
        )
    ).scalar_one_or_none()
    if plan is None:
        raise PlanNotFound(f"no membership plan {code!r} in this program")
    return plan


def plan_revisions(session: Session, plan_id: uuid.UUID) -> list[MembershipPlanRevision]:
    return list(
        session.execute(
            select(MembershipPlanRevision)
            .where(MembershipPlanRevision.plan_id == plan_id)
            .order_by(MembershipPlanRevision.revision)
        ).scalars()
    )


# --------------------------------------------------------------------------- periods


def _step(period: str, n: int) -> relativedelta:
    return relativedelta(months=n) if period == "monthly" else relativedelta(years=n)


def period_bounds(sub: Subscription, tz_name: str, n: int) -> tuple[datetime, datetime]:
    """Period ``n`` (0 = the first paid period) in UTC, from the anchor, never chained."""
    anchor = as_utc(sub.anchor_at).astimezone(zone(tz_name))
    start = anchor + _step(sub.period, n)
    end = anchor + _step(sub.period, n + 1)
    return start.astimezone(UTC), end.astimezone(UTC)


def _month_start(sub: Subscription, tz_name: str, k: int) -> datetime:
    anchor = as_utc(sub.anchor_at).astimezone(zone(tz_name))
    return (anchor + relativedelta(months=k)).astimezone(UTC)


def lapse_at(sub: Subscription, tz_name: str) -> datetime:
    """When benefits stop if no payment comes: the period's end plus the grace days."""
    local_end = as_utc(sub.current_period_end).astimezone(zone(tz_name))
    return (local_end + timedelta(days=sub.grace_days)).astimezone(UTC)


def benefits_until(sub: Subscription, tz_name: str) -> date:
    """The last local day (inclusive) the member enjoys the plan without another payment."""
    return (lapse_at(sub, tz_name) - timedelta(microseconds=1)).astimezone(zone(tz_name)).date()


def _months_per_period(sub: Subscription) -> int:
    return 1 if sub.period == "monthly" else 12


def _schedule_bonus(sub: Subscription, tz_name: str) -> None:
    paid_months = sub.periods_paid * _months_per_period(sub)
    if sub.monthly_bonus_points > 0 and sub.live_key and sub.bonus_months < paid_months:
        sub.next_bonus_at = _month_start(sub, tz_name, sub.bonus_months)
    else:
        sub.next_bonus_at = None


# --------------------------------------------------------------------------- subscriptions


def _live_key(program_id: uuid.UUID, member_id: uuid.UUID) -> str:
    return f"{program_id}:{member_id}"


def _payload(sub: Subscription, **extra: Any) -> dict[str, Any]:
    return {
        "subscription_id": str(sub.id),
        "member_id": str(sub.member_id),
        "program_id": str(sub.program_id),
        "plan": sub.plan_code,
        "status": sub.status,
        "current_period_end": as_utc(sub.current_period_end).isoformat(),
        **extra,
    }


def _set_benefit(session: Session, tenant: Tenant, sub: Subscription, actor: str) -> None:
    if sub.tier_code and sub.tier_mode:
        tiers.set_plan_benefit(
            session,
            tenant,
            sub.program_id,
            sub.member_id,
            tier_code=sub.tier_code,
            mode=sub.tier_mode,
            until=benefits_until(sub, tenant.timezone),
            actor=actor,
            reference=str(sub.id),
        )


def _clear_benefit(session: Session, tenant: Tenant, sub: Subscription, actor: str) -> None:
    if sub.tier_code and sub.tier_mode:
        tiers.clear_plan_benefit(
            session, tenant, sub.program_id, sub.member_id, actor=actor, reference=str(sub.id)
        )


def _end(
    session: Session,
    tenant: Tenant,
    sub: Subscription,
    *,
    status: str,
    reason: str,
    at: datetime,
    actor: str,
) -> None:
    sub.status = status
    sub.end_reason = reason
    sub.ended_at = at
    sub.live_key = None
    sub.cancel_at_period_end = False
    sub.next_bonus_at = None
    sub.updated_at = utcnow()
    _clear_benefit(session, tenant, sub, actor)
    topic = "membership.lapsed" if status == "lapsed" else "membership.cancelled"
    publish(session, tenant.id, topic, _payload(sub, reason=reason, ended_at=at.isoformat()))


def get_subscription(
    session: Session, tenant_id: uuid.UUID, sub_id: uuid.UUID, *, lock: bool = False
) -> Subscription:
    q = select(Subscription).where(Subscription.id == sub_id, Subscription.tenant_id == tenant_id)
    if lock:
        q = q.with_for_update().execution_options(populate_existing=True)
    sub = session.execute(q).scalar_one_or_none()
    if sub is None:
        raise SubscriptionNotFound(f"subscription {sub_id} not found")
    return sub


def list_subscriptions(
    session: Session,
    tenant_id: uuid.UUID,
    *,
    member_id: uuid.UUID | None = None,
    status: str | None = None,
    after: uuid.UUID | None = None,
    limit: int = 50,
) -> list[Subscription]:
    q = select(Subscription).where(Subscription.tenant_id == tenant_id)
    if member_id is not None:
        q = q.where(Subscription.member_id == member_id)
    if status is not None:
        q = q.where(Subscription.status == status)
    if after is not None:
        q = q.where(Subscription.id > after)
    return list(session.execute(q.order_by(Subscription.id).limit(limit)).scalars())


def live_subscription(
    session: Session, program_id: uuid.UUID, member_id: uuid.UUID
) -> Subscription | None:
    return session.execute(
        select(Subscription).where(Subscription.live_key == _live_key(program_id, member_id))
    ).scalar_one_or_none()


def _check_amount(sub_price: Decimal, sub_currency: str, amount: str, currency: str) -> Decimal:
    cur = _currency(currency)
    if cur != sub_currency:
        raise PaymentCurrencyMismatch(
            f"the payment is in {cur}; the subscription is paid in {sub_currency}",
            extra={"expected_currency": sub_currency},
        )
    value = _money(amount, cur, "amount")
    if value != sub_price:
        raise PaymentAmountMismatch(
            f"the payment is {to_str(value, cur)} {cur}; the subscription's price is "
            f"{to_str(sub_price, cur)} {cur}",
            extra={"expected_amount": to_str(sub_price, cur)},
        )
    return value


def _find_payment(
    session: Session, tenant_id: uuid.UUID, gateway: str, external_id: str
) -> list[SubscriptionPayment]:
    return list(
        session.execute(
            select(SubscriptionPayment).where(
                SubscriptionPayment.tenant_id == tenant_id,
                SubscriptionPayment.gateway == gateway,
                SubscriptionPayment.external_id == external_id,
            )
        ).scalars()
    )


def start_subscription(
    session: Session,
    tenant: Tenant,
    *,
    member_id: uuid.UUID,
    plan_code: str,
    program_id: uuid.UUID | None = None,
    started_at: datetime | None = None,
    payment: InitialPayment | None = None,
    actor: str,
    idempotency_key: str | None = None,
    request_hash: str | None = None,
    now: datetime | None = None,
) -> tuple[Subscription, bool]:
    """Start a subscription: active with its first payment, or trialing on a plan with a
    trial. Returns the subscription and whether it was created (False: idempotent retry)."""
    now = now or utcnow()
    if idempotency_key is not None:
        found = session.execute(
            select(Subscription).where(
                Subscription.tenant_id == tenant.id,
                Subscription.idempotency_key == idempotency_key,
            )
        ).scalar_one_or_none()
        if found is not None:
            if found.request_hash != request_hash:
                raise IdempotencyKeyReused(
                    f"idempotency key {idempotency_key!r} was already used for another request"
                )
            return found, False
    program = programs.get_program(session, tenant.id, program_id)
    member = members.get_member(session, tenant.id, member_id)
    if member.status != "active":
        raise members.MemberNotActive(f"member {member_id} was merged or erased")
    plan = plan_by_code(session, program.id, plan_code)
    if not plan.active:
        raise PlanRetired(f"the plan {plan.code!r} is retired; it sells no new subscriptions")
    if live_subscription(session, program.id, member.id) is not None:
        raise MembershipExists("the member already has a live subscription in this program")
    start = as_utc(started_at or now)
    if start > now + timedelta(minutes=5):
        raise InvalidInput("started_at is in the future", extra={"field": "started_at"})
    tz = tenant.timezone
    if payment is None and plan.trial_days <= 0:
        raise PaymentRequired(
            f"the plan {plan.code!r} has no trial: send the first payment with the start"
        )
    amount = (
        _check_amount(plan.price, plan.currency, payment.amount, payment.currency)
        if payment
        else None
    )
    if payment and _find_payment(session, tenant.id, payment.gateway, payment.external_id):
        raise PaymentIdReused(f"payment {payment.external_id!r} was already recorded")
    sub = Subscription(
        tenant_id=tenant.id,
        program_id=program.id,
        member_id=member.id,
        plan_id=plan.id,
        plan_revision=plan.revision,
        plan_code=plan.code,
        price=plan.price,
        currency=plan.currency,
        period=plan.period,
        grace_days=plan.grace_days,
        tier_code=plan.tier_code,
        tier_mode=plan.tier_mode,
        earn_multiplier=plan.earn_multiplier,
        monthly_bonus_points=plan.monthly_bonus_points,
        live_key=_live_key(program.id, member.id),
        started_at=start,
        anchor_at=start,
        current_period_start=start,
        current_period_end=start,
        idempotency_key=idempotency_key,
        request_hash=request_hash,
        bonus_months=0,
        cancel_at_period_end=False,
    )
    if payment is None:
        local = start.astimezone(zone(tz))
        sub.trial_ends_at = (local + timedelta(days=plan.trial_days)).astimezone(UTC)
        sub.anchor_at = sub.trial_ends_at
        sub.current_period_end = sub.trial_ends_at
        sub.status = "trialing"
        sub.periods_paid = 0
    else:
        sub.status = "active"
        sub.periods_paid = 1
        sub.first_paid_at = as_utc(payment.occurred_at or start)
        sub.current_period_start, sub.current_period_end = period_bounds(sub, tz, 0)
    session.add(sub)
    session.flush()
    if payment is not None:
        assert amount is not None
        session.add(
            SubscriptionPayment(
                tenant_id=tenant.id,
                subscription_id=sub.id,
                gateway=payment.gateway,
                external_id=payment.external_id,
                status="paid",
                amount=amount,
                currency=plan.currency,
                occurred_at=as_utc(payment.occurred_at or start),
                period_index=0,
                payload=payment.payload,
                request_hash=ledger.request_hash(payment.model_dump(mode="json")),
                outcome="started",
            )
        )
    _schedule_bonus(sub, tz)
    _set_benefit(session, tenant, sub, actor)
    publish(session, tenant.id, "membership.started", _payload(sub, trial=payment is None))
    grant_bonuses(session, tenant, sub, now)
    session.flush()
    return sub, True


def cancel(
    session: Session, tenant: Tenant, sub_id: uuid.UUID, *, actor: str, now: datetime | None = None
) -> Subscription:
    """Cancel at the period's end (benefits continue until then). A subscription already
    past due ends at once."""
    now = now or utcnow()
    sub = get_subscription(session, tenant.id, sub_id, lock=True)
    if sub.status not in LIVE:
        raise SubscriptionEnded(f"the subscription is {sub.status}; there is nothing to cancel")
    if sub.status == "past_due":
        _end(session, tenant, sub, status="cancelled", reason="cancelled", at=now, actor=actor)
    elif not sub.cancel_at_period_end:
        sub.cancel_at_period_end = True
        sub.updated_at = utcnow()
    session.flush()
    return sub


def resume(
    session: Session, tenant: Tenant, sub_id: uuid.UUID, *, actor: str, now: datetime | None = None
) -> Subscription:
    """Undo a cancellation before the period ends."""
    sub = get_subscription(session, tenant.id, sub_id, lock=True)
    if sub.status not in LIVE:
        raise SubscriptionEnded(f"the subscription is {sub.status}; start a new one instead")
    if sub.cancel_at_period_end:
        sub.cancel_at_period_end = False
        sub.updated_at = utcnow()
    session.flush()
    return sub


# --------------------------------------------------------------------------- payments

_AFTER = {"paid": {"pending"}, "failed": {"pending"}, "refunded": {"pending", "paid"}}


@dataclass
class PaymentResult:
    payment: SubscriptionPayment
    subscription: Subscription
    created: bool


def record_payment(
    session: Session, tenant: Tenant, body: PaymentIn, *, actor: str, now: datetime | None = None
) -> PaymentResult:
    """Record a payment notification and apply it: paid renews, failed makes the
    subscription past due, a refund of the current period ends it."""
    now = now or utcnow()
    digest = ledger.request_hash(body.model_dump(mode="json"))
    same_id = _find_payment(session, tenant.id, body.gateway, body.external_id)
    for prior in same_id:
        if prior.status == body.status:
            if prior.request_hash != digest:
                raise PaymentIdReused(
                    f"{body.gateway} payment {body.external_id!r} ({body.status}) was already "
                    "recorded with a different body"
                )
            sub = get_subscription(session, tenant.id, prior.subscription_id)
            return PaymentResult(prior, sub, created=False)
    if same_id and not {p.status for p in same_id} <= _AFTER.get(body.status, set()):
        raise PaymentIdReused(
            f"{body.gateway} payment {body.external_id!r} is already "
            f"{', '.join(sorted(p.status for p in same_id))}; it cannot become {body.status}"
        )
    at = as_utc(body.occurred_at)
    original: SubscriptionPayment | None = None
    if body.status == "refunded":
        ref = body.refund_of or body.external_id
        original = session.execute(
            select(SubscriptionPayment).where(
                SubscriptionPayment.tenant_id == tenant.id,
                SubscriptionPayment.gateway == body.gateway,
                SubscriptionPayment.external_id == ref,
                SubscriptionPayment.status == "paid",
            )
        ).scalar_one_or_none()
        if original is None:
            raise PaymentNotFound(f"no paid {body.gateway} payment {ref!r} to refund")
        sub = get_subscription(session, tenant.id, original.subscription_id, lock=True)
        if body.subscription_id is not None and body.subscription_id != sub.id:
            raise SubscriptionNotFound(f"payment {ref!r} is not for this subscription")
        cur = _currency(body.currency)
        if cur != original.currency:
            raise PaymentCurrencyMismatch(f"the refunded payment was in {original.currency}")
        amount = _money(body.amount, cur, "amount")
        refunded = sum(
            (
                p.amount
                for p in session.execute(
                    select(SubscriptionPayment).where(SubscriptionPayment.refund_of == original.id)
                ).scalars()
            ),
            Decimal(0),
        )
        if amount + refunded > original.amount:
            raise RefundExceedsPayment(
                f"only {to_str(original.amount - refunded, cur)} {cur} of the payment is left "
                "to refund",
                extra={"refundable": to_str(original.amount - refunded, cur)},
            )
    else:
        if body.subscription_id is None:
            raise InvalidInput(
                "subscription_id is required for a paid, failed or pending payment",
                extra={"field": "subscription_id"},
            )
        sub = get_subscription(session, tenant.id, body.subscription_id, lock=True)
        if body.status == "pending":
            cur = _currency(body.currency)
            amount = _money(body.amount, cur, "amount")
        else:
            amount = _check_amount(sub.price, sub.currency, body.amount, body.currency)
        if body.status == "paid" and sub.status not in LIVE:
            raise SubscriptionEnded(
                f"the subscription is {sub.status}; a payment cannot renew it (refund it in "
                "the gateway, or start a new subscription)"
            )
    tz = tenant.timezone
    outcome = "recorded"
    period_index: int | None = None
    if body.status == "paid":
        sub.periods_paid += 1
        period_index = sub.periods_paid - 1
        was = sub.status
        sub.current_period_start, sub.current_period_end = period_bounds(sub, tz, period_index)
        sub.status = "active"
        sub.past_due_since = None
        sub.cancel_at_period_end = False
        if sub.first_paid_at is None:
            sub.first_paid_at = at
        sub.updated_at = utcnow()
        _schedule_bonus(sub, tz)
        _set_benefit(session, tenant, sub, actor)
        publish(
            session,
            tenant.id,
            "membership.renewed",
            _payload(sub, period=period_index, previous_status=was, payment=body.external_id),
        )
        outcome = "renewed"
    elif body.status == "failed" and sub.status in ("active", "trialing"):
        sub.status = "past_due"
        sub.past_due_since = at
        sub.updated_at = utcnow()
        publish(
            session,
            tenant.id,
            "membership.payment_failed",
            _payload(sub, reason="payment_failed", payment=body.external_id),
        )
        outcome = "past_due"
    elif body.status == "refunded":
        assert original is not None
        current = original.period_index == sub.periods_paid - 1
        ends = current and sub.status in LIVE
        publish(
            session,
            tenant.id,
            "membership.refunded",
            _payload(
                sub,
                payment=original.external_id,
                amount=to_str(amount, original.currency),
                currency=original.currency,
                ends_subscription=ends,
            ),
        )
        if ends:
            _end(session, tenant, sub, status="cancelled", reason="refunded", at=at, actor=actor)
            outcome = "refunded_and_ended"
    payment = SubscriptionPayment(
        tenant_id=tenant.id,
        subscription_id=sub.id,
        gateway=body.gateway,
        external_id=body.external_id,
        status=body.status,
        amount=amount,
        currency=original.currency if original else sub.currency,
        occurred_at=at,
        refund_of=original.id if original else None,
        period_index=period_index,
        payload=body.payload,
        request_hash=digest,
        outcome=outcome,
    )
    session.add(payment)
    session.flush()
    if body.status == "paid":
        grant_bonuses(session, tenant, sub, now)
    session.flush()
    return PaymentResult(payment, sub, created=True)


def payments_of(session: Session, sub_id: uuid.UUID) -> list[SubscriptionPayment]:
    return list(
        session.execute(
            select(SubscriptionPayment)
            .where(SubscriptionPayment.subscription_id == sub_id)
            .order_by(SubscriptionPayment.occurred_at, SubscriptionPayment.id)
        ).scalars()
    )


# --------------------------------------------------------------------------- due work


def grant_bonuses(session: Session, tenant: Tenant, sub: Subscription, now: datetime) -> int:
    """Give each paid subscription-month's bonus points once (keyed per month), up to now."""
    given = 0
    program: Program | None = None
    while sub.next_bonus_at is not None and as_utc(sub.next_bonus_at) <= now and sub.live_key:
        k = sub.bonus_months
        program = program or session.get(Program, sub.program_id)
        assert program is not None
        earned_at = as_utc(sub.next_bonus_at)
        ctx = ledger.Context(
            program_id=sub.program_id,
            idempotency_key=f"membership-bonus:{sub.id}:{k}",
            request_hash=ledger.request_hash({"subscription": str(sub.id), "month": k}),
            source_type="subscription",
            source_id=str(sub.id),
            actor="membership",
            reason=f"{sub.plan_code} monthly bonus",
            program_revision=program.revision,
            effective_at=earned_at,
            details={"plan": sub.plan_code, "month": k},
        )
        res = ledger.earn(
            session,
            ctx,
            member_id=sub.member_id,
            amount=sub.monthly_bonus_points,
            earned_at=earned_at,
            pending_until=None,
            expires_at=programs.expires_at(program, earned_at, tenant.timezone),
        )
        if res.created:
            given += 1
            publish(
                session,
                tenant.id,
                "points.earned",
                {
                    "member_id": str(sub.member_id),
                    "program_id": str(sub.program_id),
                    "points": sub.monthly_bonus_points,
                    "subscription_id": str(sub.id),
                    "transfer_id": str(res.transfer_id),
                },
            )
        sub.bonus_months = k + 1
        _schedule_bonus(sub, tenant.timezone)
    if given:
        sub.updated_at = utcnow()
        session.flush()
    return given


def advance(session: Session, tenant: Tenant, sub: Subscription, now: datetime) -> str | None:
    """Move one (locked) subscription along its clock: cancel at period end, past due after
    a missed renewal, lapse after the grace days. Returns what it did."""
    if sub.status not in LIVE or as_utc(sub.current_period_end) > now:
        return None
    end = as_utc(sub.current_period_end)
    if sub.cancel_at_period_end:
        _end(session, tenant, sub, status="cancelled", reason="cancelled", at=end, actor="job")
        return "cancelled"
    if sub.status in ("active", "trialing"):
        sub.status = "past_due"
        sub.past_due_since = end
        sub.updated_at = utcnow()
        publish(
            session,
            tenant.id,
            "membership.payment_failed",
            _payload(sub, reason="no_renewal_payment"),
        )
        # A grace of zero days lapses at once.
    lapse = lapse_at(sub, tenant.timezone)
    if lapse <= now:
        _end(session, tenant, sub, status="lapsed", reason="unpaid", at=lapse, actor="job")
        return "lapsed"
    return "past_due"


# --------------------------------------------------------------------------- report


def _month(value: str) -> tuple[int, int]:
    try:
        y, m = value.split("-")
        if len(y) != 4 or len(m) != 2:
            raise ValueError(value)
        year, month = int(y), int(m)
        date(year, month, 1)
    except ValueError:
        raise InvalidInput(f"{value!r} is not a month; use YYYY-MM") from None
    return year, month


def report(
    session: Session,
    tenant: Tenant,
    program: Program,
    *,
    from_month: str,
    to_month: str,
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """Paid members, new, churned and revenue per calendar month in the tenant's zone.

    Every figure is an aggregate the database computes (a handful of statements per
    month), so the report costs the same whatever the number of subscriptions."""
    now = now or utcnow()
    fy, fm = _month(from_month)
    ty, tm = _month(to_month)
    if (ty, tm) < (fy, fm):
        raise InvalidInput("`to` is before `from`")
    if (ty - fy) * 12 + tm - fm >= 120:
        raise InvalidInput("a report covers at most 120 months")
    tz = zone(tenant.timezone)
    paid_subs = (Subscription.program_id == program.id, Subscription.first_paid_at.is_not(None))

    def paid_at(moment: datetime) -> int:
        return int(
            session.execute(
                select(func.count())
                .select_from(Subscription)
                .where(
                    *paid_subs,
                    Subscription.first_paid_at < moment,
                    or_(Subscription.ended_at.is_(None), Subscription.ended_at >= moment),
                )
            ).scalar_one()
        )

    out: list[dict[str, Any]] = []
    y, m = fy, fm
    while (y, m) <= (ty, tm):
        start = datetime(y, m, 1, tzinfo=tz).astimezone(UTC)
        end = (datetime(y, m, 1, tzinfo=tz) + relativedelta(months=1)).astimezone(UTC)
        upto = min(end, now)
        at_start = paid_at(start)
        new = session.execute(
            select(func.count())
            .select_from(Subscription)
            .where(
                *paid_subs, Subscription.first_paid_at >= start, Subscription.first_paid_at < end
            )
        ).scalar_one()
        ended = dict(
            session.execute(
                select(Subscription.status, func.count())
                .where(*paid_subs, Subscription.ended_at >= start, Subscription.ended_at < upto)
                .group_by(Subscription.status)
            ).all()
        )
        revenue: dict[str, Decimal] = {}
        for status, currency, total in session.execute(
            select(
                SubscriptionPayment.status,
                SubscriptionPayment.currency,
                func.sum(SubscriptionPayment.amount),
            )
            .join(Subscription, Subscription.id == SubscriptionPayment.subscription_id)
            .where(
                Subscription.program_id == program.id,
                SubscriptionPayment.status.in_(("paid", "refunded")),
                SubscriptionPayment.occurred_at >= start,
                SubscriptionPayment.occurred_at < end,
            )
            .group_by(SubscriptionPayment.status, SubscriptionPayment.currency)
        ):
            sign = 1 if status == "paid" else -1
            revenue[currency] = revenue.get(currency, Decimal(0)) + sign * Decimal(total)
        lapsed = int(ended.get("lapsed", 0))
        cancelled = int(ended.get("cancelled", 0))
        churned = lapsed + cancelled
        out.append(
            {
                "month": f"{y:04d}-{m:02d}",
                "paid_members": paid_at(upto),
                "new": int(new),
                "churned": churned,
                "lapsed": lapsed,
                "cancelled": cancelled,
                "churn_rate": str((Decimal(churned) / at_start).quantize(Decimal("0.0001")))
                if at_start
                else None,
                "revenue": {c: to_str(v, c) for c, v in sorted(revenue.items())},
            }
        )
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


# Built once, bound per call: every event asks (one by one, or once per batch run).
_PLAN_BENEFITS = select(
    Subscription.member_id, Subscription.plan_code, Subscription.earn_multiplier
).where(Subscription.live_key.in_(bindparam("keys", expanding=True, type_=String())))


def plan_benefits_many(
    session: Session, program_id: uuid.UUID, member_ids: list[uuid.UUID]
) -> dict[uuid.UUID, tuple[str, Decimal]]:
    """The live subscription's plan code and multiplier of each member who has one."""
    if not member_ids:
        return {}
    rows = session.execute(
        _PLAN_BENEFITS, {"keys": [_live_key(program_id, m) for m in member_ids]}
    ).all()
    return {m: (code, Decimal(mult)) for m, code, mult in rows}
