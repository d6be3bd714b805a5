"""Rules and campaigns pages: list, edit with field errors, revisions, the simulator's why-not,
replay with its cost, roles and CSRF."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from setia.core.db import Database
from setia.rules.models import Rule, RuleRevision
from tests.conftest import TenantFixture


def _rule(client: TestClient, tenant: TenantFixture, **over: Any) -> dict[str, Any]:
    body = {
        "name": "Weekend bonus",
        "triggers": ["purchase"],
        "conditions": {"field": "event.amount", "op": "gte", "value": "50000"},
        "effect": {"type": "fixed", "points": 100},
        **over,
    }
    r = client.post("/v1/rules", json=body, headers=tenant.headers)
    assert r.status_code == 201, r.text
    return dict(r.json())


def _form(**over: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "Big spender",
        "triggers": "purchase",
        "priority": "200",
        "mode": "stackable",
        "conditions": '{"field": "event.amount", "op": "gte", "value": "100000"}',
        "effect": '{"type": "fixed", "points": 50}',
        "limits": "",
        "enabled": "1",
        "action": "save",
    }
    data.update(over)
    return data


def _count(db: Database, model: Any) -> int:
    with db.session() as s:
        return int(s.execute(select(func.count()).select_from(model)).scalar_one())


def test_list_shows_rules_with_status_revision_and_escapes_names(
    console_as: Any, client: TestClient, tenant: TenantFixture
) -> None:
    _rule(client, tenant, name="<script>alert(1)</script>")
    c = console_as("analyst")
    r = c.get("/console/rules")
    assert r.status_code == 200
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in r.text
    assert "<script>alert(1)" not in r.text
    assert "Active" in r.text
    assert 'href="/console/rules/new"' not in r.text  # an analyst only reads


@pytest.mark.parametrize(
    ("lang", "generic"),
    [("id", "Ini bukan JSON yang sah"), ("ms", "Ini bukan JSON yang sah")],
)
def test_bad_json_shows_the_error_next_to_conditions_and_saves_nothing(
    console_as: Any, db: Database, lang: str, generic: str
) -> None:
    c = console_as("marketer", lang=lang)
    r = c.post("/console/rules/new", _form(conditions='{"field": "event.amount", "op": }'))
    assert r.status_code == 422
    err = re.search(r'<p class="field-error" id="err-conditions">([^<]*)</p>', r.text)
    assert err, r.text
    assert generic in err.group(1)
    assert 'aria-invalid="true"' in r.text
    assert _count(db, Rule) == 0


def test_a_wrong_value_inside_the_json_names_its_path(console_as: Any, db: Database) -> None:
    c = console_as("owner", lang="id")
    r = c.post("/console/rules/new", _form(effect='{"type": "fixed", "points": -5}'))
    assert r.status_code == 422
    err = re.search(r'id="err-effect">([^<]*)<', r.text)
    assert err
    assert err.group(1).startswith("effect.points: ")
    assert "0 atau lebih" in err.group(1)
    r = c.post(
        "/console/rules/new",
        _form(conditions='{"all": [{"field": "event.nope", "op": "eq", "value": 1}]}'),
    )
    err = re.search(r'id="err-conditions">([^<]*)<', r.text)
    assert err
    assert err.group(1).startswith("conditions.all[0].field: ")
    assert _count(db, Rule) == 0


def test_create_then_edit_makes_a_new_revision(
    console_as: Any, db: Database, client: TestClient, tenant: TenantFixture
) -> None:
    c = console_as("marketer")
    r = c.post("/console/rules/new", _form())
    assert r.status_code == 303
    rule_url = r.headers["location"]
    page = c.get(rule_url)
    assert "Big spender" in page.text
    assert "Rule Big spender created." in page.text
    r = c.post(rule_url + "/edit", _form(effect='{"type": "fixed", "points": 80}'))
    assert r.status_code == 303
    page = c.get(rule_url)
    assert "Saved as revision 2." in page.text
    assert '<td class="small mono">effect</td>' in page.text  # what revision 2 changed
    rule_id = uuid.UUID(rule_url.rsplit("/", 1)[1])
    with db.session() as s:
        rule = s.get(Rule, rule_id)
        assert rule is not None
        assert rule.revision == 2
        assert rule.definition["effect"]["points"] == 80
    assert _count(db, RuleRevision) == 2
    # Pausing is one more revision.
    r = c.post(rule_url + "/state", {"enabled": "0"})
    assert r.status_code == 303
    assert "Paused" in c.get(rule_url).text
    with db.session() as s:
        rule = s.get(Rule, rule_id)
        assert rule is not None
        assert rule.enabled is False
        assert rule.revision == 3


def test_simulator_shows_a_fired_rule_and_a_why_not(
    console_as: Any, client: TestClient, tenant: TenantFixture
) -> None:
    _rule(client, tenant, name="Big basket", effect={"type": "fixed", "points": 100})
    _rule(
        client,
        tenant,
        name="VIP bonus",
        conditions={"field": "member.tags", "op": "contains", "value": "vip"},
    )
    c = console_as("analyst")
    r = c.post(
        "/console/rules/simulate",
        {"type": "purchase", "amount": "60000", "who": "hypothetical", "tags": "student"},
    )
    assert r.status_code == 200, r.text
    assert re.search(r'data-sim="points">\s*160', r.text)  # 60 base + 100
    assert "Big basket" in r.text
    why = r.text[r.text.index("Why not?") :]
    assert "VIP bonus" in why
    assert "member.tags contains vip — actual value: [&#34;student&#34;]" in why


def test_simulator_form_errors_next_to_the_field(console_as: Any) -> None:
    c = console_as("owner", lang="ms")
    r = c.post("/console/rules/simulate", {"type": "purchase", "amount": "", "who": "member"})
    assert r.status_code == 422
    assert 'id="err-amount"' in r.text
    assert 'id="err-member"' in r.text


def test_replay_shows_the_cost_of_a_change_before_saving(
    console_as: Any, client: TestClient, tenant: TenantFixture, db: Database
) -> None:
    rule = _rule(
        client, tenant, name="Flat", conditions=None, effect={"type": "fixed", "points": 10}
    )
    for i in range(3):
        r = client.post(
            "/v1/events",
            json={
                "id": f"e{i}",
                "type": "purchase",
                "member": {"phone": f"08123456{i:04d}"},
                "order_id": f"o{i}",
                "amount": "20000",
                "currency": "IDR",
            },
            headers=tenant.headers,
        )
        assert r.status_code in (200, 201), r.text
    with db.session() as s:
        from setia.programs.models import Program

        program = s.get(Program, tenant.program_id)
        assert program is not None
        program.cost_per_point = 100  # type: ignore[assignment]
        s.commit()
    c = console_as("marketer", lang="id")
    r = c.post(
        f"/console/rules/{rule['id']}/edit",
        _form(
            name="Flat", conditions="", effect='{"type": "fixed", "points": 30}', action="replay"
        ),
    )
    assert r.status_code == 200, r.text
    assert re.search(r'data-replay="members">\s*3<', r.text)
    assert re.search(r'data-replay="points">\s*\+60<', r.text)
    assert re.search(r'data-replay="cost">Rp\s6\.000<', r.text)
    with db.session() as s:
        saved = s.get(Rule, uuid.UUID(rule["id"]))
        assert saved is not None
        assert saved.revision == 1


def test_roles_marketer_edits_analyst_reads_cashier_is_refused(
    console_as: Any, client: TestClient, tenant: TenantFixture, db: Database
) -> None:
    rule = _rule(client, tenant)
    analyst = console_as("analyst")
    assert analyst.get(f"/console/rules/{rule['id']}").status_code == 200
    assert analyst.get(f"/console/rules/{rule['id']}/edit").status_code == 403
    r = analyst.post(f"/console/rules/{rule['id']}/edit", _form())
    assert r.status_code == 403
    assert analyst.post("/console/rules/new", _form()).status_code == 403
    assert analyst.post(f"/console/rules/{rule['id']}/state", {"enabled": "0"}).status_code == 403
    assert analyst.post("/console/rules/campaigns/new", {"name": "X"}).status_code == 403
    cashier = console_as("cashier")
    assert cashier.get("/console/rules").status_code == 403
    assert cashier.get(f"/console/rules/{rule['id']}").status_code == 403
    assert cashier.post("/console/rules/simulate", {"type": "purchase"}).status_code == 403
    marketer = console_as("marketer")
    assert marketer.get(f"/console/rules/{rule['id']}/edit").status_code == 200
    assert _count(db, RuleRevision) == 1


def test_a_post_without_csrf_is_refused_and_writes_nothing(console_as: Any, db: Database) -> None:
    c = console_as("owner")
    for url in ("/console/rules/new", "/console/rules/simulate", "/console/rules/campaigns/new"):
        assert f'name="csrf_token" value="{c.csrf}"' in c.get(url).text, url
    r = c.post("/console/rules/new", _form(), csrf=False)
    assert r.status_code == 403
    assert _count(db, Rule) == 0
    r = c.post("/console/rules/campaigns/new", {"name": "X", "enabled": "1"}, csrf=False)
    assert r.status_code == 403


def test_campaign_create_and_edit_with_validation(console_as: Any, db: Database) -> None:
    from setia.rules.models import Campaign

    c = console_as("marketer", lang="id")
    r = c.post(
        "/console/rules/campaigns/new",
        {
            "name": "",
            "budget_points": "-1",
            "active_from": "2026-12-12T00:00",
            "active_to": "2026-12-01T00:00",
        },
    )
    assert r.status_code == 422
    assert 'id="err-name"' in r.text
    assert 'id="err-budget_points"' in r.text
    assert _count(db, Campaign) == 0
    r = c.post(
        "/console/rules/campaigns/new",
        {
            "name": "Harbolnas",
            "budget_points": "5000",
            "active_from": "2026-12-12T00:00",
            "active_to": "2026-12-01T00:00",
            "enabled": "1",
        },
    )
    assert r.status_code == 422
    assert 'id="err-active_to"' in r.text
    r = c.post(
        "/console/rules/campaigns/new",
        {
            "name": "Harbolnas",
            "budget_points": "5000",
            "active_from": "2026-12-12T00:00",
            "active_to": "2026-12-13T00:00",
            "enabled": "1",
        },
    )
    assert r.status_code == 303
    page = c.get("/console/rules")
    assert "Harbolnas" in page.text
    with db.session() as s:
        campaign = s.execute(select(Campaign)).scalar_one()
        cid = campaign.id
    r = c.post(
        f"/console/rules/campaigns/{cid}",
        {"name": "Harbolnas 12.12", "budget_points": "8000", "enabled": "1"},
    )
    assert r.status_code == 303
    with db.session() as s:
        campaign = s.get(Campaign, cid)
        assert campaign is not None
        assert campaign.budget_points == 8000
        assert campaign.name == "Harbolnas 12.12"


def test_replay_of_a_new_rule_before_it_exists_saves_nothing(
    console_as: Any, client: TestClient, tenant: TenantFixture, db: Database
) -> None:
    r = client.post(
        "/v1/events",
        json={
            "id": "n1",
            "type": "purchase",
            "member": {"phone": "081234999001"},
            "order_id": "n1",
            "amount": "20000",
            "currency": "IDR",
        },
        headers=tenant.headers,
    )
    assert r.status_code in (200, 201), r.text
    c = console_as("owner")
    r = c.post("/console/rules/new", _form(conditions="", action="replay"))
    assert r.status_code == 200
    assert re.search(r'data-replay="points">\s*\+50<', r.text)
    assert re.search(r'data-replay="members">\s*1<', r.text)
    assert _count(db, Rule) == 0


def test_try_a_version_on_an_event_before_saving(
    console_as: Any, client: TestClient, tenant: TenantFixture, db: Database
) -> None:
    rule = _rule(
        client, tenant, name="Flat", conditions=None, effect={"type": "fixed", "points": 10}
    )
    _rule(
        client,
        tenant,
        name="VIP bonus",
        conditions={"field": "member.tags", "op": "contains", "value": "vip"},
    )
    c = console_as("marketer", lang="ms")
    r = c.post(
        f"/console/rules/{rule['id']}/edit",
        _form(
            name="Flat",
            conditions="",
            effect='{"type": "fixed", "points": 70}',
            action="simulate",
            sim_amount="30000",
            sim_tags="student",
        ),
    )
    assert r.status_code == 200, r.text
    assert re.search(r'data-sim="points">\s*100<', r.text)  # 30 base + 70 proposed
    assert "VIP bonus" in r.text
    assert "member.tags mengandungi vip — nilai sebenar: [&#34;student&#34;]" in r.text
    with db.session() as s:
        saved = s.get(Rule, uuid.UUID(rule["id"]))
        assert saved is not None
        assert saved.revision == 1
