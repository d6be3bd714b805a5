"""Stored per-member analytics: recompute a program's scores and keep them in
``member_scores`` (one row per member per program), the fit in ``analytics_fits``.

:func:`recompute` runs inside the caller's transaction and never commits. It computes what
the on-demand endpoints compute (``settings.analyse`` + ``labels.classify`` with the
tenant's stored settings, at ``as_of``) and writes every row with one bulk
``INSERT … ON CONFLICT (program_id, member_id) DO UPDATE`` (executemany in chunks), then
deletes the program's rows the run did not write (members that no longer have an order).
Running it twice gives the same rows: it is idempotent.

On PostgreSQL a transaction-level advisory lock per program serialises recomputes:
:func:`recompute` waits for it, the job (:func:`run_due`) tries it and skips a program
another worker is recomputing, then re-checks staleness under the lock, so two workers
never both recompute. SQLite has one writer at a time (``BEGIN IMMEDIATE``).
"""

from __future__ import annotations

import datetime as dt
import math
import time
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Table, delete, exists, func, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from setia.analytics import labels, members, models, rfm
from setia.analytics import settings as tenant_settings
from setia.analytics.tables import AnalyticsFit, MemberScore
from setia.core.db import Database, new_id
from setia.core.errors import SetiaError
from setia.core.time import as_utc, utcnow, zone
from setia.events.models import Order
from setia.programs.models import Program
from setia.tenants.models import Tenant

CHUNK = 5000
_LOCK_CLASS = 0x5E71A  # advisory lock namespace of analytics recomputes


@dataclass
class RecomputeResult:
    fit: AnalyticsFit | None
    members: int = 0
    deleted: int = 0
    skipped: str | None = None

    def as_dict(self) -> dict[str, Any]:
        f = self.fit
        return {
            "program_id": None if f is None else str(f.program_id),
            "fit_id": None if f is None else str(f.id),
            "computed_at": None if f is None else as_utc(f.computed_at).isoformat(),
            "as_of": None if f is None else as_utc(f.as_of).isoformat(),
            "members": self.members,
            "purchasers": None if f is None else f.purchasers,
            "deleted": self.deleted,
            "model": None if f is None else f.model,
            "params": None if f is None else f.params,
            "log_likelihood": None if f is None else f.log_likelihood,
            "spend_params": None if f is None else f.spend_params,
            "fit_seconds": None if f is None else round(f.fit_seconds, 4),
            "total_seconds": None if f is None else round(f.total_seconds, 4),
            "settings_version": None if f is None else f.settings_version,
            "predictions_missing": None if f is None else f.predictions_missing,
            "skipped": self.skipped,
        }


