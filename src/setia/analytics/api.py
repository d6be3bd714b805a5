"""HTTP API of member analytics: per-member summary, RFM segments and predictions.

Everything is computed on demand from the service's data, with the tenant's stored analytics
settings (``setia.analytics.settings``) unless a query parameter overrides one value.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from setia.analytics import export, models, rfm, store
from setia.analytics import labels as labelling
from setia.analytics import members as service
from setia.analytics import settings as tenant_settings
from setia.analytics.store_api import ScoresOut, scores_out
from setia.core.api import (
    Cursor,
    Limit,
    Page,
    ReadCaller,
    SessionDep,
    decode_cursor,
    encode_cursor,
    problems,
)
from setia.core.errors import NotFound
from setia.core.money import to_str
from setia.members.models import Member
from setia.programs import service as programs

router = APIRouter(prefix="/v1/analytics", tags=["analytics"])


class Segment(StrEnum):
    """RFM segment codes (the keys of ``rfm.SEGMENTS``)."""

    champions = "champions"
    loyal = "loyal"
    potential_loyalists = "potential_loyalists"
    new = "new"
    promising = "promising"
    need_attention = "need_attention"
    about_to_sleep = "about_to_sleep"
    at_risk = "at_risk"
    cant_lose_them = "cant_lose_them"
    hibernating = "hibernating"
    lost = "lost"


class FitOut(BaseModel):
    model: str = Field(description="bgnbd or gamma_gamma")
    params: dict[str, float]
    log_likelihood: float
    customers: int = Field(description="Members the model was fitted on")
    converged: bool
    at_bound: list[str] = Field(description="Parameters stuck at the search bounds")


class SummaryOut(BaseModel):
    currency: str
    orders: int = Field(description="Orders at or before as_of, refunded ones included")
    spend: str = Field(description="Sum of order amounts minus refunds")
    refunds: str = Field(description="Sum of refunded amounts")
    redemptions: int = Field(description="Posted REDEEM transfers from the member's accounts")
    first_order_at: dt.datetime | None
    last_order_at: dt.datetime | None
    purchase_days: int = Field(description="Distinct local days with a purchase (net > 0)")
    first_purchase_day: dt.date | None
    last_purchase_day: dt.date | None
    recency_days: int | None = Field(description="Local days from the last purchase to as_of")
    x: float = Field(description="Repeat purchases: purchase days − 1")
    t_x: float = Field(description="First to last purchase day, weeks")
    T: float = Field(description="First purchase day to as_of's local day, weeks")
    monetary: str = Field(description="Mean net spend of the repeat purchase days; 0 if x = 0")


class RfmOut(BaseModel):
    r: int = Field(ge=1, le=5)
    f: int = Field(ge=1, le=5)
    m: int = Field(ge=1, le=5)
    fm: int = Field(ge=1, le=5, description="(F + M) / 2 rounded half up")
    segment: str
    segment_name: str


class PredictionOut(BaseModel):
    p_alive: float
    expected_purchases: float = Field(description="Expected purchase days in horizon_weeks")
    horizon_weeks: float
    expected_spend: str | None = Field(description="Gamma-Gamma expected spend per purchase")
    clv: str | None = Field(description="Discounted value over `months`")
    months: int
    discount_rate: float = Field(description="Monthly discount rate")
    spend_missing: str | None = Field(description="Why expected_spend and clv are null")


class LoyaltyOut(BaseModel):
    scores: dict[str, float] = Field(description="habitual, transactional, emotional (0-1)")
    primary: str = Field(description="The highest type, or none when all are low")
    evidence: dict[str, Any]


class LabelOut(BaseModel):
    label: str = Field(description="none, dissatisfied, new, lost, loyal, at_risk or happy")
    evidence: dict[str, Any]


class MemberAnalyticsOut(BaseModel):
    member_id: uuid.UUID
    program_id: uuid.UUID
    as_of: dt.datetime
    timezone: str
    summary: SummaryOut
    rfm: RfmOut | None = Field(description="Null when the member has no purchase")
    predictions: PredictionOut | None
    predictions_missing: str | None = Field(description="Why predictions are null")
    label: LabelOut
    loyalty: LoyaltyOut
    stored: ScoresOut | None = Field(
        default=None,
        description="The stored scores of the program's last recompute (as of their "
        "computed_at), what rules and segments read; null if never computed",
    )


class Range(BaseModel):
    min: int | str
    max: int | str


class SegmentOut(BaseModel):
    segment: str
    name: str
    members: int
    share: float = Field(description="Of the members with a purchase")
    r: Range
    f: Range
    m: Range
    recency_days: Range
    orders: Range
    spend: Range


class RfmReportOut(BaseModel):
    program_id: uuid.UUID
    as_of: dt.datetime
    timezone: str
    members: int = Field(description="Members with at least one purchase")
    segments: list[SegmentOut]
    fit: FitOut | None
    spend_fit: FitOut | None
    predictions_missing: str | None
    spend_missing: str | None


class MemberListItem(BaseModel):
    member_id: uuid.UUID
    segment: str
    r: int
    f: int
    m: int
    recency_days: int
    orders: int
    spend: str
    p_alive: float | None
    expected_purchases: float | None
    clv: str | None
    label: str
    loyalty_type: str


AsOf = Annotated[
    dt.datetime | None,
    Query(description="End of the period, with an offset (default: now)"),
]
Horizon = Annotated[float, Query(gt=0, le=520, description="Weeks for expected purchases")]
Months = Annotated[int, Query(ge=1, le=120, description="CLV horizon in months")]
Discount = Annotated[float, Query(ge=0, le=1, description="Monthly discount rate for CLV")]


class Label(StrEnum):
    none = "none"
    dissatisfied = "dissatisfied"
    new = "new"
    lost = "lost"
    loyal = "loyal"
    at_risk = "at_risk"
    happy = "happy"


class LoyaltyType(StrEnum):
    habitual = "habitual"
    transactional = "transactional"
    emotional = "emotional"
    none = "none"


def thresholds_params(
    request: Request,
    session: SessionDep,
    caller: ReadCaller,
    loyal_min_days: Annotated[int, Query(ge=1, le=1000, description="N purchase days")] = 3,
    loyal_min_tenure_days: Annotated[int, Query(ge=0, le=10000)] = 30,
    active_p_alive: Annotated[float, Query(ge=0, le=1)] = 0.5,
    active_days: Annotated[int, Query(ge=0, le=10000)] = 45,
    new_days: Annotated[int, Query(ge=0, le=10000)] = 30,
    lost_days: Annotated[int, Query(ge=1, le=10000)] = 180,
    lost_p_alive: Annotated[float, Query(ge=0, le=1, description="0 = off")] = 0.0,
    min_gaps: Annotated[int, Query(ge=1, le=1000)] = 2,
    min_weeks: Annotated[int, Query(ge=1, le=520)] = 4,
    min_orders: Annotated[int, Query(ge=1, le=1000)] = 3,
    redemptions_per_order_full: Annotated[float, Query(gt=0, le=100)] = 0.5,
    advocacy_full: Annotated[int, Query(ge=1, le=10000)] = 3,
    primary_min_score: Annotated[float, Query(ge=0, le=1)] = 0.5,
    advocacy_type: Annotated[
        list[str] | None, Query(description="Event types that count as advocacy (repeatable)")
    ] = None,
) -> labelling.Thresholds:
    """The tenant's stored label thresholds; a query parameter that is sent overrides one."""
    return tenant_settings.thresholds(
        session,
        caller.tenant.id,
        request.query_params,
        loyal_min_days=loyal_min_days,
        loyal_min_tenure_days=loyal_min_tenure_days,
        active_p_alive=active_p_alive,
        active_days=active_days,
        new_days=new_days,
        lost_days=lost_days,
        lost_p_alive=lost_p_alive,
        min_gaps=min_gaps,
        min_weeks=min_weeks,
        min_orders=min_orders,
        redemptions_per_order_full=redemptions_per_order_full,
        advocacy_full=advocacy_full,
        primary_min_score=primary_min_score,
        advocacy_types=tuple(advocacy_type) if advocacy_type else ("review.submitted",),
    )


