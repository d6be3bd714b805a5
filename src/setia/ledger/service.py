"""Ledger operations. Every function runs inside the caller's transaction and never commits.

How a write stays correct under retries and races:

* **Idempotency.** Every transfer carries an idempotency key, unique per program, and the
  hash of the request that made it. An operation first looks its key up: the same key with
  the same hash returns the stored result; with another hash it raises
  ``IdempotencyKeyReused`` (409).
* **Locks.** On PostgreSQL the accounts an operation touches are locked with
  ``SELECT ... FOR UPDATE`` in id order before anything else (so two operations can never
  wait on each other in a cycle), and lots are only read after their account is locked.
  On SQLite the transaction already holds the database write lock (``BEGIN IMMEDIATE``).
* **Guarded updates.** Counters change with ``UPDATE ... WHERE <limit still holds>
  RETURNING``; no row back means the limit would break, and nothing is written.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

import orjson
from sqlalchemy import (
    BigInteger,
    Table,
    Uuid,
    and_,
    bindparam,
    case,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session

from setia.core.db import new_id
from setia.core.errors import Conflict, IdempotencyKeyReused, NotFound, SetiaError
from setia.core.time import add_months, utcnow
from setia.ledger.models import (
    ADJUSTMENT,
    DEBT,
    EXPIRED,
    ISSUANCE,
    MEMBER_CODES,
    PENDING,
    POINTS,
    PROGRAM_CODES,
    REDEEMED,
    WALLET,
    WALLET_ISSUED,
    WALLET_PROGRAM_CODES,
    WALLET_SPENT,
    WRITE_OFF,
    Account,
    Entry,
    Lot,
    LotMovement,
    Transfer,
)
from setia.members.chains import survivor_id
from setia.members.models import Member
from setia.programs.models import Program


class InsufficientPoints(Conflict):
    code = "insufficient_points"
    title = "Not enough points"


class BelowMinimumRedeem(Conflict):
    code = "below_minimum_redeem"
    title = "Balance below the program's minimum for redemption"


class HoldNotOpen(Conflict):
    code = "hold_not_open"
    title = "The hold was already captured, voided or expired"


class CaptureExceedsHold(Conflict):
    code = "capture_exceeds_hold"
    title = "Capture amount is larger than the hold"


class InsufficientWallet(Conflict):
    code = "insufficient_wallet_balance"
    title = "Not enough money in the wallet"


class ReturnExceedsSpent(Conflict):
    code = "return_exceeds_spent"
    title = "More would be given back than was spent"


class LedgerCorrupt(SetiaError):
    status = 500
    code = "ledger_inconsistent"
    title = "Ledger inconsistency"


@dataclass(frozen=True)
class MemberAccounts:
    points: uuid.UUID
    pending: uuid.UUID
    debt: uuid.UUID


@dataclass
class Context:
    """Who and what a ledger operation is for; copied onto every transfer it writes."""

    program_id: uuid.UUID
    idempotency_key: str
    request_hash: str
    source_type: str | None = None
    source_id: str | None = None
    actor: str | None = None
    reason: str | None = None
    program_revision: int | None = None
    effective_at: datetime | None = None
    details: dict[str, Any] = field(default_factory=dict)
    _n: int = 0

    def next_key(self) -> str:
        """The first transfer gets the operation's key; the others a numbered suffix."""
        key = self.idempotency_key if self._n == 0 else f"{self.idempotency_key}#{self._n}"
        self._n += 1
        return key


# orjson's options for request_hash: sorted keys; datetimes, dataclasses and subclasses of
# str, int, dict and list refused (json.dumps writes them otherwise), so they go the general way.
_SAME_AS_DUMPS = (
    orjson.OPT_SORT_KEYS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)


def request_hash(payload: Any, *, no_floats: bool = False) -> str:
    """A stable digest of a request, to tell a retry from a different request.

    The digest is of ``json.dumps`` with sorted keys, compact. ``no_floats``: the caller
    knows ``payload`` holds only dicts with text keys, lists, text, integers, booleans and
    None (a model dumped in JSON mode without free-form fields). orjson then writes the
    very same text whenever that text is printable ASCII (non-ASCII text, which
    ``json.dumps`` escapes, and DEL are detected and go through ``json.dumps``), for a
    fraction of the cost. What the check cannot see is the caller's to rule out: floats
    (``1e-05`` against ``1e-5``, NaN as null) and plain enums (a value against ``str()``).
    Stored digests stay valid (``tests/ledger/test_request_hash.py``)."""
    if no_floats:
        try:
            raw = orjson.dumps(payload, option=_SAME_AS_DUMPS)
        except orjson.JSONEncodeError:
            pass  # an integer beyond 64 bits, a datetime, ...: the general way
        else:
            if raw.isascii() and b"\x7f" not in raw:
                return hashlib.sha256(raw).hexdigest()
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


# --------------------------------------------------------------------------- accounts

# The hot-path statements are built once, on the tables (no ORM), and only bound per call:
# building an expression costs more than running it.
_accounts, _transfers, _entries, _lots = (
    cast(Table, m.__table__) for m in (Account, Transfer, Entry, Lot)
)
_dp, _cp, _dpend, _cpend = (bindparam(k, type_=BigInteger) for k in ("dp", "cp", "dpend", "cpend"))
_APPLY = (
    update(_accounts)
    .where(
        _accounts.c.id == bindparam("account_id", type_=_accounts.c.id.type),
        or_(
            _accounts.c.no_overdraft.is_(False),
            _accounts.c.debits_posted + _dp + _accounts.c.debits_pending + _dpend
            <= _accounts.c.credits_posted + _cp,
        ),
        or_(
            _accounts.c.no_overcredit.is_(False),
            _accounts.c.credits_posted + _cp + _accounts.c.credits_pending + _cpend
            <= _accounts.c.debits_posted + _dp,
        ),
    )
    .values(
        debits_posted=_accounts.c.debits_posted + _dp,
        credits_posted=_accounts.c.credits_posted + _cp,
        debits_pending=_accounts.c.debits_pending + _dpend,
        credits_pending=_accounts.c.credits_pending + _cpend,
        version=_accounts.c.version + 1,
    )
    .returning(
        _accounts.c.credits_posted - _accounts.c.debits_posted - _accounts.c.debits_pending,
        _accounts.c.version,
    )
)
_AVAILABLE = select(
    _accounts.c.credits_posted - _accounts.c.debits_posted - _accounts.c.debits_pending
).where(_accounts.c.id == bindparam("account_id", type_=_accounts.c.id.type))
_OWED = select(_accounts.c.debits_posted - _accounts.c.credits_posted).where(
    _accounts.c.id == bindparam("account_id", type_=_accounts.c.id.type)
)
# Foreign-key columns get their type only once the tables they point to are known: name it.
_MEMBER_ACCOUNTS = select(_accounts.c.code, _accounts.c.id).where(
    _accounts.c.program_id == bindparam("program_id", type_=Uuid()),
    _accounts.c.member_id == bindparam("member_id", type_=Uuid()),
)
_LOCK = (
    select(_accounts.c.id)
    .where(_accounts.c.id.in_(bindparam("ids", expanding=True, type_=Uuid())))
    .order_by(_accounts.c.id)
    .with_for_update()
)
# A member's lots past their expiry date that still hold points (the expiry index).
_DUE_LOTS = (
    select(_lots.c.id, _lots.c.remaining, _lots.c.source_type, _lots.c.source_id)
    .where(
        _lots.c.account_id == bindparam("account_id", type_=Uuid()),
        _lots.c.expires_at <= bindparam("now", type_=_lots.c.expires_at.type),
        _lots.c.remaining > 0,
    )
    .order_by(_lots.c.expires_at, _lots.c.id)
)
_HELD_LOTS = (
    select(_lots.c.id, _lots.c.remaining, _lots.c.source_type, _lots.c.source_id)
    .where(_lots.c.account_id == bindparam("account_id", type_=Uuid()), _lots.c.remaining > 0)
    .order_by(_lots.c.id)
)
_LAST_ACTIVITY = select(Member.last_activity_at).where(
    Member.id == bindparam("member_id", type_=Uuid())
)
_INACTIVITY_PROGRAMS = select(Program.id, Program.expiry_months).where(
    Program.tenant_id == bindparam("tenant_id", type_=Uuid()),
    Program.expiry_policy == "inactivity",
)
_INSERT_TRANSFER = insert(_transfers)
_INSERT_ENTRY = insert(_entries)
_INSERT_LOT = insert(_lots)


