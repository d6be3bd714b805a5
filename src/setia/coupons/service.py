"""Coupons: campaigns, codes (generated, imported, issued for rewards), and checkout.

Everything here runs in the caller's transaction and never commits.

Locking. Every change of a code's or campaign's use counters first locks the campaign row
(``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` already makes one
writer), then changes the counters with guarded ``UPDATE`` statements (the limit in the
``WHERE``). A redemption's ``active_key`` is unique while it is active, so one order uses
one code at most once. Locks are taken campaign first, then code, in every path, so two
transactions never wait on each other in a cycle.
"""

from __future__ import annotations

import csv
import io
import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Table, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from setia.core.db import new_id
from setia.core.errors import Conflict, IdempotencyKeyReused, InvalidInput, NotFound
from setia.core.money import MoneyError, check_currency, parse_amount, to_str
from setia.core.time import as_utc, utcnow, zone
from setia.coupons import codes as patterns
from setia.coupons.discount import Cart, Outcome, evaluate
from setia.coupons.discount import message as reason_message
from setia.coupons.models import Coupon, CouponBatch, CouponCampaign, CouponRedemption
from setia.coupons.schemas import CampaignIn, CampaignPatch, Conditions
from setia.members import service as members
from setia.members.models import Member
from setia.programs import service as programs
from setia.tenants.models import Tenant

MAX_GENERATE = 100_000
MAX_IMPORT_ROWS = 100_000
_CHUNK = 2000
_MAX_REPORTED_ERRORS = 200

# --------------------------------------------------------------------------- errors


class CampaignNotFound(NotFound):
    code = "campaign_not_found"
    title = "Coupon campaign not found"


class CouponNotFound(NotFound):
    code = "coupon_not_found"
    title = "Coupon code not found"


class RedemptionNotFound(NotFound):
    code = "redemption_not_found"
    title = "No redemption of this code for this order"


class CampaignCodeTaken(Conflict):
    code = "campaign_code_taken"
    title = "A campaign with this code exists"


class CouponCodeTaken(Conflict):
    code = "coupon_code_taken"
    title = "The code is already used by another coupon of this tenant"


class CampaignArchived(Conflict):
    code = "campaign_archived"
    title = "The campaign is archived"


class CampaignEnded(Conflict):
    code = "campaign_ended"
    title = "The campaign has ended"


class CampaignMemberBound(Conflict):
    code = "campaign_member_bound"
    title = "The campaign's codes belong to members"


class CouponUsed(Conflict):
    code = "coupon_used"
    title = "The coupon has an active redemption"


class InvalidPattern(InvalidInput):
    code = "invalid_pattern"
    title = "Invalid code pattern"


class PatternTooSmall(InvalidInput):
    code = "pattern_too_small"
    title = "The pattern cannot make enough unguessable codes"


class CsvInvalid(InvalidInput):
    code = "csv_invalid"
    title = "The CSV has bad lines; nothing was imported"


class CouponRefused(Conflict):
    """A code that cannot be used on this cart: ``code`` is ``coupon_<reason_code>``."""

    title = "The coupon cannot be used"

    def __init__(self, outcome: Outcome, message: str) -> None:
        assert outcome.reason_code is not None
        super().__init__(
            message,
            code=f"coupon_{outcome.reason_code}",
            extra={"reason_code": outcome.reason_code, "reason_params": outcome.params},
        )


# --------------------------------------------------------------------------- helpers


def _money(value: object, currency: str, field: str, *, allow_zero: bool = False) -> Decimal:
    try:
        return parse_amount(value, currency, allow_zero=allow_zero)
    except MoneyError as exc:
        raise InvalidInput(f"{field}: {exc}", extra={"field": field}, code=exc.code) from None


def _local(value: datetime | None, tz_name: str) -> datetime | None:
    """An instant from the API: with an offset as given, without one in the tenant's zone."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone(tz_name))
    return value.astimezone(UTC)


def _pattern(value: str, field: str = "pattern") -> str:
    try:
        return patterns.check_pattern(value)
    except patterns.PatternError as exc:
        raise InvalidPattern(str(exc), extra={"field": field}) from None


def _check_room(pattern: str, total: int, field: str = "pattern") -> None:
    try:
        patterns.check_room(pattern, total)
    except patterns.PatternError as exc:
        raise PatternTooSmall(
            str(exc),
            extra={
                "field": field,
                "pattern": pattern,
                "space": patterns.space(pattern),
                "codes": total,
                "sparseness": patterns.SPARSENESS,
            },
        ) from None


def _clean_list(values: Sequence[str] | None) -> list[str]:
    return sorted({v.strip() for v in values or [] if v.strip()})


def _idempotent(found: Any, request_hash: str | None, key: str) -> None:
    if found.request_hash != request_hash:
        raise IdempotencyKeyReused(f"idempotency key {key!r} was already used for another request")


# --------------------------------------------------------------------------- campaigns


def campaign_definition(c: CouponCampaign) -> dict[str, Any]:
    """The campaign's discount and conditions as the API shows them."""
    cur = c.currency

    def amt(v: Decimal | None) -> str | None:
        return None if v is None else to_str(v, cur)

    return {
        "discount": {
            "type": c.discount_type,
            "amount": amt(c.amount),
            "percent": None if c.percent is None else f"{c.percent.normalize():f}",
            "max_amount": amt(c.max_discount),
            "skus": list(c.free_item_skus or []),
        },
        "conditions": {
            "valid_from": None if c.valid_from is None else as_utc(c.valid_from).isoformat(),
            "valid_until": None if c.valid_until is None else as_utc(c.valid_until).isoformat(),
            "min_spend": amt(c.min_spend),
            "skus": list(c.skus or []),
            "categories": list(c.categories or []),
            "exclude_skus": list(c.exclude_skus or []),
            "exclude_categories": list(c.exclude_categories or []),
            "max_uses": c.max_uses,
            "per_member_limit": c.per_member_limit,
        },
    }


