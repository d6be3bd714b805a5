"""POST /v1/events and /v1/events/batch: bad input is refused cleanly and writes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from setia.core.config import get_settings
from setia.core.db import Database
from setia.core.time import utcnow
from setia.tenants.models import Tenant
from tests.conftest import TenantFixture, make_tenant
from tests.events.helpers import PROBLEM, purchase, refund, row_counts


def assert_problem(r: Any, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = r.json()
    assert body["code"] == code, body
    assert body["status"] == status
    assert body["type"].endswith(f"/{code}")
    assert body["detail"].strip()
    # every problem names the request it answers, whichever layer refused it (the body
    # limit, request validation, a service)
    assert body["instance"] == r.request.url.path, body
    return body


def without(event: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in event.items() if k not in keys}


# --------------------------------------------------------------------------- bad input


BAD_EVENTS = [
    pytest.param(purchase(amount="0"), 422, "invalid_amount", id="zero-amount"),
    pytest.param(purchase(amount="-5000"), 422, "invalid_amount", id="negative-amount"),
    pytest.param(purchase(amount="lima ribu"), 422, "invalid_amount", id="non-numeric-amount"),
    pytest.param(purchase(amount="NaN"), 422, "invalid_amount", id="nan-amount"),
    pytest.param(purchase(amount="1e400000"), 422, "invalid_amount", id="huge-exponent"),
    pytest.param(purchase(amount="1" + "0" * 14), 422, "invalid_amount", id="too-large"),
    pytest.param(purchase(amount="1e-9"), 422, "invalid_amount", id="exponent-amount"),
    pytest.param(purchase(amount="0.001"), 422, "too_many_decimals", id="tiny-amount"),
    pytest.param(purchase(currency="QQQ"), 422, "unknown_currency", id="unknown-currency"),
    pytest.param(purchase(currency="MYR"), 409, "currency_mismatch", id="other-currency"),
    pytest.param(purchase(amount="85000.50"), 422, "too_many_decimals", id="idr-decimals"),
    pytest.param(purchase(amount="85000.0"), 201, None, id="idr-zero-decimal-is-fine"),
    pytest.param(purchase(amount="85000.00"), 201, None, id="idr-cents-zero-is-fine"),
    pytest.param(purchase(amount="78.000"), 422, "too_many_decimals", id="idr-dot-thousands"),
    pytest.param(
        purchase(member={"phone": "0812-ABC"}), 422, "invalid_phone", id="malformed-phone"
    ),
    pytest.param(
        purchase(member={"phone": "+62 21 1"}), 422, "invalid_phone", id="too-short-phone"
    ),
    pytest.param(
        purchase(member={"email": "siti@@example"}), 422, "invalid_email", id="malformed-email"
    ),
    pytest.param(purchase(colour="red"), 422, "validation_error", id="unknown-field"),
    pytest.param(
        purchase(member={"phone": "0812-3456-7890", "nik": "3201"}),
        422,
        "validation_error",
        id="unknown-member-field",
    ),
    pytest.param(without(purchase(), "currency"), 422, "validation_error", id="purchase-no-cur"),
    pytest.param(purchase(amount=85000.5), 422, "validation_error", id="float-amount"),
    pytest.param(purchase(member={}), 422, "validation_error", id="no-identity"),
    pytest.param(purchase(type="Purchase!"), 422, "validation_error", id="bad-type"),
    pytest.param(
        purchase(occurred_at="2026-01-05T10:00:00"), 422, "validation_error", id="naive-time"
    ),
    pytest.param(
        purchase(occurred_at=(utcnow() + timedelta(days=1)).isoformat()),
        422,
        "occurred_at_in_future",
        id="future-occurred-at",
    ),
    pytest.param(
        refund("r1", "NO-SUCH-ORDER", amount="1000"),
        404,
        "order_not_found",
        id="refund-unknown-order",
    ),
    pytest.param(
        refund("r1", "O-x", amount="1000", returned_items=[{"sku": "A", "quantity": 1}]),
        422,
        "validation_error",
        id="refund-amount-and-items",
    ),
]


@pytest.mark.parametrize(("event", "status", "code"), BAD_EVENTS)
def test_bad_event_is_refused_and_writes_nothing(
    client: TestClient,
    db: Database,
    tenant: TenantFixture,
    event: dict[str, Any],
    status: int,
    code: str | None,
) -> None:
    before = row_counts(db)
    r = client.post("/v1/events", json=event, headers=tenant.headers)
    if code is None:  # the control case: the same shape, accepted
        assert r.status_code == status, r.text
        assert row_counts(db)["events"] == before["events"] + 1
        return
    assert_problem(r, status, code)
    assert row_counts(db) == before


def test_myr_tenant_allows_two_decimals_and_no_more(client: TestClient, db: Database) -> None:
    my = make_tenant(
        db, name="Kedai Runcit", country="MY", currency="MYR", timezone="Asia/Kuala_Lumpur"
    )
    member = {"phone": "012-345 6789"}
    before = row_counts(db)
    r = client.post(
        "/v1/events",
        json=purchase("m1", member=member, amount="12.345", currency="MYR"),
        headers=my.headers,
    )
    assert_problem(r, 422, "too_many_decimals")
    assert row_counts(db) == before
    r = client.post(
        "/v1/events",
        json=purchase("m1", member=member, amount="12.50", currency="MYR"),
        headers=my.headers,
    )
    assert r.status_code == 201, r.text
    member_id = r.json()["member_id"]
    got = client.get(f"/v1/members/{member_id}", headers=my.headers).json()
    assert got["phone"] == "+60123456789"


def test_item_price_with_too_many_decimals_is_refused(
    client: TestClient, db: Database, tenant: TenantFixture
) -> None:
    before = row_counts(db)
    items = [{"sku": "KOPI", "quantity": 1, "unit_price": "25000.5"}]
    r = client.post("/v1/events", json=purchase(items=items), headers=tenant.headers)
    body = assert_problem(r, 422, "too_many_decimals")
    assert "items[0].unit_price" in body["detail"]
    assert row_counts(db) == before


def test_ten_megabyte_body_is_413(client: TestClient, db: Database, tenant: TenantFixture) -> None:
    before = row_counts(db)
    event = purchase(attributes={"blob": "x" * (10 * 1024 * 1024)})
    r = client.post("/v1/events", json=event, headers=tenant.headers)
    assert_problem(r, 413, "payload_too_large")
    assert row_counts(db) == before


def test_oversized_body_without_content_length_is_413(
    client: TestClient, db: Database, tenant: TenantFixture
) -> None:
    """A chunked upload declares no length; the limit is enforced while reading."""
    before = row_counts(db)

    def chunks() -> Iterator[bytes]:
        yield b'{"id": "big", "type": "purchase", "attributes": {"blob": "'
        for _ in range(10 * 16):
            yield b"x" * 65536
        yield b'"}}'

    r = client.post(
        "/v1/events",
        content=chunks(),
        headers={**tenant.headers, "Content-Type": "application/json"},
    )
    assert_problem(r, 413, "payload_too_large")
    assert row_counts(db) == before


def test_malformed_json_is_422(client: TestClient, db: Database, tenant: TenantFixture) -> None:
    before = row_counts(db)
    r = client.post(
        "/v1/events",
        content=b'{"id": "e1", "type": ',
        headers={**tenant.headers, "Content-Type": "application/json"},
    )
    assert_problem(r, 422, "validation_error")
    assert row_counts(db) == before


# --------------------------------------------------------------------------- conflicts


def test_event_id_reused_with_other_payload_is_409(
    client: TestClient, db: Database, tenant: TenantFixture
) -> None:
    assert client.post("/v1/events", json=purchase(), headers=tenant.headers).status_code == 201
    before = row_counts(db)
    r = client.post("/v1/events", json=purchase(amount="90000"), headers=tenant.headers)
    assert_problem(r, 409, "event_id_reused")
    assert row_counts(db) == before


def test_purchase_for_an_existing_order_is_409(
    client: TestClient, db: Database, tenant: TenantFixture
) -> None:
    assert client.post("/v1/events", json=purchase("e1"), headers=tenant.headers).status_code == 201
    before = row_counts(db)
    # Another event id, another member, same order number.
    dup = purchase("e2", order_id="O-e1", member={"phone": "0813-1111-2222"})
    r = client.post("/v1/events", json=dup, headers=tenant.headers)
    assert_problem(r, 409, "order_exists")
    assert row_counts(db) == before


def test_refund_exceeding_the_order_is_409(
    client: TestClient, db: Database, tenant: TenantFixture
) -> None:
    items = [{"sku": "KOPI", "quantity": 2, "unit_price": "25000"}]
    r = client.post(
        "/v1/events", json=purchase("e1", amount="50000", items=items), headers=tenant.headers
    )
    assert r.status_code == 201, r.text
    before = row_counts(db)
    r = client.post("/v1/events", json=refund("r1", "O-e1", amount="50001"), headers=tenant.headers)
    body = assert_problem(r, 409, "refund_exceeds_order")
    assert body["refundable"] == "50000"
    r = client.post(
        "/v1/events",
        json=refund("r2", "O-e1", returned_items=[{"sku": "KOPI", "quantity": 3}]),
        headers=tenant.headers,
    )
    assert_problem(r, 409, "refund_exceeds_order")
    r = client.post(
        "/v1/events",
        json=refund("r3", "O-e1", returned_items=[{"sku": "TEH", "quantity": 1}]),
        headers=tenant.headers,
    )
    assert_problem(r, 409, "refund_exceeds_order")
    assert row_counts(db) == before
    # What is left can still be refunded, once.
    r = client.post("/v1/events", json=refund("r4", "O-e1", amount="30000"), headers=tenant.headers)
    assert r.status_code == 201, r.text
    assert r.json()["refund"]["points_reversed"] == 30
    before = row_counts(db)
    r = client.post("/v1/events", json=refund("r5", "O-e1", amount="20001"), headers=tenant.headers)
    assert_problem(r, 409, "refund_exceeds_order")
    assert row_counts(db) == before


def test_one_sku_on_two_lines_is_returned_line_by_line(
    client: TestClient, db: Database, tenant: TenantFixture
) -> None:
    """KOPI at 10.000 and again at 20.000 (a promotion on one cup): both can be returned,
    in the order's line order, each at its own price; a third is refused."""
    items = [
        {"sku": "KOPI", "quantity": 1, "unit_price": "10000"},
        {"sku": "ROTI", "quantity": 1, "unit_price": "5000"},
        {"sku": "KOPI", "quantity": 1, "unit_price": "20000"},
    ]
    r = client.post(
        "/v1/events", json=purchase("e1", amount="35000", items=items), headers=tenant.headers
    )
    assert r.status_code == 201, r.text
    r = client.post(
        "/v1/events",
        json=refund("r1", "O-e1", returned_items=[{"sku": "KOPI", "quantity": 2}]),
        headers=tenant.headers,
    )
    assert r.status_code == 201, r.text
    assert r.json()["refund"]["amount"] == "30000"
    before = row_counts(db)
    r = client.post(
        "/v1/events",
        json=refund("r2", "O-e1", returned_items=[{"sku": "KOPI", "quantity": 1}]),
        headers=tenant.headers,
    )
    assert assert_problem(r, 409, "refund_exceeds_order")["detail"].startswith("only 0 of")
    assert row_counts(db) == before
    # one at a time: the first line's price, then the second's
    r = client.post(
        "/v1/events", json=purchase("e2", amount="35000", items=items), headers=tenant.headers
    )
    got = [
        client.post(
            "/v1/events",
            json=refund(f"s{n}", "O-e2", returned_items=[{"sku": "KOPI", "quantity": 1}]),
            headers=tenant.headers,
        ).json()["refund"]["amount"]
        for n in (1, 2)
    ]
    assert got == ["10000", "20000"]


