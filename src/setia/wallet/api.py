from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

from fastapi import APIRouter, Response
from sqlalchemy.orm import Session

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
from setia.ledger import service as ledger
from setia.ledger.models import Account, Transfer
from setia.members import service as members
from setia.programs import service as programs
from setia.programs.models import Program
from setia.wallet import service as wallet
from setia.wallet.schemas import (
    CaptureIn,
    CreditIn,
    DebitIn,
    RefundIn,
    RefundOut,
    WalletHoldIn,
    WalletHoldOut,
    WalletLifetime,
    WalletLine,
    WalletOperationOut,
    WalletOut,
    WalletStatement,
)

router = APIRouter(prefix="/v1", tags=["wallet"])


def _key(caller: Caller, key: str | None) -> str:
    return f"api:{caller.tenant.id}:{key}" if key else f"api:{new_id()}"


def wallet_out(session: Session, program: Program, member_id: uuid.UUID) -> WalletOut:
    now = wallet.balance(session, program=program, member_id=member_id)
    life = wallet.lifetime(session, program=program, member_id=member_id)
    cur = program.currency
    return WalletOut(
        member_id=member_id,
        program_id=program.id,
        currency=cur,
        available=str(now["available"]),
        held=str(now["held"]),
        lifetime=WalletLifetime(**{k: wallet.money_str(v, cur) for k, v in life.items()}),
    )


def _program_ids(session: Session, caller: Caller) -> list[uuid.UUID]:
    return [p.id for p in programs.list_programs(session, caller.tenant.id)]


@router.get("/members/{member_id}/wallet", response_model=WalletOut, responses=problems(403, 404))
def get_wallet(
    member_id: uuid.UUID,
    session: SessionDep,
    caller: ReadCaller,
    program_id: uuid.UUID | None = None,
) -> WalletOut:
    """The member's wallet: available, held, currency and lifetime totals."""
    member = members.get_member(session, caller.tenant.id, member_id)
    program = programs.get_program(session, caller.tenant.id, program_id)
    return wallet_out(session, program, member.id)


