"""Holds (two-phase redemption): capture all or part, void, expire; each resolved once."""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from setia.core.db import Database
from setia.core.time import utcnow
from setia.jobs.service import run_due
from setia.ledger import service as ledger
from setia.ledger.models import REDEEMED, Account, Lot, LotMovement, Transfer
from setia.programs.models import Program
from tests.conftest import TenantFixture
from tests.events.helpers import purchase, refund
from tests.ledger.support import (
    assert_db_sound,
    balance,
    count_transfers,
    new_member,
    tx,
)


def grant(
    db: Database,
    t: TenantFixture,
    member_id: uuid.UUID,
    points: int,
    expires_at: datetime | None,
    key: str,
) -> uuid.UUID:
    """A lot of ``points`` with its own expiry date (a manual adjustment)."""
    ctx = ledger.Context(
        program_id=t.program_id,
        idempotency_key=key,
        request_hash=ledger.request_hash({"grant": key}),
        source_type="adjustment",
    )
    res = tx(
        db,
        lambda s: ledger.adjust(
            s, ctx, member_id=member_id, delta=points, earned_at=utcnow(), expires_at=expires_at
        ),
    )
    assert res.lot_id is not None
    return res.lot_id


def remaining(db: Database, *lot_ids: uuid.UUID) -> list[int]:
    rows = dict(
        tx(db, lambda s: s.execute(select(Lot.id, Lot.remaining).where(Lot.id.in_(lot_ids))).all())
    )
    return [int(rows[i]) for i in lot_ids]


def hold(
    client: TestClient, t: TenantFixture, member_id: uuid.UUID, points: int, **kw: object
) -> dict[str, Any]:
    r = client.post(
        f"/v1/members/{member_id}/points/holds", json={"points": points, **kw}, headers=t.headers
    )
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "open"
    out: dict[str, Any] = r.json()
    return out


def redeemed_total(db: Database, t: TenantFixture) -> int:
    """Points spent for good: what the program's REDEEMED account has received, net."""
    return tx(
        db,
        lambda s: int(
            s.execute(
                select(Account.credits_posted - Account.debits_posted).where(
                    Account.program_id == t.program_id, Account.code == REDEEMED
                )
            ).scalar_one()
        ),
    )


