"""`setia referrals`: the operator's commands for the referrals domain (settings, a member's
code, attaching a code, the review queue, funnel and top advocates). Every command prints
JSON; the writing ones commit."""

from __future__ import annotations

import json
import uuid
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from setia.core.errors import SetiaError

app = typer.Typer(help="Referral programs: codes, review queue, funnel.", no_args_is_help=True)

Tenant = Annotated[str, typer.Option(help="Tenant id")]
ProgramOpt = Annotated[str | None, typer.Option(help="Program id (default: the tenant's default)")]
FromOpt = Annotated[
    str | None, typer.Option("--from", help="First local day (YYYY-MM-DD), tenant's zone")
]
ToOpt = Annotated[str | None, typer.Option("--to", help="Last local day (YYYY-MM-DD), inclusive")]


def _cli() -> Any:
    from setia import cli

    return cli


def _day(value: str | None, what: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        _cli().fail(f"{what}: {value!r} is not a date (YYYY-MM-DD)")
    return None  # pragma: no cover


@app.command("settings")
def settings(
    tenant: Tenant,
    program: ProgramOpt = None,
    set_: Annotated[
        Path | None,
        typer.Option("--set", help="JSON file with the fields of PUT /v1/referrals/settings"),
    ] = None,
) -> None:
    """Print the program's referral settings; with --set, change them first."""
    from setia.referrals import service
    from setia.referrals.api import settings_data, settings_out
    from setia.referrals.schemas import ReferralSettingsIn

    cli = _cli()
    body = None
    if set_ is not None:
        try:
            body = ReferralSettingsIn.model_validate(json.loads(set_.read_text(encoding="utf-8")))
        except (OSError, ValueError, ValidationError) as exc:
            cli.fail(f"{set_}: {exc}")
    try:
        with cli.ready_db().session() as session:
            t, p = cli.tenant_and_program(session, tenant, program)
            if body is not None:
                row, _ = service.put_settings(
                    session, t, p, settings_data(body, p.currency), actor="cli"
                )
            else:
                row = service.settings_of(session, p)
            out = settings_out(row, p).model_dump(mode="json")
    except SetiaError as exc:
        cli.fail(exc.detail)
    cli.emit(out)


@app.command("code")
def code(
    member: Annotated[str, typer.Argument(help="Member id")],
    tenant: Tenant,
    program: ProgramOpt = None,
    locale: Annotated[str | None, typer.Option(help="id, ms or en (default: the member's)")] = None,
) -> None:
    """A member's personal code, share link and share texts (made on first ask)."""
    from setia.members import service as members
    from setia.referrals.api import member_view

    cli = _cli()
    if locale is not None and locale not in ("id", "ms", "en"):
        cli.fail("--locale must be id, ms or en")
    try:
        with cli.ready_db().session() as session:
            t, p = cli.tenant_and_program(session, tenant, program)
            m = members.get_member(session, t.id, cli._uuid(member, "member"))
            out = member_view(session, t, m, p, locale).model_dump(mode="json")
    except SetiaError as exc:
        cli.fail(exc.detail)
    cli.emit(out)


@app.command("attach")
def attach(
    member: Annotated[str, typer.Argument(help="The new member's id")],
    referral_code: Annotated[str, typer.Argument(metavar="CODE", help="The referrer's code")],
    tenant: Tenant,
    program: ProgramOpt = None,
    device_id: Annotated[str | None, typer.Option(help="The sign-up device's id")] = None,
) -> None:
    """Attach a referral code to a member who just signed up (same guards as the API)."""
    from setia.members import service as members
    from setia.referrals import service
    from setia.referrals.api import referral_out

    cli = _cli()
    try:
        with cli.ready_db().session() as session:
            t, p = cli.tenant_and_program(session, tenant, program)
            m = members.get_member(session, t.id, cli._uuid(member, "member"))
            referral, created = service.attach(
                session, t, p, m, referral_code, device_id=device_id, actor="cli", source="cli"
            )
            out = {"created": created, **referral_out(session, referral, p).model_dump(mode="json")}
    except SetiaError as exc:
        cli.fail(exc.detail)
    cli.emit(out)


@app.command("list")
def list_(
    tenant: Tenant,
    program: ProgramOpt = None,
    status: Annotated[
        str | None, typer.Option(help="pending, held (the review queue), qualified, ...")
    ] = None,
    member: Annotated[str | None, typer.Option(help="Referrer or referee id")] = None,
) -> None:
    """Referrals, oldest first (JSON)."""
    from setia.referrals import service
    from setia.referrals.api import _out
    from setia.referrals.models import STATUSES

    cli = _cli()
    if status is not None and status not in STATUSES:
        cli.fail(f"--status must be one of {', '.join(STATUSES)}")
    member_id = cli._uuid(member, "member") if member else None
    rows: list[dict[str, Any]] = []
    try:
        with cli.ready_db().session() as session:
            t, p = cli.tenant_and_program(session, tenant, program)
            after: uuid.UUID | None = None
            while True:
                page = service.list_referrals(
                    session,
                    t.id,
                    p.id,
                    status=status,
                    member_id=member_id,
                    after=after,
                    limit=1000,
                )
                rewards: dict[uuid.UUID, list[Any]] = {}
                for r in service.rewards_of(session, [x.id for x in page]):
                    rewards.setdefault(r.referral_id, []).append(r)
                rows += [
                    _out(x, p, rewards.get(x.id, []), None).model_dump(mode="json") for x in page
                ]
                if len(page) < 1000:
                    break
                after = page[-1].id
    except SetiaError as exc:
        cli.fail(exc.detail)
    cli.emit(rows)


def _review(referral: str, tenant: str, reason: str, approve: bool) -> None:
    from setia.programs import service as programs
    from setia.referrals import service
    from setia.referrals.api import referral_out
    from setia.tenants import service as tenants

    cli = _cli()
    try:
        with cli.ready_db().session() as session:
            t = tenants.get_tenant(session, cli._uuid(tenant, "tenant"))
            row, changed = service.review(
                session,
                t,
                cli._uuid(referral, "referral"),
                approve=approve,
                reason=reason,
                actor="cli",
            )
            p = programs.get_program(session, t.id, row.program_id)
            out = {
                "changed": changed,
                **referral_out(session, row, p, with_decisions=True).model_dump(mode="json"),
            }
    except SetiaError as exc:
        cli.fail(exc.detail)
    cli.emit(out)


Reason = Annotated[str, typer.Option(help="Why (recorded and audited)")]


@app.command("approve")
def approve(
    referral: Annotated[str, typer.Argument(help="Referral id")], tenant: Tenant, reason: Reason
) -> None:
    """Approve a held referral (it qualifies like any other)."""
    _review(referral, tenant, reason, True)


@app.command("reject")
def reject(
    referral: Annotated[str, typer.Argument(help="Referral id")], tenant: Tenant, reason: Reason
) -> None:
    """Reject a held referral (it never earns anything)."""
    _review(referral, tenant, reason, False)


@app.command("funnel")
def funnel(
    tenant: Tenant,
    program: ProgramOpt = None,
    from_: FromOpt = None,
    to: ToOpt = None,
    member: Annotated[str | None, typer.Option(help="One referrer only")] = None,
) -> None:
    """Shares, sign-ups, pending, held, qualified, rewarded, rejected, cancelled."""
    from setia.referrals import service

    cli = _cli()
    start, end = _day(from_, "--from"), _day(to, "--to")
    member_id = cli._uuid(member, "member") if member else None
    try:
        with cli.ready_db().session() as session:
            t, p = cli.tenant_and_program(session, tenant, program)
            out = service.funnel(session, t, p, start=start, end=end, member_id=member_id)
    except SetiaError as exc:
        cli.fail(exc.detail)
    cli.emit(out)


@app.command("top")
def top(
    tenant: Tenant,
    program: ProgramOpt = None,
    from_: FromOpt = None,
    to: ToOpt = None,
    limit: Annotated[int, typer.Option(min=1, max=100)] = 10,
) -> None:
    """Top advocates: who, how many qualified referrals, what their referees spent."""
    from setia.core.money import to_str
    from setia.referrals import service

    cli = _cli()
    start, end = _day(from_, "--from"), _day(to, "--to")
    try:
        with cli.ready_db().session() as session:
            t, p = cli.tenant_and_program(session, tenant, program)
            rows = service.top_advocates(session, t, p, start=start, end=end, limit=limit)
            out = [{**r, "referee_spend": to_str(r["referee_spend"], p.currency)} for r in rows]
    except SetiaError as exc:
        cli.fail(exc.detail)
    cli.emit(out)
