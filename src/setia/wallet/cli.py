"""``setia wallet ...``: show a member's wallet, credit it (top-up, gift card, goodwill)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import typer

from setia.core.errors import SetiaError

app = typer.Typer(help="Member wallets (cashback, gift cards, stored value).", no_args_is_help=True)

Tenant = Annotated[str, typer.Option(help="Tenant id")]
ProgramOpt = Annotated[str | None, typer.Option(help="Program id (default: the tenant's default)")]
MemberArg = Annotated[str, typer.Argument(help="Member id or external id")]


def _cli() -> Any:
    from setia import cli

    return cli


def _member(session: Any, tenant_id: uuid.UUID, ref: str) -> uuid.UUID:
    from sqlalchemy import select

    from setia.members import service as members
    from setia.members.models import Member

    try:
        return members.get_member(session, tenant_id, uuid.UUID(ref)).id
    except ValueError:
        found = session.execute(
            select(Member.id).where(Member.tenant_id == tenant_id, Member.external_id == ref)
        ).scalar_one_or_none()
        if found is None:
            raise members.MemberNotFound(f"member {ref!r} not found") from None
        member_id: uuid.UUID = found
        return member_id


@app.command("show")
def show(member: MemberArg, tenant: Tenant, program: ProgramOpt = None) -> None:
    """A member's wallet: available, held, currency and lifetime totals."""
    from setia.wallet.api import wallet_out

    cli = _cli()
    try:
        with cli.ready_db().session() as session:
            t, p = cli.tenant_and_program(session, tenant, program)
            out = wallet_out(session, p, _member(session, t.id, member)).model_dump(mode="json")
    except SetiaError as exc:
        cli.fail(exc.detail)
    cli.emit(out)


@app.command("credit")
def credit(
    member: MemberArg,
    amount: Annotated[str, typer.Argument(help="Amount in the program's currency, e.g. 25000")],
    tenant: Tenant,
    reason: Annotated[str, typer.Option(help="Why (kept on the transfer)")],
    code: Annotated[str, typer.Option(help="TOPUP, GIFT_CARD, CASHBACK or GOODWILL")] = "TOPUP",
    idempotency_key: Annotated[
        str | None, typer.Option(help="Makes a retried command safe (default: a new key)")
    ] = None,
    program: ProgramOpt = None,
) -> None:
    """Put money in a member's wallet. Prints the transfer and the new balance."""
    from setia.core.db import new_id
    from setia.wallet import service as wallet
    from setia.wallet.api import wallet_out

    cli = _cli()
    try:
        with cli.ready_db().session() as session:
            t, p = cli.tenant_and_program(session, tenant, program)
            member_id = _member(session, t.id, member)
            res = wallet.credit(
                session,
                program=p,
                member_id=member_id,
                amount=wallet.parse(amount, p.currency),
                code=code.upper(),
                idempotency_key=f"cli:{t.id}:{idempotency_key or new_id()}",
                actor="cli",
                source_type="wallet_credit",
                reason=reason,
            )
            out = {
                "transfer_id": str(res.transfer_id),
                "created": res.created,
                "credited": wallet.money_str(res.amounts.get("credited", 0), p.currency)
                if res.created
                else None,
                "wallet": wallet_out(session, p, member_id).model_dump(mode="json"),
            }
    except SetiaError as exc:
        cli.fail(exc.detail)
    cli.emit(out)
