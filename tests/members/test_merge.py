"""Merging a duplicate member into the survivor."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from setia.audit.models import AuditRecord
from setia.core.db import Database
from setia.events.models import Event, Order
from setia.ledger.models import Lot
from setia.ledger.verify import verify
from tests.conftest import TenantFixture, make_tenant
from tests.events.helpers import PROBLEM, purchase, refund, row_counts
from tests.members.test_api import enrol, problem

B = {"external_id": "B-1", "phone": "0822-2222-2222", "email": "budi@example.id"}


def post(client: TestClient, t: TenantFixture, url: str, body: dict[str, Any]) -> dict[str, Any]:
    r = client.post(url, json=body, headers=t.headers)
    assert r.status_code in (200, 201), r.text
    out: dict[str, Any] = r.json()
    return out


def balance(client: TestClient, t: TenantFixture, member_id: str) -> dict[str, Any]:
    r = client.get(f"/v1/members/{member_id}/balance", headers=t.headers)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def assert_ledger_sound(db: Database) -> None:
    with db.session() as session:
        report = verify(session)
    assert report.ok, report.checks


def test_merge_moves_points_pending_debt_orders_and_events(
    client: TestClient, db: Database, tenant: TenantFixture
) -> None:
    h = tenant.headers
    a = enrol(client, tenant, phone="0811-1111-1111", name="Ani")
    # B earns 100, spends 80, then the order is refunded: 20 taken back, 80 owed.
    b = post(
        client, tenant, "/v1/events", purchase("b1", member=B, order_id="OB1", amount="100000")
    )
    b_id = b["member_id"]
    post(client, tenant, f"/v1/members/{b_id}/points/redeem", {"points": 80})
    post(
        client,
        tenant,
        "/v1/events",
        refund("b2", "OB1", member={"external_id": "B-1"}, amount="100000"),
    )
    # A earns 500 (available at once); then points start to wait 14 days, and B earns 50.
    post(
        client,
        tenant,
        "/v1/events",
        purchase("a1", member={"phone": "0811-1111-1111"}, order_id="OA1", amount="500000"),
    )
    r = client.patch(f"/v1/programs/{tenant.program_id}", json={"pending_days": 14}, headers=h)
    assert r.status_code == 200, r.text
    post(
        client,
        tenant,
        "/v1/events",
        purchase("b3", member={"email": "budi@example.id"}, order_id="OB2", amount="50000"),
    )
    post(
        client,
        tenant,
        f"/v1/members/{b_id}/consents",
        {"channel": "whatsapp", "granted": True, "source": "pos-form"},
    )
    assert (balance(client, tenant, b_id)["debt"], balance(client, tenant, b_id)["pending"]) == (
        80,
        50,
    )
    assert balance(client, tenant, a["id"])["available"] == 500

    r = client.post(
        f"/v1/members/{a['id']}/merge",
        json={"source_member_id": b_id, "reason": "same person, two phones"},
        headers=h,
    )
    assert r.status_code == 200, r.text
    details = r.json()
    moved = details["moved"][str(tenant.program_id)]
    assert moved == {"points": 0, "pending": 50, "debt": 80, "debt_repaid": 80}

    survivor = balance(client, tenant, a["id"])
    assert (survivor["available"], survivor["pending"], survivor["debt"]) == (420, 50, 0)
    gone = balance(client, tenant, b_id)
    assert (gone["available"], gone["pending"], gone["debt"], gone["held"]) == (0, 0, 0, 0)
    # The survivor's lifetime is the person's: B's 150 earned, 80 redeemed and 20 taken back
    # by the refund count with A's 500; the merge's own moves count as none of these.
    assert survivor["lifetime"] == {"earned": 650, "redeemed": 80, "expired": 0, "reversed": 20}

    with db.session() as session:
        owners = dict(session.execute(select(Order.order_id, Order.member_id)).all())
        assert {k: str(v) for k, v in owners.items()} == {
            "OB1": a["id"],
            "OA1": a["id"],
            "OB2": a["id"],
        }
        by_member = dict(
            session.execute(select(Event.member_id, func.count()).group_by(Event.member_id)).all()
        )
        assert {str(k): v for k, v in by_member.items()} == {a["id"]: 4}
        lots = session.execute(select(Lot.member_id, Lot.remaining).where(Lot.remaining > 0)).all()
        assert {str(m) for m, _ in lots} == {a["id"]}
        assert sum(r for _, r in lots) == 470
        audit = session.execute(
            select(AuditRecord).where(AuditRecord.action == "member.merged")
        ).scalar_one()
        assert audit.subject_id == a["id"]
        assert audit.details["source"] == b_id
        assert audit.details["reason"] == "same person, two phones"
        assert audit.actor.startswith("api-key:")

    # The survivor took the identities it lacked; the source points to the survivor.
    survivor_row = client.get(f"/v1/members/{a['id']}", headers=h).json()
    assert (survivor_row["phone"], survivor_row["external_id"], survivor_row["email"]) == (
        "+6281111111111",
        "B-1",
        "budi@example.id",
    )
    source_row = client.get(f"/v1/members/{b_id}", headers=h).json()
    assert (source_row["status"], source_row["merged_into_id"]) == ("merged", a["id"])
    # Every old identity of B now finds A: by lookup, and when an event names it.
    for params in (
        {"external_id": "B-1"},
        {"phone": "0822-2222-2222"},
        {"email": "budi@example.id"},
    ):
        r = client.get("/v1/members/lookup", params=params, headers=h)
        assert r.json()["id"] == a["id"], params
    later = post(
        client,
        tenant,
        "/v1/events",
        purchase("b4", member={"phone": "0822-2222-2222"}, order_id="OB3", amount="10000"),
    )
    assert later["member_id"] == a["id"]
    # B's order can be refunded under the survivor.
    ref = post(
        client,
        tenant,
        "/v1/events",
        refund("b5", "OB2", member={"phone": "0822-2222-2222"}, amount="50000"),
    )
    assert ref["refund"]["points_reversed"] == 50
    # The merged member is closed for business.
    problem(
        client.post(f"/v1/members/{b_id}/points/redeem", json={"points": 1}, headers=h),
        409,
        "member_not_active",
    )
    assert_ledger_sound(db)


def test_merge_moves_available_points_with_their_lots(
    client: TestClient, db: Database, tenant: TenantFixture
) -> None:
    a = enrol(client, tenant, external_id="A-1")
    b = post(
        client, tenant, "/v1/events", purchase("b1", member=B, order_id="OB1", amount="100000")
    )
    r = client.post(
        f"/v1/members/{a['id']}/merge",
        json={"source_member_id": b["member_id"], "reason": "duplicate"},
        headers=tenant.headers,
    )
    assert r.status_code == 200, r.text
    assert balance(client, tenant, a["id"])["available"] == 100
    assert balance(client, tenant, b["member_id"])["available"] == 0
    # A keeps its own external id; B keeps its own, which still leads to A.
    assert (
        client.get(f"/v1/members/{a['id']}", headers=tenant.headers).json()["external_id"] == "A-1"
    )
    r = client.get("/v1/members/lookup", params={"external_id": "B-1"}, headers=tenant.headers)
    assert r.json()["id"] == a["id"]
    # The points can be spent by the survivor: the lots moved with them.
    r = client.post(
        f"/v1/members/{a['id']}/points/redeem", json={"points": 100}, headers=tenant.headers
    )
    assert r.status_code == 201, r.text
    assert_ledger_sound(db)


def test_the_survivors_identity_with_a_duplicates_is_the_survivor(
    client: TestClient, db: Database, tenant: TenantFixture
) -> None:
    """A (C1, one phone) absorbed B (another phone): an event or a look-up naming C1 and B's
    phone is A's, one by one and in a batch."""
    h = tenant.headers
    a = enrol(client, tenant, external_id="C1", phone="0811-1111-1111")["id"]
    b = enrol(client, tenant, phone="0822-2222-2222")["id"]
    r = client.post(
        f"/v1/members/{a}/merge", json={"source_member_id": b, "reason": "same person"}, headers=h
    )
    assert r.status_code == 200, r.text
    both = {"external_id": "C1", "phone": "0822-2222-2222"}
    r = client.get("/v1/members/lookup", params=both, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["id"] == a
    one = post(client, tenant, "/v1/events", purchase("x1", member=both, order_id="OX1"))
    assert one["member_id"] == a
    r = client.post(
        "/v1/events/batch",
        json={"events": [purchase("x2", member=both, order_id="OX2")]},
        headers=h,
    )
    assert r.status_code in (200, 201), r.text
    assert r.json()["results"][0]["status"] == 201, r.text
    assert r.json()["results"][0]["result"]["member_id"] == a
    # two different people are still two
    c = enrol(client, tenant, phone="0833-3333-3333")["id"]
    r = client.get(
        "/v1/members/lookup", params={"external_id": "C1", "phone": "0833-3333-3333"}, headers=h
    )
    assert c in problem(r, 409, "member_identity_taken")["detail"]
    assert_ledger_sound(db)


def test_lifetime_follows_a_chain_of_merges(
    client: TestClient, db: Database, tenant: TenantFixture
) -> None:
    """C merged into B, then B into A: A's lifetime holds all three; a member that never had
    an account in the program adds nothing and breaks nothing."""
    h = tenant.headers
    a = enrol(client, tenant, external_id="A-1")["id"]
    b = post(
        client, tenant, "/v1/events", purchase("b1", member=B, order_id="OB1", amount="100000")
    )["member_id"]
    c = post(
        client,
        tenant,
        "/v1/events",
        purchase("c1", member={"external_id": "C-1"}, order_id="OC1", amount="30000"),
    )["member_id"]
    post(client, tenant, f"/v1/members/{c}/points/redeem", {"points": 10})
    d = enrol(client, tenant, external_id="D-1")["id"]  # no purchase: no account yet
    for survivor, source in ((b, c), (a, b), (a, d)):
        r = client.post(
            f"/v1/members/{survivor}/merge",
            json={"source_member_id": source, "reason": "duplicate"},
            headers=h,
        )
        assert r.status_code == 200, r.text
    after = balance(client, tenant, a)
    assert after["available"] == 120
    assert after["lifetime"] == {"earned": 130, "redeemed": 10, "expired": 0, "reversed": 0}
    # The merged records themselves still tell their own story.
    assert balance(client, tenant, c)["lifetime"]["earned"] == 30
    assert balance(client, tenant, b)["lifetime"]["earned"] == 130
    assert_ledger_sound(db)


def test_open_holds_refuse_the_merge(
    client: TestClient, db: Database, tenant: TenantFixture
) -> None:
    h = tenant.headers
    a = enrol(client, tenant, external_id="A-1")
    b = post(
        client, tenant, "/v1/events", purchase("b1", member=B, order_id="OB1", amount="100000")
    )
    hold = post(client, tenant, f"/v1/members/{b['member_id']}/points/holds", {"points": 30})
    before = row_counts(db, ("ledger_transfers", "ledger_entries", "audit_log", "events", "orders"))
    body = {"source_member_id": b["member_id"], "reason": "duplicate"}
    r = client.post(f"/v1/members/{a['id']}/merge", json=body, headers=h)
    assert r.status_code == 409, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    assert r.json()["code"] == "member_has_open_holds"
    assert (
        row_counts(db, ("ledger_transfers", "ledger_entries", "audit_log", "events", "orders"))
        == before
    )
    assert client.get(f"/v1/members/{b['member_id']}", headers=h).json()["status"] == "active"
    # Once the hold is voided, the merge goes through and all 100 points move.
    assert client.post(f"/v1/holds/{hold['hold_id']}/void", headers=h).status_code == 200
    r = client.post(f"/v1/members/{a['id']}/merge", json=body, headers=h)
    assert r.status_code == 200, r.text
    assert balance(client, tenant, a["id"])["available"] == 100
    assert_ledger_sound(db)


def test_merge_refusals(client: TestClient, db: Database, tenant: TenantFixture) -> None:
    h = tenant.headers
    a = enrol(client, tenant, external_id="A-1")
    b = enrol(client, tenant, external_id="B-1")
    c = enrol(client, tenant, external_id="C-1")
    problem(
        client.post(
            f"/v1/members/{a['id']}/merge",
            json={"source_member_id": a["id"], "reason": "self"},
            headers=h,
        ),
        422,
        "invalid_input",
    )
    assert (
        client.post(
            f"/v1/members/{a['id']}/merge",
            json={"source_member_id": b["id"], "reason": "dup"},
            headers=h,
        ).status_code
        == 200
    )
    # B is merged already: neither side of another merge.
    problem(
        client.post(
            f"/v1/members/{c['id']}/merge",
            json={"source_member_id": b["id"], "reason": "dup"},
            headers=h,
        ),
        409,
        "member_not_active",
    )
    problem(
        client.post(
            f"/v1/members/{b['id']}/merge",
            json={"source_member_id": c["id"], "reason": "dup"},
            headers=h,
        ),
        409,
        "member_not_active",
    )
    # Another tenant's member is not found, whichever side it is on.
    other = make_tenant(db, name="Batik Sari")
    stranger = enrol(client, other, external_id="S-1")
    problem(
        client.post(
            f"/v1/members/{a['id']}/merge",
            json={"source_member_id": stranger["id"], "reason": "dup"},
            headers=h,
        ),
        404,
        "member_not_found",
    )
    problem(
        client.post(
            f"/v1/members/{stranger['id']}/merge",
            json={"source_member_id": c["id"], "reason": "dup"},
            headers=h,
        ),
        404,
        "member_not_found",
    )
    assert client.get(f"/v1/members/{c['id']}", headers=h).json()["status"] == "active"
