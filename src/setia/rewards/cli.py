"""``setia rewards ...``: load the catalog from JSON, list it, redeem, cancel, fulfil."""

from __future__ import annotations

import csv
import json
import sys
import uuid
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from setia.core.errors import SetiaError

app = typer.Typer(help="Rewards catalog and redemptions.", no_args_is_help=True)

Tenant = Annotated[str, typer.Option(help="Tenant id")]
ProgramOpt = Annotated[str | None, typer.Option(help="Program id (default: the tenant's default)")]
ACTOR = "cli"


def _cli() -> Any:
    from setia import cli

    return cli


def _uuid(value: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        _cli().fail(f"{value!r} is not a valid {what} id")
        raise


def _redemption(red: Any) -> dict[str, Any]:
    return {
        "id": str(red.id),
        "reward": red.reward_code,
        "kind": red.kind,
        "member_id": str(red.member_id),
        "status": red.status,
        "points": red.points,
        "coupon_id": str(red.coupon_id) if red.coupon_id else None,
        "fulfilment_status": red.fulfilment_status,
        "tracking": red.tracking,
    }


@app.command("put")
def put(
    file: Annotated[Path, typer.Argument(help="A JSON reward (with its code) or a list of them")],
    tenant: Tenant,
    program: ProgramOpt = None,
) -> None:
    """Create or replace rewards from a JSON file: one object or a list, each a PUT body
    plus its `code`. All or nothing: one bad reward leaves the catalog unchanged."""
    from setia.rewards import service
    from setia.rewards.schemas import RewardIn

    cli = _cli()
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        cli.fail(f"cannot read {file}: {exc}")
    items = data if isinstance(data, list) else [data]
    out = []
    try:
        with cli.ready_db().session() as session:
            t, p = cli.tenant_and_program(session, tenant, program)
            for n, item in enumerate(items, 1):
                if not isinstance(item, dict) or not isinstance(item.get("code"), str):
                    cli.fail(f"reward {n}: give an object with a string `code`")
                body = {k: v for k, v in item.items() if k != "code"}
                try:
                    parsed = RewardIn.model_validate(body)
                except ValidationError as exc:
                    cli.fail(f"reward {n} ({item['code']}): {exc}")
                reward, created = service.put_reward(
                    session, t, p, item["code"], parsed, actor=ACTOR
                )
                out.append(
                    {
                        "code": reward.code,
                        "id": str(reward.id),
                        "revision": reward.revision,
                        "created": created,
                    }
                )
    except SetiaError as exc:
        cli.fail(exc.detail)
    cli.emit(out)


@app.command("list")
def list_(
    tenant: Tenant,
    program: ProgramOpt = None,
    as_csv: Annotated[bool, typer.Option("--csv", help="CSV instead of JSON")] = False,
) -> None:
    """The catalog with each reward's stock left (total and this period)."""
    from setia.core.time import utcnow
    from setia.rewards import service

    cli = _cli()
    try:
        with cli.ready_db().session() as session:
            t, p = cli.tenant_and_program(session, tenant, program)
            now = utcnow()
            rows = []
            for r in service.list_rewards(session, p.id):
                info = service.stock(session, r, t.timezone, now)
                rows.append(
                    {
                        "code": r.code,
                        "kind": r.kind,
                        "status": r.status,
                        "visible": r.visible,
                        "points": r.points,
                        "name": r.names.get("id") or r.names.get("en"),
                        "stock_total": r.stock_total,
                        "stock_left": info["left"],
                        "stock_per_period": r.stock_per_period,
                        "stock_period": r.stock_period,
                        "left_this_period": info["left_this_period"],
                    }
                )
    except SetiaError as exc:
        cli.fail(exc.detail)
    if as_csv:
        fields = list(rows[0]) if rows else ["code"]
        writer = csv.DictWriter(sys.stdout, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return
    cli.emit(rows)


@app.command("redeem")
def redeem(
    member: Annotated[str, typer.Argument(help="Member id")],
    reward: Annotated[str, typer.Argument(help="Reward code or id")],
    tenant: Tenant,
    program: ProgramOpt = None,
    hold: Annotated[
        bool, typer.Option("--hold", help="Only hold the points (confirm or cancel later)")
    ] = False,
    key: Annotated[str | None, typer.Option(help="Idempotency key (safe to re-run)")] = None,
) -> None:
    """Redeem a reward for a member (channel `pos`)."""
    from setia.rewards import service
    from setia.rewards.schemas import RedemptionIn

    cli = _cli()
    try:
        with cli.ready_db().session() as session:
            t, p = cli.tenant_and_program(session, tenant, program)
            red, created = service.redeem(
                session,
                t,
                p,
                _uuid(member, "member"),
                RedemptionIn(reward=reward, channel="pos", confirm=not hold),
                actor=ACTOR,
                idempotency_key=key,
            )
            out = {**_redemption(red), "created": created}
            out["coupon_code"] = service.coupon_code(session, red)
    except SetiaError as exc:
        cli.fail(exc.detail)
    cli.emit(out)


@app.command("cancel")
def cancel(
    redemption: Annotated[str, typer.Argument(help="Redemption id")],
    tenant: Tenant,
    reason: Annotated[str | None, typer.Option(help="Why (kept on the redemption)")] = None,
) -> None:
    """Cancel a redemption and give back what can be given back (exactly once)."""
    from setia.rewards import service
    from setia.tenants import service as tenants

    cli = _cli()
    try:
        with cli.ready_db().session() as session:
            t = tenants.get_tenant(session, _uuid(tenant, "tenant"))
            red, _ = service.cancel(
                session, t, _uuid(redemption, "redemption"), actor=ACTOR, reason=reason
            )
            out = _redemption(red)
    except SetiaError as exc:
        cli.fail(exc.detail)
    cli.emit(out)


@app.command("fulfil")
def fulfil(
    redemption: Annotated[str, typer.Argument(help="Redemption id")],
    tenant: Tenant,
    status: Annotated[str, typer.Option(help="shipped or delivered")],
    tracking: Annotated[str | None, typer.Option(help="Courier tracking number")] = None,
) -> None:
    """Move a physical reward forward: requested → shipped → delivered."""
    from setia.rewards import service
    from setia.tenants import service as tenants

    cli = _cli()
    if status not in ("shipped", "delivered"):
        cli.fail("--status is shipped or delivered")
    try:
        with cli.ready_db().session() as session:
            t = tenants.get_tenant(session, _uuid(tenant, "tenant"))
            red = service.fulfil(
                session,
                t,
                _uuid(redemption, "redemption"),
                status=status,
                tracking=tracking,
                actor=ACTOR,
            )
            out = _redemption(red)
    except SetiaError as exc:
        cli.fail(exc.detail)
    cli.emit(out)
