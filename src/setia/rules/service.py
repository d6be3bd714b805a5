"""Rules and campaigns: saving (with revisions), loading for evaluation, usage from the database."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, cast

from pydantic import ValidationError
from sqlalchemy import Table, Uuid, bindparam, func, or_, select
from sqlalchemy.orm import Session

from setia.audit import service as audit
from setia.core.db import UTCDateTime, new_id
from setia.core.errors import InvalidInput, NotFound
from setia.core.time import utcnow
from setia.ledger import service as ledger
from setia.ledger.models import ISSUANCE, Account
from setia.programs.models import Program
from setia.rules.engine import CampaignSpec, RuleSpec, base_rule, period_bounds
from setia.rules.models import Campaign, Rule, RuleAward, RuleRevision
from setia.rules.schemas import CampaignBody, RuleBody


class RuleNotFound(NotFound):
    code = "rule_not_found"
    title = "Rule not found"


class CampaignNotFound(NotFound):
    code = "campaign_not_found"
    title = "Campaign not found"


class InvalidRule(InvalidInput):
    code = "invalid_rule"
    title = "The rule is not valid"


def parse_rule(data: dict[str, Any]) -> RuleBody:
    """Validate a rule given as plain data (CLI, import); errors name the bad path."""
    try:
        return RuleBody.model_validate(data)
    except ValidationError as exc:
        errors = [{"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors(include_url=False)]
        detail = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'rule'}: {e['msg']}" for e in errors
        )
        raise InvalidRule(detail, extra={"errors": errors}) from None


def _definition(body: RuleBody) -> dict[str, Any]:
    return body.model_dump(mode="json", exclude_none=True)


def _campaign(
    session: Session, program_id: uuid.UUID, campaign_id: uuid.UUID | None
) -> Campaign | None:
    if campaign_id is None:
        return None
    campaign = session.get(Campaign, campaign_id)
    if campaign is None or campaign.program_id != program_id:
        raise CampaignNotFound(f"campaign {campaign_id} not found in this program")
    return campaign


def create_rule(session: Session, program: Program, body: RuleBody, *, actor: str) -> Rule:
    _campaign(session, program.id, body.campaign_id)
    now = utcnow()
    rule = Rule(
        id=new_id(),
        program_id=program.id,
        campaign_id=body.campaign_id,
        name=body.name,
        enabled=body.enabled,
        priority=body.priority,
        revision=1,
        definition=_definition(body),
        created_at=now,
        updated_at=now,
    )
    session.add(rule)
    session.flush()
    session.add(
        RuleRevision(
            rule_id=rule.id,
            revision=1,
            definition=rule.definition,
            enabled=rule.enabled,
            changed_by=actor,
            created_at=now,
        )
    )
    audit.record(
        session,
        tenant_id=program.tenant_id,
        actor=actor,
        action="rule.created",
        subject_type="rule",
        subject_id=rule.id,
        details={"revision": 1},
    )
    session.flush()
    invalidate(session)
    return rule


def update_rule(
    session: Session, program: Program, rule: Rule, body: RuleBody, *, actor: str
) -> Rule:
    """Save a new revision. Awards already made keep the revision that made them."""
    _campaign(session, program.id, body.campaign_id)
    definition = _definition(body)
    if definition == rule.definition and body.enabled == rule.enabled:
        return rule
    rule.revision += 1
    rule.definition = definition
    rule.name, rule.enabled, rule.priority, rule.campaign_id = (
        body.name,
        body.enabled,
        body.priority,
        body.campaign_id,
    )
    rule.updated_at = utcnow()
    session.add(
        RuleRevision(
            rule_id=rule.id,
            revision=rule.revision,
            definition=definition,
            enabled=rule.enabled,
            changed_by=actor,
            created_at=rule.updated_at,
        )
    )
    audit.record(
        session,
        tenant_id=program.tenant_id,
        actor=actor,
        action="rule.updated",
        subject_type="rule",
        subject_id=rule.id,
        details={"revision": rule.revision},
    )
    session.flush()
    invalidate(session)
    return rule


def set_enabled(
    session: Session, program: Program, rule: Rule, enabled: bool, *, actor: str
) -> Rule:
    body = RuleBody.model_validate({**rule.definition, "enabled": enabled})
    return update_rule(session, program, rule, body, actor=actor)


def get_rule(session: Session, program_ids: list[uuid.UUID], rule_id: uuid.UUID) -> Rule:
    rule = session.get(Rule, rule_id)
    if rule is None or rule.program_id not in program_ids:
        raise RuleNotFound(f"rule {rule_id} not found")
    return rule


# Built once, bound per call: every event loads its program's rules and campaigns.
_RULES = (
    select(Rule)
    .where(Rule.program_id == bindparam("program_id", type_=Uuid()))
    .order_by(Rule.priority, Rule.id)
)
_CAMPAIGNS = (
    select(Campaign)
    .where(Campaign.program_id == bindparam("program_id", type_=Uuid()))
    .order_by(Campaign.id)
)


def list_rules(session: Session, program_id: uuid.UUID) -> list[Rule]:
    return list(session.execute(_RULES, {"program_id": program_id}).scalars())


def revisions(session: Session, rule_id: uuid.UUID) -> list[RuleRevision]:
    return list(
        session.execute(
            select(RuleRevision)
            .where(RuleRevision.rule_id == rule_id)
            .order_by(RuleRevision.revision)
        ).scalars()
    )


def create_campaign(
    session: Session, program: Program, body: CampaignBody, *, actor: str
) -> Campaign:
    now = utcnow()
    campaign = Campaign(
        id=new_id(),
        program_id=program.id,
        name=body.name,
        description=body.description,
        schedule=body.schedule.model_dump(mode="json", exclude_none=True)
        if body.schedule
        else None,
        budget_points=body.budget_points,
        enabled=body.enabled,
        created_at=now,
        updated_at=now,
    )
    session.add(campaign)
    audit.record(
        session,
        tenant_id=program.tenant_id,
        actor=actor,
        action="campaign.created",
        subject_type="campaign",
        subject_id=campaign.id,
        details=body.model_dump(mode="json"),
    )
    session.flush()
    invalidate(session)
    return campaign


def update_campaign(
    session: Session, program: Program, campaign: Campaign, body: CampaignBody, *, actor: str
) -> Campaign:
    campaign.name, campaign.description, campaign.enabled = (
        body.name,
        body.description,
        body.enabled,
    )
    campaign.schedule = (
        body.schedule.model_dump(mode="json", exclude_none=True) if body.schedule else None
    )
    campaign.budget_points = body.budget_points
    campaign.updated_at = utcnow()
    audit.record(
        session,
        tenant_id=program.tenant_id,
        actor=actor,
        action="campaign.updated",
        subject_type="campaign",
        subject_id=campaign.id,
        details=body.model_dump(mode="json"),
    )
    session.flush()
    invalidate(session)
    return campaign


def get_campaign(
    session: Session, program_ids: list[uuid.UUID], campaign_id: uuid.UUID
) -> Campaign:
    campaign = session.get(Campaign, campaign_id)
    if campaign is None or campaign.program_id not in program_ids:
        raise CampaignNotFound(f"campaign {campaign_id} not found")
    return campaign


def list_campaigns(session: Session, program_id: uuid.UUID) -> list[Campaign]:
    return list(session.execute(_CAMPAIGNS, {"program_id": program_id}).scalars())


def campaign_points(session: Session, campaign_id: uuid.UUID) -> int:
    value = session.execute(
        select(func.coalesce(func.sum(RuleAward.points), 0)).where(
            RuleAward.campaign_id == campaign_id
        )
    ).scalar_one()
    return int(value)


def _campaign_spec(c: Campaign) -> CampaignSpec:
    return CampaignSpec(
        id=c.id, name=c.name, enabled=c.enabled, schedule=c.schedule, budget_points=c.budget_points
    )


def specs_from_definitions(
    program: Program,
    definitions: Sequence[tuple[uuid.UUID | None, int, dict[str, Any]]],
    campaigns: dict[uuid.UUID, CampaignSpec],
) -> list[RuleSpec]:
    specs = [
        base_rule(program.revision, program.earn_points, program.earn_per_amount, program.rounding)
    ]
    for rule_id, revision, definition in definitions:
        cid = definition.get("campaign_id")
        specs.append(
            RuleSpec(
                id=rule_id,
                revision=revision,
                name=str(definition.get("name", "")),
                body=definition,
                campaign=campaigns.get(uuid.UUID(cid)) if cid else None,
            )
        )
    return specs


def load_specs(session: Session, program: Program) -> list[RuleSpec]:
    """The program's rules as they stand (cached for the transaction)."""
    cache: dict[Any, list[RuleSpec]] = session.info.setdefault("rule_specs", {})
    key = (program.id, program.revision)
    if key not in cache:
        campaigns = {c.id: _campaign_spec(c) for c in list_campaigns(session, program.id)}
        rows = list_rules(session, program.id)
        defs = [(r.id, r.revision, {**r.definition, "enabled": r.enabled}) for r in rows]
        cache[key] = specs_from_definitions(program, defs, campaigns)
    return cache[key]