def _apply_conditions(
    c: CouponCampaign, cond: Conditions, tz_name: str, *, only_set: bool = False
) -> None:
    given = cond.model_fields_set if only_set else set(Conditions.model_fields)
    if "valid_from" in given:
        c.valid_from = _local(cond.valid_from, tz_name)
    if "valid_until" in given:
        c.valid_until = _local(cond.valid_until, tz_name)
    if "min_spend" in given:
        c.min_spend = (
            None if cond.min_spend is None else _money(cond.min_spend, c.currency, "min_spend")
        )
    for name in ("skus", "categories", "exclude_skus", "exclude_categories"):
        if name in given:
            setattr(c, name, _clean_list(getattr(cond, name)))
    if "max_uses" in given:
        c.max_uses = cond.max_uses
    if "per_member_limit" in given:
        c.per_member_limit = cond.per_member_limit
    if c.valid_from and c.valid_until and as_utc(c.valid_until) <= as_utc(c.valid_from):
        raise InvalidInput(
            "valid_until must be after valid_from", extra={"field": "conditions.valid_until"}
        )


def _code_taken(session: Session, tenant_id: uuid.UUID, code: str) -> bool:
    return (
        session.execute(
            select(Coupon.id).where(Coupon.tenant_id == tenant_id, Coupon.code == code)
        ).first()
        is not None
    )


def create_campaign(
    session: Session,
    tenant: Tenant,
    body: CampaignIn,
    *,
    idempotency_key: str | None = None,
    request_hash: str | None = None,
) -> tuple[CouponCampaign, bool]:
    """Create a campaign (and its public code, if any). Returns it and whether it was made
    now (False: a retry with the same Idempotency-Key)."""
    if idempotency_key is not None:
        found = session.execute(
            select(CouponCampaign).where(
                CouponCampaign.tenant_id == tenant.id,
                CouponCampaign.idempotency_key == idempotency_key,
            )
        ).scalar_one_or_none()
        if found is not None:
            _idempotent(found, request_hash, idempotency_key)
            return found, False
    code = body.code.lower()
    if session.execute(
        select(CouponCampaign.id).where(
            CouponCampaign.tenant_id == tenant.id, CouponCampaign.code == code
        )
    ).first():
        raise CampaignCodeTaken(f"a coupon campaign {code!r} already exists; pick another code")
    program = programs.get_program(session, tenant.id, body.program_id) if body.program_id else None
    if body.currency:
        try:
            currency = check_currency(body.currency)
        except MoneyError as exc:
            raise InvalidInput(str(exc), extra={"field": "currency"}, code=exc.code) from None
    else:
        currency = (program or programs.get_program(session, tenant.id, None)).currency
    d = body.discount
    c = CouponCampaign(
        tenant_id=tenant.id,
        program_id=program.id if program else None,
        code=code,
        names=body.names.model_dump(exclude_none=True),
        descriptions=body.descriptions.model_dump(exclude_none=True) if body.descriptions else {},
        discount_type=d.type,
        currency=currency,
        uses=0,
        uses_per_code=body.uses_per_code,
        member_bound=body.member_bound,
        status=body.status,
        idempotency_key=idempotency_key,
        request_hash=request_hash,
        free_item_skus=[],
    )
    if d.type == "fixed":
        if d.amount is None or d.percent is not None or d.skus:
            raise InvalidInput(
                "a fixed discount needs discount.amount (and no percent or skus)",
                extra={"field": "discount.amount"},
            )
        c.amount = _money(d.amount, currency, "discount.amount")
    elif d.amount is not None:
        raise InvalidInput(
            f"discount.amount is for fixed discounts; a {d.type} discount has none "
            "(use max_amount for a cap)",
            extra={"field": "discount.amount"},
        )
    if d.type == "percent":
        try:
            pct = Decimal(d.percent) if d.percent is not None else None
        except ArithmeticError:
            pct = None
        if pct is None or not pct.is_finite() or not (0 < pct <= 100):
            raise InvalidInput(
                "a percent discount needs discount.percent, a number over 0 and at most 100",
                extra={"field": "discount.percent"},
            )
        c.percent = pct
    elif d.percent is not None:
        raise InvalidInput(
            "discount.percent is only for percent discounts", extra={"field": "discount.percent"}
        )
    if d.type == "free_item":
        skus = _clean_list(d.skus)
        if not skus:
            raise InvalidInput(
                "a free_item discount needs discount.skus: the items that can be free",
                extra={"field": "discount.skus"},
            )
        c.free_item_skus = skus
    elif d.skus:
        raise InvalidInput(
            "discount.skus is only for free_item discounts (use conditions.skus to limit "
            "which cart lines count)",
            extra={"field": "discount.skus"},
        )
    if d.max_amount is not None:
        if d.type == "fixed":
            raise InvalidInput(
                "a fixed discount needs no max_amount", extra={"field": "discount.max_amount"}
            )
        c.max_discount = _money(d.max_amount, currency, "discount.max_amount")
    _apply_conditions(c, body.conditions, tenant.timezone)
    if body.code_pattern is not None:
        c.code_pattern = _pattern(body.code_pattern, "code_pattern")
        _check_room(c.code_pattern, 1, "code_pattern")
    session.add(c)
    session.flush()
    if body.public_code is not None:
        if body.member_bound:
            raise InvalidInput(
                "a member-bound campaign cannot have a public code: anyone may type it",
                extra={"field": "public_code"},
            )
        public = patterns.normalize(body.public_code)
        if not patterns.valid_code(public):
            raise InvalidInput(
                "public_code: 3-64 characters of A-Z, 0-9, '-' and '_', starting with a "
                "letter or digit",
                extra={"field": "public_code"},
            )
        if _code_taken(session, tenant.id, public):
            raise CouponCodeTaken(f"the code {public!r} is already used in this tenant")
        c.public_code = public
        session.add(
            Coupon(
                tenant_id=tenant.id,
                campaign_id=c.id,
                code=public,
                is_public=True,
                status="active",
                max_uses=None,
                uses=0,
            )
        )
        session.flush()
    return c, True


