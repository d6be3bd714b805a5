from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Response

from setia.core.api import (
    AdminCaller,
    Caller,
    Cursor,
    IdempotencyKey,
    Limit,
    PosCaller,
    ReadCaller,
    SessionDep,
    answered,
    decode_cursor,
    encode_cursor,
    problems,
    write,
)
from setia.core.db import new_id
from setia.core.errors import Conflict, InvalidInput
from setia.core.time import utcnow
from setia.ledger import queries
from setia.ledger import service as ledger
from setia.ledger.models import Account
from setia.ledger.schemas import (
    AdjustIn,
    BalanceOut,
    CaptureIn,
    HoldIn,
    HoldOut,
    OperationOut,
    RedeemIn,
    Statement,
    TransferIn,
)
from setia.members import service as members
from setia.programs import service as programs
from setia.programs.models import Program

router = APIRouter(prefix="/v1", tags=["points"])


class TransfersDisabled(Conflict):
    code = "member_transfers_disabled"
    title = "The program does not allow transfers between members"


def _balance(session: SessionDep, program: Program, member_id: uuid.UUID) -> BalanceOut:
    data = queries.balance(session, program.id, member_id, now=utcnow())
    return BalanceOut(
        member_id=member_id, program_id=program.id, points_name=program.points_name, **data
    )


def _ctx(
    caller: Caller, program: Program, key: str | None, op: str, body: dict[str, Any], **kw: Any
) -> ledger.Context:
    return ledger.Context(
        program_id=program.id,
        idempotency_key=f"api:{caller.tenant.id}:{key}" if key else f"api:{new_id()}",
        request_hash=ledger.request_hash({"op": op, **body}),
        actor=caller.actor,
        program_revision=program.revision,
        **kw,
    )


@router.get("/members/{member_id}/balance", response_model=BalanceOut, responses=problems(403, 404))
def get_balance(
    member_id: uuid.UUID,
    session: SessionDep,
    caller: ReadCaller,
    program_id: uuid.UUID | None = None,
) -> BalanceOut:
    """Available, held, pending (with dates), expiring soon (with dates), debt and lifetime totals."""
    member = members.get_member(session, caller.tenant.id, member_id)
    program = programs.get_program(session, caller.tenant.id, program_id)
    return _balance(session, program, member.id)