def invalidate(session: Session) -> None:
    session.info.pop("rule_specs", None)


# Built once: usage checks run for every event, so they only bind values per call.
_awards = cast(Table, RuleAward.__table__)
_MEMBER_USAGE = select(_awards.c.rule_id, _awards.c.occurred_at, _awards.c.points).where(
    _awards.c.member_id == bindparam("member_id", type_=Uuid()),
    _awards.c.rule_id.in_(bindparam("rule_ids", expanding=True, type_=Uuid())),
    or_(
        _awards.c.rule_id.in_(bindparam("lifetime_ids", expanding=True, type_=Uuid())),
        _awards.c.occurred_at >= bindparam("since", type_=UTCDateTime()),
    ),
)
_RULE_USED = select(func.coalesce(func.sum(_awards.c.points), 0)).where(
    _awards.c.rule_id == bindparam("rule_id", type_=Uuid())
)
_CAMPAIGN_USED = select(func.coalesce(func.sum(_awards.c.points), 0)).where(
    _awards.c.campaign_id == bindparam("campaign_id", type_=Uuid())
)
_LOCK_RULE = (
    select(Rule.__table__.c.id)
    .where(Rule.__table__.c.id == bindparam("rule_id", type_=Uuid()))
    .with_for_update()
)
_LOCK_CAMPAIGN = (
    select(Campaign.__table__.c.id)
    .where(Campaign.__table__.c.id == bindparam("campaign_id", type_=Uuid()))
    .with_for_update()
)
_LOCK_ACCOUNT = (
    select(Account.__table__.c.id)
    .where(Account.__table__.c.id == bindparam("account_id", type_=Uuid()))
    .with_for_update()
)


