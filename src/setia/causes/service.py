"""Causes: members give points to a good cause, the business may match them, every gift has
a receipt.

Every function runs inside the caller's transaction and never commits.

How a donation stays correct under retries and races:

* **Idempotency.** A donation is found by ``(tenant_id, idempotency_key)`` first: the same
  key with the same cause, member and points returns the stored donation; with anything else
  it raises ``IdempotencyKeyReused`` (409). A unique constraint settles two concurrent
  first attempts (the entry point retries and finds the winner).
* **Points.** ``ledger.spend`` (code ``DONATE``, to the program's REDEEMED account) locks the
  member's points account, so a member's donations run one after another; the per-member
  match cap is read after that lock.
* **Totals.** The cause's ``donated_points``/``matched_points`` change with one guarded
  ``UPDATE ... WHERE matched_points + :match <= match_budget``; when another donation took
  the budget first, the match is lowered to what is left and the update tried again, so
  ``matched_points`` never passes the budget.
* **Receipts.** ``<prefix>-<year>-<number>``: the number comes from an
  ``INSERT ... ON CONFLICT DO UPDATE ... RETURNING`` on the (tenant, prefix, year) counter
  row, in the donation's transaction: the row stays locked until commit and a rollback gives
  the number back, so numbers are unique and have no gaps.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import Any, cast

from babel.numbers import format_decimal, get_currency_symbol
from sqlalchemy import Table, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from setia.causes.models import Cause, Donation, ReceiptSequence
from setia.causes.schemas import CauseIn
from setia.core.errors import Conflict, IdempotencyKeyReused, InvalidInput, NotFound
from setia.core.i18n import babel_locale, pick
from setia.core.money import precision, to_str
from setia.core.time import as_utc, utcnow, zone
from setia.ledger import service as ledger
from setia.members import service as members
from setia.members.models import Member
from setia.outbox.service import publish
from setia.programs.models import Program
from setia.tenants.models import Tenant

LOCALES = ("id", "ms", "en")
DONATE = "DONATE"

# --------------------------------------------------------------------------- errors


class CauseNotFound(NotFound):
    code = "cause_not_found"
    title = "Cause not found"


class DonationNotFound(NotFound):
    code = "donation_not_found"
    title = "Donation not found"


class CauseNotActive(Conflict):
    code = "cause_not_active"
    title = "The cause does not take donations (draft or closed)"


class CauseNotStarted(Conflict):
    code = "cause_not_started"
    title = "The cause's period has not started"


class CauseEnded(Conflict):
    code = "cause_ended"
    title = "The cause's period is over"


class DonationBelowMinimum(InvalidInput):
    code = "donation_below_minimum"
    title = "Fewer points than the cause's minimum per donation"


class DonationAboveMaximum(InvalidInput):
    code = "donation_above_maximum"
    title = "More points than the cause's maximum per donation"


class MatchBudgetBelowMatched(Conflict):
    code = "match_budget_below_matched"
    title = "The match budget is lower than what was already matched"


class CauseClosed(Conflict):
    code = "cause_closed"
    title = "The cause is closed; closed causes are not changed"


# --------------------------------------------------------------------------- helpers


def default_prefix(code: str) -> str:
    """Receipt prefix from a code: initials of its words ("tanam-pohon" → "TP"), or the first
    four letters of a one-word code ("zakat" → "ZAKA")."""
    words = [w for w in re.split(r"[-_\s]+", code) if w]
    prefix = "".join(w[0] for w in words) if len(words) >= 2 else (words[0] if words else "DON")[:4]
    return re.sub(r"[^A-Z0-9]", "", prefix.upper())[:12] or "DON"


def value_per_point(cause: Cause, program: Program) -> Decimal:
    return cause.value_per_point if cause.value_per_point is not None else program.cost_per_point


def points_value(points: int, rate: Decimal, currency: str) -> Decimal:
    exact = Decimal(points) * rate
    return exact.quantize(Decimal(1).scaleb(-precision(currency)), rounding=ROUND_HALF_UP)


_HOME_LOCALE = {"IDR": "id_ID", "MYR": "ms_MY", "SGD": "en_SG"}


def format_points(points: int, locale: str) -> str:
    return str(format_decimal(points, locale=babel_locale(locale)))


def format_money(amount: Decimal, currency: str, locale: str) -> str:
    """``Rp 5.000`` (id), ``Rp 5,000`` (en), ``RM 12.50``: the currency's home symbol, the
    locale's digit grouping."""
    digits = precision(currency)
    pattern = "#,##0" + ("." + "0" * digits if digits else "")
    number = format_decimal(
        amount,
        format=pattern,
        locale=babel_locale(locale),
        decimal_quantization=True,
    )
    symbol = get_currency_symbol(currency, locale=_HOME_LOCALE.get(currency, "en_US"))
    return f"{symbol} {number}"


