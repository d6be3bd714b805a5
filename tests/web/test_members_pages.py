"""Console members pages: search, the member page, and the actions (adjust, tier, profile,
merge, export, erase) with their permissions, CSRF, field errors and idempotency."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from setia.core.db import Database
from setia.ledger.models import Transfer
from setia.members.models import Member
from tests.conftest import TenantFixture, make_tenant
from tests.tiers.helpers import tier_set


def new_member(client: TestClient, tenant: TenantFixture, **body: Any) -> str:
    r = client.post("/v1/members", json=body, headers=tenant.headers)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def grant(client: TestClient, tenant: TenantFixture, member: str, points: int) -> None:
    r = client.post(
        f"/v1/members/{member}/points/adjust",
        json={"points": points, "reason": "opening balance"},
        headers={**tenant.headers, "Idempotency-Key": uuid.uuid4().hex},
    )
    assert r.status_code == 201, r.text


def available(client: TestClient, tenant: TenantFixture, member: str) -> int:
    r = client.get(f"/v1/members/{member}/balance", headers=tenant.headers)
    return int(r.json()["available"])


def adjustments(db: Database) -> int:
    with db.session() as s:
        return int(
            s.execute(
                select(func.count()).select_from(Transfer).where(Transfer.code == "ADJUST")
            ).scalar_one()
        )


# --------------------------------------------------------------------------- search


def test_search_by_phone_in_local_format_finds_the_member(console_as, client, tenant) -> None:
    siti = new_member(client, tenant, name="Siti Rahayu", phone="+6281234567890")
    new_member(client, tenant, name="Budi Santoso", phone="+6281399998888")
    c = console_as("cashier")
    r = c.get("/console/members", params={"q": "0812-3456-7890"})
    assert r.status_code == 200
    assert "Siti Rahayu" in r.text
    assert f"/console/members/{siti}" in r.text
    assert "Budi Santoso" not in r.text
    # by name (contains, any case), email, external id
    new_member(client, tenant, name="Dewi", email="dewi@example.co.id", external_id="C-77")
    assert "Dewi" in c.get("/console/members", params={"q": "DEWI@example"}).text
    assert "Dewi" in c.get("/console/members", params={"q": "C-77"}).text
    assert "Siti Rahayu" in c.get("/console/members", params={"q": "rahayu"}).text
    empty = c.get("/console/members", params={"q": "nobody-like-this"})
    assert "No member matches" in empty.text


def test_htmx_search_returns_only_the_results(console_as, client, tenant) -> None:
    new_member(client, tenant, name="Siti Rahayu")
    c = console_as("owner")
    r = c.get(
        "/console/members",
        params={"q": "siti"},
        headers={"HX-Request": "true", "HX-Target": "results"},
    )
    assert r.status_code == 200
    assert "Siti Rahayu" in r.text
    assert "<html" not in r.text


def test_search_pages(console_as, client, tenant) -> None:
    for i in range(30):
        new_member(client, tenant, name=f"Pelanggan {i:02d}")
    c = console_as("owner")
    first = c.get("/console/members", params={"q": "pelanggan"})
    assert "of 30" in first.text
    assert "page=2" in first.text
    second = c.get("/console/members", params={"q": "pelanggan", "page": 2})
    assert second.text.count("Pelanggan ") == 5


def test_a_script_name_is_shown_as_text(console_as, client, tenant) -> None:
    evil = "<script>alert(1)</script>"
    mid = new_member(client, tenant, name=evil)
    c = console_as("owner")
    for url in ("/console/members?q=script", f"/console/members/{mid}"):
        r = c.get(url)
        assert r.status_code == 200
        assert "<script>alert(1)</script>" not in r.text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in r.text


# --------------------------------------------------------------------------- member page


def test_member_page_shows_profile_balance_statement_and_consents(
    console_as, client, tenant
) -> None:
    mid = new_member(
        client,
        tenant,
        name="Siti Rahayu",
        phone="0812-3456-7890",
        consents={"whatsapp": True},
        consent_source="pos-form",
    )
    grant(client, tenant, mid, 1234)
    c = console_as("analyst", lang="id")
    r = c.get(f"/console/members/{mid}")
    assert r.status_code == 200
    assert "Siti Rahayu" in r.text
    assert "+6281234567890" in r.text
    assert re.search(r'id="balance-available">\s*1\.234\s*<', r.text)
    assert "opening balance" in r.text  # the statement line's reason
    assert "pos-form" in r.text  # consent history
    assert "<dd>Bahasa Indonesia</dd>" in r.text  # the member's language by name
    # an analyst reads but sees no action buttons
    assert "/adjust" not in r.text
    assert "/erase" not in r.text


def test_another_tenants_member_is_a_404(console_as, client, db) -> None:
    other = make_tenant(db, name="Other Shop")
    mid = new_member(client, other, name="Not Yours")
    c = console_as("owner")
    for url in (
        f"/console/members/{mid}",
        f"/console/members/{mid}/adjust",
        f"/console/members/{mid}/export",
        "/console/members/not-a-uuid",
    ):
        r = c.get(url)
        assert r.status_code == 404, url
        assert "Not Yours" not in r.text
    r = c.post(f"/console/members/{mid}/adjust", {"points": "10", "reason": "nope"})
    assert r.status_code == 404


# --------------------------------------------------------------------------- adjust


def test_adjust_points_changes_the_balance_once_per_form(console_as, client, tenant, db) -> None:
    mid = new_member(client, tenant, name="Siti")
    c = console_as("owner")
    idem = str(uuid.uuid4())
    body = {"points": "500", "reason": "goodwill after a late order", "idem": idem}
    r = c.post(f"/console/members/{mid}/adjust", body)
    assert r.status_code == 303
    assert r.headers["location"] == f"/console/members/{mid}"
    assert available(client, tenant, mid) == 500
    again = c.post(f"/console/members/{mid}/adjust", body)  # a double submit
    assert again.status_code == 303
    assert available(client, tenant, mid) == 500
    assert adjustments(db) == 1
    page = c.get(f"/console/members/{mid}")
    assert "goodwill after a late order" in page.text
    # negative, with a new form
    r = c.post(
        f"/console/members/{mid}/adjust",
        {"points": "-200", "reason": "correction", "idem": str(uuid.uuid4())},
    )
    assert r.status_code == 303
    assert available(client, tenant, mid) == 300


@pytest.mark.parametrize(
    ("lang", "points", "reason", "field", "message"),
    [
        ("id", "", "ok reason", "points", "Kolom ini wajib diisi."),
        ("ms", "0", "ok reason", "points", "Masukkan nombor selain sifar."),
        ("id", "abc", "ok reason", "points", "Masukkan bilangan bulat."),
        ("ms", "100", "", "reason", "Medan ini wajib diisi."),
        ("en", "0", "ok reason", "points", "Enter a number other than zero."),
    ],
)
def test_adjust_field_errors_in_the_staff_language(
    console_as, client, tenant, db, lang, points, reason, field, message
) -> None:
    mid = new_member(client, tenant, name="Siti")
    c = console_as("admin", lang=lang)
    r = c.post(
        f"/console/members/{mid}/adjust",
        {"points": points, "reason": reason, "idem": str(uuid.uuid4())},
    )
    assert r.status_code == 422
    assert f'id="err-{field}"' in r.text
    assert message in r.text
    assert adjustments(db) == 0


def test_adjust_below_zero_says_so_next_to_points(console_as, client, tenant, db) -> None:
    mid = new_member(client, tenant, name="Siti")
    grant(client, tenant, mid, 100)
    c = console_as("owner", lang="id")
    r = c.post(
        f"/console/members/{mid}/adjust",
        {"points": "-500", "reason": "typo", "idem": str(uuid.uuid4())},
    )
    assert r.status_code == 409
    assert 'id="err-points"' in r.text
    assert "Poin tidak cukup" in r.text
    assert available(client, tenant, mid) == 100


@pytest.mark.parametrize("role", ["marketer", "cashier", "analyst"])
def test_adjust_is_refused_to_roles_without_the_permission(
    console_as, client, tenant, db, role
) -> None:
    mid = new_member(client, tenant, name="Siti")
    c = console_as(role)
    r = c.post(f"/console/members/{mid}/adjust", {"points": "100", "reason": "please"})
    assert r.status_code == 403
    assert c.get(f"/console/members/{mid}/adjust").status_code == 403
    assert available(client, tenant, mid) == 0


def test_adjust_without_csrf_is_refused_and_writes_nothing(console_as, client, tenant, db) -> None:
    mid = new_member(client, tenant, name="Siti")
    c = console_as("owner")
    r = c.post(f"/console/members/{mid}/adjust", {"points": "100", "reason": "please"}, csrf=False)
    assert r.status_code == 403
    assert available(client, tenant, mid) == 0
    r = c.post(
        f"/console/members/{mid}/adjust",
        {"points": "100", "reason": "please", "csrf_token": "forged"},
        csrf=False,
    )
    assert r.status_code == 403
    assert available(client, tenant, mid) == 0


@pytest.mark.parametrize(
    ("role", "url"),
    [
        ("cashier", "merge"),
        ("cashier", "erase"),
        ("marketer", "edit"),
        ("analyst", "tier"),
        ("admin", "erase"),
        ("cashier", "export"),
    ],
)
def test_other_actions_are_refused_to_roles_without_them(
    console_as, client, tenant, role, url
) -> None:
    mid = new_member(client, tenant, name="Siti")
    c = console_as(role)
    assert c.get(f"/console/members/{mid}/{url}").status_code == 403
    if url != "export":
        assert c.post(f"/console/members/{mid}/{url}", {"reason": "x"}).status_code == 403


# --------------------------------------------------------------------------- tier, profile


def test_edit_profile_and_consents(console_as, client, tenant, db) -> None:
    mid = new_member(client, tenant, name="Siti", phone="081234567890")
    new_member(client, tenant, name="Budi", email="budi@example.com")
    c = console_as("admin", lang="id")
    form = c.get(f"/console/members/{mid}/edit")
    assert form.status_code == 200
    base = {
        "name": "Siti R",
        "phone": "0812-3456-7890",
        "email": "",
        "locale": "ms",
        "tags": "vip, kopi",
    }
    bad = c.post(f"/console/members/{mid}/edit", {**base, "phone": "12"})
    assert bad.status_code == 422
    assert 'id="err-phone"' in bad.text
    # The example is the shop's country's, whatever the page's language: an Indonesian shop
    # in Malay still shows a number its phone check accepts.
    c_ms = console_as("admin", lang="ms")
    bad = c_ms.post(f"/console/members/{mid}/edit", {**base, "phone": "12"})
    assert "contohnya 0812-3456-7890" in bad.text
    assert "012-345 6789" not in bad.text
    # Every mistake at once, not the next one after the first is fixed.
    bad = c.post(f"/console/members/{mid}/edit", {**base, "phone": "0812-KOPI", "email": "x@@y"})
    assert bad.status_code == 422
    assert 'id="err-phone"' in bad.text
    assert 'id="err-email"' in bad.text
    taken = c.post(f"/console/members/{mid}/edit", {**base, "email": "budi@example.com"})
    assert taken.status_code == 409
    assert 'id="err-email"' in taken.text
    with db.session() as s:
        m = s.get(Member, uuid.UUID(mid))
        assert m is not None
        assert m.name == "Siti"  # nothing half-saved
    ok = c.post(f"/console/members/{mid}/edit", {**base, "consent_whatsapp": "1"})
    assert ok.status_code == 303
    out = client.get(f"/v1/members/{mid}", headers=tenant.headers).json()
    assert out["name"] == "Siti R"
    assert out["locale"] == "ms"
    assert out["tags"] == ["kopi", "vip"]
    assert out["phone"] == "+6281234567890"
    assert out["consents"]["whatsapp"] is True
    hist = client.get(f"/v1/members/{mid}/consents", headers=tenant.headers).json()
    assert hist[-1]["source"] == f"console:staff:{c.login.id}"


def test_assign_a_tier(console_as, client, tenant) -> None:
    r = client.put(
        f"/v1/programs/{tenant.program_id}/tier-set", json=tier_set(), headers=tenant.headers
    )
    assert r.status_code == 200, r.text
    mid = new_member(client, tenant, name="Siti")
    c = console_as("owner")
    page = c.get(f"/console/members/{mid}/tier")
    assert "Gold" in page.text
    bad = c.post(f"/console/members/{mid}/tier", {"tier": "platinum", "reason": "vip guest"})
    assert bad.status_code == 422
    assert 'id="err-tier"' in bad.text
    ok = c.post(f"/console/members/{mid}/tier", {"tier": "gold", "reason": "vip guest"})
    assert ok.status_code == 303
    view = c.get(f"/console/members/{mid}")
    assert "Gold" in view.text
    assert "vip guest" in view.text


# --------------------------------------------------------------------------- merge, export, erase


def test_merge_flow(console_as, client, tenant, db) -> None:
    keep = new_member(client, tenant, name="Siti Rahayu", phone="081234567890")
    dup = new_member(client, tenant, name="Siti R.", email="siti@example.com")
    grant(client, tenant, keep, 100)
    grant(client, tenant, dup, 250)
    c = console_as("owner")
    found = c.get(f"/console/members/{keep}/merge", params={"q": "siti"})
    assert f"other={dup}" in found.text
    assert f"other={keep}" not in found.text  # never itself
    confirm = c.get(f"/console/members/{keep}/merge", params={"other": dup})
    assert "Siti R." in confirm.text
    assert "Siti Rahayu" in confirm.text
    missing = c.post(f"/console/members/{keep}/merge", {"other": dup, "reason": ""})
    assert missing.status_code == 422
    assert 'id="err-reason"' in missing.text
    assert available(client, tenant, keep) == 100
    done = c.post(f"/console/members/{keep}/merge", {"other": dup, "reason": "same person"})
    assert done.status_code == 303
    assert available(client, tenant, keep) == 350
    out = client.get(f"/v1/members/{keep}", headers=tenant.headers).json()
    assert out["email"] == "siti@example.com"
    merged = c.get(f"/console/members/{dup}")
    assert "merged into another" in merged.text
    # searching no longer shows the merged one
    assert f"/console/members/{dup}" not in c.get("/console/members?q=siti").text


def test_export_is_a_json_download(console_as, client, tenant) -> None:
    mid = new_member(client, tenant, name="Siti", email="siti@example.com")
    c = console_as("admin")
    r = c.get(f"/console/members/{mid}/export")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    assert "attachment" in r.headers["content-disposition"]
    data = json.loads(r.text)
    assert data["profile"]["email"] == "siti@example.com"


def test_erase_flow(console_as, client, tenant, db) -> None:
    mid = new_member(client, tenant, name="Siti Rahayu", phone="081234567890")
    grant(client, tenant, mid, 100)
    c = console_as("owner", lang="ms")
    page = c.get(f"/console/members/{mid}/erase")
    assert page.status_code == 200
    wrong = c.post(f"/console/members/{mid}/erase", {"confirm": "yes", "reason": "asked"})
    assert wrong.status_code == 422
    assert 'id="err-confirm"' in wrong.text
    with db.session() as s:
        m = s.get(Member, uuid.UUID(mid))
        assert m is not None
        assert m.status == "active"
    ok = c.post(
        f"/console/members/{mid}/erase", {"confirm": "siti rahayu", "reason": "member asked"}
    )
    assert ok.status_code == 303
    after = c.get(f"/console/members/{mid}")
    assert after.status_code == 200
    assert "Siti Rahayu" not in after.text
    assert "+6281234567890" not in after.text
    assert "Dipadam" in after.text
    with db.session() as s:
        m = s.get(Member, uuid.UUID(mid))
        assert m is not None
        assert m.status == "erased"
    # "ERASE" also confirms
    other = new_member(client, tenant, name="Budi")
    assert (
        c.post(
            f"/console/members/{other}/erase", {"confirm": "ERASE", "reason": "asked"}
        ).status_code
        == 303
    )


def test_evidence_of_the_loyalty_label(console_as, client, tenant) -> None:
    mid = new_member(client, tenant, name="Siti")
    for n in range(3):
        r = client.post(
            "/v1/events",
            json={
                "id": f"ev-{n}",
                "type": "purchase",
                "member": {"id": mid},
                "order_id": f"O-{n}",
                "amount": "50000",
                "currency": "IDR",
                "occurred_at": f"2026-0{n + 1}-10T10:00:00+07:00",
            },
            headers=tenant.headers,
        )
        assert r.status_code == 201, r.text
    c = console_as("analyst")
    fragment = c.get(f"/console/members/{mid}/insights", headers={"HX-Request": "true"})
    assert fragment.status_code == 200
    assert "<html" not in fragment.text
    assert "Loyalty label" in fragment.text
    assert "purchase_days" in fragment.text
    page = c.get(f"/console/members/{mid}/insights")
    assert "<h1>Value and loyalty</h1>" in page.text
