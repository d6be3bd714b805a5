"""Per-tenant analytics settings: RFM grid, label and loyalty-type thresholds, CLV model.

One row per tenant in ``analytics_settings`` (the document in force and its ``version``),
every version kept with its author in ``analytics_settings_changes``. A tenant that never
saved settings gets :func:`defaults` (version 0). The document::

    {"rfm_grid": {"5": [5 segment codes for FM = 1..5], "4": [...], ..., "1": [...]},
     "labels": {"loyal_min_days": 3, "loyal_min_tenure_days": 30, "active_p_alive": 0.5,
                "active_days": 45, "new_days": 30, "lost_days": 180, "lost_p_alive": 0.0},
     "loyalty_types": {"min_gaps": 2, "min_weeks": 4, "min_orders": 3,
                       "redemptions_per_order_full": 0.5,
                       "advocacy_full": 3, "primary_min_score": 0.5,
                       "advocacy_types": ["review.submitted"]},
     "model": {"horizon_weeks": 12.0, "months": 12, "discount_rate": 0.01},
     "recompute_interval_days": 1}

A saved document is complete: a section or field left out of a PUT takes its default.
The on-demand endpoints use these settings unless a query parameter overrides one value.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from setia.analytics import labels, members, rfm
from setia.analytics.tables import AnalyticsSettings, AnalyticsSettingsChange
from setia.core.errors import Conflict, InvalidInput
from setia.core.time import utcnow
from setia.programs.models import Program
from setia.tenants.models import Tenant

LABEL_FIELDS = (
    "loyal_min_days",
    "loyal_min_tenure_days",
    "active_p_alive",
    "active_days",
    "new_days",
    "lost_days",
    "lost_p_alive",
)
TYPE_FIELDS = (
    "min_gaps",
    "min_weeks",
    "min_orders",
    "redemptions_per_order_full",
    "advocacy_full",
    "primary_min_score",
    "advocacy_types",
)
MODEL_FIELDS = ("horizon_weeks", "months", "discount_rate")

_TH = labels.Thresholds()


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LabelsIn(_Doc):
    loyal_min_days: int = Field(_TH.loyal_min_days, ge=1, le=1000)
    loyal_min_tenure_days: int = Field(_TH.loyal_min_tenure_days, ge=0, le=10000)
    active_p_alive: float = Field(_TH.active_p_alive, ge=0, le=1)
    active_days: int = Field(_TH.active_days, ge=0, le=10000)
    new_days: int = Field(_TH.new_days, ge=0, le=10000)
    lost_days: int = Field(_TH.lost_days, ge=1, le=10000)
    lost_p_alive: float = Field(_TH.lost_p_alive, ge=0, le=1)


class LoyaltyTypesIn(_Doc):
    min_gaps: int = Field(_TH.min_gaps, ge=1, le=1000)
    min_weeks: int = Field(_TH.min_weeks, ge=1, le=520)
    min_orders: int = Field(_TH.min_orders, ge=1, le=1000)
    redemptions_per_order_full: float = Field(_TH.redemptions_per_order_full, gt=0, le=100)
    advocacy_full: int = Field(_TH.advocacy_full, ge=1, le=10000)
    primary_min_score: float = Field(_TH.primary_min_score, ge=0, le=1)
    advocacy_types: list[str] = Field(
        default_factory=lambda: list(_TH.advocacy_types), min_length=1, max_length=20
    )


class ModelIn(_Doc):
    horizon_weeks: float = Field(12.0, gt=0, le=520, description="Weeks of expected purchases")
    months: int = Field(12, ge=1, le=120, description="CLV horizon in months")
    discount_rate: float = Field(0.01, ge=0, le=1, description="Monthly discount rate")


def _default_grid_doc() -> dict[str, list[str]]:
    return {str(r): [rfm.DEFAULT_GRID[(r, fm)] for fm in range(1, 6)] for r in range(5, 0, -1)}


class SettingsIn(_Doc):
    """A tenant's analytics settings; anything left out takes its default."""

    rfm_grid: dict[str, list[str]] = Field(
        default_factory=_default_grid_doc,
        description='Segment code per R ("1".."5") and FM (list position 1..5)',
    )
    labels: LabelsIn = Field(default_factory=LabelsIn)
    loyalty_types: LoyaltyTypesIn = Field(default_factory=LoyaltyTypesIn)
    model: ModelIn = Field(default_factory=ModelIn)
    recompute_interval_days: int = Field(
        1,
        ge=0,
        le=366,
        description="Stored scores older than this many local days are "
        "recomputed by `setia jobs run`; 0 turns the job off for the tenant",
    )


