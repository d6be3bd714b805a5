"""``setia memberships ...``: plans, the monthly report, and the due-work job."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import typer

from setia.core.errors import SetiaError

app = typer.Typer(help="Paid memberships (Member Plus / VIP plans).", no_args_is_help=True)

Tenant = Annotated[str, typer.Option(help="Tenant id")]
ProgramOpt = Annotated[str | None, typer.Option(help="Program id (default: the tenant's default)")]


def _cli() -> Any:
    from setia import cli

    return cli


@app.command("plans")
def plans(tenant: Tenant, program: ProgramOpt = None) -> None:
    """List the program's plans with their price, period and benefits."""
    from setia.memberships import service

    cli = _cli()
    try:
        with cli.ready_db().session() as session:
            _t, p = cli.tenant_and_program(session, tenant, program)
            out = [
                {"id": str(plan.id), "revision": plan.revision, **service.plan_definition(plan)}
                for plan in service.list_plans(session, p.id)
            ]
    except SetiaError as exc:
        cli.fail(exc.detail)
    cli.emit(out)


@app.command("report")
def report(
    tenant: Tenant,
    from_: Annotated[str, typer.Option("--from", help="First month, YYYY-MM")],
    to: Annotated[str, typer.Option(help="Last month, YYYY-MM")],
    program: ProgramOpt = None,
) -> None:
    """Paid members, new, churned and revenue by calendar month (tenant's time zone)."""
    from setia.memberships import service

    cli = _cli()
    try:
        with cli.ready_db().session() as session:
            t, p = cli.tenant_and_program(session, tenant, program)
            months = service.report(session, t, p, from_month=from_, to_month=to)
    except SetiaError as exc:
        cli.fail(exc.detail)
    typer.echo(f"{'month':8} {'paid':>6} {'new':>5} {'churn':>6} {'rate':>7}  revenue")
    for m in months:
        rate = f"{float(m['churn_rate']) * 100:.1f}%" if m["churn_rate"] is not None else "-"
        revenue = ", ".join(f"{c} {v}" for c, v in m["revenue"].items()) or "-"
        typer.echo(
            f"{m['month']:8} {m['paid_members']:>6} {m['new']:>5} {m['churned']:>6} "
            f"{rate:>7}  {revenue}"
        )


@app.command("run-due")
def run_due(
    now: Annotated[
        str | None, typer.Option(help="Run as of this ISO time (with offset); default now")
    ] = None,
) -> None:
    """Advance subscriptions whose period ended (cancel, past due, lapse) and give due
    monthly bonus points. Safe to run twice or from several workers."""
    from setia.memberships.jobs import run_due as run

    cli = _cli()
    at = None
    if now:
        try:
            at = datetime.fromisoformat(now)
        except ValueError:
            cli.fail(f"{now!r} is not an ISO time such as 2026-11-23T00:00:00+07:00")
        if at is None or at.tzinfo is None:
            cli.fail("give --now with its offset, e.g. 2026-11-23T00:00:00+07:00")
    cli.emit(run(cli.ready_db(), at).as_dict())