def update_campaign(
    session: Session, tenant: Tenant, campaign_id: uuid.UUID, body: CampaignPatch
) -> CouponCampaign:
    c = get_campaign(session, tenant.id, campaign_id)
    if c.status == "archived" and body.model_fields_set - {"names", "descriptions"}:
        raise CampaignArchived("the campaign is archived; only its texts can change")
    if body.names is not None:
        c.names = body.names.model_dump(exclude_none=True)
    if body.descriptions is not None:
        c.descriptions = body.descriptions.model_dump(exclude_none=True)
    if body.status is not None:
        c.status = body.status
    if body.conditions is not None:
        _apply_conditions(c, body.conditions, tenant.timezone, only_set=True)
    if "max_amount" in body.model_fields_set:
        if c.discount_type == "fixed" and body.max_amount is not None:
            raise InvalidInput(
                "a fixed discount needs no max_amount", extra={"field": "max_amount"}
            )
        c.max_discount = (
            None if body.max_amount is None else _money(body.max_amount, c.currency, "max_amount")
        )
    if "uses_per_code" in body.model_fields_set:
        c.uses_per_code = body.uses_per_code
    if "code_pattern" in body.model_fields_set:
        c.code_pattern = None
        if body.code_pattern is not None:
            c.code_pattern = _pattern(body.code_pattern, "code_pattern")
            _check_room(c.code_pattern, 1, "code_pattern")
    c.updated_at = utcnow()
    session.flush()
    return c


def get_campaign(session: Session, tenant_id: uuid.UUID, campaign_id: uuid.UUID) -> CouponCampaign:
    c = session.execute(
        select(CouponCampaign).where(
            CouponCampaign.id == campaign_id, CouponCampaign.tenant_id == tenant_id
        )
    ).scalar_one_or_none()
    if c is None:
        raise CampaignNotFound(f"coupon campaign {campaign_id} not found")
    return c


def find_campaign(session: Session, tenant_id: uuid.UUID, ref: str) -> CouponCampaign:
    """A campaign by id or by its code (for the CLI)."""
    try:
        return get_campaign(session, tenant_id, uuid.UUID(ref))
    except ValueError:
        pass
    c = session.execute(
        select(CouponCampaign).where(
            CouponCampaign.tenant_id == tenant_id, CouponCampaign.code == ref.lower()
        )
    ).scalar_one_or_none()
    if c is None:
        raise CampaignNotFound(f"no coupon campaign {ref!r}")
    return c


def list_campaigns(
    session: Session,
    tenant_id: uuid.UUID,
    *,
    status: str | None = None,
    after: uuid.UUID | None = None,
    limit: int = 50,
) -> list[CouponCampaign]:
    q = select(CouponCampaign).where(CouponCampaign.tenant_id == tenant_id)
    if status:
        q = q.where(CouponCampaign.status == status)
    if after:
        q = q.where(CouponCampaign.id > after)
    return list(session.execute(q.order_by(CouponCampaign.id).limit(limit)).scalars())


