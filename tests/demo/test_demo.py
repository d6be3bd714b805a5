"""The "Kopi Nusantara" demo builds on both backends and leaves a sound, lived-in ledger."""

from __future__ import annotations

import random
import socket
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner

from setia.app import create_app
from setia.badges.models import BadgeDefinition
from setia.causes.models import Donation
from setia.cli import app as cli_app
from setia.core import db as core_db
from setia.core.config import get_settings
from setia.core.db import Database
from setia.core.time import add_months, utcnow
from setia.coupons.models import CouponCampaign
from setia.demo.fresh import port_in_use, reset_database
from setia.demo.generate import (
    DemoError,
    build_demo,
    find_demo_tenant,
    make_actions,
    make_personas,
    number_events,
    reuse_demo,
)
from setia.events.models import Event, Order
from setia.ledger.models import Lot, Transfer
from setia.ledger.verify import verify
from setia.members.models import ConsentChange, Member
from setia.programs.models import Program
from setia.referrals.models import Referral
from setia.rewards.models import Reward, RewardRedemption
from tests.conftest import make_tenant


def test_demo_builds_a_sound_lived_in_ledger(db: Database) -> None:
    summary = build_demo(db, members=60, seed=7)

    assert summary["members"] == 60
    assert summary["purchases"] > 500
    assert summary["refunds"] > 0
    assert summary["redemptions"] > 0
    assert summary["reviews"] > 0
    assert summary["events"] == summary["purchases"] + summary["refunds"] + summary["reviews"]
    assert summary["points_expired"] > 0
    assert summary["points_outstanding"] == summary["points_available"] + summary["points_pending"]
    assert int(summary["liability"]) == summary["points_outstanding"] * 10

    with db.session() as s:
        assert verify(s).ok, verify(s).checks
        program = s.execute(select(Program)).scalar_one()
        assert program.name == "Kopi Nusantara Poin"
        assert (program.pending_days, program.expiry_policy, program.expiry_months) == (
            7,
            "end_of_period",
            6,
        )
        types = dict(
            s.execute(select(Event.type, func.count()).group_by(Event.type)).tuples().all()
        )
        assert types == {
            "purchase": summary["purchases"],
            "refund": summary["refunds"],
            "review.submitted": summary["reviews"],
        }
        codes = dict(
            s.execute(select(Transfer.code, func.count()).group_by(Transfer.code)).tuples().all()
        )
        history = s.execute(
            select(func.count())
            .select_from(Transfer)
            .where(Transfer.code == "REDEEM", Transfer.source_type == "redemption")
        ).scalar_one()
        assert history == summary["redemptions"]
        # Today's catalog: five rewards, a public coupon, a cause with donations.
        catalog = summary["catalog"]
        assert catalog["rewards"] == len(s.execute(select(Reward)).scalars().all()) == 5
        made = sum(v for k, v in catalog["redemptions"].items() if k != "donations")
        assert made == s.execute(select(func.count()).select_from(RewardRedemption)).scalar_one()
        assert (
            catalog["redemptions"].get("donations", 0)
            == s.execute(select(func.count()).select_from(Donation)).scalar_one()
        )
        assert s.execute(
            select(CouponCampaign.id).where(CouponCampaign.public_code == "NGOPIPAGI")
        ).first()
        assert program_rate(s) == 10
        # Word of mouth and recognition: referrals (a held burst among them) and badges.
        referrals = summary["referrals"]
        assert referrals["referrals"] > 0
        held = s.execute(
            select(func.count()).select_from(Referral).where(Referral.status == "held")
        ).scalar_one()
        assert held > 0
        assert s.execute(select(func.count()).select_from(BadgeDefinition)).scalar_one() >= 4
        assert summary["badges"]["completions"] > 0
        # Nothing is left overdue: every lot past its expiry date has expired.
        overdue = s.execute(
            select(func.count())
            .select_from(Lot)
            .where(Lot.remaining > 0, Lot.expires_at <= utcnow())
        ).scalar_one()
        assert overdue == 0
        assert codes["EXPIRE"] > 0
        assert codes["REVERSAL"] > 0
        # Some refunds returned single items, some the whole order.
        refunds = [
            e.payload for e in s.execute(select(Event).where(Event.type == "refund")).scalars()
        ]
        assert any("returned_items" in p for p in refunds)
        assert any("amount" in p for p in refunds)
        partly = s.execute(
            select(func.count())
            .select_from(Order)
            .where(Order.refunded_amount > 0, Order.refunded_amount < Order.amount)
        ).scalar_one()
        assert partly > 0
        # Members look like people: E.164 phones, emails for most, consents with a source.
        people = list(s.execute(select(Member)).scalars())
        assert all(m.phone and m.phone.startswith("+628") for m in people)
        assert 0.4 < sum(m.email is not None for m in people) / len(people) < 0.8
        assert {m.locale for m in people} <= {"id", "en"}
        assert all(c.source for c in s.execute(select(ConsentChange)).scalars())
        # The history is in the past, ends now and starts a year ago.
        first, last = s.execute(
            select(func.min(Event.occurred_at), func.max(Event.occurred_at))
        ).one()
        assert (last - first).days > 300

    # The admin key works against the API.
    with TestClient(create_app(db)) as client:
        headers = {"Authorization": f"Bearer {summary['api_key']}"}
        r = client.get("/v1/members?limit=3", headers=headers)
        assert r.status_code == 200, r.text
        member_id = r.json()["data"][0]["id"]
        assert client.get(f"/v1/members/{member_id}/balance", headers=headers).status_code == 200
        assert client.get(f"/v1/members/{member_id}/ledger", headers=headers).status_code == 200

    # Running the demo again without --fresh issues a new key instead of rebuilding.
    tenant_id = find_demo_tenant(db)
    assert tenant_id is not None
    assert str(tenant_id) == summary["tenant_id"]
    again = reuse_demo(db, tenant_id)
    assert again["api_key"] != summary["api_key"]
    assert again["events"] == summary["events"]
    with TestClient(create_app(db)) as client:
        r = client.get("/v1/tenant", headers={"Authorization": f"Bearer {again['api_key']}"})
        assert r.status_code == 200
        assert r.json()["name"] == "Kopi Nusantara"


