"""HTTP API of stored analytics: per-tenant settings, stored member scores, recompute, and
saved segments (``/v1/analytics/...``)."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field

from setia.analytics import segments as seg_service
from setia.analytics import settings as settings_service
from setia.analytics import store
from setia.analytics.tables import AnalyticsFit, AnalyticsSegment, MemberScore
from setia.core.api import (
    AdminCaller,
    Cursor,
    Limit,
    Page,
    ReadCaller,
    SessionDep,
    answered,
    decode_cursor,
    encode_cursor,
    problems,
    write,
)
from setia.core.errors import NotFound
from setia.core.i18n import Localized
from setia.core.money import to_str
from setia.members.models import Member
from setia.programs import service as programs
from setia.programs.models import Program

router = APIRouter(prefix="/v1/analytics", tags=["analytics"])

ProgramQ = Annotated[
    uuid.UUID | None, Query(description="The program; default: the tenant's default program")
]


# --- settings --------------------------------------------------------------------------------


class SettingsOut(BaseModel):
    version: int = Field(description="0 = defaults, never saved")
    settings: dict[str, Any]
    updated_by: str | None
    updated_at: dt.datetime | None
    changed: bool | None = Field(default=None, description="On PUT: whether a version was made")


class SettingsChangeOut(BaseModel):
    version: int
    settings: dict[str, Any]
    actor: str
    changed_at: dt.datetime


def _settings_out(
    session: SessionDep, tenant_id: uuid.UUID, changed: bool | None = None
) -> SettingsOut:
    from setia.analytics.tables import AnalyticsSettings

    session.info.pop("analytics_settings", None)
    st = settings_service.get(session, tenant_id)
    row = session.get(AnalyticsSettings, tenant_id)
    return SettingsOut(
        version=st.version,
        settings=st.document,
        updated_by=None if row is None else row.updated_by,
        updated_at=None if row is None else row.updated_at,
        changed=changed,
    )


@router.get("/settings", response_model=SettingsOut, responses=problems(403))
def get_settings(session: SessionDep, caller: ReadCaller) -> SettingsOut:
    """The tenant's analytics settings in force: the RFM grid, label and loyalty-type
    thresholds, the CLV model horizon and discount rate, the recompute interval."""
    return _settings_out(session, caller.tenant.id)


@router.put("/settings", response_model=SettingsOut, responses=problems(403, 409))
def put_settings(
    body: settings_service.SettingsIn,
    session: SessionDep,
    caller: AdminCaller,
    version: Annotated[
        int | None,
        Query(ge=0, description="The version you read; 409 if the settings changed since"),
    ] = None,
) -> SettingsOut:
    """Replace the tenant's analytics settings (fields left out take their defaults). The
    same document again makes no new version. Takes effect for the on-demand endpoints at
    once and for stored scores at the next recompute."""
    tenant_id = caller.tenant.id

    def run() -> bool:
        _, changed = settings_service.put(
            session, tenant_id, body, actor=caller.actor, expected_version=version
        )
        return changed

    changed = write(session, run)
    return _settings_out(session, tenant_id, changed)


@router.get("/settings/history", response_model=list[SettingsChangeOut], responses=problems(403))
def settings_history(session: SessionDep, caller: ReadCaller) -> list[SettingsChangeOut]:
    """Every saved version of the settings, newest first, with who saved it."""
    return [
        SettingsChangeOut(
            version=c.version, settings=c.settings, actor=c.actor, changed_at=c.changed_at
        )
        for c in settings_service.history(session, caller.tenant.id)
    ]


# --- stored scores ---------------------------------------------------------------------------


class FitRunOut(BaseModel):
    fit_id: uuid.UUID
    program_id: uuid.UUID
    computed_at: dt.datetime
    as_of: dt.datetime
    settings_version: int
    members: int
    purchasers: int
    model: str | None
    params: dict[str, Any] | None = Field(description="BG/NBD parameters, customers, at_bound")
    log_likelihood: float | None
    spend_params: dict[str, Any] | None = Field(description="Gamma-Gamma, the same shape")
    spend_log_likelihood: float | None
    fit_seconds: float
    total_seconds: float
    horizon_weeks: float
    months: int
    discount_rate: float
    predictions_missing: str | None
    spend_missing: str | None


def _fit_out(fit: AnalyticsFit) -> FitRunOut:
    return FitRunOut(
        fit_id=fit.id,
        program_id=fit.program_id,
        computed_at=fit.computed_at,
        as_of=fit.as_of,
        settings_version=fit.settings_version,
        members=fit.members,
        purchasers=fit.purchasers,
        model=fit.model,
        params=fit.params,
        log_likelihood=fit.log_likelihood,
        spend_params=fit.spend_params,
        spend_log_likelihood=fit.spend_log_likelihood,
        fit_seconds=fit.fit_seconds,
        total_seconds=fit.total_seconds,
        horizon_weeks=fit.horizon_weeks,
        months=fit.months,
        discount_rate=fit.discount_rate,
        predictions_missing=fit.predictions_missing,
        spend_missing=fit.spend_missing,
    )


class ScoresOut(BaseModel):
    member_id: uuid.UUID
    program_id: uuid.UUID
    computed_at: dt.datetime = Field(description="When the scores were computed")
    as_of: dt.datetime = Field(description="The end of the history they were computed on")
    currency: str
    orders: int
    spend: str
    refunds: str
    redemptions: int
    purchase_days: int
    first_order_at: dt.datetime | None
    last_order_at: dt.datetime | None
    first_purchase_day: dt.date | None
    last_purchase_day: dt.date | None
    recency_days: int | None
    frequency: float = Field(description="x: repeat purchase days")
    recency: float = Field(description="t_x: first to last purchase day, weeks")
    T: float = Field(description="first purchase day to as_of, weeks")
    monetary: str
    p_alive: float | None
    expected_purchases: float | None
    expected_spend: str | None
    clv: str | None
    rfm_r: int | None
    rfm_f: int | None
    rfm_m: int | None
    rfm_segment: str | None
    loyalty_label: str
    loyalty_type: str
    loyalty_scores: dict[str, float]
    fit_id: uuid.UUID


def _money(value: Decimal | None, currency: str) -> str | None:
    return None if value is None else to_str(Decimal(value), currency)


def scores_out(row: MemberScore, currency: str) -> ScoresOut:
    return ScoresOut(
        member_id=row.member_id,
        program_id=row.program_id,
        computed_at=row.computed_at,
        as_of=row.as_of,
        currency=currency,
        orders=row.orders,
        spend=to_str(Decimal(row.spend), currency),
        refunds=to_str(Decimal(row.refunds), currency),
        redemptions=row.redemptions,
        purchase_days=row.purchase_days,
        first_order_at=row.first_order_at,
        last_order_at=row.last_order_at,
        first_purchase_day=row.first_purchase_day,
        last_purchase_day=row.last_purchase_day,
        recency_days=row.recency_days,
        frequency=row.frequency,
        recency=row.recency,
        T=row.age,
        monetary=to_str(Decimal(row.monetary), currency),
        p_alive=row.p_alive,
        expected_purchases=row.expected_purchases,
        expected_spend=_money(row.expected_spend, currency),
        clv=_money(row.clv, currency),
        rfm_r=row.rfm_r,
        rfm_f=row.rfm_f,
        rfm_m=row.rfm_m,
        rfm_segment=row.rfm_segment,
        loyalty_label=row.loyalty_label,
        loyalty_type=row.loyalty_type,
        loyalty_scores={
            "habitual": row.habitual,
            "transactional": row.transactional,
            "emotional": row.emotional,
        },
        fit_id=row.fit_id,
    )


def _member(session: SessionDep, tenant_id: uuid.UUID, member_id: uuid.UUID) -> Member:
    m = session.get(Member, member_id)
    if m is None or m.tenant_id != tenant_id:
        raise NotFound(f"member {member_id} not found")
    return m


@router.get("/members/{member_id}/scores", response_model=ScoresOut, responses=problems(403, 404))
def member_scores(
    member_id: uuid.UUID, session: SessionDep, caller: ReadCaller, program_id: ProgramQ = None
) -> ScoresOut:
    """The member's stored analytics (the last recompute; see ``computed_at``). 404
    ``scores_not_computed`` when the program was not recomputed since the member's first
    order (or the member has none)."""
    _member(session, caller.tenant.id, member_id)
    program = programs.get_program(session, caller.tenant.id, program_id)
    row = store.member_score(session, program.id, member_id)
    if row is None:
        raise NotFound(
            f"no stored scores for member {member_id} in this program: the member has no "
            "order, or the program was not recomputed since (POST /v1/analytics/recompute "
            "or `setia analytics recompute`)",
            code="scores_not_computed",
        )
    return scores_out(row, program.currency)


@router.get("/fits/latest", response_model=FitRunOut, responses=problems(403, 404))
def latest_fit(session: SessionDep, caller: ReadCaller, program_id: ProgramQ = None) -> FitRunOut:
    """The program's last recompute: fitted parameters, log-likelihood, fit time."""
    program = programs.get_program(session, caller.tenant.id, program_id)
    fit = store.latest_fit(session, program.id)
    if fit is None:
        raise NotFound("the program's scores were never computed", code="scores_not_computed")
    return _fit_out(fit)