@dataclasses.dataclass(frozen=True)
class Settings:
    grid: dict[tuple[int, int], str]
    thresholds: labels.Thresholds
    horizon_weeks: float
    months: int
    discount_rate: float
    recompute_interval_days: int
    version: int
    document: dict[str, Any]


def _bad(field: str, message: str, code: str = "bad_setting") -> InvalidInput:
    return InvalidInput(f"{field}: {message}", code=code, extra={"field": field})


def _grid(doc: Mapping[str, Any]) -> dict[tuple[int, int], str]:
    keys = set(doc)
    wanted = {"1", "2", "3", "4", "5"}
    if keys != wanted:
        missing = sorted(wanted - keys)
        extra = sorted(keys - wanted)
        what = f"missing R {missing}" if missing else f"unknown R {extra}"
        raise _bad("rfm_grid", f"needs one row per R score 1..5 ({what})", "bad_rfm_grid")
    out: dict[tuple[int, int], str] = {}
    for r in range(1, 6):
        row = doc[str(r)]
        if not isinstance(row, list) or len(row) != 5:
            raise _bad(f"rfm_grid.{r}", "needs 5 segment codes, for FM = 1..5", "bad_rfm_grid")
        for i, code in enumerate(row):
            if code not in rfm.SEGMENTS:
                raise _bad(
                    f"rfm_grid.{r}[{i}]",
                    f"unknown segment {code!r}; use one of {', '.join(rfm.SEGMENTS)}",
                    "bad_rfm_grid",
                )
            out[(r, i + 1)] = str(code)
    return out


def parse(doc: Mapping[str, Any] | SettingsIn, version: int = 0) -> Settings:
    """Validate a settings document; InvalidInput names the bad field (``extra.field``)."""
    if isinstance(doc, SettingsIn):
        data = doc
    else:
        try:
            data = SettingsIn.model_validate(dict(doc))
        except ValidationError as exc:
            err = exc.errors()[0]
            field = ".".join(str(p) for p in err["loc"])
            raise _bad(field, err["msg"], "validation_error") from None
    grid = _grid(data.rfm_grid)
    lab, typ = data.labels, data.loyalty_types
    try:
        th = labels.Thresholds(
            **lab.model_dump(),
            **{**typ.model_dump(), "advocacy_types": tuple(typ.advocacy_types)},
        )
    except InvalidInput as exc:
        name = str(exc.extra.get("field", ""))
        section = "loyalty_types" if name in TYPE_FIELDS else "labels"
        raise _bad(f"{section}.{name}", exc.detail, "bad_threshold") from None
    document = data.model_dump(mode="json")
    return Settings(
        grid=grid,
        thresholds=th,
        horizon_weeks=data.model.horizon_weeks,
        months=data.model.months,
        discount_rate=data.model.discount_rate,
        recompute_interval_days=data.recompute_interval_days,
        version=version,
        document=document,
    )


def defaults() -> Settings:
    return parse(SettingsIn())


def get(session: Session, tenant_id: uuid.UUID) -> Settings:
    """The tenant's settings in force (defaults, version 0, if never saved)."""
    cache: dict[uuid.UUID, Settings] = session.info.setdefault("analytics_settings", {})
    if tenant_id in cache:
        return cache[tenant_id]
    row = session.get(AnalyticsSettings, tenant_id)
    found = defaults() if row is None else parse(row.settings, row.version)
    cache[tenant_id] = found
    return found


