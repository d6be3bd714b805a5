"""Member portal pages: balance and history numbers, rewards and redemption (once on a double
submit), donations, profile and consents, data download and deletion, the language switch,
escaping, CSRF, and one member never seeing another's data."""

from __future__ import annotations

import json
import re
import uuid
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import unquote

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from setia.causes import service as causes
from setia.causes.models import Donation
from setia.causes.schemas import CauseIn
from setia.core.db import Database
from setia.core.i18n import babel_locale
from setia.core.time import utcnow, zone
from setia.coupons import service as coupons
from setia.coupons.schemas import CampaignIn
from setia.members.models import ConsentChange, Member
from setia.programs import service as programs
from setia.rewards import service as rewards
from setia.rewards.models import RewardRedemption
from setia.rewards.schemas import RewardIn
from setia.tenants.models import Tenant
from setia.web.models import WebSession
from tests.conftest import TenantFixture


def new_member(client: TestClient, tenant: TenantFixture, **body: Any) -> str:
    data = {"name": "Siti Rahayu", "phone": f"0812{uuid.uuid4().int % 10**8:08d}", **body}
    r = client.post("/v1/members", json=data, headers=tenant.headers)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def give_points(client: TestClient, tenant: TenantFixture, member_id: str, points: int) -> None:
    r = client.post(
        f"/v1/members/{member_id}/points/adjust",
        json={"points": points, "reason": "welcome gift"},
        headers=tenant.headers,
    )
    assert r.status_code == 201, r.text


def available(client: TestClient, tenant: TenantFixture, member_id: str) -> int:
    r = client.get(f"/v1/members/{member_id}/balance", headers=tenant.headers)
    return int(r.json()["available"])


def make_reward(
    db: Database,
    tenant: TenantFixture,
    code: str = "free-coffee",
    points: int = 500,
    names: dict[str, str] | None = None,
) -> None:
    """A coupon reward (a free drink) in the default program."""
    with db.session() as s:
        row = s.get(Tenant, tenant.tenant_id)
        assert row is not None
        program = programs.get_program(s, row.id, None)
        campaign, _ = coupons.create_campaign(
            s,
            row,
            CampaignIn.model_validate(
                {
                    "code": f"camp-{code}",
                    "program_id": str(program.id),
                    "names": {"id": "Gratis kopi", "en": "Free coffee"},
                    "discount": {"type": "fixed", "amount": "25000"},
                    "member_bound": True,
                    "code_pattern": "KT-####-????",
                }
            ),
        )
        rewards.put_reward(
            s,
            row,
            program,
            code,
            RewardIn.model_validate(
                {
                    "kind": "discount_coupon",
                    "names": names
                    or {"id": "Kopi gratis", "ms": "Kopi percuma", "en": "Free coffee"},
                    "descriptions": {"id": "Satu kopi susu", "en": "One milk coffee"},
                    "points": points,
                    "coupon_campaign_id": str(campaign.id),
                    "coupon_validity_days": 30,
                }
            ),
            actor="test",
        )
        s.commit()


def make_cause(db: Database, tenant: TenantFixture) -> uuid.UUID:
    with db.session() as s:
        program = programs.get_program(s, tenant.tenant_id, None)
        today = utcnow().date()
        cause, _ = causes.put_cause(
            s,
            program,
            "plant-a-tree",
            CauseIn.model_validate(
                {
                    "names": {"id": "Tanam Pohon", "ms": "Tanam Pokok", "en": "Plant a Tree"},
                    "status": "active",
                    "goal_points": 100_000,
                    "starts_on": (today - timedelta(days=30)).isoformat(),
                    "ends_on": (today + timedelta(days=60)).isoformat(),
                    "min_points": 100,
                    "max_points": 5_000,
                    "receipt_prefix": "TP",
                }
            ),
            actor="test",
        )
        s.commit()
        return cause.id


def idem_of(html: str) -> str:
    found = re.search(r'name="idem" value="([0-9a-f]+)"', html)
    assert found, "no idempotency field on the page"
    return found.group(1)


# --- home and history ------------------------------------------------------------------------