@router.post("/recompute", response_model=FitRunOut, responses=problems(403, 404))
def recompute(session: SessionDep, caller: AdminCaller, program_id: ProgramQ = None) -> FitRunOut:
    """Recompute and store the program's member scores now (as of now). Idempotent: it
    overwrites the program's rows; waits if another recompute of the program is running."""
    program = programs.get_program(session, caller.tenant.id, program_id)
    tenant = caller.tenant

    def run() -> AnalyticsFit:
        res = store.recompute(session, tenant, program)
        assert res.fit is not None
        return res.fit

    return _fit_out(write(session, run))


# --- segments --------------------------------------------------------------------------------


class SegmentIn(BaseModel):
    key: str = Field(
        min_length=1, max_length=64, description="Unique per tenant: a-z, 0-9, _ and -"
    )
    program_id: uuid.UUID | None = Field(
        default=None, description="Whose stored scores the filter reads (default program)"
    )
    names: Localized
    descriptions: Localized | None = None
    filter: dict[str, Any] = Field(description="all/any/not nodes and field/op/value tests")


class SegmentOut(BaseModel):
    id: uuid.UUID
    key: str
    program_id: uuid.UUID
    names: dict[str, Any]
    descriptions: dict[str, Any]
    filter: dict[str, Any]
    version: int
    created_by: str
    created_at: dt.datetime
    updated_at: dt.datetime


