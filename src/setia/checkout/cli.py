"""``setia checkout ...``: quote, pay with points, capture and release (JSON output)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import typer

from setia.core.errors import SetiaError

app = typer.Typer(help="Paying with points at checkout.", no_args_is_help=True)

Tenant = Annotated[str, typer.Option(help="Tenant id")]
ProgramOpt = Annotated[str | None, typer.Option(help="Program id (default: the tenant's default)")]


def _cli() -> Any:
    from setia import cli

    return cli


def _id(value: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        _cli().fail(f"{value!r} is not a valid {what} id")
        raise  # unreachable: fail() exits


@app.command("quote")
def quote(
    member: Annotated[str, typer.Argument(help="Member id")],
    tenant: Tenant,
    total: Annotated[str, typer.Option(help="Order total, e.g. 85000")],
    currency: Annotated[str | None, typer.Option(help="Default: the program's")] = None,
    program: ProgramOpt = None,
) -> None:
    """How many points MEMBER can use on an order of --total, and what they are worth."""
    from pydantic import ValidationError

    from setia.checkout import service
    from setia.checkout.schemas import QuoteIn

    cli = _cli()
    try:
        with cli.ready_db().session() as session:
            t, p = cli.tenant_and_program(session, tenant, program)
            body = QuoteIn(
                member_id=_id(member, "member"),
                order_total=total,
                currency=currency or p.currency,
                program_id=p.id,
            )
            out = service.quote(session, t, body)
    except SetiaError as exc:
        cli.fail(exc.detail)
    except ValidationError as exc:
        cli.fail(str(exc))
    cli.emit(out)


@app.command("pay")
def pay(
    member: Annotated[str, typer.Argument(help="Member id")],
    order: Annotated[str, typer.Argument(help="Order id")],
    tenant: Tenant,
    total: Annotated[str, typer.Option(help="Order total, e.g. 85000")],
    points: Annotated[int | None, typer.Option(help="Points to hold")] = None,
    amount: Annotated[str | None, typer.Option(help="Or the amount to pay with points")] = None,
    currency: Annotated[str | None, typer.Option(help="Default: the program's")] = None,
    timeout_minutes: Annotated[int | None, typer.Option(help="Hold timeout")] = None,
    idempotency_key: Annotated[str | None, typer.Option(help="Makes a retry safe")] = None,
    program: ProgramOpt = None,
) -> None:
    """Hold points of MEMBER towards ORDER (capture or release it afterwards)."""
    from pydantic import ValidationError

    from setia.checkout import service
    from setia.checkout.schemas import PointsPaymentIn

    cli = _cli()
    try:
        with cli.ready_db().session() as session:
            t, p = cli.tenant_and_program(session, tenant, program)
            body = PointsPaymentIn(
                member_id=_id(member, "member"),
                order_id=order,
                points=points,
                amount=amount,
                order_total=total,
                currency=currency or p.currency,
                timeout_minutes=timeout_minutes,
                program_id=p.id,
            )
            payment, created = service.create_payment(
                session, t, body, actor="cli", idempotency_key=idempotency_key
            )
            out = service.payment_dict(payment, created)
    except SetiaError as exc:
        cli.fail(exc.detail)
    except ValidationError as exc:
        cli.fail(str(exc))
    cli.emit(out)


@app.command("capture")
def capture(
    payment: Annotated[str, typer.Argument(help="Points payment id")],
    tenant: Tenant,
    points: Annotated[int | None, typer.Option(help="Capture fewer points")] = None,
) -> None:
    """Spend the points held by a payment (all, or --points of them)."""
    from setia.checkout import service

    cli = _cli()
    try:
        with cli.ready_db().session() as session:
            t, _p = cli.tenant_and_program(session, tenant, None)
            found, _created = service.capture(session, t, _id(payment, "payment"), points=points)
            out = service.payment_dict(found)
    except SetiaError as exc:
        cli.fail(exc.detail)
    cli.emit(out)


@app.command("release")
def release(
    payment: Annotated[str, typer.Argument(help="Points payment id")],
    tenant: Tenant,
) -> None:
    """Give the points held by a payment back to the member (the order was cancelled)."""
    from setia.checkout import service

    cli = _cli()
    try:
        with cli.ready_db().session() as session:
            t, _p = cli.tenant_and_program(session, tenant, None)
            found, _changed = service.release(session, t, _id(payment, "payment"))
            out = service.payment_dict(found)
    except SetiaError as exc:
        cli.fail(exc.detail)
    cli.emit(out)