@router.get("/members/{member_id}/ledger", response_model=Statement, responses=problems(403, 404))
def get_statement(
    member_id: uuid.UUID,
    session: SessionDep,
    caller: ReadCaller,
    program_id: uuid.UUID | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Statement:
    """The member's points statement, newest first: one line per change to a balance."""
    member = members.get_member(session, caller.tenant.id, member_id)
    program = programs.get_program(session, caller.tenant.id, program_id)
    rows = queries.statement(
        session, program.id, member.id, limit=limit, before=decode_cursor(cursor)
    )
    return Statement(
        data=rows, next_cursor=encode_cursor(rows[-1]["id"]) if len(rows) == limit else None
    )


def _operation(
    session: SessionDep,
    program: Program,
    member_id: uuid.UUID,
    res: ledger.Result,
    response: Response,
) -> OperationOut:
    response.status_code = 201 if res.created else 200
    return OperationOut(
        transfer_id=res.transfer_id,
        created=res.created,
        amounts=res.amounts,
        balance=_balance(session, program, member_id),
    )


@router.post(
    "/members/{member_id}/points/redeem",
    response_model=OperationOut,
    status_code=201,
    responses={**problems(403, 404, 409), **answered(OperationOut, 200)},
)
def redeem(
    member_id: uuid.UUID,
    body: RedeemIn,
    session: SessionDep,
    caller: PosCaller,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> OperationOut:
    """Spend points now. 409 `insufficient_points` or `below_minimum_redeem` when it cannot."""

    def run() -> tuple[Program, ledger.Result]:
        member = members.get_member(session, caller.tenant.id, member_id)
        members._active(member)
        program = programs.get_program(session, caller.tenant.id, body.program_id)
        ctx = _ctx(
            caller,
            program,
            idempotency_key,
            "redeem",
            {"member": str(member_id), **body.model_dump(mode="json")},
            source_type="redemption",
            source_id=body.reference,
        )
        return program, ledger.spend(
            session,
            ctx,
            member_id=member.id,
            amount=body.points,
            min_balance=program.min_redeem_points,
        )

    program, res = write(session, run)
    return _operation(session, program, member_id, res, response)


@router.post(
    "/members/{member_id}/points/holds",
    response_model=HoldOut,
    status_code=201,
    responses={**problems(403, 404, 409), **answered(HoldOut, 200)},
)
def create_hold(
    member_id: uuid.UUID,
    body: HoldIn,
    session: SessionDep,
    caller: PosCaller,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> HoldOut:
    """Reserve points (e.g. paying with points at checkout); capture or void later. Unresolved holds expire."""

    def run() -> tuple[Program, ledger.Result]:
        member = members.get_member(session, caller.tenant.id, member_id)
        members._active(member)
        program = programs.get_program(session, caller.tenant.id, body.program_id)
        ctx = _ctx(
            caller,
            program,
            idempotency_key,
            "hold",
            {"member": str(member_id), **body.model_dump(mode="json")},
            source_type="hold",
            source_id=body.reference,
        )
        minutes = body.timeout_minutes or program.hold_timeout_minutes
        return program, ledger.spend(
            session,
            ctx,
            member_id=member.id,
            amount=body.points,
            min_balance=program.min_redeem_points,
            hold_for=timedelta(minutes=minutes),
        )

    _program, res = write(session, run)
    response.status_code = 201 if res.created else 200
    return _hold_out(session, caller, res.transfer_id)


def _hold_out(session: SessionDep, caller: Caller, hold_id: uuid.UUID) -> HoldOut:
    program_ids = [p.id for p in programs.list_programs(session, caller.tenant.id)]
    hold = ledger.get_hold(session, program_ids, hold_id)
    resolution = ledger.hold_resolution(session, hold.id)
    acc = session.get(Account, hold.debit_account_id)
    status = "open"
    if resolution is not None:
        status = {
            "POST_PENDING": "captured",
            "VOID_PENDING": "voided",
            "EXPIRE_PENDING": "expired",
        }[resolution.kind]
    return HoldOut(
        hold_id=hold.id,
        member_id=acc.member_id if acc else None,
        points=hold.amount,
        status=status,
        expires_at=hold.expires_at,
        resolution=None
        if resolution is None
        else {
            "transfer_id": str(resolution.id),
            "points": resolution.amount,
            "at": resolution.created_at.isoformat(),
        },
    )


@router.get("/holds/{hold_id}", response_model=HoldOut, responses=problems(403, 404))
def get_hold(hold_id: uuid.UUID, session: SessionDep, caller: ReadCaller) -> HoldOut:
    """A hold and what became of it: open, captured, voided or expired."""
    return _hold_out(session, caller, hold_id)


def _resolve(
    session: SessionDep,
    caller: Caller,
    hold_id: uuid.UUID,
    action: str,
    points: int | None,
    key: str | None,
    response: Response,
) -> HoldOut:
    def run() -> ledger.Result:
        program_ids = [p.id for p in programs.list_programs(session, caller.tenant.id)]
        hold = ledger.get_hold(session, program_ids, hold_id)
        program = session.get(Program, hold.program_id)
        assert program is not None
        ctx = _ctx(
            caller,
            program,
            key,
            action,
            {"hold": str(hold_id), "points": points},
            source_type=hold.source_type,
            source_id=hold.source_id,
        )
        return ledger.resolve_hold(session, ctx, hold, action=action, amount=points)

    res = write(session, run)
    response.status_code = 200
    del res
    return _hold_out(session, caller, hold_id)


@router.post("/holds/{hold_id}/capture", response_model=HoldOut, responses=problems(403, 404, 409))
def capture_hold(
    hold_id: uuid.UUID,
    session: SessionDep,
    caller: PosCaller,
    response: Response,
    idempotency_key: IdempotencyKey = None,
    body: CaptureIn | None = None,
) -> HoldOut:
    """Spend all or part of a hold; the rest goes back to the member. Without a body (or
    without `points`) the whole hold. 409 `hold_not_open` if already resolved."""
    points = body.points if body is not None else None
    return _resolve(session, caller, hold_id, "capture", points, idempotency_key, response)


@router.post("/holds/{hold_id}/void", response_model=HoldOut, responses=problems(403, 404, 409))
def void_hold(
    hold_id: uuid.UUID,
    session: SessionDep,
    caller: PosCaller,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> HoldOut:
    """Release a hold: every held point goes back, to the lots it came from."""
    return _resolve(session, caller, hold_id, "void", None, idempotency_key, response)


@router.post(
    "/members/{member_id}/points/adjust",
    response_model=OperationOut,
    status_code=201,
    responses={**problems(403, 404, 409), **answered(OperationOut, 200)},
)
def adjust(
    member_id: uuid.UUID,
    body: AdjustIn,
    session: SessionDep,
    caller: AdminCaller,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> OperationOut:
    """Correct a balance by hand (admin). The reason and the key that did it are kept."""
    if body.points == 0:
        raise InvalidInput("points must not be zero", extra={"field": "points"})

    def run() -> tuple[Program, ledger.Result]:
        member = members.get_member(session, caller.tenant.id, member_id)
        members._active(member)
        program = programs.get_program(session, caller.tenant.id, body.program_id)
        ctx = _ctx(
            caller,
            program,
            idempotency_key,
            "adjust",
            {"member": str(member_id), **body.model_dump(mode="json")},
            source_type="adjustment",
            reason=body.reason,
        )
        now = utcnow()
        return program, ledger.adjust(
            session,
            ctx,
            member_id=member.id,
            delta=body.points,
            earned_at=now,
            expires_at=programs.expires_at(program, now, caller.tenant.timezone),
        )

    program, res = write(session, run)
    return _operation(session, program, member_id, res, response)


@router.post(
    "/members/{member_id}/points/transfer",
    response_model=OperationOut,
    status_code=201,
    responses={**problems(403, 404, 409), **answered(OperationOut, 200)},
)
def transfer(
    member_id: uuid.UUID,
    body: TransferIn,
    session: SessionDep,
    caller: PosCaller,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> OperationOut:
    """Give points to another member, if the program allows it. Points keep their expiry dates."""

    def run() -> tuple[Program, ledger.Result]:
        sender = members.get_member(session, caller.tenant.id, member_id)
        receiver = members.get_member(session, caller.tenant.id, body.to_member_id)
        members._active(sender)
        members._active(receiver)
        if sender.id == receiver.id:
            raise InvalidInput("a member cannot transfer points to itself")
        program = programs.get_program(session, caller.tenant.id, body.program_id)
        if not program.allow_member_transfers:
            raise TransfersDisabled(f"{program.name} does not allow transfers between members")
        ctx = _ctx(
            caller,
            program,
            idempotency_key,
            "transfer",
            {"member": str(member_id), **body.model_dump(mode="json")},
            source_type="member_transfer",
            source_id=str(receiver.id),
        )
        return program, ledger.transfer_between_members(
            session, ctx, from_member=sender.id, to_member=receiver.id, amount=body.points
        )

    program, res = write(session, run)
    return _operation(session, program, member_id, res, response)
