"""Membership-anniversary windows, counted from the member's enrolment day (Jakarta)."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time, timedelta

from dateutil.relativedelta import relativedelta
from sqlalchemy import select

from setia.core.db import Database
from setia.core.time import as_utc
from setia.members.models import Member
from tests.rules.helpers import JKT, Api
from tests.tiers.conftest import Clock
from tests.tiers.helpers import code_of, evaluate, member_id, outbox, setup, view


def at(day: date, hh: int = 12, mm: int = 0) -> str:
    return datetime.combine(day, time(hh, mm), tzinfo=JKT).isoformat()


def test_anniversary_windows(api: Api, db: Database, clock: Clock) -> None:
    setup(api, window={"kind": "anniversary_year"})
    m = member_id(api.custom("app.opened"))  # enrols the member today
    with db.session() as s:
        created = s.execute(select(Member.created_at).where(Member.id == uuid.UUID(m))).scalar_one()
    anchor = as_utc(created).astimezone(JKT).date()
    year = relativedelta(years=1)
    w0 = anchor - year  # the membership year before this one: [w0, anchor - 1 day]
    # The last day of the year before w0 and the first of w0 are different windows.
    api.purchase(600_000, at=at(w0 - timedelta(days=1), 23, 30))
    api.purchase(600_000, at=at(w0, 0, 30))
    assert code_of(api, m) == "bronze"
    api.purchase(500_000, at=at(w0 + timedelta(days=10)))
    clock.set(*(w0 + timedelta(days=10)).timetuple()[:3])
    v = view(api, m)
    assert v["tier"]["code"] == "silver"
    assert v["window"] == {
        "kind": "anniversary_year",
        "start": w0.isoformat(),
        "end": (anchor - timedelta(days=1)).isoformat(),
    }
    assert v["figures"][0]["value"] == "1100000"
    # Kept to the end of the next membership year.
    assert v["secure_until"] == (anchor + year - timedelta(days=1)).isoformat()
    assert v["progress"]["deadline"] == (anchor - timedelta(days=1)).isoformat()
    assert evaluate(api, anchor)["downgraded"] == 0
    assert evaluate(api, anchor + year - timedelta(days=1))["downgraded"] == 0
    assert evaluate(api, anchor + year)["downgraded"] == 1
    assert evaluate(api, anchor + year)["downgraded"] == 0
    assert code_of(api, m) == "bronze"
    assert [o["topic"] for o in outbox(db)] == ["tier.upgraded", "tier.at_risk", "tier.downgraded"]