ThresholdsDep = Annotated[labelling.Thresholds, Depends(thresholds_params)]


class LabelReportOut(BaseModel):
    program_id: uuid.UUID
    as_of: dt.datetime
    timezone: str
    members: int = Field(description="Members with an order or a redemption")
    labels: dict[str, int]
    loyalty_types: dict[str, int] = Field(description="Members per primary loyalty type")
    thresholds: dict[str, Any]
    predictions_missing: str | None = Field(description="Why P(alive) was not used")


def _money(value: float | Decimal, currency: str) -> str:
    return to_str(Decimal(str(value)), currency)


def fit_out(fit: models.Fit | None) -> FitOut | None:
    if fit is None:
        return None
    return FitOut(
        model=fit.model,
        params=fit.params,
        log_likelihood=fit.log_likelihood,
        customers=fit.customers,
        converged=fit.converged,
        at_bound=fit.at_bound,
    )


def _summary(a: service.Analysis, row: service.MemberRow) -> SummaryOut:
    cur = a.summary.currency
    return SummaryOut(
        currency=cur,
        orders=row.orders,
        spend=_money(row.spend, cur),
        refunds=_money(row.refunds, cur),
        redemptions=row.redemptions,
        first_order_at=row.first_order_at,
        last_order_at=row.last_order_at,
        purchase_days=row.purchase_days,
        first_purchase_day=row.first_purchase_day,
        last_purchase_day=row.last_purchase_day,
        recency_days=a.recency_days(row),
        x=row.x,
        t_x=row.t_x,
        T=row.T,
        monetary=_money(row.monetary, cur),
    )


