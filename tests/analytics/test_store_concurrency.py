"""Two recomputes at once (PostgreSQL: the per-program advisory lock): each run is whole,
the rows are one run's, and two job runners recompute a due program once."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select

from setia.analytics import store
from setia.analytics.tables import AnalyticsFit, MemberScore
from setia.core.db import Database
from setia.programs.models import Program
from setia.tenants.models import Tenant
from tests.analytics.test_service_members import random_history
from tests.analytics.test_store import AS_OF_DT
from tests.conftest import TenantFixture


def parallel(fn: Callable[[], Any], n: int = 2) -> list[Any]:
    barrier = threading.Barrier(n, timeout=60)
    out: list[Any] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            out.append(fn())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    return out


@pytest.mark.postgres_only
def test_two_recomputes_at_once(db: Database, tenant: TenantFixture) -> None:
    random_history(db, tenant)

    def one() -> dict[str, Any]:
        with db.session() as s:
            t = s.get(Tenant, tenant.tenant_id)
            p = s.get(Program, tenant.program_id)
            assert t is not None
            assert p is not None
            return store.recompute(s, t, p, as_of=AS_OF_DT).as_dict()

    results = parallel(one, 3)
    assert all(r["members"] == 25 for r in results)
    assert all(r["skipped"] is None for r in results)
    with db.session() as s:
        fits = s.execute(select(AnalyticsFit)).scalars().all()
        assert len(fits) == 3
        rows = s.execute(select(MemberScore)).scalars().all()
        assert len(rows) == 25
        # every row is from one run: the last to commit
        assert len({r.fit_id for r in rows}) == 1
    # the same values as a lone run
    lone = one()
    with db.session() as s:
        again = s.execute(select(MemberScore)).scalars().all()
        assert {r.fit_id for r in again} == {uuid.UUID(lone["fit_id"])}
        by_member = {r.member_id: (r.rfm_segment, r.p_alive, r.clv) for r in rows}
        assert by_member == {r.member_id: (r.rfm_segment, r.p_alive, r.clv) for r in again}


@pytest.mark.postgres_only
def test_two_job_runners_recompute_once(db: Database, tenant: TenantFixture) -> None:
    random_history(db, tenant)
    now = dt.datetime(2026, 3, 1, 5, 0, tzinfo=dt.UTC)
    reports = parallel(lambda: store.run_due(db, now), 4)
    assert sum(r.recomputed for r in reports) == 1
    assert all(r.errors == [] for r in reports)
    with db.session() as s:
        assert s.execute(select(func.count()).select_from(AnalyticsFit)).scalar() == 1
        assert s.execute(select(func.count()).select_from(MemberScore)).scalar() == 25
