"""Paying with points under real concurrency (PostgreSQL: row locks, parallel writers)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from setia.checkout.models import PointsPayment
from setia.checkout.schemas import PointsPaymentIn
from setia.ledger.models import Account
from setia.tenants.models import Tenant
from tests.checkout.conftest import Till
from tests.rules.test_concurrency import race


def _post(client: TestClient, till: Till, body: dict[str, Any], key: str | None = None) -> Any:
    headers = dict(till.t.headers)
    if key:
        headers["Idempotency-Key"] = key
    return client.post("/v1/checkout/points-payments", json=body, headers=headers)


@pytest.mark.postgres_only
def test_two_payments_for_one_order_at_once_one_wins(till: Till) -> None:
    members = [till.member(f"M{i}") for i in range(2)]
    for m in members:
        till.grant(m, 1_000)
    for round_ in range(5):
        order = f"RACE-{round_}"

        def pay(client: TestClient, i: int, order: str = order) -> Any:
            body = {
                "member_id": members[i],
                "order_id": order,
                "points": 100,
                "order_total": "1000",
                "currency": "IDR",
            }
            return _post(client, till, body)

        results = race(2, pay, till.db)
        codes = Counter(
            (r.status_code, r.json().get("code") if r.status_code >= 400 else None) for r in results
        )
        assert codes == {(201, None): 1, (409, "order_already_paid_with_points"): 1}, codes
        assert [p["status"] for p in till.order(order)["points_payments"]] == ["held"]
    held = [till.balance(m)["held"] for m in members]
    assert sum(held) == 5 * 100
    till.sound()


@pytest.mark.postgres_only
def test_same_idempotency_key_at_once_holds_once(till: Till) -> None:
    m = till.member()
    till.grant(m, 1_000)
    body = {"member_id": m, "order_id": "K-1", "points": 100, "order_total": "1000"}

    def pay(client: TestClient, i: int) -> Any:
        return _post(client, till, {**body, "currency": "IDR"}, key="same-key")

    results = race(4, pay, till.db)
    assert sorted(r.status_code for r in results) == [200, 200, 200, 201]
    assert len({r.json()["id"] for r in results}) == 1
    assert till.balance(m)["held"] == 100
    till.sound()


@pytest.mark.postgres_only
def test_ten_payments_by_one_member_whose_balance_covers_three(till: Till) -> None:
    m = till.member()
    till.grant(m, 3_500)

    def pay(client: TestClient, i: int) -> Any:
        body = {
            "member_id": m,
            "order_id": f"TEN-{i}",
            "points": 1_000,
            "order_total": "5000",
            "currency": "IDR",
        }
        return _post(client, till, body)

    results = race(10, pay, till.db)
    codes = Counter(
        (r.status_code, r.json().get("code") if r.status_code >= 400 else None) for r in results
    )
    assert codes == {(201, None): 3, (409, "insufficient_points"): 7}, codes
    bal = till.balance(m)
    assert (bal["available"], bal["held"]) == (500, 3_000)
    with till.db.session() as s:
        assert s.execute(select(func.count()).select_from(PointsPayment)).scalar_one() == 3
        negative = s.execute(
            select(func.count())
            .select_from(Account)
            .where(
                Account.member_id.is_not(None),
                Account.credits_posted - Account.debits_posted - Account.debits_pending < 0,
                Account.code != "DEBT",
            )
        ).scalar_one()
        assert negative == 0
    till.sound()


@pytest.mark.postgres_only
def test_capture_and_release_of_one_payment_at_once_resolve_it_once(till: Till) -> None:
    m = till.member()
    till.grant(m, 10_000)
    payments = [till.held(m, f"CR-{i}", 1_000)["id"] for i in range(5)]

    for pid in payments:

        def act(client: TestClient, i: int, pid: str = pid) -> Any:
            action = "capture" if i % 2 == 0 else "release"
            return client.post(
                f"/v1/checkout/points-payments/{pid}/{action}", headers=till.t.headers
            )

        results = race(4, act, till.db)
        ok = [r for r in results if r.status_code == 200]
        status = till.ok(till.get(f"/v1/checkout/points-payments/{pid}"))["status"]
        assert status in ("captured", "released")
        # Every answer that succeeded agrees with the one resolution.
        assert {r.json()["status"] for r in ok} == {status}
        assert all(r.json()["code"] == "hold_not_open" for r in results if r.status_code != 200)
    bal = till.balance(m)
    captured = sum(
        till.ok(till.get(f"/v1/checkout/points-payments/{p}"))["points"] for p in payments
    )
    assert (bal["available"], bal["held"]) == (10_000 - captured, 0)
    till.sound()


@pytest.mark.postgres_only
def test_parallel_refunds_give_back_exactly_the_captured_points(till: Till) -> None:
    m = till.member()
    till.grant(m, 20_000)
    till.paid(m, "PR-1", 10_000, total="60000")  # no purchase event: refunded through the API
    till.paid(m, "PR-2", 7_000, total="70000")
    till.purchase(m, "PR-2", "70000")  # earns 70

    def direct(client: TestClient, i: int) -> Any:
        return client.post(
            "/v1/checkout/orders/PR-1/refund",
            json={"amount": "10000"},
            headers={**till.t.headers, "Idempotency-Key": f"pr1-{i}"},
        )

    results = race(6, direct, till.db)
    assert sorted(r.status_code for r in results) == [201] * 6
    assert sum(r.json()["points_returned"] for r in results) == 10_000
    assert sum(r.json()["fully_refunded"] for r in results) == 1

    def by_event(client: TestClient, i: int) -> Any:
        # Events 0-4 are five different refunds of 14.000; 5-7 resend event 0.
        body = {
            "id": f"pr2-{i if i < 5 else 0}",
            "type": "refund",
            "member": {"id": m},
            "order_id": "PR-2",
            "amount": "14000",
            "currency": "IDR",
        }
        return client.post("/v1/events", json=body, headers=till.t.headers)

    results = race(8, by_event, till.db)
    assert all(r.status_code in (200, 201) for r in results), [r.text for r in results]
    firsts = {r.json()["id"]: r.json()["refund"] for r in results}
    assert len(firsts) == 5
    assert sum(f["checkout"]["points_returned"] for f in firsts.values()) == 7_000
    assert sum(f["points_reversed"] for f in firsts.values()) == 70
    assert till.available(m) == 20_000
    assert till.order("PR-2")["points_returned"] == 7_000
    till.sound()


@pytest.mark.postgres_only
def test_a_retry_committed_between_the_key_look_up_and_the_order_claim_is_a_replay(
    till: Till, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The window the race above hits now and then, made certain: the first request looks
    # its Idempotency-Key up (nothing yet), then the same request from another till commits,
    # then the first claims the order and finds the other's payment: that is the same
    # request, answered as a replay (200), not a conflict (409).
    from setia.checkout import service as checkout

    m = till.member()
    till.grant(m, 1_000)
    body = {
        "member_id": m,
        "order_id": "K-2",
        "points": 100,
        "order_total": "1000",
        "currency": "IDR",
    }
    real = checkout.programs.get_program
    other: list[Any] = []
    started: list[bool] = []

    def get_program(*args: Any, **kwargs: Any) -> Any:
        if not started:
            started.append(True)
            # The other till's request, whole and committed, in a session of its own.
            with till.db.session() as s:
                tenant = s.get(Tenant, till.t.tenant_id)
                assert tenant is not None
                payment, created = checkout.create_payment(
                    s,
                    tenant,
                    PointsPaymentIn.model_validate(body),
                    actor="test",
                    idempotency_key="same-key-2",
                )
                s.commit()
                other.append((str(payment.id), created))
        return real(*args, **kwargs)

    monkeypatch.setattr(checkout.programs, "get_program", get_program)
    first = _post(till.c, till, body, key="same-key-2")
    assert other, first.text
    assert other[0][1] is True
    assert first.status_code == 200, first.text
    assert first.json()["id"] == other[0][0]
    assert till.balance(m)["held"] == 100
    till.sound()
