from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Response
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from setia.core.api import PosCaller, ReadCaller, SessionDep, problems, write
from setia.core.config import get_settings
from setia.core.errors import InvalidInput, SetiaError
from setia.events import service
from setia.events.schemas import BatchIn, BatchItem, BatchOut, EventIn, EventResult
from setia.tenants.models import Tenant

router = APIRouter(prefix="/v1/events", tags=["events"])


@router.post(
    "", response_model=EventResult, status_code=201, responses=problems(403, 404, 409, 413)
)
def record_event(event: EventIn, session: SessionDep, caller: PosCaller, response: Response) -> Any:
    """Record what a member did. Sending the same `id` again returns the first result (200);
    the same `id` with a different payload is 409 `event_id_reused`."""
    recorded = write(session, lambda: service.record_event(session, caller.tenant, event))
    response.status_code = 201 if recorded.created else 200
    return recorded.result


def validation_problem(exc: ValidationError) -> dict[str, Any]:
    errors = [
        {"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]}
        for e in exc.errors(include_url=False)
    ]
    return {
        "type": "https://setia.dev/problems/validation_error",
        "title": "Invalid payload",
        "status": 422,
        "detail": "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'event'}: {e['msg']}" for e in errors
        ),
        "code": "validation_error",
        "errors": errors,
    }


def record_batch(session: Session, tenant: Tenant, raw_events: list[dict[str, Any]]) -> BatchOut:
    """Each event in its own savepoint: one bad event never spoils the others."""
    results: list[BatchItem] = []
    created = duplicates = failed = 0
    for index, raw in enumerate(raw_events):
        try:
            event = EventIn.model_validate(raw)
        except ValidationError as exc:
            results.append(BatchItem(index=index, status=422, error=validation_problem(exc)))
            failed += 1
            continue
        for attempt in range(2):
            try:
                with session.begin_nested():
                    recorded = service.record_event(session, tenant, event)
                results.append(
                    BatchItem(
                        index=index,
                        status=201 if recorded.created else 200,
                        result=EventResult.model_validate(recorded.result),
                    )
                )
                created += recorded.created
                duplicates += not recorded.created
                break
            except SetiaError as exc:
                results.append(BatchItem(index=index, status=exc.status, error=exc.problem()))
                failed += 1
                break
            except IntegrityError:
                # A concurrent request recorded the same event id first; read its result.
                session.info.clear()
                if attempt == 1:
                    raise
    return BatchOut(created=created, duplicates=duplicates, failed=failed, results=results)


@router.post("/batch", response_model=BatchOut, responses=problems(403, 413))
def record_events(
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
) -> BatchOut:
    """Record up to 1,000 events in one transaction; the answer lists each event's own status
    (201 recorded, 200 duplicate, 4xx with problem details)."""
    limit = get_settings().batch_max_events
    if len(body.events) > limit:
        raise InvalidInput(
            f"a batch holds at most {limit} events; got {len(body.events)}", code="batch_too_large"
        )
    return write(session, lambda: record_batch(session, caller.tenant, body.events))


@router.get("/{event_id}", responses=problems(403, 404))
def get_event(event_id: str, session: SessionDep, caller: ReadCaller) -> dict[str, Any]:
    """An event as recorded: its payload, the awards it made with the rule and revision of
    each, and the rules that did not fire with their reasons. `event_id` is Setia's id or
    your own client event id."""
    return service.get_event(session, caller.tenant, event_id)
