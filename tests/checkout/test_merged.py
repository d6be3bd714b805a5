"""Refunds of orders paid with points whose member was merged since: the points paid come
back to the survivor, exactly once (by event and by the direct refund API)."""

from __future__ import annotations

from tests.checkout.conftest import Till


def merge(till: Till, survivor: str, source: str) -> None:
    till.ok(
        till.post(
            f"/v1/members/{survivor}/merge",
            {"source_member_id": source, "reason": "same person, two phones"},
        )
    )


def test_refund_event_after_a_merge_returns_the_points_to_the_survivor(till: Till) -> None:
    a, b = till.member("A"), till.member("B")
    till.grant(a, 10_000)
    till.paid(a, "INV-M1", 4_000, total="50000")
    till.purchase(a, "INV-M1", "50000")  # earns 50
    merge(till, b, a)
    assert till.available(b) == 6_050
    out = till.refund_event(b, "INV-M1", "50000", "ref-m1")["refund"]
    assert out["checkout"]["points_returned"] == 4_000
    assert till.refund_event(b, "INV-M1", "50000", "ref-m1")["refund"] == out
    assert till.available(b) == 10_000
    till.sound()


def test_direct_refund_after_a_merge_returns_the_points_to_the_survivor(till: Till) -> None:
    a, b = till.member("A"), till.member("B")
    till.grant(a, 10_000)
    till.paid(a, "INV-M2", 4_000, total="50000")
    merge(till, b, a)
    first = till.ok(till.refund("INV-M2", "25000", key="half"), 201)
    assert first["points_returned"] == 2_000
    assert till.ok(till.refund("INV-M2", "25000", key="half"))["points_returned"] == 2_000
    assert till.available(b) == 8_000
    assert till.ok(till.refund("INV-M2", "25000"), 201)["points_returned"] == 2_000
    assert till.available(b) == 10_000
    till.sound()
