"""Rule evaluation: a pure function of (rules, event context, usage so far) → awards + reasons.

Order and layering: rules run by ``priority`` (lower first; the program's base rate is a
rule at priority 100, and wins ties). A rule that fires in ``exclusive`` mode stops every
later rule except ``universal`` ones; ``stackable`` rules fire and carry on. Each rule that
does not fire gets the first reason why: not triggered, disabled, outside its schedule (or
its campaign's), a condition false (with the values compared), stopped by an exclusive
rule, a limit or budget reached, or nothing to give.

Usage (points and counts already given, per member per period, and budgets) comes from a
``Usage`` object, so the same evaluation serves recording (usage from the database), the
simulator (the database, read only) and replay (an in-memory tally).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal
from functools import cached_property, lru_cache
from typing import Any, Protocol

from setia.core.time import as_utc, zone
from setia.rules.conditions import BENEFIT_FACTORS, DAYS, Check, _number, compile_condition

ROUNDING = {"floor": ROUND_FLOOR, "ceil": ROUND_CEILING, "round": ROUND_HALF_UP}
BASE_PRIORITY = 100


@dataclass(frozen=True)
class CampaignSpec:
    id: uuid.UUID
    name: str
    enabled: bool
    schedule: dict[str, Any] | None
    budget_points: int | None


@dataclass(frozen=True)
class RuleSpec:
    """A rule revision ready to evaluate. ``id`` is None for the program's base rate."""

    id: uuid.UUID | None
    revision: int
    name: str
    body: dict[str, Any]
    campaign: CampaignSpec | None = None

    # Cached: a spec is immutable, and these are read for every rule of every event.
    @cached_property
    def key(self) -> str:
        return str(self.id) if self.id else "base"

    @cached_property
    def priority(self) -> int:
        return int(self.body.get("priority", 200))

    @cached_property
    def check(self) -> Check | None:
        """The conditions, compiled (None: always)."""
        conditions = self.body.get("conditions")
        return compile_condition(conditions) if conditions else None

    @cached_property
    def items_check(self) -> Check | None:
        """The effect's filter on order lines, compiled (None: every line)."""
        where = self.body.get("effect", {}).get("items_where")
        return compile_condition(where) if where is not None else None

    @cached_property
    def order(self) -> tuple[int, bool, str]:
        """Evaluation order: priority, the base rate first on a tie, then id."""
        return (self.priority, self.id is not None, str(self.id))


def base_rule(program_revision: int, earn_points: int, per: Decimal, rounding: str) -> RuleSpec:
    """The program's base earn rate, as a rule (stackable, priority 100, purchases)."""
    return RuleSpec(
        id=None,
        revision=program_revision,
        name="Base earn rate",
        body={
            "triggers": ["purchase"],
            "effect": {
                "type": "per_amount",
                "points": earn_points,
                "per": str(per),
                "scope": "order",
                "rounding": rounding,
            },
            "mode": "stackable",
            "priority": BASE_PRIORITY,
            "enabled": True,
            "limits": [],
        },
    )


class Usage(Protocol):
    def member_used(
        self, rule: RuleSpec, start: datetime | None, end: datetime | None
    ) -> tuple[int, int]:
        """(points, count) this member got from ``rule`` with occurred_at in [start, end)."""

    def rule_used(self, rule: RuleSpec) -> int:
        """Points ``rule`` has given to everyone."""

    def campaign_used(self, campaign: CampaignSpec) -> int:
        """Points the rules of ``campaign`` have given to everyone."""


@dataclass
class Award:
    rule: RuleSpec
    points: int
    pending_days: int | None = None
    expiry_months: int | None = None
    tag: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule_id": str(self.rule.id) if self.rule.id else None,
            "rule": self.rule.key,
            "rule_name": self.rule.name,
            "revision": self.rule.revision,
            "points": self.points,
            **({"tag": self.tag} if self.tag else {}),
            **({"campaign_id": str(self.rule.campaign.id)} if self.rule.campaign else {}),
        }


@dataclass
class Skip:
    rule: RuleSpec
    reason: str
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule_id": str(self.rule.id) if self.rule.id else None,
            "rule": self.rule.key,
            "rule_name": self.rule.name,
            "revision": self.rule.revision,
            "reason": self.reason,
            "details": self.details,
        }


@dataclass
class Evaluation:
    awards: list[Award] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)

    @property
    def points(self) -> int:
        return sum(a.points for a in self.awards)

    def as_dict(self) -> dict[str, Any]:
        return {
            "points": self.points,
            "awards": [a.as_dict() for a in self.awards],
            "not_fired": [s.as_dict() for s in self.skipped],
        }


