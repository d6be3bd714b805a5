"""`setia badges`: the operator's commands for the badges domain: define badges and
challenges from a file, list, show and archive them, a member's progress, a leaderboard."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from setia.core.errors import SetiaError

app = typer.Typer(
    help="Badges and challenges: definitions, progress, leaderboards.", no_args_is_help=True
)

Tenant = Annotated[str, typer.Option(help="Tenant id")]
ProgramOpt = Annotated[str | None, typer.Option(help="Program id (default: the tenant's default)")]
LocaleOpt = Annotated[str | None, typer.Option(help="id, ms or en (default: the tenant's)")]
BadgeArg = Annotated[str, typer.Argument(help="The badge's id or code")]


def _cli() -> Any:
    from setia import cli

    return cli


@app.command("create")
def create(
    file: Annotated[Path, typer.Argument(help="JSON: one definition or a list (POST /v1/badges)")],
    tenant: Tenant,
    program: ProgramOpt = None,
) -> None:
    """Create badges and challenges from a JSON file. All or nothing: one bad definition
    writes none. A definition already there with the same body is left as it is."""
    from setia.badges import service
    from setia.badges.api import definition_out
    from setia.badges.schemas import DefinitionIn

    cli = _cli()
    try:
        raw = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        cli.fail(f"cannot read {file}: {exc}")
    items = raw if isinstance(raw, list) else [raw]

    def which(n: int) -> str:
        """The definition an error is about, for a file of many: its place and code."""
        if len(items) == 1:
            return f"{file}"
        code = items[n].get("code") if isinstance(items[n], dict) else None
        return f"{file}, definition {n + 1} of {len(items)}" + (f" ({code!r})" if code else "")

    bodies: list[DefinitionIn] = []
    for n, item in enumerate(items):
        try:
            bodies.append(DefinitionIn.model_validate(item))
        except ValidationError as exc:
            cli.fail(f"{which(n)}: {exc}; nothing was written")
    out: list[dict[str, Any]] = []
    current: int | None = None  # the definition being created, when an error comes
    try:
        with cli.ready_db().session() as session:
            t, p = cli.tenant_and_program(session, tenant, program)
            for n, body in enumerate(bodies):
                current = n
                d, created = service.create_definition(session, t, p, body)
                row = definition_out(d, t, t.locale).model_dump(mode="json")
                out.append({"created": created, **row})
            session.commit()
    except SetiaError as exc:
        where = "" if current is None else f"{which(current)}: "
        cli.fail(f"{where}{exc.detail}" + ("; nothing was written" if where else ""))
    cli.emit(out)


@app.command("list")
def list_(
    tenant: Tenant,
    program: ProgramOpt = None,
    all_: Annotated[bool, typer.Option("--all", help="Archived ones too")] = False,
    locale: LocaleOpt = None,
) -> None:
    """The program's badges and challenges (JSON)."""
    from setia.badges import service
    from setia.badges.api import _locale, definition_out

    cli = _cli()
    try:
        with cli.ready_db().session() as session:
            t, p = cli.tenant_and_program(session, tenant, program)
            rows = service.list_definitions(session, p.id, status=None if all_ else "active")
            loc = _locale(locale, t.locale)
            out = [definition_out(d, t, loc).model_dump(mode="json") for d in rows]
    except SetiaError as exc:
        cli.fail(exc.detail)
    cli.emit(out)


@app.command("show")
def show(badge: BadgeArg, tenant: Tenant, locale: LocaleOpt = None) -> None:
    """One definition (JSON)."""
    from setia.badges import service
    from setia.badges.api import _locale, definition_out

    cli = _cli()
    try:
        with cli.ready_db().session() as session:
            t, _p = cli.tenant_and_program(session, tenant, None)
            d = service.get_definition(session, t.id, badge)
            out = definition_out(d, t, _locale(locale, t.locale)).model_dump(mode="json")
    except SetiaError as exc:
        cli.fail(exc.detail)
    cli.emit(out)


@app.command("archive")
def archive(badge: BadgeArg, tenant: Tenant) -> None:
    """Stop counting events toward a definition; what members earned stays."""
    from setia.badges import service
    from setia.badges.api import definition_out

    cli = _cli()
    try:
        with cli.ready_db().session() as session:
            t, _p = cli.tenant_and_program(session, tenant, None)
            d = service.archive_definition(session, service.get_definition(session, t.id, badge))
            out = definition_out(d, t, t.locale).model_dump(mode="json")
            session.commit()
    except SetiaError as exc:
        cli.fail(exc.detail)
    cli.emit(out)


@app.command("progress")
def progress(
    member: Annotated[str, typer.Argument(help="The member's id or external id")],
    tenant: Tenant,
    program: ProgramOpt = None,
    locale: LocaleOpt = None,
) -> None:
    """What a member earned and where they stand ("3 of 5"), as GET /v1/members/{id}/badges."""
    from setia.badges import service
    from setia.badges.api import _locale
    from setia.members import service as members

    cli = _cli()
    try:
        with cli.ready_db().session() as session:
            t, p = cli.tenant_and_program(session, tenant, program)
            try:
                found = members.find_member(session, t, member_id=uuid.UUID(member))
            except ValueError:
                found = members.find_member(session, t, external_id=member)
            if found is None:
                cli.fail(f"no member {member!r} in this tenant")
                raise typer.Exit(1)
            body = service.member_badges(session, t, p, found, _locale(locale, found.locale))
    except SetiaError as exc:
        cli.fail(exc.detail)
    cli.emit(body)


@app.command("leaderboard")
def leaderboard(
    badge: BadgeArg,
    tenant: Tenant,
    period: Annotated[
        str | None, typer.Option(help="all, or YYYY-MM of a recurring challenge (default: now)")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=100)] = 10,
) -> None:
    """Members who opted in, best first, by display name only."""
    from setia.badges import service

    cli = _cli()
    try:
        with cli.ready_db().session() as session:
            t, _p = cli.tenant_and_program(session, tenant, None)
            d = service.get_definition(session, t.id, badge)
            key = (
                service.check_period(d, period) if period else service.current_period(d, t.timezone)
            )
            rows = service.leaderboard(session, d, key, limit)
    except SetiaError as exc:
        cli.fail(exc.detail)
    cli.emit(
        {
            "code": d.code,
            "period": key,
            "target": service._number_text(Decimal(d.target)),
            "data": rows,
        }
    )
