"""Random histories: the report's days agree with a per-transfer oracle in Python, the days
add up to the period, the period reconciles with the outstanding balance, and outstanding
by expiry month equals the liability."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from setia.core.db import Database
from setia.core.time import as_utc
from setia.finance import service as finance
from setia.jobs.service import run_due
from setia.ledger import queries
from setia.ledger import service as ledger
from setia.ledger.models import Account, Transfer
from setia.programs.models import Program
from setia.tenants.models import Tenant
from tests.conftest import make_tenant
from tests.ledger.support import assert_db_sound, new_member, tx

START = datetime(2026, 3, 27, tzinfo=UTC)
ZONES = ["Asia/Jakarta", "Asia/Kolkata", "Europe/Berlin", "America/St_Johns"]

minutes = st.integers(min_value=0, max_value=4 * 24 * 60)
op = st.one_of(
    st.tuples(
        st.just("earn"),
        st.integers(0, 2),
        st.integers(1, 500),
        minutes,
        st.one_of(st.none(), st.integers(60, 6 * 24 * 60)),
    ),
    st.tuples(st.just("redeem"), st.integers(0, 2), st.integers(1, 300), minutes),
    st.tuples(
        st.just("hold"),
        st.integers(0, 2),
        st.integers(1, 300),
        minutes,
        st.sampled_from(["capture", "part", "void"]),
    ),
    st.tuples(st.just("give_back"), st.integers(0, 50), st.integers(1, 300), minutes),
    st.tuples(st.just("adjust"), st.integers(0, 2), st.integers(-200, 200), minutes),
    st.tuples(st.just("job"), minutes),
    st.tuples(st.just("wallet"), st.integers(0, 2), st.integers(1, 90000), minutes),
)


def available(s: Session, program_id: uuid.UUID, m: uuid.UUID, at: datetime) -> int:
    """What the member can spend at ``at`` (points past expiry by then are not theirs)."""
    return int(queries.balance(s, program_id, m, now=at)["available"])


def oracle(s: Session, program_id: uuid.UUID, tz: ZoneInfo) -> dict[date, dict[str, int]]:
    """Each transfer read on its own, its local day from zoneinfo, added up in Python."""
    debit, credit = aliased(Account), aliased(Account)
    rows = s.execute(
        select(Transfer, debit, credit)
        .join(debit, debit.id == Transfer.debit_account_id)
        .join(credit, credit.id == Transfer.credit_account_id)
        .where(Transfer.program_id == program_id)
    ).all()
    days: dict[date, finance.Flows] = defaultdict(finance.Flows)
    for t, d, c in rows:
        shape = finance.Shape(
            t.code, t.kind, d.code, d.member_id is not None, c.code, c.member_id is not None
        )
        days[as_utc(t.effective_at).astimezone(tz).date()].add(shape, t.amount)
    return {k: v.points_out() for k, v in days.items()}


class Runner:
    """Applies one drawn operation in its own transaction (as the API would)."""

    def __init__(self, db: Database, program_id: uuid.UUID, members: list[uuid.UUID]) -> None:
        self.db = db
        self.program_id = program_id
        self.members = members
        self.spends: list[Transfer] = []
        self.model: dict[str, int] = defaultdict(int)
        self.n = 0

    def ctx(self, s: Session, at: datetime) -> ledger.Context:
        """The write's context, at ``at``: a replay, so the ledger's clock is set to it too."""
        self.n += 1
        ledger.set_clock(s, at)
        return ledger.Context(
            program_id=self.program_id,
            idempotency_key=f"k{self.n}",
            request_hash=str(self.n),
            source_type="t",
            source_id=str(self.n),
            effective_at=at,
        )

    def apply(self, item: tuple[Any, ...]) -> None:
        with self.db.session() as s:
            getattr(self, item[0])(s, *item[1:])

    def earn(self, s: Session, i: int, pts: int, minute: int, life: int | None) -> None:
        at = START + timedelta(minutes=minute)
        expires = None if life is None else at + timedelta(minutes=life)
        ledger.earn(
            s,
            self.ctx(s, at),
            member_id=self.members[i],
            amount=pts,
            earned_at=at,
            pending_until=None,
            expires_at=expires,
        )
        self.model["earned"] += pts

    def _spend(self, s: Session, i: int, pts: int, at: datetime, hold: bool) -> Transfer | None:
        if available(s, self.program_id, self.members[i], at) < pts:
            return None
        res = ledger.spend(
            s,
            self.ctx(s, at),
            member_id=self.members[i],
            amount=pts,
            hold_for=timedelta(minutes=30) if hold else None,
        )
        return ledger.get_transfer(s, self.program_id, res.transfer_id)

    def redeem(self, s: Session, i: int, pts: int, minute: int) -> None:
        done = self._spend(s, i, pts, START + timedelta(minutes=minute), hold=False)
        if done is not None:
            self.spends.append(done)
            self.model["redeemed"] += pts

    def hold(self, s: Session, i: int, pts: int, minute: int, action: str) -> None:
        at = START + timedelta(minutes=minute)
        held = self._spend(s, i, pts, at, hold=True)
        if held is None:
            return
        take = pts if action == "capture" else max(1, pts // 2)
        res = ledger.resolve_hold(
            s,
            self.ctx(s, at + timedelta(minutes=1)),
            held,
            action="void" if action == "void" else "capture",
            amount=None if action == "void" else take,
        )
        if action != "void":
            self.spends.append(ledger.get_transfer(s, self.program_id, res.transfer_id))
            self.model["redeemed"] += take

    def give_back(self, s: Session, which: int, pts: int, minute: int) -> None:
        if not self.spends:
            return
        original = self.spends[which % len(self.spends)]
        given = s.execute(
            select(func.coalesce(func.sum(Transfer.amount), 0)).where(
                Transfer.reverses_id == original.id
            )
        ).scalar_one()
        n = min(pts, original.amount - int(given))
        if n > 0:
            at = START + timedelta(minutes=minute)
            ledger.return_spent(s, self.ctx(s, at), original=original, amount=n)
            self.model["redeemed"] -= n
            self.model["returned"] += n

    def adjust(self, s: Session, i: int, delta: int, minute: int) -> None:
        if delta == 0:
            return
        at = START + timedelta(minutes=minute)
        if delta < 0 and available(s, self.program_id, self.members[i], at) < -delta:
            return
        ledger.adjust(
            s,
            self.ctx(s, at),
            member_id=self.members[i],
            delta=delta,
            earned_at=at,
            expires_at=None,
        )
        self.model["earned" if delta > 0 else "adjusted_out"] += abs(delta)

    def job(self, s: Session, minute: int) -> None:
        run_due(self.db, START + timedelta(minutes=minute))

    def wallet(self, s: Session, i: int, amount: int, minute: int) -> None:
        at = START + timedelta(minutes=minute)
        ledger.wallet_credit(
            s, self.ctx(s, at), member_id=self.members[i], amount=amount, code="TOPUP"
        )
        self.model["wallet"] += amount


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(zone_name=st.sampled_from(ZONES), ops=st.lists(op, min_size=1, max_size=14))
def test_random_histories_reconcile(db: Database, zone_name: str, ops: list[Any]) -> None:
    t = make_tenant(db, name="P", timezone=zone_name)
    tz = ZoneInfo(zone_name)
    runner = Runner(db, t.program_id, [new_member(db, t, f"m{i}") for i in range(3)])
    for item in ops:
        runner.apply(item)
    model = runner.model
    # What the job expired in this program (the job also serves other examples' programs).
    model["expired"] = tx(
        db,
        lambda s: int(
            s.execute(
                select(func.coalesce(func.sum(Transfer.amount), 0)).where(
                    Transfer.program_id == t.program_id, Transfer.code == "EXPIRE"
                )
            ).scalar_one()
        ),
    )
    assert_db_sound(db)
    first, last = date(2026, 3, 25), date(2026, 4, 3)  # covers every local day used

    def run(s: Session) -> tuple[dict[str, Any], dict[date, dict[str, int]], int]:
        tenant, program = s.get(Tenant, t.tenant_id), s.get(Program, t.program_id)
        assert tenant is not None
        assert program is not None
        got = finance.report(s, tenant, program, start=first, end=last)
        # Reading only the window (the KPIs' and the dashboard's path) gives the same
        # in-window buckets as the full scan.
        window = [
            finance.local_midnight(date(2026, 3, 27) + timedelta(days=i), tz) for i in range(4)
        ]
        full = {
            (b, shape): amount
            for b, shape, amount in finance._grouped(s, program.id, window)
            if 0 <= b < len(window) - 1
        }
        only = {
            (b, shape): amount
            for b, shape, amount in finance._grouped(s, program.id, window, window_only=True)
        }
        assert only == full
        return got, oracle(s, t.program_id, tz), queries.liability(s, t.program_id)

    got, expected, liability = tx(db, run)
    zero = dict.fromkeys(finance.DAILY_POINTS, 0)
    for day in got["daily"]:
        assert day["points"] == expected.get(date.fromisoformat(day["date"]), zero), day["date"]
    assert set(expected) <= {date.fromisoformat(d["date"]) for d in got["daily"]}
    period = got["period"]["points"]
    for figure in finance.DAILY_POINTS:
        assert period[figure] == sum(d["points"][figure] for d in got["daily"])
    for figure in ("earned", "redeemed", "returned", "expired", "adjusted_out"):
        assert period[figure] == model[figure], figure
    assert got["period"]["opening_outstanding"] == 0
    assert got["period"]["closing_outstanding"] == liability
    assert got["outstanding"]["points"] == liability
    assert sum(b["points"] for b in got["outstanding"]["by_expiry_month"]) == liability
    assert Decimal(got["wallet"]["balance"]) == model["wallet"]
    assert got["period"]["wallet"]["credited"] == str(model["wallet"])