def open_program_accounts(session: Session, program_id: uuid.UUID) -> None:
    now = utcnow()
    session.execute(
        insert(Account),
        [
            {"id": new_id(), "program_id": program_id, "code": code, "created_at": now}
            for code in (*PROGRAM_CODES, *WALLET_PROGRAM_CODES)
        ],
    )


def open_member_accounts(
    session: Session, program_id: uuid.UUID, member_id: uuid.UUID
) -> MemberAccounts:
    return open_member_accounts_many(session, [(program_id, member_id)])[0]


def open_member_accounts_many(
    session: Session, pairs: list[tuple[uuid.UUID, uuid.UUID]]
) -> list[MemberAccounts]:
    """Open the accounts of each (program, member) pair with one statement, in pair order."""
    now = utcnow()
    rows: list[dict[str, Any]] = []
    opened: list[MemberAccounts] = []
    for program_id, member_id in pairs:
        ids = {code: new_id() for code in MEMBER_CODES}
        rows.extend(
            {
                "id": ids[code],
                "program_id": program_id,
                "code": code,
                "member_id": member_id,
                "no_overdraft": code != DEBT,
                "no_overcredit": code == DEBT,
                "created_at": now,
            }
            for code in MEMBER_CODES
        )
        opened.append(MemberAccounts(points=ids[POINTS], pending=ids[PENDING], debt=ids[DEBT]))
    if rows:
        session.execute(insert(Account), rows)
    cache = _cache(session)
    for pair, accounts in zip(pairs, opened, strict=True):
        cache[pair] = accounts
    return opened


def _cache(session: Session) -> dict[Any, Any]:
    cache: dict[Any, Any] = session.info.setdefault("ledger_accounts", {})
    return cache


_PROGRAM_ACCOUNTS = select(Account.code, Account.id).where(
    Account.program_id == bindparam("program_id", type_=Uuid()), Account.member_id.is_(None)
)


def program_account(session: Session, program_id: uuid.UUID, code: str) -> uuid.UUID:
    key = (program_id, code)
    cache = _cache(session)
    if key not in cache:
        rows = session.execute(_PROGRAM_ACCOUNTS, {"program_id": program_id}).all()
        for row_code, row_id in rows:
            cache[(program_id, row_code)] = row_id
        if key not in cache:
            raise LedgerCorrupt(f"program {program_id} has no {code} account")
    account_id: uuid.UUID = cache[key]
    return account_id


def member_accounts(
    session: Session, program_id: uuid.UUID, member_id: uuid.UUID, *, create: bool = True
) -> MemberAccounts:
    cache = _cache(session)
    key = (program_id, member_id)
    if key in cache:
        cached: MemberAccounts = cache[key]
        return cached
    rows = dict(
        session.execute(_MEMBER_ACCOUNTS, {"program_id": program_id, "member_id": member_id}).all()
    )
    if not rows:
        if not create:
            raise NotFound("the member has no account in this program")
        return open_member_accounts(session, program_id, member_id)
    accounts = MemberAccounts(points=rows[POINTS], pending=rows[PENDING], debt=rows[DEBT])
    cache[key] = accounts
    return accounts


def _lock(session: Session, account_ids: list[uuid.UUID]) -> None:
    """Lock accounts in id order (PostgreSQL). SQLite already holds the write lock."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(_LOCK, {"ids": sorted(set(account_ids))}).all()


def _available(session: Session, account_id: uuid.UUID) -> int:
    value = session.execute(_AVAILABLE, {"account_id": account_id}).scalar_one()
    return int(value)


def due_points(
    session: Session, program_id: uuid.UUID, member_id: uuid.UUID, points: uuid.UUID, now: datetime
) -> int:
    """Points of the member's lots that are no longer theirs at ``now`` (past their expiry
    date, or all after the program's inactivity period) and that the expiry job has not
    expired yet: counted in the account's balance, but not the member's to spend."""
    due, _reason = _due_lots(session, program_id, member_id, points, now)
    return sum(int(lot.remaining) for lot in due)


def _owed(session: Session, debt_account_id: uuid.UUID) -> int:
    value = session.execute(_OWED, {"account_id": debt_account_id}).scalar_one()
    return int(value)


# --------------------------------------------------------------------------- transfers


def _find(session: Session, ctx: Context) -> uuid.UUID | None:
    row = session.execute(
        select(Transfer.id, Transfer.request_hash).where(
            Transfer.program_id == ctx.program_id,
            Transfer.idempotency_key == ctx.idempotency_key,
        )
    ).first()
    if row is None:
        return None
    if row.request_hash != ctx.request_hash:
        raise IdempotencyKeyReused(
            f"idempotency key {ctx.idempotency_key!r} was already used for a different request"
        )
    found: uuid.UUID = row.id
    return found


def _again(
    session: Session,
    ctx: Context,
    found: uuid.UUID,
    amounts: Callable[[Transfer, int], dict[str, int]],
) -> Result:
    """A retried operation's answer: the first answer's amounts, read back from the
    transfers it wrote (its key, then ``key#1``, ``key#2``...; ``amounts`` gets the first
    and the points they repaid of a debt)."""
    main = session.execute(select(Transfer).where(Transfer.id == found)).scalar_one()
    followers = [f"{ctx.idempotency_key}#{n}" for n in range(1, 10)]
    repaid = session.execute(
        select(func.coalesce(func.sum(Transfer.amount), 0)).where(
            Transfer.program_id == ctx.program_id,
            Transfer.idempotency_key.in_(followers),
            Transfer.code == "DEBT_REPAY",
        )
    ).scalar_one()
    return Result(found, created=False, amounts=amounts(main, int(repaid)))


def _account_code(session: Session, account_id: uuid.UUID) -> str:
    code: str = session.execute(select(Account.code).where(Account.id == account_id)).scalar_one()
    return code


def _found_after_lock(session: Session, ctx: Context) -> uuid.UUID | None:
    """A retry of this request that committed while this one waited for the account locks.

    Without it the retry would fail the limit check (the first request already spent the
    money) instead of returning the first result. PostgreSQL only: on SQLite the whole
    transaction holds the write lock, so the lookup before the locks already saw it.
    """
    if session.get_bind().dialect.name != "postgresql":
        return None
    return _find(session, ctx)


def _apply(
    session: Session,
    account_id: uuid.UUID,
    *,
    dp: int = 0,
    cp: int = 0,
    dpend: int = 0,
    cpend: int = 0,
) -> tuple[int, int]:
    """Change an account's counters if its limits still hold; return (available, version)."""
    row = session.execute(
        _APPLY, {"account_id": account_id, "dp": dp, "cp": cp, "dpend": dpend, "cpend": cpend}
    ).first()
    if row is None:
        available = _available(session, account_id)
        raise InsufficientPoints(
            f"not enough points: {available} available",
            extra={"available": available},
        )
    return int(row[0]), int(row[1])


