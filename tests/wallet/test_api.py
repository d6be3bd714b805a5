"""The wallet API end to end: credits, debits, holds, refunds, merges, and ledger verify."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from setia.core.db import Database
from setia.core.time import utcnow
from setia.jobs.service import run_due
from setia.ledger.models import Transfer
from setia.programs.models import Program
from setia.tenants import service as tenants
from setia.wallet import service as wallet
from tests.conftest import TenantFixture, make_tenant
from tests.ledger.support import assert_db_sound, new_member, tx


class Api:
    def __init__(self, client: TestClient, t: TenantFixture) -> None:
        self.c = client
        self.t = t

    def post(self, path: str, body: dict[str, Any] | None = None, key: str | None = None) -> Any:
        headers = dict(self.t.headers)
        if key:
            headers["Idempotency-Key"] = key
        return self.c.post(f"/v1{path}", json=body or {}, headers=headers)

    def get(self, path: str, **params: Any) -> Any:
        return self.c.get(f"/v1{path}", params=params, headers=self.t.headers)

    def credit(self, m: uuid.UUID, amount: str, key: str | None = None, **kw: Any) -> Any:
        body = {"amount": amount, "code": "TOPUP", "reason": "counter top-up", **kw}
        return self.post(f"/members/{m}/wallet/credits", body, key)

    def wallet(self, m: uuid.UUID) -> dict[str, Any]:
        r = self.get(f"/members/{m}/wallet")
        assert r.status_code == 200, r.text
        data: dict[str, Any] = r.json()
        return data


@pytest.fixture
def api(client: TestClient, tenant: TenantFixture) -> Api:
    return Api(client, tenant)


def test_credit_debit_and_statement(db: Database, api: Api, tenant: TenantFixture) -> None:
    m = new_member(db, tenant, "w1")
    assert api.wallet(m)["available"] == "0"
    r = api.credit(m, "25000", "top-1", source_type="gift_card", source_id="GC-1")
    assert r.status_code == 201, r.text
    assert r.json()["amount"] == "25000"
    assert r.json()["wallet"]["available"] == "25000"
    # The same key and body: the first result, nothing new written.
    again = api.credit(m, "25000", "top-1", source_type="gift_card", source_id="GC-1")
    assert again.status_code == 200
    assert again.json()["transfer_id"] == r.json()["transfer_id"]
    assert again.json()["created"] is False
    # The same key, another body.
    other = api.credit(m, "30000", "top-1", source_type="gift_card", source_id="GC-1")
    assert other.status_code == 409
    assert other.json()["code"] == "idempotency_key_reused"

    d = api.post(f"/members/{m}/wallet/debits", {"amount": "10000", "order_id": "o-1"}, "pay-1")
    assert d.status_code == 201, d.text
    assert d.json()["wallet"]["available"] == "15000"
    assert (
        api.post(
            f"/members/{m}/wallet/debits", {"amount": "10000", "order_id": "o-1"}, "pay-1"
        ).status_code
        == 200
    )
    short = api.post(f"/members/{m}/wallet/debits", {"amount": "15001", "order_id": "o-2"}, "pay-2")
    assert short.status_code == 409
    assert short.json()["code"] == "insufficient_wallet_balance"
    assert short.json()["available"] == "15000"

    w = api.wallet(m)
    assert w["currency"] == "IDR"
    assert w["available"] == "15000"
    assert w["held"] == "0"
    assert w["lifetime"]["credited"] == "25000"
    assert w["lifetime"]["spent"] == "10000"
    assert w["lifetime"]["returned"] == "0"

    st = api.get(f"/members/{m}/wallet/statement").json()
    assert [(line["code"], line["amount"], line["balance_after"]) for line in st["data"]] == [
        ("WALLET_SPEND", "-10000", "15000"),
        ("TOPUP", "25000", "25000"),
    ]
    assert st["data"][1]["source_type"] == "gift_card"
    assert st["data"][1]["source_id"] == "GC-1"
    assert st["data"][1]["reason"] == "counter top-up"
    assert st["data"][0]["source_id"] == "o-1"
    assert_db_sound(db)


def test_statement_pages_with_a_cursor(db: Database, api: Api, tenant: TenantFixture) -> None:
    m = new_member(db, tenant, "w1")
    for i in range(5):
        assert api.credit(m, str(1000 * (i + 1)), f"k{i}").status_code == 201
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = api.get(f"/members/{m}/wallet/statement", **params).json()
        seen += [line["amount"] for line in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ["5000", "4000", "3000", "2000", "1000"]


def test_bad_amounts_are_refused_and_nothing_is_written(
    db: Database, api: Api, tenant: TenantFixture
) -> None:
    m = new_member(db, tenant, "w1")
    for amount, code in (
        ("0", "invalid_amount"),
        ("-5", "invalid_amount"),
        ("12.5", "too_many_decimals"),
        ("abc", "invalid_amount"),
        ("NaN", "invalid_amount"),
    ):
        r = api.credit(m, amount)
        assert r.status_code == 422, (amount, r.text)
        assert r.json()["code"] == code, amount
    as_number = {"amount": 25000, "code": "TOPUP", "reason": "a number, not a string"}
    assert api.post(f"/members/{m}/wallet/credits", as_number).status_code == 422
    bad_code = api.credit(m, "100", code="FREE_MONEY")
    assert bad_code.status_code == 422
    assert bad_code.json()["code"] == "invalid_credit_code"
    r = api.post(f"/members/{m}/wallet/debits", {"amount": "1.5", "order_id": "o"})
    assert r.json()["code"] == "too_many_decimals"
    count = tx(db, lambda s: s.execute(select(func.count()).select_from(Transfer)).scalar_one())
    assert count == 0
    assert api.wallet(m)["lifetime"]["credited"] == "0"


def test_myr_wallet_has_sen(db: Database, client: TestClient) -> None:
    t = make_tenant(db, name="Kedai", country="MY", currency="MYR", timezone="Asia/Kuala_Lumpur")
    api = Api(client, t)
    m = new_member(db, t, "my1")
    assert api.credit(m, "12.5").json()["wallet"]["available"] == "12.50"
    assert api.credit(m, "12.555").json()["code"] == "too_many_decimals"
    d = api.post(f"/members/{m}/wallet/debits", {"amount": "0.05", "order_id": "o"})
    assert d.json()["wallet"]["available"] == "12.45"
    assert_db_sound(db)


def test_other_tenants_and_scopes(db: Database, api: Api, tenant: TenantFixture) -> None:
    other = make_tenant(db, name="Other")
    stranger = new_member(db, other, "x")
    assert api.get(f"/members/{stranger}/wallet").status_code == 404
    assert api.credit(stranger, "100").status_code == 404
    r = api.post(f"/members/{stranger}/wallet/debits", {"amount": "1", "order_id": "o"})
    assert r.status_code == 404
    r = api.post(f"/members/{stranger}/wallet/holds", {"amount": "1", "order_id": "o"})
    assert r.status_code == 404
    # Their holds and debits are not ours either.
    theirs = Api(api.c, other)
    theirs.credit(stranger, "1000")
    hold = theirs.post(f"/members/{stranger}/wallet/holds", {"amount": "100", "order_id": "o"})
    debit = theirs.post(f"/members/{stranger}/wallet/debits", {"amount": "100", "order_id": "o"})
    assert api.post(f"/wallet-holds/{hold.json()['hold_id']}/void").status_code == 404
    assert api.get(f"/wallet-holds/{hold.json()['hold_id']}").status_code == 404
    r = api.post(f"/wallet-debits/{debit.json()['transfer_id']}/refund", {"amount": "1"})
    assert r.status_code == 404
    # A points hold is not a wallet hold.
    m = new_member(db, tenant, "w1")
    tx_id = api.credit(m, "1000").json()["transfer_id"]
    assert api.post(f"/wallet-debits/{tx_id}/refund", {"amount": "1"}).status_code == 404
    # A read key cannot move money, a pos key cannot credit.
    with db.session() as s:
        _k, read_secret = tenants.create_key(s, tenant.tenant_id, scope="read", name="r")
        _k, pos_secret = tenants.create_key(s, tenant.tenant_id, scope="pos", name="p")
    read = {"Authorization": f"Bearer {read_secret}"}
    pos = {"Authorization": f"Bearer {pos_secret}"}
    body = {"amount": "1", "code": "TOPUP", "reason": "why not"}
    assert api.c.post(f"/v1/members/{m}/wallet/credits", json=body, headers=pos).status_code == 403
    debit_body = {"amount": "1", "order_id": "o"}
    r = api.c.post(f"/v1/members/{m}/wallet/debits", json=debit_body, headers=read)
    assert r.status_code == 403
    assert api.c.get(f"/v1/members/{m}/wallet", headers=read).status_code == 200
    r = api.c.post(f"/v1/members/{m}/wallet/debits", json=debit_body, headers=pos)
    assert r.status_code == 201
    assert_db_sound(db)


def test_hold_capture_part_then_refund_exactly_once(
    db: Database, api: Api, tenant: TenantFixture
) -> None:
    m = new_member(db, tenant, "w1")
    api.credit(m, "50000", "t")
    h = api.post(f"/members/{m}/wallet/holds", {"amount": "30000", "order_id": "o-9"}, "h-1")
    assert h.status_code == 201, h.text
    hold = h.json()
    assert hold["status"] == "open"
    assert hold["amount"] == "30000"
    assert hold["order_id"] == "o-9"
    again = api.post(f"/members/{m}/wallet/holds", {"amount": "30000", "order_id": "o-9"}, "h-1")
    assert again.status_code == 200
    assert again.json()["hold_id"] == hold["hold_id"]
    w = api.wallet(m)
    assert (w["available"], w["held"]) == ("20000", "30000")
    # Cannot hold more than is available.
    r = api.post(f"/members/{m}/wallet/holds", {"amount": "20001", "order_id": "o-10"})
    assert r.status_code == 409
    assert r.json()["code"] == "insufficient_wallet_balance"

    hid = hold["hold_id"]
    too_much = api.post(f"/wallet-holds/{hid}/capture", {"amount": "30001"}, "c-0")
    assert too_much.status_code == 409
    assert too_much.json()["code"] == "capture_exceeds_hold"
    assert too_much.json()["held"] == "30000"
    c = api.post(f"/wallet-holds/{hid}/capture", {"amount": "25000"}, "c-1")
    assert c.status_code == 200, c.text
    assert c.json()["status"] == "captured"
    assert c.json()["captured"] == "25000"
    assert api.post(f"/wallet-holds/{hid}/capture", {"amount": "25000"}, "c-1").status_code == 200
    assert api.post(f"/wallet-holds/{hid}/void", None, "v-1").json()["code"] == "hold_not_open"
    w = api.wallet(m)
    assert (w["available"], w["held"]) == ("25000", "0")
    assert w["lifetime"]["spent"] == "25000"

    capture_id = c.json()["capture_transfer_id"]
    r1 = api.post(f"/wallet-debits/{capture_id}/refund", {"amount": "10000"}, "rf-1")
    assert r1.status_code == 201, r1.text
    assert r1.json()["refunded"] == "10000"
    assert r1.json()["refundable"] == "15000"
    assert r1.json()["wallet"]["available"] == "35000"
    # The same key again gives nothing more back.
    r1b = api.post(f"/wallet-debits/{capture_id}/refund", {"amount": "10000"}, "rf-1")
    assert r1b.status_code == 200
    assert r1b.json()["transfer_id"] == r1.json()["transfer_id"]
    assert r1b.json()["wallet"]["available"] == "35000"
    # More than is left is refused, with what is left.
    over = api.post(f"/wallet-debits/{capture_id}/refund", {"amount": "15001"}, "rf-2")
    assert over.status_code == 409
    assert over.json()["code"] == "return_exceeds_spent"
    assert over.json()["returnable"] == "15000"
    r2 = api.post(f"/wallet-debits/{capture_id}/refund", {"amount": "15000"}, "rf-3")
    assert r2.json()["refundable"] == "0"
    assert r2.json()["refunded_total"] == "25000"
    assert (
        api.post(f"/wallet-debits/{capture_id}/refund", {"amount": "1"}, "rf-4").status_code == 409
    )
    # The hold itself is not a debit.
    assert api.post(f"/wallet-debits/{hid}/refund", {"amount": "1"}, "rf-5").status_code == 404
    w = api.wallet(m)
    assert w["available"] == "50000"
    assert w["lifetime"]["returned"] == "25000"
    assert_db_sound(db)


def test_refund_of_a_debit(db: Database, api: Api, tenant: TenantFixture) -> None:
    m = new_member(db, tenant, "w1")
    api.credit(m, "10000")
    d = api.post(f"/members/{m}/wallet/debits", {"amount": "8000", "order_id": "o"}, "d")
    tid = d.json()["transfer_id"]
    r = api.post(f"/wallet-debits/{tid}/refund", {"amount": "8000", "reason": "returned"}, "r")
    assert r.status_code == 201
    assert r.json()["wallet"]["available"] == "10000"
    st = api.get(f"/members/{m}/wallet/statement").json()["data"]
    assert (st[0]["code"], st[0]["amount"], st[0]["source_id"]) == ("RETURN", "8000", "o")
    assert_db_sound(db)


def test_void_and_expiry_by_the_job(db: Database, api: Api, tenant: TenantFixture) -> None:
    m = new_member(db, tenant, "w1")
    api.credit(m, "10000")
    h1 = api.post(f"/members/{m}/wallet/holds", {"amount": "4000", "order_id": "a"}).json()
    h2 = api.post(
        f"/members/{m}/wallet/holds", {"amount": "5000", "order_id": "b", "timeout_minutes": 5}
    ).json()
    assert api.wallet(m)["held"] == "9000"
    v = api.post(f"/wallet-holds/{h1['hold_id']}/void")
    assert v.json()["status"] == "voided"
    assert api.wallet(m)["available"] == "5000"
    # Before its deadline the job leaves the hold alone; after it, the job expires it.
    assert run_due(db, utcnow() + timedelta(minutes=4)).expired_holds == 0
    report = run_due(db, utcnow() + timedelta(minutes=6))
    assert report.expired_holds == 1
    got = api.get(f"/wallet-holds/{h2['hold_id']}").json()
    assert got["status"] == "expired"
    w = api.wallet(m)
    assert (w["available"], w["held"]) == ("10000", "0")
    assert w["lifetime"]["spent"] == "0"
    assert run_due(db, utcnow() + timedelta(minutes=60)).expired_holds == 0
    assert_db_sound(db)


def test_capture_after_the_deadline_is_refused(
    db: Database, api: Api, tenant: TenantFixture
) -> None:
    m = new_member(db, tenant, "w1")
    api.credit(m, "10000")
    h = api.post(f"/members/{m}/wallet/holds", {"amount": "4000", "order_id": "a"}).json()
    # A hold whose deadline has already passed (the job has not run yet).
    with db.session() as s:
        program = s.get(Program, tenant.program_id)
        assert program is not None
        res = wallet.debit(
            s,
            program=program,
            member_id=m,
            amount=Decimal(1000),
            order_id="late",
            idempotency_key="late",
            actor="test",
            hold_for=timedelta(seconds=-1),
        )
    late = res.transfer_id
    r = api.post(f"/wallet-holds/{late}/capture", {})
    assert r.status_code == 409
    assert r.json()["code"] == "hold_not_open"
    assert api.post(f"/wallet-holds/{h['hold_id']}/capture", {}).json()["captured"] == "4000"
    assert_db_sound(db)


def test_merge_moves_the_wallet(db: Database, api: Api, tenant: TenantFixture) -> None:
    survivor = new_member(db, tenant, "keep")
    duplicate = new_member(db, tenant, "dup")
    api.credit(survivor, "1000")
    api.credit(duplicate, "7000")
    h = api.post(f"/members/{duplicate}/wallet/holds", {"amount": "500", "order_id": "o"}).json()
    body = {"source_member_id": str(duplicate), "reason": "same person"}
    blocked = api.post(f"/members/{survivor}/merge", body)
    assert blocked.status_code == 409
    assert blocked.json()["code"] == "member_has_open_holds"
    api.post(f"/wallet-holds/{h['hold_id']}/void")
    r = api.post(f"/members/{survivor}/merge", body)
    assert r.status_code == 200, r.text
    assert r.json()["moved"][str(tenant.program_id)]["wallet"] == 7000
    assert api.wallet(survivor)["available"] == "8000"
    assert api.wallet(survivor)["lifetime"]["merged_in"] == "7000"
    assert api.wallet(duplicate)["available"] == "0"
    assert api.wallet(duplicate)["lifetime"]["merged_out"] == "7000"
    # The merged member's wallet takes no new money.
    r = api.credit(duplicate, "1")
    assert r.status_code == 409
    assert r.json()["code"] == "member_not_active"
    assert_db_sound(db)


def test_refund_after_a_merge_goes_to_the_survivor(
    db: Database, api: Api, tenant: TenantFixture
) -> None:
    survivor = new_member(db, tenant, "keep")
    duplicate = new_member(db, tenant, "dup")
    api.credit(duplicate, "9000")
    d = api.post(f"/members/{duplicate}/wallet/debits", {"amount": "6000", "order_id": "o"})
    body = {"source_member_id": str(duplicate), "reason": "same person"}
    assert api.post(f"/members/{survivor}/merge", body).status_code == 200
    assert api.wallet(survivor)["available"] == "3000"
    tid = d.json()["transfer_id"]
    r = api.post(f"/wallet-debits/{tid}/refund", {"amount": "2500"}, "rf")
    assert r.status_code == 201, r.text
    assert r.json()["wallet"]["member_id"] == str(survivor)
    assert r.json()["wallet"]["available"] == "5500"
    assert api.wallet(survivor)["available"] == "5500"
    assert api.wallet(duplicate)["available"] == "0"
    again = api.post(f"/wallet-debits/{tid}/refund", {"amount": "2500"}, "rf")
    assert again.status_code == 200
    assert api.wallet(survivor)["available"] == "5500"
    assert api.post(f"/wallet-debits/{tid}/refund", {"amount": "3501"}).status_code == 409
    assert_db_sound(db)
