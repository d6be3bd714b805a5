"""The console and portal shell: sign-in required, error pages as HTML, escaping."""

from __future__ import annotations

from fastapi.testclient import TestClient


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


def test_a_signed_in_page_renders_in_the_staff_language(console_as) -> None:  # type: ignore[no-untyped-def]
    c = console_as("owner", lang="ms")
    r = c.get("/console/members")
    assert r.status_code == 200
    assert "<h1>Ahli</h1>" in r.text
    assert 'name="csrf-token" content="' + c.csrf + '"' in r.text


def test_a_revoked_session_is_sent_to_sign_in(console_as, db) -> None:  # type: ignore[no-untyped-def]
    from setia.web import security

    c = console_as("admin")
    with db.session() as s:
        security.end_sessions_of(s, staff_user_id=c.login.id)
    r = c.get("/console/members", follow_redirects=False)
    assert r.status_code == 303
