"""``setia rules ...``: list, export, import, enable/disable, and replay a proposed rule set."""

from __future__ import annotations

import json
from datetime import date, datetime, time
from pathlib import Path
from typing import Annotated, Any

import typer

from setia.core.errors import SetiaError
from setia.core.time import zone

app = typer.Typer(help="Earning rules and campaigns.", no_args_is_help=True)


def _cli() -> Any:
    from setia import cli

    return cli


def _load_rules(path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        _cli().fail(f"cannot read {path}: {exc}")
    rules: Any = data.get("rules") if isinstance(data, dict) else data
    if not isinstance(rules, list) or not all(isinstance(r, dict) for r in rules):
        _cli().fail(f"{path} must hold a list of rule objects, or an object with a 'rules' list")
    return list(rules)


Tenant = Annotated[str, typer.Option(help="Tenant id")]
ProgramOpt = Annotated[str | None, typer.Option(help="Program id (default: the tenant's default)")]


@app.command("list")
def list_rules(tenant: Tenant, program: ProgramOpt = None) -> None:
    """List rules in evaluation order."""
    from setia.rules import service

    cli = _cli()
    try:
        with cli.ready_db().session() as session:
            _t, p = cli.tenant_and_program(session, tenant, program)
            out = [
                {
                    "id": r.id,
                    "name": r.name,
                    "enabled": r.enabled,
                    "priority": r.priority,
                    "revision": r.revision,
                    "triggers": r.definition.get("triggers"),
                }
                for r in service.list_rules(session, p.id)
            ]
    except SetiaError as exc:
        cli.fail(exc.detail)
    cli.emit(out)


@app.command("export")
def export(tenant: Tenant, program: ProgramOpt = None) -> None:
    """Print the rules as JSON (input for `setia rules import` and `replay`)."""
    from setia.rules import service

    cli = _cli()
    try:
        with cli.ready_db().session() as session:
            _t, p = cli.tenant_and_program(session, tenant, program)
            out = {
                "rules": [
                    {**r.definition, "enabled": r.enabled}
                    for r in service.list_rules(session, p.id)
                ]
            }
    except SetiaError as exc:
        cli.fail(exc.detail)
    cli.emit(out)


@app.command("import")
def import_rules(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
    tenant: Tenant,
    program: ProgramOpt = None,
) -> None:
    """Create every rule in FILE (JSON), all or nothing; errors name the rule and the path."""
    from setia.rules import service

    cli = _cli()
    raw = _load_rules(file)
    try:
        with cli.ready_db().session() as session:
            _t, p = cli.tenant_and_program(session, tenant, program)
            created = []
            for i, data in enumerate(raw):
                try:
                    body = service.parse_rule(data)
                except SetiaError as exc:
                    raise SetiaError(
                        f"rule {i + 1} ({data.get('name', '?') if isinstance(data, dict) else '?'}): {exc.detail}"
                    ) from None
                created.append(service.create_rule(session, p, body, actor="cli"))
            out = [{"id": r.id, "name": r.name} for r in created]
    except SetiaError as exc:
        cli.fail(exc.detail)
    cli.emit(out)


def _toggle(rule_id: str, enabled: bool) -> None:
    from setia.programs.models import Program
    from setia.rules import service
    from setia.rules.models import Rule

    cli = _cli()
    try:
        with cli.ready_db().session() as session:
            rule = session.get(Rule, cli._uuid(rule_id, "rule"))
            if rule is None:
                raise service.RuleNotFound(f"rule {rule_id} not found")
            program = session.get(Program, rule.program_id)
            rule = service.set_enabled(session, program, rule, enabled, actor="cli")
            out = {"id": rule.id, "enabled": rule.enabled, "revision": rule.revision}
    except SetiaError as exc:
        cli.fail(exc.detail)
    cli.emit(out)


@app.command("enable")
def enable(rule_id: str) -> None:
    """Enable a rule (a new revision)."""
    _toggle(rule_id, True)


@app.command("disable")
def disable(rule_id: str) -> None:
    """Disable a rule (a new revision)."""
    _toggle(rule_id, False)


@app.command("replay")
def replay(
    tenant: Tenant,
    start: Annotated[
        str, typer.Option("--from", help="First day, YYYY-MM-DD (tenant's time zone)")
    ],
    end: Annotated[str, typer.Option("--to", help="Last day, YYYY-MM-DD (inclusive)")],
    rules_file: Annotated[
        Path, typer.Option("--rules", exists=True, dir_okay=False, help="Proposed rules (JSON)")
    ],
    program: ProgramOpt = None,
    top: int = 10,
) -> None:
    """What if: the period's events through the current and the proposed rules. Writes nothing."""
    from setia.rules import service, simulate

    cli = _cli()
    raw = _load_rules(rules_file)
    try:
        first, last = date.fromisoformat(start), date.fromisoformat(end)
    except ValueError:
        cli.fail("dates must be YYYY-MM-DD")
    if last < first:
        cli.fail("--to must not be before --from")
    try:
        with cli.ready_db().session() as session:
            t, p = cli.tenant_and_program(session, tenant, program)
            tz = zone(t.timezone)
            bodies = [service.parse_rule(r) for r in raw]
            begin = datetime.combine(first, time(0), tzinfo=tz)
            finish = datetime.combine(date.fromordinal(last.toordinal() + 1), time(0), tzinfo=tz)
            out = simulate.replay(session, t, p, bodies, start=begin, end=finish, top=top)
            session.rollback()
    except SetiaError as exc:
        cli.fail(exc.detail)
    cli.emit(out)
