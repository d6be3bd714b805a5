"""A simulated year of subscriptions with a controllable clock, in Jakarta time."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from setia.core.time import as_utc
from setia.memberships import service
from tests.memberships.conftest import JKT, World, jkt


def local_end(world: World, sub_id: object) -> object:
    sub = world.sub(sub_id)  # type: ignore[arg-type]
    return as_utc(sub.current_period_end).astimezone(JKT)


def test_monthly_renewals_across_month_ends_from_the_original_anchor(world: World) -> None:
    world.plan()
    m = world.member()
    sub_id = world.start(m, jkt(2024, 1, 31))
    assert local_end(world, sub_id) == jkt(2024, 2, 29)  # leap year
    expected = [jkt(2024, 3, 31), jkt(2024, 4, 30), jkt(2024, 5, 31), jkt(2024, 6, 30)]
    pay_at = jkt(2024, 2, 29, 9)
    for end in expected:
        res = world.pay(sub_id, pay_at)
        assert res.created
        assert res.payment.outcome == "renewed"
        assert local_end(world, sub_id) == end
        pay_at = end - timedelta(hours=1)
    sub = world.sub(sub_id)
    assert sub.status == "active"
    assert sub.periods_paid == 5
    # The benefit runs to the last local day of the paid period plus the grace days.
    assert world.benefits[-1] == (
        "set",
        {
            "tier_code": "gold",
            "mode": "protect",
            "until": date(2024, 7, 7),  # ends 30 Jun 10:00 + 7 days: lapses 7 Jul 10:00
            "actor": "test",
            "reference": str(sub_id),
        },
    )
    assert world.topics() == ["membership.started"] + ["membership.renewed"] * 4


def test_trial_then_first_payment(world: World) -> None:
    world.plan(trial_days=14)
    m = world.member()
    sub_id = world.start(m, jkt(2024, 3, 1), pay=False)
    sub = world.sub(sub_id)
    assert sub.status == "trialing"
    assert sub.periods_paid == 0
    assert as_utc(sub.current_period_end).astimezone(JKT) == jkt(2024, 3, 15)
    assert world.bonus_transfers(sub_id) == 0
    world.run(jkt(2024, 3, 10))
    assert world.sub(sub_id).status == "trialing"
    world.pay(sub_id, jkt(2024, 3, 14))
    sub = world.sub(sub_id)
    assert sub.status == "active"
    assert sub.first_paid_at is not None
    # The first paid period starts when the trial ends.
    assert as_utc(sub.current_period_start).astimezone(JKT) == jkt(2024, 3, 15)
    assert as_utc(sub.current_period_end).astimezone(JKT) == jkt(2024, 4, 15)
    world.run(jkt(2024, 3, 15, 11))
    assert world.bonus_transfers(sub_id) == 1


def test_trial_without_payment_lapses_after_grace(world: World) -> None:
    world.plan(trial_days=7, grace_days=3)
    sub_id = world.start(world.member(), jkt(2024, 3, 1), pay=False)
    world.run(jkt(2024, 3, 8, 10))
    assert world.sub(sub_id).status == "past_due"
    world.run(jkt(2024, 3, 11, 9))
    assert world.sub(sub_id).status == "past_due"
    world.run(jkt(2024, 3, 11, 10))
    sub = world.sub(sub_id)
    assert sub.status == "lapsed"
    assert sub.live_key is None
    assert world.benefits[-1][0] == "clear"


def test_failed_payment_past_due_then_lapsed_after_grace(world: World) -> None:
    world.plan()
    sub_id = world.start(world.member(), jkt(2024, 1, 15))
    res = world.pay(sub_id, jkt(2024, 2, 15, 9), status="failed")
    assert res.payment.outcome == "past_due"
    assert world.sub(sub_id).status == "past_due"
    # Benefits continue through the grace days: 15 Feb + 7 days.
    world.run(jkt(2024, 2, 22, 9, 59))
    assert world.sub(sub_id).status == "past_due"
    report = world.run(jkt(2024, 2, 22, 10))
    assert report.lapsed == 1
    sub = world.sub(sub_id)
    assert sub.status == "lapsed"
    assert as_utc(sub.ended_at).astimezone(JKT) == jkt(2024, 2, 22)
    assert world.topics() == [
        "membership.started",
        "membership.payment_failed",
        "membership.lapsed",
    ]
    # A late payment cannot revive it; the member can start again.
    with pytest.raises(service.SubscriptionEnded):
        world.pay(sub_id, jkt(2024, 2, 23))
    world.start(world.sub(sub_id).member_id, jkt(2024, 2, 23))


def test_missing_renewal_then_payment_within_grace_keeps_the_calendar(world: World) -> None:
    world.plan()
    sub_id = world.start(world.member(), jkt(2024, 1, 15))
    report = world.run(jkt(2024, 2, 15, 10))
    assert report.past_due == 1
    assert world.sub(sub_id).status == "past_due"
    world.pay(sub_id, jkt(2024, 2, 18))
    sub = world.sub(sub_id)
    assert sub.status == "active"
    assert sub.past_due_since is None
    assert as_utc(sub.current_period_end).astimezone(JKT) == jkt(2024, 3, 15)
    assert "membership.payment_failed" in world.topics()


def test_cancel_at_period_end_then_cancelled(world: World) -> None:
    world.plan()
    sub_id = world.start(world.member(), jkt(2024, 5, 31))
    sub = world.cancel(sub_id, jkt(2024, 6, 10))
    assert sub.status == "active"
    assert sub.cancel_at_period_end
    world.run(jkt(2024, 6, 30, 9))
    assert world.sub(sub_id).status == "active"
    report = world.run(jkt(2024, 6, 30, 10))
    assert report.cancelled == 1
    assert report.past_due == 0
    sub = world.sub(sub_id)
    assert sub.status == "cancelled"
    assert sub.end_reason == "cancelled"
    assert world.topics()[-1] == "membership.cancelled"
    assert world.benefits[-1][0] == "clear"
    with pytest.raises(service.SubscriptionEnded):
        world.resume(sub_id, jkt(2024, 7, 1))


def test_resume_before_period_end(world: World) -> None:
    world.plan()
    sub_id = world.start(world.member(), jkt(2024, 5, 1))
    world.cancel(sub_id, jkt(2024, 5, 10))
    sub = world.resume(sub_id, jkt(2024, 5, 20))
    assert not sub.cancel_at_period_end
    world.run(jkt(2024, 6, 1, 10))
    assert world.sub(sub_id).status == "past_due"  # no payment came: not cancelled


def test_refund_of_the_current_period_ends_at_once(world: World) -> None:
    world.plan()
    sub_id = world.start(world.member(), jkt(2024, 1, 10))
    first = world.pay(sub_id, jkt(2024, 2, 10, 9), external_id="ORD-FEB")
    assert first.created
    world.pay(None, jkt(2024, 2, 12), status="refunded", external_id="ORD-FEB")
    sub = world.sub(sub_id)
    assert sub.status == "cancelled"
    assert sub.end_reason == "refunded"
    assert world.topics()[-2:] == ["membership.refunded", "membership.cancelled"]


def test_refund_of_an_earlier_period_only_records(world: World) -> None:
    world.plan()
    sub_id = world.start(world.member(), jkt(2024, 1, 10))
    world.pay(sub_id, jkt(2024, 2, 10, 9), external_id="ORD-FEB")
    world.pay(sub_id, jkt(2024, 3, 10, 9), external_id="ORD-MAR")
    res = world.pay(None, jkt(2024, 3, 12), status="refunded", external_id="ORD-FEB")
    assert res.payment.outcome == "recorded"
    assert world.sub(sub_id).status == "active"
    with pytest.raises(service.RefundExceedsPayment):
        world.pay(None, jkt(2024, 3, 13), status="refunded", external_id="R-2", refund_of="ORD-FEB")


def test_payment_webhook_retry_is_idempotent_and_reuse_is_refused(world: World) -> None:
    world.plan()
    sub_id = world.start(world.member(), jkt(2024, 1, 10))
    a = world.pay(sub_id, jkt(2024, 2, 10, 9), external_id="ORD-X", payload={"a": 1})
    b = world.pay(sub_id, jkt(2024, 2, 10, 9), external_id="ORD-X", payload={"a": 1})
    assert a.created
    assert not b.created
    assert a.payment.id == b.payment.id
    assert world.sub(sub_id).periods_paid == 2  # renewed once
    with pytest.raises(service.PaymentIdReused):
        world.pay(sub_id, jkt(2024, 2, 10, 9), external_id="ORD-X", payload={"a": 2})
    with pytest.raises(service.PaymentIdReused):
        world.pay(sub_id, jkt(2024, 2, 10, 9), status="failed", external_id="ORD-X")


def test_pending_then_settlement_with_the_same_id(world: World) -> None:
    world.plan()
    sub_id = world.start(world.member(), jkt(2024, 1, 10))
    p = world.pay(sub_id, jkt(2024, 2, 10, 8), status="pending", external_id="ORD-P")
    assert p.payment.outcome == "recorded"
    assert world.sub(sub_id).periods_paid == 1
    world.pay(sub_id, jkt(2024, 2, 10, 9), external_id="ORD-P")
    assert world.sub(sub_id).periods_paid == 2


def test_wrong_amount_or_currency_is_refused(world: World) -> None:
    world.plan()
    sub_id = world.start(world.member(), jkt(2024, 1, 10))
    with pytest.raises(service.PaymentAmountMismatch):
        world.pay(sub_id, jkt(2024, 2, 10), amount="45000")
    with pytest.raises(service.PaymentCurrencyMismatch):
        world.pay(sub_id, jkt(2024, 2, 10), currency="MYR")
    with pytest.raises(service.PaymentAmountMismatch):
        world.start(world.member("Budi"), jkt(2024, 1, 10), amount="10000")


def test_one_live_subscription_per_member(world: World) -> None:
    world.plan()
    m = world.member()
    world.start(m, jkt(2024, 1, 10))
    with pytest.raises(service.MembershipExists):
        world.start(m, jkt(2024, 1, 11))


def test_plan_change_keeps_the_price_sold(world: World) -> None:
    from setia.memberships.schemas import PlanPatch
    from setia.programs.models import Program

    plan_id = world.plan()
    sub_id = world.start(world.member(), jkt(2024, 1, 10))
    with world.db.session() as s:
        program = s.get(Program, world.t.program_id)
        plan = s.get(service.MembershipPlan, plan_id)
        assert program is not None
        assert plan is not None
        service.update_plan(s, program, plan, PlanPatch(price="59000"), actor="test")
        assert plan.revision == 2
        assert [r.revision for r in service.plan_revisions(s, plan_id)] == [1, 2]
    world.pay(sub_id, jkt(2024, 2, 10))  # the old price still renews
    with pytest.raises(service.PaymentAmountMismatch):
        world.start(world.member("Budi"), jkt(2024, 2, 10))
    world.start(world.member("Budi"), jkt(2024, 2, 10), amount="59000")


def test_bonus_points_once_per_month_even_when_run_twice(world: World) -> None:
    world.plan(period="yearly", price="490000")
    sub_id = world.start(world.member(), jkt(2024, 1, 31), amount="490000")
    assert world.bonus_transfers(sub_id) == 1  # month 0 at the start
    for month_end in (jkt(2024, 2, 29, 10), jkt(2024, 3, 31, 10), jkt(2024, 4, 30, 10)):
        world.run(month_end - timedelta(minutes=1))
        world.run(month_end)
        world.run(month_end)
    assert world.bonus_transfers(sub_id) == 4
    world.run(jkt(2025, 6, 1))  # the year is paid: 12 months, not more
    assert world.bonus_transfers(sub_id) == 12
    assert world.sub(sub_id).status == "lapsed"


def test_rules_context_sees_the_plan(world: World) -> None:
    from setia.events.benefits import member_benefits_many

    world.plan()
    a, b = world.member("A"), world.member("B")
    world.start(a, jkt(2024, 1, 10))
    with world.db.session() as s:
        got = member_benefits_many(s, world.t.program_id, [a, b])
    assert got[a]["plan"] == "plus"
    assert str(got[a]["plan_multiplier"]) in ("1.5", "1.5000")
    assert got[b]["plan"] is None
    assert got[b]["plan_multiplier"] == 1


def test_the_general_job_runner_includes_memberships(world: World) -> None:
    from setia.jobs.service import run_due

    world.plan()
    sub_id = world.start(world.member(), jkt(2024, 1, 10))
    report = run_due(world.db, jkt(2024, 2, 10, 10))
    assert report.memberships == {"past_due": 1}
    assert world.sub(sub_id).status == "past_due"
    assert run_due(world.db, jkt(2024, 2, 10, 10)).memberships == {}


def test_subscriptions_waiting_out_their_grace_do_not_hold_up_the_rest(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from setia.memberships import jobs

    monkeypatch.setattr(jobs, "BATCH", 2)
    world.plan()
    waiting = [world.start(world.member(f"W{i}"), jkt(2024, 1, 10)) for i in range(3)]
    later = [world.start(world.member(f"L{i}"), jkt(2024, 1, 11)) for i in range(2)]
    assert world.run(jkt(2024, 2, 10, 10)).past_due == 3
    # The three are still inside their grace days: nothing to do for them, and the two
    # whose period ends a day later are reached all the same, two at a time.
    assert world.run(jkt(2024, 2, 11, 10)).past_due == 2
    assert {world.sub(s).status for s in waiting + later} == {"past_due"}