def _lock_campaign(session: Session, campaign_id: uuid.UUID) -> CouponCampaign:
    """The campaign, locked for the rest of the transaction and read afresh."""
    return session.execute(
        select(CouponCampaign)
        .where(CouponCampaign.id == campaign_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one()


def _campaign_codes(session: Session, campaign_id: uuid.UUID) -> int:
    return int(
        session.execute(
            select(func.count())
            .select_from(Coupon)
            .where(Coupon.campaign_id == campaign_id, Coupon.is_public.is_(False))
        ).scalar_one()
    )


# --------------------------------------------------------------------------- codes


def get_coupon(session: Session, tenant_id: uuid.UUID, coupon_id: uuid.UUID) -> Coupon:
    coupon = session.execute(
        select(Coupon).where(Coupon.id == coupon_id, Coupon.tenant_id == tenant_id)
    ).scalar_one_or_none()
    if coupon is None:
        raise CouponNotFound(f"coupon {coupon_id} not found")
    return coupon


def coupon_by_code(session: Session, tenant_id: uuid.UUID, code: str) -> Coupon | None:
    return session.execute(
        select(Coupon).where(Coupon.tenant_id == tenant_id, Coupon.code == patterns.normalize(code))
    ).scalar_one_or_none()


def find_coupon(session: Session, tenant_id: uuid.UUID, ref: str) -> Coupon:
    """A code by its id or by the code itself (case-insensitive)."""
    try:
        return get_coupon(session, tenant_id, uuid.UUID(ref))
    except (ValueError, CouponNotFound):
        pass
    coupon = coupon_by_code(session, tenant_id, ref)
    if coupon is None:
        raise CouponNotFound(f"no coupon code {patterns.normalize(ref)!r}")
    return coupon


def list_codes(
    session: Session,
    tenant_id: uuid.UUID,
    campaign_id: uuid.UUID,
    *,
    status: str | None = None,
    member_id: uuid.UUID | None = None,
    batch_id: uuid.UUID | None = None,
    after: uuid.UUID | None = None,
    limit: int = 50,
) -> list[Coupon]:
    get_campaign(session, tenant_id, campaign_id)
    q = select(Coupon).where(Coupon.campaign_id == campaign_id)
    if status:
        q = q.where(Coupon.status == status)
    if member_id:
        q = q.where(Coupon.member_id == member_id)
    if batch_id:
        q = q.where(Coupon.batch_id == batch_id)
    if after:
        q = q.where(Coupon.id > after)
    return list(session.execute(q.order_by(Coupon.id).limit(limit)).scalars())


def redemptions_of(session: Session, coupon_id: uuid.UUID) -> list[CouponRedemption]:
    return list(
        session.execute(
            select(CouponRedemption)
            .where(CouponRedemption.coupon_id == coupon_id)
            .order_by(CouponRedemption.id)
        ).scalars()
    )


def _active_redemptions(session: Session, coupon_id: uuid.UUID) -> int:
    return int(
        session.execute(
            select(func.count())
            .select_from(CouponRedemption)
            .where(CouponRedemption.coupon_id == coupon_id, CouponRedemption.status == "active")
        ).scalar_one()
    )


def _taken(session: Session, tenant_id: uuid.UUID, candidates: Sequence[str]) -> set[str]:
    """Which of ``candidates`` are already codes of the tenant."""
    out: set[str] = set()
    for i in range(0, len(candidates), _CHUNK):
        chunk = candidates[i : i + _CHUNK]
        out.update(
            session.execute(
                select(Coupon.code).where(Coupon.tenant_id == tenant_id, Coupon.code.in_(chunk))
            ).scalars()
        )
    return out


def _insert_codes(
    session: Session,
    common: dict[str, Any],
    names: tuple[str, ...],
    rows: list[tuple[Any, ...]],
    *,
    skip_taken: bool = False,
) -> None:
    """Insert many codes at the driver level: one compiled INSERT whose values are converted
    by SQLAlchemy's own bind processors for this dialect, ``common`` (the columns every row
    shares) once, ``names`` (the columns of each tuple in ``rows``) row by row, sent with
    ``executemany`` in chunks. ``skip_taken``: a row whose code the tenant already has is
    left out (``ON CONFLICT DO NOTHING``, SQLite and PostgreSQL alike); the caller counts
    what went in."""
    if not rows:
        return
    table = cast("Table", Coupon.__table__)
    conn = session.connection()
    dialect = conn.dialect
    columns = [c.name for c in table.columns]
    assert set(columns) == set(common) | set(names)
    stmt = insert(table)
    if skip_taken:
        if dialect.name == "postgresql":
            stmt = pg_insert(table).on_conflict_do_nothing()
        elif dialect.name == "sqlite":
            stmt = sqlite_insert(table).on_conflict_do_nothing()
    compiled = stmt.compile(dialect=dialect, column_keys=columns)
    order = list(compiled.positiontup) if compiled.positiontup else columns

    def processor(name: str) -> Any:
        return table.c[name].type.dialect_impl(dialect).bind_processor(dialect)

    def convert(proc: Any, value: Any) -> Any:
        return value if value is None or proc is None else proc(value)

    template = [convert(processor(n), common[n]) if n in common else None for n in order]
    slots = [(order.index(n), processor(n)) for n in names]
    converted: list[list[Any]] = []
    for row in rows:
        values = template.copy()
        for (i, proc), value in zip(slots, row, strict=True):
            values[i] = convert(proc, value)
        converted.append(values)
    if dialect.name == "postgresql":
        # COPY into a temporary table, then one INSERT ... SELECT: several times faster
        # than psycopg's executemany, and ON CONFLICT still applies.
        quote = dialect.identifier_preparer.quote
        cols = ", ".join(quote(n) for n in order)
        raw: Any = cast(Any, conn.connection).dbapi_connection
        with raw.cursor() as cur:
            cur.execute(
                "CREATE TEMPORARY TABLE coupons_load "
                f"(LIKE {quote(table.name)} INCLUDING DEFAULTS) ON COMMIT DROP"
            )
            with cur.copy(f"COPY coupons_load ({cols}) FROM STDIN") as copy:
                for values in converted:
                    copy.write_row(values)
            cur.execute(
                f"INSERT INTO {quote(table.name)} ({cols}) SELECT {cols} FROM coupons_load"
                + (" ON CONFLICT DO NOTHING" if skip_taken else "")
            )
            cur.execute("DROP TABLE coupons_load")
        return
    for i in range(0, len(converted), 5000):
        chunk = converted[i : i + 5000]
        params: list[Any] = (
            [tuple(v) for v in chunk]
            if dialect.positional
            else [dict(zip(order, v, strict=True)) for v in chunk]
        )
        conn.exec_driver_sql(compiled.string, params)


def _without(row: dict[str, Any], *names: str) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in names}


def _ids(count: int) -> list[uuid.UUID]:
    """``count`` ids in the layout of ``new_id`` (this millisecond, version 7), with random
    tails drawn in one read, in ascending order (so the primary key index is appended to)."""
    base = new_id().int
    prefix = base & ~((0xFFF << 64) | ((1 << 62) - 1))
    buf = os.urandom(10 * count)
    low = (1 << 62) - 1
    return [
        uuid.UUID(int=prefix | (((r >> 62) & 0xFFF) << 64) | (r & low))
        for r in sorted(
            int.from_bytes(buf[i : i + 10], "big") >> 6 for i in range(0, 10 * count, 10)
        )
    ]


def _code_row(
    tenant_id: uuid.UUID,
    campaign: CouponCampaign,
    code: str,
    *,
    now: datetime,
    batch_id: uuid.UUID | None,
    member_id: uuid.UUID | None = None,
    expires_at: datetime | None = None,
    max_uses: int | None,
    source_type: str | None = None,
    source_id: str | None = None,
    id: uuid.UUID | None = None,
) -> dict[str, Any]:
    return {
        "id": id or new_id(),
        "tenant_id": tenant_id,
        "campaign_id": campaign.id,
        "batch_id": batch_id,
        "code": code,
        "member_id": member_id,
        "is_public": False,
        "status": "active",
        "max_uses": max_uses,
        "uses": 0,
        "expires_at": expires_at or campaign.valid_until,
        "source_type": source_type,
        "source_id": source_id,
        "cancelled_at": None,
        "cancel_reason": None,
        "created_at": now,
    }


def _batch_by_key(session: Session, tenant_id: uuid.UUID, key: str) -> CouponBatch | None:
    return session.execute(
        select(CouponBatch).where(
            CouponBatch.tenant_id == tenant_id, CouponBatch.idempotency_key == key
        )
    ).scalar_one_or_none()


def generate_codes(
    session: Session,
    tenant: Tenant,
    campaign_id: uuid.UUID,
    *,
    count: int,
    pattern: str | None = None,
    expires_at: datetime | None = None,
    idempotency_key: str | None = None,
    request_hash: str | None = None,
) -> tuple[CouponBatch, bool]:
    """Make ``count`` new unique codes for the campaign, in one batch.

    Codes are drawn in memory (a set: distinct), those already used anywhere in the tenant
    are drawn again, then all are inserted in chunks. The pattern's space must hold
    ``SPARSENESS`` times the campaign's codes (existing plus new)."""
    if idempotency_key is not None:
        found = _batch_by_key(session, tenant.id, idempotency_key)
        if found is not None:
            _idempotent(found, request_hash, idempotency_key)
            return found, False
    if not 1 <= count <= MAX_GENERATE:
        raise InvalidInput(
            f"count must be 1 to {MAX_GENERATE:,} per request", extra={"field": "count"}
        )
    campaign = get_campaign(session, tenant.id, campaign_id)
    if campaign.status == "archived":
        raise CampaignArchived("the campaign is archived; it gets no new codes")
    if campaign.member_bound:
        raise CampaignMemberBound(
            "the campaign is member-bound: its codes are issued to members (rewards) or "
            "imported with member_external_id, not generated for anyone"
        )
    pat = _pattern(pattern or campaign.code_pattern or patterns.DEFAULT_PATTERN)
    _check_room(pat, _campaign_codes(session, campaign.id) + count)
    now = utcnow()
    batch = CouponBatch(
        tenant_id=tenant.id,
        campaign_id=campaign.id,
        kind="generate",
        count=count,
        pattern=pat,
        expires_at=_local(expires_at, tenant.timezone),
        idempotency_key=idempotency_key,
        request_hash=request_hash,
        created_at=now,
    )
    session.add(batch)
    session.flush()
    common = _without(
        _code_row(
            tenant.id,
            campaign,
            "",
            now=now,
            batch_id=batch.id,
            expires_at=batch.expires_at,
            max_uses=campaign.uses_per_code,
        ),
        "id",
        "code",
    )
    # Draw the codes (a set: distinct), insert them leaving out any the tenant already has
    # (the unique index decides), count what went in, and draw again for the missing ones.
    # Ids and codes both ascending: each index is appended to rather than split.
    gen = patterns.Generator(pat)
    tried: set[str] = set()
    inserted = 0
    while inserted < count:
        fresh = gen.many(count - inserted, avoid=tried)
        tried |= fresh
        _insert_codes(
            session,
            common,
            ("id", "code"),
            list(zip(_ids(len(fresh)), sorted(fresh), strict=True)),
            skip_taken=True,
        )
        inserted = _batch_size(session, batch.id)
    return batch, True


def _batch_size(session: Session, batch_id: uuid.UUID) -> int:
    return int(
        session.execute(
            select(func.count()).select_from(Coupon).where(Coupon.batch_id == batch_id)
        ).scalar_one()
    )


def batch_codes(session: Session, batch_id: uuid.UUID, limit: int) -> list[str]:
    return list(
        session.execute(
            select(Coupon.code).where(Coupon.batch_id == batch_id).order_by(Coupon.id).limit(limit)
        ).scalars()
    )


def _parse_expiry(raw: str, tz_name: str) -> datetime:
    """ISO 8601; without an offset in the tenant's zone; a date alone: the end of that day.
    ``ValueError`` for anything else, a year outside 1900-9998 included."""
    raw = raw.strip()
    if not raw[:4].isdigit() or not 1900 <= int(raw[:4]) <= 9998:
        raise ValueError(raw)
    if len(raw) == 10:
        day = datetime.fromisoformat(raw).replace(tzinfo=zone(tz_name))
        return (day + timedelta(days=1)).astimezone(UTC)
    value = datetime.fromisoformat(raw)
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone(tz_name))
    return value.astimezone(UTC)


