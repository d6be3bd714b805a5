"""Console pages for causes: the list with totals, create/edit with errors next to the
fields, the donations list, close with confirmation, roles and CSRF."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from setia.causes.models import Cause
from setia.core.db import Database
from tests.causes.support import donate, member_with_points, put_cause
from tests.conftest import TenantFixture

VALID = {
    "code": "bersih-pantai",
    "name_id": "Bersih Pantai",
    "name_ms": "Bersih Pantai",
    "name_en": "Clean Beaches",
    "status": "active",
    "goal_points": "10000",
    "min_points": "10",
    "match_ratio": "1",
    "match_budget": "5000",
}


def _causes(db: Database) -> list[Cause]:
    with db.session() as s:
        return list(s.execute(select(Cause).order_by(Cause.code)).scalars())


def test_the_list_shows_totals_donated_and_the_donations(
    console_as: Any, db: Database, tenant: TenantFixture
) -> None:
    cause_id = put_cause(db, tenant, goal_points=1000)
    member = member_with_points(db, tenant, 2000, name="Sari Wulandari")
    donate(db, tenant, cause_id, member, 250)
    donate(db, tenant, cause_id, member, 150)
    c = console_as("analyst", lang="id")
    r = c.get("/console/causes")
    assert r.status_code == 200
    assert "Tanam Pohon" in r.text
    assert "400 / 1.000" in r.text  # total against the goal, Indonesian digits
    page = c.get(f"/console/causes/{cause_id}")
    assert page.status_code == 200
    assert "Sari Wulandari" in page.text
    assert page.text.count("Sari Wulandari") == 2
    assert ">250<" in page.text
    assert "Plant a Tree" in console_as("owner", lang="en").get("/console/causes").text
    assert "Tanam Pokok" in console_as("owner", lang="ms").get("/console/causes").text


def test_a_bad_create_shows_errors_next_to_fields_in_id_and_ms_and_saves_nothing(
    console_as: Any, db: Database
) -> None:
    for lang, number, name in (
        ("id", "Masukkan bilangan bulat.", "Isi teks setidaknya"),
        ("ms", "Masukkan nombor bulat.", "Berikan teks sekurang-kurangnya"),
    ):
        c = console_as("marketer", lang=lang)
        r = c.post(
            "/console/causes/new",
            {**VALID, "name_id": "", "name_ms": "", "name_en": "", "goal_points": "lots"},
        )
        assert r.status_code == 422
        assert number in r.text.split('id="err-goal_points"')[1][:200]
        assert name in r.text.split('id="err-name_id"')[1][:200]
        assert 'value="bersih-pantai"' in r.text
    c = console_as("owner", lang="en")
    r = c.post("/console/causes/new", {**VALID, "code": "Bad Code!"})
    assert r.status_code == 422
    assert "Use 1 to 60 lowercase letters" in r.text.split('id="err-code"')[1][:300]
    r = c.post("/console/causes/new", {**VALID, "starts_on": "2026-03-10", "ends_on": "2026-03-01"})
    assert r.status_code == 422
    assert 'id="err-ends_on"' in r.text
    assert _causes(db) == []


def test_a_valid_create_and_edit_save(console_as: Any, db: Database) -> None:
    c = console_as("marketer")
    r = c.post("/console/causes/new", VALID)
    assert r.status_code == 303, r.text
    (cause,) = _causes(db)
    assert r.headers["location"] == f"/console/causes/{cause.id}"
    assert cause.names == {"id": "Bersih Pantai", "ms": "Bersih Pantai", "en": "Clean Beaches"}
    assert (cause.goal_points, cause.min_points, cause.match_budget) == (10000, 10, 5000)
    form = c.get(f"/console/causes/{cause.id}/edit")
    assert 'value="Clean Beaches"' in form.text
    r = c.post(
        f"/console/causes/{cause.id}/edit", {**VALID, "goal_points": "20000", "name_en": "Beaches"}
    )
    assert r.status_code == 303, r.text
    (cause,) = _causes(db)
    assert (cause.goal_points, cause.names["en"]) == (20000, "Beaches")
    again = c.post("/console/causes/new", VALID)
    assert again.status_code == 422
    assert 'id="err-code"' in again.text


def test_close_asks_first_then_closes(console_as: Any, db: Database, tenant: TenantFixture) -> None:
    cause_id = put_cause(db, tenant)
    c = console_as("admin")
    confirm = c.get(f"/console/causes/{cause_id}/close")
    assert "cannot be opened again" in confirm.text
    assert _causes(db)[0].status == "active"
    assert c.post(f"/console/causes/{cause_id}/close", {}).status_code == 303
    assert _causes(db)[0].status == "closed"


def test_roles_and_csrf(console_as: Any, db: Database, tenant: TenantFixture) -> None:
    cause_id = put_cause(db, tenant)
    analyst = console_as("analyst")
    assert analyst.get("/console/causes").status_code == 200
    assert analyst.get(f"/console/causes/{cause_id}").status_code == 200
    assert analyst.get("/console/causes/new").status_code == 403
    assert analyst.post("/console/causes/new", VALID).status_code == 403
    assert analyst.post(f"/console/causes/{cause_id}/close", {}).status_code == 403
    cashier = console_as("cashier")
    assert cashier.get("/console/causes").status_code == 403
    owner = console_as("owner")
    assert owner.post("/console/causes/new", VALID, csrf=False).status_code == 403
    assert owner.post(f"/console/causes/{cause_id}/close", {}, csrf=False).status_code == 403
    assert [(x.code, x.status) for x in _causes(db)] == [("tanam-pohon", "active")]


def test_a_cause_named_script_is_shown_as_text(
    console_as: Any, db: Database, tenant: TenantFixture
) -> None:
    cause_id = put_cause(db, tenant, names={"id": "<script>alert(1)</script>"})
    c = console_as("owner")
    for url in (
        "/console/causes",
        f"/console/causes/{cause_id}",
        f"/console/causes/{cause_id}/edit",
    ):
        r = c.get(url)
        assert "<script>alert(1)</script>" not in r.text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in r.text


def test_every_form_carries_the_sessions_csrf_token(
    console_as: Any, db: Database, tenant: TenantFixture
) -> None:
    cause_id = put_cause(db, tenant)
    c = console_as("owner")
    for url in (
        "/console/causes/new",
        f"/console/causes/{cause_id}/edit",
        f"/console/causes/{cause_id}/close",
    ):
        page = c.get(url)
        assert 'name="csrf_token" value=""' not in page.text, url
        assert page.text.count(f'name="csrf_token" value="{c.csrf}"') >= 3, url
