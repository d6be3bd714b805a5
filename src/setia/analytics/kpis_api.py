"""``GET /v1/analytics/kpis`` and ``GET /v1/analytics/cohorts`` (read scope, read-only)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from setia.analytics import kpis as service
from setia.core.api import ReadCaller, SessionDep, problems
from setia.programs import service as programs

router = APIRouter(prefix="/v1/analytics", tags=["analytics"])


class Out(BaseModel):
    model_config = ConfigDict(populate_by_name=True)


class MemberCounts(Out):
    active: int = Field(description="Members with at least one purchase in the period")
    new: int = Field(description="Active members whose first purchase ever is in the period")
    returning: int = Field(description="Active members who purchased before the period")
    repeat: int = Field(description="Active members with purchases on 2+ local days")
    active_previous_period: int = Field(
        description="Members with a purchase in the previous period of equal length"
    )
    retained: int = Field(description="Of those, members active again in this period")


class PointsOut(Out):
    issued: int = Field(description="Points earned (EARN and positive ADJUST), as in finance")
    redeemed: int = Field(description="Points spent, net of returns, as in finance")
    expired: int
    redemption_rate: str | None = Field(description="redeemed / issued; null if none issued")


class KpiReport(Out):
    program_id: str
    currency: str
    timezone: str
    from_: str = Field(alias="from")
    to: str
    days: int
    previous_from: str
    previous_to: str
    generated_at: str
    members: MemberCounts
    orders: int = Field(description="Purchases in the period (fully refunded orders excluded)")
    net_sales: str = Field(description="Sum of the orders' amount minus refunded amount")
    repeat_purchase_rate: str | None = Field(description="repeat / active; null if no active")
    purchase_frequency: str | None = Field(description="orders / active; null if no active")
    average_order_value: str | None = Field(description="net_sales / orders; null if none")
    retention_rate: str | None = Field(
        description="retained / active_previous_period; null if nobody was active before"
    )
    churn_rate: str | None = Field(description="1 - retention_rate")
    points: PointsOut
    member_vs_non_member: dict[str, str] | None = Field(
        description="Always null: Setia records member purchases only (see the note)"
    )
    member_vs_non_member_note: str


class CohortMonth(Out):
    offset: int = Field(description="Months after the cohort month (0 = the cohort month)")
    month: str
    members: int = Field(description="Cohort members with a purchase in that month")
    share: str | None = Field(description="members / size, 4 places")


class CohortRow(Out):
    cohort: str = Field(description="Local month of the first purchase, YYYY-MM")
    size: int
    months: list[CohortMonth]


class CohortReport(Out):
    program_id: str
    timezone: str
    from_month: str
    to_month: str
    generated_at: str
    cohorts: list[CohortRow]


@router.get(
    "/kpis",
    response_model=KpiReport,
    response_model_by_alias=True,
    responses=problems(403, 404, 422),
)
def get_kpis(
    session: SessionDep,
    caller: ReadCaller,
    from_: Annotated[str, Query(alias="from", description="First local day, YYYY-MM-DD")],
    to: Annotated[str, Query(description="Last local day (inclusive), YYYY-MM-DD")],
    program_id: Annotated[
        uuid.UUID | None, Query(description="Program (default: the tenant's default)")
    ] = None,
) -> dict[str, Any]:
    """Active, new, returning and repeat members, purchase frequency, average order value,
    retention and churn, points issued/redeemed/expired over a period of local days.

    At most 731 days; 422 `invalid_period` otherwise. Definitions: docs/analytics.md "KPIs".
    """
    start = service.parse_day(from_, "from")
    end = service.parse_day(to, "to")
    service.check_period(start, end)
    program = programs.get_program(session, caller.tenant.id, program_id)
    return service.kpis(session, caller.tenant, program, start=start, end=end)


@router.get(
    "/cohorts",
    response_model=CohortReport,
    responses=problems(403, 404, 422),
)
def get_cohorts(
    session: SessionDep,
    caller: ReadCaller,
    from_month: Annotated[str, Query(description="First cohort month, YYYY-MM")],
    to_month: Annotated[str, Query(description="Last month observed, YYYY-MM")],
    program_id: Annotated[
        uuid.UUID | None, Query(description="Program (default: the tenant's default)")
    ] = None,
) -> dict[str, Any]:
    """Cohort retention matrix by local month of first purchase (at most 60 months)."""
    first = service.parse_month(from_month, "from_month")
    last = service.parse_month(to_month, "to_month")
    service.check_months(first, last)
    program = programs.get_program(session, caller.tenant.id, program_id)
    return service.cohorts(session, caller.tenant, program, first_month=first, last_month=last)
