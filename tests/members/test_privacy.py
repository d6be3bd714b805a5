"""Data-subject rights (UU PDP / PDPA): export everything, erase personal data."""

from __future__ import annotations

import json
import uuid
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from setia.core.db import Database
from setia.events.models import Event
from setia.ledger.verify import verify
from tests.conftest import TenantFixture
from tests.events.helpers import purchase, row_counts
from tests.members.test_api import enrol, problem

PERSONAL = ("Siti Rahayu", "+6281234567890", "siti@example.id", "1994-03-17", "Jl. Dago 12")


def siti_with_history(client: TestClient, tenant: TenantFixture) -> dict[str, Any]:
    h = tenant.headers
    member = enrol(
        client,
        tenant,
        external_id="C-1",
        name="Siti Rahayu",
        phone="0812-3456-7890",
        email="siti@example.id",
        birthday="1994-03-17",
        attributes={"address": "Jl. Dago 12"},
        tags=["vip"],
        consents={"whatsapp": True},
        consent_source="pos-form",
    )
    event = purchase(
        "e1",
        member={"phone": "0812-3456-7890"},
        attributes={"delivery_address": "Jl. Dago 12", "note": "for Siti Rahayu"},
    )
    assert client.post("/v1/events", json=event, headers=h).status_code == 201
    r = client.post(f"/v1/members/{member['id']}/points/redeem", json={"points": 5}, headers=h)
    assert r.status_code == 201, r.text
    return member


def test_export_contains_profile_consents_events_and_statement(
    client: TestClient, tenant: TenantFixture
) -> None:
    member = siti_with_history(client, tenant)
    r = client.get(f"/v1/members/{member['id']}/export", headers=tenant.headers)
    assert r.status_code == 200, r.text
    data = r.json()
    profile = data["profile"]
    assert (profile["name"], profile["phone"], profile["email"], profile["birthday"]) == (
        "Siti Rahayu",
        "+6281234567890",
        "siti@example.id",
        "1994-03-17",
    )
    assert profile["attributes"] == {"address": "Jl. Dago 12"}
    assert [(c["channel"], c["granted"], c["source"]) for c in data["consents"]] == [
        ("whatsapp", True, "pos-form")
    ]
    assert [e["id"] for e in data["events"]] == ["e1"]
    assert data["events"][0]["payload"]["attributes"]["delivery_address"] == "Jl. Dago 12"
    (points,) = data["points"].values()
    assert points["balance"]["available"] == 80
    assert [(line["code"], line["change"]) for line in points["statement"]] == [
        ("REDEEM", -5),
        ("EARN", 85),
    ]
    assert data["tenant"] == "Kopi Test"
    # It is all plain JSON, ready to hand over.
    json.dumps(data)


def test_export_and_erase_need_the_admin_scope(client: TestClient, tenant: TenantFixture) -> None:
    member = enrol(client, tenant, phone="0812-3456-7890")
    r = client.post("/v1/api-keys", json={"scope": "pos"}, headers=tenant.headers)
    pos = {"Authorization": f"Bearer {r.json()['api_key']}"}
    problem(client.get(f"/v1/members/{member['id']}/export", headers=pos), 403, "forbidden")
    problem(
        client.post(
            f"/v1/members/{member['id']}/erase",
            json={"reason": "request", "confirm": True},
            headers=pos,
        ),
        403,
        "forbidden",
    )


def test_erase_removes_personal_data_and_keeps_the_ledger(
    client: TestClient, db: Database, tenant: TenantFixture
) -> None:
    h = tenant.headers
    member = siti_with_history(client, tenant)
    url = f"/v1/members/{member['id']}"
    ledger_tables = ("ledger_transfers", "ledger_entries", "point_lots", "orders", "events")
    before = row_counts(db, ledger_tables)
    balance_before = client.get(f"{url}/balance", headers=h).json()

    problem(
        client.post(
            f"{url}/erase", json={"reason": "data subject request", "confirm": False}, headers=h
        ),
        422,
        "invalid_input",
    )
    assert client.get(url, headers=h).json()["name"] == "Siti Rahayu"

    r = client.post(
        f"{url}/erase", json={"reason": "data subject request", "confirm": True}, headers=h
    )
    assert r.status_code == 200, r.text
    erased = r.json()
    assert erased["status"] == "erased"
    for field in ("name", "phone", "email", "birthday", "external_id", "timezone"):
        assert erased[field] is None, field
    assert (erased["attributes"], erased["tags"]) == ({}, [])
    assert erased["consents"] == {"email": False, "whatsapp": False, "sms": False}

    # The books are untouched and still balance.
    assert row_counts(db, ledger_tables) == before
    balance_after = client.get(f"{url}/balance", headers=h).json()
    assert balance_after["available"] == balance_before["available"] == 80
    assert balance_after["lifetime"] == balance_before["lifetime"]
    with db.session() as session:
        assert verify(session).ok
        events = list(session.execute(select(Event)).scalars())
        assert [e.payload for e in events] == [{}]
        assert events[0].amount is not None  # what accounting needs stays

    # Nothing personal is left in what an export would hand over, nor findable.
    export = client.get(f"{url}/export", headers=h).json()
    text = json.dumps(export)
    for value in PERSONAL:
        assert value not in text, value
    problem(
        client.get("/v1/members/lookup", params={"phone": "0812-3456-7890"}, headers=h),
        404,
        "member_not_found",
    )
    problem(
        client.get("/v1/members/lookup", params={"external_id": "C-1"}, headers=h),
        404,
        "member_not_found",
    )
    # The erasure is on record, and a second request changes nothing.
    history = client.get(f"{url}/consents", headers=h).json()
    assert {c["source"] for c in history[-3:]} == {"erasure"}
    assert export["audit"][-1]["action"] == "member.erased"
    r = client.post(f"{url}/erase", json={"reason": "again", "confirm": True}, headers=h)
    assert r.status_code == 200, r.text
    assert len(client.get(f"{url}/consents", headers=h).json()) == len(history)
    # An erased member can no longer redeem.
    problem(
        client.post(f"{url}/points/redeem", json={"points": 1}, headers=h),
        409,
        "member_not_active",
    )