class DbUsage:
    """Usage read from ``rule_awards`` for one member and one event (the recording and
    simulator path).

    The engine calls ``prepare`` with the rules whose conditions hold for the event, and the
    event's local time; the first limit check then reads, in one query, this member's awards
    from those of them with a period limit, back to the earliest period start any of them
    needs (all of them for lifetime limits), and each check after that counts in memory.

    Recording passes ``program_id``: on PostgreSQL the first limit or budget check then
    locks the program's issuance account, which every award takes first anyway (the
    ledger locks accounts in id order, and a program's accounts are older than its
    members'). Two concurrent events of one member cannot both read a limit as unused,
    and the order of locks stays issuance → rule/campaign rows → member accounts, so
    checking limits adds no deadlock. The simulator passes no program and locks nothing.
    """

    def __init__(
        self, session: Session, member_id: uuid.UUID | None, program_id: uuid.UUID | None = None
    ) -> None:
        self.session = session
        self.member_id = member_id
        self.program_id = program_id
        self._pg = session.get_bind().dialect.name == "postgresql"
        self._serialised = program_id is None or not self._pg
        self._rules: list[RuleSpec] = []
        self._local: datetime | None = None
        self._rows: dict[uuid.UUID, list[tuple[datetime, int]]] | None = None

    def prepare(self, rules: list[RuleSpec], local: datetime) -> None:
        self._rules, self._local, self._rows = rules, local, None

    def _serialise(self) -> None:
        if self._serialised:
            return
        assert self.program_id is not None
        issuance = ledger.program_account(self.session, self.program_id, ISSUANCE)
        self.session.execute(_LOCK_ACCOUNT, {"account_id": issuance}).all()
        self._serialised = True

    def _prefetch(self) -> dict[uuid.UUID, list[tuple[datetime, int]]]:
        if self._rows is None:
            limited: list[uuid.UUID] = []
            lifetime: list[uuid.UUID] = []
            since: datetime | None = None
            for spec in self._rules:
                periods = [
                    lim["period"]
                    for lim in spec.body.get("limits") or []
                    if lim["period"] != "order"
                ]
                if spec.id is None or not periods:
                    continue
                limited.append(spec.id)
                if "lifetime" in periods:
                    lifetime.append(spec.id)
                    continue
                assert self._local is not None
                for period in periods:
                    start, _end = period_bounds(period, self._local)
                    if start is not None and (since is None or start < since):
                        since = start
            self._rows = {rule_id: [] for rule_id in limited}
            if limited:
                found = self.session.execute(
                    _MEMBER_USAGE,
                    {
                        "member_id": self.member_id,
                        "rule_ids": limited,
                        "lifetime_ids": lifetime,
                        "since": since or datetime.max.replace(tzinfo=UTC),
                    },
                )
                for rule_id, occurred_at, points in found:
                    self._rows[rule_id].append((occurred_at, int(points)))
        return self._rows

    def member_used(
        self, rule: RuleSpec, start: datetime | None, end: datetime | None
    ) -> tuple[int, int]:
        if self.member_id is None or rule.id is None:
            return 0, 0
        self._serialise()
        rows = self._prefetch().get(rule.id)
        if rows is None:  # a rule the engine did not announce: ask the database directly
            rows = [
                (at, int(points))
                for rule_id, at, points in self.session.execute(
                    _MEMBER_USAGE,
                    {
                        "member_id": self.member_id,
                        "rule_ids": [rule.id],
                        "lifetime_ids": [rule.id],
                        "since": datetime.max.replace(tzinfo=UTC),
                    },
                )
                if rule_id == rule.id
            ]
        hits = [
            points
            for at, points in rows
            if (start is None or at >= start) and (end is None or at < end)
        ]
        return sum(hits), len(hits)

    def rule_used(self, rule: RuleSpec) -> int:
        if rule.id is None:
            return 0
        self._serialise()
        if self._pg:
            # Budgets are shared by every member: serialise the awards of one rule.
            self.session.execute(_LOCK_RULE, {"rule_id": rule.id}).all()
        return int(self.session.execute(_RULE_USED, {"rule_id": rule.id}).scalar_one())

    def campaign_used(self, campaign: CampaignSpec) -> int:
        self._serialise()
        if self._pg:
            self.session.execute(_LOCK_CAMPAIGN, {"campaign_id": campaign.id}).all()
        return int(self.session.execute(_CAMPAIGN_USED, {"campaign_id": campaign.id}).scalar_one())