class SegmentMember(BaseModel):
    member_id: uuid.UUID
    rfm_segment: str | None
    loyalty_label: str | None
    loyalty_type: str | None
    p_alive: float | None
    clv: str | None
    tags: list[str]
    locale: str | None


class SegmentCount(BaseModel):
    segment_id: uuid.UUID
    members: int
    computed_at: dt.datetime | None = Field(
        description="When the program's stored scores were computed (the filter's stored "
        "fields are as of then); null if never"
    )


def _segment_out(s: AnalyticsSegment) -> SegmentOut:
    return SegmentOut(
        id=s.id,
        key=s.key,
        program_id=s.program_id,
        names=s.names,
        descriptions=s.descriptions or {},
        filter=s.filter,
        version=s.version,
        created_by=s.created_by,
        created_at=s.created_at,
        updated_at=s.updated_at,
    )


def _doc(session: SessionDep, tenant_id: uuid.UUID, body: SegmentIn) -> seg_service.SegmentDoc:
    program: Program = programs.get_program(session, tenant_id, body.program_id)
    return seg_service.SegmentDoc(
        key=body.key,
        names=body.names.model_dump(exclude_none=True),
        descriptions={}
        if body.descriptions is None
        else body.descriptions.model_dump(exclude_none=True),
        filter=body.filter,
        program_id=program.id,
    )