def _prediction(a: service.Analysis, i: int) -> PredictionOut | None:
    p = a.predictions
    if p.p_alive is None or p.expected_purchases is None:
        return None
    cur = a.summary.currency
    return PredictionOut(
        p_alive=float(p.p_alive[i]),
        expected_purchases=float(p.expected_purchases[i]),
        horizon_weeks=p.horizon_weeks,
        expected_spend=None if p.expected_spend is None else _money(p.expected_spend[i], cur),
        clv=None if p.clv is None else _money(p.clv[i], cur),
        months=p.months,
        discount_rate=p.discount_rate,
        spend_missing=p.spend_reason,
    )


@router.get(
    "/members/{member_id}",
    response_model=MemberAnalyticsOut,
    responses=problems(403, 404, 422),
)
def member_analytics(
    member_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    caller: ReadCaller,
    thresholds: ThresholdsDep,
    program_id: uuid.UUID | None = None,
    as_of: AsOf = None,
    horizon_weeks: Horizon = 12.0,
    months: Months = 12,
    discount_rate: Discount = 0.01,
) -> MemberAnalyticsOut:
    """One member's summary (orders, spend, refunds, redemptions, BTYD fields), RFM scores
    and segment, and predictions (P(alive), expected purchases, CLV) from models fitted on
    the program's members."""
    tenant = caller.tenant
    found = session.execute(
        select(Member.id).where(Member.id == member_id, Member.tenant_id == tenant.id)
    ).scalar_one_or_none()
    if found is None:
        raise NotFound(f"member {member_id} not found")
    program = programs.get_program(session, tenant.id, program_id)
    a = tenant_settings.analyse(
        session,
        tenant,
        program,
        request.query_params,
        as_of=as_of,
        horizon_weeks=horizon_weeks,
        months=months,
        discount_rate=discount_rate,
    )
    idx = a.summary.index.get(member_id)
    row = (
        a.summary.rows[idx]
        if idx is not None
        else service.MemberRow(
            member_id, 0, Decimal(0), Decimal(0), 0, None, None, 0, None, None, 0.0, 0.0, 0.0, 0.0
        )
    )
    pos = a.position.get(member_id)
    rfm_out: RfmOut | None = None
    prediction: PredictionOut | None = None
    missing: str | None
    if pos is None:
        missing = "the member has no purchase: the models apply from the first purchase"
    else:
        s = a.scores
        seg = s.segments[pos]
        rfm_out = RfmOut(
            r=int(s.r[pos]),
            f=int(s.f[pos]),
            m=int(s.m[pos]),
            fm=rfm.fm_score(int(s.f[pos]), int(s.m[pos])),
            segment=seg,
            segment_name=rfm.SEGMENTS[seg],
        )
        prediction = _prediction(a, pos)
        missing = a.predictions.reason
    found_label = labelling.classify(session, a, thresholds, member_id=member_id).get(member_id)
    if found_label is None:
        found_label = labelling.MemberLabel(
            member_id, "none", {"rule": "no order"}, dict.fromkeys(labelling.TYPES, 0.0), "none"
        )
    return MemberAnalyticsOut(
        member_id=member_id,
        program_id=program.id,
        as_of=a.summary.as_of,
        timezone=a.summary.timezone,
        summary=_summary(a, row),
        rfm=rfm_out,
        predictions=prediction,
        predictions_missing=missing,
        label=LabelOut(label=found_label.label, evidence=found_label.evidence),
        loyalty=LoyaltyOut(
            scores=found_label.scores,
            primary=found_label.primary,
            evidence=found_label.loyalty_evidence,
        ),
        stored=_stored(session, program.id, program.currency, member_id),
    )