def program_rate(s: Any) -> int:
    program = s.execute(select(Program)).scalar_one()
    return int(program.points_payment_rate)


def test_same_seed_same_history() -> None:
    now = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)
    start = add_months(now, -12)

    def history(seed: int) -> list[dict[str, object]]:
        rng = random.Random(seed)
        people = make_personas(rng, 40, start, now)
        return number_events(make_actions(rng, people, start, now))

    first = history(7)
    assert first == history(7)
    assert first != history(8)
    assert [e["id"] for e in first[:3]] == ["demo-1", "demo-2", "demo-3"]
    times = [datetime.fromisoformat(str(e["occurred_at"])) for e in first]
    assert times == sorted(times)
    assert start <= times[0]
    assert times[-1] <= now
    assert len({e["order_id"] for e in first if e["type"] == "purchase"}) == sum(
        e["type"] == "purchase" for e in first
    )


def test_fresh_refuses_a_database_with_other_tenants(db: Database) -> None:
    make_tenant(db, name="Toko Batik Sekar")
    with pytest.raises(DemoError, match="other tenants"):
        reset_database(db)
    with db.session() as s:
        assert s.execute(select(func.count()).select_from(Program)).scalar_one() == 1


def test_fresh_empties_a_demo_database(db: Database) -> None:
    make_tenant(db, name="Kopi Nusantara")
    reset_database(db)
    assert find_demo_tenant(db) is None
    with db.session() as s:
        assert s.execute(select(func.count()).select_from(Program)).scalar_one() == 0


def test_demo_command_fresh_rerun_and_refusal(
    db_url: str, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SETIA_DATABASE_URL", db_url)
    get_settings.cache_clear()
    core_db.set_database(None)
    runner = CliRunner()
    try:
        built = runner.invoke(cli_app, ["demo", "--fresh", "--no-serve", "--members", "5"])
        assert built.exit_code == 0, built.output
        assert "Admin API key: sk_admin_" in built.output
        assert '/v1/members?limit=3"' in built.output  # quoted: zsh would glob the ?

        again = runner.invoke(cli_app, ["demo", "--no-serve"])
        assert again.exit_code == 0, again.output
        assert "already exists" in again.output
        assert "new admin key was issued" in again.output
        assert find_demo_tenant(db) is not None

        make_tenant(db, name="Toko Batik Sekar")
        refused = runner.invoke(cli_app, ["demo", "--fresh", "--no-serve", "--members", "5"])
        assert refused.exit_code == 1
        assert "other tenants" in refused.output
        assert "'Toko Batik Sekar'" in refused.output
    finally:
        core_db.get_database().dispose()
        core_db.set_database(None)
        get_settings.cache_clear()


def test_demo_refuses_a_busy_port_before_building() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert port_in_use("127.0.0.1", port)
        result = CliRunner().invoke(cli_app, ["demo", "--port", str(port)])
        assert result.exit_code == 1
        assert "already in use" in result.output
    assert not port_in_use("127.0.0.1", port)
