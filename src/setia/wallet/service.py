"""The wallet: a member's money balance (cashback, gift cards, stored value).

The ledger keeps wallet money in the minor unit of the program's currency (rupiah for IDR,
sen for MYR); everything here takes and returns ``Decimal`` amounts and converts at the edge.
Services run inside the caller's transaction and never commit.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from setia.core.errors import InvalidInput, NotFound
from setia.core.money import MAX_AMOUNT, MoneyError, parse_amount, precision
from setia.ledger import service as ledger
from setia.ledger.models import WALLET, Account, Entry, Transfer
from setia.members import service as members
from setia.members.models import Member
from setia.programs.models import Program

CREDIT_CODES = ("TOPUP", "GIFT_CARD", "CASHBACK", "GOODWILL")
SPEND_CODE = "WALLET_SPEND"


class InvalidWalletAmount(InvalidInput):
    code = "invalid_amount"
    title = "Invalid amount"


class TooManyDecimals(InvalidInput):
    code = "too_many_decimals"
    title = "Too many decimal places for the currency"


class InvalidCreditCode(InvalidInput):
    code = "invalid_credit_code"
    title = "Unknown wallet credit code"


class WalletHoldNotFound(NotFound):
    code = "wallet_hold_not_found"
    title = "Wallet hold not found"


class WalletDebitNotFound(NotFound):
    code = "wallet_debit_not_found"
    title = "Wallet debit not found"


# --------------------------------------------------------------------------- conversion


def to_minor(amount: Decimal, currency: str) -> int:
    """A positive amount in the currency's unit -> an integer count of its minor unit.

    Refuses zero, negatives, non-finite values and more decimals than the currency has.
    """
    if not isinstance(amount, Decimal) or not amount.is_finite():
        raise InvalidWalletAmount(f"{amount!r} is not a finite decimal amount")
    if amount <= 0:
        raise InvalidWalletAmount("the amount must be greater than zero")
    if amount >= MAX_AMOUNT:
        raise InvalidWalletAmount(f"the amount must be less than {MAX_AMOUNT:,}")
    digits = precision(currency)
    minor = amount.scaleb(digits)
    if minor != minor.to_integral_value():
        raise TooManyDecimals(
            f"{currency} amounts allow {digits} decimal place(s); got {amount}",
            extra={"decimals": digits},
        )
    return int(minor)


def from_minor(minor: int, currency: str) -> Decimal:
    """An integer count of the currency's minor unit -> a ``Decimal`` with its decimals."""
    digits = precision(currency)
    return Decimal(minor).scaleb(-digits).quantize(Decimal(1).scaleb(-digits))


def money_str(minor: int, currency: str) -> str:
    return str(from_minor(minor, currency))


def parse(value: str, currency: str, field: str = "amount") -> Decimal:
    """An amount sent as a string: positive, finite, no more decimals than the currency has."""
    try:
        return parse_amount(value, currency)
    except MoneyError as exc:
        raise InvalidInput(f"{field}: {exc}", extra={"field": field}, code=exc.code) from None


# --------------------------------------------------------------------------- writes


def _ctx(
    program: Program,
    *,
    idempotency_key: str,
    actor: str,
    payload: dict[str, Any],
    source_type: str | None,
    source_id: str | None,
    reason: str | None = None,
) -> ledger.Context:
    return ledger.Context(
        program_id=program.id,
        idempotency_key=idempotency_key,
        request_hash=ledger.request_hash(payload),
        source_type=source_type,
        source_id=source_id,
        actor=actor,
        reason=reason,
        program_revision=program.revision,
    )


def _member(session: Session, program: Program, member_id: uuid.UUID) -> uuid.UUID:
    """The member, in the program's tenant and active (404 / 409 otherwise)."""
    member = members.get_member(session, program.tenant_id, member_id)
    members._active(member)
    return member.id


def credit(
    session: Session,
    *,
    program: Program,
    member_id: uuid.UUID,
    amount: Decimal,
    code: str,
    idempotency_key: str,
    actor: str,
    source_type: str | None = None,
    source_id: str | None = None,
    reason: str | None = None,
) -> ledger.Result:
    """Put money in a member's wallet: a top-up, a gift card, cashback or goodwill.

    ``idempotency_key`` is unique per program (namespace it, e.g. ``reward:<redemption>``):
    the same key with the same request returns the first result (``created`` False); with a
    different request it raises ``IdempotencyKeyReused``. ``amounts["credited"]`` is in
    minor units.
    """
    if code not in CREDIT_CODES:
        raise InvalidCreditCode(
            f"unknown credit code {code!r}; use one of {', '.join(CREDIT_CODES)}",
            extra={"allowed": list(CREDIT_CODES)},
        )
    minor = to_minor(amount, program.currency)
    member = _member(session, program, member_id)
    ctx = _ctx(
        program,
        idempotency_key=idempotency_key,
        actor=actor,
        payload={
            "op": "wallet_credit",
            "member": str(member),
            "amount": minor,
            "code": code,
            "source_type": source_type,
            "source_id": source_id,
            "reason": reason,
        },
        source_type=source_type,
        source_id=source_id,
        reason=reason,
    )
    return ledger.wallet_credit(session, ctx, member_id=member, amount=minor, code=code)


