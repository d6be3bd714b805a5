"""Console pages for referrals: settings with errors next to the fields, the funnel and top
advocates, the review queue (approve/reject with a reason), decisions, roles and CSRF."""

from __future__ import annotations

import uuid
from itertools import count
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from setia.core.db import Database
from setia.referrals.models import Referral, ReferralDecision, ReferralSettings
from tests.conftest import TenantFixture

_n = count(1)


def _settings(client: TestClient, tenant: TenantFixture, **changes: Any) -> None:
    body = {
        "enabled": True,
        "min_amount": "50000",
        "referrer_points": 500,
        "referee_points": 250,
        "share_url": "https://kopi.example/r/{code}",
        **changes,
    }
    r = client.put("/v1/referrals/settings", json=body, headers=tenant.headers)
    assert r.status_code in (200, 201), r.text


def _member(client: TestClient, tenant: TenantFixture, name: str, **fields: Any) -> uuid.UUID:
    body = {"external_id": f"W{next(_n)}", "name": name, **fields}
    r = client.post("/v1/members", json=body, headers=tenant.headers)
    assert r.status_code == 201, r.text
    return uuid.UUID(r.json()["id"])


def _code(client: TestClient, tenant: TenantFixture, member_id: uuid.UUID) -> str:
    r = client.get(f"/v1/members/{member_id}/referral", headers=tenant.headers)
    assert r.status_code == 200, r.text
    return str(r.json()["code"])


def _held_pair(client: TestClient, tenant: TenantFixture) -> tuple[uuid.UUID, list[uuid.UUID]]:
    """An advocate and two new members whose referrals are held (review required)."""
    _settings(client, tenant, review_required=True)
    advocate = _member(client, tenant, "Budi Advokat")
    code = _code(client, tenant, advocate)
    referees = [
        _member(client, tenant, name, referral_code=code) for name in ("Citra Baru", "Dewi Baru")
    ]
    return advocate, referees


def _referrals(db: Database) -> dict[uuid.UUID, Referral]:
    with db.session() as s:
        return {r.referee_id: r for r in s.execute(select(Referral)).scalars()}


def test_the_queue_lists_held_referrals_and_approve_and_reject_work(
    console_as: Any, client: TestClient, tenant: TenantFixture, db: Database
) -> None:
    _, (citra, dewi) = _held_pair(client, tenant)
    c = console_as("marketer", lang="en")
    page = c.get("/console/referrals/queue?status=held")
    assert page.status_code == 200
    assert "Budi Advokat" in page.text
    assert "Citra Baru" in page.text
    assert "Every referral is reviewed" in page.text
    refs = _referrals(db)

    # a reason is required: the error is next to that row's reason field, nothing changes
    r = c.post(f"/console/referrals/{refs[citra].id}/review", {"decision": "approve", "reason": ""})
    assert r.status_code == 422
    assert "This field is required." in r.text.split(f'id="err-reason-{refs[citra].id}"')[1][:100]
    assert _referrals(db)[citra].status == "held"

    r = c.post(
        f"/console/referrals/{refs[citra].id}/review",
        {"decision": "approve", "reason": "checked by phone"},
    )
    assert r.status_code == 303, r.text
    r = c.post(
        f"/console/referrals/{refs[dewi].id}/review",
        {"decision": "reject", "reason": "same household"},
    )
    assert r.status_code == 303
    after = _referrals(db)
    assert (after[citra].status, after[dewi].status) == ("pending", "rejected")
    assert after[dewi].decision_reason == "same household"
    queue = c.get("/console/referrals/queue?status=held")
    assert "Nothing to review" in queue.text
    history = c.get("/console/referrals/decisions")
    assert "checked by phone" in history.text
    assert "same household" in history.text
    assert "Marketer Person" in history.text  # who decided, by name
    # deciding again on a referral that is not held is an error next to the field
    again = c.post(
        f"/console/referrals/{refs[dewi].id}/review",
        {"decision": "approve", "reason": "changed my mind"},
    )
    assert again.status_code == 422
    assert _referrals(db)[dewi].status == "rejected"


