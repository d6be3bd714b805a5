"""The browser harness itself: headless Chromium opens a page of the live test server."""

from __future__ import annotations

from typing import Any

from tests.web.conftest import LiveServer, shot


def test_chromium_renders_the_error_page(live_server: LiveServer, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    browser.get(live_server.url + "/console/no-such-page")
    assert browser.find_element(By.TAG_NAME, "h1").text in (
        "Page not found",
        "Halaman tidak ditemukan",
    )
    assert shot(browser, "error-404").stat().st_size > 1000
