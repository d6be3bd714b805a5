"""Tiers and paid plans pages: structure, member counts, create and edit with validation,
roles and CSRF."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from setia.core.db import Database
from setia.memberships.models import MembershipPlan
from setia.tiers.models import Tier, TierSet
from tests.conftest import TenantFixture

NAMES = {"id": "Perunggu", "ms": "Gangsa", "en": "Bronze"}


def _tier_set(client: TestClient, tenant: TenantFixture) -> None:
    body = {
        "name": "Kopi tiers",
        "metrics": [{"metric": "spend"}],
        "window": {"kind": "rolling", "months": 12},
        "retention": {"kind": "months", "months": 12},
        "tiers": [
            {"code": "bronze", "names": NAMES, "thresholds": ["0"]},
            {
                "code": "gold",
                "names": {"id": "Emas", "ms": "Emas", "en": "Gold"},
                "thresholds": ["1000000"],
                "earn_multiplier": "1.5",
                "perks": [{"id": "Gratis upsize", "ms": "Saiz besar percuma", "en": "Free upsize"}],
            },
        ],
    }
    r = client.put(f"/v1/programs/{tenant.program_id}/tier-set", json=body, headers=tenant.headers)
    assert r.status_code == 200, r.text


def _count(db: Database, model: Any) -> int:
    with db.session() as s:
        return int(s.execute(select(func.count()).select_from(model)).scalar_one())


def _member(client: TestClient, tenant: TenantFixture, phone: str) -> str:
    r = client.post("/v1/members", json={"phone": phone, "name": "Sari"}, headers=tenant.headers)
    assert r.status_code in (200, 201), r.text
    return str(r.json()["id"])


def test_empty_state_then_set_up_tiers(console_as: Any, db: Database) -> None:
    c = console_as("marketer", lang="ms")
    page = c.get("/console/tiers")
    assert page.status_code == 200
    assert 'href="/console/tiers/settings"' in page.text
    r = c.post(
        "/console/tiers/settings",
        {
            "name": "",
            "metric": "spend",
            "window": "rolling",
            "window_months": "0",
            "retention": "months",
            "retention_months": "12",
            "downgrade": "one_level",
            "base_code": "member",
            "base_id": "Anggota",
            "base_ms": "",
            "base_en": "Member",
        },
    )
    assert r.status_code == 422
    assert re.search(r'id="err-name">Medan ini wajib diisi', r.text)
    assert 'id="err-window_months"' in r.text
    assert 'id="err-base_ms"' in r.text
    assert _count(db, TierSet) == 0
    r = c.post(
        "/console/tiers/settings",
        {
            "name": "Peringkat",
            "metric": "spend",
            "window": "lifetime",
            "retention": "end_of_next_window",
            "downgrade": "one_level",
            "grace_days": "0",
            "at_risk_days": "30",
            "base_code": "member",
            "base_id": "Anggota",
            "base_ms": "Ahli",
            "base_en": "Member",
        },
    )
    assert r.status_code == 422
    assert 'id="err-retention"' in r.text
    assert _count(db, TierSet) == 0
    r = c.post(
        "/console/tiers/settings",
        {
            "name": "Peringkat",
            "metric": "spend",
            "window": "calendar_year",
            "retention": "end_of_next_window",
            "downgrade": "to_qualified",
            "grace_days": "7",
            "at_risk_days": "30",
            "base_code": "member",
            "base_id": "Anggota",
            "base_ms": "Ahli",
            "base_en": "Member",
        },
    )
    assert r.status_code == 303, r.text
    page = c.get("/console/tiers")
    assert "Peringkat" in page.text
    assert "Ahli" in page.text


def test_tiers_list_shows_thresholds_perks_and_member_counts(
    console_as: Any, client: TestClient, tenant: TenantFixture
) -> None:
    _tier_set(client, tenant)
    _member(client, tenant, "081234560001")
    _member(client, tenant, "081234560002")
    c = console_as("analyst", lang="id")
    page = c.get("/console/tiers")
    assert page.status_code == 200
    assert "Emas" in page.text
    assert "Rp\xa01.000.000" in page.text
    assert "Gratis upsize" in page.text
    assert re.search(r'data-tier-members="bronze">2<', page.text)
    assert re.search(r'data-tier-members="gold">0<', page.text)
    assert 'href="/console/tiers/tier/new"' not in page.text  # analyst reads only


def test_tier_create_edit_and_validation(
    console_as: Any, client: TestClient, tenant: TenantFixture, db: Database
) -> None:
    _tier_set(client, tenant)
    c = console_as("owner", lang="id")
    # Lower than the tier below, a bad multiplier, a missing name: errors by the fields.
    r = c.post(
        "/console/tiers/tier/new",
        {
            "code": "platinum",
            "name_id": "Platinum",
            "name_ms": "",
            "name_en": "Platinum",
            "threshold_0": "500000",
            "earn_multiplier": "0.5",
        },
    )
    assert r.status_code == 422
    assert 'id="err-name_ms"' in r.text
    assert 'id="err-earn_multiplier"' in r.text
    r = c.post(
        "/console/tiers/tier/new",
        {
            "code": "platinum",
            "name_id": "Platinum",
            "name_ms": "Platinum",
            "name_en": "Platinum",
            "threshold_0": "500000",
            "earn_multiplier": "2",
        },
    )
    assert r.status_code == 422
    assert re.search(r'id="err-thresholds"[^>]*>Ambang tidak boleh lebih rendah', r.text)
    assert _count(db, Tier) == 2
    r = c.post(
        "/console/tiers/tier/new",
        {"code": "gold", "name_id": "X", "name_ms": "X", "name_en": "X", "threshold_0": "5000000"},
    )
    assert r.status_code == 422
    assert 'id="err-code"' in r.text
    r = c.post(
        "/console/tiers/tier/new",
        {
            "code": "platinum",
            "name_id": "Platinum",
            "name_ms": "Platinum",
            "name_en": "Platinum",
            "threshold_0": "5.000.000",
            "earn_multiplier": "2",
            "perks": "Antrean prioritas | Barisan keutamaan | Priority queue",
        },
    )
    assert r.status_code == 303, r.text
    assert _count(db, Tier) == 3
    # Edit gold: new threshold and names.
    r = c.post(
        "/console/tiers/tier/gold",
        {
            "name_id": "Emas <b>",
            "name_ms": "Emas",
            "name_en": "Gold",
            "threshold_0": "2000000",
            "earn_multiplier": "1.5",
        },
    )
    assert r.status_code == 303, r.text
    page = c.get("/console/tiers")
    assert "Emas &lt;b&gt;" in page.text
    assert "Rp\xa02.000.000" in page.text
    with db.session() as s:
        ts = s.execute(select(TierSet)).scalar_one()
        assert ts.revision == 3
    # Remove platinum (nobody in it).
    r = c.post("/console/tiers/tier/platinum/delete", {})
    assert r.status_code == 303
    assert _count(db, Tier) == 2


def test_plans_create_edit_validation_and_subscribers(
    console_as: Any, client: TestClient, tenant: TenantFixture, db: Database
) -> None:
    _tier_set(client, tenant)
    c = console_as("marketer", lang="ms")
    r = c.post(
        "/console/plans/new",
        {
            "code": "Member Plus",
            "name_id": "",
            "name_en": "",
            "price": "abc",
            "period": "weekly",
            "earn_multiplier": "1",
        },
    )
    assert r.status_code == 422
    for field in ("code", "name_id", "price", "period"):
        assert f'id="err-{field}"' in r.text, field
    assert _count(db, MembershipPlan) == 0
    r = c.post(
        "/console/plans/new",
        {
            "code": "member-plus",
            "name_id": "Member Plus",
            "name_ms": "Ahli Plus",
            "name_en": "Member Plus",
            "price": "49000",
            "period": "monthly",
            "trial_days": "0",
            "grace_days": "7",
            "tier_code": "gold",
            "tier_mode": "protect",
            "earn_multiplier": "1.5",
            "monthly_bonus_points": "500",
            "perks": "Gratis upsize | Saiz besar percuma | Free upsize",
            "active": "1",
        },
    )
    assert r.status_code == 303, r.text
    r = c.post(
        "/console/plans/new",
        {"code": "member-plus", "name_id": "Dup", "price": "1000", "period": "monthly"},
    )
    assert r.status_code == 409
    assert 'id="err-code"' in r.text
    with db.session() as s:
        plan = s.execute(select(MembershipPlan)).scalar_one()
        plan_id = plan.id
    member = _member(client, tenant, "081234560009")
    r = client.post(
        "/v1/subscriptions",
        json={
            "member_id": member,
            "plan": "member-plus",
            "payment": {
                "gateway": "test",
                "external_id": "p1",
                "amount": "49000",
                "currency": "IDR",
            },
        },
        headers=tenant.headers,
    )
    assert r.status_code in (200, 201), r.text
    page = c.get("/console/plans")
    assert "Ahli Plus" in page.text
    assert re.search(r'data-plan-live="member-plus">1<', page.text)
    r = c.post(
        f"/console/plans/{plan_id}",
        {
            "name_id": "Member Plus",
            "name_ms": "Ahli Plus",
            "name_en": "Member Plus",
            "price": "59000",
            "period": "monthly",
            "earn_multiplier": "2",
            "active": "1",
        },
    )
    assert r.status_code == 303, r.text
    with db.session() as s:
        plan = s.get(MembershipPlan, plan_id)
        assert plan is not None
        assert plan.revision == 2
        assert str(plan.price.normalize()) in ("59000", "5.9E+4")
    r = c.post(
        f"/console/plans/{plan_id}",
        {
            "name_id": "Member Plus",
            "price": "59000",
            "period": "monthly",
            "tier_code": "diamond",
            "active": "1",
        },
    )
    assert r.status_code == 422
    assert 'id="err-tier_code"' in r.text


def test_roles_and_csrf(
    console_as: Any, client: TestClient, tenant: TenantFixture, db: Database
) -> None:
    _tier_set(client, tenant)
    analyst = console_as("analyst")
    assert analyst.get("/console/plans").status_code == 200
    assert analyst.get("/console/tiers/tier/gold").status_code == 403
    assert analyst.post("/console/tiers/tier/gold", {"name_id": "X"}).status_code == 403
    assert analyst.post("/console/tiers/tier/gold/delete", {}).status_code == 403
    assert analyst.post("/console/tiers/settings", {"name": "X"}).status_code == 403
    assert analyst.post("/console/plans/new", {"code": "x"}).status_code == 403
    cashier = console_as("cashier")
    assert cashier.get("/console/tiers").status_code == 403
    assert cashier.get("/console/plans").status_code == 403
    owner = console_as("owner")
    for url in ("/console/plans/new", "/console/tiers/tier/new", "/console/tiers/settings"):
        assert f'name="csrf_token" value="{owner.csrf}"' in owner.get(url).text, url
    r = owner.post(
        "/console/plans/new",
        {"code": "plus", "name_id": "Plus", "price": "1000", "period": "monthly"},
        csrf=False,
    )
    assert r.status_code == 403
    assert owner.post("/console/tiers/tier/gold/delete", {}, csrf=False).status_code == 403
    assert _count(db, MembershipPlan) == 0
    assert _count(db, Tier) == 2
