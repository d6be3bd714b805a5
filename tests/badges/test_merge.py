"""Member merge: badge progress follows the member into the survivor, the further of two
rows for the same badge wins, and nothing is rewarded twice."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from setia.badges.models import BadgeDefinition, BadgeProgress
from setia.core.db import Database
from setia.ledger.models import Transfer
from setia.members.models import Member
from tests.badges.support import custom, define, progress, progress_rows, purchase, send
from tests.conftest import TenantFixture
from tests.ledger.support import assert_db_sound


def _id(db: Database, external_id: str) -> str:
    with db.session() as s:
        return str(
            s.execute(select(Member.id).where(Member.external_id == external_id)).scalar_one()
        )


def test_merge_moves_progress_and_keeps_the_further_row(
    client: TestClient, db: Database, tenant: TenantFixture
) -> None:
    t = tenant
    define(
        client,
        t,
        "lima",
        {"event_type": "purchase", "measure": "count", "target": 5},
        rewards={"points": 300},
    )
    define(client, t, "ulasan", {"event_type": "review.submitted", "measure": "first", "target": 1})
    define(client, t, "tiga", {"event_type": "purchase", "measure": "count", "target": 3})
    # The duplicate record completed "lima" (and was rewarded); the survivor is at 2 of 5.
    send(client, t, *[purchase("DUP", f"2026-10-0{d}T09:00:00+07:00") for d in range(1, 6)])
    send(client, t, custom("DUP", "2026-10-06T09:00:00+07:00", "review.submitted"))
    send(client, t, *[purchase("KEEP", f"2026-10-0{d}T10:00:00+07:00") for d in range(1, 3)])
    assert progress(db, t, "DUP", "lima")["completed_at"] is not None
    assert progress(db, t, "KEEP", "lima")["value"] == "2"
    assert progress(db, t, "KEEP", "tiga")["value"] == "2"  # the survivor's "tiga": 2 vs 3

    keep, dup = _id(db, "KEEP"), _id(db, "DUP")
    r = client.post(
        f"/v1/members/{keep}/merge",
        json={"source_member_id": dup, "reason": "same person, new phone"},
        headers=t.headers,
    )
    assert r.status_code == 200, r.text

    # The source's completed "lima" replaced the survivor's 2 of 5; "ulasan" moved as it was;
    # for "tiga" the source's 3 (completed) beat the survivor's 2.
    with db.session() as s:
        owners = set(
            s.execute(
                select(BadgeDefinition.code)
                .join(BadgeProgress, BadgeProgress.definition_id == BadgeDefinition.id)
                .join(Member, Member.id == BadgeProgress.member_id)
                .where(Member.external_id == "KEEP", BadgeProgress.completed_at.is_not(None))
            ).scalars()
        )
    left = {
        (r["code"], r["value"], r["completed_at"])
        for r in progress_rows(db, t)
        if r["member"] == "DUP"
    }
    # the survivor's own "lima" (2 of 5) and "tiga" (2 of 3), as history
    assert left == {("lima", "2", None), ("tiga", "2", None)}
    assert progress(db, t, "KEEP", "lima")["value"] == "5"
    assert progress(db, t, "KEEP", "tiga")["value"] == "3"
    assert set(owners) == {"lima", "ulasan", "tiga"}
    member = client.get(f"/v1/members/{keep}", headers=t.headers).json()
    assert sorted(member["badges"]) == ["lima", "tiga", "ulasan"]
    view = client.get(f"/v1/members/{keep}/badges", headers=t.headers)
    assert view.status_code == 200, view.text

    # Buying more does not earn "lima" again: it was completed (and rewarded) once.
    send(client, t, purchase("KEEP", "2026-10-09T10:00:00+07:00"))
    with db.session() as s:
        rewards = s.execute(
            select(func.count()).select_from(Transfer).where(Transfer.source_type == "badge")
        ).scalar_one()
    assert rewards == 1
    assert_db_sound(db)
