"""``setia coupons ...``: campaigns, code generation, CSV import and export, validation.

Every command prints JSON (export prints CSV) and exits non-zero with the reason on error,
so it can be scripted."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from setia.core.errors import SetiaError

app = typer.Typer(help="Coupon campaigns and codes.", no_args_is_help=True)

TenantOpt = Annotated[str, typer.Option(help="Tenant id")]
CampaignArg = Annotated[str, typer.Argument(help="Campaign id or code")]


def _cli() -> Any:
    from setia import cli

    return cli


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        _cli().fail(f"cannot read {path}: {exc.strerror}")
    raise AssertionError("unreachable")


def _batch(batch: Any, created: bool, codes: list[str] | None) -> dict[str, Any]:
    return {
        "batch_id": str(batch.id),
        "campaign_id": str(batch.campaign_id),
        "kind": batch.kind,
        "count": batch.count,
        "pattern": batch.pattern,
        "created": created,
        "codes": codes,
    }


@app.command("campaign-create")
def campaign_create(
    file: Annotated[Path, typer.Argument(help="Campaign as JSON")], tenant: TenantOpt
) -> None:
    """Create a campaign from a JSON file (the body of POST /v1/coupon-campaigns)."""
    from setia.coupons import service
    from setia.coupons.schemas import CampaignIn

    cli = _cli()
    try:
        body = CampaignIn.model_validate_json(_read(file))
    except ValidationError as exc:
        cli.fail(f"{file}: {exc}")
    try:
        with cli.ready_db().session() as session:
            t, _p = cli.tenant_and_program(session, tenant, None)
            c, _ = service.create_campaign(session, t, body)
            out = {
                "id": str(c.id),
                "code": c.code,
                "status": c.status,
                "public_code": c.public_code,
                **service.campaign_definition(c),
            }
    except SetiaError as exc:
        cli.fail(exc.detail)
    cli.emit(out)


@app.command("generate")
def generate(
    campaign: CampaignArg,
    tenant: TenantOpt,
    count: Annotated[int, typer.Option(help="How many codes (1 to 100,000)")],
    pattern: Annotated[
        str | None, typer.Option(help="e.g. KOPI-####-????; default the campaign's")
    ] = None,
    show: Annotated[bool, typer.Option(help="Print the codes too")] = False,
) -> None:
    """Generate unique random codes for a campaign (one transaction)."""
    from setia.coupons import service

    cli = _cli()
    try:
        with cli.ready_db().session() as session:
            t, _p = cli.tenant_and_program(session, tenant, None)
            c = service.find_campaign(session, t.id, campaign)
            batch, created = service.generate_codes(session, t, c.id, count=count, pattern=pattern)
            codes = service.batch_codes(session, batch.id, count) if show else None
            out = _batch(batch, created, codes)
    except SetiaError as exc:
        cli.fail(exc.detail + _errors(exc))
    cli.emit(out)


def _errors(exc: SetiaError) -> str:
    errors = exc.extra.get("errors")
    if not errors:
        return ""
    return "\n" + "\n".join(f"  line {e['line']}: {e['error']}" for e in errors)


@app.command("import")
def import_(
    campaign: CampaignArg,
    file: Annotated[Path, typer.Argument(help="CSV: code[,member_external_id][,expires_at]")],
    tenant: TenantOpt,
) -> None:
    """Import a pool of codes from CSV. Any bad line: every bad line is listed with its
    number and nothing is imported."""
    from setia.coupons import service

    cli = _cli()
    text = _read(file)
    try:
        with cli.ready_db().session() as session:
            t, _p = cli.tenant_and_program(session, tenant, None)
            c = service.find_campaign(session, t.id, campaign)
            batch, created = service.import_codes(session, t, c.id, text)
            out = _batch(batch, created, None)
    except SetiaError as exc:
        cli.fail(exc.detail + _errors(exc))
    cli.emit(out)


@app.command("export")
def export(campaign: CampaignArg, tenant: TenantOpt) -> None:
    """Every code of the campaign as CSV on standard output."""
    from setia.coupons import service
    from setia.coupons.api import CSV_EXPORT_FIELDS

    cli = _cli()
    try:
        with cli.ready_db().session() as session:
            t, _p = cli.tenant_and_program(session, tenant, None)
            c = service.find_campaign(session, t.id, campaign)
            writer = csv.DictWriter(sys.stdout, fieldnames=CSV_EXPORT_FIELDS, lineterminator="\n")
            writer.writeheader()
            for row in service.export_rows(session, c.id):
                writer.writerow(row)
    except SetiaError as exc:
        cli.fail(exc.detail)


@app.command("validate")
def validate(
    code: Annotated[str, typer.Argument(help="The coupon code")],
    tenant: TenantOpt,
    cart: Annotated[
        str,
        typer.Option(
            help='Cart JSON, e.g. {"currency":"IDR","items":[{"sku":"A","quantity":1,'
            '"unit_price":"50000"}]}, or @FILE'
        ),
    ],
    member: Annotated[str | None, typer.Option(help="Member id")] = None,
    locale: Annotated[str, typer.Option(help="id, ms or en")] = "en",
) -> None:
    """Check a code against a cart (writes nothing), as POST /v1/coupons/validate."""
    from setia.core.money import to_str
    from setia.coupons import service
    from setia.coupons.discount import message
    from setia.coupons.schemas import CartIn

    cli = _cli()
    raw = _read(Path(cart[1:])) if cart.startswith("@") else cart
    try:
        parsed = CartIn.model_validate(json.loads(raw)).to_cart()
    except (ValueError, ValidationError) as exc:
        cli.fail(f"bad cart: {exc}")
    member_id = cli._uuid(member, "member") if member else None
    try:
        with cli.ready_db().session() as session:
            t, _p = cli.tenant_and_program(session, tenant, None)
            check = service.validate(session, t.id, code=code, cart=parsed, member_id=member_id)
            o = check.outcome
            out = {
                "valid": o.valid,
                "discount": to_str(o.discount, parsed.currency),
                "currency": parsed.currency,
                "reason_code": o.reason_code,
                "reason": None
                if o.reason_code is None
                else message(o.reason_code, locale, o.params, t.timezone),
                "campaign": None if check.campaign is None else check.campaign.code,
            }
    except SetiaError as exc:
        cli.fail(exc.detail)
    cli.emit(out)
