"""Browser journey (headless Chromium): the owner signs in through the form, lands on the
console, walks the settings tabs and creates an API key; a wrong password is answered next
to the form in the language chosen on the sign-in page."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from tests.web.conftest import LiveServer, StaffLogin, browser_sign_in, browser_wait, shot


def _wait(browser: Any) -> WebDriverWait[Any]:
    return browser_wait(browser, 10)


def test_owner_signs_in_and_walks_the_settings(
    live_server: LiveServer, browser: Any, staff_user: Callable[..., StaffLogin]
) -> None:
    owner = staff_user("owner")
    browser.get(live_server.url + "/console/settings/keys")
    _wait(browser).until(ec.presence_of_element_located((By.ID, "f-email")))
    assert "/console/sign-in" in browser.current_url
    shot(browser, "console-sign-in")

    browser_sign_in(browser, live_server, owner)
    _wait(browser).until(ec.presence_of_element_located((By.CSS_SELECTOR, ".topbar .who")))
    assert browser.current_url.rstrip("/").endswith("/console")
    assert "Owner Person" in browser.find_element(By.CSS_SELECTOR, ".topbar .who").text
    assert "Kopi Test" in browser.find_element(By.CSS_SELECTOR, ".topbar .brand").text

    for tab, name in (
        ("tenant", "settings-business"),
        ("programs", "settings-programs"),
        ("staff", "settings-staff"),
        ("keys", "settings-keys"),
    ):
        browser.get(f"{live_server.url}/console/settings/{tab}")
        current = _wait(browser).until(
            ec.presence_of_element_located((By.CSS_SELECTOR, '.tabs a[aria-current="page"]'))
        )
        assert current.get_attribute("href").endswith(f"/console/settings/{tab}")
        shot(browser, name)

    # a program's settings: a wrong value is answered next to its field
    browser.get(f"{live_server.url}/console/settings/programs")
    browser.find_element(By.CSS_SELECTOR, "td.actions a").click()
    field = _wait(browser).until(ec.presence_of_element_located((By.ID, "f-pending_days")))
    field.clear()
    field.send_keys("400")
    browser.find_element(
        By.XPATH, "//form[contains(@action, '/console/settings/programs/')]//button[@type='submit']"
    ).click()
    error = _wait(browser).until(ec.presence_of_element_located((By.ID, "err-pending_days")))
    assert error.text == "Enter 365 or less."
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", error)
    shot(browser, "settings-program-edit-error")

    browser.get(f"{live_server.url}/console/settings/keys")
    _wait(browser).until(ec.presence_of_element_located((By.ID, "f-name")))
    browser.find_element(By.ID, "f-name").send_keys("Till 1")
    browser.find_element(By.CSS_SELECTOR, "#f-scope option[value='pos']").click()
    browser.find_element(By.XPATH, "//form[@action='/console/settings/keys']//button").click()
    secret = _wait(browser).until(ec.presence_of_element_located((By.ID, "secret"))).text
    assert secret.startswith("sk_pos_")
    copy = browser.find_element(By.CSS_SELECTOR, "[data-copy]")
    assert copy.get_attribute("data-copy") == secret
    shot(browser, "settings-api-key-created")

    # back on the list the key is shown by its prefix only
    browser.find_element(By.LINK_TEXT, "Done").click()
    _wait(browser).until(ec.presence_of_element_located((By.CSS_SELECTOR, "table code")))
    assert secret not in browser.page_source
    codes = [c.text for c in browser.find_elements(By.CSS_SELECTOR, "table code")]
    assert any(c.startswith("sk_pos_") and c.endswith("…") for c in codes)


def test_a_wrong_password_is_answered_in_the_chosen_language(
    live_server: LiveServer, browser: Any, staff_user: Callable[..., StaffLogin]
) -> None:
    owner = staff_user("owner")
    browser.get(live_server.url + "/console/sign-in")
    browser.find_element(By.LINK_TEXT, "Bahasa Melayu").click()
    _wait(browser).until(ec.text_to_be_present_in_element((By.TAG_NAME, "h1"), "Log masuk"))
    browser.find_element(By.ID, "f-email").send_keys(owner.email)
    browser.find_element(By.ID, "f-password").send_keys("not-my-password")
    browser.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    error = _wait(browser).until(ec.presence_of_element_located((By.ID, "err-__all__")))
    assert error.text == "E-mel atau kata laluan salah."
    assert browser.find_element(By.ID, "f-email").get_attribute("value") == owner.email
    assert browser.find_element(By.ID, "f-password").get_attribute("value") == ""
    shot(browser, "console-sign-in-wrong-password-ms")