def test_partial_capture_returns_the_rest_to_the_lots_it_came_from(
    db: Database, client: TestClient, tenant: TenantFixture
) -> None:
    member = new_member(db, tenant, "C-1")
    now = utcnow()
    soon = grant(db, tenant, member, 100, now + timedelta(days=10), "soon")
    late = grant(db, tenant, member, 100, now + timedelta(days=60), "late")
    never = grant(db, tenant, member, 100, None, "never")
    other = new_member(db, tenant, "C-2")
    other_lot = grant(db, tenant, other, 100, now + timedelta(days=5), "other")

    # The hold takes the soonest-expiring points first: all of `soon`, 50 of `late`.
    h = hold(client, tenant, member, 150)
    assert remaining(db, soon, late, never) == [0, 50, 100]
    b = balance(db, tenant, member, now)
    assert (b["available"], b["held"]) == (150, 150)

    r = client.post(
        f"/v1/holds/{h['hold_id']}/capture", json={"points": 60}, headers=tenant.headers
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "captured"
    assert r.json()["resolution"]["points"] == 60
    # 90 go back, to the lots they came from, the latest-expiring first: `late` gets its 50
    # back and `soon` 40, so the 60 spent are the soonest-expiring points.
    assert remaining(db, soon, late, never, other_lot) == [40, 100, 100, 100]
    b = balance(db, tenant, member, now)
    assert (b["available"], b["held"]) == (240, 0)
    assert redeemed_total(db, tenant) == 60

    def moved_back(s: Session) -> dict[uuid.UUID, int]:
        capture = s.execute(select(Transfer.id).where(Transfer.kind == "POST_PENDING")).scalar_one()
        rows = s.execute(
            select(LotMovement.lot_id, LotMovement.amount).where(LotMovement.transfer_id == capture)
        ).all()
        return {lot: int(n) for lot, n in rows}

    assert tx(db, moved_back) == {late: 50, soon: 40}
    assert_db_sound(db)


def test_full_capture_spends_the_whole_hold(
    db: Database, client: TestClient, tenant: TenantFixture
) -> None:
    member = new_member(db, tenant, "C-1")
    grant(db, tenant, member, 100, None, "g")
    h = hold(client, tenant, member, 70)
    r = client.post(f"/v1/holds/{h['hold_id']}/capture", json={}, headers=tenant.headers)
    assert r.status_code == 200
    assert r.json()["resolution"]["points"] == 70
    b = balance(db, tenant, member, utcnow())
    assert (b["available"], b["held"], b["lifetime"]["redeemed"]) == (30, 0, 70)
    again = client.post(f"/v1/holds/{h['hold_id']}/capture", json={}, headers=tenant.headers)
    assert again.status_code == 409
    assert again.json()["code"] == "hold_not_open"
    assert redeemed_total(db, tenant) == 70
    # no body at all: the whole hold too (as documented)
    h = hold(client, tenant, member, 20)
    r = client.post(f"/v1/holds/{h['hold_id']}/capture", headers=tenant.headers)
    assert r.status_code == 200, r.text
    assert r.json()["resolution"]["points"] == 20
    assert redeemed_total(db, tenant) == 90
    assert_db_sound(db)


def test_void_twice_is_409_hold_not_open(
    db: Database, client: TestClient, tenant: TenantFixture
) -> None:
    member = new_member(db, tenant, "C-1")
    lot = grant(db, tenant, member, 100, None, "g")
    h = hold(client, tenant, member, 100)
    assert remaining(db, lot) == [0]
    first = client.post(f"/v1/holds/{h['hold_id']}/void", headers=tenant.headers)
    assert first.status_code == 200
    assert first.json()["status"] == "voided"
    assert remaining(db, lot) == [100]
    for action, body in (("void", None), ("capture", {}), ("capture", {"points": 1})):
        r = client.post(f"/v1/holds/{h['hold_id']}/{action}", json=body, headers=tenant.headers)
        assert r.status_code == 409, (action, r.text)
        assert r.json()["code"] == "hold_not_open"
    assert (
        client.get(f"/v1/holds/{h['hold_id']}", headers=tenant.headers).json()["status"] == "voided"
    )
    b = balance(db, tenant, member, utcnow())
    assert (b["available"], b["held"]) == (100, 0)
    assert count_transfers(db, tenant.program_id, pending_id=uuid.UUID(h["hold_id"])) == 1
    assert redeemed_total(db, tenant) == 0
    assert_db_sound(db)


def test_retried_capture_with_the_same_key_is_done_once(
    db: Database, client: TestClient, tenant: TenantFixture
) -> None:
    member = new_member(db, tenant, "C-1")
    grant(db, tenant, member, 100, None, "g")
    h = hold(client, tenant, member, 80)
    headers = {**tenant.headers, "Idempotency-Key": "cap-1"}
    url = f"/v1/holds/{h['hold_id']}/capture"
    first = client.post(url, json={"points": 50}, headers=headers)
    again = client.post(url, json={"points": 50}, headers=headers)
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json()
    other = client.post(url, json={"points": 40}, headers=headers)
    assert other.status_code == 409
    assert other.json()["code"] == "idempotency_key_reused"
    b = balance(db, tenant, member, utcnow())
    assert (b["available"], b["held"], b["lifetime"]["redeemed"]) == (50, 0, 50)
    assert_db_sound(db)


def test_capture_more_than_held_is_refused_and_the_hold_stays_open(
    db: Database, client: TestClient, tenant: TenantFixture
) -> None:
    member = new_member(db, tenant, "C-1")
    grant(db, tenant, member, 100, None, "g")
    h = hold(client, tenant, member, 40)
    r = client.post(
        f"/v1/holds/{h['hold_id']}/capture", json={"points": 41}, headers=tenant.headers
    )
    assert r.status_code == 409
    assert r.json()["code"] == "capture_exceeds_hold"
    assert (
        client.get(f"/v1/holds/{h['hold_id']}", headers=tenant.headers).json()["status"] == "open"
    )
    r = client.post(
        f"/v1/holds/{h['hold_id']}/capture", json={"points": 40}, headers=tenant.headers
    )
    assert r.status_code == 200
    assert_db_sound(db)


def test_hold_beyond_the_balance_is_409_insufficient_points(
    db: Database, client: TestClient, tenant: TenantFixture
) -> None:
    member = new_member(db, tenant, "C-1")
    grant(db, tenant, member, 100, None, "g")
    hold(client, tenant, member, 60)
    # Held points are not available: only 40 are left to hold or redeem.
    for path in ("holds", "redeem"):
        r = client.post(
            f"/v1/members/{member}/points/{path}", json={"points": 41}, headers=tenant.headers
        )
        assert r.status_code == 409
        assert r.json()["code"] == "insufficient_points"
        assert r.json()["available"] == 40
    assert_db_sound(db)


def test_unresolved_hold_expires_through_the_job(
    db: Database, client: TestClient, tenant: TenantFixture
) -> None:
    member = new_member(db, tenant, "C-1")
    soon = grant(db, tenant, member, 50, utcnow() + timedelta(days=3), "soon")
    never = grant(db, tenant, member, 50, None, "never")
    h = hold(client, tenant, member, 80, timeout_minutes=5)
    expires = datetime.fromisoformat(h["expires_at"])
    assert timedelta(minutes=4) < expires - utcnow() <= timedelta(minutes=5)
    assert remaining(db, soon, never) == [0, 20]

    report = run_due(db, now=expires - timedelta(seconds=1))
    assert (report.expired_holds, report.errors) == (0, [])
    assert (
        client.get(f"/v1/holds/{h['hold_id']}", headers=tenant.headers).json()["status"] == "open"
    )

    report = run_due(db, now=expires)
    assert (report.expired_holds, report.errors) == (1, [])
    got = client.get(f"/v1/holds/{h['hold_id']}", headers=tenant.headers).json()
    assert got["status"] == "expired"
    assert got["resolution"]["points"] == 80
    assert remaining(db, soon, never) == [50, 50]
    b = balance(db, tenant, member, utcnow())
    assert (b["available"], b["held"]) == (100, 0)

    for action in ("capture", "void"):
        r = client.post(f"/v1/holds/{h['hold_id']}/{action}", json={}, headers=tenant.headers)
        assert r.status_code == 409
        assert r.json()["code"] == "hold_not_open"
    assert run_due(db, now=expires + timedelta(days=1)).expired_holds == 0
    assert count_transfers(db, tenant.program_id, pending_id=uuid.UUID(h["hold_id"])) == 1
    assert redeemed_total(db, tenant) == 0
    assert_db_sound(db)


def test_captured_hold_is_not_expired_by_the_job(
    db: Database, client: TestClient, tenant: TenantFixture
) -> None:
    member = new_member(db, tenant, "C-1")
    grant(db, tenant, member, 100, None, "g")
    h = hold(client, tenant, member, 30, timeout_minutes=1)
    r = client.post(f"/v1/holds/{h['hold_id']}/capture", json={}, headers=tenant.headers)
    assert r.status_code == 200
    report = run_due(db, now=utcnow() + timedelta(hours=1))
    assert report.expired_holds == 0
    b = balance(db, tenant, member, utcnow())
    assert (b["available"], b["held"], b["lifetime"]["redeemed"]) == (70, 0, 30)
    assert_db_sound(db)


def test_hold_past_its_timeout_cannot_be_captured_before_the_job_runs(
    db: Database, client: TestClient, tenant: TenantFixture
) -> None:
    """A hold is a reservation with a deadline: once it has passed, the points are on their way
    back to the member, even if the expiry job has not run yet. Capturing then is 409."""
    member = new_member(db, tenant, "C-1")
    grant(db, tenant, member, 100, None, "g")
    ctx = ledger.Context(
        program_id=tenant.program_id,
        idempotency_key="short-hold",
        request_hash=ledger.request_hash({"hold": 60}),
    )
    res = tx(
        db,
        lambda s: ledger.spend(
            s, ctx, member_id=member, amount=60, hold_for=timedelta(milliseconds=50)
        ),
    )
    time.sleep(0.2)
    r = client.post(f"/v1/holds/{res.transfer_id}/capture", json={}, headers=tenant.headers)
    assert r.status_code == 409, r.text
    assert r.json()["code"] == "hold_not_open"
    assert redeemed_total(db, tenant) == 0
    # Voiding it is still fine (the points go back either way), and only once.
    r = client.post(f"/v1/holds/{res.transfer_id}/void", headers=tenant.headers)
    assert r.status_code == 200
    b = balance(db, tenant, member, utcnow())
    assert (b["available"], b["held"]) == (100, 0)
    assert run_due(db, now=utcnow()).expired_holds == 0
    assert_db_sound(db)


def allow_transfers(db: Database, t: TenantFixture) -> None:
    with db.session() as s:
        s.execute(
            update(Program).where(Program.id == t.program_id).values(allow_member_transfers=True)
        )
        s.commit()


def indebted(
    db: Database, client: TestClient, t: TenantFixture, phone: str, tag: str
) -> tuple[uuid.UUID, dict[str, Any]]:
    """A member whose order (100 points) was refunded while 80 of them were held: 80 owed."""
    r = client.post(
        "/v1/events",
        json=purchase(f"{tag}-buy", member={"phone": phone}, amount="100000"),
        headers=t.headers,
    )
    assert r.status_code == 201, r.text
    member = uuid.UUID(r.json()["member_id"])
    held = hold(client, t, member, 80)
    r = client.post(
        "/v1/events",
        json=refund(f"{tag}-refund", f"O-{tag}-buy", member={"phone": phone}, amount="100000"),
        headers=t.headers,
    )
    assert r.status_code == 201, r.text
    b = balance(db, t, member, utcnow())
    assert (b["available"], b["held"], b["debt"]) == (0, 80, 80)
    return member, held


def test_points_a_hold_gives_back_repay_a_debt_first(
    db: Database, client: TestClient, tenant: TenantFixture
) -> None:
    """A refund while points are held leaves a debt; what the void (or the rest of a partial
    capture) gives back repays it before the member can spend it again."""
    h = tenant.headers
    for n, (action, body, left) in enumerate(
        (("void", None, (0, 0)), ("capture", {"points": 30}, (0, 30)))
    ):
        member, held = indebted(db, client, tenant, f"0812-5555-000{n}", f"p{n}")
        r = client.post(f"/v1/holds/{held['hold_id']}/{action}", json=body, headers=h)
        assert r.status_code == 200, r.text
        b = balance(db, tenant, member, utcnow())
        assert (b["available"], b["debt"]) == left, action
        spend = client.post(f"/v1/members/{member}/points/redeem", json={"points": 1}, headers=h)
        assert spend.status_code == 409, spend.text
    assert_db_sound(db)


def test_a_retried_operation_answers_what_the_first_did(
    db: Database, client: TestClient, tenant: TenantFixture
) -> None:
    """Redeem, adjust (both ways) and transfer, each sent twice with one Idempotency-Key: the
    retry is done once and answers the first answer's amounts (a debt repaid included)."""
    allow_transfers(db, tenant)
    ani, budi = new_member(db, tenant, "C-1"), new_member(db, tenant, "C-2")
    grant(db, tenant, ani, 500, None, "g")
    calls = [
        (f"/v1/members/{ani}/points/redeem", {"points": 60}, {"amount": 60}),
        (f"/v1/members/{ani}/points/adjust", {"points": 40, "reason": "goodwill"}, None),
        (f"/v1/members/{ani}/points/adjust", {"points": -30, "reason": "typo"}, None),
        (f"/v1/members/{ani}/points/transfer", {"to_member_id": str(budi), "points": 25}, None),
    ]
    for n, (url, body, expected) in enumerate(calls):
        headers = {**tenant.headers, "Idempotency-Key": f"op-{n}"}
        first = client.post(url, json=body, headers=headers)
        assert first.status_code == 201, first.text
        again = client.post(url, json=body, headers=headers)
        assert again.status_code == 200, again.text
        assert again.json()["amounts"] == first.json()["amounts"], url
        assert first.json()["amounts"], url
        if expected is not None:
            assert first.json()["amounts"] == expected
        assert again.json()["transfer_id"] == first.json()["transfer_id"]
    b = balance(db, tenant, ani, utcnow())
    assert b["available"] == 500 - 60 + 40 - 30 - 25
    assert_db_sound(db)


def test_a_retried_resolution_or_transfer_answers_the_debt_it_repaid(
    db: Database, client: TestClient, tenant: TenantFixture
) -> None:
    """With a debt to repay, a retried void, partial capture and transfer answer the same
    ``debt_repaid`` as the first call, and repay nothing more."""
    allow_transfers(db, tenant)
    h = tenant.headers

    member, held = indebted(db, client, tenant, "0812-6666-0000", "d0")
    for _ in range(2):  # the retry with the same key is the first call's answer
        r = client.post(
            f"/v1/holds/{held['hold_id']}/capture",
            json={"points": 30},
            headers={**h, "Idempotency-Key": "cap"},
        )
        assert r.status_code == 200, r.text
    b = balance(db, tenant, member, utcnow())
    assert (b["available"], b["debt"]) == (0, 30)

    # the ledger's own answers (what the API's holds do not show): first and retry alike
    _other, held2 = indebted(db, client, tenant, "0812-6666-0001", "d1")
    with db.session() as s:
        hold_row = ledger.get_hold(s, [tenant.program_id], uuid.UUID(held2["hold_id"]))
        ctx = ledger.Context(
            program_id=tenant.program_id,
            idempotency_key="void-1",
            request_hash=ledger.request_hash({"void": held2["hold_id"]}),
            source_type="test",
        )
        first = ledger.resolve_hold(s, ctx, hold_row, action="void")
        s.commit()
    with db.session() as s:
        hold_row = ledger.get_hold(s, [tenant.program_id], uuid.UUID(held2["hold_id"]))
        again = ledger.resolve_hold(
            s,
            ledger.Context(
                program_id=tenant.program_id,
                idempotency_key="void-1",
                request_hash=ledger.request_hash({"void": held2["hold_id"]}),
                source_type="test",
            ),
            hold_row,
            action="void",
        )
    assert first.amounts == again.amounts == {"released": 80, "debt_repaid": 80}
    assert (first.created, again.created) == (True, False)

    # a transfer to a member in debt repays it; the retry says so again
    giver = new_member(db, tenant, "G-1")
    grant(db, tenant, giver, 100, None, "gift")
    third, _held3 = indebted(db, client, tenant, "0812-6666-0002", "d2")
    body = {"to_member_id": str(third), "points": 50}
    answers = [
        client.post(
            f"/v1/members/{giver}/points/transfer",
            json=body,
            headers={**h, "Idempotency-Key": "tr"},
        )
        for _ in range(2)
    ]
    assert [a.status_code for a in answers] == [201, 200]
    assert answers[0].json()["amounts"] == answers[1].json()["amounts"]
    assert answers[0].json()["amounts"] == {"amount": 50, "debt_repaid": 50}
    assert balance(db, tenant, third, utcnow())["debt"] == 30
    assert_db_sound(db)