def test_erasure_leaves_no_personal_data_in_the_audit_trail(
    client: TestClient, tenant: TenantFixture
) -> None:
    h = tenant.headers
    a = enrol(client, tenant, name="Ani")
    b = enrol(client, tenant, phone="0812-3456-7890", email="siti@example.id", name="Siti Rahayu")
    r = client.post(
        f"/v1/members/{a['id']}/merge",
        json={"source_member_id": b["id"], "reason": "same person"},
        headers=h,
    )
    assert r.status_code == 200, r.text
    # An update is audited too; the old and new values must not outlive the erasure.
    r = client.patch(
        f"/v1/members/{a['id']}",
        json={"birthday": "1994-03-17", "attributes": {"address": "Jl. Dago 12"}},
        headers=h,
    )
    assert r.status_code == 200, r.text
    r = client.post(
        f"/v1/members/{a['id']}/erase", json={"reason": "request", "confirm": True}, headers=h
    )
    assert r.status_code == 200, r.text
    export = client.get(f"/v1/members/{a['id']}/export", headers=h).json()
    assert [x["action"] for x in export["audit"]] == [
        "member.merged",
        "member.updated",
        "member.erased",
    ]
    assert export["audit"][0]["details"]["identities_taken"] == ["email", "phone"]
    text = json.dumps(export)
    for value in PERSONAL:
        assert value not in text, value


def test_erasure_takes_the_records_merged_into_the_member_with_it(
    client: TestClient, db: Database, tenant: TenantFixture
) -> None:
    """A duplicate folded into the member keeps its own identities when the survivor has
    its own (they resolve to the survivor): erasing the survivor erases them too, and a
    till that later names one meets a new customer, as with the survivor's own."""
    h = tenant.headers
    a = enrol(client, tenant, external_id="M-A", name="Ani", phone="0812-1111-0001")
    b = enrol(
        client,
        tenant,
        external_id="M-B",
        name="Ani W.",
        phone="0813-1111-0002",
        email="ani.w@example.id",
    )
    c = enrol(client, tenant, external_id="M-C", name="Ani Wulandari", email="ani@example.id")
    for survivor, source in ((b, c), (a, b)):  # a chain: C into B, then B into A
        r = client.post(
            f"/v1/members/{survivor['id']}/merge",
            json={"source_member_id": source["id"], "reason": "same person"},
            headers=h,
        )
        assert r.status_code == 200, r.text
    found = client.get("/v1/members/lookup", params={"phone": "0813-1111-0002"}, headers=h)
    assert found.json()["id"] == a["id"]
    # what is held about the person includes the duplicates folded in
    export = client.get(f"/v1/members/{a['id']}/export", headers=h).json()
    held = {m["id"]: m for m in export["merged_records"]}
    assert set(held) == {b["id"], c["id"]}
    assert "consents" in held[b["id"]]
    assert "referrals" in held[b["id"]]
    assert (held[b["id"]]["phone"], held[c["id"]]["email"]) == ("+6281311110002", "ani@example.id")

    r = client.post(
        f"/v1/members/{a['id']}/erase", json={"reason": "request", "confirm": True}, headers=h
    )
    assert r.status_code == 200, r.text
    for record in (b, c):
        body = client.get(f"/v1/members/{record['id']}", headers=h).json()
        for field in ("name", "phone", "email", "external_id"):
            assert body[field] is None, (record["external_id"], field)
        text = json.dumps(client.get(f"/v1/members/{record['id']}/export", headers=h).json())
        for value in ("Ani W", "Wulandari", "+6281311110002", "ani.w@example.id", "M-B", "M-C"):
            assert value not in text, value
    for params in (
        {"phone": "0813-1111-0002"},
        {"email": "ani@example.id"},
        {"external_id": "M-B"},
    ):
        problem(client.get("/v1/members/lookup", params=params, headers=h), 404, "member_not_found")
    export = client.get(f"/v1/members/{a['id']}/export", headers=h).json()
    assert export["audit"][-1]["details"]["merged_records"] == sorted([b["id"], c["id"]])
    # Erased before this rule: its merged records kept their data. Erasing again clears them.
    with db.session() as session:
        from setia.members.models import Member

        stale = session.get(Member, uuid.UUID(b["id"]))
        assert stale is not None
        stale.name, stale.phone = "Ani W.", "+6281311110002"
        session.commit()
    r = client.post(
        f"/v1/members/{a['id']}/erase", json={"reason": "again", "confirm": True}, headers=h
    )
    assert r.status_code == 200, r.text
    body = client.get(f"/v1/members/{b['id']}", headers=h).json()
    assert (body["name"], body["phone"]) == (None, None)
    # The duplicate's old phone is free again: a new customer, like the survivor's own.
    for n, phone in enumerate(("0813-1111-0002", "0812-1111-0001")):
        r = client.post(
            "/v1/events", json=purchase(f"after-{n}", member={"phone": phone}), headers=h
        )
        assert r.status_code == 201, r.text
        assert r.json()["member_created"] is True