def test_the_review_errors_are_in_the_readers_language(
    console_as: Any, client: TestClient, tenant: TenantFixture, db: Database
) -> None:
    _, (citra, _dewi) = _held_pair(client, tenant)
    rid = _referrals(db)[citra].id
    for lang, text in (("id", "Kolom ini wajib diisi."), ("ms", "Medan ini wajib diisi.")):
        c = console_as("admin", lang=lang)
        r = c.post(f"/console/referrals/{rid}/review", {"decision": "reject", "reason": " "})
        assert r.status_code == 422
        assert text in r.text.split(f'id="err-reason-{rid}"')[1][:100]
    with db.session() as s:
        assert (
            s.execute(
                select(ReferralDecision).where(ReferralDecision.to_status == "rejected")
            ).first()
            is None
        )


def test_the_advocates_member_page_names_each_referrals_status(
    console_as: Any, client: TestClient, tenant: TenantFixture
) -> None:
    advocate, _referees = _held_pair(client, tenant)
    for lang, text in (
        ("id", "Ditahan untuk ditinjau"),
        ("ms", "Ditahan untuk semakan"),
        ("en", "Held for review"),
    ):
        page = console_as("admin", lang=lang).get(f"/console/members/{advocate}")
        assert page.status_code == 200
        assert page.text.count(f'<span class="pill">{text}</span>') == 2, lang
        assert '<span class="pill">held</span>' not in page.text


def test_the_overview_shows_the_funnel_and_top_advocates(
    console_as: Any, client: TestClient, tenant: TenantFixture
) -> None:
    _settings(client, tenant)
    advocate = _member(client, tenant, "Budi Advokat")
    code = _code(client, tenant, advocate)
    for name in ("Eka", "Fajar", "Gita"):
        _member(client, tenant, name, referral_code=code)
    r = console_as("analyst", lang="id").get("/console/referrals")
    assert r.status_code == 200
    assert "Pendaftaran" in r.text  # "Sign-ups"
    stat = r.text.split("Pendaftaran</div>")[1][:80]
    assert '<div class="value">3</div>' in stat
    assert "Budi Advokat" in r.text
    assert code in r.text
    bad = console_as("analyst").get("/console/referrals?from=2026-05-10&to=2026-05-01")
    assert bad.status_code == 422
    assert 'id="err-to"' in bad.text


SETTINGS_FORM = {
    "enabled": "1",
    "min_amount": "75000",
    "referrer_points": "600",
    "referee_points": "300",
    "level2_points": "0",
    "velocity_count": "4",
    "velocity_minutes": "15",
    "attach_within_days": "10",
    "cap_per_month": "5",
    "cap_lifetime": "",
    "share_url": "https://kopi.example/r/{code}",
    "share_text_id": "Pakai kode {code} di {link}",
    "share_text_ms": "Guna kod {code} di {link}",
    "share_text_en": "Use my code {code}: {link}",
    "disposable_add": "spam.example\ntrash.example",
}


def _stored(db: Database) -> ReferralSettings | None:
    with db.session() as s:
        return s.execute(select(ReferralSettings)).scalar_one_or_none()


