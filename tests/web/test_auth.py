"""Staff sign-in, sign-out, lockout, language switch, invite and password reset pages."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from setia.core.db import Database
from setia.core.time import utcnow
from setia.outbox.models import OutboxMessage
from setia.web import security
from setia.web.deps import STAFF_COOKIE
from setia.web.models import SignInAttempt, StaffUser, WebSession
from tests.web.conftest import PASSWORD, StaffLogin, _app_client


@pytest.fixture
def web(db: Database) -> Any:
    client = _app_client(db)
    client.headers["Accept-Language"] = "en"
    with client:
        yield client


def _csrf(client: TestClient, url: str = "/console/sign-in") -> str:
    r = client.get(url)
    assert r.status_code == 200, r.text
    m = re.search(r'name="csrf_token" value="([^"]+)"', r.text)
    assert m, "no CSRF field on " + url
    return m.group(1)


def sign_in(client: TestClient, email: str, password: str, *, next: str = "", **kw: Any) -> Any:
    token = _csrf(client)
    return client.post(
        "/console/sign-in",
        data={"email": email, "password": password, "csrf_token": token, "next": next},
        follow_redirects=False,
        **kw,
    )


def _error(html: str, field: str = "__all__") -> str:
    m = re.search(rf'id="err-{re.escape(field)}">([^<]*)<', html)
    return m.group(1) if m else ""


def test_the_sign_in_page_has_one_form_with_email_and_password(web: TestClient) -> None:
    r = web.get("/console/sign-in")
    assert r.status_code == 200
    assert 'id="f-email"' in r.text
    assert 'id="f-password"' in r.text
    assert r.text.count('type="submit"') == 1
    assert 'autocomplete="current-password"' in r.text
    assert "setia_csrf" in r.headers["set-cookie"]


def test_signing_in_starts_a_session_with_a_safe_cookie(
    web: TestClient, staff_user: Callable[..., StaffLogin], db: Database
) -> None:
    login = staff_user("admin")
    r = sign_in(web, login.email.upper(), PASSWORD, next="/console/members?q=ani")
    assert r.status_code == 303
    assert r.headers["location"] == "/console/members?q=ani"
    cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith(STAFF_COOKIE))
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Path=/" in cookie
    assert "Secure" not in cookie  # plain http in tests; https sets it
    with db.session() as s:
        user = s.get(StaffUser, login.id)
        assert user is not None
        assert user.last_sign_in_at is not None
        assert s.scalar(select(func.count()).select_from(WebSession)) == 1
    page = web.get("/console/settings/tenant")
    assert page.status_code == 200
    assert "Admin Person" in page.text


def test_the_cookie_is_secure_over_https(
    db: Database, staff_user: Callable[..., StaffLogin]
) -> None:
    login = staff_user("owner")
    with TestClient(
        __import__("setia.app", fromlist=["create_app"]).create_app(db),
        base_url="https://testserver",
    ) as client:
        r = sign_in(client, login.email, PASSWORD)
    cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith(STAFF_COOKIE))
    assert "Secure" in cookie


def test_a_cashier_lands_on_the_cashier_page_and_foreign_next_is_ignored(
    web: TestClient, staff_user: Callable[..., StaffLogin]
) -> None:
    login = staff_user("cashier")
    for bad in ("https://evil.example/console", "//evil.example/console", "/portal/x"):
        r = sign_in(web, login.email, PASSWORD, next=bad)
        assert r.headers["location"] == "/console/pos", bad
        web.cookies.delete(STAFF_COOKIE)


def test_a_wrong_password_shows_the_error_in_the_chosen_language_and_is_counted(
    web: TestClient, staff_user: Callable[..., StaffLogin], db: Database
) -> None:
    login = staff_user("owner")
    r = web.get("/console/sign-in?lang=ms", follow_redirects=False)
    assert r.status_code == 303
    assert "setia_lang=ms" in r.headers["set-cookie"]
    r = sign_in(web, login.email, "not-the-password")
    assert r.status_code == 422
    assert _error(r.text) == "E-mel atau kata laluan salah."
    assert f'value="{login.email}"' in r.text  # the email stays, the password does not
    assert "not-the-password" not in r.text
    with db.session() as s:
        keys = set(s.scalars(select(SignInAttempt.key)))
    assert keys == {f"staff:{login.email}", "ip:testclient"}


def test_empty_fields_get_messages_next_to_them(web: TestClient) -> None:
    token = _csrf(web)
    r = web.post(
        "/console/sign-in",
        data={"email": "", "password": "", "csrf_token": token},
        headers={"Accept-Language": "id"},
    )
    assert r.status_code == 422
    assert _error(r.text, "email") == "Kolom ini wajib diisi."
    assert _error(r.text, "password") == "Kolom ini wajib diisi."


def test_sign_in_without_the_csrf_token_is_refused(
    web: TestClient, staff_user: Callable[..., StaffLogin], db: Database
) -> None:
    login = staff_user("owner")
    web.get("/console/sign-in")
    r = web.post("/console/sign-in", data={"email": login.email, "password": PASSWORD})
    assert r.status_code == 403
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(WebSession)) == 0


def test_five_failures_lock_the_account_then_the_window_passes(
    web: TestClient, staff_user: Callable[..., StaffLogin], db: Database
) -> None:
    login = staff_user("owner")
    for _ in range(5):
        assert sign_in(web, login.email, "wrong-password-x").status_code == 422
    r = sign_in(web, login.email, PASSWORD)  # even the right password
    assert r.status_code == 429
    assert "Too many attempts. Try again in 15 minutes." in r.text
    # an unknown email looks the same (no hint of who has an account)
    for _ in range(5):
        sign_in(web, "nobody@example.com", "wrong-password-x")
    r = sign_in(web, "nobody@example.com", "wrong-password-x")
    assert r.status_code == 429
    assert "Too many attempts" in r.text
    # 16 minutes later: move the account's failures back in time
    with db.session() as s:
        for row in s.scalars(select(SignInAttempt)):
            row.at = utcnow() - timedelta(minutes=16)
    r = sign_in(web, login.email, PASSWORD)
    assert r.status_code == 303


def test_the_minutes_left_count_down(db: Database) -> None:
    from setia.web.console.auth import minutes_left

    now = utcnow()
    with db.session() as s:
        for i in range(5):
            security.record_attempt(
                s, "staff:x@example.com", success=False, now=now - timedelta(minutes=10 - i)
            )
        s.flush()
        assert security.blocked(s, "staff:x@example.com", security.ACCOUNT_LIMIT, now)
        assert minutes_left(s, "staff:x@example.com", security.ACCOUNT_LIMIT, now) == 5


def test_disabled_and_invited_users_cannot_sign_in(
    web: TestClient, staff_user: Callable[..., StaffLogin], db: Database
) -> None:
    login = staff_user("marketer")
    with db.session() as s:
        user = s.get(StaffUser, login.id)
        assert user is not None
        user.status = "disabled"
    r = sign_in(web, login.email, PASSWORD)
    assert r.status_code == 403
    assert "This account is disabled" in r.text
    with db.session() as s:
        user = s.get(StaffUser, login.id)
        assert user is not None
        user.status = "invited"
        user.password_hash = None
    r = sign_in(web, login.email, PASSWORD)
    assert r.status_code == 422
    assert _error(r.text) == "The email or password is wrong."


def test_an_old_hash_is_upgraded_at_sign_in(
    web: TestClient, staff_user: Callable[..., StaffLogin], db: Database
) -> None:
    from argon2 import PasswordHasher

    login = staff_user("owner")
    weak = PasswordHasher(time_cost=1, memory_cost=8192).hash(PASSWORD)
    with db.session() as s:
        user = s.get(StaffUser, login.id)
        assert user is not None
        user.password_hash = weak
    assert sign_in(web, login.email, PASSWORD).status_code == 303
    with db.session() as s:
        user = s.get(StaffUser, login.id)
        assert user is not None
        assert user.password_hash != weak
        assert not security.needs_rehash(user.password_hash or "")


def test_sign_out_ends_the_session(console_as: Any, db: Database) -> None:
    c = console_as("owner")
    r = c.post("/console/sign-out", csrf=False)
    assert r.status_code == 403
    assert c.get("/console/settings/tenant").status_code == 200  # still signed in
    r = c.post("/console/sign-out")
    assert r.status_code == 303
    assert r.headers["location"] == "/console/sign-in"
    with db.session() as s:
        row = s.scalars(select(WebSession)).one()
        assert row.revoked_at is not None
    r = c.get("/console/settings/tenant", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"].startswith("/console/sign-in")


def test_the_language_switch_is_kept_on_the_session_and_the_user(
    console_as: Any, db: Database
) -> None:
    c = console_as("owner", lang="en")
    r = c.post("/console/lang", {"lang": "ms", "next": "/console/settings/keys"})
    assert r.status_code == 303
    assert r.headers["location"] == "/console/settings/keys"
    page = c.get("/console/settings/keys")
    assert "Kunci API baharu" in page.text
    with db.session() as s:
        user = s.get(StaffUser, c.login.id)
        assert user is not None
        assert user.locale == "ms"
        assert s.scalars(select(WebSession.locale)).one() == "ms"
    r = c.post("/console/lang", {"lang": "id", "next": "https://evil.example/"})
    assert r.headers["location"] == "/console"
    # The switch comes back to the same page with its query (a search, a tab, a period).
    page = c.get("/console/members?q=Siti&status=active")
    assert 'name="next" value="/console/members?q=Siti&amp;status=active"' in page.text
    r = c.post("/console/lang", {"lang": "en", "next": "/console/members?q=Siti&status=active"})
    assert r.headers["location"] == "/console/members?q=Siti&status=active"


def test_password_reset_end_to_end(
    web: TestClient,
    staff_user: Callable[..., StaffLogin],
    console_as: Any,
    db: Database,
    caplog: pytest.LogCaptureFixture,
) -> None:
    login = staff_user("owner")
    other = _app_client(db)  # another browser signed in as the same user
    with other:
        assert sign_in(other, login.email, PASSWORD).status_code == 303
        token = _csrf(web, "/console/reset")
        with caplog.at_level(logging.INFO, logger="setia.web"):
            r = web.post("/console/reset", data={"email": login.email, "csrf_token": token})
        assert r.status_code == 200
        assert "If that address has an account, a link is on its way." in r.text
        with db.session() as s:
            msg = s.scalars(
                select(OutboxMessage).where(OutboxMessage.topic == "staff.password_reset")
            ).one()
            link = msg.payload["link"]
        assert link.startswith("http://testserver/console/reset/")
        assert link in caplog.text
        path = link.removeprefix("http://testserver")

        # an unknown address: the same answer, nothing sent
        r = web.post("/console/reset", data={"email": "who@example.com", "csrf_token": token})
        assert "If that address has an account, a link is on its way." in r.text
        with db.session() as s:
            assert s.scalar(select(func.count()).select_from(OutboxMessage)) == 1

        page = web.get(path)
        assert page.status_code == 200
        assert login.email in page.text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert csrf
        r = web.post(
            path,
            data={
                "password": "brand-new-secret",
                "password2": "brand-new-other",
                "csrf_token": csrf[1],
            },
        )
        assert r.status_code == 422
        assert _error(r.text, "password2") == "The two passwords are not the same."
        r = web.post(path, data={"password": "short", "password2": "short", "csrf_token": csrf[1]})
        assert _error(r.text, "password") == "Use at least 10 characters."
        r = web.post(
            path,
            data={
                "password": "brand-new-secret",
                "password2": "brand-new-secret",
                "csrf_token": csrf[1],
            },
            follow_redirects=False,
        )
        assert r.status_code == 303
        assert r.headers["location"] == "/console"
        # signed in here, signed out in the other browser
        assert web.get("/console/settings/tenant").status_code == 200
        assert other.get("/console/settings/tenant", follow_redirects=False).status_code == 303
    # the link works once
    assert web.get(path).status_code == 410
    assert "This link no longer works" in web.get(path).text
    fresh = _app_client(db)
    with fresh:
        assert sign_in(fresh, login.email, PASSWORD).status_code == 422
        assert sign_in(fresh, login.email, "brand-new-secret").status_code == 303


def test_an_expired_reset_link_gives_a_clear_page(
    web: TestClient, staff_user: Callable[..., StaffLogin], db: Database
) -> None:
    from setia.web import staff

    login = staff_user("admin")
    with db.session() as s:
        user = s.get(StaffUser, login.id)
        assert user is not None
        token = staff.issue_token(s, user, "reset", now=utcnow() - timedelta(hours=2))
    r = web.get(f"/console/reset/{token}")
    assert r.status_code == 410
    assert "It has expired or was already used." in r.text
    assert web.get("/console/invite/not-a-token").status_code == 410


def test_invite_end_to_end_through_the_pages(
    console_as: Any, web: TestClient, db: Database
) -> None:
    owner = console_as("owner")
    r = owner.post(
        "/console/settings/staff/invite", {"email": "Rina@Example.com", "role": "marketer"}
    )
    assert r.status_code == 201
    link = re.search(r'id="invite-link">([^<]+)<', r.text)
    assert link
    path = link[1].removeprefix("http://testserver")
    with db.session() as s:
        assert s.scalars(select(OutboxMessage.topic)).all() == ["staff.invited"]
    page = web.get(path)
    assert page.status_code == 200
    assert "rina@example.com" in page.text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert csrf
    r = web.post(path, data={"name": "", "password": "x", "password2": "x", "csrf_token": csrf[1]})
    assert r.status_code == 422
    assert _error(r.text, "name") == "This field is required."
    r = web.post(
        path,
        data={
            "name": "Rina <b>Marketing</b>",
            "password": "rina-password-1",
            "password2": "rina-password-1",
            "csrf_token": csrf[1],
        },
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert r.headers["location"] == "/console"
    with db.session() as s:
        user = s.scalars(select(StaffUser).where(StaffUser.email == "rina@example.com")).one()
        assert user.status == "active"
        assert user.name == "Rina <b>Marketing</b>"
    assert web.get(path).status_code == 410
    listing = owner.get("/console/settings/staff")
    assert "Rina &lt;b&gt;Marketing&lt;/b&gt;" in listing.text


def test_the_language_links_before_sign_in_come_back_to_the_page(web: TestClient) -> None:
    r = web.get("/console/lang?lang=id&next=/console/reset", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/console/reset"
    assert "setia_lang=id" in r.headers["set-cookie"]
    assert "Atur ulang kata sandi" in web.get("/console/reset").text
    r = web.get("/console/lang?lang=ms&next=https://evil.example/", follow_redirects=False)
    assert r.headers["location"] == "/console/sign-in"