def local_today(tenant: Tenant, now: datetime | None = None) -> date:
    return as_utc(now or utcnow()).astimezone(zone(tenant.timezone)).date()


def is_open(cause: Cause, today: date) -> bool:
    return (
        cause.status == "active"
        and (cause.starts_on is None or cause.starts_on <= today)
        and (cause.ends_on is None or today <= cause.ends_on)
    )


def days_left(cause: Cause, today: date) -> int | None:
    if cause.ends_on is None:
        return None
    return max(0, (cause.ends_on - today).days + 1)


# --------------------------------------------------------------------------- causes


def definition(cause: Cause) -> dict[str, Any]:
    return {
        "code": cause.code,
        "names": cause.names,
        "descriptions": cause.descriptions,
        "image_urls": cause.image_urls,
        "status": cause.status,
        "goal_points": cause.goal_points,
        "value_per_point": (
            None
            if cause.value_per_point is None
            else format(cause.value_per_point.normalize(), "f")
        ),
        "starts_on": cause.starts_on.isoformat() if cause.starts_on else None,
        "ends_on": cause.ends_on.isoformat() if cause.ends_on else None,
        "min_points": cause.min_points,
        "max_points": cause.max_points,
        "match_ratio": format(cause.match_ratio.normalize(), "f"),
        "match_budget": cause.match_budget,
        "match_cap_per_member": cause.match_cap_per_member,
        "receipt_prefix": cause.receipt_prefix,
    }


def _check_code(code: str) -> str:
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,59}", code):
        raise InvalidInput(
            f"cause code {code!r}: use 1-60 lowercase letters, digits, '-' or '_' "
            "(e.g. tanam-pohon)",
            extra={"field": "code"},
            code="invalid_cause_code",
        )
    return code


def put_cause(
    session: Session, program: Program, code: str, body: CauseIn, *, actor: str
) -> tuple[Cause, bool]:
    """Create the cause with this code, or replace the definition of the existing one (its
    totals and donations stay). Returns ``(cause, created)``. A closed cause is not changed
    (409 cause_closed); the match budget may not drop below what was already matched."""
    _check_code(code)
    q = select(Cause).where(Cause.program_id == program.id, Cause.code == code)
    if session.get_bind().dialect.name == "postgresql":
        q = q.with_for_update()
    cause = session.execute(q).scalar_one_or_none()
    created = cause is None
    if cause is None:
        cause = Cause(
            tenant_id=program.tenant_id,
            program_id=program.id,
            code=code,
            donated_points=0,
            matched_points=0,
            donations_count=0,
            created_at=utcnow(),
        )
    elif cause.status == "closed":
        raise CauseClosed(f"cause {code!r} is closed; create a new cause instead")
    if body.match_budget < (cause.matched_points or 0):
        raise MatchBudgetBelowMatched(
            f"match_budget {body.match_budget} is below the {cause.matched_points} points "
            "already matched",
            extra={"matched_points": cause.matched_points},
        )
    cause.names = body.names.model_dump(exclude_none=True)
    cause.descriptions = (
        body.descriptions.model_dump(exclude_none=True) if body.descriptions else {}
    )
    cause.image_urls = body.image_urls.model_dump(exclude_none=True) if body.image_urls else {}
    cause.status = body.status
    cause.goal_points = body.goal_points
    cause.value_per_point = body.value_per_point
    cause.starts_on = body.starts_on
    cause.ends_on = body.ends_on
    cause.min_points = body.min_points
    cause.max_points = body.max_points
    cause.match_ratio = body.match_ratio
    cause.match_budget = body.match_budget
    cause.match_cap_per_member = body.match_cap_per_member
    cause.receipt_prefix = body.receipt_prefix or cause.receipt_prefix or default_prefix(code)
    cause.updated_at = utcnow()
    if body.status == "closed":
        cause.closed_at = utcnow()
    if created:
        session.add(cause)
    session.flush()
    publish(
        session,
        program.tenant_id,
        "cause.created" if created else "cause.updated",
        {"cause_id": str(cause.id), "actor": actor, **definition(cause)},
    )
    return cause, created


