"""Property-based tests: random sequences of ledger operations, with the invariants checked
after every step against the database and against an independent model kept by the test.

The model is a plain-Python re-statement of the ledger's rules (lots consumed soonest-expiry
first, holds give back to the lots they took from, refunds reverse floored proportions of
what the order earned, shortfalls become debt or a write-off, debt is repaid from the next
points that land). After each step the member balances and every lot's remaining points must
equal the model, ``setia ledger verify`` must pass, and our own checks must hold.
"""

from __future__ import annotations

import itertools
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from setia.core.db import Database
from setia.core.errors import IdempotencyKeyReused
from setia.core.time import add_months, as_utc, utcnow
from setia.events.service import EventIdReused, OrderExists, RefundExceedsOrder
from setia.jobs.service import run_due
from setia.ledger import queries
from setia.ledger import service as ledger
from setia.ledger.models import DEBT, PENDING, POINTS, WRITE_OFF, Account, Lot, Transfer
from setia.members import service as members
from setia.members.models import Member
from setia.tenants.models import Tenant
from tests.conftest import make_tenant
from tests.ledger.support import assert_ledger_sound, configure, new_member, post_event, tx

NEVER = datetime.max.replace(tzinfo=UTC)
JAKARTA = ZoneInfo("Asia/Jakarta")  # make_tenant's zone
PENDING_DAYS = 7
HOLD_MINUTES = 30


# --------------------------------------------------------------------------- the model


@dataclass(eq=False)
class MLot:
    seq: int  # creation order, which is also the order of the lots' ids
    owner: uuid.UUID
    account: str  # POINTS or PENDING
    amount: int
    remaining: int
    earned_at: datetime
    pending_until: datetime | None
    expires_at: datetime | None
    source: tuple[str | None, str | None]
    expired: int = 0


@dataclass(eq=False)
class MHold:
    id: uuid.UUID
    owner: uuid.UUID
    amount: int
    expires_at: datetime
    taken: list[tuple[MLot, int]]
    state: str = "open"  # open, captured, voided, expired


@dataclass(eq=False)
class MSpend:
    """A redemption or a hold's capture: what it took from each lot, and what came back."""

    id: uuid.UUID
    owner: uuid.UUID
    amount: int
    taken: list[tuple[MLot, int]]
    returned: int = 0


@dataclass
class MOrder:
    order_id: str
    owner: uuid.UUID
    amount: int  # IDR, no minor units
    earned: int
    refunded: int = 0
    reversed: int = 0
    recovered: int = 0  # what refunds took from the member (the rest was already expired)