def _move(
    session: Session,
    ctx: Context,
    *,
    debit: uuid.UUID,
    credit: uuid.UUID,
    amount: int,
    code: str,
    kind: str = "POSTED",
    pending: Transfer | None = None,
    expires_at: datetime | None = None,
    reverses_id: uuid.UUID | None = None,
) -> uuid.UUID:
    """Write one transfer, its counter changes and its two entries. Returns its id."""
    if amount <= 0:
        raise LedgerCorrupt(f"transfer amount must be positive, got {amount}")
    deltas: dict[uuid.UUID, dict[str, int]] = {debit: {}, credit: {}}
    if kind == "POSTED":
        deltas[debit]["dp"] = amount
        deltas[credit]["cp"] = amount
    elif kind == "PENDING":
        deltas[debit]["dpend"] = amount
        deltas[credit]["cpend"] = amount
    else:
        assert pending is not None
        deltas[debit]["dpend"] = -pending.amount
        deltas[credit]["cpend"] = -pending.amount
        if kind == "POST_PENDING":
            deltas[debit]["dp"] = amount
            deltas[credit]["cp"] = amount
    transfer_id = new_id()
    now = utcnow()
    results = {acc: _apply(session, acc, **deltas[acc]) for acc in sorted(deltas)}
    session.execute(
        _INSERT_TRANSFER,
        {
            "id": transfer_id,
            "program_id": ctx.program_id,
            "debit_account_id": debit,
            "credit_account_id": credit,
            "amount": amount,
            "code": code,
            "kind": kind,
            "pending_id": pending.id if pending is not None else None,
            "reverses_id": reverses_id,
            "idempotency_key": ctx.next_key(),
            "request_hash": ctx.request_hash,
            "source_type": ctx.source_type,
            "source_id": ctx.source_id,
            "program_revision": ctx.program_revision,
            "actor": ctx.actor,
            "reason": ctx.reason,
            "details": ctx.details,
            "expires_at": expires_at,
            "effective_at": ctx.effective_at or now,
            "created_at": now,
        },
    )
    entries = []
    for acc, d in deltas.items():
        change = d.get("cp", 0) - d.get("dp", 0) - d.get("dpend", 0)
        available, version = results[acc]
        entries.append(
            {
                "id": new_id(),
                "account_id": acc,
                "transfer_id": transfer_id,
                "amount": change,
                "balance_after": available,
                "account_version": version,
                "created_at": now,
            }
        )
    session.execute(_INSERT_ENTRY, entries)
    return transfer_id


# --------------------------------------------------------------------------- lots


def _new_lot(
    session: Session,
    ctx: Context,
    *,
    account_id: uuid.UUID,
    member_id: uuid.UUID,
    transfer_id: uuid.UUID,
    amount: int,
    earned_at: datetime,
    pending_until: datetime | None,
    expires_at: datetime | None,
    released: bool,
) -> uuid.UUID:
    lot_id = new_id()
    session.execute(
        _INSERT_LOT,
        {
            "id": lot_id,
            "program_id": ctx.program_id,
            "account_id": account_id,
            "member_id": member_id,
            "transfer_id": transfer_id,
            "source_type": ctx.source_type,
            "source_id": ctx.source_id,
            "amount": amount,
            "remaining": amount,
            "earned_at": earned_at,
            "pending_until": pending_until,
            "released_at": utcnow() if released else None,
            "expires_at": expires_at,
        },
    )
    return lot_id


def _consume(
    session: Session,
    account_id: uuid.UUID,
    amount: int,
    transfer_id: uuid.UUID,
    *,
    prefer: tuple[str | None, str | None] | None = None,
) -> list[tuple[Lot, int]]:
    """Take ``amount`` from an account's lots, soonest expiry first (never-expiring last).

    ``prefer`` = (source_type, source_id) takes those lots first (a refund reverses the
    order's own points before touching others). The account is already locked.
    """
    never = 1
    order = [
        case((Lot.expires_at.is_(None), never), else_=0),
        Lot.expires_at,
        Lot.earned_at,
        Lot.id,
    ]
    if prefer is not None:
        order.insert(
            0,
            case((and_(Lot.source_type == prefer[0], Lot.source_id == prefer[1]), 0), else_=1),
        )
    lots = (
        session.execute(
            select(Lot).where(Lot.account_id == account_id, Lot.remaining > 0).order_by(*order)
        )
        .scalars()
        .all()
    )
    left = amount
    taken: list[tuple[Lot, int]] = []
    for lot in lots:
        if left == 0:
            break
        take = min(lot.remaining, left)
        taken.append((lot, take))
        left -= take
    if left:
        raise LedgerCorrupt(f"lots of account {account_id} hold {amount - left} of {amount} points")
    for lot, take in taken:
        _lot_change(session, lot.id, -take, transfer_id)
    return taken


def _lot_change(session: Session, lot_id: uuid.UUID, delta: int, transfer_id: uuid.UUID) -> None:
    session.execute(
        update(Lot)
        .where(Lot.id == lot_id)
        .values(remaining=Lot.remaining + delta)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        insert(LotMovement).values(
            id=new_id(), lot_id=lot_id, transfer_id=transfer_id, amount=delta
        )
    )


