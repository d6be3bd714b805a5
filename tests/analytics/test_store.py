"""Stored analytics: settings, recompute (equal to on demand, idempotent), the job."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError

from setia.analytics import settings as tenant_settings
from setia.analytics import store
from setia.analytics.tables import AnalyticsFit, AnalyticsSettingsChange, MemberScore
from setia.core.db import Database
from setia.core.errors import InvalidInput
from setia.jobs import service as jobs
from setia.programs.models import Program
from setia.tenants.models import Tenant
from tests.analytics.test_service_cli import cli as cli
from tests.analytics.test_service_members import AS_OF, random_history
from tests.conftest import TenantFixture, make_tenant
from tests.ledger.support import member_by_external_id

AS_OF_DT = dt.datetime.fromisoformat(AS_OF)
ALL_LOYAL = {str(r): ["loyal"] * 5 for r in range(1, 6)}


def recompute(db: Database, t: TenantFixture, as_of: dt.datetime = AS_OF_DT) -> dict[str, Any]:
    with db.session() as s:
        tenant = s.get(Tenant, t.tenant_id)
        program = s.get(Program, t.program_id)
        assert tenant is not None
        assert program is not None
        return store.recompute(s, tenant, program, as_of=as_of, now=as_of).as_dict()


def stored(db: Database, t: TenantFixture) -> dict[uuid.UUID, MemberScore]:
    with db.session() as s:
        rows = s.execute(select(MemberScore).where(MemberScore.program_id == t.program_id))
        return {r.member_id: r for r in rows.scalars()}


def put(client: TestClient, t: TenantFixture, body: dict[str, Any], **params: Any) -> Any:
    return client.put("/v1/analytics/settings", json=body, headers=t.headers, params=params)


# --- settings --------------------------------------------------------------------------------


def test_settings_defaults_put_history_and_validation(
    db: Database, tenant: TenantFixture, client: TestClient
) -> None:
    r = client.get("/v1/analytics/settings", headers=tenant.headers)
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["version"] == 0
    assert got["settings"]["rfm_grid"]["5"] == [
        "new",
        "potential_loyalists",
        "potential_loyalists",
        "champions",
        "champions",
    ]
    assert got["settings"]["labels"]["lost_days"] == 180
    assert got["settings"]["loyalty_types"]["advocacy_types"] == ["review.submitted"]
    assert got["settings"]["model"] == {"horizon_weeks": 12.0, "months": 12, "discount_rate": 0.01}
    assert got["settings"]["recompute_interval_days"] == 1

    # validation names the bad field; nothing saved
    bad = {
        "rfm_grid": {**ALL_LOYAL, "3": ["loyal", "loyal", "vip", "loyal", "loyal"]},
    }
    r = put(client, tenant, bad)
    assert r.status_code == 422
    assert r.json()["code"] == "bad_rfm_grid"
    assert r.json()["field"] == "rfm_grid.3[2]"
    r = put(client, tenant, {"rfm_grid": {"1": ["loyal"] * 5}})
    assert r.json()["field"] == "rfm_grid"
    r = put(client, tenant, {"labels": {"lost_days": 40}})
    assert r.status_code == 422
    assert r.json()["code"] == "bad_threshold"
    assert r.json()["field"] == "labels.lost_days"
    r = put(client, tenant, {"labels": {"lost_p_alive": 0.9}})
    assert r.json()["field"] == "labels.lost_p_alive"
    r = put(client, tenant, {"model": {"discount_rate": -1}})
    assert r.status_code == 422
    assert "discount_rate" in r.text
    r = put(client, tenant, {"labels": {"nope": 1}})
    assert r.status_code == 422
    assert "nope" in r.text
    assert client.get("/v1/analytics/settings", headers=tenant.headers).json()["version"] == 0

    # read scope may not write
    with db.session() as s:
        from setia.tenants import service as tenants

        _, read_key = tenants.create_key(s, tenant.tenant_id, scope="read", name="ro")
    r = client.put(
        "/v1/analytics/settings",
        json={},
        headers={"Authorization": f"Bearer {read_key}"},
    )
    assert r.status_code == 403

    body = {"labels": {"new_days": 10}, "model": {"months": 6}}
    r = put(client, tenant, body)
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 1
    assert r.json()["changed"] is True
    assert r.json()["settings"]["labels"]["new_days"] == 10
    assert r.json()["settings"]["labels"]["lost_days"] == 180  # left out: default
    assert r.json()["settings"]["model"]["months"] == 6
    # the same document again: no new version (a retried PUT is harmless)
    r = put(client, tenant, body)
    assert r.json()["version"] == 1
    assert r.json()["changed"] is False
    # optimistic concurrency
    r = put(client, tenant, {"labels": {"new_days": 11}}, version=0)
    assert r.status_code == 409
    assert r.json()["code"] == "settings_version_conflict"
    r = put(client, tenant, {"labels": {"new_days": 11}}, version=1)
    assert r.json()["version"] == 2
    hist = client.get("/v1/analytics/settings/history", headers=tenant.headers).json()
    assert [h["version"] for h in hist] == [2, 1]
    assert hist[0]["actor"].startswith("api-key:")
    assert hist[1]["settings"]["labels"]["new_days"] == 10

    # another tenant is untouched
    other = make_tenant(db, name="Other")
    assert client.get("/v1/analytics/settings", headers=other.headers).json()["version"] == 0

    # the history is append-only
    with pytest.raises(DBAPIError), db.session() as s:  # noqa: PT012
        row = s.execute(select(AnalyticsSettingsChange)).scalars().first()
        assert row is not None
        row.actor = "tampered"
        s.flush()


def test_settings_parse_names_fields() -> None:
    with pytest.raises(InvalidInput) as e:
        tenant_settings.parse({"loyalty_types": {"advocacy_types": []}})
    assert e.value.extra["field"] == "loyalty_types.advocacy_types"
    with pytest.raises(InvalidInput) as e:
        tenant_settings.parse({"recompute_interval_days": -1})
    assert e.value.extra["field"] == "recompute_interval_days"
    assert tenant_settings.defaults().grid == tenant_settings.parse({}).grid
    # min_weeks and min_orders are settings too, validated like the others
    th = tenant_settings.parse({"loyalty_types": {"min_weeks": 6, "min_orders": 5}}).thresholds
    assert (th.min_weeks, th.min_orders) == (6, 5)
    assert tenant_settings.defaults().thresholds.min_weeks == 4
    assert tenant_settings.defaults().document["loyalty_types"]["min_orders"] == 3
    for name in ("min_weeks", "min_orders"):
        with pytest.raises(InvalidInput) as e:
            tenant_settings.parse({"loyalty_types": {name: 0}})
        assert e.value.extra["field"] == f"loyalty_types.{name}"


def test_settings_drive_the_on_demand_endpoints(
    db: Database, tenant: TenantFixture, client: TestClient
) -> None:
    random_history(db, tenant)
    h = tenant.headers
    before = client.get("/v1/analytics/rfm", params={"as_of": AS_OF}, headers=h).json()
    assert len(before["segments"]) > 1
    assert put(client, tenant, {"rfm_grid": ALL_LOYAL}).status_code == 200
    after = client.get("/v1/analytics/rfm", params={"as_of": AS_OF}, headers=h).json()
    assert [s["segment"] for s in after["segments"]] == ["loyal"]
    assert after["segments"][0]["members"] == before["members"]

    # label thresholds: everyone is "new" with new_days = 1000, unless the query overrides
    assert put(client, tenant, {"labels": {"new_days": 1000}}).status_code == 200
    rep = client.get("/v1/analytics/labels", params={"as_of": AS_OF}, headers=h).json()
    assert rep["thresholds"]["new_days"] == 1000
    purchasers = rep["members"]
    assert rep["labels"]["new"] == purchasers - rep["labels"]["dissatisfied"]
    rep = client.get(
        "/v1/analytics/labels", params={"as_of": AS_OF, "new_days": 0}, headers=h
    ).json()
    assert rep["thresholds"]["new_days"] == 0
    assert rep["labels"]["new"] == 0

    # model settings: months and discount rate from the settings, a query value wins
    mid = member_by_external_id(db, tenant, "m0")
    put(client, tenant, {"model": {"months": 3, "horizon_weeks": 4}})
    m = client.get(f"/v1/analytics/members/{mid}", params={"as_of": AS_OF}, headers=h).json()
    assert m["predictions"]["months"] == 3
    assert m["predictions"]["horizon_weeks"] == 4.0
    m = client.get(
        f"/v1/analytics/members/{mid}", params={"as_of": AS_OF, "months": 24}, headers=h
    ).json()
    assert m["predictions"]["months"] == 24
    assert m["predictions"]["horizon_weeks"] == 4.0


# --- recompute -------------------------------------------------------------------------------


def test_stored_values_equal_the_on_demand_ones(
    db: Database, tenant: TenantFixture, client: TestClient
) -> None:
    random_history(db, tenant)
    res = recompute(db, tenant)
    assert res["members"] == 25
    assert res["model"] == "bgnbd"
    assert res["predictions_missing"] is None
    rows = stored(db, tenant)
    assert len(rows) == 25
    listed = client.get(
        "/v1/analytics/members", params={"as_of": AS_OF, "limit": 500}, headers=tenant.headers
    ).json()["data"]
    assert len(listed) == len([r for r in rows.values() if r.purchase_days > 0])
    for item in listed:
        row = rows[uuid.UUID(item["member_id"])]
        assert row.rfm_segment == item["segment"]
        assert (row.rfm_r, row.rfm_f, row.rfm_m) == (item["r"], item["f"], item["m"])
        assert row.recency_days == item["recency_days"]
        assert row.orders == item["orders"]
        assert row.p_alive == item["p_alive"]
        assert row.expected_purchases == item["expected_purchases"]
        assert row.loyalty_label == item["label"]
        assert row.loyalty_type == item["loyalty_type"]
        api = client.get(
            f"/v1/analytics/members/{item['member_id']}/scores", headers=tenant.headers
        ).json()
        assert api["clv"] == item["clv"]
        assert api["spend"] == item["spend"]
        assert api["rfm_segment"] == item["segment"]
        assert api["computed_at"].startswith("2026-03-01T05:00:00")
    one = next(iter(listed))
    full = client.get(
        f"/v1/analytics/members/{one['member_id']}",
        params={"as_of": AS_OF},
        headers=tenant.headers,
    ).json()
    api = client.get(
        f"/v1/analytics/members/{one['member_id']}/scores", headers=tenant.headers
    ).json()
    for k in ("x", "t_x", "T"):
        assert api[{"x": "frequency", "t_x": "recency", "T": "T"}[k]] == full["summary"][k]
    assert api["monetary"] == full["summary"]["monetary"]
    assert api["first_purchase_day"] == full["summary"]["first_purchase_day"]
    assert api["expected_spend"] == full["predictions"]["expected_spend"]
    assert api["loyalty_scores"] == full["loyalty"]["scores"]
    # the member's analytics view carries the stored row too
    assert full["stored"] == api

    # the fit is kept with its parameters, log-likelihood and time
    fit = client.get("/v1/analytics/fits/latest", headers=tenant.headers).json()
    assert fit["params"]["params"].keys() == {"r", "alpha", "a", "b"}
    assert fit["log_likelihood"] < 0
    assert fit["fit_seconds"] > 0
    assert fit["members"] == 25


def test_recompute_is_idempotent_and_follows_settings(
    db: Database, tenant: TenantFixture, client: TestClient
) -> None:
    random_history(db, tenant)
    recompute(db, tenant)
    first = {k: _values(v) for k, v in stored(db, tenant).items()}
    recompute(db, tenant)
    second = {k: _values(v) for k, v in stored(db, tenant).items()}
    assert first == second
    with db.session() as s:
        assert s.execute(select(func.count()).select_from(AnalyticsFit)).scalar() == 2
    # new settings take effect at the next recompute; settings_version recorded
    assert put(client, tenant, {"rfm_grid": ALL_LOYAL}).status_code == 200
    assert {r.rfm_segment for r in stored(db, tenant).values()} != {"loyal"}
    res = recompute(db, tenant)
    assert res["settings_version"] == 1
    assert {r.rfm_segment for r in stored(db, tenant).values()} == {"loyal"}


def _values(row: MemberScore) -> tuple[Any, ...]:
    skip = {"fit_id", "computed_at"}
    return tuple(getattr(row, c.name) for c in MemberScore.__table__.columns if c.name not in skip)


def test_member_scores_endpoint_errors(
    db: Database, tenant: TenantFixture, client: TestClient
) -> None:
    random_history(db, tenant)
    mid = member_by_external_id(db, tenant, "m1")
    r = client.get(f"/v1/analytics/members/{mid}/scores", headers=tenant.headers)
    assert r.status_code == 404
    assert r.json()["code"] == "scores_not_computed"
    r = client.get("/v1/analytics/fits/latest", headers=tenant.headers)
    assert r.json()["code"] == "scores_not_computed"
    r = client.post("/v1/analytics/recompute", headers=tenant.headers)
    assert r.status_code == 200, r.text
    assert r.json()["members"] == 25
    assert client.get(f"/v1/analytics/members/{mid}/scores", headers=tenant.headers).is_success
    other = make_tenant(db, name="Other")
    r = client.get(f"/v1/analytics/members/{mid}/scores", headers=other.headers)
    assert r.status_code == 404
    assert r.json()["code"] == "not_found"


# --- the job ---------------------------------------------------------------------------------


def test_job_recomputes_once_per_local_day(db: Database, tenant: TenantFixture) -> None:
    random_history(db, tenant)
    idle = make_tenant(db, name="No orders")  # nothing to compute: skipped
    # 23:30 in Jakarta
    late = dt.datetime(2026, 3, 1, 16, 30, tzinfo=dt.UTC)
    report = jobs.run_due(db, late)
    assert report.analytics["recomputed"] == 1
    assert report.analytics["members"] == 25
    # again the same local day: nothing (idempotent)
    assert jobs.run_due(db, late + dt.timedelta(minutes=20)).analytics == {}
    # one hour later it is the next local day in Jakarta: due again
    report = jobs.run_due(db, late + dt.timedelta(hours=1))
    assert report.analytics["recomputed"] == 1
    with db.session() as s:
        fits = s.execute(select(AnalyticsFit).order_by(AnalyticsFit.computed_at)).scalars().all()
        assert [f.program_id for f in fits] == [tenant.program_id] * 2
        assert idle.program_id not in {f.program_id for f in fits}
    # an interval of 3 days; 0 turns the job off
    with db.session() as s:
        tenant_settings.put(s, tenant.tenant_id, {"recompute_interval_days": 3}, actor="t")
    day = dt.timedelta(days=1)
    assert jobs.run_due(db, late + dt.timedelta(hours=1) + 2 * day).analytics == {}
    assert jobs.run_due(db, late + dt.timedelta(hours=1) + 3 * day).analytics["recomputed"] == 1
    with db.session() as s:
        tenant_settings.put(s, tenant.tenant_id, {"recompute_interval_days": 0}, actor="t")
    assert jobs.run_due(db, late + 30 * day).analytics == {}


# --- CLI -------------------------------------------------------------------------------------


def test_recompute_and_settings_cli(
    db: Database, tenant: TenantFixture, cli: Any, tmp_path: Any
) -> None:
    import json

    random_history(db, tenant)
    t = str(tenant.tenant_id)
    r = cli("analytics", "recompute", "--tenant", t, "--as-of", AS_OF)
    assert r.exit_code == 0, r.output
    runs = json.loads(r.stdout)
    assert [x["members"] for x in runs] == [25]
    assert runs[0]["model"] == "bgnbd"
    r = cli("analytics", "recompute", "--tenant", t, "--program", str(tenant.program_id))
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["members"] == 25
    assert len(stored(db, tenant)) == 25
    r = cli("analytics", "recompute", "--tenant", t, "--as-of", "2026-03-01T00:00:00")
    assert r.exit_code == 2
    assert "offset" in r.output

    r = cli("analytics", "settings", "--tenant", t)
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["version"] == 0
    f = tmp_path / "s.json"
    f.write_text(json.dumps({"labels": {"lost_days": 10}}))
    r = cli("analytics", "settings", "--tenant", t, "--set", str(f))
    assert r.exit_code == 2
    assert "labels.lost_days" in r.output
    f.write_text(json.dumps({"rfm_grid": ALL_LOYAL}))
    r = cli("analytics", "settings", "--tenant", t, "--set", str(f))
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["version"] == 1
    r = cli("analytics", "recompute", "--tenant", t, "--as-of", AS_OF)
    assert {row.rfm_segment for row in stored(db, tenant).values()} == {"loyal"}


@pytest.mark.sqlite_only
def test_job_on_a_busy_sqlite_database_skips(
    db: Database, tenant: TenantFixture, db_url: str, monkeypatch: Any
) -> None:
    """SQLite: a job that cannot get the write lock (another process recomputing or
    writing) reports the program as skipped instead of failing the whole jobs run."""
    from sqlalchemy import text

    from setia.core.config import get_settings

    random_history(db, tenant)
    monkeypatch.setenv("SETIA_SQLITE_BUSY_TIMEOUT_MS", "100")
    get_settings.cache_clear()
    impatient = Database(db_url)
    try:
        with db.session() as holder:
            holder.execute(text("SELECT 1"))  # BEGIN IMMEDIATE: the write lock is held
            report = store.run_due(impatient, AS_OF_DT)
            assert report.recomputed == 0
            assert report.skipped_locked == 1
        assert store.run_due(impatient, AS_OF_DT).recomputed == 1
    finally:
        impatient.dispose()
        get_settings.cache_clear()