def _pg(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _lock_key(program_id: uuid.UUID) -> int:
    return zlib.crc32(program_id.bytes) - 2**31  # a signed int4


def lock(session: Session, program_id: uuid.UUID, *, wait: bool) -> bool:
    """Take the program's recompute lock until the transaction ends (PostgreSQL; SQLite's
    write lock already serialises). False when ``wait`` is False and another holds it."""
    if not _pg(session):
        return True
    fn = "pg_advisory_xact_lock" if wait else "pg_try_advisory_xact_lock"
    got = session.execute(
        text(f"SELECT {fn}(:c, :k)"), {"c": _LOCK_CLASS, "k": _lock_key(program_id)}
    ).scalar()
    return True if wait else bool(got)


def _money(value: Any) -> Decimal | None:
    if value is None or not math.isfinite(float(value)):
        return None
    return Decimal(str(round(float(value), 4)))


def _float(value: Any) -> float | None:
    """A finite float, or None (a model value that is not a number is not stored)."""
    if value is None:
        return None
    f = float(value)
    return f if math.isfinite(f) else None


def _rows(
    a: members.Analysis,
    labelled: dict[uuid.UUID, labels.MemberLabel],
    *,
    tenant_id: uuid.UUID,
    fit_id: uuid.UUID,
    computed_at: dt.datetime,
) -> Iterator[dict[str, Any]]:
    s, p = a.scores, a.predictions
    as_of = a.summary.as_of
    for row in a.summary.rows:
        pos = a.position.get(row.member_id)
        lab = labelled[row.member_id]
        scored = pos is not None
        has_p = scored and p.p_alive is not None
        yield {
            "program_id": a.summary.program_id,
            "member_id": row.member_id,
            "tenant_id": tenant_id,
            "fit_id": fit_id,
            "computed_at": computed_at,
            "as_of": as_of,
            "orders": row.orders,
            "spend": row.spend,
            "refunds": row.refunds,
            "redemptions": row.redemptions,
            "purchase_days": row.purchase_days,
            "first_order_at": row.first_order_at,
            "last_order_at": row.last_order_at,
            "first_purchase_day": row.first_purchase_day,
            "last_purchase_day": row.last_purchase_day,
            "recency_days": a.recency_days(row),
            "frequency": row.x,
            "recency": row.t_x,
            "age": row.T,
            "monetary": _money(row.monetary),
            "p_alive": _float(p.p_alive[pos]) if has_p and p.p_alive is not None else None,
            "expected_purchases": (
                _float(p.expected_purchases[pos])
                if has_p and p.expected_purchases is not None
                else None
            ),
            "expected_spend": (
                _money(p.expected_spend[pos]) if has_p and p.expected_spend is not None else None
            ),
            "clv": _money(p.clv[pos]) if has_p and p.clv is not None else None,
            "rfm_r": int(s.r[pos]) if pos is not None else None,
            "rfm_f": int(s.f[pos]) if pos is not None else None,
            "rfm_m": int(s.m[pos]) if pos is not None else None,
            "rfm_segment": s.segments[pos] if pos is not None else None,
            "loyalty_label": lab.label,
            "loyalty_type": lab.primary,
            "habitual": lab.scores["habitual"],
            "transactional": lab.scores["transactional"],
            "emotional": lab.scores["emotional"],
        }


def upsert_statement(session: Session) -> Any:
    """``INSERT INTO member_scores … ON CONFLICT (program_id, member_id) DO UPDATE``."""
    table = cast(Table, MemberScore.__table__)
    if _pg(session):
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        stmt: Any = pg_insert(table)
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        stmt = sqlite_insert(table)
    keys = {"program_id", "member_id"}
    return stmt.on_conflict_do_update(
        index_elements=["program_id", "member_id"],
        set_={c.name: stmt.excluded[c.name] for c in table.columns if c.name not in keys},
    )


def write_rows(session: Session, rows: list[dict[str, Any]]) -> None:
    """Bulk upsert, ``CHUNK`` rows per executemany."""
    stmt = upsert_statement(session)
    conn = session.connection()
    for start in range(0, len(rows), CHUNK):
        conn.execute(stmt, rows[start : start + CHUNK])


def _analyse(
    session: Session,
    tenant: Tenant,
    program: Program,
    st: tenant_settings.Settings,
    as_of: dt.datetime,
) -> tuple[members.Analysis, float]:
    """``settings.analyse`` split so the model fit is timed on its own."""
    summary = members.summarise_program(session, tenant, program, as_of=as_of)
    purchasers = summary.purchasers
    recency = [
        (summary.as_of_day - r.last_purchase_day).days
        for r in purchasers
        if r.last_purchase_day is not None
    ]
    scores = rfm.score(
        recency, [r.orders for r in purchasers], [float(r.spend) for r in purchasers]
    )
    started = time.perf_counter()
    predictions = members.predict(
        summary, horizon_weeks=st.horizon_weeks, months=st.months, discount_rate=st.discount_rate
    )
    fit_seconds = time.perf_counter() - started
    a = members.Analysis(
        summary=summary,
        purchasers=purchasers,
        scores=scores,
        predictions=predictions,
        position={r.member_id: i for i, r in enumerate(purchasers)},
    )
    return tenant_settings.resegment(a, st.grid), fit_seconds


def _fit_params(fit: models.Fit | None) -> dict[str, Any] | None:
    if fit is None:
        return None
    return {
        "params": {k: float(v) for k, v in fit.params.items()},
        "customers": fit.customers,
        "converged": fit.converged,
        "at_bound": list(fit.at_bound),
    }


def recompute(
    session: Session,
    tenant: Tenant,
    program: Program,
    *,
    as_of: dt.datetime | None = None,
    now: dt.datetime | None = None,
    wait: bool = True,
) -> RecomputeResult:
    """Recompute and store every member's scores of ``program`` at ``as_of`` (default now).
    With ``wait=False`` a program another transaction is recomputing is skipped."""
    started = time.perf_counter()
    if not lock(session, program.id, wait=wait):
        return RecomputeResult(None, skipped="another worker is recomputing this program")
    computed_at = as_utc(now) if now is not None else utcnow()
    st = tenant_settings.get(session, tenant.id)
    a, fit_seconds = _analyse(session, tenant, program, st, as_of or computed_at)
    labelled = labels.classify(session, a, st.thresholds)
    p = a.predictions
    fit = AnalyticsFit(
        id=new_id(),
        tenant_id=tenant.id,
        program_id=program.id,
        computed_at=computed_at,
        as_of=a.summary.as_of,
        settings_version=st.version,
        members=len(a.summary.rows),
        purchasers=len(a.purchasers),
        model=None if p.fit is None else p.fit.model,
        params=_fit_params(p.fit),
        log_likelihood=None if p.fit is None else float(p.fit.log_likelihood),
        spend_params=_fit_params(p.spend_fit),
        spend_log_likelihood=None if p.spend_fit is None else float(p.spend_fit.log_likelihood),
        fit_seconds=fit_seconds,
        total_seconds=0.0,
        predictions_missing=p.reason,
        spend_missing=p.spend_reason,
        horizon_weeks=st.horizon_weeks,
        months=st.months,
        discount_rate=st.discount_rate,
    )
    session.add(fit)
    session.flush()
    rows = list(_rows(a, labelled, tenant_id=tenant.id, fit_id=fit.id, computed_at=computed_at))
    write_rows(session, rows)
    gone = session.execute(
        delete(MemberScore).where(
            MemberScore.program_id == program.id, MemberScore.fit_id != fit.id
        )
    )
    fit.total_seconds = time.perf_counter() - started
    session.flush()
    return RecomputeResult(fit, members=len(rows), deleted=int(getattr(gone, "rowcount", 0) or 0))


# --- reading ---------------------------------------------------------------------------------


def latest_fit(session: Session, program_id: uuid.UUID) -> AnalyticsFit | None:
    return session.execute(
        select(AnalyticsFit)
        .where(AnalyticsFit.program_id == program_id)
        .order_by(AnalyticsFit.computed_at.desc(), AnalyticsFit.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def member_score(
    session: Session, program_id: uuid.UUID, member_id: uuid.UUID
) -> MemberScore | None:
    return session.get(MemberScore, (program_id, member_id))


def is_stale(fit: AnalyticsFit | None, tz: str, interval_days: int, now: dt.datetime) -> bool:
    """Whether scores computed at ``fit.computed_at`` are due: ``interval_days`` or more
    local calendar days old in the tenant's zone (1 = once per local day)."""
    if fit is None:
        return True
    z = zone(tz)
    then = as_utc(fit.computed_at).astimezone(z).date()
    today = as_utc(now).astimezone(z).date()
    return (today - then).days >= interval_days


# --- the job ---------------------------------------------------------------------------------


@dataclass
class JobReport:
    recomputed: int = 0
    members: int = 0
    skipped_locked: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        out = self.__dict__.copy()
        out["seconds"] = round(self.seconds, 3) if self.recomputed else 0
        return out


def _has_data(session: Session, tenant_id: uuid.UUID, program_id: uuid.UUID) -> bool:
    # tenant_id first: orders are indexed by (tenant_id, order_id)
    orders = session.execute(
        select(exists().where(Order.tenant_id == tenant_id, Order.program_id == program_id))
    ).scalar()
    stored = session.execute(select(exists().where(MemberScore.program_id == program_id))).scalar()
    return bool(orders or stored)


def due_programs(session: Session, now: dt.datetime) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """(tenant id, program id) of the programs whose stored scores are due."""
    out: list[tuple[uuid.UUID, uuid.UUID]] = []
    last = (
        select(AnalyticsFit.program_id, func.max(AnalyticsFit.computed_at).label("at"))
        .group_by(AnalyticsFit.program_id)
        .subquery()
    )
    q = (
        select(Program.id, Tenant.id, Tenant.timezone, last.c.at)
        .join(Tenant, Tenant.id == Program.tenant_id)
        .outerjoin(last, last.c.program_id == Program.id)
        .order_by(Program.id)
    )
    for program_id, tenant_id, tz, at in session.execute(q).all():
        interval = tenant_settings.get(session, tenant_id).recompute_interval_days
        if interval <= 0:
            continue
        if at is not None:
            then = as_utc(at).astimezone(zone(tz)).date()
            if (as_utc(now).astimezone(zone(tz)).date() - then).days < interval:
                continue
        if _has_data(session, tenant_id, program_id):
            out.append((tenant_id, program_id))
    return out


def run_due(db: Database, now: dt.datetime | None = None) -> JobReport:
    """Recompute every program whose scores are due, one transaction per program."""
    now = now or utcnow()
    report = JobReport()
    started = time.perf_counter()
    try:
        with db.session() as session:
            due = due_programs(session, now)
            session.rollback()
    except OperationalError as exc:
        if "locked" not in str(exc).lower():
            raise
        report.skipped_locked += 1  # SQLite busy: another writer; the next run tries again
        return report
    for tenant_id, program_id in due:
        with db.session() as session:
            try:
                if not lock(session, program_id, wait=False):
                    report.skipped_locked += 1
                    continue
                tenant = session.get(Tenant, tenant_id)
                program = session.get(Program, program_id)
                assert tenant is not None
                assert program is not None
                interval = tenant_settings.get(session, tenant_id).recompute_interval_days
                # re-checked under the lock: another worker may have just finished
                if not is_stale(latest_fit(session, program_id), tenant.timezone, interval, now):
                    continue
                res = recompute(session, tenant, program, now=now, wait=True)
                session.commit()
                report.recomputed += 1
                report.members += res.members
            except SetiaError as exc:
                session.rollback()
                report.errors.append(f"program {program_id}: {exc.detail}")
            except (ArithmeticError, ValueError) as exc:
                # a numerical failure in one program's models must not stop the others
                session.rollback()
                report.errors.append(f"program {program_id}: {type(exc).__name__}: {exc}")
            except OperationalError as exc:
                # SQLite: another process held the write lock past the busy timeout (it is
                # recomputing or writing); the next run picks the program up.
                session.rollback()
                if "locked" not in str(exc).lower():
                    raise
                report.skipped_locked += 1
    report.seconds = time.perf_counter() - started
    return report