def test_home_shows_the_balance_the_qr_code_and_the_tab_bar(
    client: TestClient, tenant: TenantFixture, portal_as: Any
) -> None:
    member_id = new_member(client, tenant)
    give_points(client, tenant, member_id, 1500)
    p = portal_as(member_id, lang="en")
    r = p.get("/portal")
    assert r.status_code == 200
    assert re.search(r'data-testid="available">\s*1,500\s*<', r.text)
    assert "Hello, Siti Rahayu" in r.text
    assert "<svg" in r.text  # the member QR code
    assert 'href="/portal" aria-current="page"' in r.text
    assert 'href="/portal/rewards"' in r.text
    id_view = portal_as(member_id, lang="id").get("/portal")
    assert re.search(r'data-testid="available">\s*1\.500\s*<', id_view.text)


def test_history_lists_each_change_with_the_balance_after(
    client: TestClient, tenant: TenantFixture, portal_as: Any
) -> None:
    member_id = new_member(client, tenant)
    give_points(client, tenant, member_id, 1200)
    give_points(client, tenant, member_id, -200)
    p = portal_as(member_id, lang="en")
    r = p.get("/portal/history")
    assert r.status_code == 200
    assert r.text.count("Correction by the shop") == 2
    assert "+1,200" in r.text
    assert "-200" in r.text
    assert "Balance 1,000" in r.text
    assert "Balance 1,200" in r.text
    assert 'aria-current="page"' in r.text


def test_history_is_paged(client: TestClient, tenant: TenantFixture, portal_as: Any) -> None:
    member_id = new_member(client, tenant)
    for i in range(22):
        give_points(client, tenant, member_id, 10 + i)
    p = portal_as(member_id, lang="en")
    first = p.get("/portal/history")
    assert first.text.count("Correction by the shop") == 20
    older = re.search(r'href="(/portal/history\?cursor=[^"]+)"', first.text)
    assert older
    second = p.get(older.group(1).replace("&amp;", "&"))
    assert second.text.count("Correction by the shop") == 2
    assert "+10<" in second.text  # the first change is on the last page


# --- rewards ---------------------------------------------------------------------------------


def test_a_reward_is_redeemed_once_on_a_double_submit_and_its_code_shown(
    db: Database, client: TestClient, tenant: TenantFixture, portal_as: Any
) -> None:
    make_reward(db, tenant, points=500)
    member_id = new_member(client, tenant)
    give_points(client, tenant, member_id, 800)
    p = portal_as(member_id, lang="en")
    catalog = p.get("/portal/rewards")
    assert "Free coffee" in catalog.text
    assert "You have 800" in catalog.text
    confirm = p.get("/portal/rewards/free-coffee")
    assert "Yes, redeem" in confirm.text
    idem = idem_of(confirm.text)
    first = p.post("/portal/rewards/free-coffee/redeem", {"idem": idem})
    second = p.post("/portal/rewards/free-coffee/redeem", {"idem": idem})
    assert first.status_code == second.status_code == 303
    assert first.headers["location"] == second.headers["location"]
    with db.session() as s:
        reds = s.scalars(select(RewardRedemption)).all()
        assert len(reds) == 1
        code = rewards.coupon_code(s, reds[0])
    assert available(client, tenant, member_id) == 300
    shown = p.get(first.headers["location"])
    assert shown.status_code == 200
    assert code is not None
    assert code in shown.text
    assert "<svg" in shown.text
    mine = p.get("/portal/my-rewards")
    assert code in mine.text
    assert "Ready to use" in mine.text


def test_not_enough_points_gives_a_clear_message_and_writes_nothing(
    db: Database, client: TestClient, tenant: TenantFixture, portal_as: Any
) -> None:
    make_reward(db, tenant, points=500)
    member_id = new_member(client, tenant)
    give_points(client, tenant, member_id, 100)
    p = portal_as(member_id, lang="en")
    catalog = p.get("/portal/rewards")
    assert "You need 400 more" in catalog.text
    # Posting anyway (an old page): refused with the reason, nothing written.
    r = p.post("/portal/rewards/free-coffee/redeem", {"idem": uuid.uuid4().hex})
    assert r.status_code == 409
    assert "You need 400 more" in r.text
    assert 'role="alert"' in r.text
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(RewardRedemption)) == 0
    assert available(client, tenant, member_id) == 100