@router.post(
    "/segments",
    response_model=SegmentOut,
    status_code=201,
    responses={**problems(403, 404, 409), **answered(SegmentOut, 200)},
)
def create_segment(
    body: SegmentIn, response: Response, session: SessionDep, caller: AdminCaller
) -> SegmentOut:
    """Save a segment. The key is the natural idempotency key: the same key and body again
    returns the segment (200); the same key with another body is 409 ``segment_key_taken``.
    A bad filter is 422 ``invalid_filter`` with ``field`` naming the node."""
    tenant_id = caller.tenant.id

    def run() -> tuple[AnalyticsSegment, bool]:
        return seg_service.create(
            session, tenant_id, _doc(session, tenant_id, body), actor=caller.actor
        )

    seg, created = write(session, run)
    response.status_code = 201 if created else 200
    return _segment_out(seg)


@router.get("/segments", response_model=Page[SegmentOut], responses=problems(403))
def list_segments(
    session: SessionDep, caller: ReadCaller, limit: Limit = 50, cursor: Cursor = None
) -> Page[SegmentOut]:
    """The tenant's saved segments, by id (cursor-paginated)."""
    found = seg_service.list_segments(
        session, caller.tenant.id, after=decode_cursor(cursor), limit=limit + 1
    )
    more = len(found) > limit
    found = found[:limit]
    return Page(
        data=[_segment_out(s) for s in found],
        next_cursor=encode_cursor(found[-1].id) if more else None,
    )


@router.get("/segments/{segment_id}", response_model=SegmentOut, responses=problems(403, 404))
def get_segment(segment_id: uuid.UUID, session: SessionDep, caller: ReadCaller) -> SegmentOut:
    """One saved segment: key, names, descriptions, filter, version."""
    return _segment_out(seg_service.get(session, caller.tenant.id, segment_id))


@router.put("/segments/{segment_id}", response_model=SegmentOut, responses=problems(403, 404, 409))
def update_segment(
    segment_id: uuid.UUID, body: SegmentIn, session: SessionDep, caller: AdminCaller
) -> SegmentOut:
    """Replace a segment's definition (``version`` goes up when something changed)."""
    tenant_id = caller.tenant.id
    return _segment_out(
        write(
            session,
            lambda: seg_service.update(
                session, tenant_id, segment_id, _doc(session, tenant_id, body)
            ),
        )
    )


@router.delete("/segments/{segment_id}", status_code=204, responses=problems(403, 404))
def delete_segment(segment_id: uuid.UUID, session: SessionDep, caller: AdminCaller) -> Response:
    """Delete a saved segment (204; 404 when it is not the tenant's)."""
    write(session, lambda: seg_service.remove(session, caller.tenant.id, segment_id))
    return Response(status_code=204)


@router.get(
    "/segments/{segment_id}/members",
    response_model=Page[SegmentMember],
    responses=problems(403, 404),
)
def segment_members(
    segment_id: uuid.UUID,
    session: SessionDep,
    caller: ReadCaller,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[SegmentMember]:
    """The segment's members now, by member id (stored fields as of their computed_at)."""
    seg = seg_service.get(session, caller.tenant.id, segment_id)
    program = programs.get_program(session, caller.tenant.id, seg.program_id)
    rows = list(
        seg_service.matching(
            session,
            caller.tenant.id,
            seg.program_id,
            seg.filter,
            after=decode_cursor(cursor),
            limit=limit + 1,
        )
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(
        data=[
            SegmentMember(
                member_id=r["member_id"],
                rfm_segment=r["rfm_segment"],
                loyalty_label=r["loyalty_label"],
                loyalty_type=r["loyalty_type"],
                p_alive=r["p_alive"],
                clv=_money(r["clv"], program.currency),
                tags=r["tags"],
                locale=r["locale"],
            )
            for r in rows
        ],
        next_cursor=encode_cursor(rows[-1]["member_id"]) if more else None,
    )


@router.get(
    "/segments/{segment_id}/count", response_model=SegmentCount, responses=problems(403, 404)
)
def segment_count(segment_id: uuid.UUID, session: SessionDep, caller: ReadCaller) -> SegmentCount:
    """How many members the segment has now."""
    seg = seg_service.get(session, caller.tenant.id, segment_id)
    fit = store.latest_fit(session, seg.program_id)
    return SegmentCount(
        segment_id=seg.id,
        members=seg_service.count(session, caller.tenant.id, segment_id),
        computed_at=None if fit is None else fit.computed_at,
    )
