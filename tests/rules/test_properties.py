"""Property-based tests.

* For any well-formed rule set (condition trees drawn from the field registry, values of the
  declared types) and any event, ``engine.evaluate_rules`` never raises, is deterministic
  (the same input, in any order, gives the same output) and keeps its own promises: every
  rule for the event's trigger is either awarded or explained once, limits and budgets hold,
  nothing non-universal follows an exclusive award.
* A tree with one broken node (field missing, unknown field, unknown operator, value of the
  wrong type) is refused by ``conditions.validate`` and by ``RuleBody`` with the path of
  exactly that node.
* Recorded through the events service, awards keep every ledger invariant; a retried event
  (alone or in a batch) never earns twice; replay writes nothing and, fed the current rules,
  finds no difference — and reproduces what recording gave.
"""

from __future__ import annotations

import copy
import itertools
import json
import uuid
from collections import defaultdict
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from sqlalchemy import func, select

from setia.core.db import Database
from setia.events import service as events
from setia.events.api import record_batch
from setia.events.schemas import EventIn
from setia.ledger.models import Transfer
from setia.ledger.verify import verify
from setia.programs.models import Program
from setia.rules import engine, simulate
from setia.rules import service as rules
from setia.rules.conditions import (
    ANY,
    BOOL,
    DATE,
    FIELDS,
    ITEM_FIELDS,
    NUMBER,
    STRING,
    STRINGS,
    TIME,
    ConditionError,
    compile_condition,
    evaluate,
    validate,
)
from setia.rules.models import RuleAward
from setia.rules.schemas import RuleBody
from setia.tenants.models import Tenant
from tests.conftest import make_tenant
from tests.rules import strategies as gen
from tests.rules.helpers import JKT, counts

PROPERTY = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
DB_PROPERTY = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
REASONS = {
    "disabled",
    "campaign_disabled",
    "campaign_schedule_inactive",
    "schedule_inactive",
    "stopped_by_exclusive_rule",
    "condition_false",
    "limit_reached",
    "no_points",
}


def canonical(value: Any) -> str:
    """Comparable text (NaN from an attribute compares equal to itself here)."""
    return json.dumps(value, sort_keys=True, default=str)


campaigns = st.builds(
    engine.CampaignSpec,
    id=st.uuids(),
    name=st.just("Campaign"),
    enabled=st.booleans(),
    schedule=gen.schedules(),
    budget_points=st.none() | st.integers(0, 5000),
)


@st.composite
def rule_sets(draw: st.DrawFn) -> list[engine.RuleSpec]:
    """The base rate plus up to six well-formed rules, some in a shared campaign."""
    campaign = draw(campaigns)
    specs = [engine.base_rule(1, draw(st.integers(0, 5)), draw(st.sampled_from(
        [Decimal(1000), Decimal(1)])), draw(st.sampled_from(["floor", "round"])))]  # fmt: skip
    for n in range(draw(st.integers(0, 6))):
        body = draw(gen.rule_bodies(name=f"rule {n}"))
        saved = RuleBody.model_validate(body)  # well-formed: it saves
        specs.append(
            engine.RuleSpec(
                id=draw(st.uuids()),
                revision=draw(st.integers(1, 3)),
                name=saved.name,
                body=saved.model_dump(mode="json", exclude_none=True),
                campaign=campaign if draw(st.integers(0, 3)) == 0 else None,
            )
        )
    return specs


def run(
    specs: list[engine.RuleSpec], history: list[dict[str, Any]], event: dict[str, Any]
) -> tuple[engine.Evaluation, engine.MemoryUsage]:
    """Evaluate ``history`` (recording its awards, so limits and budgets bite), then ``event``."""
    usage = engine.MemoryUsage()
    usage.member_key = "m"
    for past in history:
        ctx = engine.build_context(**past)
        usage.record("m", past["occurred_at"], engine.evaluate_rules(specs, ctx, usage))
    return engine.evaluate_rules(specs, engine.build_context(**event), usage), usage