def test_a_redeem_without_the_csrf_token_is_refused_and_writes_nothing(
    db: Database, client: TestClient, tenant: TenantFixture, portal_as: Any
) -> None:
    make_reward(db, tenant, points=500)
    member_id = new_member(client, tenant)
    give_points(client, tenant, member_id, 800)
    p = portal_as(member_id, lang="en")
    r = p.post("/portal/rewards/free-coffee/redeem", {"idem": uuid.uuid4().hex}, csrf=False)
    assert r.status_code == 403
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(RewardRedemption)) == 0
    assert available(client, tenant, member_id) == 800


def test_script_in_a_reward_name_and_a_member_name_is_shown_as_text(
    db: Database, client: TestClient, tenant: TenantFixture, portal_as: Any
) -> None:
    evil = "<script>alert(1)</script>"
    make_reward(db, tenant, code="evil", points=10, names={"id": evil, "en": evil})
    member_id = new_member(client, tenant, name=evil)
    give_points(client, tenant, member_id, 100)
    p = portal_as(member_id, lang="en")
    for url in ("/portal", "/portal/rewards", "/portal/rewards/evil", "/portal/profile"):
        r = p.get(url)
        assert r.status_code == 200, url
        assert "<script>alert(1)" not in r.text, url
        assert "&lt;script&gt;alert(1)" in r.text, url


def test_one_member_cannot_see_another_members_reward(
    db: Database, client: TestClient, tenant: TenantFixture, portal_as: Any
) -> None:
    make_reward(db, tenant, points=100)
    a = new_member(client, tenant, name="Ani")
    b = new_member(client, tenant, name="Budi")
    give_points(client, tenant, a, 300)
    give_points(client, tenant, b, 700)
    pa = portal_as(a, lang="en")
    pb = portal_as(b, lang="en")
    done = pa.post(
        "/portal/rewards/free-coffee/redeem",
        {"idem": idem_of(pa.get("/portal/rewards/free-coffee").text)},
    )
    url = done.headers["location"]
    assert pa.get(url).status_code == 200
    assert pb.get(url).status_code == 404
    assert "Free coffee" not in pb.get("/portal/my-rewards").text
    home_b = pb.get("/portal").text
    assert "Budi" in home_b
    assert "Ani" not in home_b
    assert re.search(r'data-testid="available">\s*700\s*<', home_b)


# --- causes ----------------------------------------------------------------------------------


def test_donate_points_once_with_a_receipt(
    db: Database, client: TestClient, tenant: TenantFixture, portal_as: Any
) -> None:
    cause_id = make_cause(db, tenant)
    member_id = new_member(client, tenant)
    give_points(client, tenant, member_id, 1000)
    p = portal_as(member_id, lang="en")
    assert "Plant a Tree" in p.get("/portal/causes").text
    page = p.get(f"/portal/causes/{cause_id}")
    idem = idem_of(page.text)
    first = p.post(f"/portal/causes/{cause_id}/donate", {"idem": idem, "points": "250"})
    second = p.post(f"/portal/causes/{cause_id}/donate", {"idem": idem, "points": "250"})
    assert first.status_code == second.status_code == 303
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Donation)) == 1
    assert available(client, tenant, member_id) == 750
    after = p.get("/portal/causes")
    assert "My donations" in after.text
    assert "TP-" in after.text


def test_a_donation_below_the_minimum_is_refused_next_to_the_field(
    db: Database, client: TestClient, tenant: TenantFixture, portal_as: Any
) -> None:
    cause_id = make_cause(db, tenant)
    member_id = new_member(client, tenant)
    give_points(client, tenant, member_id, 1000)
    p = portal_as(member_id, lang="ms")
    idem = idem_of(p.get(f"/portal/causes/{cause_id}").text)
    r = p.post(f"/portal/causes/{cause_id}/donate", {"idem": idem, "points": "50"})
    assert r.status_code == 409
    assert 'id="err-points"' in r.text
    assert "sekurang-kurangnya 100 mata" in r.text
    empty = p.post(f"/portal/causes/{cause_id}/donate", {"idem": idem, "points": ""})
    assert empty.status_code == 422
    assert 'id="err-points"' in empty.text
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Donation)) == 0


# --- profile, consents, data -----------------------------------------------------------------


