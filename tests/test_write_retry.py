"""``setia.core.api.write``: a PostgreSQL deadlock is retried, not answered 503."""

from __future__ import annotations

import threading
import uuid

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from setia.core.api import write
from setia.core.db import Database
from setia.members import service as members
from setia.members.models import Member
from setia.tenants.models import Tenant
from tests.conftest import TenantFixture


@pytest.mark.postgres_only
def test_a_deadlock_is_retried_and_both_writers_succeed(
    db: Database, tenant: TenantFixture
) -> None:
    with db.session() as s:
        t = s.get(Tenant, tenant.tenant_id)
        assert t is not None
        a = members.create_member(s, t, {"phone": "0812-1000-0001"}, source="test").id
        b = members.create_member(s, t, {"phone": "0812-1000-0002"}, source="test").id
        s.commit()

    both_locked_one = threading.Barrier(2, timeout=30)
    runs = {"ab": 0, "ba": 0}
    errors: list[BaseException] = []

    def name(session: Session, member: uuid.UUID, value: str) -> None:
        session.execute(update(Member).where(Member.id == member).values(name=value))

    def writer(label: str, first: uuid.UUID, second: uuid.UUID) -> None:
        session = db.sessionmaker()

        def fn() -> None:
            runs[label] += 1
            name(session, first, label)
            if runs[label] == 1:
                both_locked_one.wait()  # each holds one row and wants the other's: a cycle
            name(session, second, label)

        try:
            write(session, fn)
        except BaseException as exc:
            errors.append(exc)
        finally:
            session.close()

    threads = [
        threading.Thread(target=writer, args=("ab", a, b)),
        threading.Thread(target=writer, args=("ba", b, a)),
    ]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=60)
    assert errors == []
    # PostgreSQL broke the cycle by failing one of them; that one ran again and finished.
    assert sorted(runs.values()) == [1, 2]
    retried = "ab" if runs["ab"] == 2 else "ba"
    with db.session() as s:
        names = set(s.execute(select(Member.name).where(Member.id.in_([a, b]))).scalars())
    assert names == {retried}  # the retried writer committed last, over both rows
