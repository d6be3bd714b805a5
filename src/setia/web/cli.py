"""`setia staff`: console users from the command line (the first owner of a new tenant, a
locked-out owner's reset link). Every command prints JSON; the writing ones commit.

Link paths are printed without a host (``/console/invite/<token>``): put the console's
address in front of them."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from setia.core.errors import SetiaError

app = typer.Typer(
    help="Console staff users: create, list, disable, reset links.", no_args_is_help=True
)

TenantOpt = Annotated[str, typer.Option(help="Tenant id")]


def _cli() -> Any:
    from setia import cli

    return cli


def _user_out(user: Any) -> dict[str, Any]:
    return {
        "staff_user_id": user.id,
        "tenant_id": user.tenant_id,
        "email": user.email,
        "name": user.name,
        "role": user.role,
        "status": user.status,
        "locale": user.locale,
        "last_sign_in_at": user.last_sign_in_at,
    }


@app.command("create")
def create(
    tenant: TenantOpt,
    email: Annotated[str, typer.Option(help="Their sign-in email")],
    role: Annotated[str, typer.Option(help="owner, admin, marketer, cashier or analyst")] = "owner",
    name: Annotated[str, typer.Option(help="Their name")] = "",
    locale: Annotated[str | None, typer.Option(help="id, ms or en (default: the tenant's)")] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input")
    ] = False,
) -> None:
    """Create a staff user: active with --password-stdin, else invited (the invite link's path
    is printed; it works once, for 7 days)."""
    from setia.audit import service as audit
    from setia.tenants import service as tenants
    from setia.web import staff

    cli = _cli()
    password = None
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            cli.fail("no password on standard input")
    db = cli.ready_db()
    try:
        with db.session() as session:
            t = tenants.get_tenant(session, cli._uuid(tenant, "tenant"))
            new = staff.create_user(
                session,
                tenant_id=t.id,
                email=email,
                role=role,
                name=name,
                locale=locale or t.locale,
                password=password,
            )
            audit.record(
                session,
                tenant_id=t.id,
                actor="cli",
                action="staff.created" if password else "staff.invited",
                subject_type="staff_user",
                subject_id=new.user.id,
                details={"email": new.user.email, "role": role},
            )
            out = _user_out(new.user)
            if new.invite_token:
                out["invite_path"] = f"/console/invite/{new.invite_token}"
    except SetiaError as exc:
        cli.fail(exc.detail)
    cli.emit(out)


@app.command("list")
def list_users(tenant: TenantOpt) -> None:
    """The tenant's staff users (never their passwords)."""
    from setia.tenants import service as tenants
    from setia.web import staff

    cli = _cli()
    db = cli.ready_db()
    try:
        with db.session() as session:
            t = tenants.get_tenant(session, cli._uuid(tenant, "tenant"))
            out = [_user_out(u) for u in staff.list_users(session, t.id)]
    except SetiaError as exc:
        cli.fail(exc.detail)
    cli.emit(out)


def _find(session: Any, email: str) -> Any:
    from setia.web import staff

    user = staff.find_by_email(session, email)
    if user is None:
        _cli().fail(f"no staff user with email {email}")
    return user


@app.command("disable")
def disable(email: str) -> None:
    """Disable a staff user (signed out at once). The last active owner of a tenant cannot be
    disabled."""
    from setia.web import staff

    cli = _cli()
    db = cli.ready_db()
    try:
        with db.session() as session:
            user = _find(session, email)
            changed = staff.set_enabled(session, None, user, False)
            out = {**_user_out(user), "changed": changed}
    except SetiaError as exc:
        cli.fail(exc.detail)
    cli.emit(out)


@app.command("enable")
def enable(email: str) -> None:
    """Let a disabled staff user sign in again."""
    from setia.web import staff

    cli = _cli()
    db = cli.ready_db()
    try:
        with db.session() as session:
            user = _find(session, email)
            changed = staff.set_enabled(session, None, user, True)
            out = {**_user_out(user), "changed": changed}
    except SetiaError as exc:
        cli.fail(exc.detail)
    cli.emit(out)


@app.command("reset-link")
def reset_link(email: str) -> None:
    """A password reset link's path for a staff user (one hour, one use); for an invited user,
    a new invite link instead."""
    from setia.audit import service as audit
    from setia.web import staff

    cli = _cli()
    db = cli.ready_db()
    try:
        with db.session() as session:
            user = _find(session, email)
            if user.status == "disabled":
                cli.fail(f"{user.email} is disabled; enable it first (setia staff enable)")
            purpose = "invite" if user.status == "invited" else "reset"
            token = staff.issue_token(session, user, purpose)
            audit.record(
                session,
                tenant_id=user.tenant_id,
                actor="cli",
                action="staff.reset_link" if purpose == "reset" else "staff.reinvited",
                subject_type="staff_user",
                subject_id=user.id,
                details={"email": user.email},
            )
            out = {
                "staff_user_id": user.id,
                "email": user.email,
                "purpose": purpose,
                "path": f"/console/{purpose}/{token}",
                "expires_in_minutes": 60 if purpose == "reset" else staff.INVITE_DAYS * 24 * 60,
            }
    except SetiaError as exc:
        cli.fail(exc.detail)
    cli.emit(out)