def test_profile_changes_are_saved_and_wrong_input_is_shown_next_to_the_field(
    db: Database, client: TestClient, tenant: TenantFixture, portal_as: Any
) -> None:
    member_id = new_member(client, tenant)
    p = portal_as(member_id, lang="en")
    bad = p.post(
        "/portal/profile",
        {"name": "Siti R.", "email": "not-an-email", "birthday": "1994-02-30", "locale": "en"},
    )
    assert bad.status_code == 422
    # every mistake at once
    assert 'id="err-birthday"' in bad.text
    assert 'id="err-email"' in bad.text
    bad_email = p.post(
        "/portal/profile",
        {"name": "Siti R.", "email": "not-an-email", "birthday": "1994-03-17", "locale": "en"},
    )
    assert bad_email.status_code == 422
    assert 'id="err-email"' in bad_email.text
    # a date long past is not "not in the past"
    old = p.post(
        "/portal/profile",
        {"name": "Siti R.", "email": "", "birthday": "1899-01-01", "locale": "en"},
    )
    assert old.status_code == 422
    assert "Enter a year from 1900 on." in old.text
    with db.session() as s:
        m = s.get(Member, uuid.UUID(member_id))
        assert m is not None
        assert m.name == "Siti Rahayu"
    ok = p.post(
        "/portal/profile",
        {"name": "Siti R.", "email": "siti@example.com", "birthday": "1994-03-17", "locale": "en"},
    )
    assert ok.status_code == 303
    with db.session() as s:
        m = s.get(Member, uuid.UUID(member_id))
        assert m is not None
        assert (m.name, m.email, m.birthday) == ("Siti R.", "siti@example.com", date(1994, 3, 17))
    assert "Your profile is saved." in p.get("/portal/profile").text


def test_consent_changes_are_recorded_with_the_portal_as_source(
    db: Database, client: TestClient, tenant: TenantFixture, portal_as: Any
) -> None:
    member_id = new_member(client, tenant, consents={"whatsapp": True}, consent_source="pos-form")
    p = portal_as(member_id, lang="en")
    page = p.get("/portal/profile")
    assert re.search(r'id="f-consent_whatsapp"[^>]*checked', page.text)
    r = p.post("/portal/profile/consents", {"consent_email": "1"})
    assert r.status_code == 303
    with db.session() as s:
        rows = s.scalars(
            select(ConsentChange)
            .where(
                ConsentChange.member_id == uuid.UUID(member_id), ConsentChange.source == "portal"
            )
            .order_by(ConsentChange.channel)
        ).all()
        assert [(c.channel, c.granted) for c in rows] == [("email", True), ("whatsapp", False)]


def test_download_my_data_is_a_json_file_of_this_member(
    client: TestClient, tenant: TenantFixture, portal_as: Any
) -> None:
    member_id = new_member(client, tenant, name="Dewi")
    give_points(client, tenant, member_id, 100)
    r = portal_as(member_id).get("/portal/profile/export")
    assert r.status_code == 200
    assert r.headers["content-disposition"].startswith("attachment;")
    data = json.loads(r.text)
    assert data["profile"]["id"] == member_id
    assert data["profile"]["name"] == "Dewi"


def test_delete_my_account_asks_first_then_erases_and_signs_out(
    db: Database, client: TestClient, tenant: TenantFixture, portal_as: Any
) -> None:
    member_id = new_member(client, tenant, name="Rina", email="rina@example.com")
    p = portal_as(member_id, lang="en")
    assert "This cannot be undone." in p.get("/portal/profile/delete").text
    refused = p.post("/portal/profile/delete", {})
    assert refused.status_code == 422
    assert 'id="err-confirm"' in refused.text
    with db.session() as s:
        m = s.get(Member, uuid.UUID(member_id))
        assert m is not None
        assert m.status == "active"
    r = p.post("/portal/profile/delete", {"confirm": "1"})
    assert r.status_code == 303
    assert r.headers["location"] == f"/portal/{tenant.tenant_id}/sign-in"
    with db.session() as s:
        m = s.get(Member, uuid.UUID(member_id))
        assert m is not None
        assert (m.status, m.name, m.email, m.phone) == ("erased", None, None, None)
        live = s.scalar(
            select(func.count())
            .select_from(WebSession)
            .where(WebSession.member_id == m.id, WebSession.revoked_at.is_(None))
        )
        assert live == 0
    assert p.get("/portal/profile", follow_redirects=False).status_code == 303