def put(
    session: Session,
    tenant_id: uuid.UUID,
    doc: Mapping[str, Any] | SettingsIn,
    *,
    actor: str,
    expected_version: int | None = None,
) -> tuple[Settings, bool]:
    """Save the tenant's settings; (settings, changed). The same document again changes
    nothing (no new version), so a retried PUT is harmless. ``expected_version``, when
    given, must be the version in force (409 ``settings_version_conflict`` otherwise)."""
    new = parse(doc)
    q = select(AnalyticsSettings).where(AnalyticsSettings.tenant_id == tenant_id)
    if session.get_bind().dialect.name == "postgresql":
        q = q.with_for_update()
    row = session.execute(q).scalar_one_or_none()
    current = 0 if row is None else row.version
    session.info.pop("analytics_settings", None)
    if row is not None and row.settings == new.document:
        return dataclasses.replace(new, version=current), False
    if row is None and new.document == defaults().document and expected_version in (None, 0):
        return new, False
    if expected_version is not None and expected_version != current:
        raise Conflict(
            f"the settings are at version {current}, not {expected_version}; read them again",
            code="settings_version_conflict",
            extra={"version": current},
        )
    version = current + 1
    now = utcnow()
    if row is None:
        session.add(
            AnalyticsSettings(
                tenant_id=tenant_id,
                version=version,
                settings=new.document,
                updated_by=actor,
                updated_at=now,
            )
        )
    else:
        row.version = version
        row.settings = new.document
        row.updated_by = actor
        row.updated_at = now
    session.add(
        AnalyticsSettingsChange(
            tenant_id=tenant_id, version=version, settings=new.document, actor=actor, changed_at=now
        )
    )
    session.flush()
    return dataclasses.replace(new, version=version), True


def history(session: Session, tenant_id: uuid.UUID) -> list[AnalyticsSettingsChange]:
    return list(
        session.execute(
            select(AnalyticsSettingsChange)
            .where(AnalyticsSettingsChange.tenant_id == tenant_id)
            .order_by(AnalyticsSettingsChange.version.desc())
        )
        .scalars()
        .all()
    )


# --- the on-demand endpoints: stored settings, query parameters override ---------------------


def thresholds(
    session: Session, tenant_id: uuid.UUID, query: Mapping[str, Any], **given: Any
) -> labels.Thresholds:
    """The tenant's thresholds, with the values of ``given`` whose name is in ``query``
    (a query parameter the caller actually sent) taking precedence."""
    base = get(session, tenant_id).thresholds
    over = {k: v for k, v in given.items() if k in query}
    if "advocacy_type" in query and "advocacy_types" in given:
        over["advocacy_types"] = given["advocacy_types"]
    return dataclasses.replace(base, **over) if over else base


def resegment(a: members.Analysis, grid: dict[tuple[int, int], str]) -> members.Analysis:
    """The analysis with its RFM segments taken from ``grid`` (scores are unchanged)."""
    if grid == rfm.DEFAULT_GRID:
        return a
    s = a.scores
    segs = [
        rfm.segment(int(r), int(f), int(m), grid) for r, f, m in zip(s.r, s.f, s.m, strict=True)
    ]
    return dataclasses.replace(a, scores=dataclasses.replace(s, segments=segs))


def analyse(
    session: Session,
    tenant: Tenant,
    program: Program,
    query: Mapping[str, Any] | None = None,
    *,
    as_of: dt.datetime | None = None,
    horizon_weeks: float | None = None,
    months: int | None = None,
    discount_rate: float | None = None,
) -> members.Analysis:
    """``members.analyse`` with the tenant's grid and model settings; a model value is taken
    from the arguments only when its name is in ``query`` (or no ``query`` is given and the
    argument is not None)."""
    st = get(session, tenant.id)

    def pick(name: str, value: Any, stored: Any) -> Any:
        if value is None:
            return stored
        if query is not None and name not in query:
            return stored
        return value

    a = members.analyse(
        session,
        tenant,
        program,
        as_of=as_of,
        horizon_weeks=pick("horizon_weeks", horizon_weeks, st.horizon_weeks),
        months=pick("months", months, st.months),
        discount_rate=pick("discount_rate", discount_rate, st.discount_rate),
    )
    return resegment(a, st.grid)
