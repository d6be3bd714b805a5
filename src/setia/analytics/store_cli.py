"""``setia analytics recompute`` and ``setia analytics settings``: stored member scores and
per-tenant settings from the command line (registered on the analytics Typer app)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from setia.core import jsontext
from setia.core.errors import SetiaError


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def _print(data: Any) -> None:
    typer.echo(jsontext.dumps(data))


def recompute_command(
    tenant: Annotated[str, typer.Option("--tenant", help="Tenant id")],
    program: Annotated[
        str | None,
        typer.Option("--program", help="Program id (default: every program of the tenant)"),
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="End of the history, ISO time with offset (default: now)"),
    ] = None,
) -> None:
    """Recompute and store every member's scores (RFM, P(alive), CLV, labels) now."""
    from sqlalchemy import select

    from setia.analytics import store
    from setia.cli import ready_db, tenant_and_program
    from setia.programs.models import Program

    end: dt.datetime | None = None
    if as_of is not None:
        try:
            end = dt.datetime.fromisoformat(as_of)
        except ValueError:
            _fail(f"--as-of {as_of!r} is not an ISO time, e.g. 2026-03-01T00:00:00+07:00")
        if end.tzinfo is None:
            _fail("--as-of needs a time zone offset, e.g. 2026-03-01T00:00:00+07:00")
    db = ready_db()
    out: list[dict[str, Any]] = []
    with db.session() as session:
        try:
            t, p = tenant_and_program(session, tenant, program)
            chosen = (
                [p]
                if program
                else list(
                    session.execute(
                        select(Program).where(Program.tenant_id == t.id).order_by(Program.id)
                    ).scalars()
                )
            )
        except SetiaError as exc:
            _fail(exc.detail)
    for prog in chosen:
        with db.session() as session:
            try:
                res = store.recompute(session, t, prog, as_of=end)
            except SetiaError as exc:
                _fail(exc.detail)
            out.append(res.as_dict())
    _print(out[0] if program else out)


def settings_command(
    tenant: Annotated[str, typer.Option("--tenant", help="Tenant id")],
    set_file: Annotated[
        Path | None,
        typer.Option(
            "--set", help="Save the settings in this JSON file (fields left out: defaults)"
        ),
    ] = None,
) -> None:
    """Print the tenant's analytics settings, or save new ones with --set FILE."""
    from setia.analytics import settings as service
    from setia.cli import ready_db, tenant_and_program

    db = ready_db()
    with db.session() as session:
        try:
            t, _ = tenant_and_program(session, tenant, None)
            if set_file is not None:
                try:
                    doc = json.loads(set_file.read_text(encoding="utf-8"))
                except (OSError, ValueError) as exc:
                    _fail(f"cannot read {set_file}: {exc}")
                if not isinstance(doc, dict):
                    _fail(f"{set_file} must hold a JSON object")
                service.put(session, t.id, doc, actor="cli")
                session.info.pop("analytics_settings", None)
            st = service.get(session, t.id)
        except SetiaError as exc:
            extra = exc.extra.get("field")
            _fail(f"{exc.detail}" + (f" (field {extra})" if extra else ""))
    _print({"version": st.version, "settings": st.document})
