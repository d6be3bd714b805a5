"""Console pages for badges and challenges: the list, create/edit with errors next to the
fields, the leaderboard (consented members only, display names), archive, roles and CSRF."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from setia.badges.models import BadgeDefinition
from setia.core.db import Database
from tests.badges.support import define, purchase, send
from tests.conftest import TenantFixture

VALID = {
    "code": "kopi-explorer",
    "kind": "badge",
    "name_id": "Penjelajah Kopi",
    "name_ms": "Peneroka Kopi",
    "name_en": "Coffee Explorer",
    "event_type": "purchase",
    "measure": "distinct",
    "field": "item.sku",
    "target": "5",
    "period_type": "all_time",
    "reward_points": "500",
}


def _defs(db: Database) -> list[BadgeDefinition]:
    with db.session() as s:
        return list(s.execute(select(BadgeDefinition).order_by(BadgeDefinition.code)).scalars())


def test_the_list_shows_localized_names_kind_period_and_recurring(
    console_as: Any, client: TestClient, tenant: TenantFixture
) -> None:
    r = client.post(
        "/v1/badges",
        json={
            "code": "tiga",
            "kind": "challenge",
            "names": {"id": "Tiga Kali Sebulan", "ms": "Tiga Kali Sebulan", "en": "Three a month"},
            "criteria": {"event_type": "purchase", "measure": "count", "target": 3},
            "period": {"type": "month", "recurring": True},
        },
        headers=tenant.headers,
    )
    assert r.status_code == 201, r.text
    page = console_as("analyst", lang="id").get("/console/badges")
    assert page.status_code == 200
    assert "Tiga Kali Sebulan" in page.text
    assert "Tantangan" in page.text  # the kind, in Indonesian
    assert "Setiap bulan" in page.text  # the period
    en = console_as("owner", lang="en").get("/console/badges")
    assert "Three a month" in en.text
    assert "Every month" in en.text


def test_bad_input_shows_errors_next_to_fields_in_id_and_ms_and_saves_nothing(
    console_as: Any, db: Database
) -> None:
    for lang, name_msg, field_msg in (
        ("id", "Isi teks setidaknya", "Ukuran ini memerlukan kolom yang dibaca."),
        ("ms", "Berikan teks sekurang-kurangnya", "Ukuran ini memerlukan medan yang dibaca."),
    ):
        c = console_as("marketer", lang=lang)
        r = c.post(
            "/console/badges/new",
            {**VALID, "name_id": "", "name_ms": "", "name_en": "", "field": ""},
        )
        assert r.status_code == 422
        assert name_msg in r.text.split('id="err-name_id"')[1][:200]
        assert field_msg in r.text.split('id="err-field"')[1][:200]
    c = console_as("owner")
    r = c.post("/console/badges/new", {**VALID, "conditions": "{not json"})
    assert r.status_code == 422
    assert 'id="err-conditions"' in r.text
    # the service's own check points at the field: a sum cannot read event.store
    r = c.post("/console/badges/new", {**VALID, "measure": "sum", "field": "event.store"})
    assert r.status_code == 422
    assert "cannot sum" in r.text.split('id="err-field"')[1][:300]
    r = c.post(
        "/console/badges/new",
        {**VALID, "measure": "count", "field": "", "period_type": "campaign", "starts_at": ""},
    )
    assert r.status_code == 422
    assert 'id="err-starts_at"' in r.text
    assert 'id="err-ends_at"' in r.text
    assert _defs(db) == []


def test_a_valid_create_and_edit_save(console_as: Any, db: Database) -> None:
    c = console_as("marketer")
    r = c.post("/console/badges/new", VALID)
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/console/badges/kopi-explorer"
    (d,) = _defs(db)
    assert (d.measure, d.field, int(d.target), d.reward_points) == ("distinct", "item.sku", 5, 500)
    assert d.names == {"id": "Penjelajah Kopi", "ms": "Peneroka Kopi", "en": "Coffee Explorer"}
    page = c.get("/console/badges/kopi-explorer")
    assert "Coffee Explorer" in page.text
    form = c.get("/console/badges/kopi-explorer/edit")
    assert 'value="Peneroka Kopi"' in form.text
    r = c.post(
        "/console/badges/kopi-explorer/edit",
        {**VALID, "status": "active", "reward_points": "700", "target": "6", "name_en": "Explorer"},
    )
    assert r.status_code == 303, r.text
    (d,) = _defs(db)
    assert (int(d.target), d.reward_points, d.names["en"]) == (6, 700, "Explorer")
    taken = c.post("/console/badges/new", VALID)
    assert taken.status_code == 422
    assert 'id="err-code"' in taken.text


def test_a_one_month_challenge_is_edited_as_shown(console_as: Any, db: Database) -> None:
    """The edit form of a single-month challenge, sent back with a new name, saves."""
    c = console_as("marketer")
    one_month = {**VALID, "code": "desember", "kind": "challenge", "period_type": "month"}
    r = c.post("/console/badges/new", {**one_month, "month": "2026-12"})
    assert r.status_code == 303, r.text
    form = c.get("/console/badges/desember/edit")
    assert 'value="2026-12"' in form.text
    r = c.post(
        "/console/badges/desember/edit",
        {**one_month, "month": "2026-12", "status": "active", "name_en": "December"},
    )
    assert r.status_code == 303, r.text
    (d,) = _defs(db)
    assert (d.names["en"], d.period, d.recurring) == ("December", "month", False)


def test_a_monthly_challenge_with_a_coupon_reward_and_streaks(
    console_as: Any, db: Database
) -> None:
    c = console_as("owner")
    r = c.post(
        "/console/badges/new",
        {
            **VALID,
            "code": "rajin",
            "kind": "challenge",
            "measure": "streak",
            "field": "",
            "target": "4",
            "streak_unit": "week",
            "period_type": "month",
            "recurring": "1",
            "reward_points": "100",
        },
    )
    assert r.status_code == 303, r.text
    (d,) = _defs(db)
    assert (d.kind, d.measure, d.streak_unit, d.period, d.recurring) == (
        "challenge",
        "streak",
        "week",
        "month",
        True,
    )


def test_the_leaderboard_shows_consented_members_by_display_name(
    console_as: Any, client: TestClient, tenant: TenantFixture
) -> None:
    d = define(
        client,
        tenant,
        "tiga",
        {"event_type": "purchase", "measure": "count", "target": 3},
        kind="challenge",
        period={"type": "month", "recurring": True},
    )
    ids = {}
    for name, ext, n in (("Budi Santoso", "B", 3), ("Rahasia Orang", "R", 2)):
        r = client.post(
            "/v1/members", json={"external_id": ext, "name": name}, headers=tenant.headers
        )
        ids[ext] = r.json()["id"]
        send(client, tenant, *[purchase(ext, f"2026-10-0{i + 1}T10:00:00+07:00") for i in range(n)])
    r = client.put(
        f"/v1/members/{ids['B']}/leaderboard-consent",
        json={"opted_in": True, "source": "app"},
        headers=tenant.headers,
    )
    assert r.status_code == 200, r.text
    page = console_as("analyst").get(f"/console/badges/{d['code']}?period=2026-10")
    assert page.status_code == 200
    assert "Budi S." in page.text
    assert "Budi Santoso" not in page.text  # the display name only
    assert "Rahasia" not in page.text  # no consent, not shown
    assert "3 / 3" in page.text
    # the period picker names the months
    page = console_as("analyst").get(f"/console/badges/{d['code']}?period=2026-09")
    assert "selected>September 2026</option>" in page.text
    assert ">October 2026</option>" in page.text


def test_a_spend_badge_shows_money(
    console_as: Any, client: TestClient, tenant: TenantFixture
) -> None:
    d = define(
        client,
        tenant,
        "sultan",
        {"event_type": "purchase", "measure": "sum", "field": "event.amount", "target": "1000000"},
    )
    r = client.post(
        "/v1/members", json={"external_id": "B", "name": "Budi"}, headers=tenant.headers
    )
    client.put(
        f"/v1/members/{r.json()['id']}/leaderboard-consent",
        json={"opted_in": True, "source": "app"},
        headers=tenant.headers,
    )
    send(client, tenant, purchase("B", "2026-10-01T10:00:00+07:00"))
    page = console_as("analyst", lang="id").get(f"/console/badges/{d['code']}")
    assert page.status_code == 200
    assert "Rp\xa01.000.000" in page.text  # the target
    assert "1000000" not in page.text


def test_archive_asks_first_then_activate(
    console_as: Any, client: TestClient, tenant: TenantFixture, db: Database
) -> None:
    define(client, tenant, "lima", {"event_type": "purchase", "measure": "count", "target": 5})
    c = console_as("admin")
    assert "stops counting events" in c.get("/console/badges/lima/archive").text
    assert _defs(db)[0].status == "active"
    assert c.post("/console/badges/lima/archive", {}).status_code == 303
    assert _defs(db)[0].status == "archived"
    assert "lima" in c.get("/console/badges?status=archived").text
    assert c.post("/console/badges/lima/activate", {}).status_code == 303
    assert _defs(db)[0].status == "active"


def test_roles_and_csrf(
    console_as: Any, client: TestClient, tenant: TenantFixture, db: Database
) -> None:
    define(client, tenant, "lima", {"event_type": "purchase", "measure": "count", "target": 5})
    analyst = console_as("analyst")
    assert analyst.get("/console/badges").status_code == 200
    assert analyst.get("/console/badges/lima").status_code == 200
    assert analyst.get("/console/badges/new").status_code == 403
    assert analyst.post("/console/badges/new", VALID).status_code == 403
    assert analyst.post("/console/badges/lima/archive", {}).status_code == 403
    assert console_as("cashier").get("/console/badges").status_code == 403
    owner = console_as("owner")
    assert owner.post("/console/badges/new", VALID, csrf=False).status_code == 403
    assert owner.post("/console/badges/lima/archive", {}, csrf=False).status_code == 403
    assert [(d.code, d.status) for d in _defs(db)] == [("lima", "active")]


def test_a_badge_named_script_is_shown_as_text(
    console_as: Any, client: TestClient, tenant: TenantFixture
) -> None:
    r = client.post(
        "/v1/badges",
        json={
            "code": "evil",
            "names": {"id": "<script>alert(1)</script>"},
            "criteria": {"event_type": "purchase", "measure": "count", "target": 2},
        },
        headers=tenant.headers,
    )
    assert r.status_code == 201, r.text
    c = console_as("owner")
    for url in ("/console/badges", "/console/badges/evil", "/console/badges/evil/edit"):
        page = c.get(url)
        assert "<script>alert(1)</script>" not in page.text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text


def test_every_form_carries_the_sessions_csrf_token(
    console_as: Any, client: TestClient, tenant: TenantFixture
) -> None:
    define(client, tenant, "lima", {"event_type": "purchase", "measure": "count", "target": 5})
    c = console_as("owner")
    for url in ("/console/badges/new", "/console/badges/lima/edit", "/console/badges/lima/archive"):
        page = c.get(url)
        assert 'name="csrf_token" value=""' not in page.text, url
        assert page.text.count(f'name="csrf_token" value="{c.csrf}"') >= 3, url