def _stored(
    session: Session, program_id: uuid.UUID, currency: str, member_id: uuid.UUID
) -> ScoresOut | None:
    row = store.member_score(session, program_id, member_id)
    return None if row is None else scores_out(row, currency)


def segment_report(a: service.Analysis) -> list[SegmentOut]:
    """Members per segment (in the order of ``rfm.SEGMENTS``; empty segments left out)."""
    s = a.scores
    n = len(a.purchasers)
    cur = a.summary.currency
    out: list[SegmentOut] = []
    for code, name in rfm.SEGMENTS.items():
        idx = [i for i, seg in enumerate(s.segments) if seg == code]
        if not idx:
            continue
        rows = [a.purchasers[i] for i in idx]
        spends = [r.spend for r in rows]
        out.append(
            SegmentOut(
                segment=code,
                name=name,
                members=len(idx),
                share=len(idx) / n,
                r=Range(min=int(s.r[idx].min()), max=int(s.r[idx].max())),
                f=Range(min=int(s.f[idx].min()), max=int(s.f[idx].max())),
                m=Range(min=int(s.m[idx].min()), max=int(s.m[idx].max())),
                recency_days=Range(
                    min=int(s.recency_days[idx].min()), max=int(s.recency_days[idx].max())
                ),
                orders=Range(min=min(r.orders for r in rows), max=max(r.orders for r in rows)),
                spend=Range(min=_money(min(spends), cur), max=_money(max(spends), cur)),
            )
        )
    return out


FormatQ = Annotated[
    export.ExportFormat,
    Query(
        alias="format",
        description="json (default); csv or parquet download one row per member as a file",
    ),
]


def _download(
    fmt: export.ExportFormat,
    name: str,
    currency: str,
    spec: tuple[tuple[str, str], ...],
    rows: list[tuple[Any, ...]],
) -> Response:
    return Response(
        content=export.render(fmt, currency, spec, rows),
        media_type=export.MEDIA_TYPES[fmt],
        headers={"Content-Disposition": f'attachment; filename="{name}.{fmt.value}"'},
    )


def _rfm_rows(a: service.Analysis) -> list[tuple[Any, ...]]:
    s, pr, cur = a.scores, a.predictions, a.summary.currency
    return [
        (
            str(row.member_id),
            s.segments[i],
            int(s.r[i]),
            int(s.f[i]),
            int(s.m[i]),
            int(s.recency_days[i]),
            row.orders,
            export.money(row.spend, cur),
            export.money(row.refunds, cur),
            row.x,
            row.t_x,
            row.T,
            export.money(row.monetary, cur),
            None if pr.p_alive is None else float(pr.p_alive[i]),
            None if pr.expected_purchases is None else float(pr.expected_purchases[i]),
            None if pr.clv is None else export.money(float(pr.clv[i]), cur),
        )
        for i, row in enumerate(a.purchasers)
    ]


@router.get(
    "/rfm",
    response_model=RfmReportOut,
    responses={**problems(403, 404, 422), **export.openapi_content("Members per segment.")},
)
def rfm_report(
    session: SessionDep,
    caller: ReadCaller,
    program_id: uuid.UUID | None = None,
    as_of: AsOf = None,
    fmt: FormatQ = export.ExportFormat.json,
) -> RfmReportOut | Response:
    """Members per RFM segment (count, share, score and value ranges) and the BG/NBD and
    Gamma-Gamma fits of the program. With `format=csv|parquet`: one row per member with a
    purchase (segment, R, F, M, summary fields, predictions) as a file."""
    program = programs.get_program(session, caller.tenant.id, program_id)
    a = tenant_settings.analyse(session, caller.tenant, program, as_of=as_of)
    if fmt is not export.ExportFormat.json:
        return _download(fmt, "rfm", a.summary.currency, export.RFM_COLUMNS, _rfm_rows(a))
    return RfmReportOut(
        program_id=program.id,
        as_of=a.summary.as_of,
        timezone=a.summary.timezone,
        members=len(a.purchasers),
        segments=segment_report(a),
        fit=fit_out(a.predictions.fit),
        spend_fit=fit_out(a.predictions.spend_fit),
        predictions_missing=a.predictions.reason,
        spend_missing=a.predictions.spend_reason,
    )