def debit(
    session: Session,
    *,
    program: Program,
    member_id: uuid.UUID,
    amount: Decimal,
    order_id: str,
    idempotency_key: str,
    actor: str,
    hold_for: timedelta | None = None,
    source_type: str = "order",
) -> ledger.Result:
    """Pay from the wallet now, or hold the money when ``hold_for`` is given.

    409 ``insufficient_wallet_balance`` (with ``available``, a decimal string) when the
    wallet has less than ``amount``.
    """
    minor = to_minor(amount, program.currency)
    member = _member(session, program, member_id)
    ctx = _ctx(
        program,
        idempotency_key=idempotency_key,
        actor=actor,
        payload={
            "op": "wallet_hold" if hold_for is not None else "wallet_debit",
            "member": str(member),
            "amount": minor,
            "order_id": order_id,
            "hold_minutes": None if hold_for is None else hold_for.total_seconds() / 60,
        },
        source_type=source_type,
        source_id=order_id,
    )
    try:
        return ledger.wallet_debit(
            session, ctx, member_id=member, amount=minor, code=SPEND_CODE, hold_for=hold_for
        )
    except ledger.InsufficientWallet as exc:
        available = int(exc.extra.get("available", 0))
        raise ledger.InsufficientWallet(
            f"not enough money in the wallet: {money_str(available, program.currency)} "
            f"{program.currency} available",
            extra={"available": money_str(available, program.currency)},
        ) from None


def _wallet_transfer(
    session: Session, program_ids: list[uuid.UUID], transfer_id: uuid.UUID, kinds: tuple[str, ...]
) -> Transfer | None:
    """A transfer of one of ``kinds`` from a member's wallet, in one of the programs."""
    return session.execute(
        select(Transfer)
        .join(Account, Account.id == Transfer.debit_account_id)
        .where(
            Transfer.id == transfer_id,
            Transfer.program_id.in_(program_ids),
            Transfer.kind.in_(kinds),
            Account.code == WALLET,
            Transfer.code == SPEND_CODE,
        )
    ).scalar_one_or_none()


def get_hold(session: Session, program_ids: list[uuid.UUID], hold_id: uuid.UUID) -> Transfer:
    hold = _wallet_transfer(session, program_ids, hold_id, ("PENDING",))
    if hold is None:
        raise WalletHoldNotFound(f"wallet hold {hold_id} not found")
    return hold


def get_spend(session: Session, program_ids: list[uuid.UUID], transfer_id: uuid.UUID) -> Transfer:
    """A wallet debit or a wallet hold's capture (what a refund can give back)."""
    spend = _wallet_transfer(session, program_ids, transfer_id, ("POSTED", "POST_PENDING"))
    if spend is None:
        raise WalletDebitNotFound(
            f"wallet debit {transfer_id} not found (give a debit's or a capture's transfer id)"
        )
    return spend


def resolve_hold(
    session: Session,
    *,
    program: Program,
    hold: Transfer,
    action: str,
    amount: Decimal | None,
    idempotency_key: str,
    actor: str,
) -> ledger.Result:
    """Capture (all or part) or void a wallet hold."""
    minor = None if amount is None else to_minor(amount, program.currency)
    ctx = _ctx(
        program,
        idempotency_key=idempotency_key,
        actor=actor,
        payload={"op": f"wallet_hold_{action}", "hold": str(hold.id), "amount": minor},
        source_type=hold.source_type,
        source_id=hold.source_id,
    )
    try:
        return ledger.resolve_hold(session, ctx, hold, action=action, amount=minor)
    except ledger.CaptureExceedsHold:
        raise ledger.CaptureExceedsHold(
            f"cannot capture {amount} from a hold of {money_str(hold.amount, program.currency)}",
            extra={"held": money_str(hold.amount, program.currency)},
        ) from None


