from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query

from setia.core.api import ReadCaller, SessionDep, problems
from setia.finance import service
from setia.finance.schemas import FinanceReport
from setia.programs import service as programs

router = APIRouter(prefix="/v1", tags=["finance"])


@router.get(
    "/programs/{program_id}/finance/report",
    response_model=FinanceReport,
    responses=problems(403, 404, 422),
)
def finance_report(
    program_id: uuid.UUID,
    session: SessionDep,
    caller: ReadCaller,
    from_: Annotated[str, Query(alias="from", description="First local day, YYYY-MM-DD")],
    to: Annotated[str, Query(description="Last local day (inclusive), YYYY-MM-DD")],
) -> dict[str, Any]:
    """Outstanding points by expiry month (liability), breakage, daily point and wallet flows.

    Days are local days in the tenant's time zone; at most 366 per report.
    """
    start = service.parse_day(from_, "from")
    end = service.parse_day(to, "to")
    service.check_period(start, end)
    program = programs.get_program(session, caller.tenant.id, program_id)
    return service.report(session, caller.tenant, program, start=start, end=end)
