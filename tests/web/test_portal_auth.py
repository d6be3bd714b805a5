"""Member portal sign-in by one-time code: delivery through the outbox (and the log), wrong,
expired and reused codes, the limits, no member enumeration, tenants kept apart, sign-out,
erasure ending the session, and the language switch before sign-in."""

from __future__ import annotations

import logging
import re
import uuid
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from setia.app import create_app
from setia.core.db import Database
from setia.core.time import utcnow
from setia.outbox.models import OutboxMessage
from setia.web.deps import MEMBER_COOKIE
from setia.web.models import PortalCode, WebSession
from tests.conftest import TenantFixture, make_tenant

PHONE = "0812-3456-7890"
E164 = "+6281234567890"


def new_member(client: TestClient, tenant: TenantFixture, **body: Any) -> str:
    data = {"name": "Siti Rahayu", "phone": PHONE, "email": "siti@example.co.id", **body}
    r = client.post("/v1/members", json=data, headers=tenant.headers)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def fresh_client(db: Database) -> TestClient:
    return TestClient(create_app(db), raise_server_exceptions=False, base_url="http://testserver")


def csrf_of(html: str) -> str:
    """The CSRF token of the page's own form (inside <main>, not the language switch)."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', html.split("<main", 1)[1])
    assert found, "no CSRF field in the page's form"
    return found.group(1)


def ask_code(c: TestClient, tenant_id: uuid.UUID, login: str) -> Any:
    page = c.get(f"/portal/{tenant_id}/sign-in")
    assert page.status_code == 200
    return c.post(
        f"/portal/{tenant_id}/sign-in",
        data={"login": login, "csrf_token": csrf_of(page.text), "next": "/portal"},
        follow_redirects=False,
    )


def codes_sent(db: Database, tenant_id: uuid.UUID) -> list[dict[str, Any]]:
    with db.session() as s:
        rows = s.scalars(
            select(OutboxMessage)
            .where(
                OutboxMessage.tenant_id == tenant_id, OutboxMessage.topic == "portal.sign_in_code"
            )
            .order_by(OutboxMessage.created_at)
        ).all()
        return [dict(r.payload) for r in rows]


def enter_code(c: TestClient, code_url: str, code: str) -> Any:
    page = c.get(code_url)
    assert page.status_code == 200
    challenge = re.search(r'name="c" value="([^"]*)"', page.text)
    assert challenge
    tenant_path = code_url.split("?")[0]
    return c.post(
        tenant_path,
        data={
            "c": challenge.group(1),
            "code": code,
            "csrf_token": csrf_of(page.text),
            "next": "/portal",
        },
        follow_redirects=False,
    )


def count_codes(db: Database, member_id: str) -> int:
    with db.session() as s:
        return int(
            s.scalar(
                select(func.count())
                .select_from(PortalCode)
                .where(PortalCode.member_id == uuid.UUID(member_id))
            )
            or 0
        )


def test_sign_in_with_a_code_from_the_outbox_and_the_log(
    db: Database, tenant: TenantFixture, client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    member_id = new_member(client, tenant)
    c = fresh_client(db)
    page = c.get(f"/portal/{tenant.tenant_id}/sign-in?login={quote(E164)}")
    assert f'value="{E164}"' in page.text  # ?login= fills the field
    assert "Kopi Test" in page.text
    with caplog.at_level(logging.WARNING, logger="setia.portal"):
        r = ask_code(c, tenant.tenant_id, "0812 3456 7890")  # a local format
    assert r.status_code == 303
    assert r.headers["location"].startswith(f"/portal/{tenant.tenant_id}/code?c=")
    sent = codes_sent(db, tenant.tenant_id)
    assert len(sent) == 1
    msg = sent[0]
    assert msg["member_id"] == member_id
    assert msg["channel"] == "whatsapp"
    assert msg["to"] == E164
    assert msg["locale"] == "id"
    assert re.fullmatch(r"\d{6}", msg["code"])
    assert msg["code"] in msg["message"]
    assert "Kopi Test" in msg["message"]
    logged = [rec for rec in caplog.records if rec.name == "setia.portal"]
    assert logged
    assert logged[0].levelno == logging.WARNING
    assert msg["code"] in logged[0].getMessage()
    # Only a digest is stored.
    with db.session() as s:
        row = s.scalars(select(PortalCode)).one()
        assert msg["code"] not in row.digest
        assert row.expires_at - row.created_at == timedelta(minutes=10)

    done = enter_code(c, r.headers["location"], msg["code"])
    assert done.status_code == 303
    assert done.headers["location"] == "/portal"
    assert MEMBER_COOKIE in done.cookies
    home = c.get("/portal")
    assert home.status_code == 200
    assert "Siti Rahayu" in home.text
    assert f"setia:member:{member_id}" not in home.text  # the QR is drawn, not written


def test_an_email_address_gets_the_code_by_email(
    db: Database, tenant: TenantFixture, client: TestClient
) -> None:
    new_member(client, tenant, locale="en")
    c = fresh_client(db)
    assert ask_code(c, tenant.tenant_id, "Siti@Example.co.id").status_code == 303
    (msg,) = codes_sent(db, tenant.tenant_id)
    assert msg["channel"] == "email"
    assert msg["to"] == "siti@example.co.id"
    assert msg["locale"] == "en"
    assert msg["message"].startswith(f"{msg['code']} is your sign-in code for Kopi Test")


def test_a_wrong_code_is_refused_next_to_the_field_and_the_right_one_still_works(
    db: Database, tenant: TenantFixture, client: TestClient
) -> None:
    new_member(client, tenant)
    c = fresh_client(db)
    r = ask_code(c, tenant.tenant_id, PHONE)
    code = codes_sent(db, tenant.tenant_id)[0]["code"]
    wrong = "000000" if code != "000000" else "111111"
    bad = enter_code(c, r.headers["location"], wrong)
    assert bad.status_code == 422
    assert 'id="err-code"' in bad.text
    assert "Kode itu salah" in bad.text  # the shop's language (Indonesian)
    assert MEMBER_COOKIE not in bad.cookies
    short = enter_code(c, r.headers["location"], "12")
    assert short.status_code == 422
    assert 'id="err-code"' in short.text
    assert enter_code(c, r.headers["location"], code).status_code == 303


def test_an_expired_code_is_refused(
    db: Database, tenant: TenantFixture, client: TestClient
) -> None:
    new_member(client, tenant)
    c = fresh_client(db)
    r = ask_code(c, tenant.tenant_id, PHONE)
    code = codes_sent(db, tenant.tenant_id)[0]["code"]
    with db.session() as s:
        row = s.scalars(select(PortalCode)).one()
        row.expires_at = utcnow() - timedelta(seconds=1)
        s.commit()
    res = enter_code(c, r.headers["location"], code)
    assert res.status_code == 422
    assert "kedaluwarsa" in res.text
    assert MEMBER_COOKIE not in res.cookies


def test_a_code_works_once(db: Database, tenant: TenantFixture, client: TestClient) -> None:
    new_member(client, tenant)
    c = fresh_client(db)
    r = ask_code(c, tenant.tenant_id, PHONE)
    code = codes_sent(db, tenant.tenant_id)[0]["code"]
    assert enter_code(c, r.headers["location"], code).status_code == 303
    other = fresh_client(db)
    again = enter_code(other, r.headers["location"], code)
    assert again.status_code == 422
    assert MEMBER_COOKIE not in again.cookies


def test_five_wrong_tries_kill_the_code(
    db: Database, tenant: TenantFixture, client: TestClient
) -> None:
    new_member(client, tenant)
    c = fresh_client(db)
    r = ask_code(c, tenant.tenant_id, PHONE)
    code = codes_sent(db, tenant.tenant_id)[0]["code"]
    wrong = "999999" if code != "999999" else "888888"
    for _ in range(4):
        assert enter_code(c, r.headers["location"], wrong).status_code == 422
    fifth = enter_code(c, r.headers["location"], wrong)
    assert "Terlalu banyak percobaan salah" in fifth.text
    late = enter_code(c, r.headers["location"], code)
    assert late.status_code == 422
    assert MEMBER_COOKIE not in late.cookies
    with db.session() as s:
        assert s.scalars(select(PortalCode)).one().attempts == 5


def test_three_codes_per_member_per_quarter_hour_and_a_limit_per_address(
    db: Database, tenant: TenantFixture, client: TestClient
) -> None:
    member_id = new_member(client, tenant)
    c = fresh_client(db)
    for _ in range(5):
        assert ask_code(c, tenant.tenant_id, PHONE).status_code == 303
    assert count_codes(db, member_id) == 3
    assert len(codes_sent(db, tenant.tenant_id)) == 3
    for _ in range(5):
        ask_code(c, tenant.tenant_id, "0813 0000 0001")
    blocked = ask_code(c, tenant.tenant_id, "0813 0000 0002")
    assert blocked.status_code == 429
    assert 'id="err-login"' in blocked.text


def test_an_unknown_number_gets_the_same_answer(
    db: Database, tenant: TenantFixture, client: TestClient
) -> None:
    new_member(client, tenant)
    c = fresh_client(db)
    known = ask_code(c, tenant.tenant_id, PHONE)
    unknown = ask_code(c, tenant.tenant_id, "0813-9999-0000")
    assert known.status_code == unknown.status_code == 303
    assert known.headers["location"].split("?")[0] == unknown.headers["location"].split("?")[0]
    a = c.get(known.headers["location"]).text
    b = c.get(unknown.headers["location"]).text

    def scrub(html: str) -> str:
        html = re.sub(r'name="c" value="[^"]*"', "", html)
        html = re.sub(r"c=[0-9a-f-]{36}", "", html)
        return html.replace(PHONE, "X").replace("0813-9999-0000", "X")

    assert scrub(a) == scrub(b)
    assert "terdaftar" in a  # "if this number is registered ..."
    assert len(codes_sent(db, tenant.tenant_id)) == 1
    # A guessed code for the unknown number is just a wrong code.
    res = enter_code(c, unknown.headers["location"], "123456")
    assert res.status_code == 422
    assert 'id="err-code"' in res.text


def test_a_text_that_is_neither_a_phone_nor_an_email_is_refused(
    db: Database, tenant: TenantFixture
) -> None:
    c = fresh_client(db)
    r = ask_code(c, tenant.tenant_id, "hello")
    assert r.status_code == 422
    assert 'id="err-login"' in r.text
    empty = ask_code(c, tenant.tenant_id, "")
    assert empty.status_code == 422


def test_another_shops_member_cannot_sign_in_here(
    db: Database, tenant: TenantFixture, client: TestClient
) -> None:
    other = make_tenant(db, name="Toko Lain")
    other_member = new_member(client, other)
    c = fresh_client(db)
    r = ask_code(c, tenant.tenant_id, PHONE)
    assert r.status_code == 303
    assert count_codes(db, other_member) == 0
    assert codes_sent(db, tenant.tenant_id) == []
    assert codes_sent(db, other.tenant_id) == []


def test_a_code_of_one_shop_does_not_work_on_another_shops_page(
    db: Database, tenant: TenantFixture, client: TestClient
) -> None:
    other = make_tenant(db, name="Toko Lain")
    new_member(client, other)
    c = fresh_client(db)
    r = ask_code(c, other.tenant_id, PHONE)
    code = codes_sent(db, other.tenant_id)[0]["code"]
    here = r.headers["location"].replace(str(other.tenant_id), str(tenant.tenant_id))
    res = enter_code(c, here, code)
    assert res.status_code == 422
    assert MEMBER_COOKIE not in res.cookies


def test_sign_in_without_the_csrf_token_is_refused(
    db: Database, tenant: TenantFixture, client: TestClient
) -> None:
    new_member(client, tenant)
    c = fresh_client(db)
    c.get(f"/portal/{tenant.tenant_id}/sign-in")
    r = c.post(f"/portal/{tenant.tenant_id}/sign-in", data={"login": PHONE})
    assert r.status_code == 403
    assert codes_sent(db, tenant.tenant_id) == []


def test_an_erased_members_session_is_dead(
    db: Database, tenant: TenantFixture, client: TestClient, portal_as: Any
) -> None:
    member_id = new_member(client, tenant)
    p = portal_as(member_id)
    assert p.get("/portal").status_code == 200
    r = client.post(
        f"/v1/members/{member_id}/erase",
        json={"confirm": True, "reason": "asked by phone"},
        headers=tenant.headers,
    )
    assert r.status_code == 200, r.text
    gone = p.get("/portal/history", follow_redirects=False)
    assert gone.status_code == 303
    assert gone.headers["location"].startswith(f"/portal/{tenant.tenant_id}/sign-in")


def test_sign_out_ends_the_session(
    db: Database, tenant: TenantFixture, client: TestClient, portal_as: Any
) -> None:
    member_id = new_member(client, tenant)
    p = portal_as(member_id)
    r = p.post("/portal/sign-out")
    assert r.status_code == 303
    assert r.headers["location"] == f"/portal/{tenant.tenant_id}/sign-in"
    with db.session() as s:
        row = s.scalars(
            select(WebSession).where(WebSession.member_id == uuid.UUID(member_id))
        ).one()
        assert row.revoked_at is not None
    assert p.get("/portal/history", follow_redirects=False).status_code == 303


def test_the_portal_without_a_shop_says_to_use_the_shops_link(db: Database) -> None:
    c = fresh_client(db)
    r = c.get("/portal", headers={"Accept-Language": "en"})
    assert r.status_code == 200
    assert "open the link your shop gave you" in r.text
    switched = c.post(
        "/portal/lang",
        data={"lang": "ms", "next": "/portal", "csrf_token": c.cookies["setia_csrf"]},
        follow_redirects=True,
    )
    assert "Mata anda, di telefon anda" in switched.text
    assert c.get("/portal/not-a-shop/sign-in").status_code == 404


def test_after_visiting_a_shop_the_portal_sends_back_to_its_sign_in(
    db: Database, tenant: TenantFixture
) -> None:
    c = fresh_client(db)
    c.get(f"/portal/{tenant.tenant_id}/sign-in")
    r = c.get("/portal/rewards", follow_redirects=True)
    assert r.url.path == f"/portal/{tenant.tenant_id}/sign-in"


@pytest.mark.parametrize(
    ("lang", "text"),
    [("id", "Kirim kode"), ("ms", "Hantar kod kepada saya"), ("en", "Send me a code")],
)
def test_the_language_switch_before_sign_in(
    db: Database, tenant: TenantFixture, lang: str, text: str
) -> None:
    c = fresh_client(db)
    page = c.get(f"/portal/{tenant.tenant_id}/sign-in")
    r = c.post(
        "/portal/lang",
        data={
            "lang": lang,
            "next": f"/portal/{tenant.tenant_id}/sign-in",
            "csrf_token": csrf_of(page.text),
        },
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert r.cookies.get("setia_lang") == lang
    again = c.get(f"/portal/{tenant.tenant_id}/sign-in")
    assert text in again.text
    assert f'<html lang="{lang}">' in again.text
    # The switch is on the page, labelled, with the current language marked.
    assert f'value="{lang}" lang="{lang}"' in again.text
    assert 'aria-pressed="true"' in again.text


def test_the_language_switch_refuses_a_post_without_its_token(
    db: Database, tenant: TenantFixture
) -> None:
    c = fresh_client(db)
    c.get(f"/portal/{tenant.tenant_id}/sign-in")
    r = c.post("/portal/lang", data={"lang": "en", "next": "/portal"}, follow_redirects=False)
    assert r.status_code == 403
