"""Matching invariants over random sequences of donations (Hypothesis): each donation gets
exactly min(points × ratio rounded down, budget left, member's cap left); totals are the sums
of the donations; the budget and caps are never passed; receipts count 1..n; points are
conserved (``setia ledger verify``)."""

from __future__ import annotations

import uuid
from decimal import ROUND_FLOOR, Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from setia.causes.models import Donation
from setia.core.db import Database
from tests.causes.support import balance, cause_row, donate, member_with_points, put_cause
from tests.conftest import TenantFixture
from tests.ledger.support import assert_db_sound, tx

RATIOS = st.sampled_from(["0", "0.25", "0.5", "1", "1.5", "2"])


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    ratio=RATIOS,
    budget=st.integers(min_value=0, max_value=2000),
    cap=st.one_of(st.none(), st.integers(min_value=0, max_value=800)),
    gifts=st.lists(
        st.tuples(st.integers(min_value=0, max_value=2), st.integers(min_value=1, max_value=700)),
        min_size=1,
        max_size=8,
    ),
)
def test_matching_is_greedy_and_bounded(
    db: Database,
    tenant: TenantFixture,
    ratio: str,
    budget: int,
    cap: int | None,
    gifts: list[tuple[int, int]],
) -> None:
    prefix = "P" + uuid.uuid4().hex[:8].upper()
    cause_id = put_cause(
        db,
        tenant,
        code=f"c-{uuid.uuid4().hex[:10]}",
        match_ratio=ratio,
        match_budget=budget,
        match_cap_per_member=cap,
        receipt_prefix=prefix,
    )
    people = [member_with_points(db, tenant, 1500) for _ in range(3)]
    left = budget
    per_member = dict.fromkeys(people, 0)
    spent = dict.fromkeys(people, 0)
    numbers = []
    for who, points in gifts:
        m = people[who]
        if spent[m] + points > 1500:
            continue
        d = donate(db, tenant, cause_id, m, points).donation
        want = int((Decimal(points) * Decimal(ratio)).to_integral_value(rounding=ROUND_FLOOR))
        if cap is not None:
            want = min(want, cap - per_member[m])
        expected = max(0, min(want, left))
        assert d.matched_points == expected
        left -= expected
        per_member[m] += expected
        spent[m] += points
        numbers.append(int(d.receipt_number.rsplit("-", 1)[1]))

    cause = cause_row(db, cause_id)
    assert cause.matched_points == budget - left <= budget
    assert cause.donated_points == sum(spent.values())
    assert numbers == list(range(1, len(numbers) + 1))
    sums = tx(
        db,
        lambda s: s.execute(
            select(func.coalesce(func.sum(Donation.points), 0), func.count()).where(
                Donation.cause_id == cause_id
            )
        ).one(),
    )
    assert (int(sums[0]), int(sums[1])) == (cause.donated_points, cause.donations_count)
    if cap is not None:
        assert all(v <= cap for v in per_member.values())
    for m in people:
        assert balance(db, tenant, m) == 1500 - spent[m]
    assert_db_sound(db)