# --- referral and badges -----------------------------------------------------------------------


def test_the_referral_page_has_the_code_the_text_and_a_whatsapp_link(
    client: TestClient, tenant: TenantFixture, portal_as: Any
) -> None:
    member_id = new_member(client, tenant)
    p = portal_as(member_id, lang="en")
    assert "not open right now" in p.get("/portal/refer").text
    on = client.put(
        "/v1/referrals/settings",
        json={
            "enabled": True,
            "referrer_points": 500,
            "share_url": "https://kopi.example/r/{code}",
        },
        headers=tenant.headers,
    )
    assert on.status_code in (200, 201), on.text
    r = p.get("/portal/refer")
    assert r.status_code == 200
    assert "https://kopi.example/r/" in r.text
    assert 'href="https://wa.me/?text=' in r.text
    code = re.search(r'data-testid="referral-code">([^<]+)<', r.text)
    assert code
    api = client.get(f"/v1/members/{member_id}/referral", headers=tenant.headers).json()
    assert api["code"] == code.group(1)
    assert api["counts"]["shares"] == 0

    # Sharing counts for the funnel: the WhatsApp button goes through Setia to WhatsApp, the
    # copy button tells Setia by htmx. Without the form's token nothing is counted.
    assert 'action="/portal/refer/share"' in r.text
    refused = p.post("/portal/refer/share", {"channel": "whatsapp"}, csrf=False)
    assert refused.status_code == 403
    shared = p.post("/portal/refer/share", {"channel": "whatsapp"})
    assert shared.status_code == 303
    assert shared.headers["location"].startswith("https://wa.me/?text=")
    assert code.group(1) in unquote(shared.headers["location"])
    copied = p.post("/portal/refer/share", {"channel": "copy"}, headers={"HX-Request": "true"})
    assert copied.status_code == 204
    odd = p.post("/portal/refer/share", {"channel": "pigeon"})
    assert odd.status_code == 422
    api = client.get(f"/v1/members/{member_id}/referral", headers=tenant.headers).json()
    assert api["counts"]["shares"] == 2


def test_badges_page_and_the_leaderboard_choice(
    db: Database, client: TestClient, tenant: TenantFixture, portal_as: Any
) -> None:
    member_id = new_member(client, tenant, name="Budi Santoso")
    p = portal_as(member_id, lang="en")
    r = p.get("/portal/badges")
    assert r.status_code == 200
    assert "Leaderboards" in r.text
    on = p.post("/portal/badges/leaderboard", {"opted_in": "1", "display_name": ""})
    assert on.status_code == 303
    after = p.get("/portal/badges")
    assert "You are shown as “Budi S.”." in after.text
    consent = client.get(
        f"/v1/members/{member_id}/leaderboard-consent", headers=tenant.headers
    ).json()
    assert consent["opted_in"] is True
    assert consent["source"] == "portal"


# --- language ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lang", "texts"),
    [
        ("id", ("Kartu anggota saya", "Beranda", "Riwayat")),
        ("ms", ("Kad ahli saya", "Utama", "Sejarah")),
        ("en", ("My member card", "Home", "History")),
    ],
)
def test_the_language_switch_changes_the_texts_and_the_members_language(
    db: Database,
    client: TestClient,
    tenant: TenantFixture,
    portal_as: Any,
    lang: str,
    texts: tuple[str, ...],
) -> None:
    member_id = new_member(client, tenant, locale="en" if lang != "en" else "id")
    p = portal_as(member_id)
    r = p.post("/portal/lang", {"lang": lang, "next": "/portal"})
    assert r.status_code == 303
    assert r.headers["location"] == "/portal"
    page = p.get("/portal").text
    for text in texts:
        assert text in page
    with db.session() as s:
        m = s.get(Member, uuid.UUID(member_id))
        assert m is not None
        assert m.locale == lang
        row = s.scalars(select(WebSession).where(WebSession.member_id == m.id)).one()
        assert row.locale == lang