def _give_back(session: Session, hold_id: uuid.UUID, amount: int, transfer_id: uuid.UUID) -> None:
    """Return ``amount`` of a hold's points to the lots it took them from.

    Latest-expiring lots get theirs back first, so what was kept is what expires soonest.
    """
    rows = session.execute(
        select(LotMovement.lot_id, func.sum(LotMovement.amount), Lot.expires_at)
        .join(Lot, Lot.id == LotMovement.lot_id)
        .where(LotMovement.transfer_id == hold_id)
        .group_by(LotMovement.lot_id, Lot.expires_at)
    ).all()
    # Never-expiring lots first, then the latest expiry: they get their points back first.
    rows = sorted(
        rows, key=lambda r: (r[2] is None, r[2].timestamp() if r[2] else 0.0, r[0]), reverse=True
    )
    left = amount
    for lot_id, taken, _exp in rows:
        if left == 0:
            break
        give = min(-int(taken), left)
        _lot_change(session, lot_id, give, transfer_id)
        left -= give


# --------------------------------------------------------------------------- operations


@dataclass
class Result:
    """What an operation did; ``created`` is False when an idempotent retry found it done."""

    transfer_id: uuid.UUID
    created: bool
    amounts: dict[str, int] = field(default_factory=dict)
    lot_id: uuid.UUID | None = None


def earn(
    session: Session,
    ctx: Context,
    *,
    member_id: uuid.UUID,
    amount: int,
    earned_at: datetime,
    pending_until: datetime | None,
    expires_at: datetime | None,
    code: str = "EARN",
    source_account: str = ISSUANCE,
    check_existing: bool = True,
) -> Result:
    """Credit points as a lot: to PENDING until ``pending_until``, else straight to POINTS."""
    if check_existing and (found := _find(session, ctx)) is not None:
        return _again(
            session,
            ctx,
            found,
            lambda t, repaid: {
                "earned": t.amount,
                # points that landed at once (not pending) repaid a debt first
                **(
                    {"debt_repaid": repaid}
                    if _account_code(session, t.credit_account_id) == POINTS
                    else {}
                ),
            },
        )
    accounts = member_accounts(session, ctx.program_id, member_id)
    issuance = program_account(session, ctx.program_id, source_account)
    is_pending = pending_until is not None and pending_until > utcnow()
    target = accounts.pending if is_pending else accounts.points
    _lock(session, [issuance, target, accounts.debt])
    transfer_id = _move(session, ctx, debit=issuance, credit=target, amount=amount, code=code)
    lot_id = _new_lot(
        session,
        ctx,
        account_id=target,
        member_id=member_id,
        transfer_id=transfer_id,
        amount=amount,
        earned_at=earned_at,
        pending_until=pending_until,
        expires_at=expires_at,
        released=not is_pending,
    )
    result = Result(transfer_id, created=True, lot_id=lot_id, amounts={"earned": amount})
    if not is_pending:
        result.amounts["debt_repaid"] = _repay_debt(session, ctx, member_id, accounts, amount)
    return result


def _repay_debt(
    session: Session,
    ctx: Context,
    member_id: uuid.UUID,
    accounts: MemberAccounts,
    landed: int,
    *,
    expire: bool = True,
) -> int:
    """Repay the member's debt from points that just landed in the available balance (never
    from points past expiry: those expire first, unless the caller already expired them).
    Returns the points repaid."""
    owed = _owed(session, accounts.debt)
    repay = min(owed, landed)
    if repay > 0 and expire and _expire_due(session, ctx, member_id, accounts.points):
        repay = min(repay, _available(session, accounts.points))
    if repay > 0:
        transfer_id = _move(
            session,
            ctx,
            debit=accounts.points,
            credit=accounts.debt,
            amount=repay,
            code="DEBT_REPAY",
        )
        _consume(session, accounts.points, repay, transfer_id)
    return repay


def release_lot(session: Session, lot_id: uuid.UUID, *, now: datetime) -> int:
    """Move a pending lot's remaining points to the member's available balance (a job)."""
    lot = session.execute(select(Lot).where(Lot.id == lot_id)).scalar_one()
    accounts = member_accounts(session, lot.program_id, lot.member_id)
    _lock(session, [accounts.pending, accounts.points, accounts.debt])
    # Re-read under the lock: another worker may have released it meanwhile.
    lot = session.execute(
        select(Lot).where(Lot.id == lot_id).execution_options(populate_existing=True)
    ).scalar_one()
    if lot.released_at is not None or lot.account_id != accounts.pending:
        return 0
    amount = lot.remaining
    ctx = Context(
        program_id=lot.program_id,
        idempotency_key=f"release:{lot.id}",
        request_hash=request_hash({"release": str(lot.id)}),
        source_type=lot.source_type,
        source_id=lot.source_id,
        actor="job",
        effective_at=now,
    )
    session.execute(
        update(Lot)
        .where(Lot.id == lot.id)
        .values(account_id=accounts.points, released_at=now)
        .execution_options(synchronize_session=False)
    )
    if amount > 0:
        _move(
            session,
            ctx,
            debit=accounts.pending,
            credit=accounts.points,
            amount=amount,
            code="RELEASE",
        )
        _repay_debt(session, ctx, lot.member_id, accounts, amount)
    return amount


def expire_lot(
    session: Session, lot_id: uuid.UUID, *, now: datetime, reason: str = "expiry"
) -> int:
    """Expire what is left of an available lot (a job). Returns the points expired."""
    lot = session.execute(select(Lot).where(Lot.id == lot_id)).scalar_one()
    accounts = member_accounts(session, lot.program_id, lot.member_id)
    _lock(session, [accounts.points])
    lot = session.execute(
        select(Lot).where(Lot.id == lot_id).execution_options(populate_existing=True)
    ).scalar_one()
    if lot.remaining == 0 or lot.account_id != accounts.points:
        return 0
    amount = lot.remaining
    _expire(session, lot.program_id, lot.member_id, accounts.points, [lot], now, reason, "job")
    return amount


def clock(session: Session) -> datetime:
    """The moment the ledger decides what has expired at: now, when the operation is
    processed, as the expiry job does (an event's or operation's own ``effective_at`` does
    not matter: points gone by now are gone, whatever date the operation carries). A replay
    of history (the demo) or the jobs run for a given ``now`` set the session's clock with
    ``set_clock``."""
    at: datetime | None = session.info.get(_CLOCK)
    return at if at is not None else utcnow()


def set_clock(session: Session, at: datetime | None) -> None:
    """Make ``clock`` answer ``at`` in this session (None: the real time again)."""
    if at is None:
        session.info.pop(_CLOCK, None)
    else:
        session.info[_CLOCK] = at


_CLOCK = "setia.ledger.clock"


def _expire_due(session: Session, ctx: Context, member_id: uuid.UUID, points: uuid.UUID) -> int:
    """Expire what is no longer the member's at ``clock`` (now), as the expiry job would,
    before points leave the account: points past expiry are never spent, moved, taken back
    by a refund or used to repay a debt, whether or not the job has run yet. The account
    must be locked. Returns the points expired (0, after one look-up on the lots' expiry
    index, when none are due)."""
    now = clock(session)
    due, reason = _due_lots(session, ctx.program_id, member_id, points, now)
    if not due:
        return 0
    _expire(session, ctx.program_id, member_id, points, due, now, reason, "system")
    return sum(int(lot.remaining) for lot in due)


