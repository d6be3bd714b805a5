"""In headless Chromium: the program pages (rewards, coupons, causes, referrals, badges)
with data, a reward created through the form after fixing an error, and screenshots of
each page (build/screenshots/program-*.png)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec

from setia.core.db import Database
from tests.badges.support import define
from tests.causes.support import donate, member_with_points, put_cause
from tests.conftest import TenantFixture
from tests.web.conftest import LiveServer, StaffLogin, browser_session, browser_wait, shot


def _seed(client: TestClient, db: Database, tenant: TenantFixture) -> dict[str, str]:
    h = tenant.headers
    for code, name, points, stock in (
        ("TUMBLER", {"id": "Tumbler Setia", "en": "Setia Tumbler"}, 1500, 40),
        ("KOPI-GRATIS", {"id": "Kopi Gratis", "en": "Free Coffee"}, 500, None),
    ):
        r = client.put(
            f"/v1/programs/{tenant.program_id}/rewards/{code}",
            json={"kind": "physical", "names": name, "points": points, "stock_total": stock},
            headers=h,
        )
        assert r.status_code in (200, 201), r.text
    r = client.post(
        "/v1/coupon-campaigns",
        json={
            "code": "harbolnas",
            "names": {"id": "Harbolnas 12.12", "en": "Harbolnas"},
            "discount": {"type": "percent", "percent": "20", "max_amount": "50000"},
        },
        headers=h,
    )
    assert r.status_code == 201, r.text
    campaign = r.json()["id"]
    r = client.post(
        f"/v1/coupon-campaigns/{campaign}/codes/generate",
        json={"count": 8, "pattern": "HB-####-????"},
        headers=h,
    )
    assert r.status_code == 201, r.text
    cause = put_cause(db, tenant, goal_points=5000)
    donor = member_with_points(db, tenant, 3000, name="Sari Wulandari")
    donate(db, tenant, cause, donor, 1200)
    r = client.put(
        "/v1/referrals/settings",
        json={
            "enabled": True,
            "min_amount": "50000",
            "referrer_points": 500,
            "referee_points": 250,
            "review_required": True,
            "share_url": "https://kopi.example/r/{code}",
        },
        headers=h,
    )
    assert r.status_code in (200, 201), r.text
    r = client.post("/v1/members", json={"external_id": "ADV", "name": "Budi Santoso"}, headers=h)
    advocate = r.json()["id"]
    code = client.get(f"/v1/members/{advocate}/referral", headers=h).json()["code"]
    for n, name in enumerate(("Citra Lestari", "Dewi Anggraini")):
        r = client.post(
            "/v1/members",
            json={"external_id": f"NEW{n}", "name": name, "referral_code": code},
            headers=h,
        )
        assert r.status_code == 201, r.text
    define(
        client,
        tenant,
        "tiga-sebulan",
        {"event_type": "purchase", "measure": "count", "target": 3},
        kind="challenge",
        period={"type": "month", "recurring": True},
    )
    define(
        client,
        tenant,
        "penjelajah",
        {"event_type": "purchase", "measure": "distinct", "field": "item.sku", "target": 5},
    )
    return {"campaign": campaign, "cause": str(cause)}


def test_program_pages_in_the_browser(
    live_server: LiveServer,
    browser: Any,
    client: TestClient,
    db: Database,
    tenant: TenantFixture,
    staff_user: Callable[..., StaffLogin],
) -> None:
    ids = _seed(client, db, tenant)
    browser_session(browser, live_server, staff_user("owner"))
    wait = browser_wait(browser, 10)
    pages = [
        ("/console/rewards", "program-rewards", "Setia Tumbler"),
        ("/console/rewards/TUMBLER", "program-reward", "Adjust stock"),
        ("/console/coupons", "program-coupons", "Harbolnas"),
        (f"/console/coupons/{ids['campaign']}", "program-coupon-campaign", "HB-"),
        ("/console/causes", "program-causes", "Plant a Tree"),
        (f"/console/causes/{ids['cause']}", "program-cause", "Sari Wulandari"),
        ("/console/referrals", "program-referrals", "Top advocates"),
        ("/console/referrals/queue?status=held", "program-referral-queue", "Citra Lestari"),
        ("/console/referrals/settings", "program-referral-settings", "Referral link"),
        ("/console/badges", "program-badges", "tiga-sebulan"),
        ("/console/badges/tiga-sebulan", "program-badge", "Leaderboard"),
    ]
    for path, name, text in pages:
        browser.get(live_server.url + path)
        wait.until(ec.text_to_be_present_in_element((By.ID, "main"), text))
        assert shot(browser, name).stat().st_size > 1000

    # a reward created through the form: a missing name is shown next to the field first
    browser.get(live_server.url + "/console/rewards/new")
    browser.find_element(By.ID, "f-code").send_keys("MUG")
    browser.find_element(By.ID, "f-points").send_keys("800")
    browser.find_element(By.CSS_SELECTOR, "form.stack button[type=submit]").click()
    error = wait.until(ec.visibility_of_element_located((By.ID, "err-name_id")))
    assert "Bahasa Indonesia or English" in error.text
    shot(browser, "program-reward-form-error")
    browser.find_element(By.ID, "f-name_id").send_keys("Gelas Setia")
    browser.find_element(By.ID, "f-name_en").send_keys("Setia Mug")
    browser.find_element(By.CSS_SELECTOR, "form.stack button[type=submit]").click()
    wait.until(ec.url_to_be(live_server.url + "/console/rewards/MUG"))
    assert "Setia Mug" in browser.find_element(By.TAG_NAME, "h1").text

    # a held referral approved from the queue
    browser.get(live_server.url + "/console/referrals/queue?status=held")
    row = browser.find_elements(By.CSS_SELECTOR, "tbody tr")[0]
    row.find_element(By.CSS_SELECTOR, "input[name=reason]").send_keys("checked by phone")
    row.find_element(By.CSS_SELECTOR, "button[value=approve]").click()
    wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, ".flash")))
    assert len(browser.find_elements(By.CSS_SELECTOR, "tbody tr")) == 1
    shot(browser, "program-referral-approved")
