"""Several job runners at once (PostgreSQL: real row locks, SKIP LOCKED) give each reward once
and never pass a cap."""

from __future__ import annotations

import threading
from datetime import datetime

import pytest

from setia.referrals import jobs
from setia.referrals.service import JobReport
from tests.referrals.conftest import World, after_window


def parallel(world: World, at: datetime, n: int = 4) -> list[JobReport]:
    barrier = threading.Barrier(n, timeout=60)
    out: list[JobReport] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            out.append(jobs.run_due(world.db, at))
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
def test_parallel_runs_award_once(world: World) -> None:
    siti = world.member("Siti")
    referees = [world.referred(siti, f"R{i}")[0] for i in range(4)]
    for m in referees:
        world.buy(m, "75000")
    reports = parallel(world, after_window())
    assert sum(r.qualified for r in reports) == 4
    assert sum(r.rewarded for r in reports) == 4
    assert all(not r.errors for r in reports)
    assert world.referral_transfers() == 8
    assert world.referral_points(siti) == 4 * 500
    for m in referees:
        assert world.referral_points(m) == 250
    world.sound()


@pytest.mark.postgres_only
def test_parallel_runs_respect_the_cap(world: World) -> None:
    world.settings(cap_per_month=2, velocity_count=100)
    advocates = [world.member(f"A{i}") for i in range(2)]
    for a in advocates:
        for i in range(5):
            m, _ = world.referred(a, f"{a}-{i}")
            world.buy(m, "75000")
    reports = parallel(world, after_window(), n=4)
    assert sum(r.qualified for r in reports) == 10
    for a in advocates:
        assert world.referral_points(a) == 2 * 500
        assert sorted(s for _, s, _ in world.rewards(a)) == ["capped"] * 3 + ["given"] * 2
    world.sound()
