"""HTTP API of the rewards catalog and redemptions."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response
from sqlalchemy.orm import Session

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
from setia.core.i18n import pick
from setia.core.money import to_str
from setia.core.time import utcnow
from setia.members import service as members
from setia.programs import service as programs
from setia.programs.models import Program
from setia.rewards import service
from setia.rewards.models import Reward, RewardRedemption
from setia.rewards.schemas import (
    CancelIn,
    FulfilmentIn,
    Locale,
    MemberRewardOut,
    MemberRewardsOut,
    Reason,
    RedemptionIn,
    RedemptionOut,
    RewardIn,
    RewardOut,
    RewardPatch,
    StockOut,
)
from setia.tenants.models import Tenant

router = APIRouter(prefix="/v1", tags=["rewards"])

StatusQ = Annotated[
    str | None,
    Query(pattern="^(held|issued|requested|shipped|delivered|cancelled|expired)$"),
]


def reward_out(
    session: Session, reward: Reward, program: Program, tenant: Tenant, created: bool = False
) -> RewardOut:
    d = service.definition(reward, program.currency)
    return RewardOut(
        **d,
        id=reward.id,
        program_id=reward.program_id,
        code=reward.code,
        revision=reward.revision,
        stock=StockOut(**service.stock(session, reward, tenant.timezone, utcnow())),
        created_at=reward.created_at,
        updated_at=reward.updated_at,
        created=created,
    )


def redemption_out(session: Session, red: RewardRedemption, created: bool = False) -> RedemptionOut:
    return RedemptionOut(
        id=red.id,
        program_id=red.program_id,
        reward_id=red.reward_id,
        reward_code=red.reward_code,
        kind=red.kind,
        member_id=red.member_id,
        status=red.status,
        quantity=red.quantity,
        points=red.points,
        cash_price=None if red.cash_price is None else to_str(red.cash_price, red.currency),
        currency=red.currency,
        channel=red.channel,
        coupon_id=red.coupon_id,
        coupon_code=service.coupon_code(session, red),
        coupon_expires_at=red.coupon_expires_at,
        wallet_transfer_id=red.wallet_transfer_id,
        donation_id=red.donation_id,
        hold_transfer_id=red.hold_transfer_id,
        capture_transfer_id=red.capture_transfer_id,
        return_transfer_id=red.return_transfer_id,
        hold_expires_at=red.hold_expires_at,
        fulfilment_status=red.fulfilment_status,
        tracking=red.tracking,
        shipping_address=red.shipping_address,
        cancel_reason=red.cancel_reason,
        issued_at=red.issued_at,
        ended_at=red.ended_at,
        created_at=red.created_at,
        updated_at=red.updated_at,
        created=created,
    )


# --------------------------------------------------------------------------- catalog


@router.put(
    "/programs/{program_id}/rewards/{code}",
    response_model=RewardOut,
    responses={**problems(403, 404, 409), **answered(RewardOut, 201)},
    status_code=200,
)
def put_reward(
    program_id: uuid.UUID,
    code: str,
    body: RewardIn,
    session: SessionDep,
    caller: AdminCaller,
    response: Response,
) -> RewardOut:
    """Create the reward `code` (201) or replace its whole definition (200). Stock already
    taken stays taken; a lower `stock_total` than what is used leaves none left. Coupon kinds
    need `coupon_campaign_id`, `cashback` needs `cashback_amount`, `gift_card` needs `value`,
    `donation` needs `cause_id` (422 `missing_field`, 404 when it does not exist)."""

    def run() -> tuple[Program, Reward, bool]:
        program = programs.get_program(session, caller.tenant.id, program_id)
        reward, created = service.put_reward(
            session, caller.tenant, program, code, body, actor=caller.actor
        )
        return program, reward, created

    program, reward, created = write(session, run)
    response.status_code = 201 if created else 200
    return reward_out(session, reward, program, caller.tenant, created)


@router.patch(
    "/programs/{program_id}/rewards/{code}",
    response_model=RewardOut,
    responses=problems(403, 404, 409),
)
def patch_reward(
    program_id: uuid.UUID, code: str, body: RewardPatch, session: SessionDep, caller: AdminCaller
) -> RewardOut:
    """Change some fields of a reward (e.g. `{"status": "paused"}` or a new `stock_total`);
    the result must still be a valid definition."""

    def run() -> tuple[Program, Reward]:
        program = programs.get_program(session, caller.tenant.id, program_id)
        reward = service.patch_reward(
            session, caller.tenant, program, code, body, actor=caller.actor
        )
        return program, reward

    program, reward = write(session, run)
    return reward_out(session, reward, program, caller.tenant)


@router.post(
    "/programs/{program_id}/rewards/{code}/archive",
    response_model=RewardOut,
    responses=problems(403, 404, 409),
)
def archive_reward(
    program_id: uuid.UUID, code: str, session: SessionDep, caller: AdminCaller
) -> RewardOut:
    """Archive a reward: it can no longer be redeemed and leaves the member catalog;
    redemptions already made run on. Rewards are never deleted. Safe to repeat."""

    def run() -> tuple[Program, Reward]:
        program = programs.get_program(session, caller.tenant.id, program_id)
        return program, service.archive_reward(session, program, code, actor=caller.actor)

    program, reward = write(session, run)
    return reward_out(session, reward, program, caller.tenant)


@router.get(
    "/programs/{program_id}/rewards",
    response_model=list[RewardOut],
    responses=problems(403, 404),
)
def list_rewards(
    program_id: uuid.UUID,
    session: SessionDep,
    caller: ReadCaller,
    status: Annotated[str | None, Query(pattern="^(active|paused|archived)$")] = None,
    kind: str | None = None,
) -> list[RewardOut]:
    """Every reward of the program (hidden, paused and archived ones too), by code, each
    with its stock: used and left in total and in the current period."""
    program = programs.get_program(session, caller.tenant.id, program_id)
    return [
        reward_out(session, r, program, caller.tenant)
        for r in service.list_rewards(session, program.id, status=status, kind=kind)
    ]


@router.get(
    "/programs/{program_id}/rewards/{code}",
    response_model=RewardOut,
    responses=problems(403, 404),
)
def get_reward(
    program_id: uuid.UUID, code: str, session: SessionDep, caller: ReadCaller
) -> RewardOut:
    """One reward by code (or id), with its stock."""
    program = programs.get_program(session, caller.tenant.id, program_id)
    reward = service.get_reward(session, program.id, code)
    return reward_out(session, reward, program, caller.tenant)


@router.get(
    "/members/{member_id}/rewards",
    response_model=MemberRewardsOut,
    responses=problems(403, 404),
)
def member_rewards(
    member_id: uuid.UUID,
    session: SessionDep,
    caller: ReadCaller,
    locale: Locale | None = None,
    program_id: uuid.UUID | None = None,
) -> MemberRewardsOut:
    """The catalog as the member sees it (for the portal or app): visible rewards that are
    not archived or past their window, each with `redeemable` and, when not, a `reason`
    (`insufficient_points` with `points_missing`, `out_of_stock`, `member_limit_reached`,
    `not_eligible_tier` / `_plan` / `_tags`, `not_yet_available`, `paused`, ...) in the
    member's language (or `locale`)."""
    member = members.get_member(session, caller.tenant.id, member_id)
    program = programs.get_program(session, caller.tenant.id, program_id)
    lang = locale or (member.locale if member.locale in ("id", "ms", "en") else "id")
    now = utcnow()
    points, rows = service.member_catalog(session, caller.tenant, program, member, now=now)
    out = []
    for reward, info, block in rows:
        reason = None
        if block is not None:
            reason = Reason(
                code=block.code,
                message=service.reason_text(block, lang, program.points_name),
                points_missing=block.extra.get("missing"),
                available_from=reward.available_from if block.code == "not_yet_available" else None,
            )
        out.append(
            MemberRewardOut(
                id=reward.id,
                code=reward.code,
                kind=reward.kind,
                name=pick(reward.names, lang) or reward.code,
                description=pick(reward.descriptions, lang),
                terms=pick(reward.terms, lang),
                image_url=reward.image_url,
                points=reward.points,
                cash_price=(
                    None
                    if reward.cash_price is None
                    else to_str(reward.cash_price, program.currency)
                ),
                currency=program.currency,
                stock_left=service._stock_left(info),
                available_until=reward.available_until,
                redeemable=block is None,
                reason=reason,
            )
        )
    return MemberRewardsOut(
        member_id=member.id,
        program_id=program.id,
        locale=lang,
        points_available=points,
        rewards=out,
    )