def test_refund_by_another_member_is_409(
    client: TestClient, db: Database, tenant: TenantFixture
) -> None:
    assert client.post("/v1/events", json=purchase("e1"), headers=tenant.headers).status_code == 201
    client.post("/v1/members", json={"phone": "0813-1111-2222"}, headers=tenant.headers)
    before = row_counts(db)
    r = client.post(
        "/v1/events",
        json=refund("r1", "O-e1", amount="1000", member={"phone": "0813-1111-2222"}),
        headers=tenant.headers,
    )
    assert_problem(r, 409, "order_member_mismatch")
    assert row_counts(db) == before


# --------------------------------------------------------------------------- idempotency


def test_replay_returns_200_with_the_identical_body(
    client: TestClient, db: Database, tenant: TenantFixture
) -> None:
    event = purchase(occurred_at="2026-01-05T10:00:00+07:00", store="bandung-dago")
    first = client.post("/v1/events", json=event, headers=tenant.headers)
    assert first.status_code == 201, first.text
    before = row_counts(db, (*("events", "members", "ledger_transfers"), "outbox"))
    again = client.post("/v1/events", json=event, headers=tenant.headers)
    assert again.status_code == 200, again.text
    assert again.content == first.content
    assert row_counts(db, (*("events", "members", "ledger_transfers"), "outbox")) == before
    member = first.json()["member_id"]
    balance = client.get(f"/v1/members/{member}/balance", headers=tenant.headers).json()
    assert balance["available"] == 85