def inactive(last_activity_at: datetime | None, months: int, at: datetime) -> bool:
    """Whether a member last active then has been inactive long enough at ``at`` for a
    program that expires points after ``months`` without activity (the job's rule; a
    member with no activity at all is never expired this way)."""
    return last_activity_at is not None and last_activity_at < add_months(at, -months)


def _due_lots(
    session: Session, program_id: uuid.UUID, member_id: uuid.UUID, points: uuid.UUID, now: datetime
) -> tuple[Sequence[Any], str]:
    """The account's lots that are no longer the member's at ``now``, and why: every lot
    with points left when the program expires points after inactivity and the member has
    been inactive that long; else those past their expiry date."""
    program = session.get(Program, program_id)
    if program is not None and program.expiry_policy == "inactivity":
        last = session.execute(_LAST_ACTIVITY, {"member_id": member_id}).scalar_one_or_none()
        if inactive(last, program.expiry_months, now):
            return session.execute(_HELD_LOTS, {"account_id": points}).all(), "inactivity"
    return session.execute(_DUE_LOTS, {"account_id": points, "now": now}).all(), "expiry"


def expire_inactive(
    session: Session,
    tenant_id: uuid.UUID,
    member_id: uuid.UUID,
    last_activity_at: datetime | None,
    occurred_at: datetime,
) -> int:
    """Before an event brings a member back: in each program of the tenant that expires
    points after inactivity, expire the member's points if the gap before this event (up to
    now, ``clock``) is longer than the period, as the job would have; the caller then
    records the activity, before anything is earned. Judged at the event's own date, so a
    history imported oldest first keeps what the member kept. Returns the points expired.

    It locks the accounts the event's points will touch (the member's, the program's
    issuance) in id order, then EXPIRED last (PostgreSQL)."""
    if last_activity_at is None:
        return 0
    now = min(occurred_at, clock(session))
    total = 0
    for program_id, months in inactivity_programs(session, tenant_id):
        if not inactive(last_activity_at, months, now):
            continue
        try:
            accounts = member_accounts(session, program_id, member_id, create=False)
        except NotFound:
            continue
        lots = session.execute(_HELD_LOTS, {"account_id": accounts.points}).all()
        if not lots:
            continue
        _lock(
            session,
            [
                accounts.points,
                accounts.pending,
                accounts.debt,
                program_account(session, program_id, ISSUANCE),
            ],
        )
        lots = session.execute(_HELD_LOTS, {"account_id": accounts.points}).all()  # locked now
        if lots:
            _expire(
                session, program_id, member_id, accounts.points, lots, now, "inactivity", "system"
            )
            total += sum(int(lot.remaining) for lot in lots)
    return total


def inactivity_programs(session: Session, tenant_id: uuid.UUID) -> list[tuple[uuid.UUID, int]]:
    """The tenant's programs that expire points after inactivity, with their months (read
    once per session)."""
    cache: dict[uuid.UUID, list[tuple[uuid.UUID, int]]] = session.info.setdefault(
        "inactivity_programs", {}
    )
    found = cache.get(tenant_id)
    if found is None:
        rows = session.execute(_INACTIVITY_PROGRAMS, {"tenant_id": tenant_id}).all()
        found = cache[tenant_id] = [(r[0], int(r[1])) for r in rows]
    return found


def _expire(
    session: Session,
    program_id: uuid.UUID,
    member_id: uuid.UUID,
    points: uuid.UUID,
    lots: Sequence[Any],
    now: datetime,
    reason: str,
    actor: str,
) -> None:
    """Move what is left of each lot (``id``, ``remaining``, ``source_type``, ``source_id``;
    the account locked) to the program's EXPIRED account, with a ``points.expired`` message.

    EXPIRED is locked here, after the member's accounts: whoever expires points (the job,
    whose claim already holds the members' accounts, or an operation before it takes
    points out) locks it last, so that they never wait for each other in a cycle
    (PostgreSQL); see docs/ledger.md, "Locking and concurrency"."""
    from setia.outbox.service import publish

    expired_acc = program_account(session, program_id, EXPIRED)
    _lock(session, [expired_acc])
    program = session.get(Program, program_id)
    assert program is not None
    for lot in lots:
        amount = int(lot.remaining)
        ctx = Context(
            program_id=program_id,
            idempotency_key=f"expire:{lot.id}:{new_id()}",
            request_hash=request_hash({"expire": str(lot.id), "amount": amount}),
            source_type=lot.source_type,
            source_id=lot.source_id,
            actor=actor,
            reason=reason,
            effective_at=now,
        )
        transfer_id = _move(
            session, ctx, debit=points, credit=expired_acc, amount=amount, code="EXPIRE"
        )
        _lot_change(session, lot.id, -amount, transfer_id)
        publish(
            session,
            program.tenant_id,
            "points.expired",
            {
                "member_id": str(member_id),
                "points": amount,
                "lot_id": str(lot.id),
                "reason": reason,
            },
        )


def spend(
    session: Session,
    ctx: Context,
    *,
    member_id: uuid.UUID,
    amount: int,
    min_balance: int = 0,
    code: str = "REDEEM",
    to_account: str = REDEEMED,
    hold_for: timedelta | None = None,
) -> Result:
    """Redeem points now, or reserve them (a hold) when ``hold_for`` is given."""

    def spent(t: Transfer, _repaid: int) -> dict[str, int]:
        return {"amount": t.amount}

    if (found := _find(session, ctx)) is not None:
        return _again(session, ctx, found, spent)
    accounts = member_accounts(session, ctx.program_id, member_id)
    target = program_account(session, ctx.program_id, to_account)
    _lock(session, [accounts.points, target])
    if (found := _found_after_lock(session, ctx)) is not None:
        return _again(session, ctx, found, spent)
    _expire_due(session, ctx, member_id, accounts.points)
    if min_balance:
        available = _available(session, accounts.points)
        if available < min_balance:
            raise BelowMinimumRedeem(
                f"a balance of at least {min_balance} points is needed to redeem; "
                f"the member has {available}",
                extra={"available": available, "minimum": min_balance},
            )
    if hold_for is not None:
        transfer_id = _move(
            session,
            ctx,
            debit=accounts.points,
            credit=target,
            amount=amount,
            code=code,
            kind="PENDING",
            expires_at=utcnow() + hold_for,
        )
    else:
        transfer_id = _move(
            session, ctx, debit=accounts.points, credit=target, amount=amount, code=code
        )
    _consume(session, accounts.points, amount, transfer_id)
    return Result(transfer_id, created=True, amounts={"amount": amount})