# --------------------------------------------------------------------------- context


def build_context(
    *,
    event_type: str,
    occurred_at: datetime,
    tz_name: str,
    amount: Decimal | None = None,
    currency: str | None = None,
    items: list[dict[str, Any]] | None = None,
    store: str | None = None,
    channel: str | None = None,
    payment_method: str | None = None,
    attributes: dict[str, Any] | None = None,
    member: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The values conditions can read. ``member`` carries tags, attributes, locale,
    created_at, birthday (date) and order_count (orders *before* this event)."""
    local = as_utc(occurred_at).astimezone(zone(tz_name))
    lines = []
    for item in items or []:
        # Purchases arrive with checked prices; a custom event's lines may not: a price that
        # is not a number is missing to conditions and worth nothing to effects.
        qty = _number(item.get("quantity", 0)) or Decimal(0)
        price = _number(item.get("unit_price", "0"))
        line_amount = qty * price if price is not None else Decimal(0)
        lines.append({**item, "quantity": qty, "unit_price": price, "amount": line_amount})
    m = member or {}
    created = m.get("created_at")
    birthday = m.get("birthday")
    order_count = int(m.get("order_count") or 0)
    return {
        "event": {
            "type": event_type,
            "amount": amount,
            "currency": currency,
            "store": store,
            "channel": channel,
            "payment_method": payment_method,
            "item_count": sum((line["quantity"] for line in lines), Decimal(0)),
            "local_date": local.date().isoformat(),
            "local_time": local.strftime("%H:%M"),
            "local_hour": local.hour,
            "local_day_of_week": DAYS[local.weekday()],
            "local_month": local.month,
            "attributes": attributes or {},
        },
        "member": {
            "tags": list(m.get("tags") or []),
            "attributes": dict(m.get("attributes") or {}),
            "locale": m.get("locale"),
            "tenure_days": max(0, (as_utc(occurred_at) - as_utc(created)).days) if created else 0,
            "order_count": order_count,
            "is_first_purchase": event_type == "purchase" and order_count == 0,
            "birthday_month": bool(birthday and birthday.month == local.month),
            "tier": m.get("tier"),
            "tier_multiplier": _number(m.get("tier_multiplier", 1)) or Decimal(1),
            "plan": m.get("plan"),
            "plan_multiplier": _number(m.get("plan_multiplier", 1)) or Decimal(1),
            "is_paid_member": m.get("plan") is not None,
            # stored analytics: absent (None) when not loaded or never computed
            "rfm_segment": m.get("rfm_segment"),
            "loyalty_label": m.get("loyalty_label"),
            "loyalty_type": m.get("loyalty_type"),
            "p_alive": m.get("p_alive"),
            "clv": m.get("clv"),
            "referral_count": int(m.get("referral_count") or 0),
            "badges": list(m.get("badges") or []),
        },
        "items": lines,
        "_local": local,
        "_tz": tz_name,
    }


# --------------------------------------------------------------------------- schedule & periods


def _schedule_reason(schedule: dict[str, Any] | None, local: datetime) -> dict[str, Any] | None:
    if not schedule:
        return None
    start, end = schedule.get("active_from"), schedule.get("active_to")
    if start or end:
        at = as_utc(local)
        if start and at < _dt(start):
            return {"why": "not started", "active_from": str(start)}
        if end and at >= _dt(end):
            return {"why": "ended", "active_to": str(end)}
    days = schedule.get("days")
    if days and DAYS[local.weekday()] not in days:
        return {"why": "day of week", "days": days, "actual": DAYS[local.weekday()]}
    hours = schedule.get("hours")
    if hours:
        now = local.strftime("%H:%M")
        s, e = hours["start"], hours["end"]
        inside = s <= now < e if s <= e else (now >= s or now < e)
        if not inside:
            return {"why": "hours", "hours": hours, "actual": now}
    return None


@lru_cache(maxsize=4096)  # the same few schedule bounds, parsed for every event
def _dt(value: Any) -> datetime:
    return as_utc(value if isinstance(value, datetime) else datetime.fromisoformat(str(value)))


def period_bounds(period: str, local: datetime) -> tuple[datetime | None, datetime | None]:
    """[start, end) of the day/week/month/year containing ``local``, in its zone, as UTC."""
    tz = local.tzinfo
    d = local.date()
    if period == "lifetime":
        return None, None
    if period == "day":
        start_d, end_d = d, d + timedelta(days=1)
    elif period == "week":  # ISO weeks start on Monday
        start_d = d - timedelta(days=d.weekday())
        end_d = start_d + timedelta(days=7)
    elif period == "month":
        start_d = d.replace(day=1)
        end_d = date(d.year + (d.month == 12), d.month % 12 + 1, 1)
    else:  # year
        start_d, end_d = date(d.year, 1, 1), date(d.year + 1, 1, 1)
    start = datetime.combine(start_d, time(0), tzinfo=tz)
    end = datetime.combine(end_d, time(0), tzinfo=tz)
    return as_utc(start), as_utc(end)


# --------------------------------------------------------------------------- effects


def _points(
    effect: dict[str, Any], ctx: dict[str, Any], base_points: int, where: Check | None = None
) -> int:
    kind = effect["type"]
    rounding = ROUNDING[effect.get("rounding", "floor")]
    if kind == "fixed":
        return int(effect["points"])
    if kind == "multiplier":
        factor = effect["factor"]
        if factor in BENEFIT_FACTORS:
            value = Decimal(ctx["member"][factor.split(".", 1)[1]])
        else:
            value = Decimal(str(factor))
        bonus = Decimal(base_points) * (value - 1)
        return int(bonus.to_integral_value(rounding=rounding))
    lines = ctx["items"]
    if where is None and effect.get("items_where") is not None:
        where = compile_condition(effect["items_where"])
    matching = [line for line in lines if where is None or where({"item": line}).ok]
    if kind == "per_item":
        return int(effect["points"]) * int(sum((line["quantity"] for line in matching), Decimal(0)))
    if kind == "per_amount":
        if effect.get("scope", "order") == "items":
            amount = sum((line["amount"] for line in matching), Decimal(0))
        else:
            amount = ctx["event"]["amount"] or Decimal(0)
        raw = Decimal(amount) * int(effect["points"]) / Decimal(str(effect["per"]))
        return int(raw.to_integral_value(rounding=rounding))
    return 0


# --------------------------------------------------------------------------- evaluation


def evaluate_rules(rules: list[RuleSpec], ctx: dict[str, Any], usage: Usage) -> Evaluation:
    """Evaluate every rule for one event. Deterministic; never raises on validated rules."""
    out = Evaluation()
    local: datetime = ctx["_local"]
    event_type = ctx["event"]["type"]
    stopped_by: RuleSpec | None = None
    base_points = 0
    # First pass, pure: what keeps each rule from firing before layering, limits and budgets
    # (its state, its schedules, then its conditions). The second pass reports the first
    # reason in the same order as ever (a rule stopped by an exclusive one says so, whatever
    # its conditions), but knowing up front whose conditions hold lets a database-backed
    # usage read the usage of exactly the rules whose limits will be checked, in one query.
    gated: list[tuple[RuleSpec, Skip | None, Skip | None]] = []
    for rule in sorted(rules, key=lambda r: r.order):
        if event_type not in rule.body.get("triggers", []):
            continue  # not for this kind of event: not worth an explanation line
        early = _gate(rule, local)
        late = _conditions(rule, ctx) if early is None else None
        gated.append((rule, early, late))
    prepare = getattr(usage, "prepare", None)
    if prepare is not None:
        prepare([r for r, early, late in gated if early is None and late is None], local)
    given: dict[str, int] = defaultdict(int)  # within this event, per campaign / rule budget
    for rule, early, late in gated:
        if early is not None:
            out.skipped.append(early)
            continue
        body = rule.body
        mode = body.get("mode", "stackable")
        if stopped_by is not None and mode != "universal":
            out.skipped.append(
                Skip(
                    rule,
                    "stopped_by_exclusive_rule",
                    {"rule": stopped_by.key, "rule_name": stopped_by.name},
                )
            )
            continue
        if late is not None:
            out.skipped.append(late)
            continue
        effect = body["effect"]
        if effect["type"] == "add_tag":
            # No points to cap, but a count limit (once a day, once ever) still applies.
            _none, reason = _apply_limits(rule, 0, local, usage, given)
            if reason is not None:
                out.skipped.append(Skip(rule, "limit_reached", reason))
                continue
            out.awards.append(Award(rule, 0, tag=effect["tag"]))
            if mode == "exclusive":
                stopped_by = rule
            continue
        points = _points(effect, ctx, base_points, rule.items_check)
        capped, reason = _apply_limits(rule, points, local, usage, given)
        if reason is not None and capped <= 0:
            out.skipped.append(Skip(rule, "limit_reached", reason))
            continue
        if capped <= 0:
            out.skipped.append(Skip(rule, "no_points", {"computed": points}))
            continue
        award = Award(rule, capped, effect.get("pending_days"), effect.get("expiry_months"))
        out.awards.append(award)
        given[f"rule:{rule.key}"] += capped
        if rule.campaign is not None:
            given[f"campaign:{rule.campaign.id}"] += capped
        if rule.id is None:
            base_points += capped
        if mode == "exclusive":
            stopped_by = rule
    return out


def _gate(rule: RuleSpec, local: datetime) -> Skip | None:
    """Disabled, its campaign disabled or out of schedule, or itself out of schedule."""
    if not rule.body.get("enabled", True):
        return Skip(rule, "disabled")
    campaign = rule.campaign
    if campaign is not None:
        if not campaign.enabled:
            return Skip(rule, "campaign_disabled", {"campaign": campaign.name})
        why = _schedule_reason(campaign.schedule, local)
        if why:
            return Skip(rule, "campaign_schedule_inactive", {"campaign": campaign.name, **why})
    why = _schedule_reason(rule.body.get("schedule"), local)
    if why:
        return Skip(rule, "schedule_inactive", why)
    return None


def _conditions(rule: RuleSpec, ctx: dict[str, Any]) -> Skip | None:
    check = rule.check
    if check is not None:
        result = check(ctx)
        if not result.ok:
            return Skip(rule, "condition_false", result.reason or {})
    return None


def _apply_limits(
    rule: RuleSpec, points: int, local: datetime, usage: Usage, given: dict[str, int]
) -> tuple[int, dict[str, Any] | None]:
    """Cap ``points`` by every limit and budget; return (points allowed, the binding limit)."""
    allowed = points
    binding: dict[str, Any] | None = None
    for limit in rule.body.get("limits") or []:
        period = limit["period"]
        if period == "order":
            room = int(limit["max_points"])
            used_points = used_count = 0
        else:
            start, end = period_bounds(period, local)
            used_points, used_count = usage.member_used(rule, start, end)
            if limit.get("max_count") is not None:
                if used_count >= int(limit["max_count"]):
                    return 0, {
                        "period": period,
                        "max_count": limit["max_count"],
                        "used_count": used_count,
                    }
                continue
            room = int(limit["max_points"]) - used_points
        if room < allowed:
            allowed = max(0, room)
            binding = {
                "period": period,
                "max_points": limit["max_points"],
                "used_points": used_points,
            }
    budget = rule.body.get("budget_points")
    if budget is not None:
        room = int(budget) - usage.rule_used(rule) - given[f"rule:{rule.key}"]
        if room < allowed:
            allowed = max(0, room)
            binding = {"budget_points": budget, "scope": "rule"}
    campaign = rule.campaign
    if campaign is not None and campaign.budget_points is not None:
        room = (
            campaign.budget_points
            - usage.campaign_used(campaign)
            - given[f"campaign:{campaign.id}"]
        )
        if room < allowed:
            allowed = max(0, room)
            binding = {
                "budget_points": campaign.budget_points,
                "scope": "campaign",
                "campaign": campaign.name,
            }
    return allowed, binding if allowed < points else None


class MemoryUsage:
    """Usage kept in memory (replay and tests): feed it every award with ``record``."""

    def __init__(self) -> None:
        self._member: dict[tuple[str, Any], list[tuple[datetime, int]]] = defaultdict(list)
        self._rule: dict[str, int] = defaultdict(int)
        self._campaign: dict[uuid.UUID, int] = defaultdict(int)
        self.member_key: Any = None

    def member_used(
        self, rule: RuleSpec, start: datetime | None, end: datetime | None
    ) -> tuple[int, int]:
        rows = self._member[(rule.key, self.member_key)]
        hits = [p for at, p in rows if (start is None or at >= start) and (end is None or at < end)]
        return sum(hits), len(hits)

    def rule_used(self, rule: RuleSpec) -> int:
        return self._rule[rule.key]

    def campaign_used(self, campaign: CampaignSpec) -> int:
        return self._campaign[campaign.id]

    def record(self, member_key: Any, occurred_at: datetime, evaluation: Evaluation) -> None:
        for award in evaluation.awards:
            if award.points <= 0 and not award.tag:
                continue  # a tag counts as a firing (as its usage row does in the database)
            self._member[(award.rule.key, member_key)].append((as_utc(occurred_at), award.points))
            self._rule[award.rule.key] += award.points
            if award.rule.campaign is not None:
                self._campaign[award.rule.campaign.id] += award.points
