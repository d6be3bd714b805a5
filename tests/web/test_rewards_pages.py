"""Console pages for rewards (catalog, create/edit, stock, retire) and coupon campaigns
(create, generate, import with a bad line, export)."""

from __future__ import annotations

import csv
import io
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from setia.audit.models import AuditRecord
from setia.core.db import Database
from setia.coupons.models import Coupon, CouponCampaign
from setia.rewards.models import Reward
from tests.conftest import TenantFixture

Console = Any


def _put_reward(client: TestClient, tenant: TenantFixture, code: str, **body: Any) -> None:
    payload = {"kind": "physical", "names": {"id": "Tumbler Setia", "en": "Setia Tumbler"}}
    payload |= {"points": 1500, "stock_total": 10, **body}
    r = client.put(
        f"/v1/programs/{tenant.program_id}/rewards/{code}", json=payload, headers=tenant.headers
    )
    assert r.status_code in (200, 201), r.text


def _campaign(client: TestClient, tenant: TenantFixture, code: str = "kopi-10") -> str:
    r = client.post(
        "/v1/coupon-campaigns",
        json={
            "code": code,
            "names": {"id": "Diskon Kopi", "en": "Coffee discount"},
            "discount": {"type": "fixed", "amount": "10000"},
        },
        headers=tenant.headers,
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def _rewards(db: Database) -> list[Reward]:
    with db.session() as s:
        return list(s.execute(select(Reward)).scalars())


VALID = {
    "code": "MUG",
    "kind": "physical",
    "name_id": "Gelas Setia",
    "name_ms": "Cawan Setia",
    "name_en": "Setia Mug",
    "points": "800",
    "stock_total": "25",
    "status": "active",
    "visible": "1",
}


def test_the_catalog_lists_rewards_in_the_readers_language(
    console_as: Any, client: TestClient, tenant: TenantFixture
) -> None:
    _put_reward(client, tenant, "TUMBLER")
    r = console_as("analyst", lang="id").get("/console/rewards")
    assert r.status_code == 200
    assert "Tumbler Setia" in r.text
    assert "Barang fisik" in r.text  # the type, in Indonesian
    assert "1.500" in r.text  # points, Indonesian digits
    assert "10 / 10" in r.text  # stock left of the total
    en = console_as("owner", lang="en").get("/console/rewards")
    assert "Setia Tumbler" in en.text
    assert "Physical item" in en.text


def test_a_create_with_bad_input_shows_errors_next_to_fields_and_saves_nothing(
    console_as: Any, db: Database
) -> None:
    for lang, number, name in (
        ("id", "Masukkan bilangan bulat.", "Isi teks setidaknya dalam Bahasa Indonesia"),
        ("ms", "Masukkan nombor bulat.", "Berikan teks sekurang-kurangnya dalam Bahasa"),
    ):
        c = console_as("marketer", lang=lang)
        bad = {**VALID, "name_id": "", "name_ms": "", "name_en": "", "points": "abc"}
        r = c.post("/console/rewards/new", bad)
        assert r.status_code == 422
        assert 'id="err-points"' in r.text
        assert number in r.text.split('id="err-points"')[1][:200]
        assert name in r.text.split('id="err-name_id"')[1][:200]
        assert 'value="MUG"' in r.text  # the typed code is kept
    assert _rewards(db) == []


def test_a_valid_create_and_edit_save(console_as: Any, db: Database) -> None:
    c = console_as("marketer")
    r = c.post("/console/rewards/new", VALID)
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/console/rewards/MUG"
    page = c.get("/console/rewards/MUG")
    assert "Setia Mug" in page.text
    (reward,) = _rewards(db)
    assert reward.names == {"id": "Gelas Setia", "ms": "Cawan Setia", "en": "Setia Mug"}
    assert reward.points == 800
    assert reward.stock_total == 25

    form = c.get("/console/rewards/MUG/edit")
    assert 'value="Cawan Setia"' in form.text
    r = c.post("/console/rewards/MUG/edit", {**VALID, "points": "900", "name_en": "Big Mug"})
    assert r.status_code == 303, r.text
    (reward,) = _rewards(db)
    assert (reward.points, reward.names["en"], reward.revision) == (900, "Big Mug", 2)


def test_a_coupon_reward_needs_its_campaign(console_as: Any, db: Database) -> None:
    c = console_as("owner")
    r = c.post("/console/rewards/new", {**VALID, "kind": "discount_coupon"})
    assert r.status_code == 422
    assert "This kind of reward needs this field." in r.text.split('id="err-coupon_campaign_id"')[1]
    assert _rewards(db) == []


def test_stock_is_added_and_removed_with_a_reason_and_guarded(
    console_as: Any, client: TestClient, tenant: TenantFixture, db: Database
) -> None:
    _put_reward(client, tenant, "TUMBLER")
    c = console_as("admin")
    r = c.post(
        "/console/rewards/TUMBLER/stock",
        {"direction": "add", "quantity": "5", "reason": "delivery from supplier"},
    )
    assert r.status_code == 303, r.text
    assert _rewards(db)[0].stock_total == 15
    r = c.post("/console/rewards/TUMBLER/stock", {"direction": "remove", "quantity": "99"})
    assert r.status_code == 422
    assert 'id="err-reason"' in r.text
    r = c.post(
        "/console/rewards/TUMBLER/stock",
        {"direction": "remove", "quantity": "99", "reason": "broken"},
    )
    assert r.status_code == 422
    assert "Only 15 left" in r.text.split('id="err-quantity"')[1]
    r = c.post(
        "/console/rewards/TUMBLER/stock",
        {"direction": "remove", "quantity": "3", "reason": "broken in the shop"},
    )
    assert r.status_code == 303
    assert _rewards(db)[0].stock_total == 12
    with db.session() as s:
        reasons = [
            a.details["reason"]
            for a in s.execute(
                select(AuditRecord).where(AuditRecord.action == "reward.stock_adjusted")
            ).scalars()
        ]
    assert sorted(reasons) == ["broken in the shop", "delivery from supplier"]


def test_pause_activate_and_retire_with_confirmation(
    console_as: Any, client: TestClient, tenant: TenantFixture, db: Database
) -> None:
    _put_reward(client, tenant, "TUMBLER")
    c = console_as("owner")
    assert c.post("/console/rewards/TUMBLER/status", {"status": "paused"}).status_code == 303
    assert _rewards(db)[0].status == "paused"
    assert c.post("/console/rewards/TUMBLER/status", {"status": "active"}).status_code == 303
    confirm = c.get("/console/rewards/TUMBLER/retire")
    assert "This cannot be undone." in confirm.text
    assert _rewards(db)[0].status == "active"
    assert c.post("/console/rewards/TUMBLER/retire", {}).status_code == 303
    assert _rewards(db)[0].status == "archived"


def test_roles_and_csrf_are_enforced(
    console_as: Any, client: TestClient, tenant: TenantFixture, db: Database
) -> None:
    _put_reward(client, tenant, "TUMBLER")
    analyst = console_as("analyst")
    assert analyst.get("/console/rewards").status_code == 200
    assert analyst.get("/console/coupons").status_code == 200
    assert analyst.get("/console/rewards/new").status_code == 403
    assert analyst.post("/console/rewards/new", VALID).status_code == 403
    assert analyst.post("/console/rewards/TUMBLER/retire", {}).status_code == 403
    assert analyst.post("/console/coupons/new", {"code": "x"}).status_code == 403
    cashier = console_as("cashier")
    assert cashier.get("/console/rewards").status_code == 403
    assert cashier.get("/console/coupons").status_code == 403
    owner = console_as("owner")
    r = owner.post("/console/rewards/new", VALID, csrf=False)
    assert r.status_code == 403
    assert [x.code for x in _rewards(db)] == ["TUMBLER"]
    r = owner.post("/console/rewards/TUMBLER/retire", {}, csrf=False)
    assert r.status_code == 403
    assert _rewards(db)[0].status == "active"


def test_a_reward_named_script_is_shown_as_text(
    console_as: Any, client: TestClient, tenant: TenantFixture
) -> None:
    _put_reward(client, tenant, "EVIL", names={"id": "<script>alert(1)</script>"})
    c = console_as("owner")
    for url in ("/console/rewards", "/console/rewards/EVIL", "/console/rewards/EVIL/edit"):
        r = c.get(url)
        assert "<script>alert(1)</script>" not in r.text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in r.text


# --------------------------------------------------------------------------- coupons

CAMPAIGN = {
    "code": "harbolnas",
    "name_id": "Harbolnas 12.12",
    "name_en": "Harbolnas",
    "type": "percent",
    "percent": "20",
    "max_amount": "50000",
    "uses_per_code": "1",
    "code_pattern": "HB-####-????",
}


def _campaigns(db: Database) -> list[CouponCampaign]:
    with db.session() as s:
        return list(s.execute(select(CouponCampaign)).scalars())


def test_a_campaign_is_created_with_errors_next_to_fields_first(
    console_as: Any, db: Database
) -> None:
    c = console_as("marketer", lang="ms")
    form = c.get("/console/coupons/new")
    assert 'name="idem"' in form.text
    r = c.post("/console/coupons/new", {**CAMPAIGN, "percent": "", "valid_from": "31-12"})
    assert r.status_code == 422
    assert 'id="err-percent"' in r.text
    assert 'id="err-valid_from"' in r.text
    assert _campaigns(db) == []
    r = c.post("/console/coupons/new", {**CAMPAIGN, "idem": "abc"})
    assert r.status_code == 303, r.text
    (campaign,) = _campaigns(db)
    assert r.headers["location"] == f"/console/coupons/{campaign.id}"
    # a double submit of the same form makes no second campaign
    again = c.post("/console/coupons/new", {**CAMPAIGN, "idem": "abc"})
    assert again.status_code == 303
    assert len(_campaigns(db)) == 1
    taken = c.post("/console/coupons/new", {**CAMPAIGN, "idem": "other"})
    assert taken.status_code == 422
    assert "Kempen dengan kod ini sudah wujud." in taken.text.split('id="err-code"')[1]


def test_codes_are_generated_exported_and_counted(
    console_as: Any, client: TestClient, tenant: TenantFixture, db: Database
) -> None:
    cid = _campaign(client, tenant)
    c = console_as("owner")
    r = c.post(f"/console/coupons/{cid}/generate", {"count": "0"})
    assert r.status_code == 422
    assert 'id="err-count"' in r.text
    r = c.post(f"/console/coupons/{cid}/generate", {"count": "12", "pattern": "KOPI-####-????"})
    assert r.status_code == 303, r.text
    page = c.get(f"/console/coupons/{cid}")
    assert "Codes issued" in page.text
    assert page.text.count("KOPI-") >= 12
    export = c.get(f"/console/coupons/{cid}/export.csv")
    assert export.status_code == 200
    assert export.headers["content-type"].startswith("text/csv")
    assert "attachment" in export.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert len(rows) == 12
    assert all(row["code"].startswith("KOPI-") and row["status"] == "active" for row in rows)
    with db.session() as s:
        stored = {x.code for x in s.execute(select(Coupon)).scalars()}
    assert {row["code"] for row in rows} == stored
    assert console_as("analyst").get(f"/console/coupons/{cid}/export.csv").status_code == 200
    assert console_as("cashier").get(f"/console/coupons/{cid}/export.csv").status_code == 403


def test_an_import_with_a_bad_line_shows_the_line_and_imports_nothing(
    console_as: Any, client: TestClient, tenant: TenantFixture, db: Database
) -> None:
    cid = _campaign(client, tenant)
    c = console_as("owner", lang="id")
    bad = "code,expires_at\nGOJEK-AB12,2026-12-31\n!!,\nGOJEK-AB13,someday\n"
    r = c.post(
        f"/console/coupons/{cid}/import",
        {"import_idem": "i1"},
        files={"file": ("codes.csv", bad.encode(), "text/csv")},
    )
    assert r.status_code == 422
    table = r.text.split('id="import-errors"')[1]
    assert '<td class="num">3</td>' in table
    assert '<td class="num">4</td>' in table
    assert "Kode tidak valid" in table
    assert 'id="err-file"' in r.text
    with db.session() as s:
        assert s.execute(select(Coupon)).first() is None
    good = "code\nGOJEK-AB12\nGOJEK-AB13\n"
    r = c.post(
        f"/console/coupons/{cid}/import",
        {"import_idem": "i2"},
        files={"file": ("codes.csv", good.encode(), "text/csv")},
    )
    assert r.status_code == 303, r.text
    with db.session() as s:
        assert sorted(x.code for x in s.execute(select(Coupon)).scalars()) == [
            "GOJEK-AB12",
            "GOJEK-AB13",
        ]
    r = c.post(f"/console/coupons/{cid}/import", {"import_idem": "i3"})
    assert r.status_code == 422
    assert 'id="err-file"' in r.text


def test_campaign_list_and_page_escape_names(
    console_as: Any, client: TestClient, tenant: TenantFixture
) -> None:
    r = client.post(
        "/v1/coupon-campaigns",
        json={
            "code": "evil",
            "names": {"id": "<script>x</script>"},
            "discount": {"type": "fixed", "amount": "5000"},
        },
        headers=tenant.headers,
    )
    assert r.status_code == 201
    c = console_as("analyst")
    for url in ("/console/coupons", f"/console/coupons/{r.json()['id']}"):
        page = c.get(url)
        assert page.status_code == 200
        assert "<script>x</script>" not in page.text
        assert "&lt;script&gt;x&lt;/script&gt;" in page.text
    assert "5,000" in c.get("/console/coupons").text


def test_every_form_carries_the_sessions_csrf_token(
    console_as: Any, client: TestClient, tenant: TenantFixture
) -> None:
    _put_reward(client, tenant, "TUMBLER")
    cid = _campaign(client, tenant)
    c = console_as("owner")
    token = f'name="csrf_token" value="{c.csrf}"'
    for url in (
        "/console/rewards/new",
        "/console/rewards/TUMBLER",
        "/console/rewards/TUMBLER/edit",
        "/console/rewards/TUMBLER/retire",
        "/console/coupons/new",
        f"/console/coupons/{cid}",
    ):
        page = c.get(url)
        assert 'name="csrf_token" value=""' not in page.text, url
        assert page.text.count(token) >= 3, url  # language, sign-out and the page's forms


# --------------------------------------------------------------------------- eligibility


def _tier_set(client: TestClient, tenant: TenantFixture) -> None:
    body = {
        "name": "Kopi tiers",
        "metrics": [{"metric": "spend"}],
        "window": {"kind": "rolling", "months": 12},
        "retention": {"kind": "months", "months": 12},
        "tiers": [
            {"code": code, "names": names, "thresholds": [threshold]}
            for code, names, threshold in (
                ("bronze", {"id": "Perunggu", "ms": "Gangsa", "en": "Bronze"}, "0"),
                ("silver", {"id": "Perak", "ms": "Perak", "en": "Silver"}, "500000"),
                ("gold", {"id": "Emas", "ms": "Emas", "en": "Gold"}, "1000000"),
            )
        ],
    }
    r = client.put(f"/v1/programs/{tenant.program_id}/tier-set", json=body, headers=tenant.headers)
    assert r.status_code == 200, r.text


def test_eligibility_is_chosen_in_the_form_and_shown_on_the_reward(
    console_as: Any, client: TestClient, tenant: TenantFixture, db: Database
) -> None:
    _tier_set(client, tenant)
    c = console_as("marketer", lang="ms")
    form = c.get("/console/rewards/new")
    for tier in ("Gangsa", "Perak", "Emas"):  # the program's tiers, in the reader's language
        assert tier in form.text.split('id="eligibility"')[1]
    r = c.post(
        "/console/rewards/new",
        {
            **VALID,
            "tiers": ["silver"],
            "tiers_or_above": "1",
            "requires_membership": "1",
            "tags": "vip, staf,vip",
        },
    )
    assert r.status_code == 303, r.text
    (reward,) = _rewards(db)
    assert reward.eligible_tiers == ["silver"]
    assert (reward.tiers_or_above, reward.requires_membership) == (True, True)
    assert reward.eligible_tags == ["vip", "staf"]
    shown = c.get("/console/rewards/MUG").text.split('id="eligibility"')[1][:600]
    assert "Perak" in shown
    assert "vip, staf" in shown

    en = console_as("owner", lang="en")
    edit = en.get("/console/rewards/MUG/edit")
    assert 'name="tiers" value="silver" checked' in edit.text
    assert 'value="gold" checked' not in edit.text
    assert 'value="vip, staf"' in edit.text
    r = en.post(
        "/console/rewards/MUG/edit",
        {**VALID, "tiers": ["gold", "bronze"], "tags": ""},  # unchecked boxes are not sent
    )
    assert r.status_code == 303, r.text
    (reward,) = _rewards(db)
    assert reward.eligible_tiers == ["bronze", "gold"]  # lowest first
    assert (reward.tiers_or_above, reward.requires_membership, reward.eligible_tags) == (
        False,
        False,
        [],
    )
    assert "Tiers Bronze, Gold" in en.get("/console/rewards/MUG").text
    r = en.post("/console/rewards/MUG/edit", VALID)
    assert r.status_code == 303
    assert "Every member" in en.get("/console/rewards/MUG").text


def test_bad_eligibility_keeps_the_values_and_saves_nothing(
    console_as: Any, client: TestClient, tenant: TenantFixture, db: Database
) -> None:
    _tier_set(client, tenant)
    _put_reward(client, tenant, "TUMBLER", eligibility={"tiers": ["gold"]})
    c = console_as("owner", lang="id")
    bad = {
        **VALID,
        "code": "TUMBLER",
        "tiers": ["silver", "platinum"],
        "requires_membership": "1",
        "tags": "vip, " + "x" * 101,
        "points": "abc",
    }
    r = c.post("/console/rewards/TUMBLER/edit", bad)
    assert r.status_code == 422
    assert "Pilih salah satu opsi." in r.text.split('id="err-tiers"')[1][:200]
    assert 'id="err-tags"' in r.text
    assert 'name="tiers" value="silver" checked' in r.text  # what was chosen is kept
    assert 'name="requires_membership" type="checkbox" value="1" checked' in r.text
    assert "vip, xxx" in r.text
    r = c.post("/console/rewards/TUMBLER/edit", {**VALID, "tiers_or_above": "1"})
    assert r.status_code == 422
    assert 'id="err-tiers"' in r.text
    (reward,) = _rewards(db)
    assert (reward.eligible_tiers, reward.requires_membership, reward.revision) == (
        ["gold"],
        False,
        1,
    )


def test_without_tiers_the_form_says_so(console_as: Any) -> None:
    form = console_as("owner").get("/console/rewards/new")
    assert "This program has no tiers yet" in form.text
    assert 'name="tiers"' not in form.text
