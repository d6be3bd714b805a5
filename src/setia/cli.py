"""The ``setia`` command line. Entry points own the transaction: they commit, services don't."""

from __future__ import annotations

import json
import sys
import time
import uuid
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from setia.analytics import cli as analytics_cli
from setia.badges import cli as badges_cli
from setia.causes import cli as causes_cli
from setia.checkout import cli as checkout_cli
from setia.core import jsontext
from setia.core.db import Database, get_database
from setia.core.errors import SetiaError
from setia.core.migrate import check_schema, upgrade
from setia.core.runtime import tune_gc
from setia.coupons import cli as coupons_cli
from setia.finance import cli as finance_cli
from setia.memberships import cli as memberships_cli
from setia.referrals import cli as referrals_cli
from setia.rewards import cli as rewards_cli
from setia.rules import cli as rules_cli
from setia.tiers import cli as tiers_cli
from setia.wallet import cli as wallet_cli
from setia.web import cli as staff_cli

app = typer.Typer(
    help="Setia: customer loyalty, self-hosted.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
tenant_app = typer.Typer(help="Tenants (businesses).", no_args_is_help=True)
key_app = typer.Typer(help="API keys.", no_args_is_help=True)
import_app = typer.Typer(help="Load history from files.", no_args_is_help=True)
ledger_app = typer.Typer(help="The points ledger.", no_args_is_help=True)
jobs_app = typer.Typer(help="Due work: pending points, expiry, holds.", no_args_is_help=True)
for sub, name in (
    (db_app, "db"),
    (tenant_app, "tenant"),
    (key_app, "key"),
    (import_app, "import"),
    (ledger_app, "ledger"),
    (jobs_app, "jobs"),
):
    app.add_typer(sub, name=name)
app.add_typer(rules_cli.app, name="rules")
app.add_typer(memberships_cli.app, name="memberships")
app.add_typer(tiers_cli.app, name="tiers")
app.add_typer(coupons_cli.app, name="coupons")
app.add_typer(causes_cli.app, name="causes")
app.add_typer(rewards_cli.app, name="rewards")
app.add_typer(checkout_cli.app, name="checkout")
app.add_typer(wallet_cli.app, name="wallet")
app.add_typer(finance_cli.app, name="finance")
app.add_typer(analytics_cli.app, name="analytics")
app.add_typer(referrals_cli.app, name="referrals")
app.add_typer(badges_cli.app, name="badges")
app.add_typer(staff_cli.app, name="staff")


def fail(message: str, code: int = 1) -> NoReturn:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code)


def ready_db() -> Database:
    """The configured database, after checking its schema is current."""
    db = get_database()
    try:
        check_schema(db.engine)
    except SetiaError as exc:
        fail(exc.detail, 2)
    except Exception as exc:
        fail(f"cannot open the database: {exc}", 2)
    return db


def emit(data: Any) -> None:
    typer.echo(jsontext.dumps(data))


def tenant_and_program(session: Any, tenant: str, program: str | None) -> tuple[Any, Any]:
    """The ``--tenant`` and ``--program`` options of a domain's commands, resolved (the
    tenant's default program when ``--program`` is left out)."""
    from setia.programs import service as programs
    from setia.tenants import service as tenants

    t = tenants.get_tenant(session, _uuid(tenant, "tenant"))
    return t, programs.get_program(session, t.id, _uuid(program, "program") if program else None)


