"""The engine's Ibis aggregations: the service database and Spark agree, and both equal the
Python service (members.py, rfm.py via members.analyse, kpis.cohorts) on the same data.

The service database is the test's backend (SQLite, or PostgreSQL with ``--db=postgres``);
Spark runs in local mode, one session for the whole test session (started on first use).
"""

from __future__ import annotations

import datetime as dt
import json
import random
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from setia.analytics import engine, kpis, models
from setia.analytics import members as service
from setia.analytics.summary import compress, day_number
from setia.core.db import Database
from setia.core.time import zone
from setia.events.models import Event, Order
from setia.members.models import Member
from setia.programs.models import Program
from setia.tenants.models import Tenant
from tests.analytics.test_service_members import history as service_history
from tests.conftest import TenantFixture, make_tenant
from tests.ledger.support import tx

AS_OF = dt.datetime.fromisoformat("2026-03-01T12:00:00+07:00")
FIRST_MONTH, LAST_MONTH = dt.date(2025, 6, 1), dt.date(2026, 4, 1)


# --------------------------------------------------------------------------- fixtures


# Small data: one core, one shuffle partition, and no whole-stage code generation (compiling
# generated Java costs more than it saves on a few thousand rows).
SPARK_CONF = {"spark.sql.codegen.wholeStage": "false", "spark.sql.adaptive.enabled": "false"}


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """One local SparkSession (and Ibis backend) for the whole test session."""
    session = engine.spark_session("local[1]", shuffle_partitions=1, conf=SPARK_CONF)
    try:
        yield engine.spark_backend(session)
    finally:
        session.stop()


def bulk_history(db: Database, t: TenantFixture, tz_name: str, seed: int, members: int) -> None:
    """``members`` members with 1–8 orders each between June 2025 and April 2026 (some after
    AS_OF): half of them within an hour of a local midnight, some at 23:59:59.999600 and
    00:00:00 local exactly (some of those on the first of a month) (SQLite would round the first to the next second), several on
    one local day, amounts from a small set (ties in spend), refunds in full and in part."""
    rng = random.Random(seed)
    tz = zone(tz_name)
    start = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)
    span = int((dt.datetime(2026, 4, 20, tzinfo=dt.UTC) - start).total_seconds())

    def run(s: Session) -> None:
        for m in range(members):
            member = Member(tenant_id=t.tenant_id, external_id=f"bulk-{seed}-{m}")
            s.add(member)
            s.flush()
            when = start + dt.timedelta(seconds=rng.randrange(span))
            for k in range(rng.choice([1, 1, 1, 2, 2, 3, 4, 6, 8])):
                if k:
                    gap = rng.choice([0, 0, 3600, 86_400, 7 * 86_400, 30 * 86_400])
                    when = when + dt.timedelta(seconds=gap + rng.randrange(0, 86_400))
                moment = when
                edge = rng.random()
                local = moment.astimezone(tz)
                midnight = dt.datetime(local.year, local.month, local.day, tzinfo=tz)
                if edge < 0.06:  # a local month boundary (cohort months)
                    midnight = midnight.replace(day=1)
                if edge < 0.1:
                    moment = midnight - dt.timedelta(microseconds=400)  # 23:59:59.9996
                elif edge < 0.2:
                    moment = midnight
                elif edge < 0.5:
                    moment = midnight + dt.timedelta(seconds=rng.randrange(-3600, 3600))
                moment = moment.astimezone(dt.UTC)
                amount = Decimal(rng.choice([5000, 10000, 10000, 25000, 40000, 72500]))
                refunded = Decimal(0)
                roll = rng.random()
                if roll < 0.12:
                    refunded = amount
                elif roll < 0.25:
                    refunded = amount / 2
                event = Event(
                    tenant_id=t.tenant_id,
                    program_id=t.program_id,
                    member_id=member.id,
                    client_event_id=f"e-{seed}-{m}-{k}",
                    type="purchase",
                    occurred_at=moment,
                    request_hash="0" * 64,
                    order_id=f"o-{seed}-{m}-{k}",
                    amount=amount,
                    currency="IDR",
                )
                s.add(event)
                s.flush()
                s.add(
                    Order(
                        tenant_id=t.tenant_id,
                        program_id=t.program_id,
                        member_id=member.id,
                        order_id=f"o-{seed}-{m}-{k}",
                        event_id=event.id,
                        amount=amount,
                        currency="IDR",
                        refunded_amount=refunded,
                        occurred_at=moment,
                    )
                )

    tx(db, run)