class Model:
    def __init__(self, shortfall: str) -> None:
        self.shortfall = shortfall
        self.lots: list[MLot] = []
        self.holds: list[MHold] = []
        self.spends: list[MSpend] = []
        self.survivor: dict[uuid.UUID, uuid.UUID] = {}
        self.orders: list[MOrder] = []
        self.debt: Counter[uuid.UUID] = Counter()
        self.written_off = 0
        self._seq = itertools.count()

    # balances
    def lots_in(self, member: uuid.UUID, account: str) -> list[MLot]:
        return [lot for lot in self.lots if lot.owner == member and lot.account == account]

    def available(self, member: uuid.UUID) -> int:
        return sum(lot.remaining for lot in self.lots_in(member, POINTS))

    def pending(self, member: uuid.UUID) -> int:
        return sum(lot.remaining for lot in self.lots_in(member, PENDING))

    def held(self, member: uuid.UUID) -> int:
        return sum(h.amount for h in self.holds if h.owner == member and h.state == "open")

    def _due(self, member: uuid.UUID, at: datetime) -> list[MLot]:
        return [
            lot
            for lot in self.lots_in(member, POINTS)
            if lot.remaining > 0 and lot.expires_at is not None and lot.expires_at <= at
        ]

    def spendable(self, member: uuid.UUID, at: datetime) -> int:
        """Available points less those past expiry at ``at`` (the job has not run yet)."""
        return self.available(member) - sum(lot.remaining for lot in self._due(member, at))

    def expire_due(self, member: uuid.UUID, at: datetime) -> int:
        """What the ledger does before points leave an account: its lots past expiry at
        ``at`` expire first, as the job would have expired them."""
        total = 0
        for lot in self._due(member, at):
            total += lot.remaining
            lot.expired += lot.remaining
            lot.remaining = 0
        return total

    # lots
    def add_lot(
        self,
        owner: uuid.UUID,
        account: str,
        amount: int,
        *,
        earned_at: datetime,
        pending_until: datetime | None,
        expires_at: datetime | None,
        source: tuple[str | None, str | None],
    ) -> MLot:
        lot = MLot(
            next(self._seq),
            owner,
            account,
            amount,
            amount,
            earned_at,
            pending_until,
            expires_at,
            source,
        )
        self.lots.append(lot)
        return lot

    def consume(
        self, member: uuid.UUID, amount: int, prefer: tuple[str, str] | None = None
    ) -> list[tuple[MLot, int]]:
        """Soonest expiry first, never-expiring last; then earliest earned, then oldest."""

        def key(lot: MLot) -> tuple[Any, ...]:
            k = (lot.expires_at is None, lot.expires_at or NEVER, lot.earned_at, lot.seq)
            return (lot.source != prefer, *k) if prefer else k

        lots = sorted((x for x in self.lots_in(member, POINTS) if x.remaining > 0), key=key)
        taken, left = [], amount
        for lot in lots:
            if left == 0:
                break
            take = min(lot.remaining, left)
            lot.remaining -= take
            left -= take
            taken.append((lot, take))
        assert left == 0, "model bug: consumed more than available"
        return taken

    def repay(self, member: uuid.UUID, landed: int, at: datetime, expire: bool = True) -> int:
        repay = min(self.debt[member], landed)
        if repay > 0 and expire and self.expire_due(member, at):
            repay = min(repay, self.available(member))
        if repay > 0:
            self.consume(member, repay)
            self.debt[member] -= repay
        return repay

    @staticmethod
    def _latest_expiry_first(rows: list[tuple[MLot, int]]) -> list[tuple[MLot, int]]:
        return sorted(
            rows,
            key=lambda r: (
                r[0].expires_at is None,
                r[0].expires_at or datetime.min.replace(tzinfo=UTC),
                r[0].seq,
            ),
            reverse=True,
        )

    def give_back(self, hold: MHold, amount: int) -> list[tuple[MLot, int]]:
        """Never-expiring lots first, then the latest expiry: what is kept expires soonest.

        Returns what each lot kept spent (the capture's share of the hold)."""
        left = amount
        kept = []
        for lot, taken in self._latest_expiry_first(hold.taken):
            give = min(taken, left)
            lot.remaining += give
            left -= give
            if taken - give:
                kept.append((lot, taken - give))
        assert left == 0
        return kept

    def final(self, member: uuid.UUID) -> uuid.UUID:
        while member in self.survivor:
            member = self.survivor[member]
        return member

    def return_spent(self, spend: MSpend, amount: int, at: datetime) -> int:
        """Back to the lots the spend took from, latest expiry first; a lot that is no
        longer the (surviving) member's is recreated with its dates. Returns debt repaid."""
        owner = self.final(spend.owner)
        left = amount
        rest = []
        for lot, open_ in self._latest_expiry_first(spend.taken):
            give = min(open_, left)
            if give:
                if lot.owner == owner and lot.account == POINTS:
                    lot.remaining += give
                else:
                    self.add_lot(
                        owner,
                        POINTS,
                        give,
                        earned_at=lot.earned_at,
                        pending_until=lot.pending_until,
                        expires_at=lot.expires_at,
                        source=("test", None),
                    )
            left -= give
            rest.append((lot, open_ - give))
        assert left == 0
        spend.taken = [(lot, n) for lot, n in rest if n]
        spend.returned += amount
        return self.repay(owner, amount, at)

    # operations
    def earn(
        self,
        member: uuid.UUID,
        amount: int,
        *,
        earned_at: datetime,
        pending_until: datetime | None,
        expires_at: datetime | None,
        source: tuple[str | None, str | None],
        at: datetime,
    ) -> None:
        is_pending = pending_until is not None and pending_until > utcnow()
        self.add_lot(
            member,
            PENDING if is_pending else POINTS,
            amount,
            earned_at=earned_at,
            pending_until=pending_until,
            expires_at=expires_at,
            source=source,
        )
        if not is_pending:
            self.repay(member, amount, at)

    def refund(self, order: MOrder, amount: int, at: datetime) -> dict[str, int]:
        refunded = order.refunded + amount
        target = (
            order.earned if refunded >= order.amount else order.earned * refunded // order.amount
        )
        to_reverse = max(0, target - order.reversed)
        out = {"points_reversed": to_reverse}
        if to_reverse:
            source = ("order", order.order_id)
            self.expire_due(order.owner, at)
            # The order's expired points went back to the program once; each covers at most
            # one refunded point, before anything is taken from the member.
            expired = sum(x.expired for x in self.lots if x.source == source)
            covered = order.reversed - order.recovered
            already = min(to_reverse, max(0, expired - covered))
            parts = {
                "already_expired": already,
                "from_pending": 0,
                "from_available": 0,
                "debt": 0,
                "written_off": 0,
            }
            left = to_reverse - already
            for lot in sorted(self.lots_in(order.owner, PENDING), key=lambda x: x.seq):
                if left == 0:
                    break
                if lot.source != source or lot.remaining == 0:
                    continue
                take = min(left, lot.remaining)
                lot.remaining -= take
                parts["from_pending"] += take
                left -= take
            take = min(left, self.available(order.owner))
            if take:
                self.consume(order.owner, take, prefer=source)
                parts["from_available"] = take
                left -= take
            if left and self.shortfall == "debt":
                self.debt[order.owner] += left
                parts["debt"] = left
            elif left:
                self.written_off += left
                parts["written_off"] = left
            out.update(parts)
            order.recovered += to_reverse - already
        order.refunded = refunded
        order.reversed += to_reverse
        return out

    def transfer(self, src: uuid.UUID, dst: uuid.UUID, amount: int, at: datetime) -> None:
        self.expire_due(src, at)
        for lot, take in self.consume(src, amount):
            self.add_lot(
                dst,
                POINTS,
                take,
                earned_at=lot.earned_at,
                pending_until=lot.pending_until,
                expires_at=lot.expires_at,
                source=("member_transfer", str(dst)),
            )
        self.repay(dst, amount, at)

    def merge(self, source: uuid.UUID, survivor: uuid.UUID, at: datetime) -> None:
        # each record's points gone by now expire first; the repayment below expires nothing
        self.expire_due(source, at)
        self.expire_due(survivor, at)
        for account, amount in ((POINTS, self.available(source)), (PENDING, self.pending(source))):
            if amount > 0:
                for lot in self.lots_in(source, account):
                    lot.owner = survivor
        self.survivor[source] = survivor
        owed = self.debt.pop(source, 0)
        if owed > 0:
            self.debt[survivor] += owed
            self.repay(survivor, self.available(survivor), at, expire=False)
        for order in self.orders:
            if order.owner == source:
                order.owner = survivor

    def run_due(self, now: datetime) -> tuple[int, int, int]:
        """Release, then expire holds, then expire lots; returns (released, expired, holds)."""
        released = expired = holds = 0
        due = [x for x in self.lots if x.account == PENDING and x.pending_until <= now]  # type: ignore[operator]
        for lot in sorted(due, key=lambda x: (x.pending_until, x.seq)):
            lot.account = POINTS
            released += lot.remaining
            if lot.remaining > 0:
                self.repay(lot.owner, lot.remaining, now)
        for hold in self.holds:
            if hold.state == "open" and hold.expires_at <= now:
                self.give_back(hold, hold.amount)
                self.repay(hold.owner, hold.amount, now)  # a debt first
                hold.state = "expired"
                holds += 1
        for lot in self.lots:
            if lot.account == POINTS and lot.expires_at is not None and lot.expires_at <= now:
                expired += lot.remaining
                lot.expired += lot.remaining
                lot.remaining = 0
        return released, expired, holds


