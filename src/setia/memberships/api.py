"""HTTP API of paid memberships: plans, subscriptions, payments and the monthly report."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response

from setia.core.api import (
    AdminCaller,
    Cursor,
    IdempotencyKey,
    Limit,
    Page,
    PosCaller,
    ReadCaller,
    SessionDep,
    answered,
    decode_cursor,
    encode_cursor,
    problems,
    write,
)
from setia.core.money import to_str
from setia.ledger.service import request_hash
from setia.memberships import service
from setia.memberships.models import MembershipPlan, Subscription
from setia.memberships.schemas import (
    PaymentIn,
    PaymentOut,
    PlanIn,
    PlanOut,
    PlanPatch,
    ReportOut,
    SubscriptionIn,
    SubscriptionOut,
)
from setia.programs import service as programs
from setia.tenants.models import Tenant

router = APIRouter(prefix="/v1", tags=["memberships"])


def plan_out(plan: MembershipPlan) -> PlanOut:
    d = service.plan_definition(plan)
    return PlanOut(
        **d,
        id=plan.id,
        program_id=plan.program_id,
        revision=plan.revision,
        created_at=plan.created_at,
        updated_at=plan.updated_at,
    )


def sub_out(sub: Subscription, tenant: Tenant, created: bool = False) -> SubscriptionOut:
    return SubscriptionOut(
        id=sub.id,
        member_id=sub.member_id,
        program_id=sub.program_id,
        plan_id=sub.plan_id,
        plan=sub.plan_code,
        plan_revision=sub.plan_revision,
        price=to_str(sub.price, sub.currency),
        currency=sub.currency,
        period=sub.period,
        status=sub.status,
        started_at=sub.started_at,
        trial_ends_at=sub.trial_ends_at,
        current_period_start=sub.current_period_start,
        current_period_end=sub.current_period_end,
        benefits_until=service.benefits_until(sub, tenant.timezone).isoformat(),
        periods_paid=sub.periods_paid,
        cancel_at_period_end=sub.cancel_at_period_end,
        past_due_since=sub.past_due_since,
        ended_at=sub.ended_at,
        end_reason=sub.end_reason,
        bonus_months=sub.bonus_months,
        created=created,
    )


# --------------------------------------------------------------------------- plans


@router.get("/membership-plans", response_model=list[PlanOut], responses=problems(403, 404))
def list_plans(
    session: SessionDep, caller: ReadCaller, program_id: uuid.UUID | None = None
) -> list[PlanOut]:
    """The program's paid membership plans, retired ones included (`active: false`)."""
    program = programs.get_program(session, caller.tenant.id, program_id)
    return [plan_out(p) for p in service.list_plans(session, program.id)]


@router.post(
    "/membership-plans", response_model=PlanOut, status_code=201, responses=problems(403, 404, 409)
)
def create_plan(
    body: PlanIn, session: SessionDep, caller: AdminCaller, program_id: uuid.UUID | None = None
) -> PlanOut:
    """Create a plan. Its currency must be the program's (`409 currency_mismatch`); its
    code is unique in the program (`409 plan_code_taken`)."""

    def run() -> MembershipPlan:
        program = programs.get_program(session, caller.tenant.id, program_id)
        return service.create_plan(session, program, body, actor=caller.actor)

    return plan_out(write(session, run))


@router.get("/membership-plans/{plan_id}", response_model=PlanOut, responses=problems(403, 404))
def get_plan(plan_id: uuid.UUID, session: SessionDep, caller: ReadCaller) -> PlanOut:
    """One plan, at its current revision."""
    return plan_out(service.get_plan(session, caller.tenant.id, plan_id))


@router.patch(
    "/membership-plans/{plan_id}", response_model=PlanOut, responses=problems(403, 404, 409)
)
def update_plan(
    plan_id: uuid.UUID, body: PlanPatch, session: SessionDep, caller: AdminCaller
) -> PlanOut:
    """Change a plan: a new revision. Subscriptions already sold keep the price and terms
    they were sold at; new subscriptions get the new ones. `active: false` retires it."""

    def run() -> MembershipPlan:
        plan = service.get_plan(session, caller.tenant.id, plan_id)
        program = programs.get_program(session, caller.tenant.id, plan.program_id)
        return service.update_plan(session, program, plan, body, actor=caller.actor)

    return plan_out(write(session, run))


@router.delete(
    "/membership-plans/{plan_id}", response_model=PlanOut, responses=problems(403, 404, 409)
)
def retire_plan(plan_id: uuid.UUID, session: SessionDep, caller: AdminCaller) -> PlanOut:
    """Retire a plan: it sells no new subscriptions; live ones run on. Plans are never
    deleted, so history keeps its terms."""

    def run() -> MembershipPlan:
        plan = service.get_plan(session, caller.tenant.id, plan_id)
        program = programs.get_program(session, caller.tenant.id, plan.program_id)
        return service.update_plan(
            session, program, plan, PlanPatch(active=False), actor=caller.actor
        )

    return plan_out(write(session, run))


# --------------------------------------------------------------------------- subscriptions