@pytest.fixture
def data(db: Database, tenant: TenantFixture) -> TenantFixture:
    """The service's own small history (purchases and refunds through the events service)
    plus 300 bulk members in Asia/Jakarta, and another tenant's orders that must not count."""
    service_history(db, tenant)
    bulk_history(db, tenant, "Asia/Jakarta", seed=1, members=300)
    other = make_tenant(db, name="Other")
    bulk_history(db, other, "Asia/Jakarta", seed=2, members=20)
    return tenant


@pytest.fixture
def service_con(db_url: str) -> Iterator[Any]:
    con = engine.connect(db_url)
    try:
        yield con
    finally:
        con.disconnect()


def _objects(db: Database, t: TenantFixture) -> tuple[Any, Any]:
    def run(s: Session) -> tuple[Any, Any]:
        tenant, program = s.get(Tenant, t.tenant_id), s.get(Program, t.program_id)
        assert tenant is not None
        assert program is not None
        s.expunge(tenant)
        s.expunge(program)
        return tenant, program

    return tx(db, run)


def spark_orders(db: Database, t: TenantFixture, spark: Any, name: str) -> Any:
    """The program's orders copied into Spark as a plain table (timestamp column), then
    normalised by the generic ``engine.transactions``."""

    def run(s: Session) -> list[Any]:
        q = select(Order.member_id, Order.occurred_at, Order.amount, Order.refunded_amount).where(
            Order.program_id == t.program_id
        )
        return list(s.execute(q))

    got = tx(db, run)
    table = pa.table(
        {
            "member": pa.array([str(r[0]) for r in got], pa.string()),
            "occurred_at": pa.array(
                [r[1].astimezone(dt.UTC) for r in got], pa.timestamp("us", tz="UTC")
            ),
            "amount": pa.array([float(r[2]) for r in got], pa.float64()),
            "refunded": pa.array([float(r[3]) for r in got], pa.float64()),
        }
    )
    # a temporary view of a DataFrame: nothing is written to a warehouse directory
    spark._session.createDataFrame(table.to_pandas()).createOrReplaceTempView(name)
    spark_table = spark.table(name)
    return engine.transactions(
        spark,
        spark_table,
        customer="member",
        at="occurred_at",
        amount="amount",
        refunded="refunded",
    )


def _key(customer: str) -> uuid.UUID:
    return uuid.UUID(customer)  # 32 hex digits on SQLite, the dashed form elsewhere


def summary_rows(expr: Any) -> dict[uuid.UUID, dict[str, Any]]:
    out = {}
    for row in engine.rows(expr):
        out[_key(row.pop("customer"))] = row
    return out


def rfm_rows(expr: Any) -> dict[uuid.UUID, tuple[int, int, int, str, int]]:
    return {
        _key(r["customer"]): (r["r"], r["f"], r["m"], r["segment"], r["recency_days"])
        for r in engine.rows(expr)
    }


def _us(moment: dt.datetime | None) -> int | None:
    return None if moment is None else engine.epoch_us(moment)


# --------------------------------------------------------------------------- tests