def test_replay_of_a_refund_reverses_once(client: TestClient, tenant: TenantFixture) -> None:
    client.post("/v1/events", json=purchase("e1"), headers=tenant.headers)
    r1 = client.post(
        "/v1/events", json=refund("r1", "O-e1", amount="85000"), headers=tenant.headers
    )
    r2 = client.post(
        "/v1/events", json=refund("r1", "O-e1", amount="85000"), headers=tenant.headers
    )
    assert (r1.status_code, r2.status_code) == (201, 200)
    assert r1.json() == r2.json()
    member = r1.json()["member_id"]
    balance = client.get(f"/v1/members/{member}/balance", headers=tenant.headers).json()
    assert balance["available"] == 0
    assert balance["lifetime"]["reversed"] == 85


# --------------------------------------------------------------------------- members


def test_unknown_member_is_created_from_the_event(
    client: TestClient, db: Database, tenant: TenantFixture
) -> None:
    event = purchase(member={"phone": "0812-3456-7890", "name": "Siti", "email": "Siti@Mail.id"})
    r = client.post("/v1/events", json=event, headers=tenant.headers)
    assert r.status_code == 201, r.text
    assert r.json()["member_created"] is True
    member = client.get(f"/v1/members/{r.json()['member_id']}", headers=tenant.headers).json()
    assert (member["phone"], member["name"], member["email"]) == (
        "+6281234567890",
        "Siti",
        "siti@mail.id",
    )
    # The same person in another local format is the same member.
    r2 = client.post(
        "/v1/events",
        json=purchase("e2", member={"phone": "+62 812 3456 7890"}),
        headers=tenant.headers,
    )
    assert r2.status_code == 201, r2.text
    assert r2.json()["member_created"] is False
    assert r2.json()["member_id"] == r.json()["member_id"]
    assert row_counts(db)["members"] == 1