def close_cause(
    session: Session, tenant_id: uuid.UUID, cause_id: uuid.UUID, *, actor: str
) -> Cause:
    """Stop taking donations. Closing twice is a no-op."""
    cause = get_cause(session, tenant_id, cause_id, lock=True)
    if cause.status != "closed":
        cause.status = "closed"
        cause.closed_at = cause.updated_at = utcnow()
        session.flush()
        publish(
            session,
            tenant_id,
            "cause.closed",
            {"cause_id": str(cause.id), "code": cause.code, "actor": actor},
        )
    return cause


def get_cause(
    session: Session, tenant_id: uuid.UUID, cause_id: uuid.UUID, *, lock: bool = False
) -> Cause:
    q = select(Cause).where(Cause.id == cause_id, Cause.tenant_id == tenant_id)
    if lock and session.get_bind().dialect.name == "postgresql":
        q = q.with_for_update().execution_options(populate_existing=True)
    cause = session.execute(q).scalar_one_or_none()
    if cause is None:
        raise CauseNotFound(f"cause {cause_id} not found")
    return cause


def find_cause(session: Session, tenant_id: uuid.UUID, program_id: uuid.UUID, ref: str) -> Cause:
    """A cause by id or by code (CLI)."""
    try:
        return get_cause(session, tenant_id, uuid.UUID(ref))
    except ValueError:
        pass
    cause = session.execute(
        select(Cause).where(Cause.program_id == program_id, Cause.code == ref)
    ).scalar_one_or_none()
    if cause is None:
        raise CauseNotFound(f"cause {ref!r} not found")
    return cause


def list_causes(
    session: Session,
    program_id: uuid.UUID,
    *,
    statuses: tuple[str, ...] | None = None,
) -> list[Cause]:
    q = select(Cause).where(Cause.program_id == program_id)
    if statuses:
        q = q.where(Cause.status.in_(statuses))
    return list(session.execute(q.order_by(Cause.id)).scalars())