@PROPERTY
@given(
    specs=rule_sets(),
    history=st.lists(gen.contexts(), max_size=3),
    event=gen.contexts(),
    order=st.randoms(use_true_random=False),
)
def test_evaluation_is_deterministic_never_raises_and_keeps_its_promises(
    specs: list[engine.RuleSpec],
    history: list[dict[str, Any]],
    event: dict[str, Any],
    order: Any,
) -> None:
    first, usage = run(specs, history, event)
    shuffled = list(specs)
    order.shuffle(shuffled)
    second, _usage = run(shuffled, history, event)
    local = engine.build_context(**event)["_local"]
    assert canonical(first.as_dict()) == canonical(second.as_dict())

    triggered = [s for s in specs if event["event_type"] in s.body.get("triggers", [])]
    seen = [a.rule.key for a in first.awards] + [s.rule.key for s in first.skipped]
    assert sorted(seen) == sorted(s.key for s in triggered)
    assert {s.reason for s in first.skipped} <= REASONS
    given_by: dict[str, int] = defaultdict(int)
    for award in first.awards:
        body = award.rule.body
        if body["effect"]["type"] == "add_tag":
            assert award.points == 0
            assert award.tag == body["effect"]["tag"]
        else:
            assert award.points > 0
        for limit in body.get("limits") or []:
            if limit["period"] == "order":
                assert award.points <= limit["max_points"]
                continue
            used_points, used_count = usage.member_used(
                award.rule, *engine.period_bounds(limit["period"], local)
            )
            if limit.get("max_points") is not None:
                assert used_points + award.points <= limit["max_points"]
            else:
                assert used_count < limit["max_count"]
        if body.get("budget_points") is not None:
            assert award.points <= body["budget_points"]
        given_by[award.rule.key] += award.points
        campaign = award.rule.campaign
        if campaign is not None:
            assert campaign.enabled
    campaign_points: dict[uuid.UUID, int] = defaultdict(int)
    for award in first.awards:
        if award.rule.campaign is not None:
            campaign_points[award.rule.campaign.id] += award.points
    for spec in specs:
        c = spec.campaign
        if c is not None and c.budget_points is not None:
            assert campaign_points[c.id] <= c.budget_points
    # Layering: after an exclusive award only universal rules may give.
    awarded = [a.rule for a in first.awards]
    for i, rule in enumerate(awarded):
        if rule.body.get("mode") == "exclusive":
            assert all(r.body.get("mode") == "universal" for r in awarded[i + 1 :])
            break


