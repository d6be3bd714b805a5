"""Many writers on one wallet at once (PostgreSQL: real row locks): no overdraft, refunds
never exceed the debit, one idempotency key writes once."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from setia.app import create_app
from setia.core.db import Database
from setia.ledger.models import Transfer
from tests.conftest import TenantFixture
from tests.ledger.support import assert_db_sound, new_member, tx
from tests.rules.test_concurrency import race

pytestmark = pytest.mark.postgres_only


def post(c: TestClient, t: TenantFixture, path: str, body: dict[str, Any], key: str | None) -> Any:
    headers = {**t.headers, **({"Idempotency-Key": key} if key else {})}
    return c.post(f"/v1{path}", json=body, headers=headers)


def test_ten_debits_at_once_never_overdraw(db: Database, tenant: TenantFixture) -> None:
    m = new_member(db, tenant, "w")
    with TestClient(create_app(db)) as c:
        body = {"amount": "30000", "code": "TOPUP", "reason": "load"}
        assert post(c, tenant, f"/members/{m}/wallet/credits", body, "k").status_code == 201
    # 10 debits and holds of 7000 against 30000: exactly 4 fit.
    statuses = race(
        10,
        lambda c, i: (
            post(
                c,
                tenant,
                f"/members/{m}/wallet/{'holds' if i % 2 else 'debits'}",
                {"amount": "7000", "order_id": f"o-{i}"},
                f"d-{i}",
            )
            .json()
            .get("code", "ok")
        ),
        db,
    )
    assert sorted(statuses) == ["insufficient_wallet_balance"] * 6 + ["ok"] * 4
    with TestClient(create_app(db)) as c:
        w = c.get(f"/v1/members/{m}/wallet", headers=tenant.headers).json()
    assert int(w["available"]) + int(w["held"]) == 30000 - 4 * 7000 + int(w["held"])
    assert int(w["available"]) == 2000
    assert_db_sound(db)


def test_parallel_refunds_never_exceed_the_debit(db: Database, tenant: TenantFixture) -> None:
    m = new_member(db, tenant, "w")
    with TestClient(create_app(db)) as c:
        post(
            c,
            tenant,
            f"/members/{m}/wallet/credits",
            {"amount": "10000", "code": "TOPUP", "reason": "load"},
            "k",
        )
        d = post(
            c, tenant, f"/members/{m}/wallet/debits", {"amount": "10000", "order_id": "o"}, "d"
        ).json()
    tid = d["transfer_id"]
    # Ten different refunds of 3000 of a 10000 debit: three fit.
    codes = race(
        10,
        lambda c, i: (
            post(c, tenant, f"/wallet-debits/{tid}/refund", {"amount": "3000"}, f"r-{i}")
            .json()
            .get("code", "ok")
        ),
        db,
    )
    assert sorted(codes) == ["ok"] * 3 + ["return_exceeds_spent"] * 7
    # Ten retries of one refund: one RETURN.
    statuses = race(
        10,
        lambda c, _i: (
            post(c, tenant, f"/wallet-debits/{tid}/refund", {"amount": "1000"}, "same").status_code
        ),
        db,
    )
    assert sorted(statuses) == [200] * 9 + [201]
    returns = tx(
        db,
        lambda s: s.execute(
            select(func.count(), func.sum(Transfer.amount)).where(Transfer.code == "RETURN")
        ).one(),
    )
    assert tuple(returns) == (4, 10000)
    with TestClient(create_app(db)) as c:
        w = c.get(f"/v1/members/{m}/wallet", headers=tenant.headers).json()
    assert w["available"] == "10000"
    assert_db_sound(db)


def test_parallel_captures_resolve_a_hold_once(db: Database, tenant: TenantFixture) -> None:
    m = new_member(db, tenant, "w")
    with TestClient(create_app(db)) as c:
        post(
            c,
            tenant,
            f"/members/{m}/wallet/credits",
            {"amount": "10000", "code": "TOPUP", "reason": "load"},
            "k",
        )
        h1 = post(
            c, tenant, f"/members/{m}/wallet/holds", {"amount": "4000", "order_id": "a"}, "h1"
        ).json()["hold_id"]
        h2 = post(
            c, tenant, f"/members/{m}/wallet/holds", {"amount": "4000", "order_id": "b"}, "h2"
        ).json()["hold_id"]
    # Ten different captures and voids of one hold: exactly one resolves it.
    codes = race(
        10,
        lambda c, i: (
            post(c, tenant, f"/wallet-holds/{h1}/{'capture' if i % 2 else 'void'}", {}, f"c-{i}")
            .json()
            .get("code", "ok")
        ),
        db,
    )
    assert sorted(codes) == ["hold_not_open"] * 9 + ["ok"]
    # Ten retries of one capture: all see the same capture.
    got = race(
        10,
        lambda c, _i: (
            post(c, tenant, f"/wallet-holds/{h2}/capture", {"amount": "3000"}, "same")
            .json()
            .get("capture_transfer_id")
        ),
        db,
    )
    assert len(set(got)) == 1
    assert got[0] is not None
    resolutions = tx(
        db,
        lambda s: s.execute(
            select(func.count()).where(Transfer.kind.in_(("POST_PENDING", "VOID_PENDING")))
        ).scalar_one(),
    )
    assert resolutions == 2
    assert_db_sound(db)