def get_hold(session: Session, program_ids: list[uuid.UUID], hold_id: uuid.UUID) -> Transfer:
    hold = session.execute(
        select(Transfer).where(
            Transfer.id == hold_id, Transfer.kind == "PENDING", Transfer.program_id.in_(program_ids)
        )
    ).scalar_one_or_none()
    if hold is None:
        raise NotFound(f"hold {hold_id} not found")
    return hold


def hold_resolution(session: Session, hold_id: uuid.UUID) -> Transfer | None:
    return session.execute(
        select(Transfer).where(Transfer.pending_id == hold_id)
    ).scalar_one_or_none()


def resolve_hold(
    session: Session,
    ctx: Context,
    hold: Transfer,
    *,
    action: str,
    amount: int | None = None,
) -> Result:
    """Capture (all or part), void, or expire a hold. A hold is resolved at most once."""

    def resolved(t: Transfer, repaid: int) -> dict[str, int]:
        out = (
            {"captured": t.amount, "released": hold.amount - t.amount}
            if t.kind == "POST_PENDING"
            else {"released": hold.amount}
        )
        return {**out, **({"debt_repaid": repaid} if repaid else {})}

    if (found := _find(session, ctx)) is not None:
        return _again(session, ctx, found, resolved)
    # Points a hold gives back land in the member's available balance: like any points that
    # land there, they repay a debt first (locked with the hold's accounts, in id order).
    owner = session.get(Account, hold.debit_account_id)
    accounts = (
        member_accounts(session, owner.program_id, owner.member_id)
        if owner is not None and owner.code == POINTS and owner.member_id is not None
        else None
    )
    _lock(
        session,
        [hold.debit_account_id, hold.credit_account_id, *([accounts.debt] if accounts else [])],
    )
    if (found := _found_after_lock(session, ctx)) is not None:
        return _again(session, ctx, found, resolved)
    if hold_resolution(session, hold.id) is not None:
        raise HoldNotOpen(f"hold {hold.id} was already resolved")

    def repaid(released: int) -> dict[str, int]:
        if accounts is None or owner is None or owner.member_id is None or released <= 0:
            return {}
        paid = _repay_debt(session, ctx, owner.member_id, accounts, released)
        return {"debt_repaid": paid} if paid else {}

    if action == "capture":
        # Past its deadline a hold only goes back to the member (void or the expiry job),
        # even before the job has run: a late capture must not spend the points.
        if hold.expires_at is not None and hold.expires_at <= utcnow():
            raise HoldNotOpen(
                f"hold {hold.id} expired at {hold.expires_at.isoformat()}",
                extra={"expired_at": hold.expires_at.isoformat()},
            )
        capture = hold.amount if amount is None else amount
        if capture > hold.amount:
            raise CaptureExceedsHold(
                f"cannot capture {capture} points from a hold of {hold.amount}",
                extra={"held": hold.amount},
            )
        if capture <= 0:
            raise CaptureExceedsHold("the capture amount must be positive")
        transfer_id = _move(
            session,
            ctx,
            debit=hold.debit_account_id,
            credit=hold.credit_account_id,
            amount=capture,
            code=hold.code,
            kind="POST_PENDING",
            pending=hold,
        )
        if capture < hold.amount:
            _give_back(session, hold.id, hold.amount - capture, transfer_id)
        return Result(
            transfer_id,
            created=True,
            amounts={
                "captured": capture,
                "released": hold.amount - capture,
                **repaid(hold.amount - capture),
            },
        )
    kind = "VOID_PENDING" if action == "void" else "EXPIRE_PENDING"
    transfer_id = _move(
        session,
        ctx,
        debit=hold.debit_account_id,
        credit=hold.credit_account_id,
        amount=hold.amount,
        code=hold.code,
        kind=kind,
        pending=hold,
    )
    _give_back(session, hold.id, hold.amount, transfer_id)
    return Result(
        transfer_id, created=True, amounts={"released": hold.amount, **repaid(hold.amount)}
    )


def adjust(
    session: Session,
    ctx: Context,
    *,
    member_id: uuid.UUID,
    delta: int,
    earned_at: datetime,
    expires_at: datetime | None,
) -> Result:
    """A manual correction by an admin: positive adds a lot, negative takes points away."""
    if delta > 0:
        return earn(
            session,
            ctx,
            member_id=member_id,
            amount=delta,
            earned_at=earned_at,
            pending_until=None,
            expires_at=expires_at,
            code="ADJUST",
            source_account=ADJUSTMENT,
        )
    return spend(
        session, ctx, member_id=member_id, amount=-delta, code="ADJUST", to_account=ADJUSTMENT
    )


def transfer_between_members(
    session: Session,
    ctx: Context,
    *,
    from_member: uuid.UUID,
    to_member: uuid.UUID,
    amount: int,
    code: str = "TRANSFER",
) -> Result:
    """Move available points to another member; the lots keep their expiry dates."""
    if (found := _find(session, ctx)) is not None:
        return _again(
            session, ctx, found, lambda t, repaid: {"amount": t.amount, "debt_repaid": repaid}
        )
    src = member_accounts(session, ctx.program_id, from_member)
    dst = member_accounts(session, ctx.program_id, to_member)
    _lock(session, [src.points, dst.points, dst.debt])
    _expire_due(session, ctx, from_member, src.points)
    transfer_id = _move(session, ctx, debit=src.points, credit=dst.points, amount=amount, code=code)
    for lot, take in _consume(session, src.points, amount, transfer_id):
        _new_lot(
            session,
            ctx,
            account_id=dst.points,
            member_id=to_member,
            transfer_id=transfer_id,
            amount=take,
            earned_at=lot.earned_at,
            pending_until=lot.pending_until,
            expires_at=lot.expires_at,
            released=True,
        )
    repaid = _repay_debt(session, ctx, to_member, dst, amount)
    return Result(transfer_id, created=True, amounts={"amount": amount, "debt_repaid": repaid})


# Where a refund's points came back from (``reverse_order_points``' answer).
REVERSAL_PARTS = ("already_expired", "from_pending", "from_available", "debt", "written_off")