def test_without_auto_creation_an_unknown_member_is_404(
    client: TestClient, db: Database, tenant: TenantFixture
) -> None:
    with db.session() as session:
        session.execute(
            update(Tenant).where(Tenant.id == tenant.tenant_id).values(auto_create_members=False)
        )
    before = row_counts(db)
    r = client.post("/v1/events", json=purchase(), headers=tenant.headers)
    body = assert_problem(r, 404, "member_not_found")
    assert "auto-creation is off" in body["detail"]
    assert row_counts(db) == before
    # An enrolled member still earns.
    r = client.post("/v1/members", json={"phone": "0812-3456-7890"}, headers=tenant.headers)
    assert r.status_code == 201, r.text
    r = client.post("/v1/events", json=purchase(), headers=tenant.headers)
    assert r.status_code == 201, r.text
    assert r.json()["member_created"] is False


def test_unknown_member_id_is_404_even_with_auto_creation(
    client: TestClient, db: Database, tenant: TenantFixture
) -> None:
    before = row_counts(db)
    r = client.post(
        "/v1/events",
        json=purchase(member={"id": "01900000-0000-7000-8000-000000000000"}),
        headers=tenant.headers,
    )
    assert_problem(r, 404, "member_not_found")
    assert row_counts(db) == before


def test_identities_of_two_members_is_409(
    client: TestClient, db: Database, tenant: TenantFixture
) -> None:
    client.post("/v1/members", json={"phone": "0812-3456-7890"}, headers=tenant.headers)
    client.post("/v1/members", json={"email": "budi@example.id"}, headers=tenant.headers)
    before = row_counts(db)
    r = client.post(
        "/v1/events",
        json=purchase(member={"phone": "0812-3456-7890", "email": "budi@example.id"}),
        headers=tenant.headers,
    )
    assert_problem(r, 409, "member_identity_taken")
    assert row_counts(db) == before