def _uuid(value: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        fail(f"{value!r} is not a valid {what} id")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the schema to the latest version."""
    db = get_database()
    url = db.engine.url.render_as_string(hide_password=False)
    try:
        upgrade(url)
    except Exception as exc:
        fail(f"migration failed: {exc}")
    typer.echo(f"schema is current on {db.engine.url.render_as_string(hide_password=True)}")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes (PostgreSQL)")] = 1,
) -> None:
    """Run the HTTP API (interactive docs at /docs)."""
    import uvicorn

    ready_db()
    typer.echo(f"Setia API on http://{host}:{port}  (docs: http://{host}:{port}/docs)")
    uvicorn.run("setia.asgi:app", host=host, port=port, workers=workers, log_level="info")


@tenant_app.command("create")
def tenant_create(
    name: str,
    country: Annotated[str, typer.Option(help="ISO 3166 code, e.g. ID or MY")],
    currency: Annotated[str, typer.Option(help="ISO 4217 code, e.g. IDR or MYR")],
    timezone: Annotated[str, typer.Option(help="IANA zone, e.g. Asia/Jakarta")],
    locale: Annotated[str | None, typer.Option(help="id, ms or en (default from country)")] = None,
) -> None:
    """Create a tenant with its default program and an admin API key (shown once)."""
    from setia.tenants import service

    db = ready_db()
    try:
        with db.session() as session:
            new = service.create_tenant(
                session,
                name=name,
                country=country,
                currency=currency,
                timezone=timezone,
                locale=locale,
            )
            out = {
                "tenant_id": new.tenant.id,
                "name": new.tenant.name,
                "program_id": new.program.id,
                "api_key_id": new.key.id,
                "api_key": new.secret,
            }
    except SetiaError as exc:
        fail(exc.detail)
    emit(out)


@key_app.command("create")
def key_create(
    tenant: Annotated[str, typer.Option(help="Tenant id")],
    scope: Annotated[str, typer.Option(help="admin, pos or read")] = "pos",
    name: Annotated[str, typer.Option(help="A label, e.g. 'till 3'")] = "",
) -> None:
    """Create an API key; the key is printed once."""
    from setia.tenants import service

    db = ready_db()
    try:
        with db.session() as session:
            key, secret = service.create_key(
                session, _uuid(tenant, "tenant"), scope=scope, name=name
            )
            out = {"api_key_id": key.id, "scope": key.scope, "api_key": secret}
    except SetiaError as exc:
        fail(exc.detail)
    emit(out)


@key_app.command("revoke")
def key_revoke(key_id: str) -> None:
    """Revoke an API key; it stops working at once."""
    from setia.tenants import service

    db = ready_db()
    try:
        with db.session() as session:
            key = service.revoke_key(session, _uuid(key_id, "API key"))
            out = {"api_key_id": key.id, "revoked_at": key.revoked_at}
    except SetiaError as exc:
        fail(exc.detail)
    emit(out)


@tenant_app.command("list")
def tenant_list() -> None:
    """List tenants with their default program."""
    from sqlalchemy import select

    from setia.programs.models import Program
    from setia.tenants.models import Tenant

    db = ready_db()
    with db.session() as session:
        rows = session.execute(
            select(Tenant, Program.id)
            .join(Program, (Program.tenant_id == Tenant.id) & Program.is_default.is_(True))
            .order_by(Tenant.id)
        ).all()
        out = [
            {
                "tenant_id": t.id,
                "name": t.name,
                "country": t.country,
                "currency": t.currency,
                "timezone": t.timezone,
                "program_id": pid,
            }
            for t, pid in rows
        ]
    emit(out)


@key_app.command("list")
def key_list(tenant: Annotated[str, typer.Option(help="Tenant id")]) -> None:
    """List a tenant's API keys (never the keys themselves)."""
    from setia.tenants import service

    db = ready_db()
    with db.session() as session:
        out = [
            {
                "api_key_id": k.id,
                "name": k.name,
                "scope": k.scope,
                "prefix": k.prefix,
                "created_at": k.created_at,
                "last_used_at": k.last_used_at,
                "revoked_at": k.revoked_at,
            }
            for k in service.list_keys(session, _uuid(tenant, "tenant"))
        ]
    emit(out)


@import_app.command("events")
def import_events(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="CSV or JSONL")
    ],
    tenant: Annotated[str, typer.Option(help="Tenant id")],
    errors_file: Annotated[
        Path | None, typer.Option("--errors", help="Write rejected rows here (JSONL)")
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, max=1000)] = 500,
) -> None:
    """Load events. Valid rows are kept, bad rows are listed with their line; re-running changes nothing."""
    from setia.events.importer import ImportInterrupted, ImportReport, run_import

    db = ready_db()
    report = ImportReport()

    def summary(stopped: bool) -> None:
        # Also when the import stopped: what was saved, and the rows rejected until then.
        rejected = sorted(report.errors, key=lambda e: int(e["line"]))
        read = f"of {report.rows} rows"
        if stopped:
            read += " read before it stopped; " + (
                f"saved up to line {report.last_line}" if report.last_line else "nothing saved"
            )
        typer.echo(
            f"{report.created} recorded, {report.duplicates} already present, "
            f"{len(rejected)} rejected ({read})"
        )
        for err in rejected[:50]:
            typer.echo(f"  line {err['line']}: {err['error']}", err=True)
        if len(rejected) > 50:
            typer.echo(f"  ... and {len(rejected) - 50} more", err=True)
        if errors_file is not None:
            errors_file.write_text(
                "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in rejected)
            )

    try:
        run_import(
            db, _uuid(tenant, "tenant"), file, batch_size=batch_size, progress=True, report=report
        )
    except ImportInterrupted as exc:
        summary(stopped=True)
        fail(exc.detail, 2)
    except KeyboardInterrupt:
        summary(stopped=True)
        fail(
            "interrupted; run the same import again to finish it: events already recorded "
            "are skipped",
            130,
        )
    except SetiaError as exc:
        if report.rows:
            summary(stopped=True)
        fail(exc.detail, 2)
    summary(stopped=False)
    if report.errors:
        raise typer.Exit(1)


