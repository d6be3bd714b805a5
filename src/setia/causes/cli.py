"""``setia causes ...``: define causes from a file, list them with progress, list and export
a cause's donations, donate for a member, close a cause, print a receipt."""

from __future__ import annotations

import csv
import io
import json
import uuid
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from setia.core.errors import SetiaError

app = typer.Typer(
    help="Good causes members give points to (Tanam Pohon, Sedekah Ramadan).",
    no_args_is_help=True,
)

Tenant = Annotated[str, typer.Option(help="Tenant id")]
ProgramOpt = Annotated[str | None, typer.Option(help="Program id (default: the tenant's default)")]
LocaleOpt = Annotated[str | None, typer.Option(help="id, ms or en (default: the tenant's)")]


def _cli() -> Any:
    from setia import cli

    return cli


def _locale(value: str | None, tenant_locale: str) -> str:
    from setia.causes.api import _locale as pick

    return pick(value, tenant_locale)


@app.command("put")
def put(
    file: Annotated[Path, typer.Argument(help="JSON: one cause (with its code) or a list")],
    tenant: Tenant,
    program: ProgramOpt = None,
) -> None:
    """Create or replace causes from a JSON file; each needs a `code` plus the fields of
    `PUT /v1/causes/{code}`. All or nothing: one bad cause writes none."""
    from setia.causes import service
    from setia.causes.api import cause_out
    from setia.causes.schemas import CauseFileIn

    cli = _cli()
    try:
        raw = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        cli.fail(f"cannot read {file}: {exc}")
    items = raw if isinstance(raw, list) else [raw]
    try:
        bodies = [CauseFileIn.model_validate(item) for item in items]
    except ValidationError as exc:
        cli.fail(f"{file}: {exc}")
    out: list[dict[str, Any]] = []
    try:
        with cli.ready_db().session() as session:
            t, p = cli.tenant_and_program(session, tenant, program)
            for body in bodies:
                cause, created = service.put_cause(session, p, body.code, body, actor="cli")
                donors = service.donors(session, [cause.id]).get(cause.id, 0)
                row = cause_out(cause, p, t, donors, _locale(None, t.locale))
                out.append({"created": created, **row.model_dump(mode="json")})
    except SetiaError as exc:
        cli.fail(exc.detail)
    cli.emit(out)


@app.command("list")
def list_(
    tenant: Tenant,
    program: ProgramOpt = None,
    all_: Annotated[bool, typer.Option("--all", help="Drafts and closed causes too")] = False,
    locale: LocaleOpt = None,
) -> None:
    """The program's causes with their progress (JSON)."""
    from setia.causes import service
    from setia.causes.api import cause_out

    cli = _cli()
    try:
        with cli.ready_db().session() as session:
            t, p = cli.tenant_and_program(session, tenant, program)
            rows = service.list_causes(session, p.id, statuses=None if all_ else ("active",))
            donors = service.donors(session, [c.id for c in rows])
            loc = _locale(locale, t.locale)
            out = [
                cause_out(c, p, t, donors.get(c.id, 0), loc).model_dump(mode="json") for c in rows
            ]
    except SetiaError as exc:
        cli.fail(exc.detail)
    cli.emit(out)


@app.command("donations")
def donations(
    cause: Annotated[str, typer.Argument(help="Cause id or code")],
    tenant: Tenant,
    program: ProgramOpt = None,
    as_csv: Annotated[bool, typer.Option("--csv", help="CSV instead of JSON")] = False,
) -> None:
    """Every donation of a cause, oldest first, with receipt numbers (JSON or CSV)."""
    from setia.causes import service
    from setia.causes.api import donation_out

    cli = _cli()
    rows: list[dict[str, Any]] = []
    try:
        with cli.ready_db().session() as session:
            t, p = cli.tenant_and_program(session, tenant, program)
            c = service.find_cause(session, t.id, p.id, cause)
            after: uuid.UUID | None = None
            while True:
                page = service.cause_donations(session, c, after=after, limit=1000)
                rows += [donation_out(d, c.code).model_dump(mode="json") for d in page]
                if len(page) < 1000:
                    break
                after = page[-1].id
    except SetiaError as exc:
        cli.fail(exc.detail)
    if not as_csv:
        cli.emit(rows)
        return
    columns = [
        "receipt_number",
        "created_at",
        "member_id",
        "points",
        "matched_points",
        "value",
        "matched_value",
        "currency",
        "id",
        "transfer_id",
        "source_type",
        "source_id",
    ]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    typer.echo(buffer.getvalue(), nl=False)


@app.command("donate")
def donate(
    cause: Annotated[str, typer.Argument(help="Cause id or code")],
    tenant: Tenant,
    member: Annotated[str, typer.Option(help="Member id")],
    points: Annotated[int, typer.Option(help="Points to give")],
    program: ProgramOpt = None,
    idempotency_key: Annotated[
        str | None,
        typer.Option(help="Makes a rerun safe; default: a new key (a rerun gives again)"),
    ] = None,
) -> None:
    """Give a member's points to a cause; prints the donation (JSON) with `created`."""
    from setia.causes import service
    from setia.causes.api import donation_out

    cli = _cli()
    member_id = cli._uuid(member, "member")
    key = idempotency_key or f"cli:{uuid.uuid4()}"
    try:
        with cli.ready_db().session() as session:
            t, p = cli.tenant_and_program(session, tenant, program)
            c = service.find_cause(session, t.id, p.id, cause)
            given = service.give(
                session,
                tenant_id=t.id,
                program=p,
                cause_id=c.id,
                member_id=member_id,
                points=points,
                idempotency_key=key,
                actor="cli",
                source_type="cli",
            )
            out = {
                "created": given.created,
                "idempotency_key": key,
                **donation_out(given.donation, c.code).model_dump(mode="json"),
            }
    except SetiaError as exc:
        cli.fail(exc.detail)
    cli.emit(out)


@app.command("close")
def close(
    cause: Annotated[str, typer.Argument(help="Cause id or code")],
    tenant: Tenant,
    program: ProgramOpt = None,
) -> None:
    """Stop a cause taking donations."""
    from setia.causes import service

    cli = _cli()
    try:
        with cli.ready_db().session() as session:
            t, p = cli.tenant_and_program(session, tenant, program)
            c = service.find_cause(session, t.id, p.id, cause)
            service.close_cause(session, t.id, c.id, actor="cli")
            out = {"id": str(c.id), "code": c.code, "status": "closed"}
    except SetiaError as exc:
        cli.fail(exc.detail)
    cli.emit(out)


@app.command("receipt")
def receipt(
    donation: Annotated[str, typer.Argument(help="Donation id")],
    tenant: Tenant,
    locale: LocaleOpt = None,
) -> None:
    """Print a donation's receipt as text (locale: the member's by default)."""
    from setia.causes import service
    from setia.members.models import Member
    from setia.tenants import service as tenants

    cli = _cli()
    try:
        with cli.ready_db().session() as session:
            t = tenants.get_tenant(session, cli._uuid(tenant, "tenant"))
            d = service.get_donation(session, t.id, cli._uuid(donation, "donation"))
            m = session.get(Member, d.member_id)
            loc = _locale(locale, m.locale if m is not None else t.locale)
            text = service.receipt(session, t, d, loc)["text"]
    except SetiaError as exc:
        cli.fail(exc.detail)
    typer.echo(text, nl=False)