# --------------------------------------------------------------------------- redemptions


@router.post(
    "/members/{member_id}/redemptions",
    response_model=RedemptionOut,
    status_code=201,
    responses={**problems(403, 404, 409), **answered(RedemptionOut, 200)},
)
def redeem(
    member_id: uuid.UUID,
    body: RedemptionIn,
    session: SessionDep,
    caller: PosCaller,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> RedemptionOut:
    """Redeem a reward (by code or id) for the member, in one transaction: stock and the
    member's limit are taken, the points held, the reward issued (a coupon code, a wallet
    credit, a donation, or a fulfilment request for a physical item) and the points posted.
    With `confirm: false` it stays `held` (points held, stock reserved) until
    `POST /redemptions/{id}/confirm` or `/cancel`, or the program's hold timeout.

    Refusals, each with nothing written: 404 `reward_not_found` / `member_not_found`,
    409 `reward_unavailable` (paused, archived, outside its window), `out_of_stock`,
    `member_limit_reached`, `not_eligible` (with `reason`: tier, plan or tags),
    `insufficient_points` (with `available` and `missing`), `below_minimum_redeem`,
    `member_not_active`. With an `Idempotency-Key`, a retry answers `200` with the first
    redemption; the same key with another body is `409 idempotency_key_reused`."""

    def run() -> tuple[RewardRedemption, bool]:
        program = programs.get_program(session, caller.tenant.id, body.program_id)
        return service.redeem(
            session,
            caller.tenant,
            program,
            member_id,
            body,
            actor=caller.actor,
            idempotency_key=idempotency_key,
        )

    red, created = write(session, run)
    response.status_code = 201 if created else 200
    return redemption_out(session, red, created)


@router.get(
    "/members/{member_id}/redemptions",
    response_model=Page[RedemptionOut],
    responses=problems(403, 404),
)
def member_redemptions(
    member_id: uuid.UUID,
    session: SessionDep,
    caller: ReadCaller,
    status: StatusQ = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[RedemptionOut]:
    """The member's redemptions, newest first."""
    member = members.get_member(session, caller.tenant.id, member_id)
    rows = service.list_redemptions(
        session,
        caller.tenant.id,
        member_id=member.id,
        status=status,
        after=decode_cursor(cursor),
        limit=limit,
    )
    return Page(
        data=[redemption_out(session, r) for r in rows],
        next_cursor=encode_cursor(rows[-1].id) if len(rows) == limit else None,
    )


@router.get(
    "/programs/{program_id}/redemptions",
    response_model=Page[RedemptionOut],
    responses=problems(403, 404),
)
def program_redemptions(
    program_id: uuid.UUID,
    session: SessionDep,
    caller: ReadCaller,
    status: StatusQ = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[RedemptionOut]:
    """The program's redemptions, newest first, optionally in one status (e.g. `requested`
    for the physical rewards waiting to be shipped)."""
    program = programs.get_program(session, caller.tenant.id, program_id)
    rows = service.list_redemptions(
        session,
        caller.tenant.id,
        program_id=program.id,
        status=status,
        after=decode_cursor(cursor),
        limit=limit,
    )
    return Page(
        data=[redemption_out(session, r) for r in rows],
        next_cursor=encode_cursor(rows[-1].id) if len(rows) == limit else None,
    )


@router.get(
    "/redemptions/{redemption_id}", response_model=RedemptionOut, responses=problems(403, 404)
)
def get_redemption(
    redemption_id: uuid.UUID, session: SessionDep, caller: ReadCaller
) -> RedemptionOut:
    """One redemption, with its coupon code for coupon rewards."""
    return redemption_out(session, service.get_redemption(session, caller.tenant.id, redemption_id))


@router.post(
    "/redemptions/{redemption_id}/confirm",
    response_model=RedemptionOut,
    responses=problems(403, 404, 409),
)
def confirm_redemption(
    redemption_id: uuid.UUID, session: SessionDep, caller: PosCaller
) -> RedemptionOut:
    """Issue a `held` redemption and post its points. Confirming an issued one returns it
    unchanged; past its hold deadline it is `409 redemption_expired`."""
    red = write(
        session, lambda: service.confirm(session, caller.tenant, redemption_id, actor=caller.actor)
    )
    return redemption_out(session, red)


@router.post(
    "/redemptions/{redemption_id}/cancel",
    response_model=RedemptionOut,
    responses=problems(403, 404, 409),
)
def cancel_redemption(
    redemption_id: uuid.UUID,
    session: SessionDep,
    caller: PosCaller,
    body: CancelIn | None = None,
) -> RedemptionOut:
    """Cancel a redemption, exactly once (a second cancel returns it, `200`):

    * `held`: the hold is voided, stock and the member's limit released;
    * physical, not yet shipped: points returned, stock and limit released;
    * an unused coupon: the coupon is cancelled, stock and limit released, and the points
      returned if the program's `coupon_cancel_returns_points` is on; a used coupon is
      `409 coupon_used`;
    * cashback, gift card and donation: `409 not_cancellable` (the money is in the wallet,
      the points with the cause); shipped or delivered items and expired redemptions too."""
    red, _ = write(
        session,
        lambda: service.cancel(
            session,
            caller.tenant,
            redemption_id,
            actor=caller.actor,
            reason=body.reason if body else None,
        ),
    )
    return redemption_out(session, red)


@router.post(
    "/redemptions/{redemption_id}/fulfilment",
    response_model=RedemptionOut,
    responses=problems(403, 404, 409),
)
def fulfil_redemption(
    redemption_id: uuid.UUID, body: FulfilmentIn, session: SessionDep, caller: PosCaller
) -> RedemptionOut:
    """Move a physical reward forward: `requested` → `shipped` (with `tracking`) →
    `delivered`. Repeating the current status is harmless; a backward move, or any move of
    a cancelled redemption or a non-physical reward, is `409 invalid_transition`."""
    red = write(
        session,
        lambda: service.fulfil(
            session,
            caller.tenant,
            redemption_id,
            status=body.status,
            tracking=body.tracking,
            actor=caller.actor,
        ),
    )
    return redemption_out(session, red)