def import_codes(
    session: Session,
    tenant: Tenant,
    campaign_id: uuid.UUID,
    text: str,
    *,
    idempotency_key: str | None = None,
    request_hash: str | None = None,
) -> tuple[CouponBatch, bool]:
    """Import a pool of codes from CSV: a header with ``code`` and optionally
    ``member_external_id`` and ``expires_at``. Every bad line is reported with its number;
    if any line is bad nothing is written (``422 csv_invalid``)."""
    if idempotency_key is not None:
        found = _batch_by_key(session, tenant.id, idempotency_key)
        if found is not None:
            _idempotent(found, request_hash, idempotency_key)
            return found, False
    campaign = get_campaign(session, tenant.id, campaign_id)
    if campaign.status == "archived":
        raise CampaignArchived("the campaign is archived; it gets no new codes")
    errors: list[dict[str, Any]] = []
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [h.strip().lower() for h in reader.fieldnames or []]
    allowed = {"code", "member_external_id", "expires_at"}
    if "code" not in header:
        raise CsvInvalid(
            "the first line must be a header with a `code` column "
            "(optional: member_external_id, expires_at)",
            extra={"errors": [{"line": 1, "error": "no `code` column"}], "error_count": 1},
        )
    unknown = [h for h in header if h not in allowed]
    if unknown:
        raise CsvInvalid(
            f"unknown column(s) {', '.join(unknown)}; allowed: code, member_external_id, "
            "expires_at",
            extra={"errors": [{"line": 1, "error": "unknown columns"}], "error_count": 1},
        )
    reader.fieldnames = header
    rows: list[tuple[int, str, str | None, datetime | None]] = []
    seen: dict[str, int] = {}
    line_no = 1
    for rec in reader:
        line_no = reader.line_num
        if None in rec:
            errors.append({"line": line_no, "error": "more fields than the header has"})
            continue
        code = patterns.normalize(rec.get("code") or "")
        ext = (rec.get("member_external_id") or "").strip() or None
        raw_exp = (rec.get("expires_at") or "").strip()
        if not code:
            errors.append({"line": line_no, "error": "empty code"})
            continue
        if not patterns.valid_code(code):
            errors.append(
                {
                    "line": line_no,
                    "error": f"bad code {code!r}: 3-64 characters of A-Z, 0-9, '-', '_'",
                }
            )
            continue
        if code in seen:
            errors.append(
                {"line": line_no, "error": f"duplicate of line {seen[code]}", "code": code}
            )
            continue
        seen[code] = line_no
        expires: datetime | None = None
        if raw_exp:
            try:
                expires = _parse_expiry(raw_exp, tenant.timezone)
            except ValueError:
                errors.append(
                    {
                        "line": line_no,
                        "error": f"expires_at {raw_exp!r} is not an ISO 8601 date or time",
                    }
                )
                continue
        if campaign.member_bound and ext is None:
            errors.append(
                {"line": line_no, "error": "the campaign is member-bound: member_external_id"}
            )
            continue
        rows.append((line_no, code, ext, expires))
        if len(rows) > MAX_IMPORT_ROWS:
            raise CsvInvalid(
                f"at most {MAX_IMPORT_ROWS:,} codes per import; split the file",
                extra={"errors": [{"line": line_no, "error": "too many lines"}], "error_count": 1},
            )
    if not rows and not errors:
        raise CsvInvalid(
            "the CSV has no codes",
            extra={"errors": [{"line": line_no, "error": "no codes"}], "error_count": 1},
        )
    taken = _taken(session, tenant.id, [r[1] for r in rows])
    ext_ids = sorted({r[2] for r in rows if r[2] is not None})
    member_ids: dict[str, uuid.UUID] = {}
    for i in range(0, len(ext_ids), _CHUNK):
        chunk = ext_ids[i : i + _CHUNK]
        member_ids.update(
            {
                ext: mid
                for ext, mid in session.execute(
                    select(Member.external_id, Member.id).where(
                        Member.tenant_id == tenant.id,
                        Member.external_id.in_(chunk),
                        Member.status == "active",
                    )
                ).tuples()
                if ext is not None
            }
        )
    for line, code, ext, _exp in rows:
        if code in taken:
            errors.append({"line": line, "error": "the code already exists", "code": code})
        elif ext is not None and ext not in member_ids:
            errors.append({"line": line, "error": f"no active member with external id {ext!r}"})
    if errors:
        errors.sort(key=lambda e: int(e["line"]))
        first = errors[0]
        raise CsvInvalid(
            f"{len(errors)} bad line(s); nothing was imported. First: line {first['line']}: "
            f"{first['error']}",
            extra={"errors": errors[:_MAX_REPORTED_ERRORS], "error_count": len(errors)},
        )
    now = utcnow()
    batch = CouponBatch(
        tenant_id=tenant.id,
        campaign_id=campaign.id,
        kind="import",
        count=len(rows),
        idempotency_key=idempotency_key,
        request_hash=request_hash,
        created_at=now,
    )
    session.add(batch)
    session.flush()
    common = _code_row(
        tenant.id,
        campaign,
        "",
        now=now,
        batch_id=batch.id,
        max_uses=campaign.uses_per_code,
    )
    ordered = sorted(rows, key=lambda r: r[1])
    _insert_codes(
        session,
        _without(common, "id", "code", "member_id", "expires_at"),
        ("id", "code", "member_id", "expires_at"),
        [
            (row_id, code, member_ids[ext] if ext else None, exp or campaign.valid_until)
            for (_line, code, ext, exp), row_id in zip(ordered, _ids(len(rows)), strict=True)
        ],
    )
    return batch, True