def donors(session: Session, cause_ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
    """Distinct donating members per cause."""
    if not cause_ids:
        return {}
    rows = session.execute(
        select(Donation.cause_id, func.count(func.distinct(Donation.member_id)))
        .where(Donation.cause_id.in_(cause_ids))
        .group_by(Donation.cause_id)
    ).all()
    return {row[0]: int(row[1]) for row in rows}


# --------------------------------------------------------------------------- donations


def _ledger_key(idempotency_key: str) -> str:
    key = f"donate:{idempotency_key}"
    if len(key) > 200:
        key = "donate:sha256:" + hashlib.sha256(idempotency_key.encode()).hexdigest()
    return key


def _check_open(cause: Cause, today: date) -> None:
    if cause.status != "active":
        raise CauseNotActive(
            f"cause {cause.code!r} is {cause.status} and takes no donations",
            extra={"cause_status": cause.status},
        )
    dates = {
        "starts_on": cause.starts_on.isoformat() if cause.starts_on else None,
        "ends_on": cause.ends_on.isoformat() if cause.ends_on else None,
        "today": today.isoformat(),
    }
    if cause.starts_on is not None and today < cause.starts_on:
        raise CauseNotStarted(
            f"cause {cause.code!r} takes donations from {cause.starts_on.isoformat()}"
            + (f" to {cause.ends_on.isoformat()}" if cause.ends_on else "")
            + f"; today is {today.isoformat()} (tenant time zone)",
            extra=dates,
        )
    if cause.ends_on is not None and today > cause.ends_on:
        raise CauseEnded(
            f"cause {cause.code!r} took donations until {cause.ends_on.isoformat()}"
            + (f" (from {cause.starts_on.isoformat()})" if cause.starts_on else "")
            + f"; today is {today.isoformat()} (tenant time zone)",
            extra=dates,
        )


def _check_points(cause: Cause, points: int) -> None:
    if isinstance(points, bool) or not isinstance(points, int) or points <= 0:
        raise InvalidInput(
            f"points must be a positive whole number, got {points!r}", extra={"field": "points"}
        )
    if points < cause.min_points:
        raise DonationBelowMinimum(
            f"a donation to {cause.code!r} is at least {cause.min_points} points; got {points}",
            extra={"field": "points", "min_points": cause.min_points},
        )
    if cause.max_points is not None and points > cause.max_points:
        raise DonationAboveMaximum(
            f"a donation to {cause.code!r} is at most {cause.max_points} points; got {points}",
            extra={"field": "points", "max_points": cause.max_points},
        )


def _wanted_match(session: Session, cause: Cause, member_id: uuid.UUID, points: int) -> int:
    """The match this donation asks for: points × ratio (rounded down), within the member's
    cap. Read after the ledger locked the member's account, so the member's earlier
    donations are all visible."""
    if cause.match_ratio <= 0 or cause.match_budget <= 0:
        return 0
    want = int((Decimal(points) * cause.match_ratio).to_integral_value(rounding=ROUND_FLOOR))
    if cause.match_cap_per_member is not None:
        so_far = session.execute(
            select(func.coalesce(func.sum(Donation.matched_points), 0)).where(
                Donation.cause_id == cause.id, Donation.member_id == member_id
            )
        ).scalar_one()
        want = min(want, max(0, cause.match_cap_per_member - int(so_far)))
    return max(0, want)


def _add_totals(session: Session, cause_id: uuid.UUID, points: int, want: int) -> int:
    """Add the donation to the cause's totals with a guarded UPDATE; return the match that
    fit in the budget (``want`` or what was left, possibly 0)."""
    match = want
    while True:
        stmt = update(Cause).where(Cause.id == cause_id)
        if match > 0:
            stmt = stmt.where(Cause.matched_points + match <= Cause.match_budget)
        row = session.execute(
            stmt.values(
                donated_points=Cause.donated_points + points,
                matched_points=Cause.matched_points + match,
                donations_count=Cause.donations_count + 1,
            )
            .returning(Cause.matched_points)
            .execution_options(synchronize_session=False)
        ).first()
        if row is not None:
            return match
        left = session.execute(
            select(Cause.match_budget - Cause.matched_points).where(Cause.id == cause_id)
        ).scalar_one()
        match = max(0, min(want, int(left)))


def _next_receipt(session: Session, tenant_id: uuid.UUID, prefix: str, year: int) -> int:
    dialect = session.get_bind().dialect.name
    table = cast(Table, ReceiptSequence.__table__)
    values = {"tenant_id": tenant_id, "prefix": prefix, "year": year, "last_number": 1}
    if dialect == "postgresql":
        pg = postgresql.insert(table).values(values)
        stmt = pg.on_conflict_do_update(
            index_elements=["tenant_id", "prefix", "year"],
            set_={"last_number": table.c.last_number + 1},
        ).returning(table.c.last_number)
    else:
        lite = sqlite.insert(table).values(values)
        stmt = lite.on_conflict_do_update(
            index_elements=["tenant_id", "prefix", "year"],
            set_={"last_number": table.c.last_number + 1},
        ).returning(table.c.last_number)
    return int(session.execute(stmt).scalar_one())


def _find_donation(
    session: Session, tenant_id: uuid.UUID, idempotency_key: str, digest: str
) -> Donation | None:
    found = session.execute(
        select(Donation).where(
            Donation.tenant_id == tenant_id, Donation.idempotency_key == idempotency_key
        )
    ).scalar_one_or_none()
    if found is not None and found.request_hash != digest:
        raise IdempotencyKeyReused(
            f"idempotency key {idempotency_key!r} was already used for another donation "
            f"(cause {found.cause_id}, {found.points} points)"
        )
    return found


@dataclass
class Given:
    donation: Donation
    created: bool


def give(
    session: Session,
    *,
    tenant_id: uuid.UUID,
    program: Program,
    cause_id: uuid.UUID,
    member_id: uuid.UUID,
    points: int,
    idempotency_key: str,
    actor: str,
    source_type: str | None = None,
    source_id: str | None = None,
    now: datetime | None = None,
) -> Given:
    """``donate`` that also says whether the donation is new (201) or a retry (200)."""
    if not idempotency_key:
        raise InvalidInput("an idempotency key is required", extra={"field": "idempotency_key"})
    if len(idempotency_key) > 200:
        raise InvalidInput(
            "the idempotency key is longer than 200 characters",
            extra={"field": "idempotency_key"},
        )
    digest = ledger.request_hash(
        {"cause_id": str(cause_id), "member_id": str(member_id), "points": points}
    )
    if (found := _find_donation(session, tenant_id, idempotency_key, digest)) is not None:
        return Given(found, created=False)
    if program.tenant_id != tenant_id:
        raise CauseNotFound(f"cause {cause_id} not found")
    cause = get_cause(session, tenant_id, cause_id)
    if cause.program_id != program.id:
        raise CauseNotFound(f"cause {cause_id} is not a cause of program {program.id}")
    member = members.get_member(session, tenant_id, member_id)
    if member.status != "active":
        raise members.MemberNotActive(
            f"member {member.id} is {member.status}"
            + (f"; use {member.merged_into_id}" if member.merged_into_id else "")
        )
    tenant = session.get(Tenant, tenant_id)
    assert tenant is not None
    moment = as_utc(now or utcnow())
    local = moment.astimezone(zone(tenant.timezone))
    _check_open(cause, local.date())
    _check_points(cause, points)

    ctx = ledger.Context(
        program_id=program.id,
        idempotency_key=_ledger_key(idempotency_key),
        request_hash=digest,
        source_type=source_type or "cause",
        source_id=source_id or str(cause.id),
        actor=actor,
        reason=f"donation to {cause.code}",
        details={"cause_id": str(cause.id), "cause_code": cause.code},
    )
    spent = ledger.spend(
        session,
        ctx,
        member_id=member.id,
        amount=points,
        code=DONATE,
        min_balance=program.min_redeem_points,
    )
    if not spent.created:
        # A concurrent first attempt with this key committed after our first look: its
        # donation committed with its transfer, so it is visible now.
        if (found := _find_donation(session, tenant_id, idempotency_key, digest)) is not None:
            return Given(found, created=False)
        raise IdempotencyKeyReused(
            f"idempotency key {idempotency_key!r} was already used for a ledger transfer"
        )
    matched = _add_totals(
        session, cause.id, points, _wanted_match(session, cause, member.id, points)
    )
    rate = value_per_point(cause, program)
    seq = _next_receipt(session, tenant_id, cause.receipt_prefix, local.year)
    donation = Donation(
        tenant_id=tenant_id,
        program_id=program.id,
        cause_id=cause.id,
        member_id=member.id,
        points=points,
        matched_points=matched,
        value=points_value(points, rate, program.currency),
        matched_value=points_value(matched, rate, program.currency),
        currency=program.currency,
        receipt_number=f"{cause.receipt_prefix}-{local.year}-{seq:06d}",
        receipt_year=local.year,
        receipt_seq=seq,
        transfer_id=spent.transfer_id,
        idempotency_key=idempotency_key,
        request_hash=digest,
        source_type=source_type,
        source_id=source_id,
        actor=actor,
        created_at=moment,
    )
    session.add(donation)
    session.flush()
    session.expire(cause)
    publish(session, tenant_id, "cause.donated", donation_payload(donation, cause, member))
    return Given(donation, created=True)


def donate(
    session: Session,
    *,
    tenant_id: uuid.UUID,
    program: Program,
    cause_id: uuid.UUID,
    member_id: uuid.UUID,
    points: int,
    idempotency_key: str,
    actor: str,
    source_type: str | None = None,
    source_id: str | None = None,
    now: datetime | None = None,
) -> Donation:
    """Give ``points`` of the member to the cause: spends them through the ledger (code
    DONATE, to the program's REDEEMED account, the program's ``min_redeem_points`` applies),
    applies the business's matching within its budget and the member's cap, numbers the
    receipt and publishes ``cause.donated``.

    Idempotent: the same key returns the same donation; the same key with another cause,
    member or points raises ``IdempotencyKeyReused`` (409). Refusals (each before anything is
    written): ``cause_not_found`` 404, ``member_not_found`` 404, ``member_not_active`` 409,
    ``cause_not_active`` / ``cause_not_started`` / ``cause_ended`` 409,
    ``donation_below_minimum`` / ``donation_above_maximum`` 422, and the ledger's
    ``insufficient_points`` / ``below_minimum_redeem`` 409.
    """
    return give(
        session,
        tenant_id=tenant_id,
        program=program,
        cause_id=cause_id,
        member_id=member_id,
        points=points,
        idempotency_key=idempotency_key,
        actor=actor,
        source_type=source_type,
        source_id=source_id,
        now=now,
    ).donation


def donation_payload(donation: Donation, cause: Cause, member: Member) -> dict[str, Any]:
    return {
        "donation_id": str(donation.id),
        "cause_id": str(cause.id),
        "cause_code": cause.code,
        "cause_names": cause.names,
        "member_id": str(member.id),
        "member_locale": member.locale,
        "points": donation.points,
        "matched_points": donation.matched_points,
        "value": to_str(donation.value, donation.currency),
        "matched_value": to_str(donation.matched_value, donation.currency),
        "currency": donation.currency,
        "receipt_number": donation.receipt_number,
        "transfer_id": str(donation.transfer_id),
        "source_type": donation.source_type,
        "source_id": donation.source_id,
        "created_at": as_utc(donation.created_at).isoformat(),
    }


def get_donation(session: Session, tenant_id: uuid.UUID, donation_id: uuid.UUID) -> Donation:
    donation = session.execute(
        select(Donation).where(Donation.id == donation_id, Donation.tenant_id == tenant_id)
    ).scalar_one_or_none()
    if donation is None:
        raise DonationNotFound(f"donation {donation_id} not found")
    return donation


def cause_donations(
    session: Session, cause: Cause, *, after: uuid.UUID | None = None, limit: int = 100
) -> list[Donation]:
    q = select(Donation).where(Donation.cause_id == cause.id)
    if after is not None:
        q = q.where(Donation.id > after)
    return list(session.execute(q.order_by(Donation.id).limit(limit)).scalars())


def member_donations(
    session: Session, tenant_id: uuid.UUID, member_id: uuid.UUID, program_id: uuid.UUID
) -> list[Donation]:
    members.get_member(session, tenant_id, member_id)
    return list(
        session.execute(
            select(Donation)
            .where(Donation.member_id == member_id, Donation.program_id == program_id)
            .order_by(Donation.id)
        ).scalars()
    )


def causes_by_id(session: Session, ids: set[uuid.UUID]) -> dict[uuid.UUID, Cause]:
    if not ids:
        return {}
    return {c.id: c for c in session.execute(select(Cause).where(Cause.id.in_(ids))).scalars()}


# --------------------------------------------------------------------------- receipts

_THANKS = {
    "id": (
        "Terima kasih, {name}! {points} {unit} Anda (senilai {value}) untuk {cause} "
        "telah kami terima.",
        "Terima kasih! {points} {unit} Anda (senilai {value}) untuk {cause} telah kami terima.",
        " Kami menambahkan {matched} {unit} (senilai {matched_value}) sebagai donasi pendamping.",
    ),
    "ms": (
        "Terima kasih, {name}! {points} {unit} anda (bernilai {value}) untuk {cause} "
        "telah kami terima.",
        "Terima kasih! {points} {unit} anda (bernilai {value}) untuk {cause} telah kami terima.",
        " Kami menambah {matched} {unit} (bernilai {matched_value}) sebagai sumbangan padanan.",
    ),
    "en": (
        "Thank you, {name}! We have received your {points} {unit} (worth {value}) for {cause}.",
        "Thank you! We have received your {points} {unit} (worth {value}) for {cause}.",
        " We are adding {matched} {unit} of our own (worth {matched_value}).",
    ),
}

_LABELS = {
    "id": (
        "Tanda Terima Donasi",
        "Nomor",
        "Tanggal",
        "Nama",
        "Untuk",
        "Poin",
        "Nilai",
        "Pendamping",
    ),
    "ms": ("Resit Sumbangan", "Nombor", "Tarikh", "Nama", "Untuk", "Mata", "Nilai", "Padanan"),
    "en": ("Donation Receipt", "Number", "Date", "Name", "For", "Points", "Value", "Matched"),
}


def receipt(session: Session, tenant: Tenant, donation: Donation, locale: str) -> dict[str, Any]:
    """A donation's receipt in ``locale`` (id, ms or en)."""
    if locale not in LOCALES:
        raise InvalidInput(
            f"locale {locale!r}: use id, ms or en", extra={"field": "locale"}, code="invalid_locale"
        )
    cause = session.get(Cause, donation.cause_id)
    member = session.get(Member, donation.member_id)
    program = session.get(Program, donation.program_id)
    assert cause is not None
    assert member is not None
    assert program is not None
    local = as_utc(donation.created_at).astimezone(zone(tenant.timezone))
    cause_name = pick(cause.names, locale) or cause.code
    unit = program.points_name if locale != "en" else "points"
    name = (member.name or "").strip() or None
    first = name.split()[0] if name else None
    with_name, without_name, match_line = _THANKS[locale]
    args = {
        "name": first,
        "points": format_points(donation.points, locale),
        "unit": unit,
        "value": format_money(donation.value, donation.currency, locale),
        "cause": cause_name,
        "matched": format_points(donation.matched_points, locale),
        "matched_value": format_money(donation.matched_value, donation.currency, locale),
    }
    message = (with_name if first else without_name).format(**args)
    if donation.matched_points:
        message += match_line.format(**args)
    labels = _LABELS[locale]
    lines = [
        labels[0],
        f"{labels[1]}: {donation.receipt_number}",
        f"{labels[2]}: {local.date().isoformat()} {local.strftime('%H:%M')}",
        f"{labels[3]}: {name or '-'}",
        f"{labels[4]}: {cause_name}",
        f"{labels[5]}: {args['points']}",
        f"{labels[6]}: {args['value']}",
    ]
    if donation.matched_points:
        lines.append(f"{labels[7]}: {args['matched']} ({args['matched_value']})")
    lines += ["", message]
    return {
        "receipt_number": donation.receipt_number,
        "donation_id": donation.id,
        "date": local.date(),
        "created_at": donation.created_at,
        "member_id": member.id,
        "member_name": name,
        "cause_id": cause.id,
        "cause_code": cause.code,
        "cause_name": cause_name,
        "points": donation.points,
        "points_name": program.points_name,
        "value": to_str(donation.value, donation.currency),
        "value_display": args["value"],
        "matched_points": donation.matched_points,
        "matched_value": to_str(donation.matched_value, donation.currency),
        "currency": donation.currency,
        "locale": locale,
        "message": message,
        "text": "\n".join(lines) + "\n",
    }


# --------------------------------------------------------------------------- views


def progress(
    cause: Cause, program: Program, donor_count: int, today: date, locale: str = "id"
) -> dict[str, Any]:
    total = cause.donated_points + cause.matched_points
    value = points_value(total, value_per_point(cause, program), program.currency)
    percent = None
    if cause.goal_points:
        percent = float(
            (Decimal(total) * 100 / Decimal(cause.goal_points)).quantize(Decimal("0.1"))
        )
    return {
        "donated_points": cause.donated_points,
        "matched_points": cause.matched_points,
        "total_points": total,
        "goal_points": cause.goal_points,
        "percent": percent,
        "donors": donor_count,
        "donations": cause.donations_count,
        "value": to_str(value, program.currency),
        "value_display": format_money(value, program.currency, locale),
        "currency": program.currency,
        "days_left": days_left(cause, today),
    }


def summary(session: Session, tenant: Tenant, cause: Cause, program: Program) -> dict[str, Any]:
    """Totals of a cause and its donations per day (tenant's zone)."""
    rows = session.execute(
        select(Donation.created_at, Donation.points, Donation.matched_points).where(
            Donation.cause_id == cause.id
        )
    ).all()
    tz = zone(tenant.timezone)
    days: dict[date, list[int]] = {}
    for created_at, pts, matched in rows:
        day = as_utc(created_at).astimezone(tz).date()
        acc = days.setdefault(day, [0, 0, 0])
        acc[0] += 1
        acc[1] += int(pts)
        acc[2] += int(matched)
    rate = value_per_point(cause, program)
    count = donors(session, [cause.id]).get(cause.id, 0)
    return {
        "cause_id": cause.id,
        "code": cause.code,
        "status": cause.status,
        "donations": cause.donations_count,
        "donors": count,
        "donated_points": cause.donated_points,
        "matched_points": cause.matched_points,
        "total_points": cause.donated_points + cause.matched_points,
        "value": to_str(
            points_value(cause.donated_points, rate, program.currency), program.currency
        ),
        "matched_value": to_str(
            points_value(cause.matched_points, rate, program.currency), program.currency
        ),
        "currency": program.currency,
        "match_budget": cause.match_budget,
        "match_remaining": max(0, cause.match_budget - cause.matched_points),
        "by_day": [
            {"date": d.isoformat(), "donations": v[0], "points": v[1], "matched_points": v[2]}
            for d, v in sorted(days.items())
        ],
    }
