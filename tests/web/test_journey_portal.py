"""Browser journey of the member portal on a phone-sized window (390×844): sign in with a
one-time code (read from the outbox, as a messaging worker would), redeem a reward and see its
code, switch to Malay; a screenshot of every portal page."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import quote

from fastapi.testclient import TestClient
from sqlalchemy import select

from setia.outbox.models import OutboxMessage
from setia.rewards import service as rewards
from setia.rewards.models import RewardRedemption
from tests.conftest import TenantFixture
from tests.web.conftest import LiveServer, browser_wait, shot
from tests.web.test_portal_pages import make_cause, make_reward

PHONE = "0812-7777-1234"


def _code(server: LiveServer, tenant_id: uuid.UUID) -> str:
    with server.db.session() as s:
        row = s.scalars(
            select(OutboxMessage)
            .where(
                OutboxMessage.tenant_id == tenant_id, OutboxMessage.topic == "portal.sign_in_code"
            )
            .order_by(OutboxMessage.created_at.desc())
        ).first()
        assert row is not None, "no sign-in code in the outbox"
        return str(row.payload["code"])


def test_member_signs_in_with_a_code_redeems_a_reward_and_switches_to_malay(
    live_server: LiveServer, browser: Any, client: TestClient, tenant: TenantFixture
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec

    db = live_server.db
    r = client.post(
        "/v1/members",
        json={"name": "Siti Rahayu", "phone": PHONE, "email": "siti@example.co.id"},
        headers=tenant.headers,
    )
    assert r.status_code == 201, r.text
    member_id = r.json()["id"]
    for i, amount in enumerate(("250000", "180000", "95000")):
        e = client.post(
            "/v1/events",
            json={
                "id": f"pos-{i}",
                "type": "purchase",
                "member": {"phone": PHONE},
                "order_id": f"INV-{i}",
                "amount": amount,
                "currency": "IDR",
            },
            headers=tenant.headers,
        )
        assert e.status_code in (200, 201), e.text
    points = client.get(f"/v1/members/{member_id}/balance", headers=tenant.headers).json()
    assert points["available"] > 0
    cost = max(1, points["available"] // 2)
    make_reward(db, tenant, points=cost)
    make_cause(db, tenant)

    browser.set_window_size(390, 844)
    wait = browser_wait(browser, 15)

    # Sign in: the link a shop gives (?login= fills the field), then the code.
    browser.get(f"{live_server.url}/portal/{tenant.tenant_id}/sign-in?login={quote(PHONE)}")
    field = browser.find_element(By.ID, "f-login")
    assert field.get_attribute("value") == PHONE
    shot(browser, "portal-sign-in")
    browser.find_element(By.CSS_SELECTOR, "main form button[type=submit]").click()
    code_field = wait.until(ec.presence_of_element_located((By.ID, "f-code")))
    shot(browser, "portal-code")
    code_field.send_keys(_code(live_server, tenant.tenant_id))
    browser.find_element(By.CSS_SELECTOR, "main form button[type=submit]").click()
    balance = wait.until(
        ec.presence_of_element_located((By.CSS_SELECTOR, "[data-testid=available]"))
    )
    assert balance.text.replace(".", "") == str(points["available"])
    assert "Siti Rahayu" in browser.find_element(By.TAG_NAME, "h1").text
    shot(browser, "portal-home")

    # Redeem a reward: catalog, confirmation, the code as text and QR.
    browser.find_element(By.CSS_SELECTOR, "nav.tabbar a[href='/portal/rewards']").click()
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, ".reward-list")))
    shot(browser, "portal-rewards")
    browser.find_element(By.CSS_SELECTOR, "a[href='/portal/rewards/free-coffee']").click()
    confirm = wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, "form.confirm button")))
    shot(browser, "portal-redeem-confirm")
    confirm.click()
    shown = wait.until(
        ec.presence_of_element_located((By.CSS_SELECTOR, "[data-testid=reward-code]"))
    )
    with db.session() as s:
        red = s.scalars(select(RewardRedemption)).one()
        coupon = rewards.coupon_code(s, red)
    assert shown.text == coupon
    assert browser.find_elements(By.CSS_SELECTOR, ".qr svg")
    shot(browser, "portal-redemption")

    # Switch to Malay: the page comes back in Malay, and stays so.
    browser.find_element(By.CSS_SELECTOR, ".langswitch button[value=ms]").click()
    # The page is replaced meanwhile: an element found on the old one may be stale when read
    # (or answered with a Chromium inspector error): look again.
    browser_wait(browser, 15).until(
        lambda b: b.find_element(By.TAG_NAME, "html").get_attribute("lang") == "ms"
    )
    assert "Tunjukkan kod ini di kaunter bayaran" in browser.page_source
    shot(browser, "portal-redemption-ms")
    browser.get(f"{live_server.url}/portal")
    assert "Kad ahli saya" in browser.page_source
    assert "Utama" in browser.find_element(By.CSS_SELECTOR, "nav.tabbar").text

    # The other pages, for the screenshots (in Malay now).
    for path, name, marker in (
        ("/portal/history", "portal-history", ".statement"),
        ("/portal/my-rewards", "portal-my-rewards", "main h1"),
        ("/portal/refer", "portal-refer", "main h1"),
        ("/portal/badges", "portal-badges", "main h1"),
        ("/portal/causes", "portal-causes", "main h1"),
        ("/portal/profile", "portal-profile", "#f-name"),
        ("/portal/profile/delete", "portal-delete", "#f-confirm"),
    ):
        browser.get(live_server.url + path)
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, marker)))
        assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "ms"
        shot(browser, name)
