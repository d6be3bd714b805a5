"""Happy-vs-loyal labels and loyalty types: constructed members with known behaviour."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from setia.analytics import labels
from setia.analytics import members as analytics_members
from setia.core.db import Database
from setia.core.errors import InvalidInput
from setia.ledger import service as ledger
from setia.members.models import Member
from setia.programs.models import Program
from setia.referrals import service as referral_service
from setia.referrals.models import Referral
from setia.tenants.models import Tenant
from tests.analytics.test_service_cli import cli as cli
from tests.analytics.test_service_members import buy, refund
from tests.conftest import TenantFixture, make_tenant
from tests.ledger.support import member_by_external_id, new_member, post_event, tx
from tests.rules.helpers import JKT, Api

BONUS_AMOUNT = "1000000"


def ago(days: int) -> str:
    """Noon (Jakarta) ``days`` local days before today."""
    d = dt.datetime.now(JKT).date() - dt.timedelta(days=days)
    return dt.datetime(d.year, d.month, d.day, 12, 0, tzinfo=JKT).isoformat()


def review(t: TenantFixture, db: Database, ext: str, event_id: str, at: str) -> None:
    post_event(
        db,
        t,
        {
            "id": event_id,
            "type": "review.submitted",
            "member": {"external_id": ext},
            "occurred_at": at,
        },
    )


def redeem(db: Database, t: TenantFixture, member_id: uuid.UUID, key: str) -> None:
    ctx = ledger.Context(program_id=t.program_id, idempotency_key=key, request_hash=key)
    tx(db, lambda s: ledger.spend(s, ctx, member_id=member_id, amount=1))


def population(db: Database, t: TenantFixture, client: TestClient) -> dict[str, uuid.UUID]:
    Api(client, t).add_rule(
        name="Bonus day",
        conditions={"field": "event.amount", "op": "gte", "value": BONUS_AMOUNT},
    )
    # weekly regular, no promotions: 8 purchases 7 days apart, the last a week ago
    for k in range(8):
        buy(t, db, "weekly", f"w{k}", ago(7 + 7 * k), "50000")
    # deal hunter: buys only when the bonus rule fires, irregularly, and redeems often
    for k, d in enumerate((57, 50, 29, 4)):
        buy(t, db, "deal", f"d{k}", ago(d), BONUS_AMOUNT)
    # fan: one purchase 40 days ago, two reviews
    buy(t, db, "fan", "f0", ago(40), "30000")
    review(t, db, "fan", "f-r1", ago(39))
    review(t, db, "fan", "f-r2", ago(20))
    # newbie: one purchase yesterday
    buy(t, db, "newbie", "n0", ago(1), "20000")
    # lapsed regular: weekly for 8 weeks, the last 200 days ago
    for k in range(8):
        buy(t, db, "lapsed", f"l{k}", ago(200 + 7 * k), "40000")
    # slipping regular: weekly for 6 weeks, the last 60 days ago
    for k in range(6):
        buy(t, db, "slipping", f"s{k}", ago(60 + 7 * k), "40000")
    # refunder: one purchase 50 days ago, half refunded
    buy(t, db, "refunder", "r0", ago(50), "60000")
    refund(t, db, "refunder", "r0r", "r0", ago(49), "30000")
    ids = {
        k: member_by_external_id(db, t, k)
        for k in ("weekly", "deal", "fan", "newbie", "lapsed", "slipping", "refunder")
    }
    for k in range(2):
        redeem(db, t, ids["deal"], f"deal-redeem-{k}")
    return ids


def member(client: TestClient, t: TenantFixture, mid: uuid.UUID, **params: Any) -> Any:
    r = client.get(f"/v1/analytics/members/{mid}", params=params, headers=t.headers)
    assert r.status_code == 200, r.text
    return r.json()


def test_labels_and_types(db: Database, tenant: TenantFixture, client: TestClient) -> None:
    ids = population(db, tenant, client)

    weekly = member(client, tenant, ids["weekly"])
    assert weekly["label"]["label"] == "loyal"
    ev = weekly["label"]["evidence"]
    assert ev["purchase_days"] == 8
    assert ev["recency_days"] == 7
    assert ev["tenure_days"] == 56
    assert ev["rule"] == "repeat buyer, active (recency_days <= active_days)"
    assert ev["p_alive"] is None  # too few members for the purchase model
    assert weekly["loyalty"]["primary"] == "habitual"
    assert weekly["loyalty"]["scores"] == {"habitual": 1.0, "transactional": 0.0, "emotional": 0.0}
    hab = weekly["loyalty"]["evidence"]["habitual"]
    assert hab["gaps_days"] == [7] * 7
    assert hab["gap_cv"] == 0.0
    assert hab["promotion_share"] == 0

    deal = member(client, tenant, ids["deal"])
    assert deal["label"]["label"] == "loyal"
    tr = deal["loyalty"]["evidence"]["transactional"]
    assert tr["orders"] == 4
    assert tr["promotion_orders"] == 4
    assert tr["redemptions"] == 2
    assert deal["loyalty"]["scores"]["transactional"] == 1.0
    assert deal["loyalty"]["scores"]["habitual"] == 0.0
    assert deal["loyalty"]["primary"] == "transactional"

    fan = member(client, tenant, ids["fan"])
    assert fan["label"]["label"] == "happy"
    assert fan["loyalty"]["scores"]["emotional"] == pytest.approx(0.6667)
    assert fan["loyalty"]["evidence"]["emotional"]["advocacy_events"] == 2
    assert fan["loyalty"]["primary"] == "emotional"

    newbie = member(client, tenant, ids["newbie"])
    assert newbie["label"]["label"] == "new"
    assert newbie["label"]["evidence"]["tenure_days"] == 1
    assert newbie["loyalty"]["primary"] == "none"

    assert member(client, tenant, ids["lapsed"])["label"]["label"] == "lost"
    slipping = member(client, tenant, ids["slipping"])
    assert slipping["label"]["label"] == "at_risk"
    assert slipping["label"]["evidence"]["recency_days"] == 60
    assert member(client, tenant, ids["refunder"])["label"]["label"] == "dissatisfied"

    report = client.get("/v1/analytics/labels", headers=tenant.headers).json()
    assert report["members"] == 7
    assert report["labels"] == {
        "none": 0,
        "dissatisfied": 1,
        "new": 1,
        "lost": 1,
        "loyal": 2,
        "at_risk": 1,
        "happy": 1,
    }
    assert report["loyalty_types"] == {
        "habitual": 3,  # weekly, lapsed and slipping regulars
        "transactional": 1,
        "emotional": 1,
        "none": 2,  # newbie, refunder
    }
    assert report["thresholds"]["lost_days"] == 180

    def listed(**params: Any) -> set[uuid.UUID]:
        r = client.get("/v1/analytics/members", params=params, headers=tenant.headers)
        assert r.status_code == 200, r.text
        return {uuid.UUID(i["member_id"]) for i in r.json()["data"]}

    assert listed(label="loyal") == {ids["weekly"], ids["deal"]}
    assert listed(label="loyal", loyalty_type="transactional") == {ids["deal"]}
    assert listed(loyalty_type="emotional") == {ids["fan"]}


def test_thresholds_change_the_outcome(
    db: Database, tenant: TenantFixture, client: TestClient
) -> None:
    ids = population(db, tenant, client)
    # a longer lost window: the lapsed regular is only at risk
    lapsed = member(client, tenant, ids["lapsed"], lost_days=300)
    assert lapsed["label"]["label"] == "at_risk"
    # more purchase days needed: the weekly regular is not yet a repeat buyer, only happy
    assert member(client, tenant, ids["weekly"], loyal_min_days=9)["label"]["label"] == "happy"
    # a longer new window: new takes precedence over loyal
    assert member(client, tenant, ids["weekly"], new_days=60)["label"]["label"] == "new"
    # a shorter active window: the deal hunter still active, the weekly regular at risk
    assert member(client, tenant, ids["weekly"], active_days=5)["label"]["label"] == "at_risk"
    # a high bar for a primary type
    fan = member(client, tenant, ids["fan"], primary_min_score=0.9)
    assert fan["loyalty"]["primary"] == "none"
    # another event type counts as advocacy
    other = member(client, tenant, ids["fan"], advocacy_type="profile.completed")
    assert other["loyalty"]["scores"]["emotional"] == 0.0
    report = client.get(
        "/v1/analytics/labels", params={"lost_days": 300}, headers=tenant.headers
    ).json()
    assert report["labels"]["lost"] == 0
    assert report["labels"]["at_risk"] == 2


def test_precedence_in_code() -> None:
    """Within the evidence rules: new before lost before loyal before at_risk before happy."""
    assert labels.PRECEDENCE == (
        "none",
        "dissatisfied",
        "new",
        "lost",
        "loyal",
        "at_risk",
        "happy",
    )
    with pytest.raises(InvalidInput):
        labels.Thresholds(lost_days=10, active_days=45)
    with pytest.raises(InvalidInput):
        labels.Thresholds(lost_p_alive=0.9, active_p_alive=0.5)


def test_tenant_isolation(db: Database, tenant: TenantFixture, client: TestClient) -> None:
    ids = population(db, tenant, client)
    other = make_tenant(db, name="Other")
    report = client.get("/v1/analytics/labels", headers=other.headers).json()
    assert report["members"] == 0
    assert sum(report["labels"].values()) == 0
    r = client.get(f"/v1/analytics/members/{ids['weekly']}", headers=other.headers)
    assert r.status_code == 404
    assert (
        client.get(
            "/v1/analytics/members", params={"label": "loyal"}, headers=other.headers
        ).json()["data"]
        == []
    )


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/v1/analytics/labels", {"loyal_min_days": 0}),
        ("/v1/analytics/labels", {"active_p_alive": 2}),
        ("/v1/analytics/labels", {"lost_days": 10}),
        ("/v1/analytics/labels", {"lost_p_alive": 0.9}),
        ("/v1/analytics/members", {"label": "royal"}),
        ("/v1/analytics/members", {"loyalty_type": "fickle"}),
    ],
)
def test_bad_params(
    tenant: TenantFixture, client: TestClient, path: str, params: dict[str, Any]
) -> None:
    r = client.get(path, params=params, headers=tenant.headers)
    assert r.status_code == 422, r.text


def test_labels_cli(db: Database, tenant: TenantFixture, client: TestClient, cli: Any) -> None:
    ids = population(db, tenant, client)
    t = str(tenant.tenant_id)
    r = cli("analytics", "labels", "--tenant", t)
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["members"] == 7
    assert data["labels"]["loyal"] == 2
    assert data["labels"]["lost"] == 1
    r = cli("analytics", "labels", "--tenant", t, "--csv", "--lost-days", "300")
    assert r.exit_code == 0, r.output
    rows = {row["member_id"]: row for row in csv.DictReader(io.StringIO(r.stdout))}
    assert rows[str(ids["lapsed"])]["label"] == "at_risk"
    assert rows[str(ids["weekly"])]["loyalty_type"] == "habitual"
    assert rows[str(ids["deal"])]["loyalty_type"] == "transactional"
    r = cli("analytics", "labels", "--tenant", t, "--lost-days", "10")
    assert r.exit_code != 0
    assert "lost_days" in r.output


def test_p_alive_decides_when_the_model_is_fitted(
    db: Database, tenant: TenantFixture, client: TestClient
) -> None:
    """25 members, model fitted: the evidence carries P(alive) and the p/q thresholds act."""
    from tests.analytics.test_service_members import AS_OF, random_history

    random_history(db, tenant)

    def report(**params: Any) -> Any:
        r = client.get(
            "/v1/analytics/labels", params={"as_of": AS_OF, **params}, headers=tenant.headers
        )
        assert r.status_code == 200, r.text
        return r.json()

    base = report()
    assert base["predictions_missing"] is None
    assert base["members"] == 25
    # the members buy at random with no drop-out: P(alive) ≈ 1 for all, so even with no
    # recency window (active_days=0) every repeat buyer is active by P(alive): none at risk
    strict = report(active_days=0)
    assert strict["labels"]["at_risk"] == 0
    assert strict["labels"]["loyal"] == base["labels"]["loyal"] + base["labels"]["at_risk"]
    assert strict["labels"]["loyal"] > 0
    items = client.get(
        "/v1/analytics/members", params={"as_of": AS_OF, "limit": 500}, headers=tenant.headers
    ).json()["data"]
    some = uuid.UUID(items[0]["member_id"])
    one = member(client, tenant, some, as_of=AS_OF)
    assert one["label"]["evidence"]["p_alive"] == pytest.approx(
        one["predictions"]["p_alive"], abs=1e-4
    )


def test_no_purchase_labels(db: Database, tenant: TenantFixture, client: TestClient) -> None:
    buy(tenant, db, "gone", "g0", ago(40), "10000")
    refund(tenant, db, "gone", "g0r", "g0", ago(39), "10000")
    gone = member(client, tenant, member_by_external_id(db, tenant, "gone"))
    assert gone["label"]["label"] == "dissatisfied"
    assert gone["label"]["evidence"]["rule"] == "no purchase left after refunds"
    review(tenant, db, "quiet", "q-r1", ago(3))
    quiet = member(client, tenant, member_by_external_id(db, tenant, "quiet"))
    assert quiet["label"] == {"label": "none", "evidence": {"rule": "no order"}}
    assert quiet["loyalty"]["primary"] == "none"


def referrals(
    db: Database, t: TenantFixture, referrer: uuid.UUID, rows: list[tuple[str, int | None]]
) -> None:
    """Referrals by ``referrer``: (status, days ago it qualified or None), each with a new
    referee, written as the referral service leaves them."""
    referees = [new_member(db, t, f"referee-{referrer}-{i}") for i in range(len(rows))]

    def run(s: Session) -> None:
        m = s.get(Member, referrer)
        assert m is not None
        code = referral_service.ensure_code(s, t.tenant_id, m)
        for referee, (status, days) in zip(referees, rows, strict=True):
            at = dt.datetime.now(dt.UTC) - dt.timedelta(days=60)
            qualified = None if days is None else dt.datetime.now(dt.UTC) + dt.timedelta(-days)
            s.add(
                Referral(
                    tenant_id=t.tenant_id,
                    program_id=t.program_id,
                    code_id=code.id,
                    code=code.code,
                    referrer_id=referrer,
                    referee_id=referee,
                    status=status,
                    qualified_at=qualified,
                    created_at=at,
                    updated_at=at,
                )
            )

    tx(db, run)


def test_qualified_referrals_are_advocacy(
    db: Database, tenant: TenantFixture, client: TestClient
) -> None:
    ids = population(db, tenant, client)
    # The fan (two reviews) made referrals: one qualified and one rewarded count; pending,
    # held, rejected and cancelled ones do not, nor one qualified after as_of.
    referrals(
        db,
        tenant,
        ids["fan"],
        [
            ("qualified", 10),
            ("rewarded", 5),
            ("pending", None),
            ("held", None),
            ("rejected", None),
            ("cancelled", None),
            ("rewarded", -3),  # qualified three days after now: not yet at as_of
        ],
    )
    fan = member(client, tenant, ids["fan"])
    emo = fan["loyalty"]["evidence"]["emotional"]
    assert emo["advocacy_events"] == 2
    assert emo["qualified_referrals"] == 2
    assert emo["advocacy"] == ["2 review.submitted events", "2 qualified referrals"]
    assert fan["loyalty"]["scores"]["emotional"] == 1.0
    assert "referrals" not in emo["not_recorded"]
    # as of twelve days ago, neither referral had qualified yet (the reviews were earlier)
    past = member(client, tenant, ids["fan"], as_of=ago(12)[:10] + "T00:00:00Z")
    assert past["loyalty"]["evidence"]["emotional"]["qualified_referrals"] == 0

    # The weekly regular (loyal, habitual) with one qualified referral: emotional 0.33, still
    # habitual; the loyal label lists the advocacy as evidence.
    referrals(db, tenant, ids["weekly"], [("qualified", 3)])
    weekly = member(client, tenant, ids["weekly"])
    assert weekly["loyalty"]["scores"]["emotional"] == pytest.approx(0.3333)
    assert weekly["loyalty"]["evidence"]["emotional"]["advocacy"] == ["1 qualified referral"]
    assert weekly["loyalty"]["primary"] == "habitual"
    assert weekly["label"]["label"] == "loyal"
    assert weekly["label"]["evidence"]["advocacy"] == 1

    # the same figures from the batch (one grouped query for every member)
    with db.session() as s:
        t = s.get(Tenant, tenant.tenant_id)
        p = s.get(Program, tenant.program_id)
        assert t is not None
        assert p is not None
        everyone = labels.classify(s, analytics_members.analyse(s, t, p))
    assert everyone[ids["fan"]].loyalty_evidence["emotional"]["qualified_referrals"] == 2
    assert everyone[ids["weekly"]].scores["emotional"] == pytest.approx(0.3333)
    assert everyone[ids["deal"]].loyalty_evidence["emotional"]["qualified_referrals"] == 0