def reverse_order_points(
    session: Session,
    ctx: Context,
    *,
    member_id: uuid.UUID,
    amount: int,
    shortfall_policy: str,
    reversed_before: int = 0,
) -> dict[str, int]:
    """Take back ``amount`` points earned by an order (``ctx.source_*``), for a refund.

    Order of recovery: the order's points that already expired (they went back to the
    program once and are not taken from the member again); the order's own lots still
    pending; then the member's available points (the order's own lot first); whatever the
    member has already spent becomes recorded debt (repaid from future earnings) or a
    recorded write-off, per the program. ``reversed_before`` is what earlier refunds of the
    order reversed, expired points included.
    """
    accounts = member_accounts(session, ctx.program_id, member_id)
    issuance = program_account(session, ctx.program_id, ISSUANCE)
    write_off = program_account(session, ctx.program_id, WRITE_OFF)
    _lock(session, [accounts.points, accounts.pending, accounts.debt, issuance, write_off])
    # The order's points past expiry count as already expired, as if the job had run.
    _expire_due(session, ctx, member_id, accounts.points)
    out = dict.fromkeys(REVERSAL_PARTS, 0)
    expired = -int(
        session.execute(
            select(func.coalesce(func.sum(LotMovement.amount), 0))
            .join(Lot, Lot.id == LotMovement.lot_id)
            .join(Transfer, Transfer.id == LotMovement.transfer_id)
            .where(
                Lot.program_id == ctx.program_id,
                Lot.source_type == ctx.source_type,
                Lot.source_id == ctx.source_id,
                Transfer.code == "EXPIRE",
            )
        ).scalar_one()
    )
    recovered = int(
        session.execute(
            select(func.coalesce(func.sum(Transfer.amount), 0)).where(
                Transfer.program_id == ctx.program_id,
                Transfer.source_type == ctx.source_type,
                Transfer.source_id == ctx.source_id,
                Transfer.code.in_(["REVERSAL", "DEBT", "WRITE_OFF"]),
            )
        ).scalar_one()
    )
    # Earlier refunds reversed ``reversed_before``; what they did not take from the member
    # was covered by expired points, which cannot cover anything twice.
    out["already_expired"] = min(amount, max(0, expired - (reversed_before - recovered)))
    left = amount - out["already_expired"]
    pending_lots = session.execute(
        select(Lot.id, Lot.remaining)
        .where(
            Lot.account_id == accounts.pending,
            Lot.source_type == ctx.source_type,
            Lot.source_id == ctx.source_id,
            Lot.remaining > 0,
        )
        .order_by(Lot.id)
    ).all()
    for lot_id, remaining in pending_lots:
        if left == 0:
            break
        take = min(left, int(remaining))
        tid = _move(
            session, ctx, debit=accounts.pending, credit=issuance, amount=take, code="REVERSAL"
        )
        _lot_change(session, lot_id, -take, tid)
        out["from_pending"] += take
        left -= take
    if left:
        take = min(left, _available(session, accounts.points))
        if take > 0:
            tid = _move(
                session, ctx, debit=accounts.points, credit=issuance, amount=take, code="REVERSAL"
            )
            _consume(session, accounts.points, take, tid, prefer=(ctx.source_type, ctx.source_id))
            out["from_available"] = take
            left -= take
    if left:
        if shortfall_policy == "debt":
            _move(session, ctx, debit=accounts.debt, credit=issuance, amount=left, code="DEBT")
            out["debt"] = left
        else:
            _move(session, ctx, debit=write_off, credit=issuance, amount=left, code="WRITE_OFF")
            out["written_off"] = left
    return out


def move_member(
    session: Session, ctx: Context, *, program_id: uuid.UUID, source: uuid.UUID, survivor: uuid.UUID
) -> dict[str, int]:
    """Merge: move a member's available points, pending points and debt to the survivor.

    Lots move with their dates; the source's accounts end at zero. Open holds must be
    resolved first (the caller checks).
    """
    src = member_accounts(session, program_id, source)
    dst = member_accounts(session, program_id, survivor)
    _lock(session, [src.points, src.pending, src.debt, dst.points, dst.pending, dst.debt])
    # Each record's points that are gone by now (by date, or by that record's own inactivity)
    # expire before anything moves, as the job would have expired them.
    _expire_due(session, ctx, source, src.points)
    _expire_due(session, ctx, survivor, dst.points)
    moved = {"points": 0, "pending": 0, "debt": 0}
    for kind, s_acc, d_acc in (
        ("points", src.points, dst.points),
        ("pending", src.pending, dst.pending),
    ):
        amount = _available(session, s_acc)
        if amount > 0:
            _move(session, ctx, debit=s_acc, credit=d_acc, amount=amount, code="MERGE")
            session.execute(
                update(Lot)
                .where(Lot.account_id == s_acc)
                .values(account_id=d_acc, member_id=survivor)
                .execution_options(synchronize_session=False)
            )
            moved[kind] = amount
    owed = _owed(session, src.debt)
    if owed > 0:
        _move(session, ctx, debit=dst.debt, credit=src.debt, amount=owed, code="MERGE")
        moved["debt"] = owed
        # expired above, each record by its own activity: the survivor's stored activity is
        # not yet the merged one, and must not expire what just moved in
        moved["debt_repaid"] = _repay_debt(
            session, ctx, survivor, dst, _available(session, dst.points), expire=False
        )
    if wallet_balance(session, program_id, source)["available"] > 0:
        s_wallet = wallet_account(session, program_id, source)
        d_wallet = wallet_account(session, program_id, survivor)
        _lock(session, [s_wallet, d_wallet])
        amount = _available(session, s_wallet)
        if amount > 0:
            _move(session, ctx, debit=s_wallet, credit=d_wallet, amount=amount, code="MERGE")
            moved["wallet"] = amount
    return moved