@ledger_app.command("verify")
def ledger_verify() -> None:
    """Check every ledger invariant; exit 1 with a report when one fails."""
    from setia.ledger.verify import verify

    db = ready_db()
    with db.session() as session:
        report = verify(session)
    typer.echo(f"checked {report.accounts} accounts and {report.transfers} transfers")
    for name, problems in report.checks.items():
        mark = "ok  " if not problems else "FAIL"
        typer.echo(f"  [{mark}] {name}")
        for p in problems:
            typer.echo(f"         {p}")
    if not report.ok:
        fail("the ledger is inconsistent (see above)")


@jobs_app.command("run")
def jobs_run() -> None:
    """Do all due work once: release pending points, expire holds and points."""
    from setia.jobs.service import run_due

    report = run_due(ready_db())
    emit(report.as_dict())


@app.command()
def worker(interval: Annotated[float, typer.Option(help="Seconds between runs")] = 60.0) -> None:
    """Run due work forever, every INTERVAL seconds."""
    from setia.jobs.service import run_due

    db = ready_db()
    typer.echo(f"worker: running due work every {interval:g}s (Ctrl-C to stop)")
    while True:
        report = run_due(db)
        if any(v for v in report.as_dict().values()):
            emit(report.as_dict())
        time.sleep(interval)


@app.command()
def demo(
    members: Annotated[int, typer.Option(min=1, help="How many members")] = 2000,
    fresh: Annotated[
        bool,
        typer.Option(
            "--fresh", help="Drop the demo database and build it again (refuses on a real one)"
        ),
    ] = False,
    serve_after: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Start the API afterwards")
    ] = True,
    host: str = "127.0.0.1",
    port: int = 8000,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed builds the same data")] = 7,
) -> None:
    """Create the "Kopi Nusantara" demo tenant with a year of purchases, then serve the API."""
    from setia.demo.fresh import port_in_use, reset_database
    from setia.demo.generate import DemoError, build_demo, find_demo_tenant, reuse_demo

    if serve_after and port_in_use(host, port):
        # Say so now, not after building for minutes.
        fail(
            f"{host}:{port} is already in use (another `setia demo` or `setia serve`?); stop it, "
            "or pick another port: `setia demo --port 8001` (`make demo PORT=8001`)"
        )
    db = get_database()
    where = db.engine.url.render_as_string(hide_password=True)
    try:
        if fresh:
            typer.echo(reset_database(db))
            existing = None
        else:
            upgrade(db.engine.url.render_as_string(hide_password=False))
            existing = find_demo_tenant(db)
    except DemoError as exc:
        fail(str(exc))
    except Exception as exc:
        fail(f"cannot prepare the demo database {where}: {exc}", 2)
    if existing is not None:
        summary = reuse_demo(db, existing)
        emit(summary)
        typer.secho(
            f'\nThe demo tenant "Kopi Nusantara" already exists in {where}; it was not rebuilt.\n'
            "API keys are stored only as hashes, so the first key cannot be shown again: a new "
            "admin key was issued.\nRun `setia demo --fresh` to build the demo from scratch.",
            fg=typer.colors.YELLOW,
        )
    else:
        typer.echo(f"building the demo in {where} ({members} members, a year of history)...")
        summary = build_demo(db, members=members, seed=seed, progress=True)
        emit(summary)
        typer.echo(
            f"\nBuilt in {summary['build_seconds']} s: {summary['members']} members, "
            f"{summary['events']} events, {summary['redemptions']} redemptions."
        )
    base = f"http://{host}:{port}"
    owner = next(u for u in summary["console_users"] if u["role"] == "owner")
    typer.secho(f"\nAdmin console: {base}/console", bold=True)
    typer.echo(f"  sign in as   {owner['email']} / {owner['password']} (owner)")
    others = ", ".join(f"{u['email']} ({u['role']})" for u in summary["console_users"][1:])
    typer.echo(f"  also         {others}; same password")
    member = summary.get("portal_member")
    if member:
        from urllib.parse import quote

        typer.secho(
            f"Member portal: {base}/portal/{summary['tenant_id']}/sign-in?login={quote(member['phone'])}",
            bold=True,
        )
        typer.echo(
            f"  as {member['name']}; the one-time code is printed in this log (no messaging yet)"
        )
    typer.echo(f"\nAdmin API key: {summary['api_key']}")
    typer.echo(f"API docs:      {base}/docs")
    typer.echo(
        f'Try:           curl -H "Authorization: Bearer {summary["api_key"]}" "{base}/v1/members?limit=3"'
    )
    if serve_after:
        serve(host=host, port=port, workers=1)


def main() -> None:
    tune_gc()
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
    except SetiaError as exc:
        typer.secho(f"error: {exc.detail}", err=True, fg=typer.colors.RED)
        sys.exit(1)
    except Exception as exc:
        typer.secho(f"error: unexpected {type(exc).__name__}: {exc}", err=True, fg=typer.colors.RED)
        typer.secho("set SETIA_DEBUG=1 to see the traceback", err=True)
        if __import__("os").environ.get("SETIA_DEBUG"):
            raise
        sys.exit(1)


if __name__ == "__main__":
    main()
