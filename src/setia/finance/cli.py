"""``setia finance report``: liability, breakage and daily flows, as JSON or CSV."""

from __future__ import annotations

import csv
import sys
from typing import Annotated, Any

import typer

from setia.core.errors import SetiaError

app = typer.Typer(help="Finance: liability, breakage, daily totals.", no_args_is_help=True)

Tenant = Annotated[str, typer.Option(help="Tenant id")]
ProgramOpt = Annotated[str | None, typer.Option(help="Program id (default: the tenant's default)")]


def _cli() -> Any:
    from setia import cli

    return cli


def daily_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    from setia.finance.service import DAILY_POINTS, DAILY_WALLET

    return [
        {
            "date": day["date"],
            **{k: day["points"][k] for k in DAILY_POINTS},
            **{f"wallet_{k}": day["wallet"][k] for k in DAILY_WALLET},
        }
        for day in data["daily"]
    ]


@app.command("report")
def report(
    tenant: Tenant,
    from_: Annotated[str, typer.Option("--from", help="First local day, YYYY-MM-DD")],
    to: Annotated[str, typer.Option(help="Last local day (inclusive), YYYY-MM-DD")],
    program: ProgramOpt = None,
    as_csv: Annotated[
        bool, typer.Option("--csv", help="CSV instead of JSON (see --section)")
    ] = False,
    section: Annotated[
        str, typer.Option(help="With --csv: daily (one row per day) or outstanding (by month)")
    ] = "daily",
) -> None:
    """Outstanding points by expiry month, breakage, and daily totals (tenant's time zone)."""
    from setia.finance import service

    cli = _cli()
    if section not in ("daily", "outstanding"):
        cli.fail("--section must be daily or outstanding")
    try:
        start = service.parse_day(from_, "from")
        end = service.parse_day(to, "to")
        with cli.ready_db().session() as session:
            t, p = cli.tenant_and_program(session, tenant, program)
            data = service.report(session, t, p, start=start, end=end)
    except SetiaError as exc:
        cli.fail(exc.detail)
    if not as_csv:
        cli.emit(data)
        return
    rows = daily_rows(data) if section == "daily" else data["outstanding"]["by_expiry_month"]
    fields = list(rows[0]) if rows else ["month", "points", "held", "value"]
    writer = csv.DictWriter(sys.stdout, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
