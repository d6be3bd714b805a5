"""The rules admin API: create, read, update (revisions), enable/disable, list, export/import,
campaigns; validation errors that point at the bad node; tenants cannot see each other."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from setia.audit.models import AuditRecord
from setia.core.db import Database
from setia.ledger.models import Transfer
from setia.rules.models import RuleAward
from tests.conftest import make_tenant
from tests.rules.helpers import Api, by_rule, counts, rule


def problem(r: Any, status: int = 422) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = r.json()
    return body


def test_create_get_list(api: Api) -> None:
    a = api.add_rule(name="Late", priority=300)
    b = api.add_rule(name="Early", priority=150, description="Pagi hari")
    assert a["revision"] == 1
    assert a["program_id"] == str(api.tenant.program_id)
    got = api.get(f"/v1/rules/{b['id']}").json()
    assert got == b
    assert got["description"] == "Pagi hari"
    listed = api.get("/v1/rules").json()
    assert [r["name"] for r in listed] == ["Early", "Late"]


def test_update_makes_a_revision_and_awards_keep_theirs(api: Api, db: Database) -> None:
    r = api.add_rule(name="Bonus", effect={"type": "fixed", "points": 10})
    first = api.purchase(10_000)
    body = rule(name="Bonus v2", effect={"type": "fixed", "points": 25})
    updated = api.put(f"/v1/rules/{r['id']}", body)
    assert updated.status_code == 200, updated.text
    assert updated.json()["revision"] == 2
    assert updated.json()["name"] == "Bonus v2"
    second = api.purchase(10_000)
    assert by_rule(first)["Bonus"] == 10
    assert by_rule(second)["Bonus v2"] == 25
    a1 = next(a for a in first["points"]["awards"] if a["rule_id"] == r["id"])
    a2 = next(a for a in second["points"]["awards"] if a["rule_id"] == r["id"])
    assert (a1["revision"], a2["revision"]) == (1, 2)
    # The recorded event still says revision 1, and so do the usage row and the transfer.
    again = api.get(f"/v1/events/{first['id']}").json()
    assert next(a for a in again["points"]["awards"] if a["rule_id"] == r["id"])["revision"] == 1
    with db.session() as s:
        rows = s.execute(select(RuleAward.points, RuleAward.rule_revision)).all()
        assert sorted(rows) == [(10, 1), (25, 2)]
        t = s.get(Transfer, uuid.UUID(a1["transfer_id"]))
        assert t is not None
        assert t.details["rule_revision"] == 1
        assert t.details["rule"] == r["id"]


def test_revisions_say_who_changed_what_and_when(
    api: Api, client: TestClient, db: Database
) -> None:
    r = api.add_rule(name="Bonus", effect={"type": "fixed", "points": 10})
    new_key = api.post("/v1/api-keys", {"scope": "admin", "name": "ops"}).json()
    other = {"Authorization": f"Bearer {new_key['api_key']}"}
    body = rule(name="Bonus", effect={"type": "fixed", "points": 20})
    assert client.put(f"/v1/rules/{r['id']}", json=body, headers=other).status_code == 200
    assert api.post(f"/v1/rules/{r['id']}/disable").json()["revision"] == 3
    # Saving the same definition again is not a change.
    assert client.put(f"/v1/rules/{r['id']}", json={**body, "enabled": False},
                      headers=other).json()["revision"] == 3  # fmt: skip
    revs = api.get(f"/v1/rules/{r['id']}/revisions").json()
    assert [v["revision"] for v in revs] == [1, 2, 3]
    assert [v["definition"]["effect"]["points"] for v in revs] == [10, 20, 20]
    assert [v["definition"]["enabled"] for v in revs] == [True, True, False]
    keys = {k["name"]: k["id"] for k in api.get("/v1/api-keys").json()}
    assert revs[1]["changed_by"] == f"api-key:{keys['ops']}"
    assert revs[0]["changed_by"] == revs[2]["changed_by"] != revs[1]["changed_by"]
    assert revs[0]["created_at"] <= revs[1]["created_at"] <= revs[2]["created_at"]
    with db.session() as s:
        actions = s.execute(
            select(AuditRecord.action, AuditRecord.details)
            .where(AuditRecord.subject_id == str(r["id"]))
            .order_by(AuditRecord.id)
        ).all()
    assert [(a, d["revision"]) for a, d in actions] == [
        ("rule.created", 1),
        ("rule.updated", 2),
        ("rule.updated", 3),
    ]


def test_revisions_are_append_only(api: Api, db: Database) -> None:
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    api.add_rule(name="Bonus")
    for statement in ("UPDATE rule_revisions SET revision = 9", "DELETE FROM rule_revisions"):
        with pytest.raises(DBAPIError, match="append-only"), db.engine.begin() as conn:
            conn.execute(text(statement))


def test_enable_and_disable(api: Api) -> None:
    r = api.add_rule(name="Bonus")
    off = api.post(f"/v1/rules/{r['id']}/disable").json()
    assert (off["enabled"], off["revision"]) == (False, 2)
    assert api.post(f"/v1/rules/{r['id']}/disable").json()["revision"] == 2  # already off
    on = api.post(f"/v1/rules/{r['id']}/enable").json()
    assert (on["enabled"], on["revision"]) == (True, 3)


VALIDATION: list[tuple[dict[str, Any], str]] = [
    (
        rule(conditions={"all": [{"field": "event.amont", "op": "gte", "value": "1"}]}),
        "conditions.all[0].field",
    ),
    (
        rule(conditions={"all": [{"field": "event.amount", "op": "gte", "value": "x"}]}),
        "conditions.all[0].value",
    ),
    (
        rule(conditions={"any": [{"field": "event.store", "op": "like", "value": "x"}]}),
        "conditions.any[0].op",
    ),
    (
        rule(conditions={"not": {"all": [{"op": "eq", "value": "x"}]}}),
        "conditions.not.all[0]",
    ),
    (
        rule(
            effect={
                "type": "per_amount",
                "points": 1,
                "per": "1000",
                "scope": "items",
                "items_where": {"field": "item.sku", "op": "gte", "value": "x"},
            }
        ),
        "effect.items_where.op",
    ),
    (rule(effect={"type": "per_amount", "points": 1}), "per"),
    (rule(effect={"type": "per_amount", "points": 1, "per": "0"}), "per must be a positive"),
    (rule(effect={"type": "per_amount", "points": 1, "per": "1000", "scope": "items"}), "items_where"),
    (rule(effect={"type": "multiplier", "factor": "0.5"}), "factor"),
    (rule(effect={"type": "multiplier"}), "factor"),
    (rule(effect={"type": "add_tag"}), "tag"),
    (rule(effect={"type": "fixed"}), "points"),
    (rule(effect={"type": "fixed", "points": -1}), "points"),
    (rule(effect={"type": "cashback", "points": 1}), "type"),
    (rule(triggers=["review.submitted"], effect={"type": "multiplier", "factor": "2"}), "purchase"),
    (rule(triggers=[]), "triggers"),
    (rule(triggers=["Purchase!"]), "not an event type"),
    (rule(limits=[{"period": "day"}]), "exactly one"),
    (rule(limits=[{"period": "day", "max_points": 1, "max_count": 1}]), "exactly one"),
    (rule(limits=[{"period": "order", "max_count": 1}]), "per-order"),
    (rule(limits=[{"period": "fortnight", "max_count": 1}]), "period"),
    (rule(mode="greedy"), "mode"),
    (rule(priority=-1), "priority"),
    (rule(colour="red"), "colour"),
    (rule(name=""), "name"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "words"), VALIDATION, ids=[w for _b, w in VALIDATION])
def test_invalid_rules_are_refused_with_the_path(
    api: Api, db: Database, body: dict[str, Any], words: str
) -> None:
    before = counts(db, ("rules", "rule_revisions", "audit_log"))
    out = problem(api.post("/v1/rules", body))
    assert out["code"] == "validation_error"
    assert words in out["detail"], out["detail"]
    assert counts(db, ("rules", "rule_revisions", "audit_log")) == before
    # An update is checked the same way.
    r = api.add_rule(name="Fine")
    out = problem(api.put(f"/v1/rules/{r['id']}", body))
    assert words in out["detail"]
    assert api.get(f"/v1/rules/{r['id']}").json()["revision"] == 1


def test_non_finite_numbers_in_a_rule_are_refused(api: Api, db: Database) -> None:
    """JSON parsers accept NaN and Infinity; a rule holding one is refused (not a 500)."""
    before = counts(db, ("rules", "rule_revisions"))
    for value in ("NaN", "Infinity", "[1, -Infinity]"):
        body = (
            '{"name": "x", "triggers": ["purchase"], "effect": {"type": "fixed", "points": 1},'
            f' "conditions": {{"field": "event.attributes.rating", "op": "eq", "value": {value}}}}}'
        )
        r = api.client.post(
            "/v1/rules", content=body, headers={**api.headers, "Content-Type": "application/json"}
        )
        out = problem(r)
        assert "conditions.value" in out["detail"], out["detail"]
        assert "finite" in out["detail"]
    assert counts(db, ("rules", "rule_revisions")) == before


def test_unknown_campaign_is_refused(api: Api, client: TestClient, db: Database) -> None:
    out = problem(api.post("/v1/rules", rule(campaign_id=str(uuid.uuid4()))), 404)
    assert out["code"] == "campaign_not_found"
    other = Api(client, make_tenant(db, name="Other"))
    theirs = other.add_campaign(name="Theirs")
    out = problem(api.post("/v1/rules", rule(campaign_id=theirs["id"])), 404)
    assert out["code"] == "campaign_not_found"


def test_another_tenants_rules_are_not_found(api: Api, client: TestClient, db: Database) -> None:
    other = Api(client, make_tenant(db, name="Other"))
    theirs = other.add_rule(name="Theirs")
    campaign = other.add_campaign(name="Theirs")
    rid = theirs["id"]
    for r in (
        api.get(f"/v1/rules/{rid}"),
        api.put(f"/v1/rules/{rid}", rule(name="Mine now")),
        api.post(f"/v1/rules/{rid}/disable"),
        api.post(f"/v1/rules/{rid}/enable"),
        api.get(f"/v1/rules/{rid}/revisions"),
    ):
        assert problem(r, 404)["code"] == "rule_not_found"
    for r in (
        api.get(f"/v1/campaigns/{campaign['id']}"),
        api.put(f"/v1/campaigns/{campaign['id']}", {"name": "Mine"}),
    ):
        assert problem(r, 404)["code"] == "campaign_not_found"
    assert api.get("/v1/rules").json() == []
    assert api.get("/v1/campaigns").json() == []
    assert other.get(f"/v1/rules/{rid}").json()["revision"] == 1
    # And the other tenant's rule never fires on this tenant's events.
    assert by_rule(api.purchase(10_000)) == {"Base earn rate": 10}


def test_read_and_pos_keys_cannot_change_rules(api: Api, client: TestClient) -> None:
    r = api.add_rule(name="Bonus")
    for scope in ("read", "pos"):
        key = api.post("/v1/api-keys", {"scope": scope}).json()["api_key"]
        h = {"Authorization": f"Bearer {key}"}
        assert client.get("/v1/rules", headers=h).status_code == 200
        assert client.post("/v1/rules", json=rule(), headers=h).status_code == 403
        assert client.put(f"/v1/rules/{r['id']}", json=rule(), headers=h).status_code == 403
        assert client.post(f"/v1/rules/{r['id']}/disable", headers=h).status_code == 403
        assert client.post("/v1/campaigns", json={"name": "c"}, headers=h).status_code == 403
        assert client.post("/v1/rules/import", json={"rules": []}, headers=h).status_code == 403


def test_export_then_import_into_another_tenant(api: Api, client: TestClient, db: Database) -> None:
    api.add_rule(
        name="Weekend",
        conditions={"field": "event.local_day_of_week", "op": "in", "value": ["sat", "sun"]},
        effect={"type": "multiplier", "factor": "2"},
        limits=[{"period": "month", "max_points": 500}],
        schedule={"hours": {"start": "06:00", "end": "22:00"}},
    )
    api.add_rule(name="Review", triggers=["review.submitted"], enabled=False)
    api.add_campaign(name="Ramadan", budget_points=10_000)
    exported = api.get("/v1/rules/export").json()
    assert [r["name"] for r in exported["rules"]] == ["Weekend", "Review"]
    assert exported["campaigns"][0]["name"] == "Ramadan"
    other = Api(client, make_tenant(db, name="Other"))
    r = other.post("/v1/rules/import", {"rules": exported["rules"]})
    assert r.status_code == 201, r.text
    created = r.json()
    assert [(c["name"], c["enabled"], c["revision"]) for c in created] == [
        ("Weekend", True, 1),
        ("Review", False, 1),
    ]
    again = other.get("/v1/rules/export").json()["rules"]
    assert again == exported["rules"]


def test_import_is_all_or_nothing(api: Api, db: Database) -> None:
    before = counts(db, ("rules", "rule_revisions"))
    bad = {"name": "Bad", "triggers": ["purchase"], "effect": {"type": "fixed"}}
    out = problem(api.post("/v1/rules/import", {"rules": [rule(name="Good"), bad]}))
    assert "rules.1" in out["detail"] or "rules[1]" in out["detail"], out["detail"]
    assert counts(db, ("rules", "rule_revisions")) == before


def test_campaigns_crud(api: Api) -> None:
    c = api.add_campaign(
        name="Harbolnas 12.12",
        description="Hari Belanja Online Nasional",
        schedule={"active_from": "2026-12-12T00:00:00+07:00", "active_to": "2026-12-13T00:00:00+07:00"},
        budget_points=100_000,
    )  # fmt: skip
    assert c["points_awarded"] == 0
    assert c["enabled"] is True
    listed = api.get("/v1/campaigns").json()
    assert [x["id"] for x in listed] == [c["id"]]
    r = api.put(f"/v1/campaigns/{c['id']}", {"name": "12.12", "budget_points": 5})
    assert r.status_code == 200, r.text
    assert (r.json()["name"], r.json()["budget_points"], r.json()["schedule"]) == ("12.12", 5, None)
    bad = api.post("/v1/campaigns", {"name": "x", "schedule": {"days": ["funday"]}})
    assert bad.status_code == 422


def test_unknown_rule_ids(api: Api) -> None:
    missing = uuid.uuid4()
    assert problem(api.get(f"/v1/rules/{missing}"), 404)["code"] == "rule_not_found"
    assert api.get("/v1/rules/not-a-uuid").status_code == 422