def test_every_form_on_every_page_carries_the_sessions_csrf_token(
    db: Database, client: TestClient, tenant: TenantFixture, portal_as: Any
) -> None:
    make_reward(db, tenant, points=10)
    cause_id = make_cause(db, tenant)
    member_id = new_member(client, tenant)
    give_points(client, tenant, member_id, 100)
    p = portal_as(member_id, lang="en")
    for url in (
        "/portal",
        "/portal/history",
        "/portal/rewards",
        "/portal/rewards/free-coffee",
        "/portal/my-rewards",
        "/portal/refer",
        "/portal/badges",
        "/portal/causes",
        f"/portal/causes/{cause_id}",
        "/portal/profile",
        "/portal/profile/delete",
    ):
        html = p.get(url).text
        tokens = re.findall(r'name="csrf_token" value="([^"]*)"', html)
        assert tokens, url
        assert set(tokens) == {p.csrf}, url


def test_a_physical_reward_asks_for_the_delivery_address(
    db: Database, client: TestClient, tenant: TenantFixture, portal_as: Any
) -> None:
    with db.session() as s:
        row = s.get(Tenant, tenant.tenant_id)
        assert row is not None
        program = programs.get_program(s, row.id, None)
        rewards.put_reward(
            s,
            row,
            program,
            "tumbler",
            RewardIn.model_validate(
                {"kind": "physical", "names": {"id": "Tumbler", "en": "Tumbler"}, "points": 100}
            ),
            actor="test",
        )
        s.commit()
    member_id = new_member(client, tenant)
    give_points(client, tenant, member_id, 300)
    p = portal_as(member_id, lang="en")
    page = p.get("/portal/rewards/tumbler")
    assert 'id="f-address"' in page.text
    idem = idem_of(page.text)
    missing = p.post("/portal/rewards/tumbler/redeem", {"idem": idem, "address": " "})
    assert missing.status_code == 422
    assert 'id="err-address"' in missing.text
    done = p.post(
        "/portal/rewards/tumbler/redeem", {"idem": idem, "address": "Jl. Braga 12, Bandung"}
    )
    assert done.status_code == 303
    with db.session() as s:
        red = s.scalars(select(RewardRedemption)).one()
        assert red.shipping_address == {"text": "Jl. Braga 12, Bandung"}
        assert red.status == "requested"
    assert "Requested" in p.get(done.headers["location"]).text


def test_home_shows_pending_and_expiring_points_with_their_dates(
    db: Database, client: TestClient, tenant: TenantFixture, portal_as: Any
) -> None:
    from babel.dates import format_date

    def program_settings(**changes: Any) -> None:
        with db.session() as s:
            program = programs.get_program(s, tenant.tenant_id, None)
            programs.update_program(s, program, changes, actor="test")
            s.commit()

    phone = "0812-5555-0101"
    member_id = new_member(client, tenant, phone=phone)
    program_settings(expiry_policy="after_duration", expiry_months=1)
    bought = utcnow() - timedelta(days=15)

    def purchase(ident: str, at: Any) -> None:
        r = client.post(
            "/v1/events",
            json={
                "id": ident,
                "type": "purchase",
                "occurred_at": at.isoformat(),
                "member": {"phone": phone},
                "order_id": ident,
                "amount": "100000",
                "currency": "IDR",
            },
            headers=tenant.headers,
        )
        assert r.status_code in (200, 201), r.text

    purchase("old", bought)
    program_settings(pending_days=14)
    purchase("new", utcnow())
    balance = client.get(f"/v1/members/{member_id}/balance", headers=tenant.headers).json()
    assert balance["pending_lots"]
    assert balance["expiring_soon"]
    r = portal_as(member_id, lang="en").get("/portal")
    assert "Pending" in r.text
    assert "Expiring soon" in r.text
    when_pending = format_date(
        datetime.fromisoformat(balance["pending_lots"][0]["available_at"])
        .astimezone(zone("Asia/Jakarta"))
        .date(),
        "medium",
        locale=babel_locale("en"),
    )
    when_expiring = format_date(
        datetime.fromisoformat(balance["expiring_soon"][0]["expires_at"])
        .astimezone(zone("Asia/Jakarta"))
        .date(),
        "medium",
        locale=babel_locale("en"),
    )
    assert f"Available from {when_pending}" in r.text
    assert f"Expire on {when_expiring}" in r.text
    assert f"+{balance['pending_lots'][0]['points']:,}" in r.text
