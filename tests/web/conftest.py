"""Fixtures for console and portal tests.

- ``staff_user(role)`` makes an active staff user of the test tenant (password known).
- ``console_as(role)`` signs a TestClient in as that role (a real session row and cookie) and
  returns a ``ConsoleClient`` whose ``post``/``form`` add the session's CSRF token.
- ``portal_as(member_id)`` does the same for a member in the portal.
- ``live_server`` serves the app on a free port in a thread (for the browser).
- ``browser`` is headless Chromium driven by Selenium (Debian's chromium + chromedriver,
  which ``make browser`` installs); ``shot(browser, name)`` saves a screenshot under
  ``build/screenshots/`` (or ``$SETIA_SCREENSHOTS``).
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi.testclient import TestClient

from setia.app import create_app
from setia.core.db import Database
from setia.web import security, staff
from setia.web.deps import MEMBER_COOKIE, STAFF_COOKIE
from tests.conftest import TenantFixture

PASSWORD = "correct-horse-battery"
SCREENSHOTS = Path(os.environ.get("SETIA_SCREENSHOTS", "build/screenshots"))


@dataclass
class StaffLogin:
    id: uuid.UUID
    email: str
    password: str
    role: str


@pytest.fixture
def staff_user(db: Database, tenant: TenantFixture) -> Callable[..., StaffLogin]:
    counter = iter(range(1_000_000))

    def make(
        role: str = "owner",
        *,
        tenant_id: uuid.UUID | None = None,
        email: str | None = None,
        locale: str = "en",
    ) -> StaffLogin:
        address = email or f"{role}{next(counter)}-{uuid.uuid4().hex[:6]}@example.com"
        with db.session() as session:
            new = staff.create_user(
                session,
                tenant_id=tenant_id or tenant.tenant_id,
                email=address,
                role=role,
                name=f"{role.title()} Person",
                locale=locale,
                password=PASSWORD,
            )
            return StaffLogin(new.user.id, new.user.email, PASSWORD, role)

    return make


class ConsoleClient:
    """A TestClient signed in with a session cookie; ``csrf`` is that session's token."""

    def __init__(self, client: TestClient, csrf: str, login: StaffLogin | None = None) -> None:
        self.client = client
        self.csrf = csrf
        self.login = login

    def get(self, url: str, **kw: Any) -> Any:
        return self.client.get(url, **kw)

    def post(
        self, url: str, data: dict[str, Any] | None = None, *, csrf: bool = True, **kw: Any
    ) -> Any:
        body = dict(data or {})
        if csrf:
            body.setdefault("csrf_token", self.csrf)
        kw.setdefault("follow_redirects", False)
        return self.client.post(url, data=body, **kw)


def _app_client(db: Database) -> TestClient:
    return TestClient(create_app(db), raise_server_exceptions=False, base_url="http://testserver")


@pytest.fixture
def console_as(
    db: Database, tenant: TenantFixture, staff_user: Callable[..., StaffLogin]
) -> Iterator[Callable[..., ConsoleClient]]:
    clients: list[TestClient] = []

    def make(
        role: str = "owner", *, lang: str = "en", tenant_id: uuid.UUID | None = None
    ) -> ConsoleClient:
        login = staff_user(role, tenant_id=tenant_id, locale=lang)
        with db.session() as session:
            new = security.start_session(
                session,
                kind="staff",
                tenant_id=tenant_id or tenant.tenant_id,
                staff_user_id=login.id,
                locale=lang,
            )
            token, csrf = new.token, new.row.csrf_token
        client = _app_client(db)
        client.__enter__()
        clients.append(client)
        client.cookies.set(STAFF_COOKIE, token)
        return ConsoleClient(client, csrf, login)

    yield make
    for c in clients:
        c.__exit__(None, None, None)


@pytest.fixture
def portal_as(db: Database, tenant: TenantFixture) -> Iterator[Callable[..., ConsoleClient]]:
    clients: list[TestClient] = []

    def make(
        member_id: uuid.UUID | str, *, lang: str | None = None, tenant_id: uuid.UUID | None = None
    ) -> ConsoleClient:
        with db.session() as session:
            new = security.start_session(
                session,
                kind="member",
                tenant_id=tenant_id or tenant.tenant_id,
                member_id=uuid.UUID(str(member_id)),
                locale=lang,
            )
            token, csrf = new.token, new.row.csrf_token
        client = _app_client(db)
        client.__enter__()
        clients.append(client)
        client.cookies.set(MEMBER_COOKIE, token)
        return ConsoleClient(client, csrf)

    yield make
    for c in clients:
        c.__exit__(None, None, None)


# --- the browser ------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveServer:
    url: str
    db: Database


@pytest.fixture
def live_server(db: Database) -> Iterator[LiveServer]:
    port = _free_port()
    config = uvicorn.Config(
        create_app(db), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", db)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _chromium() -> tuple[str, str]:
    binary = shutil.which("chromium") or shutil.which("chromium-browser") or "/usr/bin/chromium"
    driver = shutil.which("chromedriver") or "/usr/lib/chromium/chromedriver"
    if not (Path(binary).exists() and Path(driver).exists()):
        raise RuntimeError(
            "headless Chromium is missing: run `make browser` (installs Debian's chromium and "
            "chromium-driver), which `make test` does first"
        )
    return binary, driver


@pytest.fixture
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver_path = _chromium()
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,900",
        "--lang=en-US",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.implicitly_wait(5)
    try:
        yield driver
    finally:
        driver.quit()


def shot(driver: Any, name: str) -> Path:
    """Save a screenshot of the current page as ``build/screenshots/<name>.png``."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path


def browser_wait(browser: Any, timeout: float = 15) -> Any:
    """A ``WebDriverWait`` that retries through a page being replaced under it.

    While a form submit or a link loads the next page, Chrome can answer a read of the old
    page with a stale element, or with "unhandled inspector error" (a ``WebDriverException``);
    both mean "not there yet", so the condition is asked again until ``timeout`` runs out.
    """
    from selenium.common.exceptions import (
        NoSuchElementException,
        StaleElementReferenceException,
        WebDriverException,
    )
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(
        browser,
        timeout,
        ignored_exceptions=(
            NoSuchElementException,
            StaleElementReferenceException,
            WebDriverException,
        ),
    )


def browser_session(browser: Any, server: LiveServer, login: StaffLogin) -> None:
    """Sign the browser in as ``login`` without the sign-in form (a real session row and
    cookie), for journeys that are not about signing in."""
    with server.db.session() as session:
        new = security.start_session(
            session,
            kind="staff",
            tenant_id=_tenant_of(server.db, login.id),
            staff_user_id=login.id,
            locale="en",
        )
        token = new.token
    browser.get(server.url + "/healthz")
    browser.add_cookie({"name": STAFF_COOKIE, "value": token, "path": "/"})


def browser_sign_in(browser: Any, server: LiveServer, login: StaffLogin) -> None:
    """Sign in through the sign-in page (inputs #f-email and #f-password, one submit button)."""
    from selenium.webdriver.common.by import By

    browser.get(server.url + "/console/sign-in")
    browser.find_element(By.ID, "f-email").send_keys(login.email)
    browser.find_element(By.ID, "f-password").send_keys(login.password)
    browser.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()


def _tenant_of(db: Database, staff_user_id: uuid.UUID) -> uuid.UUID:
    from setia.web.models import StaffUser

    with db.session() as session:
        user = session.get(StaffUser, staff_user_id)
        assert user is not None
        return user.tenant_id
