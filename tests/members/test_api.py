"""Members: identities (E.164 phones, emails), uniqueness per tenant, lookup, consent."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from setia.core.db import Database
from setia.members.service import InvalidPhone, normalize_email, normalize_phone
from tests.conftest import TenantFixture, make_tenant
from tests.events.helpers import PROBLEM, row_counts


def problem(r: Any, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = r.json()
    assert body["code"] == code, body
    return body


def enrol(client: TestClient, t: TenantFixture, **data: Any) -> dict[str, Any]:
    r = client.post("/v1/members", json=data, headers=t.headers)
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


# --------------------------------------------------------------------------- phones and emails


@pytest.mark.parametrize(
    ("raw", "country", "e164"),
    [
        ("0812-3456-7890", "ID", "+6281234567890"),
        ("0812 3456 7890", "ID", "+6281234567890"),
        ("+62 812-3456-7890", "ID", "+6281234567890"),
        ("(021) 5795 1234", "ID", "+622157951234"),
        ("012-345 6789", "MY", "+60123456789"),
        ("+60 12-345 6789", "MY", "+60123456789"),
        ("+60123456789", "ID", "+60123456789"),  # an international number in an ID tenant
        ("+6281234567890", "MY", "+6281234567890"),
    ],
)
def test_phone_numbers_become_e164(raw: str, country: str, e164: str) -> None:
    assert normalize_phone(raw, country) == e164


@pytest.mark.parametrize(
    ("raw", "country"),
    [
        ("12345", "ID"),
        ("0812", "ID"),
        ("phone", "ID"),
        ("012-345 6789", "ID"),
        ("+99 1234", "MY"),
        # letters: keypad digits ("KOPI" is 5674) or an extension ("x"): not what was typed
        ("0812-KOPI-1234", "ID"),
        ("0812 3456 789x", "ID"),
        ("0812-3456-78ab", "ID"),
        ("+60 12-345 6789 ext. 12", "MY"),
    ],
)
def test_malformed_phone_numbers_are_refused(raw: str, country: str) -> None:
    with pytest.raises(InvalidPhone):
        normalize_phone(raw, country)


def test_phone_is_stored_as_e164(client: TestClient, tenant: TenantFixture) -> None:
    member = enrol(client, tenant, phone="0812-3456-7890", name="Siti")
    assert member["phone"] == "+6281234567890"


def test_malaysian_tenant_reads_local_numbers_as_malaysian(
    client: TestClient, db: Database
) -> None:
    my = make_tenant(
        db, name="Kedai Runcit", country="MY", currency="MYR", timezone="Asia/Kuala_Lumpur"
    )
    member = enrol(client, my, phone="012-345 6789")
    assert member["phone"] == "+60123456789"
    assert member["locale"] == "ms"


def test_emails_are_validated_and_normalised(
    client: TestClient, db: Database, tenant: TenantFixture
) -> None:
    assert normalize_email("Siti.Rahayu@Example.CO.ID") == "siti.rahayu@example.co.id"
    member = enrol(client, tenant, email="  Siti@Example.co.id ")
    assert member["email"] == "siti@example.co.id"
    before = row_counts(db)
    for bad in ("siti", "siti@", "@example.id", "siti@@example.id", "siti@example..id", "a b@x.id"):
        r = client.post("/v1/members", json={"email": bad}, headers=tenant.headers)
        problem(r, 422, "invalid_email")
    r = client.post("/v1/members", json={"phone": "0812-ABCD"}, headers=tenant.headers)
    problem(r, 422, "invalid_phone")
    # A valid number once its letters become keypad digits: refused too, on every path.
    r = client.post("/v1/members", json={"phone": "0812-KOPI-1234"}, headers=tenant.headers)
    problem(r, 422, "invalid_phone")
    purchase = {
        "type": "purchase",
        "member": {"phone": "0812-3456-789x"},
        "order_id": "A-1",
        "amount": "50000",
        "currency": "IDR",
    }
    r = client.post("/v1/events", json={"id": "e-1", **purchase}, headers=tenant.headers)
    problem(r, 422, "invalid_phone")
    r = client.post(
        "/v1/events/batch",
        json={"events": [{"id": "e-2", **purchase}]},
        headers=tenant.headers,
    )
    assert r.status_code == 200
    assert r.json()["results"][0]["error"]["code"] == "invalid_phone"
    assert row_counts(db) == before


# --------------------------------------------------------------------------- uniqueness


@pytest.mark.parametrize(
    ("first", "second", "field"),
    [
        ({"external_id": "C-1"}, {"external_id": "C-1"}, "external_id"),
        ({"phone": "0812-3456-7890"}, {"phone": "+62 812 3456 7890"}, "phone"),
        ({"email": "siti@example.id"}, {"email": "SITI@Example.ID"}, "email"),
    ],
)
def test_identities_are_unique_per_tenant(
    client: TestClient,
    db: Database,
    tenant: TenantFixture,
    first: dict[str, str],
    second: dict[str, str],
    field: str,
) -> None:
    enrol(client, tenant, **first)
    before = row_counts(db, ("members", "consent_changes", "outbox"))
    r = client.post("/v1/members", json=second, headers=tenant.headers)
    body = problem(r, 409, "member_identity_taken")
    assert body["field"] == field
    assert row_counts(db, ("members", "consent_changes", "outbox")) == before
    # Updating another member to the taken identity is refused too.
    other = enrol(client, tenant, external_id="OTHER")
    r = client.patch(f"/v1/members/{other['id']}", json=second, headers=tenant.headers)
    problem(r, 409, "member_identity_taken")
    # Another tenant may have a member with the same identity.
    other_tenant = make_tenant(db, name="Batik Sari")
    assert enrol(client, other_tenant, **second)[field] is not None


def test_a_member_may_keep_its_own_identity_on_update(
    client: TestClient, tenant: TenantFixture
) -> None:
    member = enrol(client, tenant, phone="0812-3456-7890", external_id="C-1")
    r = client.patch(
        f"/v1/members/{member['id']}",
        json={"phone": "+6281234567890", "external_id": "C-1", "name": "Siti"},
        headers=tenant.headers,
    )
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "Siti"


# --------------------------------------------------------------------------- lookup


def test_lookup_by_every_identity(client: TestClient, db: Database, tenant: TenantFixture) -> None:
    siti = enrol(client, tenant, external_id="C-1", phone="0812-3456-7890", email="siti@example.id")
    enrol(client, tenant, external_id="C-2", phone="0813-1111-2222")
    h = tenant.headers
    assert client.get(f"/v1/members/{siti['id']}", headers=h).json()["id"] == siti["id"]
    for params in (
        {"external_id": "C-1"},
        {"phone": "0812-3456-7890"},
        {"phone": "+6281234567890"},
        {"phone": "0812 3456 7890"},
        {"email": "SITI@example.id"},
        {"external_id": "C-1", "email": "siti@example.id"},
    ):
        r = client.get("/v1/members/lookup", params=params, headers=h)
        assert r.status_code == 200, (params, r.text)
        assert r.json()["id"] == siti["id"]
    for params in ({"external_id": "C-404"}, {"email": "nobody@example.id"}):
        problem(client.get("/v1/members/lookup", params=params, headers=h), 404, "member_not_found")
    problem(client.get("/v1/members/lookup", headers=h), 422, "invalid_input")
    problem(
        client.get("/v1/members/lookup", params={"phone": "xyz"}, headers=h), 422, "invalid_phone"
    )
    # Identities of two different members do not silently pick one.
    problem(
        client.get(
            "/v1/members/lookup",
            params={"external_id": "C-1", "phone": "0813-1111-2222"},
            headers=h,
        ),
        409,
        "member_identity_taken",
    )
    problem(
        client.get("/v1/members/01900000-0000-7000-8000-000000000000", headers=h),
        404,
        "member_not_found",
    )
    # Another tenant cannot find her, by id or by identity.
    other = make_tenant(db, name="Batik Sari")
    problem(client.get(f"/v1/members/{siti['id']}", headers=other.headers), 404, "member_not_found")
    problem(
        client.get("/v1/members/lookup", params={"external_id": "C-1"}, headers=other.headers),
        404,
        "member_not_found",
    )


def test_search_finds_by_name_phone_digits_and_tag(
    client: TestClient, tenant: TenantFixture
) -> None:
    siti = enrol(client, tenant, name="Siti Rahayu", phone="0812-3456-7890", tags=["vip"])
    enrol(client, tenant, name="Budi", phone="0813-1111-2222")
    h = tenant.headers

    def ids(**params: str) -> list[str]:
        return [m["id"] for m in client.get("/v1/members", params=params, headers=h).json()["data"]]

    assert ids(q="rahayu") == [siti["id"]]
    assert ids(q="3456-7890") == [siti["id"]]
    assert ids(tag="vip") == [siti["id"]]
    assert len(ids()) == 2


# --------------------------------------------------------------------------- consent


def test_consent_history_keeps_every_change_with_its_source(
    client: TestClient, db: Database, tenant: TenantFixture
) -> None:
    member = enrol(
        client,
        tenant,
        phone="0812-3456-7890",
        consents={"whatsapp": True, "email": False},
        consent_source="pos-form",
    )
    assert member["consents"] == {"email": False, "whatsapp": True, "sms": False}
    h = tenant.headers
    url = f"/v1/members/{member['id']}/consents"
    r = client.post(
        url, json={"channel": "whatsapp", "granted": False, "source": "whatsapp-optout"}, headers=h
    )
    assert r.status_code == 201, r.text
    r = client.post(url, json={"channel": "email", "granted": True, "source": "portal"}, headers=h)
    assert r.status_code == 201, r.text
    history = client.get(url, headers=h).json()
    assert [(c["channel"], c["granted"], c["source"]) for c in history] == [
        ("whatsapp", True, "pos-form"),
        ("email", False, "pos-form"),
        ("whatsapp", False, "whatsapp-optout"),
        ("email", True, "portal"),
    ]
    assert all(c["changed_at"] for c in history)
    now = client.get(f"/v1/members/{member['id']}", headers=h).json()["consents"]
    assert now == {"email": True, "whatsapp": False, "sms": False}

    before = row_counts(db, ("consent_changes",))
    for body in (
        {"channel": "whatsapp", "granted": True},  # no source
        {"channel": "whatsapp", "granted": True, "source": ""},
        {"channel": "pigeon", "granted": True, "source": "portal"},
        {"channel": "sms", "granted": "maybe", "source": "portal"},
    ):
        problem(client.post(url, json=body, headers=h), 422, "validation_error")
    assert row_counts(db, ("consent_changes",)) == before


def test_member_with_a_bad_consent_channel_is_not_created(
    client: TestClient, db: Database, tenant: TenantFixture
) -> None:
    before = row_counts(db, ("members", "consent_changes", "ledger_accounts"))
    r = client.post(
        "/v1/members",
        json={"phone": "0812-3456-7890", "consents": {"fax": True}},
        headers=tenant.headers,
    )
    problem(r, 422, "invalid_input")
    assert row_counts(db, ("members", "consent_changes", "ledger_accounts")) == before


def test_null_clears_attributes_and_tags_and_a_null_locale_is_refused(
    client: TestClient, tenant: TenantFixture
) -> None:
    """A PATCH with null for a field that cannot be empty clears it (attributes, tags) or is
    refused with what to give (locale); the member stays readable either way."""
    m = enrol(client, tenant, external_id="N-1", tags=["vip"], attributes={"kota": "Bandung"})
    url = f"/v1/members/{m['id']}"
    r = client.patch(url, json={"attributes": None, "tags": None}, headers=tenant.headers)
    assert r.status_code == 200, r.text
    assert (r.json()["attributes"], r.json()["tags"]) == ({}, [])
    body = problem(
        client.patch(url, json={"locale": None}, headers=tenant.headers), 422, "validation_error"
    )
    assert "locale cannot be null" in body["detail"]
    got = client.get(url, headers=tenant.headers)
    assert got.status_code == 200, got.text
    assert (got.json()["attributes"], got.json()["locale"]) == ({}, m["locale"])
    assert client.get("/v1/members", headers=tenant.headers).status_code == 200