def test_settings_errors_are_next_to_the_fields_and_nothing_is_saved(
    console_as: Any, db: Database
) -> None:
    for lang, number in (("id", "Masukkan bilangan bulat."), ("ms", "Masukkan nombor bulat.")):
        c = console_as("owner", lang=lang)
        r = c.post(
            "/console/referrals/settings",
            {**SETTINGS_FORM, "referrer_points": "banyak", "share_url": "https://kopi.example/r/"},
        )
        assert r.status_code == 422
        assert number in r.text.split('id="err-referrer_points"')[1][:200]
        assert 'id="err-share_url"' in r.text
    c = console_as("owner")
    r = c.post("/console/referrals/settings", {**SETTINGS_FORM, "share_text_en": "Hi {nama}"})
    assert r.status_code == 422
    assert 'id="err-share_text_en"' in r.text
    # in the reader's language, with the placeholders to use, not the service's English
    c_id = console_as("owner", lang="id")
    r = c_id.post("/console/referrals/settings", {**SETTINGS_FORM, "share_text_ms": "{programme}"})
    assert r.status_code == 422
    shown = r.text.split('id="err-share_text_ms"')[1][:300]
    assert "Gunakan hanya placeholder berikut: {code}, {link}, {program}, {name}." in shown
    r = c.post("/console/referrals/settings", {**SETTINGS_FORM, "velocity_count": "1"})
    assert r.status_code == 422
    assert "Enter 2 or more." in r.text.split('id="err-velocity_count"')[1][:200]
    assert _stored(db) is None


def test_valid_settings_are_saved_and_shown(console_as: Any, db: Database) -> None:
    c = console_as("marketer")
    r = c.post("/console/referrals/settings", SETTINGS_FORM)
    assert r.status_code == 303, r.text
    row = _stored(db)
    assert row is not None
    assert row.enabled
    assert (row.referrer_points, row.referee_points, row.cap_per_month) == (600, 300, 5)
    assert row.cap_lifetime is None
    assert row.share_texts["ms"] == "Guna kod {code} di {link}"
    assert row.disposable_add == ["spam.example", "trash.example"]
    page = c.get("/console/referrals/settings")
    assert 'value="600"' in page.text
    assert "trash.example" in page.text
    # an amount typed with its currency, the Indonesian way
    r = c.post("/console/referrals/settings", {**SETTINGS_FORM, "min_amount": "Rp 50.000"})
    assert r.status_code == 303, r.text
    row = _stored(db)
    assert row is not None
    assert row.min_amount == 50000


def test_roles_and_csrf(
    console_as: Any, client: TestClient, tenant: TenantFixture, db: Database
) -> None:
    _, (citra, _dewi) = _held_pair(client, tenant)
    rid = _referrals(db)[citra].id
    analyst = console_as("analyst")
    for url in (
        "/console/referrals",
        "/console/referrals/settings",
        "/console/referrals/queue?status=held",
        "/console/referrals/decisions",
    ):
        assert analyst.get(url).status_code == 200, url
    queue = analyst.get("/console/referrals/queue?status=held")
    assert "Approve" not in queue.text  # no decision buttons for a read-only role
    decision = {"decision": "approve", "reason": "looks fine"}
    assert analyst.post(f"/console/referrals/{rid}/review", decision).status_code == 403
    assert analyst.post("/console/referrals/settings", SETTINGS_FORM).status_code == 403
    cashier = console_as("cashier")
    assert cashier.get("/console/referrals").status_code == 403
    assert cashier.get("/console/referrals/queue").status_code == 403
    owner = console_as("owner")
    assert owner.post(f"/console/referrals/{rid}/review", decision, csrf=False).status_code == 403
    assert _referrals(db)[citra].status == "held"


def test_member_names_are_escaped_in_the_queue(
    console_as: Any, client: TestClient, tenant: TenantFixture
) -> None:
    _settings(client, tenant, review_required=True)
    advocate = _member(client, tenant, "<script>alert(1)</script>")
    _member(client, tenant, "Baru", referral_code=_code(client, tenant, advocate))
    r = console_as("owner").get("/console/referrals/queue?status=held")
    assert "<script>alert(1)</script>" not in r.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in r.text


def test_every_form_carries_the_sessions_csrf_token(
    console_as: Any, client: TestClient, tenant: TenantFixture
) -> None:
    _held_pair(client, tenant)
    c = console_as("owner")
    for url in ("/console/referrals/settings", "/console/referrals/queue?status=held"):
        page = c.get(url)
        assert 'name="csrf_token" value=""' not in page.text, url
        assert page.text.count(f'name="csrf_token" value="{c.csrf}"') >= 3, url