@router.get(
    "/members/{member_id}/wallet/statement",
    response_model=WalletStatement,
    responses=problems(403, 404, 422),
)
def get_wallet_statement(
    member_id: uuid.UUID,
    session: SessionDep,
    caller: ReadCaller,
    program_id: uuid.UUID | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> WalletStatement:
    """The wallet's statement, newest first: one line per change to the balance."""
    member = members.get_member(session, caller.tenant.id, member_id)
    program = programs.get_program(session, caller.tenant.id, program_id)
    rows = wallet.statement(
        session, program=program, member_id=member.id, limit=limit, before=decode_cursor(cursor)
    )
    cur = program.currency
    lines = [
        WalletLine(
            **{
                **row,
                "amount": wallet.money_str(row["amount"], cur),
                "balance_after": wallet.money_str(row["balance_after"], cur),
            }
        )
        for row in rows
    ]
    return WalletStatement(
        currency=cur,
        data=lines,
        next_cursor=encode_cursor(rows[-1]["id"]) if len(rows) == limit else None,
    )


def _operation(
    session: Session,
    program: Program,
    member_id: uuid.UUID,
    res: ledger.Result,
    response: Response,
) -> WalletOperationOut:
    response.status_code = 201 if res.created else 200
    transfer = ledger.get_transfer(session, program.id, res.transfer_id)
    return WalletOperationOut(
        transfer_id=res.transfer_id,
        created=res.created,
        amount=wallet.money_str(transfer.amount, program.currency),
        wallet=wallet_out(session, program, member_id),
    )


@router.post(
    "/members/{member_id}/wallet/credits",
    response_model=WalletOperationOut,
    status_code=201,
    responses={**problems(403, 404, 409, 422), **answered(WalletOperationOut, 200)},
)
def credit_wallet(
    member_id: uuid.UUID,
    body: CreditIn,
    session: SessionDep,
    caller: AdminCaller,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> WalletOperationOut:
    """Put money in the wallet (admin): a top-up, a gift card load, cashback or goodwill.

    Send an `Idempotency-Key`: a retry with the same key and body answers `200` with the
    first result and writes nothing; another body is `409 idempotency_key_reused`.
    """

    def run() -> tuple[Program, ledger.Result]:
        member = members.get_member(session, caller.tenant.id, member_id)
        program = programs.get_program(session, caller.tenant.id, body.program_id)
        return program, wallet.credit(
            session,
            program=program,
            member_id=member.id,
            amount=wallet.parse(body.amount, program.currency),
            code=body.code,
            idempotency_key=_key(caller, idempotency_key),
            actor=caller.actor,
            source_type=body.source_type or "wallet_credit",
            source_id=body.source_id,
            reason=body.reason,
        )

    program, res = write(session, run)
    return _operation(session, program, member_id, res, response)


@router.post(
    "/members/{member_id}/wallet/debits",
    response_model=WalletOperationOut,
    status_code=201,
    responses={**problems(403, 404, 409, 422), **answered(WalletOperationOut, 200)},
)
def debit_wallet(
    member_id: uuid.UUID,
    body: DebitIn,
    session: SessionDep,
    caller: PosCaller,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> WalletOperationOut:
    """Pay from the wallet now. 409 `insufficient_wallet_balance` (with `available`).

    Send an `Idempotency-Key`: a retry with the same key and body answers `200` with the
    first result and writes nothing; another body is `409 idempotency_key_reused`.
    """

    def run() -> tuple[Program, ledger.Result]:
        member = members.get_member(session, caller.tenant.id, member_id)
        program = programs.get_program(session, caller.tenant.id, body.program_id)
        return program, wallet.debit(
            session,
            program=program,
            member_id=member.id,
            amount=wallet.parse(body.amount, program.currency),
            order_id=body.order_id,
            idempotency_key=_key(caller, idempotency_key),
            actor=caller.actor,
        )

    program, res = write(session, run)
    return _operation(session, program, member_id, res, response)


def hold_out(session: Session, program: Program, hold: Transfer) -> WalletHoldOut:
    resolution = ledger.hold_resolution(session, hold.id)
    account = session.get(Account, hold.debit_account_id)
    status = "open"
    if resolution is not None:
        status = {
            "POST_PENDING": "captured",
            "VOID_PENDING": "voided",
            "EXPIRE_PENDING": "expired",
        }[resolution.kind]
    captured = resolution if resolution is not None and status == "captured" else None
    cur = program.currency
    return WalletHoldOut(
        hold_id=hold.id,
        member_id=account.member_id if account else None,
        currency=cur,
        amount=wallet.money_str(hold.amount, cur),
        order_id=hold.source_id,
        status=status,
        expires_at=hold.expires_at,
        captured=None if captured is None else wallet.money_str(captured.amount, cur),
        capture_transfer_id=None if captured is None else captured.id,
        resolved_at=None if resolution is None else resolution.created_at,
    )


@router.post(
    "/members/{member_id}/wallet/holds",
    response_model=WalletHoldOut,
    status_code=201,
    responses={**problems(403, 404, 409, 422), **answered(WalletHoldOut, 200)},
)
def create_wallet_hold(
    member_id: uuid.UUID,
    body: WalletHoldIn,
    session: SessionDep,
    caller: PosCaller,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> WalletHoldOut:
    """Reserve wallet money for an order; capture or void it later. Unresolved holds expire.

    Send an `Idempotency-Key`: a retry with the same key and body answers `200` with the
    first result and writes nothing; another body is `409 idempotency_key_reused`.
    """

    def run() -> tuple[Program, ledger.Result]:
        member = members.get_member(session, caller.tenant.id, member_id)
        program = programs.get_program(session, caller.tenant.id, body.program_id)
        minutes = body.timeout_minutes or program.hold_timeout_minutes
        return program, wallet.debit(
            session,
            program=program,
            member_id=member.id,
            amount=wallet.parse(body.amount, program.currency),
            order_id=body.order_id,
            idempotency_key=_key(caller, idempotency_key),
            actor=caller.actor,
            hold_for=timedelta(minutes=minutes),
        )

    program, res = write(session, run)
    response.status_code = 201 if res.created else 200
    return hold_out(session, program, wallet.get_hold(session, [program.id], res.transfer_id))


def _hold(session: Session, caller: Caller, hold_id: uuid.UUID) -> tuple[Program, Transfer]:
    hold = wallet.get_hold(session, _program_ids(session, caller), hold_id)
    program = session.get(Program, hold.program_id)
    assert program is not None
    return program, hold


@router.get("/wallet-holds/{hold_id}", response_model=WalletHoldOut, responses=problems(403, 404))
def get_wallet_hold(hold_id: uuid.UUID, session: SessionDep, caller: ReadCaller) -> WalletHoldOut:
    """A wallet hold and what became of it: open, captured, voided or expired."""
    program, hold = _hold(session, caller, hold_id)
    return hold_out(session, program, hold)


def _resolve(
    session: Session,
    caller: Caller,
    hold_id: uuid.UUID,
    action: str,
    amount: str | None,
    key: str | None,
) -> WalletHoldOut:
    def run() -> Program:
        program, hold = _hold(session, caller, hold_id)
        value: Decimal | None = None
        if amount is not None:
            value = wallet.parse(amount, program.currency)
        wallet.resolve_hold(
            session,
            program=program,
            hold=hold,
            action=action,
            amount=value,
            idempotency_key=_key(caller, key),
            actor=caller.actor,
        )
        return program

    write(session, run)
    program, hold = _hold(session, caller, hold_id)
    return hold_out(session, program, hold)


@router.post(
    "/wallet-holds/{hold_id}/capture",
    response_model=WalletHoldOut,
    responses=problems(403, 404, 409, 422),
)
def capture_wallet_hold(
    hold_id: uuid.UUID,
    body: CaptureIn,
    session: SessionDep,
    caller: PosCaller,
    idempotency_key: IdempotencyKey = None,
) -> WalletHoldOut:
    """Spend all or part of a hold; the rest goes back to the wallet.

    409 `hold_not_open` if already resolved or past its expiry; 409 `capture_exceeds_hold`.
    """
    return _resolve(session, caller, hold_id, "capture", body.amount, idempotency_key)


@router.post(
    "/wallet-holds/{hold_id}/void",
    response_model=WalletHoldOut,
    responses=problems(403, 404, 409),
)
def void_wallet_hold(
    hold_id: uuid.UUID,
    session: SessionDep,
    caller: PosCaller,
    idempotency_key: IdempotencyKey = None,
) -> WalletHoldOut:
    """Release a hold: all the held money goes back to the wallet."""
    return _resolve(session, caller, hold_id, "void", None, idempotency_key)


@router.post(
    "/wallet-debits/{transfer_id}/refund",
    response_model=RefundOut,
    status_code=201,
    responses={**problems(403, 404, 409, 422), **answered(RefundOut, 200)},
)
def refund_wallet_debit(
    transfer_id: uuid.UUID,
    body: RefundIn,
    session: SessionDep,
    caller: PosCaller,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> RefundOut:
    """Give back part or all of a wallet debit or a hold's capture, to the same wallet.

    Never more than was spent: 409 `return_exceeds_spent` (with `returnable`). Send an
    Idempotency-Key: a retry with the same key answers `200` and gives back nothing more.
    """

    def run() -> tuple[Program, Transfer, ledger.Result]:
        spend = wallet.get_spend(session, _program_ids(session, caller), transfer_id)
        program = session.get(Program, spend.program_id)
        assert program is not None
        res = wallet.refund(
            session,
            program=program,
            spend=spend,
            amount=wallet.parse(body.amount, program.currency),
            idempotency_key=_key(caller, idempotency_key),
            actor=caller.actor,
            reason=body.reason,
        )
        return program, spend, res

    program, spend, res = write(session, run)
    response.status_code = 201 if res.created else 200
    cur = program.currency
    refund = ledger.get_transfer(session, program.id, res.transfer_id)
    total = wallet.returned_total(session, spend.id)
    account = session.get(Account, spend.debit_account_id)
    assert account is not None
    owner = wallet.survivor_of(session, account.member_id)
    assert owner is not None
    return RefundOut(
        transfer_id=res.transfer_id,
        created=res.created,
        debit_id=spend.id,
        refunded=wallet.money_str(refund.amount, cur),
        refunded_total=wallet.money_str(total, cur),
        refundable=wallet.money_str(spend.amount - total, cur),
        wallet=wallet_out(session, program, owner),
    )