# --------------------------------------------------------------------------- batch


def test_batch_answers_per_event_and_keeps_the_valid_ones(
    client: TestClient, db: Database, tenant: TenantFixture
) -> None:
    before = row_counts(db)
    events = [
        purchase("b1"),
        purchase("b2", amount="0"),
        {"id": "b3", "type": "purchase"},
        refund("b4", "NO-SUCH-ORDER", amount="1000"),
        purchase("b5", order_id="O-b5", member={"email": "ani@example.id"}, amount="10000"),
        purchase("b6", currency="QQQ"),
        purchase("b1", amount="99000"),
    ]
    r = client.post("/v1/events/batch", json={"events": events}, headers=tenant.headers)
    assert r.status_code == 200, r.text
    out = r.json()
    statuses = [(i["index"], i["status"]) for i in out["results"]]
    assert statuses == [(0, 201), (1, 422), (2, 422), (3, 404), (4, 201), (5, 422), (6, 409)]
    codes = [i["error"]["code"] if i["error"] else None for i in out["results"]]
    assert codes == [
        None,
        "invalid_amount",
        "validation_error",
        "order_not_found",
        None,
        "unknown_currency",
        "event_id_reused",
    ]
    # each problem names the event it is about, as a pointer into the request's body
    instances = [i["error"]["instance"] for i in out["results"] if i["error"]]
    assert instances == [f"/v1/events/batch#/events/{n}" for n in (1, 2, 3, 5, 6)]
    assert (out["created"], out["duplicates"], out["failed"]) == (2, 0, 5)
    after = row_counts(db)
    assert after["events"] == before["events"] + 2
    assert after["members"] == before["members"] + 2
    assert after["orders"] == before["orders"] + 2
    # The failed events left nothing behind: replaying the batch changes nothing.
    r2 = client.post("/v1/events/batch", json={"events": events}, headers=tenant.headers)
    out2 = r2.json()
    assert [i["status"] for i in out2["results"]] == [200, 422, 422, 404, 200, 422, 409]
    assert (out2["created"], out2["duplicates"], out2["failed"]) == (0, 2, 5)
    assert out2["results"][0]["result"] == out["results"][0]["result"]
    assert row_counts(db) == after


def test_duplicate_within_a_batch_is_recorded_once(
    client: TestClient, db: Database, tenant: TenantFixture
) -> None:
    events = [purchase("d1"), purchase("d1")]
    r = client.post("/v1/events/batch", json={"events": events}, headers=tenant.headers)
    assert r.status_code == 200, r.text
    out = r.json()
    assert [i["status"] for i in out["results"]] == [201, 200]
    assert (out["created"], out["duplicates"], out["failed"]) == (1, 1, 0)
    assert out["results"][0]["result"] == out["results"][1]["result"]
    assert row_counts(db)["events"] == 1
    member = out["results"][0]["result"]["member_id"]
    balance = client.get(f"/v1/members/{member}/balance", headers=tenant.headers).json()
    assert balance["available"] == 85


def test_batch_refund_after_purchase_in_the_same_batch(
    client: TestClient, tenant: TenantFixture
) -> None:
    events = [purchase("p1"), refund("r1", "O-p1", amount="85000")]
    out = client.post("/v1/events/batch", json={"events": events}, headers=tenant.headers).json()
    assert [i["status"] for i in out["results"]] == [201, 201]
    assert out["results"][1]["result"]["refund"]["points_reversed"] == 85


