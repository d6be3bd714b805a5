"""POST /v1/events/batch: members auto-created by a batch are written together, and a batch
whose new members cannot be written (someone else wrote the identity first) still answers
every event as one by one would."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import event, func, insert, select
from sqlalchemy.orm import Session

from setia.core.db import Database, new_id
from setia.core.time import utcnow
from setia.ledger.models import Account
from setia.ledger.verify import verify
from setia.members.models import Member
from setia.outbox.models import OutboxMessage
from tests.conftest import TenantFixture
from tests.events.helpers import purchase


def _batch(client: TestClient, tenant: TenantFixture, events: list[dict[str, Any]]) -> Any:
    r = client.post("/v1/events/batch", json={"events": events}, headers=tenant.headers)
    assert r.status_code == 200, r.text
    return r.json()


def _check_ledger(db: Database) -> None:
    with db.session() as session:
        report = verify(session)
        assert report.ok, report


def test_new_members_of_a_batch_are_created_once_each_with_accounts_and_messages(
    client: TestClient, db: Database, tenant: TenantFixture
) -> None:
    known = client.post(
        "/v1/members", json={"phone": "0813-1111-2222"}, headers=tenant.headers
    ).json()["id"]
    events = [
        purchase("a1", member={"phone": "0812-3456-7890", "name": "Siti"}),
        purchase("b1", member={"external_id": "CUST-9", "email": "Budi@Mail.id"}),
        purchase("k1", member={"phone": "0813-1111-2222"}),
        purchase("a2", member={"phone": "+62 812 3456 7890"}),  # Siti again, another format
        purchase("c1", member={"phone": "0819-9999-0000"}),
        purchase("b2", member={"email": "budi@mail.id"}),  # Budi again, by email only
    ]
    out = _batch(client, tenant, events)
    assert (out["created"], out["failed"]) == (6, 0)
    res = {r["result"]["id"]: r["result"] for r in out["results"]}
    assert [res[e]["member_created"] for e in ("a1", "b1", "k1", "a2", "c1", "b2")] == [
        True,
        True,
        False,
        False,
        True,
        False,
    ]
    assert res["a2"]["member_id"] == res["a1"]["member_id"]
    assert res["b2"]["member_id"] == res["b1"]["member_id"]
    assert res["k1"]["member_id"] == known
    new_ids = [res[e]["member_id"] for e in ("a1", "b1", "c1")]
    assert len(set(new_ids)) == 3

    with db.session() as session:
        rows = {
            str(m.id): m
            for m in session.execute(select(Member).where(Member.tenant_id == tenant.tenant_id))
            .scalars()
            .all()
        }
        assert len(rows) == 4
        siti = rows[res["a1"]["member_id"]]
        assert (siti.phone, siti.name, siti.status) == ("+6281234567890", "Siti", "active")
        assert rows[res["b1"]["member_id"]].email == "budi@mail.id"
        assert rows[res["b1"]["member_id"]].external_id == "CUST-9"
        for mid in new_ids:
            accounts = session.execute(
                select(func.count()).select_from(Account).where(Account.member_id == rows[mid].id)
            ).scalar_one()
            assert accounts == 3
        created = session.execute(
            select(OutboxMessage.payload).where(OutboxMessage.topic == "member.created")
        ).scalars()
        assert sorted(p["member_id"] for p in created) == sorted([*new_ids, known])

    # Each purchase earned on the member it named: Siti and Budi twice, the rest once.
    one = res["c1"]["points"]["earned"]
    assert one > 0
    for mid, purchases in ((new_ids[0], 2), (new_ids[1], 2), (new_ids[2], 1), (known, 1)):
        balance = client.get(f"/v1/members/{mid}/balance", headers=tenant.headers).json()
        assert balance["available"] == one * purchases
    _check_ledger(db)

    # Replaying the batch creates nobody and answers the same.
    again = _batch(client, tenant, events)
    assert again["duplicates"] == 6
    assert [r["result"] for r in again["results"]] == [r["result"] for r in out["results"]]


def test_a_new_member_someone_else_wrote_first_sends_the_run_the_full_way(
    client: TestClient, db: Database, tenant: TenantFixture
) -> None:
    """Between the batch's look-up and its write another writer takes the phone of one of
    its new members (simulated inside the write: the unique constraint then refuses the
    set-based insert). Nothing of the set-based attempt is kept; every event of the run is
    recorded the full way, which finds or creates the members itself."""
    fired: list[bool] = []

    def other_writer(session: Session, _ctx: Any, _instances: Any) -> None:
        if fired or not any(isinstance(o, Member) for o in session.new):
            return
        fired.append(True)
        session.execute(
            insert(Member),
            {
                "id": new_id(),
                "tenant_id": tenant.tenant_id,
                "phone": "+6281900001111",
                "locale": "id",
                "tags": [],
                "attributes": {},
                "status": "active",
                "created_at": utcnow(),
                "updated_at": utcnow(),
            },
        )

    events = [
        purchase("x1", member={"phone": "0812-0000-1234"}),
        purchase("x2", member={"phone": "0819-0000-1111"}),
        purchase("x3", member={"phone": "0812-0000-1234"}),
    ]
    event.listen(Session, "before_flush", other_writer)
    try:
        out = _batch(client, tenant, events)
    finally:
        event.remove(Session, "before_flush", other_writer)
    assert fired == [True]
    assert (out["created"], out["failed"]) == (3, 0), out
    res = [r["result"] for r in out["results"]]
    assert [r["member_created"] for r in res] == [True, True, False]
    assert res[2]["member_id"] == res[0]["member_id"]
    with db.session() as session:
        phones = sorted(
            session.execute(select(Member.phone).where(Member.tenant_id == tenant.tenant_id))
            .scalars()
            .all()
        )
        assert phones == ["+6281200001234", "+6281900001111"]
    one = res[1]["points"]["earned"]
    for mid, purchases in ((res[0]["member_id"], 2), (res[1]["member_id"], 1)):
        balance = client.get(f"/v1/members/{mid}/balance", headers=tenant.headers).json()
        assert balance["available"] == one * purchases
    _check_ledger(db)
