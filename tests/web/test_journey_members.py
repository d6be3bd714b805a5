"""Browser journey (headless Chromium): the owner finds a member by phone (typed the local
way, live search) and adjusts the member's points; a missing reason is answered next to the
field and nothing is written; the balance on the page changes once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from tests.conftest import TenantFixture
from tests.web.conftest import LiveServer, StaffLogin, browser_sign_in, browser_wait, shot
from tests.web.test_members_pages import available, grant, new_member


def _wait(browser: Any) -> WebDriverWait[Any]:
    return browser_wait(browser, 10)


def test_owner_finds_a_member_by_phone_and_adjusts_points(
    live_server: LiveServer,
    browser: Any,
    staff_user: Callable[..., StaffLogin],
    client: TestClient,
    tenant: TenantFixture,
) -> None:
    siti = new_member(
        client,
        tenant,
        name="Siti Rahayu",
        phone="+6281234567890",
        email="siti@example.co.id",
        consents={"whatsapp": True},
        consent_source="pos-form",
    )
    budi = new_member(client, tenant, name="Budi Santoso", phone="+6281399998888")
    new_member(client, tenant, name="<script>alert(1)</script>", phone="+6281311112222")
    grant(client, tenant, siti, 1200)
    owner = staff_user("owner")
    browser_sign_in(browser, live_server, owner)
    _wait(browser).until(ec.presence_of_element_located((By.CSS_SELECTOR, ".topbar .who")))

    browser.find_element(By.CSS_SELECTOR, '#sidenav a[href="/console/members"]').click()
    box = _wait(browser).until(ec.presence_of_element_located((By.ID, "f-q")))
    shot(browser, "members-search")
    # live search (htmx): typing is enough, no submit
    box.send_keys("0812-3456-7890")

    def narrowed(b: Any) -> bool:
        try:
            text = b.find_element(By.ID, "results").text
        except StaleElementReferenceException:
            return False
        return "Siti Rahayu" in text and "Budi" not in text

    _wait(browser).until(narrowed)
    link = browser.find_element(By.CSS_SELECTOR, f'#results a[href="/console/members/{siti}"]')
    assert "?q=0812-3456-7890" in browser.current_url.replace("%2D", "-")
    shot(browser, "members-search-by-phone")
    link.click()

    balance = _wait(browser).until(ec.presence_of_element_located((By.ID, "balance-available")))
    assert balance.text == "1,200"
    assert "Siti Rahayu" in browser.find_element(By.TAG_NAME, "h1").text
    shot(browser, "member-page")

    # a missing reason: the error is next to the field, nothing is written
    browser.find_element(By.ID, "f-points").send_keys("300")
    browser.find_element(
        By.XPATH, "//form[contains(@action,'/adjust')]//button[@type='submit']"
    ).click()
    error = _wait(browser).until(ec.presence_of_element_located((By.ID, "err-reason")))
    assert error.text == "This field is required."
    assert browser.find_element(By.ID, "f-points").get_attribute("value") == "300"
    assert available(client, tenant, siti) == 1200
    shot(browser, "member-adjust-error")

    browser.find_element(By.ID, "f-reason").send_keys("Goodwill: the order was late")
    browser.find_element(
        By.XPATH, "//form[contains(@action,'/adjust')]//button[@type='submit']"
    ).click()
    _wait(browser).until(ec.text_to_be_present_in_element((By.ID, "balance-available"), "1,500"))
    assert "Points adjusted." in browser.find_element(By.CSS_SELECTOR, ".flash").text
    assert "Goodwill: the order was late" in browser.find_element(By.ID, "ledger").text
    assert available(client, tenant, siti) == 1500
    shot(browser, "member-page-after-adjust")

    # the <script> member is shown as text in the search results
    browser.get(live_server.url + "/console/members?q=script")
    cell = _wait(browser).until(ec.presence_of_element_located((By.CSS_SELECTOR, "#results td a")))
    assert cell.text == "<script>alert(1)</script>"

    # merge: pick the duplicate by search, confirm with both shown side by side
    dup = new_member(client, tenant, name="Siti R.", email="siti.r@example.com")
    grant(client, tenant, dup, 200)
    browser.get(f"{live_server.url}/console/members/{siti}/merge?q=siti")
    browser.find_element(By.CSS_SELECTOR, f'a[href$="other={dup}"]').click()
    _wait(browser).until(ec.presence_of_element_located((By.CSS_SELECTOR, ".merge-away")))
    shot(browser, "member-merge-confirm")
    browser.find_element(By.ID, "f-reason").send_keys("Same person, two phones")
    browser.find_element(By.CSS_SELECTOR, "form[action$='/merge'] button.danger").click()
    _wait(browser).until(ec.text_to_be_present_in_element((By.ID, "balance-available"), "1,700"))

    # erase: a wrong confirmation is answered next to the field; then the anonymised record
    browser.get(f"{live_server.url}/console/members/{budi}/erase")
    browser.find_element(By.ID, "f-confirm").send_keys("yes")
    browser.find_element(By.ID, "f-reason").send_keys("The member asked")
    browser.find_element(By.CSS_SELECTOR, "form button.danger").click()
    _wait(browser).until(ec.presence_of_element_located((By.ID, "err-confirm")))
    shot(browser, "member-erase-error")
    confirm = browser.find_element(By.ID, "f-confirm")
    confirm.clear()
    confirm.send_keys("ERASE")
    browser.find_element(By.CSS_SELECTOR, "form button.danger").click()
    _wait(browser).until(ec.presence_of_element_located((By.CSS_SELECTOR, ".pill.danger")))
    assert "Budi Santoso" not in browser.page_source
    shot(browser, "member-erased")
