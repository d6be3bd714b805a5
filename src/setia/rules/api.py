from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal
from typing import Any

from fastapi import APIRouter
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from setia.core.api import AdminCaller, Caller, ReadCaller, SessionDep, problems, write
from setia.members import service as members
from setia.programs import service as programs
from setia.programs.models import Program
from setia.rules import service, simulate
from setia.rules.models import Campaign, Rule
from setia.rules.schemas import CampaignBody, CampaignOut, RevisionOut, RuleBody, RuleOut

router = APIRouter(prefix="/v1", tags=["rules"])


def _out(rule: Rule) -> RuleOut:
    return RuleOut(
        **{**rule.definition, "enabled": rule.enabled},
        id=rule.id,
        program_id=rule.program_id,
        revision=rule.revision,
        created_at=rule.created_at,
        updated_at=rule.updated_at,
    )


def _campaign_out(session: SessionDep, c: Campaign) -> CampaignOut:
    return CampaignOut(
        name=c.name,
        description=c.description,
        schedule=c.schedule,
        budget_points=c.budget_points,
        enabled=c.enabled,
        id=c.id,
        program_id=c.program_id,
        points_awarded=service.campaign_points(session, c.id),
        created_at=c.created_at,
    )


def _program_ids(session: SessionDep, caller: Caller) -> list[uuid.UUID]:
    return [p.id for p in programs.list_programs(session, caller.tenant.id)]


def _program_of(session: SessionDep, rule_program: uuid.UUID) -> Program:
    program = session.get(Program, rule_program)
    assert program is not None
    return program


@router.get("/rules", response_model=list[RuleOut], responses=problems(403, 404))
def list_rules(
    session: SessionDep, caller: ReadCaller, program_id: uuid.UUID | None = None
) -> list[RuleOut]:
    """The program's earning rules in evaluation order (lower priority first; the base rate runs at 100)."""
    program = programs.get_program(session, caller.tenant.id, program_id)
    return [_out(r) for r in service.list_rules(session, program.id)]


@router.post("/rules", response_model=RuleOut, status_code=201, responses=problems(403, 404))
def create_rule(
    body: RuleBody, session: SessionDep, caller: AdminCaller, program_id: uuid.UUID | None = None
) -> RuleOut:
    """Create a rule. Conditions are checked on save; an error names the path of the bad node."""

    def run() -> Rule:
        program = programs.get_program(session, caller.tenant.id, program_id)
        return service.create_rule(session, program, body, actor=caller.actor)

    return _out(write(session, run))


@router.get("/rules/export", responses=problems(403, 404))
def export_rules(
    session: SessionDep, caller: ReadCaller, program_id: uuid.UUID | None = None
) -> dict[str, Any]:
    """Rules and campaigns as JSON, ready for `POST /v1/rules/import` or `setia rules import`."""
    program = programs.get_program(session, caller.tenant.id, program_id)
    return {
        "rules": [
            {**r.definition, "enabled": r.enabled} for r in service.list_rules(session, program.id)
        ],
        "campaigns": [
            {
                "id": str(c.id),
                "name": c.name,
                "description": c.description,
                "schedule": c.schedule,
                "budget_points": c.budget_points,
                "enabled": c.enabled,
            }
            for c in service.list_campaigns(session, program.id)
        ],
    }


class ImportIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rules: list[RuleBody] = Field(max_length=500)


@router.post(
    "/rules/import", response_model=list[RuleOut], status_code=201, responses=problems(403, 404)
)
def import_rules(
    body: ImportIn, session: SessionDep, caller: AdminCaller, program_id: uuid.UUID | None = None
) -> list[RuleOut]:
    """Create every rule in the list, all or nothing."""

    def run() -> list[Rule]:
        program = programs.get_program(session, caller.tenant.id, program_id)
        return [service.create_rule(session, program, r, actor=caller.actor) for r in body.rules]

    return [_out(r) for r in write(session, run)]


class SimulateIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "event": {
                        "type": "purchase",
                        "occurred_at": "2026-11-21T09:00:00+07:00",
                        "order_id": "SIM-1",
                        "amount": "85000",
                        "currency": "IDR",
                        "store": "bandung-dago",
                        "items": [
                            {
                                "sku": "KOPI-SUSU",
                                "category": "coffee",
                                "quantity": 2,
                                "unit_price": "25000",
                            }
                        ],
                    },
                    "member": {"tags": ["mahasiswa"], "order_count": 3},
                }
            ]
        },
    )

    event: dict[str, Any] = Field(
        description="An event as for POST /v1/events (id and member optional)"
    )
    member_id: uuid.UUID | None = Field(
        default=None, description="A real member: their profile and usage so far"
    )
    member: MemberProfile | None = Field(default=None, description="Or a made-up member profile")
    rules: list[RuleBody] | None = Field(
        default=None, description="A proposed rule set instead of the current one"
    )
    program_id: uuid.UUID | None = None


class MemberProfile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tags: list[str] = Field(default_factory=list)
    attributes: dict[str, Any] = Field(default_factory=dict)
    locale: str | None = None
    created_at: AwareDatetime | None = None
    birthday: date | None = None
    order_count: int = Field(default=0, ge=0)
    tier: str | None = Field(default=None, description="Tier code, e.g. gold")
    tier_multiplier: Decimal = Field(default=Decimal(1), ge=1)
    plan: str | None = Field(default=None, description="Paid membership plan code")
    plan_multiplier: Decimal = Field(default=Decimal(1), ge=1)


SimulateIn.model_rebuild()


@router.post("/rules/simulate", responses=problems(403, 404))
def simulate_event(body: SimulateIn, session: SessionDep, caller: ReadCaller) -> dict[str, Any]:
    """Every award an event would get and, for each rule that would not fire, the first reason
    (schedule inactive, a condition false with the values compared, a limit reached, an
    exclusive rule earlier). Nothing is written."""
    program = programs.get_program(session, caller.tenant.id, body.program_id)
    member = (
        members.get_member(session, caller.tenant.id, body.member_id) if body.member_id else None
    )
    result = simulate.simulate(
        session,
        caller.tenant,
        program,
        body.event,
        member=member,
        profile=body.member.model_dump() if body.member else None,
        bodies=body.rules,
    )
    session.rollback()
    return result


class ReplayIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: AwareDatetime = Field(alias="from")
    end: AwareDatetime = Field(alias="to")
    rules: list[RuleBody] = Field(description="The proposed rule set (replaces the current rules)")
    program_id: uuid.UUID | None = None
    top: int = Field(default=10, ge=1, le=100)


@router.post("/rules/replay", responses=problems(403, 404))
def replay(body: ReplayIn, session: SessionDep, caller: ReadCaller) -> dict[str, Any]:
    """Run a period's recorded events through the current and a proposed rule set: points,
    members affected, cost at the program's cost per point, most affected members. Nothing is written."""
    program = programs.get_program(session, caller.tenant.id, body.program_id)
    result = simulate.replay(
        session, caller.tenant, program, body.rules, start=body.start, end=body.end, top=body.top
    )
    session.rollback()
    return result


@router.get("/rules/{rule_id}", response_model=RuleOut, responses=problems(403, 404))
def get_rule(rule_id: uuid.UUID, session: SessionDep, caller: ReadCaller) -> RuleOut:
    """One rule as it stands (its latest revision)."""
    return _out(service.get_rule(session, _program_ids(session, caller), rule_id))


@router.put("/rules/{rule_id}", response_model=RuleOut, responses=problems(403, 404))
def update_rule(
    rule_id: uuid.UUID, body: RuleBody, session: SessionDep, caller: AdminCaller
) -> RuleOut:
    """Replace a rule's definition: a new revision; past awards keep theirs."""

    def run() -> Rule:
        rule = service.get_rule(session, _program_ids(session, caller), rule_id)
        return service.update_rule(
            session, _program_of(session, rule.program_id), rule, body, actor=caller.actor
        )

    return _out(write(session, run))