def issue_code(
    session: Session,
    *,
    tenant_id: uuid.UUID,
    campaign_id: uuid.UUID,
    member_id: uuid.UUID,
    source_type: str,
    source_id: str,
    expires_at: datetime | None = None,
) -> Coupon:
    """One new single-use code of the campaign, bound to the member. Idempotent on
    (tenant, source_type, source_id): the code already issued for that source comes back.
    The code never outlives its campaign (its expiry is the earlier of ``expires_at`` and
    the campaign's end); a campaign that has ended issues nothing (``CampaignEnded``)."""
    found = session.execute(
        select(Coupon).where(
            Coupon.tenant_id == tenant_id,
            Coupon.source_type == source_type,
            Coupon.source_id == source_id,
        )
    ).scalar_one_or_none()
    if found is not None:
        return found
    campaign = get_campaign(session, tenant_id, campaign_id)
    if campaign.status == "archived":
        raise CampaignArchived(f"the coupon campaign {campaign.code!r} is archived")
    now = utcnow()
    ends = None if campaign.valid_until is None else as_utc(campaign.valid_until)
    if ends is not None and ends <= now:
        raise CampaignEnded(
            f"the coupon campaign {campaign.code!r} ended at {ends.isoformat()}; "
            "its codes can no longer be used",
            extra={"valid_until": ends.isoformat()},
        )
    expiry = None if expires_at is None else as_utc(expires_at)
    if ends is not None and (expiry is None or expiry > ends):
        expiry = ends
    member = members.get_member(session, tenant_id, member_id)
    pat = campaign.code_pattern or patterns.DEFAULT_PATTERN
    _check_room(pat, _campaign_codes(session, campaign.id) + 1)
    gen = patterns.Generator(pat)
    code = gen.one()
    while _code_taken(session, tenant_id, code):
        code = gen.one()
    row = _code_row(
        tenant_id,
        campaign,
        code,
        now=now,
        batch_id=None,
        member_id=member.id,
        expires_at=expiry,
        max_uses=1,
        source_type=source_type,
        source_id=source_id,
    )
    coupon = Coupon(**row)
    session.add(coupon)
    session.flush()
    return coupon


def cancel_code(
    session: Session, *, tenant_id: uuid.UUID, coupon_id: uuid.UUID, reason: str
) -> Coupon:
    """Cancel an unused code (no active redemption), else ``CouponUsed``. Cancelling a
    cancelled code returns it unchanged."""
    coupon = get_coupon(session, tenant_id, coupon_id)
    if coupon.status == "cancelled":
        return coupon
    _lock_campaign(session, coupon.campaign_id)
    session.refresh(coupon)
    if coupon.status == "cancelled":
        return coupon
    if _active_redemptions(session, coupon.id):
        raise CouponUsed(
            f"the code {coupon.code} is used on an order; void that redemption first",
            extra={"coupon_id": str(coupon.id)},
        )
    coupon.status = "cancelled"
    coupon.cancelled_at = utcnow()
    coupon.cancel_reason = reason[:200]
    session.flush()
    return coupon