def test_engine_equals_service_and_spark(
    db: Database, data: TenantFixture, service_con: Any, spark: Any
) -> None:
    tenant, program = _objects(db, data)
    tz = tenant.timezone

    # --- the Python service
    analysis = tx(db, lambda s: service.analyse(s, tenant, program, as_of=AS_OF))
    py = {r.member_id: r for r in analysis.summary.rows}
    cohorts_py = tx(
        db,
        lambda s: kpis.cohorts(s, tenant, program, first_month=FIRST_MONTH, last_month=LAST_MONTH),
    )["cohorts"]

    # --- the engine on the service database, and on Spark
    db_tx = engine.service_orders(service_con, data.program_id)
    sp_tx = spark_orders(db, data, spark, "orders_engine_test")
    results = {}
    for name, source in (("db", db_tx), ("spark", sp_tx)):
        summary = engine.member_summary(source, tz, AS_OF)
        results[name] = (
            summary_rows(summary),
            rfm_rows(engine.rfm_scores(summary)),
            engine.cohort_matrix(source, tz, FIRST_MONTH, LAST_MONTH),
            engine.sufficient_statistics(summary),
        )

    # Spark and the service database agree exactly.
    assert results["db"][0] == results["spark"][0]
    assert results["db"][1] == results["spark"][1]
    assert results["db"][2] == results["spark"][2]
    for a, b in zip(
        results["db"][3].__dict__.values(), results["spark"][3].__dict__.values(), strict=True
    ):
        if isinstance(a, np.ndarray):
            assert a.tolist() == b.tolist()
        else:
            assert a == b

    summary, scores, cohorts, stats = results["db"]

    # Summary: the same members and numbers as members.summarise_program.
    assert set(summary) == set(py)
    assert len(summary) > 200  # bulk members whose first order is before AS_OF, and a, b, c
    edge_days = 0
    for mid, row in summary.items():
        r = py[mid]
        assert row["orders"] == r.orders
        assert Decimal(str(row["spend"])) == r.spend
        assert Decimal(str(row["refunds"])) == r.refunds
        assert row["first_order_us"] == _us(r.first_order_at)
        assert row["last_order_us"] == _us(r.last_order_at)
        assert row["purchase_days"] == r.purchase_days
        first = None if r.first_purchase_day is None else day_number(r.first_purchase_day)
        last = None if r.last_purchase_day is None else day_number(r.last_purchase_day)
        assert (row["first_day"], row["last_day"]) == (first, last)
        assert (row["x"], row["t_x"], row["T"]) == (r.x, r.t_x, r.T)
        assert row["monetary"] == pytest.approx(r.monetary, rel=1e-12)
        edge_days += row["purchase_days"]
    assert edge_days > 500

    # RFM: the same scores and segments as the service (rfm.score via members.analyse).
    expected_rfm = {
        r.member_id: (
            int(analysis.scores.r[i]),
            int(analysis.scores.f[i]),
            int(analysis.scores.m[i]),
            analysis.scores.segments[i],
            int(analysis.scores.recency_days[i]),
        )
        for i, r in enumerate(analysis.purchasers)
    }
    assert scores == expected_rfm
    assert {v[3] for v in scores.values()} >= {"champions", "lost", "hibernating", "new"}
    # ties: equal orders always share F, and several members share each F score
    by_orders: dict[int, set[int]] = {}
    for mid, (_, f, _, _, _) in scores.items():
        by_orders.setdefault(summary[mid]["orders"], set()).add(f)
    assert all(len(fs) == 1 for fs in by_orders.values())

    # Cohorts: the same matrix as kpis.cohorts.
    assert cohorts == cohorts_py
    assert len(cohorts) >= 8

    # Sufficient statistics: compress() of the service's arrays, and the same fit.
    x, t_x, T, _ = analysis.summary.arrays()
    c = compress(x, t_x, T)
    order = np.lexsort((c.T, c.t_x, c.x))
    assert stats.x.tolist() == c.x[order].tolist()
    assert stats.t_x.tolist() == c.t_x[order].tolist()
    assert stats.T.tolist() == c.T[order].tolist()
    assert stats.weight.tolist() == c.weight[order].tolist()
    assert stats.customers == x.shape[0]
    assert len(stats) < stats.customers
    fit = models.fit_bgnbd(stats.x, stats.t_x, stats.T, stats.weight)
    assert analysis.predictions.fit is not None
    assert fit.log_likelihood == pytest.approx(analysis.predictions.fit.log_likelihood, rel=1e-9)
    for k, v in analysis.predictions.fit.params.items():
        assert fit.params[k] == pytest.approx(v, rel=1e-6)