def refund(
    session: Session,
    *,
    program: Program,
    spend: Transfer,
    amount: Decimal,
    idempotency_key: str,
    actor: str,
    reason: str | None = None,
) -> ledger.Result:
    """Give back part or all of a wallet debit or capture (a RETURN transfer)."""
    minor = to_minor(amount, program.currency)
    ctx = _ctx(
        program,
        idempotency_key=idempotency_key,
        actor=actor,
        payload={"op": "wallet_refund", "spend": str(spend.id), "amount": minor, "reason": reason},
        source_type=spend.source_type,
        source_id=spend.source_id,
        reason=reason,
    )
    # A refund of a member merged since the debit goes to the surviving member's wallet.
    try:
        res = ledger.return_spent(session, ctx, original=spend, amount=minor)
    except ledger.ReturnExceedsSpent as exc:
        returnable = int(exc.extra.get("returnable", 0))
        raise ledger.ReturnExceedsSpent(
            f"cannot give back {amount}: {money_str(returnable, program.currency)} of "
            f"{money_str(spend.amount, program.currency)} is left to give back",
            extra={"returnable": money_str(returnable, program.currency)},
        ) from None
    return res


def survivor_of(session: Session, member_id: uuid.UUID | None) -> uuid.UUID | None:
    """The member a merged member's history now belongs to (itself when not merged)."""
    seen: set[uuid.UUID] = set()
    while member_id is not None and member_id not in seen:
        seen.add(member_id)
        row = session.execute(
            select(Member.status, Member.merged_into_id).where(Member.id == member_id)
        ).one()
        if row.status != "merged" or row.merged_into_id is None:
            return member_id
        member_id = row.merged_into_id
    return member_id


# --------------------------------------------------------------------------- reads


def returned_total(session: Session, spend_id: uuid.UUID) -> int:
    """What the refunds of a debit or capture gave back so far (minor units)."""
    return int(
        session.execute(
            select(func.coalesce(func.sum(Transfer.amount), 0)).where(
                Transfer.reverses_id == spend_id
            )
        ).scalar_one()
    )


def balance(session: Session, *, program: Program, member_id: uuid.UUID) -> dict[str, Decimal]:
    """available and held, as ``Decimal`` in the program's currency."""
    raw = ledger.wallet_balance(session, program.id, member_id)
    return {k: from_minor(v, program.currency) for k, v in raw.items()}


def lifetime(session: Session, *, program: Program, member_id: uuid.UUID) -> dict[str, int]:
    """credited, spent (net of holds: debits and captures) and returned, in minor units."""
    account = session.execute(
        select(Account.id).where(
            Account.program_id == program.id,
            Account.member_id == member_id,
            Account.code == WALLET,
        )
    ).scalar_one_or_none()
    out = {"credited": 0, "spent": 0, "returned": 0, "merged_in": 0, "merged_out": 0}
    if account is None:
        return out
    # Through the account's entries (one per transfer that touched it; indexed by account):
    # the transfers' account columns have no index.
    rows = session.execute(
        select(Transfer.code, Transfer.credit_account_id, func.sum(Transfer.amount))
        .select_from(Entry)
        .join(Transfer, Transfer.id == Entry.transfer_id)
        .where(Entry.account_id == account, Transfer.kind.in_(("POSTED", "POST_PENDING")))
        .group_by(Transfer.code, Transfer.credit_account_id)
    ).all()
    for code, credit_account, amount in rows:
        incoming = credit_account == account
        total = int(amount)
        if code == "RETURN":
            out["returned"] += total
        elif code == "MERGE":
            out["merged_in" if incoming else "merged_out"] += total
        elif incoming:
            out["credited"] += total
        else:
            out["spent"] += total
    return out


def statement(
    session: Session,
    *,
    program: Program,
    member_id: uuid.UUID,
    limit: int,
    before: uuid.UUID | None,
) -> list[dict[str, Any]]:
    """The wallet's entries, newest first (minor units), each with the transfer behind it."""
    account = session.execute(
        select(Account.id).where(
            Account.program_id == program.id,
            Account.member_id == member_id,
            Account.code == WALLET,
        )
    ).scalar_one_or_none()
    if account is None:
        return []
    query = (
        select(Entry, Transfer)
        .join(Transfer, Transfer.id == Entry.transfer_id)
        .where(Entry.account_id == account)
    )
    if before is not None:
        version = session.execute(
            select(Entry.account_version).where(Entry.id == before, Entry.account_id == account)
        ).scalar_one_or_none()
        if version is None:
            raise InvalidInput("the cursor does not belong to this statement", code="bad_cursor")
        query = query.where(Entry.account_version < version)
    rows = session.execute(query.order_by(Entry.account_version.desc()).limit(limit)).all()
    return [
        {
            "id": entry.id,
            "transfer_id": transfer.id,
            "code": transfer.code,
            "kind": transfer.kind,
            "amount": entry.amount,
            "balance_after": entry.balance_after,
            "source_type": transfer.source_type,
            "source_id": transfer.source_id,
            "reason": transfer.reason,
            "created_at": entry.created_at,
        }
        for entry, transfer in rows
    ]
