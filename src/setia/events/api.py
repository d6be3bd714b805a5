from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Request, Response
from sqlalchemy.orm import Session

from setia.core.api import PosCaller, ReadCaller, SessionDep, answered, problems, write
from setia.core.config import get_settings
from setia.core.errors import InvalidInput
from setia.events import batch, service
from setia.events.schemas import BatchIn, BatchOut, EventIn, EventResult
from setia.tenants.models import Tenant

router = APIRouter(prefix="/v1/events", tags=["events"])


@router.post(
    "",
    response_model=EventResult,
    status_code=201,
    responses={**problems(403, 404, 409, 413), **answered(EventResult, 200)},
)
def record_event(event: EventIn, session: SessionDep, caller: PosCaller, response: Response) -> Any:
    """Record what a member did. Sending the same `id` again returns the first result (200);
    the same `id` with a different payload is 409 `event_id_reused`."""
    recorded = write(session, lambda: service.record_event(session, caller.tenant, event))
    response.status_code = 201 if recorded.created else 200
    return recorded.result


def record_batch(session: Session, tenant: Tenant, raw_events: list[dict[str, Any]]) -> BatchOut:
    """Each event answered as if recorded on its own (its own savepoint): one bad event never
    spoils the others. Plain purchases and custom events are written set-based
    (``setia.events.batch``); the answers and rows are the same as one by one."""
    return batch.record_batch(session, tenant, raw_events)


validation_problem = batch.validation_problem


@router.post("/batch", response_model=BatchOut, responses=problems(403, 413))
def record_events(
    request: Request,
    session: SessionDep,
    caller: PosCaller,
    body: BatchIn = Body(
        openapi_examples={
            "two purchases": {
                "value": {
                    "events": [
                        {
                            "id": "pos-1",
                            "type": "purchase",
                            "member": {"phone": "081234567890"},
                            "order_id": "A-1",
                            "amount": "50000",
                            "currency": "IDR",
                        },
                        {
                            "id": "pos-2",
                            "type": "purchase",
                            "member": {"external_id": "C-7"},
                            "order_id": "A-2",
                            "amount": "125000",
                            "currency": "IDR",
                        },
                    ]
                }
            }
        }
    ),
) -> Response:
    """Record up to 1,000 events in one transaction; the answer lists each event's own status
    (201 recorded, 200 duplicate, 4xx with problem details)."""
    limit = get_settings().batch_max_events
    if len(body.events) > limit:
        raise InvalidInput(
            f"a batch holds at most {limit} events; got {len(body.events)}", code="batch_too_large"
        )
    out = write(session, lambda: record_batch(session, caller.tenant, body.events))
    for item in out.results:
        if item.error is not None:
            # which event of the request the problem is about (a JSON pointer into the body)
            item.error["instance"] = f"{request.url.path}#/events/{item.index}"
    # Encoded here from the typed answer: FastAPI would validate the 1,000 results again
    # against ``BatchOut`` before encoding them (the response model still documents it).
    return Response(content=out.model_dump_json(), media_type="application/json")


@router.get("/{event_id}", responses=problems(403, 404))
def get_event(event_id: str, session: SessionDep, caller: ReadCaller) -> dict[str, Any]:
    """An event as recorded: its payload, the awards it made with the rule and revision of
    each, and the rules that did not fire with their reasons. `event_id` is Setia's id or
    your own client event id."""
    return service.get_event(session, caller.tenant, event_id)