def test_dst_zone_and_service_rows(db: Database, db_url: str, spark: Any) -> None:
    """America/New_York: local days across both DST changes agree with the service, on the
    service database and on Spark."""
    t = make_tenant(db, timezone="America/New_York")
    bulk_history(db, t, "America/New_York", seed=3, members=120)
    tenant, program = _objects(db, t)
    as_of = dt.datetime.fromisoformat("2026-03-20T12:00:00-04:00")
    py = {
        r.member_id: r
        for r in tx(db, lambda s: service.summarise_program(s, tenant, program, as_of=as_of)).rows
    }
    con = engine.connect(db_url)
    try:
        for source in (
            engine.service_orders(con, t.program_id),
            spark_orders(db, t, spark, "orders_dst_test"),
        ):
            got = summary_rows(engine.member_summary(source, tenant.timezone, as_of))
            assert set(got) == set(py)
            for mid, row in got.items():
                r = py[mid]
                first = None if r.first_purchase_day is None else day_number(r.first_purchase_day)
                assert (row["purchase_days"], row["first_day"], row["x"], row["t_x"], row["T"]) == (
                    r.purchase_days,
                    first,
                    r.x,
                    r.t_x,
                    r.T,
                )
            cohorts = engine.cohort_matrix(
                source, tenant.timezone, dt.date(2025, 6, 1), dt.date(2026, 4, 1)
            )
            expected = tx(
                db,
                lambda s: kpis.cohorts(
                    s,
                    tenant,
                    program,
                    first_month=dt.date(2025, 6, 1),
                    last_month=dt.date(2026, 4, 1),
                ),
            )["cohorts"]
            assert cohorts == expected
    finally:
        con.disconnect()


def test_zone_offsets_and_local_days() -> None:
    """The offset change points of a DST zone, and day numbers computed in SQL equal
    Python's for instants around every change and local midnight."""
    lo = int(dt.datetime(2025, 1, 1, tzinfo=dt.UTC).timestamp())
    hi = int(dt.datetime(2027, 1, 1, tzinfo=dt.UTC).timestamp())
    offsets = engine.zone_offsets("America/New_York", lo, hi)
    changes = [dt.datetime.fromtimestamp(s, dt.UTC) for s, _ in offsets[1:]]
    assert changes == [
        dt.datetime(2025, 3, 9, 7, tzinfo=dt.UTC),
        dt.datetime(2025, 11, 2, 6, tzinfo=dt.UTC),
        dt.datetime(2026, 3, 8, 7, tzinfo=dt.UTC),
        dt.datetime(2026, 11, 1, 6, tzinfo=dt.UTC),
    ]
    assert [o for _, o in offsets] == [-18000, -14400, -18000, -14400, -18000]
    assert engine.zone_offsets("Asia/Jakarta", lo, hi) == [(lo - 86_400, 25_200)]

    import ibis

    con = ibis.sqlite.connect()
    tz = zone("America/New_York")
    moments = []
    for c in changes:
        for delta in (-3601, -1, 0, 1, 3599, 3600):
            moments.append(c + dt.timedelta(seconds=delta))
    d = dt.date(2025, 1, 1)
    while d < dt.date(2027, 1, 1):
        midnight = dt.datetime(d.year, d.month, d.day, tzinfo=tz)
        moments += [midnight - dt.timedelta(microseconds=1), midnight]
        d += dt.timedelta(days=17)
    us = [engine.epoch_us(m) for m in moments]
    t = con.create_table("moments", pa.table({"us": pa.array(us, pa.int64())}))
    t = engine.with_local_day(t, "America/New_York")
    got = con.to_pyarrow(t.order_by("us")).to_pylist()
    for m, row in zip(sorted(moments), got, strict=True):
        assert row["day"] == day_number(m.astimezone(tz).date()), m
    # a fixed-offset zone needs no change points (and no query for the data's span)
    assert engine.fixed_offset("Asia/Jakarta") == 25_200
    assert engine.fixed_offset("America/New_York") is None