def return_spent(session: Session, ctx: Context, *, original: Transfer, amount: int) -> Result:
    """Give back ``amount`` of what a spend took from a member (a refund, a cancelled reward).

    ``original`` is a POSTED spend from a member's POINTS or WALLET account, or the capture
    (POST_PENDING) of a hold. The RETURN transfer names it in ``reverses_id``; all the returns
    of one spend never add up to more than it (``ReturnExceedsSpent``). Points go back to the
    lots they were taken from, latest expiry first, with their dates: a lot that expired
    meanwhile gets them back and the next job run expires them (a lot merged into another
    member is recreated with the same dates). Returned points repay debt like any points
    that land.
    """

    def given_back(t: Transfer, repaid: int) -> dict[str, int]:
        if _account_code(session, t.credit_account_id) == POINTS:
            return {"returned": t.amount, "debt_repaid": repaid}
        return {"returned": t.amount}

    if (found := _find(session, ctx)) is not None:
        return _again(session, ctx, found, given_back)
    if original.kind not in ("POSTED", "POST_PENDING") or original.program_id != ctx.program_id:
        raise LedgerCorrupt(f"transfer {original.id} is not a spend that can be given back")
    member_account = session.execute(
        select(Account).where(Account.id == original.debit_account_id)
    ).scalar_one()
    spent_to = session.execute(
        select(Account.member_id).where(Account.id == original.credit_account_id)
    ).scalar_one()
    if (
        member_account.member_id is None
        or member_account.code not in (POINTS, WALLET)
        or spent_to is not None
    ):
        raise LedgerCorrupt(f"transfer {original.id} is not a member's spend")
    # A member merged since the spend: what comes back goes to the surviving member.
    member_id = survivor_id(session, member_account.member_id)
    accounts = None
    if member_account.code == POINTS:
        accounts = member_accounts(session, ctx.program_id, member_id)
        target = accounts.points
        lock = [original.credit_account_id, accounts.points, accounts.debt]
    else:
        target = wallet_account(session, ctx.program_id, member_id)
        lock = [original.credit_account_id, target]
    _lock(session, lock)
    if (found := _found_after_lock(session, ctx)) is not None:
        return _again(session, ctx, found, given_back)
    returned = int(
        session.execute(
            select(func.coalesce(func.sum(Transfer.amount), 0)).where(
                Transfer.reverses_id == original.id
            )
        ).scalar_one()
    )
    returnable = original.amount - returned
    if amount <= 0 or amount > returnable:
        raise ReturnExceedsSpent(
            f"cannot give back {amount}: {returnable} of {original.amount} is left to give back",
            extra={"returnable": returnable},
        )
    transfer_id = _move(
        session,
        ctx,
        debit=original.credit_account_id,
        credit=target,
        amount=amount,
        code="RETURN",
        reverses_id=original.id,
    )
    if accounts is None:
        return Result(transfer_id, created=True, amounts={"returned": amount})
    # What the spend took from each lot, less what earlier returns of it gave back.
    spent_in = [original.id] + ([original.pending_id] if original.pending_id else [])
    returns = select(Transfer.id).where(
        Transfer.reverses_id == original.id, Transfer.id != transfer_id
    )
    # Plain columns, not Lot objects: the identity map must not keep a stale ``remaining``.
    rows = session.execute(
        select(
            Lot.id,
            Lot.account_id,
            Lot.earned_at,
            Lot.pending_until,
            Lot.expires_at,
            func.sum(LotMovement.amount),
        )
        .join(LotMovement, LotMovement.lot_id == Lot.id)
        .where(or_(LotMovement.transfer_id.in_(spent_in), LotMovement.transfer_id.in_(returns)))
        .group_by(Lot.id, Lot.account_id, Lot.earned_at, Lot.pending_until, Lot.expires_at)
    ).all()
    lots = sorted(
        (row for row in rows if row[5] < 0),
        key=lambda r: (r[4] is None, r[4].timestamp() if r[4] else 0.0, str(r[0])),
        reverse=True,
    )
    left = amount
    for lot_id, account_id, earned_at, pending_until, expires_at, net in lots:
        if left == 0:
            break
        give = min(-int(net), left)
        if account_id == accounts.points:
            _lot_change(session, lot_id, give, transfer_id)
        else:
            _new_lot(
                session,
                ctx,
                account_id=accounts.points,
                member_id=member_id,
                transfer_id=transfer_id,
                amount=give,
                earned_at=earned_at,
                pending_until=pending_until,
                expires_at=expires_at,
                released=True,
            )
        left -= give
    if left:
        raise LedgerCorrupt(f"the lots of transfer {original.id} account for {amount - left}")
    repaid = _repay_debt(session, ctx, member_id, accounts, amount)
    return Result(transfer_id, created=True, amounts={"returned": amount, "debt_repaid": repaid})


def get_transfer(session: Session, program_id: uuid.UUID, transfer_id: uuid.UUID) -> Transfer:
    transfer = session.execute(
        select(Transfer).where(Transfer.id == transfer_id, Transfer.program_id == program_id)
    ).scalar_one_or_none()
    if transfer is None:
        raise NotFound(f"transfer {transfer_id} not found")
    return transfer


# --------------------------------------------------------------------------- wallet


def wallet_account(session: Session, program_id: uuid.UUID, member_id: uuid.UUID) -> uuid.UUID:
    """The member's wallet account in the program, opened on first use."""
    cache = _cache(session)
    key = (program_id, member_id, WALLET)
    if key not in cache:
        found = session.execute(
            select(Account.id).where(
                Account.program_id == program_id,
                Account.member_id == member_id,
                Account.code == WALLET,
            )
        ).scalar_one_or_none()
        if found is None:
            found = new_id()
            session.execute(
                insert(Account).values(
                    id=found,
                    program_id=program_id,
                    code=WALLET,
                    member_id=member_id,
                    no_overdraft=True,
                    created_at=utcnow(),
                )
            )
        cache[key] = found
    account_id: uuid.UUID = cache[key]
    return account_id


def wallet_credit(
    session: Session, ctx: Context, *, member_id: uuid.UUID, amount: int, code: str = "CASHBACK"
) -> Result:
    """Put money (minor units) in a member's wallet: cashback, a gift card, a top-up."""
    if (found := _find(session, ctx)) is not None:
        return _again(session, ctx, found, lambda t, _r: {"credited": t.amount})
    wallet = wallet_account(session, ctx.program_id, member_id)
    issued = program_account(session, ctx.program_id, WALLET_ISSUED)
    _lock(session, [wallet, issued])
    transfer_id = _move(session, ctx, debit=issued, credit=wallet, amount=amount, code=code)
    return Result(transfer_id, created=True, amounts={"credited": amount})


def wallet_debit(
    session: Session,
    ctx: Context,
    *,
    member_id: uuid.UUID,
    amount: int,
    code: str = "WALLET_SPEND",
    hold_for: timedelta | None = None,
) -> Result:
    """Spend money (minor units) from a member's wallet, or hold it when ``hold_for`` is given.

    A hold is captured, voided or expired with ``resolve_hold`` like a points hold.
    """

    def debited(t: Transfer, _repaid: int) -> dict[str, int]:
        return {"debited": t.amount}

    if (found := _find(session, ctx)) is not None:
        return _again(session, ctx, found, debited)
    wallet = wallet_account(session, ctx.program_id, member_id)
    spent = program_account(session, ctx.program_id, WALLET_SPENT)
    _lock(session, [wallet, spent])
    if (found := _found_after_lock(session, ctx)) is not None:
        return _again(session, ctx, found, debited)
    try:
        transfer_id = _move(
            session,
            ctx,
            debit=wallet,
            credit=spent,
            amount=amount,
            code=code,
            kind="PENDING" if hold_for is not None else "POSTED",
            expires_at=utcnow() + hold_for if hold_for is not None else None,
        )
    except InsufficientPoints as exc:
        raise InsufficientWallet(
            f"not enough money in the wallet: {exc.extra['available']} available (minor units)",
            extra=exc.extra,
        ) from None
    return Result(transfer_id, created=True, amounts={"debited": amount})


def wallet_balance(session: Session, program_id: uuid.UUID, member_id: uuid.UUID) -> dict[str, int]:
    """available and held, in minor units (zero for a member without a wallet yet)."""
    row = session.execute(
        select(
            Account.credits_posted - Account.debits_posted - Account.debits_pending,
            Account.debits_pending,
        ).where(
            Account.program_id == program_id,
            Account.member_id == member_id,
            Account.code == WALLET,
        )
    ).first()
    if row is None:
        return {"available": 0, "held": 0}
    return {"available": int(row[0]), "held": int(row[1])}


def open_holds(session: Session, program_id: uuid.UUID, member_id: uuid.UUID) -> int:
    """Points (and wallet money) a member has reserved by open holds."""
    accounts = member_accounts(session, program_id, member_id)
    value = session.execute(
        select(Account.debits_pending).where(Account.id == accounts.points)
    ).scalar_one()
    return int(value) + wallet_balance(session, program_id, member_id)["held"]
