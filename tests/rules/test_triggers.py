"""Non-purchase earning: signup bonus (API and auto-created members), birthday and
anniversary by the daily job in the member's time zone, and custom events."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select

from setia.core.db import Database
from setia.jobs.service import run_due
from setia.ledger.models import Transfer
from setia.ledger.verify import verify
from setia.members.models import Member
from setia.rules.models import RuleAward
from tests.conftest import TenantFixture
from tests.rules.helpers import Api, by_rule, counts, local, not_fired


def earn_transfers(db: Database, member_id: str) -> list[tuple[int, str | None]]:
    with db.session() as s:
        from setia.ledger.models import Account

        rows = s.execute(
            select(Transfer.amount, Transfer.source_id)
            .join(Account, Account.id == Transfer.credit_account_id)
            .where(Account.member_id == uuid.UUID(member_id), Transfer.code == "EARN")
            .order_by(Transfer.id)
        ).all()
        return [(int(a), s_id) for a, s_id in rows]


def sound(db: Database) -> None:
    with db.session() as s:
        report = verify(s)
        assert report.ok, report.checks


def signup_rule(api: Api, points: int = 1000, **kw: Any) -> dict[str, Any]:
    return api.add_rule(
        name="Welcome", triggers=["member.signup"], effect={"type": "fixed", "points": points}, **kw
    )


# --------------------------------------------------------------------------- signup


def test_signup_bonus_via_post_members(api: Api, db: Database) -> None:
    signup_rule(api)
    api.add_rule(
        name="Welcome tag",
        triggers=["member.signup"],
        effect={"type": "add_tag", "tag": "new"},
    )
    r = api.post("/v1/members", {"external_id": "C-1", "name": "Siti"})
    assert r.status_code == 201, r.text
    member_id = r.json()["id"]
    assert api.balance(member_id)["available"] == 1000
    assert api.get(f"/v1/members/{member_id}").json()["tags"] == ["new"]
    transfers = earn_transfers(db, member_id)
    assert transfers == [(1000, f"signup:{api.tenant.program_id}:{member_id}")]
    # A purchase later is not a signup.
    res = api.purchase(10_000, member="C-1")
    assert by_rule(res) == {"Base earn rate": 10}
    assert api.balance(member_id)["available"] == 1010
    sound(db)


def test_no_signup_rule_no_bonus(api: Api, db: Database) -> None:
    r = api.post("/v1/members", {"external_id": "C-1"})
    assert api.balance(r.json()["id"])["available"] == 0
    assert counts(db, ("rule_awards",)) == {"rule_awards": 0}


def test_signup_conditions_see_the_new_member(api: Api) -> None:
    signup_rule(api, conditions={"field": "member.tags", "op": "contains", "value": "mahasiswa"})
    student = api.post("/v1/members", {"external_id": "S", "tags": ["mahasiswa"]}).json()
    other = api.post("/v1/members", {"external_id": "O"}).json()
    assert api.balance(student["id"])["available"] == 1000
    assert api.balance(other["id"])["available"] == 0


def test_signup_bonus_for_a_member_created_by_their_first_purchase(api: Api, db: Database) -> None:
    signup_rule(api, points=500)
    first = api.purchase(20_000, member="walk-in")
    assert first["member_created"] is True
    member_id = first["member_id"]
    # The purchase result shows the purchase's awards; the signup bonus is its own award.
    assert by_rule(first) == {"Base earn rate": 20}
    second = api.purchase(20_000, member="walk-in")
    assert second["member_created"] is False
    assert api.balance(member_id)["available"] == 540
    assert sorted(earn_transfers(db, member_id)) == sorted(
        [
            (500, f"signup:{api.tenant.program_id}:{member_id}"),
            (20, _order(db, first["event_id"])),
            (20, _order(db, second["event_id"])),
        ]
    )
    with db.session() as s:
        rows = s.execute(select(RuleAward.trigger_key, RuleAward.points)).all()
    assert rows == [(f"signup:{api.tenant.program_id}:{member_id}:" + _rule_id(api), 500)]
    sound(db)


def _order(db: Database, event_id: str) -> str:
    from setia.events.models import Event

    with db.session() as s:
        order = s.execute(select(Event.order_id).where(Event.id == uuid.UUID(event_id))).scalar()
        assert order is not None
        return str(order)


def _rule_id(api: Api) -> str:
    return str(api.get("/v1/rules").json()[0]["id"])


def test_a_failed_first_purchase_leaves_no_member_and_no_bonus(api: Api, db: Database) -> None:
    signup_rule(api)
    before = counts(db)
    api.send(
        {"id": "bad", "type": "purchase", "member": {"external_id": "X"}, "order_id": "O-1",
         "amount": "10000", "currency": "MYR"},
        status=409,
    )  # fmt: skip
    assert counts(db) == before


# --------------------------------------------------------------------------- birthday


def birthday_rule(api: Api, points: int = 2000) -> dict[str, Any]:
    return api.add_rule(
        name="Birthday", triggers=["schedule.birthday"], effect={"type": "fixed", "points": points}
    )


def member(api: Api, external_id: str, **kw: Any) -> str:
    r = api.post("/v1/members", {"external_id": external_id, **kw})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def test_birthday_bonus_once_in_the_members_time_zone(api: Api, db: Database) -> None:
    birthday_rule(api)
    jayapura = member(api, "papua", birthday="1990-03-15", timezone="Asia/Jayapura")  # UTC+9
    jakarta = member(api, "jawa", birthday="1990-03-15")  # the tenant's zone, UTC+7
    other = member(api, "other", birthday="1990-03-16")
    # 14 Mar 15:30 UTC: 15 Mar 00:30 in Jayapura, still 14 Mar 22:30 in Jakarta.
    first = run_due(db, now=datetime(2026, 3, 14, 15, 30, tzinfo=UTC))
    assert first.triggered_awards == 1
    assert api.balance(jayapura)["available"] == 2000
    assert api.balance(jakarta)["available"] == 0
    # 17:30 UTC: 15 Mar 00:30 in Jakarta too. Jayapura's bonus is not given again.
    second = run_due(db, now=datetime(2026, 3, 14, 17, 30, tzinfo=UTC))
    assert second.triggered_awards == 1
    assert api.balance(jakarta)["available"] == 2000
    assert api.balance(jayapura)["available"] == 2000
    # Running again the same day, or later that day, gives nothing.
    for hour in (17, 23):
        assert run_due(db, now=datetime(2026, 3, 14, hour, 45, tzinfo=UTC)).triggered_awards == 0
    assert run_due(db, now=datetime(2026, 3, 15, 10, 0, tzinfo=UTC)).triggered_awards == 0
    assert api.balance(other)["available"] == 0
    assert run_due(db, now=datetime(2026, 3, 15, 17, 30, tzinfo=UTC)).triggered_awards == 1
    assert api.balance(other)["available"] == 2000
    # Next year, again once.
    assert run_due(db, now=datetime(2027, 3, 15, 3, 0, tzinfo=UTC)).triggered_awards == 2
    assert run_due(db, now=datetime(2027, 3, 15, 4, 0, tzinfo=UTC)).triggered_awards == 0
    assert api.balance(jakarta)["available"] == 4000
    sound(db)


def test_birthday_on_29_february(api: Api, db: Database) -> None:
    birthday_rule(api)
    leap = member(api, "leap", birthday="2000-02-29")
    # 2027 is not a leap year: the 28th counts, the 1st of March does not.
    assert run_due(db, now=datetime(2027, 2, 27, 5, tzinfo=UTC)).triggered_awards == 0
    assert run_due(db, now=datetime(2027, 2, 28, 5, tzinfo=UTC)).triggered_awards == 1
    assert run_due(db, now=datetime(2027, 2, 28, 6, tzinfo=UTC)).triggered_awards == 0
    assert run_due(db, now=datetime(2027, 3, 1, 5, tzinfo=UTC)).triggered_awards == 0
    assert api.balance(leap)["available"] == 2000
    # 2028 is: the 29th counts, the 28th does not.
    assert run_due(db, now=datetime(2028, 2, 28, 5, tzinfo=UTC)).triggered_awards == 0
    assert run_due(db, now=datetime(2028, 2, 29, 5, tzinfo=UTC)).triggered_awards == 1
    assert api.balance(leap)["available"] == 4000


def test_birthday_skips_disabled_rules_and_inactive_members(api: Api, db: Database) -> None:
    r = birthday_rule(api)
    m = member(api, "m", birthday="1990-06-01")
    erased = member(api, "gone", birthday="1990-06-01")
    gone = api.post(
        f"/v1/members/{erased}/erase", {"reason": "data subject request", "confirm": True}
    )
    assert gone.status_code == 200, gone.text
    api.post(f"/v1/rules/{r['id']}/disable")
    assert run_due(db, now=datetime(2026, 6, 1, 5, tzinfo=UTC)).triggered_awards == 0
    api.post(f"/v1/rules/{r['id']}/enable")
    assert run_due(db, now=datetime(2026, 6, 1, 6, tzinfo=UTC)).triggered_awards == 1
    assert api.balance(m)["available"] == 2000


def test_an_occasion_rewarded_by_a_rule_since_disabled_is_not_rewarded_again(
    api: Api, db: Database
) -> None:
    # The occasion's usage rows are looked up by exact key, one per rule of the program:
    # disabled rules count too, so a replacement rule does not give the same birthday twice.
    old = birthday_rule(api)
    m = member(api, "m", birthday="1990-06-01")
    assert run_due(db, now=datetime(2026, 6, 1, 5, tzinfo=UTC)).triggered_awards == 1
    api.post(f"/v1/rules/{old['id']}/disable")
    birthday_rule(api, points=3000)
    assert run_due(db, now=datetime(2026, 6, 1, 6, tzinfo=UTC)).triggered_awards == 0
    assert api.balance(m)["available"] == 2000
    # The next birthday is the replacement's.
    assert run_due(db, now=datetime(2027, 6, 1, 5, tzinfo=UTC)).triggered_awards == 1
    assert api.balance(m)["available"] == 5000
    sound(db)


def test_birthday_rule_with_conditions_and_tags(api: Api, db: Database) -> None:
    api.add_rule(
        name="Gold birthday",
        triggers=["schedule.birthday"],
        conditions={"field": "member.tags", "op": "contains", "value": "gold"},
        effect={"type": "fixed", "points": 5000},
    )
    gold = member(api, "g", birthday="1990-07-01", tags=["gold"])
    plain = member(api, "p", birthday="1990-07-01")
    assert run_due(db, now=datetime(2026, 7, 1, 5, tzinfo=UTC)).triggered_awards == 1
    assert api.balance(gold)["available"] == 5000
    assert api.balance(plain)["available"] == 0


def test_anniversary(api: Api, db: Database, tenant: TenantFixture) -> None:
    api.add_rule(
        name="Anniversary",
        triggers=["schedule.anniversary"],
        effect={"type": "fixed", "points": 300},
    )
    m = member(api, "a")
    with db.session() as s:
        row = s.get(Member, uuid.UUID(m))
        assert row is not None
        # Joined on 10 May 2025, 20:00 UTC: 11 May in Jakarta.
        row.created_at = datetime(2025, 5, 10, 20, 0, tzinfo=UTC)
    assert run_due(db, now=datetime(2026, 5, 10, 5, tzinfo=UTC)).triggered_awards == 0
    assert run_due(db, now=datetime(2026, 5, 11, 5, tzinfo=UTC)).triggered_awards == 1
    assert run_due(db, now=datetime(2026, 5, 11, 9, tzinfo=UTC)).triggered_awards == 0
    assert api.balance(m)["available"] == 300
    with db.session() as s:
        n = s.execute(select(func.count()).select_from(RuleAward)).scalar_one()
    assert n == 1


# --------------------------------------------------------------------------- custom events


def test_review_submitted_with_a_lifetime_limit_of_one(api: Api, db: Database) -> None:
    api.add_rule(
        name="First review",
        triggers=["review.submitted"],
        effect={"type": "fixed", "points": 200},
        limits=[{"period": "lifetime", "max_count": 1}],
    )
    first = api.custom("review.submitted", attributes={"rating": 5}, at=local(2026, 1, 5, 9))
    second = api.custom("review.submitted", attributes={"rating": 4}, at=local(2026, 2, 5, 9))
    other = api.custom("review.submitted", member="M2", at=local(2026, 2, 5, 9))
    assert first["points"]["earned"] == 200
    assert by_rule(first) == {"First review": 200}
    assert second["points"]["earned"] == 0
    assert not_fired(second)["First review"]["reason"] == "limit_reached"
    assert not_fired(second)["First review"]["details"] == {
        "period": "lifetime",
        "max_count": 1,
        "used_count": 1,
    }
    assert other["points"]["earned"] == 200
    assert api.balance(first["member_id"])["available"] == 200
    # A resent event returns the first answer and earns nothing more.
    again = api.send(
        {"id": first["id"], "type": "review.submitted", "member": {"external_id": "M1"},
         "attributes": {"rating": 5}, "occurred_at": local(2026, 1, 5, 9)},
        status=200,
    )  # fmt: skip
    assert again["points"] == first["points"]
    assert api.balance(first["member_id"])["available"] == 200
    sound(db)


def test_custom_events_earn_only_from_their_rules(api: Api) -> None:
    api.add_rule(name="Purchase bonus", effect={"type": "fixed", "points": 50})
    api.add_rule(
        name="Profile",
        triggers=["profile.completed", "app.installed"],
        effect={"type": "fixed", "points": 75},
    )
    assert api.custom("profile.completed")["points"]["earned"] == 75
    assert api.custom("app.installed")["points"]["earned"] == 75
    nothing = api.custom("store.visited")
    assert nothing["points"] == {"awards": [], "earned": 0, "not_fired": []}
