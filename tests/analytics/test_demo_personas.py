"""The demo's members are generated from known personas; the labels and loyalty types
recover them (setia.analytics.evaluate), and the labels.py fixes that evaluation led to."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from setia.analytics import evaluate, labels, members
from setia.core.db import Database
from setia.demo.generate import build_demo
from setia.events.models import Order
from setia.members.models import Member
from setia.programs.models import Program
from setia.rules.models import Rule, RuleAward
from setia.tenants.models import Tenant
from tests.analytics.test_labels import BONUS_AMOUNT, member
from tests.analytics.test_service_cli import cli as cli
from tests.analytics.test_service_members import buy
from tests.conftest import TenantFixture
from tests.ledger.support import member_by_external_id
from tests.rules.helpers import JKT, Api

MEMBERS = 150
SEED = 7
# Floors below what seed 7 gives at 150 members (measured with referrals counted as advocacy:
# labels precision/recall 0.86-1.0, types: habitual 0.90/0.75-0.78, transactional 0.91/1.0,
# emotional 0.85/0.73, none 0.87/0.92),
# with room: the history ends "now", so weekdays and dates shift from one day to the next,
# and the classes are small. The 2,000-member figures are in docs/analytics.md.
LABEL_FLOORS = {
    "loyal": (0.90, 0.85),  # (precision, recall)
    "happy": (0.90, 0.85),
    "new": (0.90, 0.85),
    "at_risk": (0.70, 0.75),
    "lost": (0.90, 0.90),
}
TYPE_FLOORS = {
    "habitual": (0.85, 0.60),
    "transactional": (0.75, 0.85),
    "emotional": (0.65, 0.55),  # 15 members: one mistake moves a rate by 0.07
    "none": (0.80, 0.85),
}


def test_the_classifier_recovers_the_demo_personas(db: Database, cli: Any) -> None:
    summary = build_demo(db, members=MEMBERS, seed=SEED)
    assert summary["reviews"] > 0
    with db.session() as s:
        tenant = s.get(Tenant, uuid.UUID(summary["tenant_id"]))
        program = s.get(Program, uuid.UUID(summary["program_id"]))
        assert tenant is not None
        assert program is not None
        truth = evaluate.ground_truth(s, tenant.id)
        assert len(truth) == MEMBERS
        # every persona of the mix is there
        assert {k for k, _ in truth.values()} == set(evaluate.TRUTH_LABELS)
        assert {t for _, t in truth.values()} == set(evaluate.TRUTH_TYPES)
        report = evaluate.evaluate(s, tenant, program)
        # The classifier reads no member attribute: with the personas wiped, the labels
        # are the same.
        labelled = labels.classify(s, members.analyse(s, tenant, program))
        for m in s.execute(select(Member).where(Member.tenant_id == tenant.id)).scalars():
            m.attributes = {}
        s.flush()
        again = labels.classify(s, members.analyse(s, tenant, program))
        assert {k: (v.label, v.primary) for k, v in again.items()} == {
            k: (v.label, v.primary) for k, v in labelled.items()
        }
        s.rollback()

        # Tier (and paid-plan) multipliers are a status benefit, not a promotion: the
        # promotion orders of a member whose orders got the tier multiplier count only the
        # other rules' awards.
        tier_rule = s.execute(
            select(Rule.id).where(Rule.program_id == program.id, Rule.name == "Pengali tingkat")
        ).scalar_one()
        benefits = labels.benefit_rules(s, program.id)  # the tier's and the paid plan's
        assert tier_rule in benefits
        assert len(benefits) == 2
        tiered = s.execute(
            select(RuleAward.member_id, func.count())
            .where(RuleAward.rule_id == tier_rule, RuleAward.points > 0)
            .group_by(RuleAward.member_id)
            .order_by(func.count().desc(), RuleAward.member_id)
            .limit(1)
        ).one()
        promo_events = (
            select(RuleAward.event_id)
            .where(RuleAward.rule_id.is_not(None), RuleAward.rule_id.not_in(benefits))
            .where(RuleAward.points > 0)
        )
        expected = s.execute(
            select(func.count())
            .select_from(Order)
            .where(Order.member_id == tiered[0], Order.event_id.in_(promo_events))
        ).scalar_one()
        ev = labelled[tiered[0]].loyalty_evidence["transactional"]
        assert ev["promotion_orders"] == expected < ev["orders"]

    print(evaluate.render(report))
    for part, floors in (("labels", LABEL_FLOORS), ("loyalty_types", TYPE_FLOORS)):
        got = report[part]["per_class"]
        for cls, (precision, recall) in floors.items():
            assert got[cls]["precision"] >= precision, (part, cls, got[cls])
            assert got[cls]["recall"] >= recall, (part, cls, got[cls])

    r = cli("analytics", "evaluate-demo", "--tenant", summary["tenant_id"])
    assert r.exit_code == 0, r.output
    assert "Labels (accuracy" in r.stdout
    assert "confusion (rows: truth, columns: predicted)" in r.stdout
    r = cli("analytics", "evaluate-demo", "--tenant", summary["tenant_id"], "--json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["members"] == MEMBERS
    assert data["labels"]["per_class"] == report["labels"]["per_class"]


def test_evaluate_demo_needs_personas(tenant: TenantFixture, cli: Any) -> None:
    r = cli("analytics", "evaluate-demo", "--tenant", str(tenant.tenant_id))
    assert r.exit_code != 0
    assert "demo persona" in r.output


def test_scores_arithmetic() -> None:
    pairs = [("a", "a"), ("a", "b"), ("b", "b"), ("b", "x"), ("a", "a")]
    out = evaluate.scores(pairs, ("a", "b"), ("a", "b", "x"))
    assert out["confusion"] == {"a": {"a": 2, "b": 1, "x": 0}, "b": {"a": 0, "b": 1, "x": 1}}
    assert out["per_class"]["a"] == {
        "precision": 1.0,
        "recall": 0.6667,
        "support": 3,
        "predicted": 2,
    }
    assert out["per_class"]["b"] == {"precision": 0.5, "recall": 0.5, "support": 2, "predicted": 2}
    assert out["accuracy"] == 0.6


def _weekdays_back(weeks: int) -> list[str]:
    """Monday to Friday, 9:00 Jakarta, of the ``weeks`` whole weeks before this week."""
    today = dt.datetime.now(JKT).date()
    monday = today - dt.timedelta(days=today.weekday() + 7 * weeks)
    return [
        dt.datetime.combine(monday + dt.timedelta(days=7 * w + d), dt.time(9), JKT).isoformat()
        for w in range(weeks)
        for d in range(5)
    ]


def test_a_working_day_routine_is_habitual(
    db: Database, tenant: TenantFixture, client: TestClient
) -> None:
    """Every working day for six weeks: the gaps (1,1,1,1,3) vary, the weeks do not."""
    for k, at in enumerate(_weekdays_back(6)):
        buy(tenant, db, "office", f"o{k}", at, "30000")
    got = member(client, tenant, member_by_external_id(db, tenant, "office"))
    hab = got["loyalty"]["evidence"]["habitual"]
    assert hab["gap_cv"] > 0.5  # gaps alone would give a habitual score below 0.5
    assert hab["weeks"] >= 5
    assert hab["week_dispersion"] == 0.0
    assert got["loyalty"]["scores"]["habitual"] == 1.0
    assert got["loyalty"]["primary"] == "habitual"


def test_a_short_history_is_no_habit(
    db: Database, tenant: TenantFixture, client: TestClient
) -> None:
    """Three visits on three days make evenly spaced gaps but not four weeks of a habit."""
    for k in range(3):
        buy(tenant, db, "fresh", f"f{k}", noon_ago(k + 1), "30000")
    got = member(client, tenant, member_by_external_id(db, tenant, "fresh"))
    hab = got["loyalty"]["evidence"]["habitual"]
    assert hab["gap_cv"] == 0.0
    assert hab["week_dispersion"] is None
    assert got["loyalty"]["scores"]["habitual"] == 0.0
    assert got["loyalty"]["primary"] == "none"


def noon_ago(days: int) -> str:
    d = dt.datetime.now(JKT).date() - dt.timedelta(days=days)
    return dt.datetime.combine(d, dt.time(12), JKT).isoformat()


def test_one_promotion_order_is_not_transactional(
    db: Database, tenant: TenantFixture, client: TestClient
) -> None:
    Api(client, tenant).add_rule(
        name="Bonus day",
        conditions={"field": "event.amount", "op": "gte", "value": BONUS_AMOUNT},
    )
    buy(tenant, db, "once", "x0", noon_ago(40), BONUS_AMOUNT)
    got = member(client, tenant, member_by_external_id(db, tenant, "once"))
    tr = got["loyalty"]["evidence"]["transactional"]
    assert tr["promotion_share"] == 1.0
    assert tr["min_orders"] == 3
    assert got["loyalty"]["scores"]["transactional"] == 0.0
    assert got["loyalty"]["primary"] == "none"