@PROPERTY
@given(event=gen.contexts())
def test_the_base_rate_alone_is_the_programs_earn_rate(event: dict[str, Any]) -> None:
    base = engine.base_rule(1, 1, Decimal(1000), "floor")
    out = engine.evaluate_rules([base], engine.build_context(**event), engine.MemoryUsage())
    if event["event_type"] != "purchase":
        assert out.awards == []
        assert out.skipped == []
    else:
        expected = int(event["amount"] // 1000)
        assert out.points == expected
        assert [s.reason for s in out.skipped] == ([] if expected else ["no_points"])


@PROPERTY
@given(tree=gen.condition_trees, event=gen.contexts(), where=gen.item_trees)
def test_compiled_conditions_agree_with_the_interpreter(
    tree: Any, event: dict[str, Any], where: Any
) -> None:
    """The engine evaluates each rule's conditions (and effect line filter) compiled once;
    the simulator's explanations and this test use the interpreter. Same answer, same reason."""
    ctx = engine.build_context(**event)
    for node, context in [(tree, ctx)] + [(where, {"item": line}) for line in ctx["items"]]:
        compiled = compile_condition(node)(context)
        interpreted = evaluate(node, context)
        assert compiled.ok == interpreted.ok
        assert canonical(compiled.reason) == canonical(interpreted.reason)


# --------------------------------------------------------------------------- malformed trees


def leaves(node: Any, path: str, item: bool = False) -> Iterator[tuple[str, dict[str, Any], bool]]:
    """Every comparison of a valid tree, with its path as ``validate`` names it."""
    for combinator in ("all", "any"):
        if combinator in node:
            for i, child in enumerate(node[combinator]):
                yield from leaves(child, f"{path}.{combinator}[{i}]", item)
            return
    if "not" in node:
        yield from leaves(node["not"], f"{path}.not", item)
        return
    if "items" in node:
        if "where" in node["items"]:
            yield from leaves(node["items"]["where"], f"{path}.items.where", True)
        return
    yield path, node, item


WRONG: dict[str, list[Any]] = {
    NUMBER: ["banyak", True, None, {"n": 1}, "NaN"],
    STRING: [42, True, None, {"s": "a"}],
    STRINGS: [42, False, None],
    BOOL: ["yes", 1, None, "true"],
    DATE: ["2026-02-30", 20260101, "31/12/2026", None],
    TIME: ["24:00", "9:30", 930, "12:60", None],
    ANY: [float("nan"), float("inf"), float("-inf")],  # free-form, but JSON has no such numbers
}


def kind_of(leaf: dict[str, Any], item: bool) -> str:
    registry = ITEM_FIELDS if item else FIELDS
    return registry.get(leaf["field"], ANY)


@st.composite
def broken_trees(draw: st.DrawFn, base: st.SearchStrategy[Any]) -> tuple[Any, str, str]:
    """(a tree with exactly one bad node, the path validate must name, what was broken)."""
    tree = draw(base)
    validate(tree, "conditions")
    broken = copy.deepcopy(tree)
    found = list(leaves(broken, "conditions"))
    assume(found)
    path, leaf, item = draw(st.sampled_from(found))
    kind = kind_of(leaf, item)
    choices = ["missing field", "unknown field", "unknown operator", "wrong type"]
    if kind != ANY:
        choices.append("operator for another type")
    how = draw(st.sampled_from(choices))
    if how == "missing field":
        del leaf["field"]
        return broken, path, how
    if how == "unknown field":
        leaf["field"] = draw(
            st.sampled_from(
                ["event.amont", "member.tag", "item.colour", "event", "", "event.attributes."]
            )
            | (st.sampled_from(sorted(FIELDS)) if item else st.sampled_from(sorted(ITEM_FIELDS)))
        )
        return broken, f"{path}.field", how
    if how == "unknown operator":
        leaf["op"] = draw(st.sampled_from(["approx", "like", "EQ", "", "==", "regex"]))
        return broken, f"{path}.op", how
    if how == "operator for another type":
        wrong_ops = {
            NUMBER: ["contains", "not_contains"],
            STRING: ["gt", "between", "contains"],
            STRINGS: ["eq", "gt", "in"],
            BOOL: ["gt", "in", "contains", "between"],
            DATE: ["in", "contains"],
            TIME: ["in", "not_contains"],
        }
        assume(kind != ANY)
        leaf["op"] = draw(st.sampled_from(wrong_ops[kind]))
        return broken, f"{path}.op", how
    op = leaf["op"]
    bad = draw(st.sampled_from(WRONG[kind]))
    if op == "exists":
        leaf["value"] = draw(st.sampled_from(["yes", 1, None, []]))
        return broken, f"{path}.value", how
    if op in ("in", "not_in") and draw(st.booleans()):
        values = list(leaf["value"])
        i = draw(st.integers(0, len(values) - 1))
        assume(bad is not None)
        values[i] = bad
        leaf["value"] = values
        return broken, f"{path}.value[{i}]", how
    if op == "between" and draw(st.booleans()):
        i = draw(st.integers(0, 1))
        assume(bad is not None)
        leaf["value"] = [leaf["value"][0], leaf["value"][1]]
        leaf["value"][i] = bad
        return broken, f"{path}.value[{i}]", how
    if bad is None:
        del leaf["value"]
        return broken, path, "missing value"
    leaf["value"] = bad
    return broken, f"{path}.value", how


@PROPERTY
@given(case=broken_trees(gen.condition_trees))
def test_one_broken_node_is_refused_with_its_path(case: tuple[Any, str, str]) -> None:
    tree, path, how = case
    with pytest.raises(ConditionError) as info:
        validate(tree)
    assert info.value.path == path, (how, info.value)
    # The API schema refuses it on save with the same path.
    body = {"name": "x", "triggers": ["purchase"], "conditions": tree,
            "effect": {"type": "fixed", "points": 1}}  # fmt: skip
    with pytest.raises(ValidationError) as err:
        RuleBody.model_validate(body)
    assert f"{path}: " in str(err.value), (how, str(err.value))


@PROPERTY
@given(case=broken_trees(gen.item_trees.map(lambda t: {"items": {"where": t}})))
def test_a_broken_items_filter_of_an_effect_is_refused_with_its_path(
    case: tuple[Any, str, str],
) -> None:
    tree, path, how = case
    where = tree["items"]["where"]
    expected = path.replace("conditions.items.where", "effect.items_where", 1)
    body = {"name": "x", "triggers": ["purchase"], "effect": {
        "type": "per_item", "points": 1, "items_where": where}}  # fmt: skip
    with pytest.raises(ValidationError) as err:
        RuleBody.model_validate(body)
    assert f"{expected}: " in str(err.value), (how, str(err.value))


@PROPERTY
@given(tree=gen.condition_trees)
def test_well_formed_trees_validate_and_round_trip_through_the_schema(tree: Any) -> None:
    validate(tree)
    body = RuleBody.model_validate(
        {
            "name": "x",
            "triggers": ["purchase"],
            "conditions": tree,
            "effect": {"type": "fixed", "points": 1},
        }
    )
    assert canonical(body.conditions) == canonical(tree)
    again = RuleBody.model_validate_json(body.model_dump_json())
    assert canonical(again.conditions) == canonical(tree)


# --------------------------------------------------------------------------- the database

_tenants = itertools.count()


@st.composite
def event_payloads(draw: st.DrawFn, n: int) -> dict[str, Any]:
    """A valid event for the API: a purchase (most), a review, or a partial refund."""
    kind = draw(st.sampled_from(["purchase", "purchase", "purchase", "review", "refund"]))
    member = {"external_id": draw(st.sampled_from(["A", "B", "C"]))}
    at = draw(gen.moments).astimezone(JKT).isoformat()
    if kind == "review":
        return {"id": f"e{n}", "type": "review.submitted", "member": member, "occurred_at": at,
                "attributes": {"rating": draw(st.integers(1, 5))}}  # fmt: skip
    if kind == "refund":
        return {"id": f"e{n}", "type": "refund", "member": member, "occurred_at": at,
                "order_id": f"o{draw(st.integers(0, max(0, n - 1)))}",
                "amount": str(draw(st.integers(1, 50_000)))}  # fmt: skip
    items = draw(st.lists(gen.line_items, min_size=0, max_size=3))
    amount = sum(int(i["quantity"]) * int(i["unit_price"]) for i in items)
    event = {"id": f"e{n}", "type": "purchase", "member": member, "occurred_at": at,
             "order_id": f"o{n}", "amount": str(amount or draw(st.integers(1, 500_000))),
             "currency": "IDR", "store": draw(st.sampled_from(["bandung-dago", "online"]))}  # fmt: skip
    if items:
        event["items"] = items
    return event


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    bodies = draw(st.lists(gen.rule_bodies(), min_size=1, max_size=4))
    for i, b in enumerate(bodies):
        b["name"] = f"rule {i}"
        b.get("schedule", {}).pop("active_from", None)  # keep them firing in the window
        if "schedule" in b:
            b["schedule"].pop("active_to", None)
            if not b["schedule"]:
                del b["schedule"]
    n = draw(st.integers(1, 10))
    payloads = [draw(event_payloads(i)) for i in range(n)]
    return bodies, payloads


def setup_tenant(db: Database, bodies: list[dict[str, Any]]) -> tuple[uuid.UUID, uuid.UUID]:
    t = make_tenant(db, name=f"Prop {next(_tenants)}")
    with db.session() as s:
        program = s.get(Program, t.program_id)
        assert program is not None
        for body in bodies:
            rules.create_rule(s, program, RuleBody.model_validate(body), actor="test")
    return t.tenant_id, t.program_id


def record(db: Database, tenant_id: uuid.UUID, payload: dict[str, Any]) -> dict[str, Any] | None:
    """One event in its own transaction, as POST /v1/events; None when refused."""
    from setia.core.errors import SetiaError

    try:
        with db.session() as s:
            tenant = s.get(Tenant, tenant_id)
            assert tenant is not None
            return events.record_event(s, tenant, EventIn.model_validate(payload)).result
    except SetiaError:
        return None


def earned_by_event(db: Database, program_id: uuid.UUID) -> dict[str, int]:
    with db.session() as s:
        rows = s.execute(
            select(Transfer.idempotency_key, Transfer.amount).where(
                Transfer.program_id == program_id, Transfer.code == "EARN"
            )
        ).all()
    out: dict[str, int] = defaultdict(int)
    for key, amount in rows:
        if key.startswith("event:"):
            out[key.split(":")[1]] += int(amount)
    return dict(out)


TABLES = ("events", "orders", "ledger_transfers", "ledger_entries", "point_lots", "rule_awards",
          "members", "outbox")  # fmt: skip


@DB_PROPERTY
@given(scenario=scenarios())
def test_awards_keep_the_ledger_sound_and_retries_never_earn_twice(
    db: Database, scenario: tuple[list[dict[str, Any]], list[dict[str, Any]]]
) -> None:
    bodies, payloads = scenario
    tenant_id, program_id = setup_tenant(db, bodies)
    results = {p["id"]: record(db, tenant_id, p) for p in payloads}
    with db.session() as s:
        report = verify(s)
        assert report.ok, report.checks
    # Every award is one EARN transfer for exactly its points.
    transfers = earned_by_event(db, program_id)
    for result in results.values():
        if result is None or "points" not in result:
            continue
        points = result["points"]
        assert points["earned"] == sum(a["points"] for a in points["awards"])
        assert transfers.get(result["event_id"], 0) == points["earned"]
        assert all(a["points"] > 0 for a in points["awards"])
    # Budgets hold in the usage rows.
    with db.session() as s:
        used = dict(
            s.execute(
                select(RuleAward.rule_id, func.sum(RuleAward.points))
                .where(RuleAward.program_id == program_id)
                .group_by(RuleAward.rule_id)
            ).all()
        )
        budgets = {r.id: r.definition.get("budget_points") for r in rules.list_rules(s, program_id)}
    for rule_id, total in used.items():
        if budgets.get(rule_id) is not None:
            assert total <= budgets[rule_id]
    # Retry every event, one by one and then as one batch: the first answers, nothing new.
    before = counts(db, TABLES)
    for p in payloads:
        again = record(db, tenant_id, p)
        if results[p["id"]] is not None:
            assert again == results[p["id"]]
    with db.session() as s:
        tenant = s.get(Tenant, tenant_id)
        assert tenant is not None
        batch = record_batch(s, tenant, payloads)
    recorded = sum(r is not None for r in results.values())
    assert batch.created == 0
    assert batch.duplicates == recorded
    assert counts(db, TABLES) == before
    with db.session() as s:
        assert verify(s).ok


def _chronological(
    payloads: list[dict[str, Any]], bodies: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Purchases and reviews in time order; no tag effects (replay reads today's tags)."""
    kept = sorted((p for p in payloads if p["type"] != "refund"), key=lambda p: p["occurred_at"])
    for b in bodies:
        if b["effect"]["type"] == "add_tag":
            b["effect"] = {"type": "fixed", "points": 7}
    return kept, bodies


@DB_PROPERTY
@given(scenario=scenarios())
def test_replay_writes_nothing_and_reproduces_recording(
    db: Database, scenario: tuple[list[dict[str, Any]], list[dict[str, Any]]]
) -> None:
    payloads, bodies = _chronological(scenario[1], scenario[0])
    tenant_id, program_id = setup_tenant(db, bodies)
    results = [record(db, tenant_id, p) for p in payloads]
    recorded_points = sum(r["points"]["earned"] for r in results if r is not None)
    by_member: dict[str, int] = defaultdict(int)
    for r in results:
        if r is not None and r["points"]["earned"]:
            by_member[r["member_id"]] += r["points"]["earned"]
    before = counts(db)
    with db.session() as s:
        tenant = s.get(Tenant, tenant_id)
        program = s.get(Program, program_id)
        assert tenant is not None
        assert program is not None
        start = gen.START - timedelta(days=1)
        out = simulate.replay(
            s, tenant, program, [RuleBody.model_validate(b) for b in bodies],
            start=start, end=gen.END + timedelta(days=1), top=100,
        )  # fmt: skip
        s.rollback()
    assert counts(db) == before
    assert out["events"] == sum(r is not None for r in results)
    # The current rules, replayed, give what recording gave, member by member.
    assert out["current"]["points"] == recorded_points
    # The same rules proposed make no difference.
    assert out["proposed"]["points"] == out["current"]["points"]
    assert out["difference"] == {"points": 0, "cost": out["difference"]["cost"],
                                 "members_affected": 0}  # fmt: skip
    assert out["current"]["members_awarded"] == len(by_member)