def export_rows(session: Session, campaign_id: uuid.UUID) -> Iterator[dict[str, Any]]:
    """Every code of the campaign with its state, for CSV export (streamed)."""
    q = (
        select(Coupon, Member.external_id)
        .outerjoin(Member, Member.id == Coupon.member_id)
        .where(Coupon.campaign_id == campaign_id)
        .order_by(Coupon.id)
        .execution_options(yield_per=2000)
    )
    for coupon, ext in session.execute(q).tuples():
        yield {
            "code": coupon.code,
            "status": coupon.status,
            "member_id": coupon.member_id or "",
            "member_external_id": ext or "",
            "uses": coupon.uses,
            "max_uses": "" if coupon.max_uses is None else coupon.max_uses,
            "expires_at": ""
            if coupon.expires_at is None
            else as_utc(coupon.expires_at).isoformat(),
            "is_public": coupon.is_public,
            "created_at": as_utc(coupon.created_at).isoformat(),
        }


# --------------------------------------------------------------------------- checkout


@dataclass
class Check:
    coupon: Coupon | None
    campaign: CouponCampaign | None
    outcome: Outcome
    redemption: CouponRedemption | None = None


def _member_uses(session: Session, campaign: CouponCampaign, member_id: uuid.UUID | None) -> int:
    if member_id is None or campaign.per_member_limit is None:
        return 0
    return int(
        session.execute(
            select(func.count())
            .select_from(CouponRedemption)
            .where(
                CouponRedemption.campaign_id == campaign.id,
                CouponRedemption.member_id == member_id,
                CouponRedemption.status == "active",
            )
        ).scalar_one()
    )


def _holder(session: Session, coupon: Coupon, member_id: uuid.UUID | None) -> uuid.UUID | None:
    """The member to check the code's binding against: ``member_id`` when the code belongs
    to a member later merged into ``member_id`` (the survivor holds the merged member's
    codes), else ``member_id`` as given."""
    owner = coupon.member_id
    if owner is None or member_id is None or owner == member_id:
        return member_id
    seen: set[uuid.UUID] = set()
    while owner is not None and owner not in seen:
        seen.add(owner)
        row = session.execute(
            select(Member.status, Member.merged_into_id).where(Member.id == owner)
        ).one_or_none()
        if row is None or row.status != "merged":
            break
        owner = row.merged_into_id
    return coupon.member_id if owner == member_id else member_id


def _check_member(session: Session, tenant_id: uuid.UUID, member_id: uuid.UUID | None) -> None:
    if member_id is not None:
        member = members.get_member(session, tenant_id, member_id)
        if member.status != "active":
            raise members.MemberNotActive(f"member {member_id} was merged or erased")


def validate(
    session: Session,
    tenant_id: uuid.UUID,
    *,
    code: str,
    cart: Cart,
    member_id: uuid.UUID | None = None,
    order_id: str | None = None,
    now: datetime | None = None,
) -> Check:
    """Whether the code can be used on the cart now, and the discount. Writes nothing.
    A code of another tenant is simply unknown. With ``order_id``: a code already redeemed
    on that order is valid with the discount it gave (``Check.redemption``)."""
    now = now or utcnow()
    _check_member(session, tenant_id, member_id)
    coupon = coupon_by_code(session, tenant_id, code)
    if coupon is None:
        return Check(None, None, Outcome(False, Decimal(0), "unknown"))
    campaign = get_campaign(session, tenant_id, coupon.campaign_id)
    if order_id is not None:
        # Already redeemed on this order: redeeming again would return that redemption.
        done = _active_for_order(session, coupon.id, order_id)
        if done is not None:
            return Check(coupon, campaign, Outcome(True, done.discount), done)
    outcome = evaluate(
        campaign,
        coupon,
        cart,
        member_id=_holder(session, coupon, member_id),
        member_uses=_member_uses(session, campaign, member_id),
        now=now,
    )
    return Check(coupon, campaign, outcome)


def _active_for_order(
    session: Session, coupon_id: uuid.UUID, order_id: str
) -> CouponRedemption | None:
    return session.execute(
        select(CouponRedemption).where(
            CouponRedemption.coupon_id == coupon_id,
            CouponRedemption.order_id == order_id,
            CouponRedemption.status == "active",
        )
    ).scalar_one_or_none()


def _active_key(coupon_id: uuid.UUID, order_id: str) -> str:
    return f"{coupon_id}:{order_id}"