# --------------------------------------------------------------------------- the machine

who = st.integers(min_value=0, max_value=50)
# How much of a balance an operation asks for, per mille; above 1000 asks for more than there is.
shares = st.integers(min_value=1, max_value=1100)


def portion(total: int, share: int) -> int:
    return max(1, total * share // 1000 if share <= 1000 else total + share - 1000)


class LedgerMachine(RuleBasedStateMachine):
    new_db: Callable[[], Database]  # set by the test that runs the machine

    def __init__(self) -> None:
        super().__init__()
        self.db = type(self).new_db()  # one database per example
        self.t = make_tenant(self.db)
        self.start = utcnow().replace(microsecond=0)
        self.clock = self.start
        self.model = Model("debt")
        self.expiry = "none"
        self.active: list[uuid.UUID] = []
        self.everyone: list[uuid.UUID] = []
        self.events: list[tuple[dict[str, Any], dict[str, Any]]] = []
        self.ops: list[tuple[Callable[[Session], ledger.Result], uuid.UUID, str]] = []
        self.n = itertools.count()
        self.touched: set[uuid.UUID] = set()
        self.steps = self.misuses = 0

    def teardown(self) -> None:
        self.db.dispose()

    # helpers
    def _pick(self, i: int) -> uuid.UUID:
        member = self.active[i % len(self.active)]
        self.touched.add(member)
        return member

    def _pick_spender(self, i: int) -> uuid.UUID:
        """A member with points to spend, when there is one."""
        with_points = [m for m in self.active if self.model.available(m) > 0]
        member = (with_points or self.active)[i % len(with_points or self.active)]
        self.touched.add(member)
        return member

    def _pair(self, i: int, j: int) -> tuple[uuid.UUID, uuid.UUID]:
        a = self._pick(i)
        others = [m for m in self.active if m != a]
        b = others[j % len(others)]
        self.touched.add(b)
        return a, b

    def _ctx(self, op: str, key: str | None = None, **payload: Any) -> ledger.Context:
        key = key or f"test:{op}:{next(self.n)}"
        return ledger.Context(
            program_id=self.t.program_id,
            idempotency_key=key,
            request_hash=ledger.request_hash({"op": op, **payload}),
            actor="test",
            source_type=payload.get("source_type"),
            source_id=payload.get("source_id"),
        )

    def _op(self, fn: Callable[[Session], ledger.Result], key: str) -> ledger.Result:
        res = tx(self.db, fn)
        assert res.created
        self.ops.append((fn, res.transfer_id, key))
        return res

    def _add_member(self) -> None:
        member = new_member(self.db, self.t, f"m{next(self.n)}")
        self.active.append(member)
        self.everyone.append(member)

    # set-up
    @initialize(
        shortfall=st.sampled_from(["debt", "write_off"]),
        expiry=st.sampled_from(["none", "after_duration"]),
        purchases=st.lists(
            st.tuples(
                who,
                st.integers(min_value=10, max_value=300),
                st.integers(min_value=0, max_value=999),
                st.sampled_from([1, 200, 200]),
            ),
            min_size=2,
            max_size=6,
        ),
    )
    def setup(self, shortfall: str, expiry: str, purchases: list[tuple[int, ...]]) -> None:
        configure(
            self.db,
            self.t,
            pending_days=PENDING_DAYS,
            refund_shortfall=shortfall,
            expiry_policy=expiry,
            expiry_months=1,
            allow_member_transfers=True,
            hold_timeout_minutes=HOLD_MINUTES,
        )
        self.model.shortfall = shortfall
        self.expiry = expiry
        for _ in range(3):
            self._add_member()
        for args in purchases:
            self.purchase(*args)

    @precondition(lambda self: len(self.active) < 5)
    @rule()
    def add_member(self) -> None:
        self._add_member()

    # events
    @rule(
        i=who,
        thousands=st.integers(min_value=0, max_value=300),
        extra=st.integers(min_value=0, max_value=999),
        age_hours=st.sampled_from([1, 50, 200]),
    )
    def purchase(self, i: int, thousands: int, extra: int, age_hours: int) -> None:
        member = self._pick(i)
        amount = max(1, thousands * 1000 + extra)
        occurred = self.start - timedelta(hours=age_hours)
        n = next(self.n)
        payload = {
            "id": f"e{n}",
            "type": "purchase",
            "occurred_at": occurred.isoformat(),
            "member": {"id": str(member)},
            "order_id": f"O{n}",
            "amount": str(amount),
            "currency": "IDR",
        }
        rec = post_event(self.db, self.t, payload)
        points = amount // 1000
        event(
            f"purchase: {'none' if not points else 'pending' if age_hours < 168 else 'available'}"
        )
        assert rec.created
        assert rec.result["points"]["earned"] == points
        self.model.orders.append(MOrder(f"O{n}", member, amount, points))
        if points:
            self.model.earn(
                member,
                points,
                earned_at=occurred,
                pending_until=occurred + timedelta(days=PENDING_DAYS),
                expires_at=(
                    as_utc(add_months(occurred.astimezone(JAKARTA), 1))
                    if self.expiry == "after_duration"
                    else None
                ),
                source=("order", f"O{n}"),
                at=utcnow(),
            )
        self.events.append((payload, rec.result))

    def _purchase_same_order_again(self, k: int) -> None:
        order = self.model.orders[k % len(self.model.orders)]
        payload = {
            "id": f"e{next(self.n)}",
            "type": "purchase",
            "member": {"id": str(order.owner)},
            "order_id": order.order_id,
            "amount": "50000",
            "currency": "IDR",
        }
        with pytest.raises(OrderExists):
            post_event(self.db, self.t, payload)

    @precondition(lambda self: self.model.orders)
    @rule(
        k=st.integers(min_value=0, max_value=100),
        mode=st.sampled_from(["part", "part", "rest", "rest", "too_much"]),
        per_mille=st.integers(min_value=1, max_value=1000),
    )
    def refund(self, k: int, mode: str, per_mille: int) -> None:
        open_orders = [o for o in self.model.orders if o.refunded < o.amount]
        order = (open_orders or self.model.orders)[k % len(open_orders or self.model.orders)]
        self.touched.add(order.owner)
        left = order.amount - order.refunded
        amount = {"part": left * per_mille // 1000, "rest": left, "too_much": left + 1}[mode]
        amount = max(amount, 1)
        payload = {
            "id": f"e{next(self.n)}",
            "type": "refund",
            "member": {"id": str(order.owner)},
            "order_id": order.order_id,
            "amount": str(amount),
        }
        if amount > left:
            with pytest.raises(RefundExceedsOrder):
                post_event(self.db, self.t, payload)
            event("refund: more than is left")
            return
        rec = post_event(self.db, self.t, payload)
        expected = self.model.refund(order, amount, utcnow())
        event(f"refund: {', '.join(k for k, v in sorted(expected.items()) if v) or 'nothing'}")
        got = {k: v for k, v in rec.result["refund"].items() if k in expected}
        assert got == expected
        self.events.append((payload, rec.result))

    def _replay_event(self, k: int) -> None:
        payload, result = self.events[k % len(self.events)]
        rec = post_event(self.db, self.t, payload)
        assert not rec.created
        assert rec.result == result

    def _reuse_event_id_for_another_event(self, k: int) -> None:
        payload, _result = self.events[k % len(self.events)]
        with pytest.raises(EventIdReused):
            post_event(self.db, self.t, {**payload, "store": "another-store"})

    # spending
    @rule(i=who, share=shares)
    def redeem(self, i: int, share: int) -> None:
        member = self._pick_spender(i)
        amount = portion(self.model.available(member), share)
        ctx = self._ctx("redeem", member=str(member), amount=amount, source_type="redemption")

        def call(s: Session) -> ledger.Result:
            return ledger.spend(s, ctx, member_id=member, amount=amount)

        if amount > self.model.spendable(member, utcnow()):
            with pytest.raises(ledger.InsufficientPoints):
                tx(self.db, call)
            event("redeem: insufficient")
            return
        res = self._op(call, ctx.idempotency_key)
        self.model.expire_due(member, utcnow())
        taken = self.model.consume(member, amount)
        self.model.spends.append(MSpend(res.transfer_id, member, amount, taken))
        event("redeem: done")

    @rule(i=who, share=shares)
    def hold(self, i: int, share: int) -> None:
        member = self._pick_spender(i)
        amount = portion(self.model.available(member), share)
        ctx = self._ctx("hold", member=str(member), amount=amount, source_type="hold")

        def call(s: Session) -> ledger.Result:
            return ledger.spend(
                s, ctx, member_id=member, amount=amount, hold_for=timedelta(minutes=HOLD_MINUTES)
            )

        if amount > self.model.spendable(member, utcnow()):
            with pytest.raises(ledger.InsufficientPoints):
                tx(self.db, call)
            event("hold: insufficient")
            return
        res = self._op(call, ctx.idempotency_key)
        event("hold: placed")

        def expiry(s: Session) -> datetime:
            hold = s.get(Transfer, res.transfer_id)
            assert hold is not None
            assert hold.expires_at is not None
            return hold.expires_at

        self.model.expire_due(member, utcnow())
        taken = self.model.consume(member, amount)
        self.model.holds.append(MHold(res.transfer_id, member, amount, tx(self.db, expiry), taken))

    def _resolve(self, hold: MHold, action: str, amount: int | None) -> Callable[[Session], Any]:
        ctx = self._ctx(action, hold=str(hold.id), amount=amount)

        def call(s: Session) -> ledger.Result:
            transfer = ledger.get_hold(s, [self.t.program_id], hold.id)
            return ledger.resolve_hold(s, ctx, transfer, action=action, amount=amount)

        return call

    def _open_holds(self) -> list[MHold]:
        return [h for h in self.model.holds if h.state == "open"]

    @precondition(lambda self: self._open_holds())
    @rule(k=st.integers(min_value=0, max_value=100), partial=st.booleans(), share=shares)
    def capture(self, k: int, partial: bool, share: int) -> None:
        hold = self._open_holds()[k % len(self._open_holds())]
        self.touched.add(hold.owner)
        capture = portion(hold.amount, share) if partial else None
        call = self._resolve(hold, "capture", capture)
        if capture is not None and capture > hold.amount:
            with pytest.raises(ledger.CaptureExceedsHold):
                tx(self.db, call)
            return
        res = tx(self.db, call)
        assert res.created
        event("capture: " + ("partial" if capture and capture < hold.amount else "full"))
        captured = hold.amount if capture is None else capture
        kept = self.model.give_back(hold, hold.amount - captured)
        # points a hold gives back repay a debt first
        repaid = self.model.repay(hold.owner, hold.amount - captured, utcnow())
        assert res.amounts == {
            "captured": captured,
            "released": hold.amount - captured,
            **({"debt_repaid": repaid} if repaid else {}),
        }
        self.model.spends.append(MSpend(res.transfer_id, hold.owner, captured, kept))
        hold.state = "captured"

    @precondition(lambda self: any(x.returned < x.amount for x in self.model.spends))
    @rule(k=st.integers(min_value=0, max_value=100), share=shares)
    def give_back_a_spend(self, k: int, share: int) -> None:
        """A refund of a redemption or of an order paid with points (RETURN)."""
        open_ = [x for x in self.model.spends if x.returned < x.amount]
        spend = open_[k % len(open_)]
        returnable = spend.amount - spend.returned
        amount = portion(returnable, share)
        ctx = self._ctx("return", spend=str(spend.id), amount=amount, source_type="return")

        def call(s: Session) -> ledger.Result:
            original = ledger.get_transfer(s, self.t.program_id, spend.id)
            return ledger.return_spent(s, ctx, original=original, amount=amount)

        self.touched.add(self.model.final(spend.owner))
        if amount > returnable:
            with pytest.raises(ledger.ReturnExceedsSpent):
                tx(self.db, call)
            event("return: more than spent, refused")
            return
        res = self._op(call, ctx.idempotency_key)
        repaid = self.model.return_spent(spend, amount, utcnow())
        assert res.amounts == {"returned": amount, "debt_repaid": repaid}
        event("return: " + ("all" if spend.returned == spend.amount else "part"))

    # Twice the chance: a return needs a spend before it, and both matter.
    give_back_another_spend = give_back_a_spend

    @precondition(lambda self: self._open_holds())
    @rule(k=st.integers(min_value=0, max_value=100))
    def void(self, k: int) -> None:
        hold = self._open_holds()[k % len(self._open_holds())]
        self.touched.add(hold.owner)
        call = self._resolve(hold, "void", None)
        res = tx(self.db, call)
        assert res.created
        event("void: done")
        self.model.give_back(hold, hold.amount)
        self.model.repay(hold.owner, hold.amount, utcnow())  # a debt first
        hold.state = "voided"

    def _resolve_a_closed_hold(self, k: int, action: str) -> None:
        closed = [h for h in self.model.holds if h.state != "open"]
        hold = closed[k % len(closed)]
        with pytest.raises(ledger.HoldNotOpen):
            tx(self.db, self._resolve(hold, action, None))

    # corrections and transfers
    @rule(
        i=who,
        add=st.booleans(),
        points=st.integers(min_value=1, max_value=300),
        share=shares,
        expires_in_days=st.sampled_from([None, 5, 45]),
    )
    def adjust(
        self, i: int, add: bool, points: int, share: int, expires_in_days: int | None
    ) -> None:
        member = self._pick(i) if add else self._pick_spender(i)
        delta = points if add else -portion(self.model.available(member), share)
        expires = None if expires_in_days is None else self.clock + timedelta(days=expires_in_days)
        earned_at = self.clock
        ctx = self._ctx("adjust", member=str(member), delta=delta, source_type="adjustment")

        def call(s: Session) -> ledger.Result:
            return ledger.adjust(
                s, ctx, member_id=member, delta=delta, earned_at=earned_at, expires_at=expires
            )

        if delta < 0 and -delta > self.model.spendable(member, utcnow()):
            with pytest.raises(ledger.InsufficientPoints):
                tx(self.db, call)
            event("adjust: insufficient")
            return
        event(f"adjust: {'add' if delta > 0 else 'remove'}")
        self._op(call, ctx.idempotency_key)
        if delta > 0:
            self.model.earn(
                member,
                delta,
                earned_at=earned_at,
                pending_until=None,
                expires_at=expires,
                source=("adjustment", None),
                at=utcnow(),
            )
        else:
            self.model.expire_due(member, utcnow())
            self.model.consume(member, -delta)

    @precondition(lambda self: len(self.active) >= 2)
    @rule(i=who, j=who, share=shares)
    def transfer(self, i: int, j: int, share: int) -> None:
        src = self._pick_spender(i)
        others = [m for m in self.active if m != src]
        dst = others[j % len(others)]
        self.touched.add(dst)
        amount = portion(self.model.available(src), share)
        ctx = self._ctx(
            "transfer",
            member=str(src),
            to=str(dst),
            amount=amount,
            source_type="member_transfer",
            source_id=str(dst),
        )

        def call(s: Session) -> ledger.Result:
            return ledger.transfer_between_members(
                s, ctx, from_member=src, to_member=dst, amount=amount
            )

        if amount > self.model.spendable(src, utcnow()):
            with pytest.raises(ledger.InsufficientPoints):
                tx(self.db, call)
            event("transfer: insufficient")
            return
        self._op(call, ctx.idempotency_key)
        event("transfer: done" + (" (repays debt)" if self.model.debt[dst] else ""))
        self.model.transfer(src, dst, amount, utcnow())

    def _replay_operation(self, k: int) -> None:
        call, transfer_id, _key = self.ops[k % len(self.ops)]
        res = tx(self.db, call)
        assert not res.created
        assert res.transfer_id == transfer_id

    def _reuse_key_for_another_request(self, k: int, i: int) -> None:
        _call, _tid, key = self.ops[k % len(self.ops)]
        member = self._pick(i)
        ctx = self._ctx("redeem", key=key, member=str(member), amount=1, other=True)
        with pytest.raises(IdempotencyKeyReused):
            tx(self.db, lambda s: ledger.spend(s, ctx, member_id=member, amount=1))

    # retries and misuse: each changes nothing (throttled, so most steps do something)
    @precondition(lambda self: self.misuses * 6 <= self.steps)
    @rule(
        kind=st.integers(min_value=0, max_value=5),
        k=st.integers(min_value=0, max_value=100),
        i=who,
        action=st.sampled_from(["capture", "void"]),
    )
    def retry_or_misuse(self, kind: int, k: int, i: int, action: str) -> None:
        probes: list[tuple[object, str, Callable[[], None]]] = [
            (self.events, "replay an event", lambda: self._replay_event(k)),
            (
                self.events,
                "reuse an event id",
                lambda: self._reuse_event_id_for_another_event(k),
            ),
            (
                self.model.orders,
                "purchase an order twice",
                lambda: self._purchase_same_order_again(k),
            ),
            (self.ops, "replay an operation", lambda: self._replay_operation(k)),
            (
                self.ops,
                "reuse an idempotency key",
                lambda: self._reuse_key_for_another_request(k, i),
            ),
            (
                [h for h in self.model.holds if h.state != "open"],
                "resolve a closed hold",
                lambda: self._resolve_a_closed_hold(k, action),
            ),
        ]
        for n in range(len(probes)):
            applicable, name, probe = probes[(kind + n) % len(probes)]
            if applicable:
                probe()
                event(f"misuse: {name}")
                self.misuses += 1
                return

    @precondition(lambda self: len(self.active) >= 3)
    @rule(i=who, j=who)
    def merge(self, i: int, j: int) -> None:
        survivor, source = self._pair(i, j)

        def call(s: Session) -> dict[str, Any]:
            tenant = s.get(Tenant, self.t.tenant_id)
            keep, gone = s.get(Member, survivor), s.get(Member, source)
            assert tenant is not None
            assert keep is not None
            assert gone is not None
            return members.merge_members(s, tenant, keep, gone, actor="test", reason="duplicate")

        if self.model.held(source):
            with pytest.raises(members.OpenHolds):
                tx(self.db, call)
            event("merge: refused, open holds")
            return
        event("merge: with debt" if self.model.debt[source] else "merge: done")
        tx(self.db, call)
        self.touched.update((source, survivor))
        self.model.merge(source, survivor, utcnow())
        self.active.remove(source)

    # time
    @rule(
        step=st.sampled_from(
            [
                timedelta(0),
                timedelta(hours=1),
                timedelta(days=3),
                timedelta(days=8),
                timedelta(days=8),
                timedelta(days=20),
                timedelta(days=35),
            ]
        )
    )
    def run_jobs(self, step: timedelta) -> None:
        self.touched.update(self.everyone)
        self.clock += step
        report = run_due(self.db, now=self.clock)
        assert report.errors == []
        expected = self.model.run_due(self.clock)
        assert (report.released_points, report.expired_points, report.expired_holds) == expected
        for name, n in zip(("released", "expired", "holds expired"), expected, strict=True):
            if n:
                event(f"run_due: {name}")
        # Running the same due work again finds nothing left to do.
        again = run_due(self.db, now=self.clock)
        assert again.errors == []
        assert (again.released_points, again.expired_points, again.expired_holds) == (0, 0, 0)

    # invariants
    @invariant()
    def check(self) -> None:
        self.steps += 1
        tx(self.db, self._check)

    def _check(self, s: Session) -> None:
        assert_ledger_sound(s)
        pid = self.t.program_id
        m = self.model
        accounts = list(s.execute(select(Account).where(Account.program_id == pid)).scalars())
        # Per program: debits equal credits, posted and pending.
        dp, cp = sum(a.debits_posted for a in accounts), sum(a.credits_posted for a in accounts)
        dpend = sum(a.debits_pending for a in accounts)
        cpend = sum(a.credits_pending for a in accounts)
        assert dp == cp, f"posted debits {dp} != credits {cp}"
        assert dpend == cpend, f"pending debits {dpend} != credits {cpend}"
        # No member account ever negative; balances equal the model's (every member from the
        # accounts here, and the members this step touched through queries.balance below).
        want = {x: (m.available(x), m.held(x), m.pending(x), m.debt[x]) for x in self.everyone}
        got: dict[uuid.UUID, list[int]] = {x: [0, 0, 0, 0] for x in self.everyone}
        for acc in accounts:
            if acc.member_id is None:
                if acc.code == WRITE_OFF:
                    assert acc.debits_posted - acc.credits_posted == m.written_off
                continue
            row = got[acc.member_id]
            if acc.code == POINTS:
                row[0] = acc.credits_posted - acc.debits_posted - acc.debits_pending
                row[1] = acc.debits_pending
                assert row[0] >= 0
                assert row[1] >= 0
                assert acc.credits_pending == 0
            elif acc.code == PENDING:
                row[2] = acc.credits_posted - acc.debits_posted - acc.debits_pending
                assert row[2] >= 0
                assert acc.debits_pending == 0
                assert acc.credits_pending == 0
            else:
                assert acc.code == DEBT
                row[3] = acc.debits_posted - acc.credits_posted
                assert row[3] >= 0
        assert {x: tuple(v) for x, v in got.items()} == want
        for member in self.touched:
            b = queries.balance(s, pid, member, now=self.clock)
            seen = (b["available"], b["held"], b["pending"], b["debt"])
            # points past expiry that the job has not expired yet are not available
            shown = (m.spendable(member, self.clock), *want[member][1:])
            assert seen == shown, f"member {member}: balance {seen} != {shown}"
        self.touched.clear()
        # Every lot with points left sits where the model says, with what the model says.
        rows = s.execute(
            select(Account.member_id, Account.code, Lot)
            .join(Account, Account.id == Lot.account_id)
            .where(Lot.program_id == pid, Lot.remaining > 0)
        ).all()
        db_lots = Counter(
            (owner, code, lot.amount, lot.remaining, lot.earned_at, lot.expires_at)
            for owner, code, lot in rows
        )
        model_lots = Counter(
            (x.owner, x.account, x.amount, x.remaining, x.earned_at, x.expires_at)
            for x in m.lots
            if x.remaining > 0
        )
        assert db_lots == model_lots
        # Each hold resolved at most once, the way the model says.
        resolutions = s.execute(
            select(Transfer.pending_id, func.count(), func.min(Transfer.kind))
            .where(Transfer.program_id == pid, Transfer.pending_id.is_not(None))
            .group_by(Transfer.pending_id)
        ).all()
        assert all(n == 1 for _pid, n, _kind in resolutions)
        kinds = {hold_id: kind for hold_id, _n, kind in resolutions}
        for hold in m.holds:
            want_kind = {
                "open": None,
                "captured": "POST_PENDING",
                "voided": "VOID_PENDING",
                "expired": "EXPIRE_PENDING",
            }[hold.state]
            assert kinds.get(hold.id) == want_kind, f"hold {hold.id} should be {hold.state}"


def test_random_operations_keep_the_ledger_sound(fresh_db: Callable[[], Database]) -> None:
    machine = type("Machine", (LedgerMachine,), {"new_db": staticmethod(fresh_db)})
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=25,
            stateful_step_count=20,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        ),
    )
