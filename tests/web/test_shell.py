"""The console and portal shell: sign-in required, error pages as HTML, escaping."""

from __future__ import annotations

from fastapi import Request
from fastapi.testclient import TestClient

from setia.web.deps import WebContext, require


def test_a_console_page_without_a_session_redirects_to_sign_in(client: TestClient) -> None:
    r = client.get("/console/members?q=x", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"].startswith("/console/sign-in?next=/console/members")


def test_htmx_requests_get_an_hx_redirect_instead(client: TestClient) -> None:
    r = client.get("/console/members", headers={"HX-Request": "true"}, follow_redirects=False)
    assert r.status_code == 200
    assert r.headers["hx-redirect"].startswith("/console/sign-in")


def test_unknown_console_page_is_an_html_404(client: TestClient) -> None:
    r = client.get("/console/no-such-page", headers={"Accept-Language": "ms"})
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("text/html")
    assert "Halaman tidak dijumpai" in r.text


def test_api_errors_stay_json(client: TestClient) -> None:
    r = client.get("/v1/no-such-thing")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/problem+json")


def test_a_signed_in_page_renders_in_the_staff_language(console_as) -> None:
    c = console_as("owner", lang="ms")
    r = c.get("/console/members")
    assert r.status_code == 200
    assert "<h1>Ahli</h1>" in r.text
    assert 'name="csrf-token" content="' + c.csrf + '"' in r.text


def test_a_revoked_session_is_sent_to_sign_in(console_as, db) -> None:
    from setia.web import security

    c = console_as("admin")
    with db.session() as s:
        security.end_sessions_of(s, staff_user_id=c.login.id)
    r = c.get("/console/members", follow_redirects=False)
    assert r.status_code == 303


def test_an_unexpected_error_on_a_signed_in_page_is_an_html_500_in_the_user_language(
    db, staff_user
) -> None:
    from setia.app import create_app
    from setia.web import security
    from setia.web.deps import STAFF_COOKIE

    app = create_app(db)

    @app.get("/console/boom")
    def boom(request: Request, web: WebContext = require("members.view")) -> None:
        raise RuntimeError("kaboom")

    login = staff_user("owner", locale="id")
    with db.session() as s:
        token = security.start_session(
            s, kind="staff", tenant_id=_tenant(db, login.id), staff_user_id=login.id, locale="id"
        ).token
    with TestClient(app, raise_server_exceptions=False) as c:
        c.cookies.set(STAFF_COOKIE, token)
        r = c.get("/console/boom")
    assert r.status_code == 500
    assert "Terjadi kesalahan di sisi kami" in r.text
    assert "kaboom" not in r.text
    assert "Traceback" not in r.text


def test_plural_messages_fall_back_to_a_plain_catalog_entry() -> None:
    from setia.web.i18n import catalog

    cat = catalog("id")
    assert cat.ngettext("Members", "Members (plural)", 5) == "Anggota"
    assert catalog("en").ngettext("%(n)s point", "%(n)s points", 2) == "%(n)s points"


def _tenant(db, staff_id):
    from setia.web.models import StaffUser

    with db.session() as s:
        user = s.get(StaffUser, staff_id)
        assert user is not None
        return user.tenant_id