def custom(i: int) -> dict[str, Any]:
    return {"id": f"c{i}", "type": "app.opened", "member": {"external_id": "C-1"}}


def test_batch_of_more_than_1000_is_refused(
    client: TestClient, db: Database, tenant: TenantFixture
) -> None:
    before = row_counts(db)
    events = [custom(i) for i in range(1001)]
    r = client.post("/v1/events/batch", json={"events": events}, headers=tenant.headers)
    body = assert_problem(r, 422, "batch_too_large")
    assert "1000" in body["detail"]
    assert row_counts(db) == before


def test_batch_of_exactly_1000_is_accepted(
    client: TestClient, db: Database, tenant: TenantFixture
) -> None:
    # 999 of them fail validation (cheap), so the batch is quick but full size.
    events = [custom(0)] + [{"id": f"bad{i}", "type": "app.opened"} for i in range(999)]
    r = client.post("/v1/events/batch", json={"events": events}, headers=tenant.headers)
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["created"], out["failed"], len(out["results"])) == (1, 999, 1000)
    assert row_counts(db)["events"] == 1


def test_batch_limit_is_a_setting(
    client: TestClient, db: Database, tenant: TenantFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SETIA_BATCH_MAX_EVENTS", "3")
    get_settings.cache_clear()
    try:
        r = client.post(
            "/v1/events/batch",
            json={"events": [custom(i) for i in range(4)]},
            headers=tenant.headers,
        )
        body = assert_problem(r, 422, "batch_too_large")
        assert "at most 3" in body["detail"]
        r = client.post(
            "/v1/events/batch",
            json={"events": [custom(i) for i in range(3)]},
            headers=tenant.headers,
        )
        assert r.status_code == 200, r.text
    finally:
        monkeypatch.delenv("SETIA_BATCH_MAX_EVENTS")
        get_settings.cache_clear()
    assert row_counts(db)["events"] == 3


def test_empty_or_malformed_batch_is_422(client: TestClient, tenant: TenantFixture) -> None:
    for body in ({"events": []}, {"events": "x"}, {"evnts": [custom(1)]}):
        r = client.post("/v1/events/batch", json=body, headers=tenant.headers)
        assert_problem(r, 422, "validation_error")


def test_batch_entry_that_is_not_an_object_refuses_the_batch(
    client: TestClient, db: Database, tenant: TenantFixture
) -> None:
    r = client.post(
        "/v1/events/batch", json={"events": [custom(1), 7, "x"]}, headers=tenant.headers
    )
    body = assert_problem(r, 422, "validation_error")
    assert [e["loc"][-1] for e in body["errors"]] == [1, 2]
    assert row_counts(db)["events"] == 0


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("type", "PURCHASE", "use lower-case letters"),
        ("occurred_at", "31/01/2026", "ISO 8601 with its UTC offset"),
        ("occurred_at", "2026-01-31T23:30:00", "with its UTC offset"),
    ],
)
def test_common_mistakes_are_answered_with_what_to_write(
    client: TestClient, tenant: TenantFixture, field: str, value: str, words: str
) -> None:
    """Pydantic's own words ("String should match pattern '^[a-z]...'", "invalid character
    in year") say what is wrong, not what to write: replaced, one by one and in a batch."""
    r = client.post("/v1/events", json=purchase(**{field: value}), headers=tenant.headers)
    body = assert_problem(r, 422, "validation_error")
    assert words in body["detail"], body["detail"]
    r = client.post(
        "/v1/events/batch",
        json={"events": [purchase(**{field: value})]},
        headers=tenant.headers,
    )
    assert words in r.json()["results"][0]["error"]["detail"]


def test_the_event_type_pattern_is_the_one_explained() -> None:
    from setia.core import errors
    from setia.events.schemas import EVENT_TYPE_PATTERN

    assert errors._EVENT_TYPE_PATTERN == EVENT_TYPE_PATTERN