@router.post(
    "/subscriptions",
    response_model=SubscriptionOut,
    status_code=201,
    responses={**problems(403, 404, 409), **answered(SubscriptionOut, 200)},
)
def start_subscription(
    body: SubscriptionIn,
    session: SessionDep,
    caller: PosCaller,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> SubscriptionOut:
    """Start a paid membership: with its first `payment` (active at once), or without one
    on a plan with a trial (`trialing`). A member has at most one live subscription per
    program (`409 membership_exists`). With an `Idempotency-Key`, a retry answers `200`."""

    def run() -> tuple[Subscription, bool]:
        return service.start_subscription(
            session,
            caller.tenant,
            member_id=body.member_id,
            plan_code=body.plan,
            program_id=body.program_id,
            started_at=body.started_at,
            payment=body.payment,
            actor=caller.actor,
            idempotency_key=idempotency_key,
            request_hash=request_hash(body.model_dump(mode="json")) if idempotency_key else None,
        )

    sub, created = write(session, run)
    response.status_code = 201 if created else 200
    return sub_out(sub, caller.tenant, created)


@router.get("/subscriptions", response_model=Page[SubscriptionOut], responses=problems(403))
def list_subscriptions(
    session: SessionDep,
    caller: ReadCaller,
    member_id: uuid.UUID | None = None,
    status: Annotated[
        str | None, Query(pattern="^(trialing|active|past_due|lapsed|cancelled)$")
    ] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[SubscriptionOut]:
    """Subscriptions, oldest first, optionally of one member or in one status."""
    rows = service.list_subscriptions(
        session,
        caller.tenant.id,
        member_id=member_id,
        status=status,
        after=decode_cursor(cursor),
        limit=limit,
    )
    return Page(
        data=[sub_out(s, caller.tenant) for s in rows],
        next_cursor=encode_cursor(rows[-1].id) if len(rows) == limit else None,
    )


@router.get(
    "/subscriptions/{subscription_id}",
    response_model=SubscriptionOut,
    responses=problems(403, 404),
)
def get_subscription(
    subscription_id: uuid.UUID, session: SessionDep, caller: ReadCaller
) -> SubscriptionOut:
    """One subscription: status, current period and until when its benefits last."""
    return sub_out(
        service.get_subscription(session, caller.tenant.id, subscription_id), caller.tenant
    )


@router.post(
    "/subscriptions/{subscription_id}/cancel",
    response_model=SubscriptionOut,
    responses=problems(403, 404, 409),
)
def cancel_subscription(
    subscription_id: uuid.UUID, session: SessionDep, caller: PosCaller
) -> SubscriptionOut:
    """Cancel at the end of the current period: benefits last until then, then the
    subscription is `cancelled`. A `past_due` subscription ends at once. Safe to repeat."""
    sub = write(
        session,
        lambda: service.cancel(session, caller.tenant, subscription_id, actor=caller.actor),
    )
    return sub_out(sub, caller.tenant)


@router.post(
    "/subscriptions/{subscription_id}/resume",
    response_model=SubscriptionOut,
    responses=problems(403, 404, 409),
)
def resume_subscription(
    subscription_id: uuid.UUID, session: SessionDep, caller: PosCaller
) -> SubscriptionOut:
    """Undo a cancellation before the period ends. Safe to repeat."""
    sub = write(
        session,
        lambda: service.resume(session, caller.tenant, subscription_id, actor=caller.actor),
    )
    return sub_out(sub, caller.tenant)


# --------------------------------------------------------------------------- payments


@router.post(
    "/subscription-payments",
    response_model=PaymentOut,
    status_code=201,
    responses={**problems(403, 404, 409), **answered(PaymentOut, 200)},
)
def record_payment(
    body: PaymentIn, session: SessionDep, caller: PosCaller, response: Response
) -> PaymentOut:
    """Record a payment notification from the payment gateway (Midtrans, Xendit, ...).

    `paid` renews the subscription (its period advances); `failed` makes it `past_due`
    (benefits continue for the plan's grace days); `refunded` (the same `external_id`, or
    `refund_of` naming it) ends the subscription at once when it refunds the current
    period; `pending` is only recorded. The amount and currency must be the subscription's
    price (`409 payment_amount_mismatch`, `payment_currency_mismatch`). Idempotent by
    (gateway, external_id, status): a retry answers `200`; the same ones with another body
    is `409 payment_id_reused`."""
    res = write(
        session, lambda: service.record_payment(session, caller.tenant, body, actor=caller.actor)
    )
    response.status_code = 201 if res.created else 200
    p = res.payment
    return PaymentOut(
        id=p.id,
        subscription_id=p.subscription_id,
        gateway=p.gateway,
        external_id=p.external_id,
        status=p.status,
        amount=to_str(p.amount, p.currency),
        currency=p.currency,
        occurred_at=p.occurred_at,
        outcome=p.outcome,
        created=res.created,
        subscription=sub_out(res.subscription, caller.tenant),
    )


# --------------------------------------------------------------------------- report


Month = Annotated[str, Query(pattern=r"^\d{4}-\d{2}$", examples=["2026-01"])]


@router.get("/memberships/report", response_model=ReportOut, responses=problems(403, 404))
def membership_report(
    session: SessionDep,
    caller: ReadCaller,
    from_: Annotated[str, Query(alias="from", pattern=r"^\d{4}-\d{2}$", examples=["2026-01"])],
    to: Month,
    program_id: uuid.UUID | None = None,
) -> ReportOut:
    """Paid members (at each month's end), new paid members, churn (lapsed + cancelled,
    and its rate over the members paid at the month's start) and revenue (paid minus
    refunded, per currency), by calendar month in the tenant's time zone."""
    program = programs.get_program(session, caller.tenant.id, program_id)
    months = service.report(session, caller.tenant, program, from_month=from_, to_month=to)
    return ReportOut(
        program_id=program.id,
        timezone=caller.tenant.timezone,
        months=months,
    )