def test_empty_program(db: Database, tenant: TenantFixture, service_con: Any) -> None:
    source = engine.service_orders(service_con, tenant.program_id)
    summary = engine.member_summary(source, "Asia/Jakarta", AS_OF)
    assert engine.rows(summary) == []
    assert engine.rows(engine.rfm_scores(summary)) == []
    assert engine.cohort_matrix(source, "Asia/Jakarta", FIRST_MONTH, LAST_MONTH) == []
    stats = engine.sufficient_statistics(summary)
    assert (len(stats), stats.customers) == (0, 0)


def test_date_column_equals_file_summary() -> None:
    """A table with a date column (the local day already, zone UTC) gives the file CLI's
    summary (``summary.summarise``) and its compression."""
    import ibis

    from setia.analytics.summary import Transactions, summarise

    rng = random.Random(5)
    customers, days, amounts = [], [], []
    for c in range(150):
        first = dt.date(2025, 1, 1) + dt.timedelta(days=rng.randrange(200))
        for _ in range(rng.choice([1, 1, 2, 3, 5])):
            customers.append(f"c{c:03d}")
            days.append(first + dt.timedelta(days=rng.choice([0, 0, 1, 7, 30, 90])))
            amounts.append(float(rng.choice([10, 20, 20, 35])))
    end = dt.date(2025, 9, 30)
    con = ibis.sqlite.connect()
    table = con.create_table(
        "tx",
        pa.table(
            {
                "cust": pa.array(customers, pa.string()),
                "day": pa.array(days, pa.date32()),
                "value": pa.array(amounts, pa.float64()),
            }
        ),
    )
    source = engine.transactions(con, table, customer="cust", date="day", amount="value")
    as_of = dt.datetime(end.year, end.month, end.day, 23, 59, 59, 999_999, tzinfo=dt.UTC)
    summary = engine.member_summary(source, "UTC", as_of)
    got = {r["customer"]: r for r in engine.rows(summary)}
    py = summarise(
        Transactions(
            customer=np.array(customers, dtype=np.str_),
            day=np.array([day_number(d) for d in days], dtype=np.int64),
            amount=np.array(amounts),
        ),
        unit="week",
        calibration_end=end,
    )
    assert sorted(got) == py.customer.tolist()
    for i, key in enumerate(py.customer.tolist()):
        row = got[key]
        assert (row["x"], row["t_x"], row["T"]) == (py.x[i], py.t_x[i], py.T[i])
        assert row["monetary"] == pytest.approx(py.monetary[i], rel=1e-12)
        assert (row["first_day"], row["last_day"]) == (py.first_day[i], py.last_day[i])
    stats = engine.sufficient_statistics(summary)
    c = compress(py.x, py.t_x, py.T)
    order = np.lexsort((c.T, c.t_x, c.x))
    assert stats.weight.tolist() == c.weight[order].tolist()
    assert stats.T.tolist() == c.T[order].tolist()


def _fit_cli(*args: str) -> dict[str, Any]:
    from typer.testing import CliRunner

    from setia.cli import app

    res = CliRunner().invoke(app, ["analytics", "fit", *args, "--json"])
    assert res.exit_code == 0, res.output
    out: dict[str, Any] = json.loads(res.stdout)
    return out