def _toggle(session: SessionDep, caller: Caller, rule_id: uuid.UUID, enabled: bool) -> RuleOut:
    def run() -> Rule:
        rule = service.get_rule(session, _program_ids(session, caller), rule_id)
        return service.set_enabled(
            session, _program_of(session, rule.program_id), rule, enabled, actor=caller.actor
        )

    return _out(write(session, run))


@router.post("/rules/{rule_id}/enable", response_model=RuleOut, responses=problems(403, 404))
def enable_rule(rule_id: uuid.UUID, session: SessionDep, caller: AdminCaller) -> RuleOut:
    """Turn a rule on (recorded as a new revision)."""
    return _toggle(session, caller, rule_id, True)


@router.post("/rules/{rule_id}/disable", response_model=RuleOut, responses=problems(403, 404))
def disable_rule(rule_id: uuid.UUID, session: SessionDep, caller: AdminCaller) -> RuleOut:
    """Turn a rule off (recorded as a new revision); its past awards stay."""
    return _toggle(session, caller, rule_id, False)


@router.get(
    "/rules/{rule_id}/revisions", response_model=list[RevisionOut], responses=problems(403, 404)
)
def rule_revisions(
    rule_id: uuid.UUID, session: SessionDep, caller: ReadCaller
) -> list[RevisionOut]:
    """Every revision: what it said, who saved it and when."""
    rule = service.get_rule(session, _program_ids(session, caller), rule_id)
    return [
        RevisionOut(
            revision=r.revision,
            definition={**r.definition, "enabled": r.enabled},
            changed_by=r.changed_by,
            created_at=r.created_at,
        )
        for r in service.revisions(session, rule.id)
    ]


@router.get("/campaigns", response_model=list[CampaignOut], responses=problems(403, 404))
def list_campaigns(
    session: SessionDep, caller: ReadCaller, program_id: uuid.UUID | None = None
) -> list[CampaignOut]:
    """The program's campaigns, with the points each has given so far."""
    program = programs.get_program(session, caller.tenant.id, program_id)
    return [_campaign_out(session, c) for c in service.list_campaigns(session, program.id)]


@router.post(
    "/campaigns", response_model=CampaignOut, status_code=201, responses=problems(403, 404)
)
def create_campaign(
    body: CampaignBody,
    session: SessionDep,
    caller: AdminCaller,
    program_id: uuid.UUID | None = None,
) -> CampaignOut:
    """A named, scheduled group of rules with its own budget (rules join it with campaign_id)."""

    def run() -> Campaign:
        program = programs.get_program(session, caller.tenant.id, program_id)
        return service.create_campaign(session, program, body, actor=caller.actor)

    return _campaign_out(session, write(session, run))


@router.get("/campaigns/{campaign_id}", response_model=CampaignOut, responses=problems(403, 404))
def get_campaign(campaign_id: uuid.UUID, session: SessionDep, caller: ReadCaller) -> CampaignOut:
    """One campaign, with the points it has given so far."""
    return _campaign_out(
        session, service.get_campaign(session, _program_ids(session, caller), campaign_id)
    )


@router.put("/campaigns/{campaign_id}", response_model=CampaignOut, responses=problems(403, 404))
def update_campaign(
    campaign_id: uuid.UUID, body: CampaignBody, session: SessionDep, caller: AdminCaller
) -> CampaignOut:
    """Change a campaign's schedule, budget or state."""

    def run() -> Campaign:
        c = service.get_campaign(session, _program_ids(session, caller), campaign_id)
        return service.update_campaign(
            session, _program_of(session, c.program_id), c, body, actor=caller.actor
        )

    return _campaign_out(session, write(session, run))
