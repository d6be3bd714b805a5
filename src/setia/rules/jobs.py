"""Time triggers: birthday and membership anniversary rules, run daily by ``setia jobs run``.

A member's day is their own time zone's (or the tenant's). Each occasion is keyed
(``birthday:<year>:<member>``), so running the job twice, or from two workers, gives once.
Members born on 29 February celebrate on 28 February in other years.
"""

from __future__ import annotations

import calendar
from datetime import date, datetime

from sqlalchemy import extract, select
from sqlalchemy.orm import Session

from setia.core.db import Database
from setia.core.time import as_utc, zone
from setia.ledger import service as ledger
from setia.members.models import Member
from setia.programs.models import Program
from setia.rules.models import Rule
from setia.tenants.models import Tenant

TRIGGERS = ("schedule.birthday", "schedule.anniversary")


def _same_day(d: date, today: date) -> bool:
    if d.month == 2 and d.day == 29 and not calendar.isleap(today.year):
        return today.month == 2 and today.day == 28
    return (d.month, d.day) == (today.month, today.day)


def _programs_with(session: Session, trigger: str) -> list[Program]:
    rows = session.execute(
        select(Rule.program_id, Rule.definition).where(Rule.enabled.is_(True))
    ).all()
    ids = {pid for pid, definition in rows if trigger in (definition.get("triggers") or [])}
    if not ids:
        return []
    return list(session.execute(select(Program).where(Program.id.in_(ids))).scalars())


def run_date_triggers(db: Database, now: datetime) -> int:
    """Give today's birthday and anniversary awards; returns how many members got one."""
    from setia.events.service import award_trigger

    given = 0
    with db.session() as session:
        work = {t: _programs_with(session, t) for t in TRIGGERS}
    for trigger, programs in work.items():
        for program in programs:
            with db.session() as session:
                ledger.set_clock(session, now)  # the ledger judges expiry at the run's time
                tenant = session.get(Tenant, program.tenant_id)
                assert tenant is not None
                local_today = as_utc(now).astimezone(zone(tenant.timezone)).date()
                months = {(local_today.month + d - 1) % 12 + 1 for d in (-1, 0, 1)}
                q = select(Member).where(Member.tenant_id == tenant.id, Member.status == "active")
                if trigger == "schedule.birthday":
                    q = q.where(
                        Member.birthday.is_not(None), extract("month", Member.birthday).in_(months)
                    )
                for member in session.execute(q).scalars():
                    today = as_utc(now).astimezone(zone(member.timezone or tenant.timezone)).date()
                    if trigger == "schedule.birthday":
                        assert member.birthday is not None
                        if not _same_day(member.birthday, today):
                            continue
                        key = f"birthday:{program.id}:{today.year}:{member.id}"
                    else:
                        joined = (
                            as_utc(member.created_at)
                            .astimezone(zone(member.timezone or tenant.timezone))
                            .date()
                        )
                        if today.year <= joined.year or not _same_day(joined, today):
                            continue
                        key = f"anniversary:{program.id}:{today.year}:{member.id}"
                    with session.begin_nested():
                        if award_trigger(
                            session, tenant, program, member, trigger, occurred_at=now, key=key
                        ):
                            given += 1
    return given
