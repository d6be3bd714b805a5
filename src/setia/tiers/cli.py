"""``setia tiers ...``: load a tier structure, run the evaluation, show a member's tier."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from setia.core.errors import SetiaError

app = typer.Typer(
    help="Tiers: structure, nightly evaluation, members' standing.", no_args_is_help=True
)

Tenant = Annotated[str, typer.Option(help="Tenant id")]
ProgramOpt = Annotated[str | None, typer.Option(help="Program id (default: the tenant's default)")]


def _cli() -> Any:
    from setia import cli

    return cli


@app.command("set")
def set_tiers(
    file: Annotated[Path, typer.Argument(help="JSON: the body of PUT .../tier-set")],
    tenant: Tenant,
    program: ProgramOpt = None,
) -> None:
    """Create or replace the program's tier structure from a JSON file."""
    from setia.tiers import service
    from setia.tiers.schemas import TierSetIn

    cli = _cli()
    try:
        body = TierSetIn.model_validate(json.loads(file.read_text()))
    except (OSError, json.JSONDecodeError) as exc:
        cli.fail(f"cannot read {file}: {exc}")
    except ValidationError as exc:
        cli.fail(
            "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}"
                for e in exc.errors(include_url=False)
            )
        )
    try:
        with cli.ready_db().session() as session:
            t, p = cli.tenant_and_program(session, tenant, program)
            ts = service.put_tier_set(session, t, p, body, actor="cli")
            session.commit()
            out = {
                "tier_set_id": ts.id,
                "revision": ts.revision,
                "tiers": [x.code for x in body.tiers],
            }
    except SetiaError as exc:
        cli.fail(exc.detail)
    cli.emit(out)


@app.command("evaluate")
def evaluate(
    tenant: Tenant,
    program: ProgramOpt = None,
    on: Annotated[
        str | None, typer.Option(help="Evaluation day YYYY-MM-DD (default: today, local)")
    ] = None,
) -> None:
    """Run the tier evaluation now (the worker does it daily). Safe to repeat."""
    from setia.tiers import service

    cli = _cli()
    try:
        day = date.fromisoformat(on) if on else None
    except ValueError:
        cli.fail(f"--on {on!r} is not a date; use YYYY-MM-DD")
    db = cli.ready_db()
    try:
        with db.session() as session:
            t, p = cli.tenant_and_program(session, tenant, program)
            tenant_id, program_id = t.id, p.id
        report = service.evaluate(db, tenant_id, program_id, day)
    except SetiaError as exc:
        cli.fail(exc.detail)
    cli.emit(asdict(report))


@app.command("show")
def show(
    member: Annotated[str, typer.Argument(help="Member id")],
    tenant: Tenant,
    program: ProgramOpt = None,
    locale: Annotated[str | None, typer.Option(help="id, ms or en")] = None,
) -> None:
    """A member's tier, progress to the next one and what the next evaluation will do."""
    from setia.members import service as members
    from setia.tiers import view

    cli = _cli()
    try:
        with cli.ready_db().session() as session:
            t, p = cli.tenant_and_program(session, tenant, program)
            m = members.get_member(session, t.id, cli._uuid(member, "member"))
            out = view.member_view(session, t, p, m, locale=locale)
    except SetiaError as exc:
        cli.fail(exc.detail)
    cli.emit(out)


@app.command("summary")
def summary(tenant: Tenant, program: ProgramOpt = None) -> None:
    """Members per tier."""
    from setia.tiers import service, view

    cli = _cli()
    try:
        with cli.ready_db().session() as session:
            t, p = cli.tenant_and_program(session, tenant, program)
            out = view.summary(session, t, service.require_structure(session, p.id))
    except SetiaError as exc:
        cli.fail(exc.detail)
    cli.emit(out)
