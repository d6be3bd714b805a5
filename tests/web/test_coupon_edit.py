"""Console: editing a coupon campaign (texts, conditions, cap, pattern, uses per code),
pause/resume, archive with a confirmation, and an archived campaign's refusal (409)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from sqlalchemy import select

from setia.core.db import Database
from setia.coupons.models import CouponCampaign
from tests.conftest import TenantFixture
from tests.web.conftest import LiveServer, StaffLogin, browser_session, browser_wait, shot

JAKARTA = ZoneInfo("Asia/Jakarta")


def _campaign(client: TestClient, tenant: TenantFixture, **extra: Any) -> str:
    body = {
        "code": "harbolnas",
        "names": {"id": "Harbolnas 12.12", "en": "Harbolnas"},
        "discount": {"type": "percent", "percent": "20", "max_amount": "50000"},
        "conditions": {"min_spend": "100000", "per_member_limit": 1},
        "code_pattern": "HB-####-????",
        **extra,
    }
    r = client.post("/v1/coupon-campaigns", json=body, headers=tenant.headers)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def _stored(db: Database) -> CouponCampaign:
    with db.session() as s:
        (c,) = s.execute(select(CouponCampaign)).scalars()
        s.expunge(c)
        return c


EDIT = {
    "name_id": "Harbolnas 12.12",
    "name_ms": "",
    "name_en": "Harbolnas",
    "description_id": "",
    "description_ms": "",
    "description_en": "",
    "max_amount": "50000",
    "valid_from": "",
    "valid_until": "",
    "min_spend": "100000",
    "uses_per_code": "1",
    "per_member_limit": "1",
    "max_uses": "",
    "code_pattern": "HB-####-????",
}


def test_the_edit_form_is_prefilled_and_saving_changes_the_stored_campaign(
    console_as: Any, client: TestClient, tenant: TenantFixture, db: Database
) -> None:
    cid = _campaign(client, tenant)
    c = console_as("marketer")
    form = c.get(f"/console/coupons/{cid}/edit")
    assert form.status_code == 200
    for value in ('value="Harbolnas 12.12"', 'value="50000"', 'value="100000"', "HB-####-????"):
        assert value in form.text, value
    r = c.post(
        f"/console/coupons/{cid}/edit",
        {
            **EDIT,
            "name_ms": "Harbolnas Malaysia",
            "description_en": "Twelve twelve",
            "max_amount": "75000",
            "valid_from": "2026-12-12",
            "valid_until": "2026-12-13",
            "min_spend": "",
            "uses_per_code": "3",
            "per_member_limit": "2",
            "max_uses": "5000",
            "code_pattern": "XX-######",
        },
    )
    assert r.status_code == 303, r.text
    assert r.headers["location"] == f"/console/coupons/{cid}"
    stored = _stored(db)
    assert stored.names == {"id": "Harbolnas 12.12", "ms": "Harbolnas Malaysia", "en": "Harbolnas"}
    assert stored.descriptions == {"en": "Twelve twelve"}
    assert stored.max_discount == Decimal("75000")
    assert stored.min_spend is None
    assert (stored.uses_per_code, stored.per_member_limit, stored.max_uses) == (3, 2, 5000)
    assert stored.code_pattern == "XX-######"
    assert stored.valid_from is not None
    assert stored.valid_until is not None
    start = stored.valid_from.replace(tzinfo=stored.valid_from.tzinfo or UTC)
    end = stored.valid_until.replace(tzinfo=stored.valid_until.tzinfo or UTC)
    assert start == datetime(2026, 12, 12, tzinfo=JAKARTA)
    assert end == datetime(2026, 12, 14, tzinfo=JAKARTA)  # the last day, inclusive
    page = c.get(f"/console/coupons/{cid}")
    assert "5,000" in page.text  # uses in all, shown on the campaign's page
    again = c.get(f"/console/coupons/{cid}/edit")  # the form shows the days as typed
    assert 'value="2026-12-13"' in again.text
    assert 'value="2026-12-12"' in again.text


def test_bad_input_is_shown_next_to_the_fields_and_saves_nothing(
    console_as: Any, client: TestClient, tenant: TenantFixture, db: Database
) -> None:
    cid = _campaign(client, tenant)
    before = _stored(db)
    for lang, required in (
        ("en", "Give the text in Bahasa Indonesia or English at least."),
        ("id", "Isi teks setidaknya dalam Bahasa Indonesia"),
        ("ms", "Berikan teks sekurang-kurangnya dalam Bahasa"),
    ):
        c = console_as("owner", lang=lang)
        r = c.post(
            f"/console/coupons/{cid}/edit",
            {
                **EDIT,
                "name_id": "",
                "name_en": "",
                "uses_per_code": "abc",
                "valid_from": "2026-12-20",
                "valid_until": "2026-12-10",
                "max_uses": "0",
                "min_spend": "99999",
            },
        )
        assert r.status_code == 422
        assert required in r.text.split('id="err-name_id"')[1][:200]
        for field in ("uses_per_code", "valid_until", "max_uses"):
            assert f'id="err-{field}"' in r.text, field
        assert 'value="99999"' in r.text  # what was typed is kept
    # a pattern the service refuses is shown next to its field, too
    r = console_as("owner").post(f"/console/coupons/{cid}/edit", {**EDIT, "code_pattern": "#"})
    assert r.status_code == 422
    assert 'id="err-code_pattern"' in r.text
    after = _stored(db)
    assert (after.names, after.min_spend, after.uses_per_code, after.code_pattern) == (
        before.names,
        before.min_spend,
        before.uses_per_code,
        before.code_pattern,
    )
    assert after.updated_at == before.updated_at


def test_pause_resume_and_archive_after_a_confirmation(
    console_as: Any, client: TestClient, tenant: TenantFixture, db: Database
) -> None:
    cid = _campaign(client, tenant)
    c = console_as("marketer")
    assert c.post(f"/console/coupons/{cid}/status", {"status": "paused"}).status_code == 303
    assert _stored(db).status == "paused"
    assert "Resume" in c.get(f"/console/coupons/{cid}").text
    assert c.post(f"/console/coupons/{cid}/status", {"status": "active"}).status_code == 303
    assert _stored(db).status == "active"
    # archiving only through its confirmation page
    assert c.post(f"/console/coupons/{cid}/status", {"status": "archived"}).status_code == 422
    assert _stored(db).status == "active"
    confirm = c.get(f"/console/coupons/{cid}/archive")
    assert confirm.status_code == 200
    assert "Archive Harbolnas?" in confirm.text
    assert "stop working" in confirm.text
    assert _stored(db).status == "active"  # looking at the question changes nothing
    r = c.post(f"/console/coupons/{cid}/archive", {})
    assert r.status_code == 303
    assert _stored(db).status == "archived"
    assert c.post(f"/console/coupons/{cid}/archive", {}).status_code == 303  # safe to repeat
    page = c.get(f"/console/coupons/{cid}")
    assert f"/console/coupons/{cid}/archive" not in page.text
    refused = c.post(f"/console/coupons/{cid}/status", {"status": "active"})
    assert refused.status_code == 409
    assert "only its name and description can change" in refused.text
    assert _stored(db).status == "archived"


def test_an_archived_campaign_changes_only_its_texts(
    console_as: Any, client: TestClient, tenant: TenantFixture, db: Database
) -> None:
    cid = _campaign(client, tenant)
    c = console_as("owner", lang="en")
    stale = c.get(f"/console/coupons/{cid}/edit")  # opened before it was archived
    assert 'name="min_spend"' in stale.text
    assert c.post(f"/console/coupons/{cid}/archive", {}).status_code == 303
    r = c.post(f"/console/coupons/{cid}/edit", {**EDIT, "min_spend": "5000"})
    assert r.status_code == 409
    alert = r.text.split('id="err-__all__"')[1][:300]
    assert "This campaign is archived: only its name and description can change." in alert
    assert _stored(db).min_spend == Decimal("100000")
    # the form of an archived campaign offers its texts only, and saves them
    form = c.get(f"/console/coupons/{cid}/edit")
    assert 'name="min_spend"' not in form.text
    assert 'name="texts_only"' in form.text
    r = c.post(
        f"/console/coupons/{cid}/edit",
        {"texts_only": "1", "name_id": "Harbolnas (selesai)", "name_en": "Harbolnas (ended)"},
    )
    assert r.status_code == 303, r.text
    stored = _stored(db)
    assert stored.names == {"id": "Harbolnas (selesai)", "en": "Harbolnas (ended)"}
    assert (stored.status, stored.min_spend) == ("archived", Decimal("100000"))


def test_roles_and_csrf_are_enforced(
    console_as: Any, client: TestClient, tenant: TenantFixture, db: Database
) -> None:
    cid = _campaign(client, tenant)
    analyst = console_as("analyst")
    assert "/edit" not in analyst.get(f"/console/coupons/{cid}").text
    for url in (f"/console/coupons/{cid}/edit", f"/console/coupons/{cid}/archive"):
        assert analyst.get(url).status_code == 403
        assert analyst.post(url, {**EDIT, "name_en": "Nope"}).status_code == 403
    owner = console_as("owner")
    for url in (f"/console/coupons/{cid}/edit", f"/console/coupons/{cid}/archive"):
        assert owner.post(url, {**EDIT, "name_en": "Nope"}, csrf=False).status_code == 403
    stored = _stored(db)
    assert (stored.names["en"], stored.status) == ("Harbolnas", "active")


def test_the_campaign_edit_form_in_the_browser(
    browser: Any,
    live_server: LiveServer,
    client: TestClient,
    tenant: TenantFixture,
    staff_user: Callable[..., StaffLogin],
) -> None:
    cid = _campaign(client, tenant)
    browser_session(browser, live_server, staff_user("owner"))
    browser.get(f"{live_server.url}/console/coupons/{cid}/edit")
    browser_wait(browser, 10).until(ec.presence_of_element_located((By.ID, "f-max_amount")))
    shot(browser, "console-coupon-edit")
    browser.find_element(By.ID, "f-max_uses").send_keys("250")
    browser.find_element(By.CSS_SELECTOR, "form.form button[type=submit]").click()
    browser_wait(browser, 10).until(ec.url_to_be(f"{live_server.url}/console/coupons/{cid}"))
    assert "250" in browser.find_element(By.ID, "conditions").text
    browser.find_element(By.LINK_TEXT, "Archive").click()
    browser_wait(browser, 10).until(
        ec.url_to_be(f"{live_server.url}/console/coupons/{cid}/archive")
    )
    shot(browser, "console-coupon-archive")
    browser.find_element(By.CSS_SELECTOR, "form.actions-bar button[type=submit]").click()
    browser_wait(browser, 10).until(ec.url_to_be(f"{live_server.url}/console/coupons/{cid}"))
    assert "Archived" in browser.find_element(By.TAG_NAME, "h1").text


def test_every_new_form_carries_the_sessions_csrf_token(
    console_as: Any, client: TestClient, tenant: TenantFixture
) -> None:
    cid = _campaign(client, tenant)
    c = console_as("owner")
    token = f'name="csrf_token" value="{c.csrf}"'
    for url in (f"/console/coupons/{cid}/edit", f"/console/coupons/{cid}/archive"):
        page = c.get(url)
        assert page.text.count(token) >= 3, url  # language, sign-out and the page's form
