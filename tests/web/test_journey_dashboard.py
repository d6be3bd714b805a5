"""Journey in headless Chromium: the owner reads the dashboard (charts drawn in the browser
from the JSON endpoints with the vendored Chart.js) and the analytics pages."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient

from setia.web import i18n
from tests.conftest import TenantFixture
from tests.web.conftest import LiveServer, StaffLogin, browser_session, browser_wait, shot
from tests.web.test_dashboard import build, expected, today

CHARTS = ("points", "tiers", "labels", "types", "rewards")


def full_shot(browser: Any, name: str) -> None:
    """A screenshot of the whole page (the window grown to the page's height)."""
    height = int(browser.execute_script("return document.documentElement.scrollHeight;"))
    browser.set_window_size(1280, min(max(height, 900), 4000))
    shot(browser, name)
    browser.set_window_size(1280, 900)


def test_the_owner_reads_the_dashboard_and_analytics(
    client: TestClient,
    tenant: TenantFixture,
    live_server: LiveServer,
    browser: Any,
    staff_user: Callable[..., StaffLogin],
) -> None:
    from selenium.webdriver.common.by import By

    build(client, tenant)
    want = expected(live_server.db, tenant, today() - timedelta(days=29), today())
    browser_session(browser, live_server, staff_user("owner"))
    browser.get(live_server.url + "/console")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Dashboard"

    def drawn(driver: Any) -> bool:
        return bool(
            driver.execute_script(
                "var all = document.querySelectorAll('[data-chart]');"
                "for (var i = 0; i < all.length; i++) {"
                "  if (!all[i].getAttribute('data-drawn')) { return false; } }"
                "return all.length === 6;"
            )
        )

    browser_wait(browser, 20).until(drawn)
    for name in CHARTS:
        state = browser.find_element(By.CSS_SELECTOR, f'[data-chart="{name}"]').get_attribute(
            "data-drawn"
        )
        assert state == "chart", name
        has_chart = browser.execute_script(
            "var c = document.getElementById(arguments[0]);"
            "return !!(c && window.Chart && window.Chart.getChart(c));",
            f"chart-{name}",
        )
        assert has_chart, name
    # the cohort heatmap is a table with coloured cells
    heat = browser.find_element(By.CSS_SELECTOR, '[data-chart="cohorts"] table.heatmap')
    assert heat.find_element(By.CSS_SELECTOR, "td.heat").get_attribute("style")
    # every chart has its numbers as a table for screen readers
    rewards_table = browser.find_element(
        By.CSS_SELECTOR, '[data-chart="rewards"] [data-chart-table] table'
    )
    assert "Free coffee" in rewards_table.get_attribute("textContent")
    # the KPI tiles show the services' figures
    active = browser.find_element(By.CSS_SELECTOR, "#stat-active .value").text
    assert active == i18n.number(want["members"]["active"], "en")
    issued = browser.find_element(By.CSS_SELECTOR, "#stat-issued .value").text
    assert issued == i18n.number(want["points"]["issued"], "en")
    full_shot(browser, "console-dashboard")

    # a 90-day period chosen with the form: weekly points, the same page
    browser.find_element(By.CSS_SELECTOR, '#f-period option[value="90"]').click()
    browser.find_element(By.CSS_SELECTOR, ".period-form button[type=submit]").click()
    browser_wait(browser, 10).until(lambda d: "period=90" in d.current_url)
    browser_wait(browser, 20).until(drawn)
    labels = browser.execute_script(
        "return window.Chart.getChart(document.getElementById('chart-points')).data.labels.length;"
    )
    assert labels == 13

    browser.get(live_server.url + "/console/analytics")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Analytics"
    assert browser.find_element(By.ID, "h-rfm").text == "RFM segments"
    full_shot(browser, "console-analytics")
    browser.get(live_server.url + "/console/analytics/segments/new")
    browser.find_element(By.ID, "f-key").send_keys("repeat-buyers")
    browser.find_element(By.ID, "f-name_en").send_keys("Repeat buyers")
    browser.find_element(By.ID, "f-min_orders").send_keys("2")
    full_shot(browser, "console-analytics-segment-form")
    browser.find_element(By.CSS_SELECTOR, "form.card button[type=submit]").click()
    # The old page's heading may go stale between finding and reading it, and Chromium
    # sometimes answers such a read with an inspector error instead: look again.
    browser_wait(browser, 10).until(
        lambda d: d.find_element(By.TAG_NAME, "h1").text == "Repeat buyers"
    )
    assert "2 members now" in browser.find_element(By.TAG_NAME, "main").text
    shot(browser, "console-analytics-segment")