def redeem(
    session: Session,
    tenant_id: uuid.UUID,
    *,
    code: str,
    order_id: str,
    cart: Cart,
    member_id: uuid.UUID | None = None,
    message: Callable[[Outcome], str] | None = None,
    idempotency_key: str | None = None,
    request_hash: str | None = None,
    cart_json: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> tuple[CouponRedemption, bool]:
    """Use the code on the order: every condition of ``validate``, then the code's and the
    campaign's use counters go up under the campaign's lock. The same code on the same
    order again returns the first redemption (False: not created now).

    ``message(outcome) -> str`` words the refusal (the API passes the caller's locale)."""
    now = now or utcnow()
    if idempotency_key is not None:
        found = session.execute(
            select(CouponRedemption).where(
                CouponRedemption.tenant_id == tenant_id,
                CouponRedemption.idempotency_key == idempotency_key,
            )
        ).scalar_one_or_none()
        if found is not None:
            _idempotent(found, request_hash, idempotency_key)
            return found, False
    _check_member(session, tenant_id, member_id)
    coupon = coupon_by_code(session, tenant_id, code)
    if coupon is None:
        raise CouponNotFound(
            f"no coupon code {patterns.normalize(code)!r}",
            extra={"reason_code": "unknown"},
        )
    campaign = _lock_campaign(session, coupon.campaign_id)
    session.refresh(coupon)
    existing = _active_for_order(session, coupon.id, order_id)
    if existing is not None:
        return existing, False
    outcome = evaluate(
        campaign,
        coupon,
        cart,
        member_id=_holder(session, coupon, member_id),
        member_uses=_member_uses(session, campaign, member_id),
        now=now,
    )
    if not outcome.valid:
        text = (
            message(outcome)
            if message
            else reason_message(outcome.reason_code or "unknown", "en", outcome.params)
        )
        raise CouponRefused(outcome, text)
    row = session.execute(
        update(CouponCampaign)
        .where(
            CouponCampaign.id == campaign.id,
            (CouponCampaign.max_uses.is_(None)) | (CouponCampaign.uses < CouponCampaign.max_uses),
        )
        .values(uses=CouponCampaign.uses + 1)
        .returning(CouponCampaign.uses)
        .execution_options(synchronize_session=False)
    ).first()
    if row is None:
        raise CouponRefused(
            Outcome(False, Decimal(0), "budget_exhausted"), "this promotion has run out"
        )
    set_committed_value(campaign, "uses", int(row[0]))
    row = session.execute(
        update(Coupon)
        .where(
            Coupon.id == coupon.id,
            Coupon.status == "active",
            (Coupon.max_uses.is_(None)) | (Coupon.uses < Coupon.max_uses),
        )
        .values(uses=Coupon.uses + 1)
        .returning(Coupon.uses)
        .execution_options(synchronize_session=False)
    ).first()
    if row is None:
        raise CouponRefused(Outcome(False, Decimal(0), "used_up"), "this coupon was already used")
    set_committed_value(coupon, "uses", int(row[0]))
    redemption = CouponRedemption(
        tenant_id=tenant_id,
        coupon_id=coupon.id,
        campaign_id=campaign.id,
        member_id=member_id,
        order_id=order_id,
        discount=outcome.discount,
        currency=cart.currency,
        status="active",
        active_key=_active_key(coupon.id, order_id),
        cart=cart_json or {},
        idempotency_key=idempotency_key,
        request_hash=request_hash,
        created_at=now,
    )
    session.add(redemption)
    session.flush()
    return redemption, True


def _void_one(session: Session, redemption: CouponRedemption, reason: str, now: datetime) -> bool:
    """Void an active redemption (the caller holds its campaign's lock): the code and the
    campaign get the use back. False if it was not active any more."""
    done = cast(
        "CursorResult[Any]",
        session.execute(
            update(CouponRedemption)
            .where(CouponRedemption.id == redemption.id, CouponRedemption.status == "active")
            .values(status="voided", active_key=None, voided_at=now, void_reason=reason[:200])
            .execution_options(synchronize_session=False)
        ),
    ).rowcount
    if done != 1:
        return False
    session.execute(
        update(Coupon)
        .where(Coupon.id == redemption.coupon_id, Coupon.uses > 0)
        .values(uses=Coupon.uses - 1)
        .execution_options(synchronize_session="fetch")
    )
    session.execute(
        update(CouponCampaign)
        .where(CouponCampaign.id == redemption.campaign_id, CouponCampaign.uses > 0)
        .values(uses=CouponCampaign.uses - 1)
        .execution_options(synchronize_session="fetch")
    )
    session.refresh(redemption)
    return True


def void(
    session: Session, tenant_id: uuid.UUID, *, code: str, order_id: str, reason: str
) -> tuple[CouponRedemption, bool]:
    """Void the code's redemption on the order (the order was cancelled): the code is usable
    again. A second void returns the voided redemption (False: nothing done now)."""
    coupon = coupon_by_code(session, tenant_id, code)
    if coupon is None:
        raise CouponNotFound(f"no coupon code {patterns.normalize(code)!r}")
    _lock_campaign(session, coupon.campaign_id)
    active = _active_for_order(session, coupon.id, order_id)
    if active is not None and _void_one(session, active, reason, utcnow()):
        return active, True
    last = session.execute(
        select(CouponRedemption)
        .where(CouponRedemption.coupon_id == coupon.id, CouponRedemption.order_id == order_id)
        .order_by(CouponRedemption.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    if last is None:
        raise RedemptionNotFound(f"the code {coupon.code} was not redeemed on order {order_id!r}")
    return last, False


def void_for_order(
    session: Session, *, tenant_id: uuid.UUID, order_id: str, reason: str
) -> list[CouponRedemption]:
    """Void every active redemption of the order; returns those voided now (a second call
    returns an empty list)."""
    active = list(
        session.execute(
            select(CouponRedemption)
            .where(
                CouponRedemption.tenant_id == tenant_id,
                CouponRedemption.order_id == order_id,
                CouponRedemption.status == "active",
            )
            .order_by(CouponRedemption.campaign_id, CouponRedemption.id)
        ).scalars()
    )
    now = utcnow()
    voided: list[CouponRedemption] = []
    locked: set[uuid.UUID] = set()
    for r in active:
        if r.campaign_id not in locked:
            _lock_campaign(session, r.campaign_id)
            locked.add(r.campaign_id)
        if _void_one(session, r, reason, now):
            voided.append(r)
    return voided


def list_redemptions(
    session: Session,
    tenant_id: uuid.UUID,
    *,
    order_id: str | None = None,
    campaign_id: uuid.UUID | None = None,
    after: uuid.UUID | None = None,
    limit: int = 50,
) -> list[CouponRedemption]:
    q = select(CouponRedemption).where(CouponRedemption.tenant_id == tenant_id)
    if order_id:
        q = q.where(CouponRedemption.order_id == order_id)
    if campaign_id:
        q = q.where(CouponRedemption.campaign_id == campaign_id)
    if after:
        q = q.where(CouponRedemption.id > after)
    return list(session.execute(q.order_by(CouponRedemption.id).limit(limit)).scalars())
