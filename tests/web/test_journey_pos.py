"""Browser journey (headless Chromium, tablet-sized window): a cashier finds the member by
phone, checks a coupon, records the purchase with it and sees the points earned; the member
found by the portal's QR text (as a scanner types it) too."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import func, select

from setia.core.db import Database
from setia.coupons.models import CouponRedemption
from setia.events.models import Event
from tests.conftest import TenantFixture
from tests.web.conftest import LiveServer, StaffLogin, browser_session, browser_wait, shot
from tests.web.test_members_pages import available, new_member
from tests.web.test_pos import coupon_code


def _wait(browser: Any) -> WebDriverWait[Any]:
    return browser_wait(browser, 10)


def _count(db: Database, model: Any) -> int:
    with db.session() as s:
        return int(s.execute(select(func.count()).select_from(model)).scalar_one())


def test_cashier_records_a_purchase_and_applies_a_coupon(
    live_server: LiveServer,
    browser: Any,
    staff_user: Callable[..., StaffLogin],
    client: TestClient,
    tenant: TenantFixture,
    db: Database,
) -> None:
    siti = new_member(client, tenant, name="Siti Rahayu", phone="+6281234567890")
    code = coupon_code(client, tenant)  # Rp 10.000 off, single use
    cashier = staff_user("cashier")
    browser.set_window_size(1024, 1366)  # a tablet held upright
    browser_session(browser, live_server, cashier)

    browser.get(live_server.url + "/console/pos")
    find = _wait(browser).until(ec.presence_of_element_located((By.ID, "f-find")))
    shot(browser, "pos-find")
    find.send_keys("0812-3456-7890", Keys.ENTER)
    _wait(browser).until(ec.url_contains(f"/console/pos/m/{siti}"))
    assert browser.find_element(By.CSS_SELECTOR, ".pos-name").text == "Siti Rahayu"
    assert browser.find_element(By.ID, "pos-balance").text == "0"
    shot(browser, "pos-member")

    browser.find_element(By.ID, "f-amount").send_keys("85000")
    browser.find_element(By.ID, "f-coupon").send_keys(code)
    browser.find_element(By.XPATH, "//button[contains(@formaction,'coupon-check')]").click()
    ok = _wait(browser).until(
        ec.presence_of_element_located((By.CSS_SELECTOR, "#coupon-check .pos-ok"))
    )
    assert "10,000" in ok.text
    assert "75,000" in ok.text
    assert _count(db, CouponRedemption) == 0
    shot(browser, "pos-coupon-checked")

    browser.find_element(By.CSS_SELECTOR, "#sale-form button.pos-primary").click()
    earned = _wait(browser).until(ec.presence_of_element_located((By.ID, "points-earned")))
    assert earned.text == "75"  # 1 point per Rp 1.000 of the Rp 75.000 paid
    assert code in browser.find_element(By.ID, "receipt").text
    assert browser.find_element(By.ID, "pos-balance").text == "75"
    assert available(client, tenant, siti) == 75
    assert _count(db, Event) == 1
    assert _count(db, CouponRedemption) == 1
    shot(browser, "pos-receipt")

    # the single-use code again: refused next to the coupon field, in the cashier's words
    browser.find_element(By.ID, "f-amount").send_keys("30000")
    browser.find_element(By.ID, "f-coupon").send_keys(code)
    browser.find_element(By.CSS_SELECTOR, "#sale-form button.pos-primary").click()
    error = _wait(browser).until(ec.presence_of_element_located((By.ID, "err-coupon")))
    assert error.text == "This coupon has already been used."
    assert _count(db, Event) == 1
    shot(browser, "pos-coupon-refused")

    # next customer: the portal's QR code, as a keyboard-wedge scanner types it
    browser.find_element(By.LINK_TEXT, "Next customer").click()
    find = _wait(browser).until(ec.presence_of_element_located((By.ID, "f-find")))
    find.send_keys(f"setia:member:{siti}", Keys.ENTER)
    _wait(browser).until(ec.url_contains(f"/console/pos/m/{siti}"))
    assert browser.find_element(By.ID, "pos-balance").text == "75"