@router.get(
    "/members",
    response_model=Page[MemberListItem],
    responses={**problems(403, 404, 422), **export.openapi_content("A page of members.")},
)
def list_members(
    session: SessionDep,
    caller: ReadCaller,
    thresholds: ThresholdsDep,
    program_id: uuid.UUID | None = None,
    segment: Annotated[Segment | None, Query(description="Only this RFM segment")] = None,
    label: Annotated[Label | None, Query(description="Only this label")] = None,
    loyalty_type: Annotated[
        LoyaltyType | None, Query(description="Only this primary loyalty type")
    ] = None,
    as_of: AsOf = None,
    limit: Limit = 50,
    cursor: Cursor = None,
    fmt: FormatQ = export.ExportFormat.json,
) -> Page[MemberListItem] | Response:
    """Members with a purchase, by member id, with their segment, scores and predictions.
    With `format=csv|parquet`: every member that matches the filters, as a file (`limit`
    and `cursor` do not apply)."""
    program = programs.get_program(session, caller.tenant.id, program_id)
    paged = fmt is export.ExportFormat.json
    after = decode_cursor(cursor) if paged else None
    a = tenant_settings.analyse(session, caller.tenant, program, as_of=as_of)
    s, p, cur = a.scores, a.predictions, a.summary.currency
    labelled = labelling.classify(session, a, thresholds)
    items: list[MemberListItem] = []
    for i, row in enumerate(a.purchasers):  # sorted by member id
        if after is not None and row.member_id <= after:
            continue
        if segment is not None and s.segments[i] != segment.value:
            continue
        lab = labelled[row.member_id]
        if label is not None and lab.label != label.value:
            continue
        if loyalty_type is not None and lab.primary != loyalty_type.value:
            continue
        items.append(
            MemberListItem(
                member_id=row.member_id,
                segment=s.segments[i],
                r=int(s.r[i]),
                f=int(s.f[i]),
                m=int(s.m[i]),
                recency_days=int(s.recency_days[i]),
                orders=row.orders,
                spend=_money(row.spend, cur),
                p_alive=None if p.p_alive is None else float(p.p_alive[i]),
                expected_purchases=(
                    None if p.expected_purchases is None else float(p.expected_purchases[i])
                ),
                clv=None if p.clv is None else _money(p.clv[i], cur),
                label=lab.label,
                loyalty_type=lab.primary,
            )
        )
        if paged and len(items) > limit:
            break
    if not paged:
        rows = [
            (
                str(it.member_id),
                it.segment,
                it.r,
                it.f,
                it.m,
                it.recency_days,
                it.orders,
                export.money(Decimal(it.spend), cur),
                it.p_alive,
                it.expected_purchases,
                None if it.clv is None else export.money(Decimal(it.clv), cur),
                it.label,
                it.loyalty_type,
            )
            for it in items
        ]
        return _download(fmt, "members", cur, export.MEMBER_COLUMNS, rows)
    more = len(items) > limit
    items = items[:limit]
    return Page(data=items, next_cursor=encode_cursor(items[-1].member_id) if more else None)


@router.get(
    "/labels",
    response_model=LabelReportOut,
    responses={**problems(403, 404, 422), **export.openapi_content("Members per label.")},
)
def label_report(
    session: SessionDep,
    caller: ReadCaller,
    thresholds: ThresholdsDep,
    program_id: uuid.UUID | None = None,
    as_of: AsOf = None,
    fmt: FormatQ = export.ExportFormat.json,
) -> LabelReportOut | Response:
    """Members per happy-vs-loyal label and per primary loyalty type, with the thresholds
    used (the tenant's stored settings; query parameters override single values). With
    `format=csv|parquet`: one row per member (label, loyalty type and scores, evidence) as
    a file."""
    program = programs.get_program(session, caller.tenant.id, program_id)
    a = tenant_settings.analyse(session, caller.tenant, program, as_of=as_of)
    labelled = labelling.classify(session, a, thresholds)
    if fmt is not export.ExportFormat.json:
        rows = [
            (
                str(m.member_id),
                m.label,
                m.primary,
                m.scores["habitual"],
                m.scores["transactional"],
                m.scores["emotional"],
                m.evidence["purchase_days"],
                m.evidence["recency_days"],
                m.evidence["tenure_days"],
                m.evidence["p_alive"],
            )
            for m in labelled.values()
        ]
        return _download(fmt, "labels", a.summary.currency, export.LABEL_COLUMNS, rows)
    c = labelling.counts(labelled)
    return LabelReportOut(
        program_id=program.id,
        as_of=a.summary.as_of,
        timezone=a.summary.timezone,
        members=len(labelled),
        labels=c["labels"],
        loyalty_types=c["loyalty_types"],
        thresholds=thresholds.as_dict(),
        predictions_missing=a.predictions.reason,
    )
