"""The causes API: defining causes, donating at the till, progress, receipts."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from setia.core.db import Database
from setia.tenants import service as tenants
from tests.causes.support import balance, counts, member_with_points
from tests.conftest import TenantFixture, make_tenant
from tests.ledger.support import assert_db_sound, configure, tx

TREE: dict[str, Any] = {
    "names": {"id": "Tanam Pohon", "ms": "Tanam Pokok", "en": "Plant a Tree"},
    "descriptions": {"id": "Satu pohon untuk setiap 1.000 Poin", "en": "One tree per 1,000"},
    "image_urls": {"id": "https://example.org/pohon.png"},
    "status": "active",
    "goal_points": 10000,
    "min_points": 100,
    "match_ratio": "1",
    "match_budget": 600,
    "receipt_prefix": "TP",
}


def key(db: Database, t: TenantFixture, scope: str) -> dict[str, str]:
    def run(s: Session) -> str:
        _k, secret = tenants.create_key(s, t.tenant_id, scope=scope, name=scope)
        return str(secret)

    return {"Authorization": f"Bearer {tx(db, run)}"}


def give(
    client: TestClient, t: TenantFixture, cause_id: str, member: uuid.UUID, points: int, k: str
) -> Any:
    return client.post(
        f"/v1/causes/{cause_id}/donations",
        json={"member_id": str(member), "points": points},
        headers={**t.headers, "Idempotency-Key": k},
    )


def test_define_donate_progress_and_receipts(
    client: TestClient, db: Database, tenant: TenantFixture
) -> None:
    configure(db, tenant, cost_per_point=Decimal(10))
    created = client.put("/v1/causes/tanam-pohon", json=TREE, headers=tenant.headers)
    assert created.status_code == 201, created.text
    cause = created.json()
    assert cause["code"] == "tanam-pohon"
    assert cause["name"] == "Tanam Pohon"
    assert cause["open"] is True
    assert cause["value_per_point"] == "10"
    again = client.put("/v1/causes/tanam-pohon", json=TREE, headers=tenant.headers)
    assert again.status_code == 200
    assert again.json()["id"] == cause["id"]

    sari = member_with_points(db, tenant, 2000, name="Sari Wulandari")
    budi = member_with_points(db, tenant, 2000, name="Budi")
    first = give(client, tenant, cause["id"], sari, 500, "pos-1")
    assert first.status_code == 201, first.text
    d = first.json()
    assert (d["points"], d["matched_points"], d["value"], d["currency"]) == (
        500,
        500,
        "5000",
        "IDR",
    )
    retry = give(client, tenant, cause["id"], sari, 500, "pos-1")
    assert retry.status_code == 200
    assert retry.json() == d
    reused = give(client, tenant, cause["id"], sari, 600, "pos-1")
    assert reused.status_code == 409
    assert reused.json()["code"] == "idempotency_key_reused"
    assert give(client, tenant, cause["id"], budi, 300, "pos-2").json()["matched_points"] == 100
    assert balance(db, tenant, sari) == 1500

    read = key(db, tenant, "read")
    listed = client.get("/v1/causes", params={"locale": "en"}, headers=read)
    assert listed.status_code == 200
    [row] = listed.json()
    assert row["name"] == "Plant a Tree"
    progress = row["progress"]
    assert progress == {
        "donated_points": 800,
        "matched_points": 600,
        "total_points": 1400,
        "goal_points": 10000,
        "percent": 14.0,
        "donors": 2,
        "donations": 2,
        "value": "14000",
        "value_display": "Rp 14,000",
        "currency": "IDR",
        "days_left": None,
    }
    assert row["matching"]["remaining"] == 0
    one = client.get(f"/v1/causes/{cause['id']}", headers=read).json()
    assert one["progress"]["value_display"] == "Rp 14.000"

    mine = client.get(f"/v1/members/{sari}/donations", headers=read).json()
    assert mine["total_points"] == 500
    assert mine["total_value"] == "5000"
    assert [x["receipt_number"] for x in mine["data"]] == [d["receipt_number"]]

    rec = client.get(f"/v1/donations/{d['id']}/receipt", headers=read)
    assert rec.status_code == 200
    body = rec.json()
    assert body["receipt_number"] == d["receipt_number"]
    assert body["locale"] == "id"
    assert body["message"].startswith(
        "Terima kasih, Sari! 500 Poin Anda (senilai Rp 5.000) untuk Tanam Pohon telah kami terima."
    )
    assert "500 Poin" in body["message"].split("terima.")[1]  # the business's match
    ms = client.get(
        f"/v1/donations/{d['id']}/receipt", params={"locale": "ms"}, headers=read
    ).json()
    assert ms["message"].startswith(
        "Terima kasih, Sari! 500 Poin anda (bernilai Rp 5,000) untuk Tanam Pokok"
    )
    en = client.get(
        f"/v1/donations/{d['id']}/receipt", params={"locale": "en"}, headers=read
    ).json()
    assert en["message"].startswith(
        "Thank you, Sari! We have received your 500 points (worth Rp 5,000) for Plant a Tree."
    )
    text = client.get(f"/v1/donations/{d['id']}/receipt", params={"format": "text"}, headers=read)
    assert text.headers["content-type"].startswith("text/plain")
    assert d["receipt_number"] in text.text
    assert "Tanda Terima Donasi" in text.text
    plain = client.get(
        f"/v1/donations/{d['id']}/receipt",
        headers={**read, "Accept": "text/plain"},
    )
    assert plain.text == text.text

    page1 = client.get(
        f"/v1/causes/{cause['id']}/donations", params={"limit": 1}, headers=tenant.headers
    ).json()
    assert len(page1["data"]) == 1
    assert page1["next_cursor"]
    page2 = client.get(
        f"/v1/causes/{cause['id']}/donations",
        params={"limit": 1, "cursor": page1["next_cursor"]},
        headers=tenant.headers,
    ).json()
    assert page2["next_cursor"] is None
    assert page2["data"][0]["member_id"] == str(budi)

    summary = client.get(f"/v1/causes/{cause['id']}/summary", headers=tenant.headers).json()
    assert summary["donations"] == 2
    assert summary["matched_value"] == "6000"
    assert summary["by_day"][0]["points"] == 800

    closed = client.post(f"/v1/causes/{cause['id']}/close", headers=tenant.headers)
    assert closed.json()["status"] == "closed"
    late = give(client, tenant, cause["id"], budi, 300, "pos-3")
    assert late.status_code == 409
    assert late.json()["code"] == "cause_not_active"
    assert client.get("/v1/causes", headers=read).json() == []
    changed = client.put("/v1/causes/tanam-pohon", json=TREE, headers=tenant.headers)
    assert changed.json()["code"] == "cause_closed"
    assert_db_sound(db)


def test_refusals_over_http(client: TestClient, db: Database, tenant: TenantFixture) -> None:
    cause = client.put(
        "/v1/causes/sedekah-ramadan",
        json={**TREE, "starts_on": "2020-03-01", "ends_on": "2020-03-30", "max_points": 1000},
        headers=tenant.headers,
    ).json()
    open_cause = client.put(
        "/v1/causes/tanam-pohon", json={**TREE, "max_points": 1000}, headers=tenant.headers
    ).json()
    m = member_with_points(db, tenant, 500)
    before = counts(db, tenant)

    ended = give(client, tenant, cause["id"], m, 100, "r-1")
    assert ended.status_code == 409
    assert ended.json()["code"] == "cause_ended"
    assert ended.json()["ends_on"] == "2020-03-30"
    assert "2020-03-30" in ended.json()["detail"]
    cases = [(50, 422, "donation_below_minimum"), (2000, 422, "donation_above_maximum")]
    cases.append((900, 409, "insufficient_points"))
    for points, status, code in cases:
        r = give(client, tenant, open_cause["id"], m, points, f"r-{points}")
        assert (r.status_code, r.json()["code"]) == (status, code)
    no_key = client.post(
        f"/v1/causes/{open_cause['id']}/donations",
        json={"member_id": str(m), "points": 100},
        headers=tenant.headers,
    )
    assert (no_key.status_code, no_key.json()["code"]) == (422, "idempotency_key_required")
    unknown = give(client, tenant, open_cause["id"], uuid.uuid4(), 100, "r-x")
    assert (unknown.status_code, unknown.json()["code"]) == (404, "member_not_found")
    assert counts(db, tenant) == before
    assert balance(db, tenant, m) == 500

    bad = client.put(
        "/v1/causes/x", json={**TREE, "names": {"ms": "Hanya Melayu"}}, headers=tenant.headers
    )
    assert bad.status_code == 422
    budget = client.put("/v1/causes/Bad Code", json=TREE, headers=tenant.headers)
    assert budget.status_code == 422
    assert budget.json()["code"] == "invalid_cause_code"


def test_scopes_and_tenant_isolation(
    client: TestClient, db: Database, tenant: TenantFixture
) -> None:
    other = make_tenant(db, name="Toko Lain")
    cause = client.put("/v1/causes/tanam-pohon", json=TREE, headers=tenant.headers).json()
    read = key(db, tenant, "read")
    assert client.put("/v1/causes/zakat", json=TREE, headers=read).status_code == 403
    assert give(client, tenant, cause["id"], uuid.uuid4(), 100, "k").status_code == 404
    stranger = member_with_points(db, other, 1000)
    mine = member_with_points(db, tenant, 1000)
    # another tenant's cause, member and donation are not found
    r = client.post(
        f"/v1/causes/{cause['id']}/donations",
        json={"member_id": str(stranger), "points": 100},
        headers={**other.headers, "Idempotency-Key": "o-1"},
    )
    assert (r.status_code, r.json()["code"]) == (404, "cause_not_found")
    r = give(client, tenant, cause["id"], stranger, 100, "o-2")
    assert (r.status_code, r.json()["code"]) == (404, "member_not_found")
    d = give(client, tenant, cause["id"], mine, 100, "o-3").json()
    assert client.get(f"/v1/donations/{d['id']}/receipt", headers=other.headers).status_code == 404
    assert client.get(f"/v1/causes/{cause['id']}", headers=other.headers).status_code == 404
    assert client.get("/v1/causes", headers=other.headers).json() == []
    assert client.get(f"/v1/members/{mine}/donations", headers=other.headers).status_code == 404