def test_fit_cli_on_spark_equals_python(tmp_path: Path, spark: Any) -> None:
    """``setia analytics fit --engine spark`` on CDNOW (as a CSV with a header and YYYYMMDD
    dates, with a refund line and two bad rows, and as Parquet) gives the default engine's
    summary and fit, and the published BG/NBD parameters."""
    from tests.analytics.cdnow import sample_file

    rows_in = [line.split() for line in sample_file().read_text().splitlines() if line.strip()]
    csv_path = tmp_path / "cdnow.csv"
    with csv_path.open("w") as fh:
        fh.write("customer;date;cds;dollars\n")
        for r in rows_in:
            fh.write(f"{r[1]};{r[2]};{r[3]};{r[4]}\n")
        first = rows_in[0]
        fh.write(f"{first[1]};{first[2]};1;-5.5\n")  # a refund line nets into its day
        fh.write(";19970101;1;3\n")  # bad: empty customer
        fh.write("8;not-a-date;1;3\n")  # bad: date
    common = ["--customer-col", "customer", "--date-col", "date", "--amount-col", "dollars"]
    common += ["--calibration-end", "1997-09-30", "--skip-bad-rows"]
    py = _fit_cli("--transactions", str(csv_path), *common)
    sp = _fit_cli("--transactions", str(csv_path), *common, "--engine", "spark")
    assert sp["data"].pop("engine") == "spark"
    assert sp["data"] == py["data"]
    assert py["data"]["bad_rows_skipped"] == 2
    assert (py["data"]["customers"], py["data"]["repeat_customers"]) == (2357, 946)
    for key in ("", "spend"):
        a, b = (py[key], sp[key]) if key else (py, sp)
        assert b["log_likelihood"] == pytest.approx(a["log_likelihood"], rel=1e-9)
        for k, v in a["params"].items():
            assert b["params"][k] == pytest.approx(v, rel=1e-6)
    assert sp["params"]["r"] == pytest.approx(0.2426, abs=1e-3)
    assert sp["params"]["alpha"] == pytest.approx(4.4136, abs=1e-3)

    # Parquet (a date column), Pareto/NBD, daily unit
    pq_path = tmp_path / "cdnow.parquet"
    import pyarrow.parquet as pq

    pq.write_table(
        pa.table(
            {
                "customer": pa.array([r[1] for r in rows_in]),
                "date": pa.array(
                    [dt.date(int(r[2][:4]), int(r[2][4:6]), int(r[2][6:])) for r in rows_in],
                    pa.date32(),
                ),
                "dollars": pa.array([float(r[4]) for r in rows_in]),
            }
        ),
        pq_path,
    )
    args = ["--transactions", str(pq_path), *common[:-1], "--model", "pareto"]
    args += ["--time-unit", "day"]
    sp2 = _fit_cli(*args, "--engine", "spark")
    py2 = _fit_cli(
        "--transactions", str(csv_path), *common, "--model", "pareto", "--time-unit", "day"
    )
    assert sp2["data"]["customers"] == py2["data"]["customers"] == 2357
    assert sp2["data"]["distinct_rows"] == py2["data"]["distinct_rows"]
    assert sp2["data"]["transactions"] == py2["data"]["transactions"] - 1  # no refund line


def test_fit_cli_engine_errors(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from setia.cli import app

    path = tmp_path / "t.csv"
    path.write_text("c,d\n1,2026-01-01\n")
    base = ["analytics", "fit", "--transactions", str(path), "--customer-col", "c"]
    res = CliRunner().invoke(app, [*base, "--date-col", "d", "--engine", "duckdb"])
    assert res.exit_code == 2
    assert "--engine must be python or spark" in res.output
    res = CliRunner().invoke(
        app, [*base, "--date-col", "d", "--engine", "spark", "--date-format", "%d/%m/%Y"]
    )
    assert res.exit_code == 2
    assert "need the default engine" in res.output
