"""Parquet transaction files in, and `setia analytics score` out (CSV and Parquet)."""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from setia.analytics import export, files, labels, models, rfm, scoring
from setia.analytics.members import MemberRow
from setia.analytics.summary import Summary, read_transactions, summarise
from setia.cli import app
from setia.core.db import Database
from setia.core.errors import InvalidInput
from tests.analytics.cdnow import CALIBRATION_END, sample_file
from tests.analytics.test_service_members import AS_OF, random_history
from tests.conftest import TenantFixture

runner = CliRunner()
CDNOW = ["--customer-col", "1", "--date-col", "2", "--calibration-end", "1997-09-30"]


def _cdnow_rows() -> list[list[str]]:
    return [ln.split() for ln in sample_file().read_text().splitlines() if ln.strip()]


def _cdnow_parquet(path: Path, *, row_group_size: int = 1000) -> Path:
    """CDNOW_sample.txt as Parquet: text ids, YYYYMMDD integer dates, float amounts."""
    rows = _cdnow_rows()
    table = pa.table(
        {
            "master": [r[0] for r in rows],
            "customer": [r[1] for r in rows],
            "date": pa.array([int(r[2]) for r in rows], pa.int32()),
            "cds": [int(r[3]) for r in rows],
            "amount": [float(r[4]) for r in rows],
        }
    )
    pq.write_table(table, path, row_group_size=row_group_size)
    return path


def _same_summary(a: Summary, b: Summary) -> None:
    assert a.customer.tolist() == b.customer.tolist()
    for name in ("x", "t_x", "T", "first_day", "last_day", "orders"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    for name in ("monetary", "spend", "refunds"):
        assert np.allclose(getattr(a, name), getattr(b, name), rtol=1e-12, atol=1e-9), name
    assert (a.period_start, a.period_end, a.unit) == (b.period_start, b.period_end, b.unit)


def test_parquet_in_equals_csv_in_on_cdnow(tmp_path: Path) -> None:
    path = _cdnow_parquet(tmp_path / "cdnow.parquet")
    from_csv = summarise(
        read_transactions(sample_file(), customer_col="1", date_col="2", amount_col="4"),
        calibration_end=CALIBRATION_END,
    )
    # columns by 0-based index, as for the headerless text file, and by name
    for cols in (("1", "2", "4"), ("customer", "date", "amount")):
        tx = read_transactions(path, customer_col=cols[0], date_col=cols[1], amount_col=cols[2])
        assert tx.row_word == "row"
        assert len(tx) == 6919
        _same_summary(summarise(tx, calibration_end=CALIBRATION_END), from_csv)

    # the CLI gives the same fit, data summary included
    def fit(source: Path, *cols: str) -> dict[str, Any]:
        res = runner.invoke(
            app,
            [
                "analytics",
                "fit",
                "--transactions",
                str(source),
                "--customer-col",
                cols[0],
                "--date-col",
                cols[1],
                "--amount-col",
                cols[2],
                "--calibration-end",
                "1997-09-30",
                "--json",
            ],
        )
        assert res.exit_code == 0, res.output
        out: dict[str, Any] = json.loads(res.stdout)
        out.pop("seconds")
        return out

    assert fit(path, "customer", "date", "amount") == fit(sample_file(), "1", "2", "4")


@settings(max_examples=30, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.integers(0, 8),
            st.integers(0, 60),
            st.integers(-50, 500),
        ),
        min_size=1,
        max_size=80,
    ),
    cut=st.integers(0, 60),
    batch=st.integers(1, 7),
    int_ids=st.booleans(),
)
def test_parquet_equals_csv_on_random_files(
    tmp_path_factory: pytest.TempPathFactory,
    rows: list[tuple[int, int, int]],
    cut: int,
    batch: int,
    int_ids: bool,
) -> None:
    """Any rows, any batch size, both key types: Parquet and CSV give the same summary
    (customers whose purchases all fall after the calibration end included)."""
    tmp = tmp_path_factory.mktemp("eq")
    start = dt.date(2024, 1, 1)
    # integer ids of equal width sort the same as text and as numbers
    key = [(100 + c) if int_ids else f"k{c}" for c, _, _ in rows]
    days = [start + dt.timedelta(days=d) for _, d, _ in rows]
    amounts = [a / 4 for _, _, a in rows]
    csv_path = tmp / "tx.csv"
    csv_path.write_text(
        "c;d;a\n"
        + "".join(f"{k};{d.isoformat()};{a}\n" for k, d, a in zip(key, days, amounts, strict=True))
    )
    pq_path = tmp / "tx.parquet"
    pq.write_table(pa.table({"c": key, "d": days, "a": amounts}), pq_path, row_group_size=5)
    end = start + dt.timedelta(days=cut)
    from_csv = read_transactions(csv_path, customer_col="c", date_col="d", amount_col="a")
    from_pq = files.read_parquet_transactions(
        pq_path, customer_col="c", date_col="d", amount_col="a", batch_rows=batch
    )
    if min(days) > end:
        with pytest.raises(InvalidInput, match="no transactions on or before"):
            summarise(from_pq, unit="day", calibration_end=end)
        return
    a = summarise(from_csv, unit="day", calibration_end=end)
    b = summarise(from_pq, unit="day", calibration_end=end)
    if int_ids:
        assert b.customer.dtype.kind == "i"
        b = Summary(**{**b.__dict__, "customer": b.customer.astype(str)})
    _same_summary(a, b)


def test_dense_and_sparse_integer_keys(tmp_path: Path) -> None:
    # dense ids go through a presence table, sparse ones through a sort: same summary
    rows = [(7, "2024-01-01"), (3, "2024-01-02"), (7, "2024-01-09"), (5, "2024-01-03")]
    for ids, name in (([r[0] for r in rows], "dense"), ([r[0] * 10**15 for r in rows], "sparse")):
        path = tmp_path / f"{name}.parquet"
        dates = [dt.date.fromisoformat(d) for _, d in rows]
        pq.write_table(pa.table({"c": pa.array(ids, pa.int64()), "d": dates}), path)
        s = summarise(read_transactions(path, customer_col="c", date_col="d"), unit="day")
        assert s.customer.tolist() == sorted(set(ids))
        assert s.x.tolist() == [0.0, 0.0, 1.0]
        assert s.orders.tolist() == [1, 1, 2]


def test_column_types(tmp_path: Path) -> None:
    """Timestamps (a zoned one on its local day), date64, text dates with --date-format,
    decimal amounts and text amounts with a decimal comma."""
    jkt = pa.timestamp("us", tz="Asia/Jakarta")
    utc_evening = dt.datetime(2024, 1, 1, 20, 0, tzinfo=dt.UTC)  # 2024-01-02 03:00 in Jakarta
    table = pa.table(
        {
            "c": ["a", "a", "b"],
            "zoned": pa.array([utc_evening, utc_evening + dt.timedelta(days=7), utc_evening], jkt),
            "naive": pa.array(
                [dt.datetime(2024, 1, 1, 23, 59), dt.datetime(2024, 1, 8), dt.datetime(2024, 1, 1)]
            ),
            "d64": pa.array(
                [dt.date(2024, 1, 1), dt.date(2024, 1, 8), dt.date(2024, 1, 1)], pa.date64()
            ),
            "text": ["01/01/2024", "08/01/2024", "01/01/2024"],
            "dec": pa.array(
                [Decimal("10.50"), Decimal("20.25"), Decimal("3")], pa.decimal128(9, 2)
            ),
            "comma": ["1.000,50", "2.000,25", "3"],
        }
    )
    path = tmp_path / "types.parquet"
    pq.write_table(table, path)
    first = {}
    for col, fmt in (("zoned", None), ("naive", None), ("d64", None), ("text", "%d/%m/%Y")):
        s = summarise(
            read_transactions(path, customer_col="c", date_col=col, date_format=fmt), unit="day"
        )
        first[col] = s.period_start
        assert s.t_x.tolist() == [7.0, 0.0]
    assert first == {
        "zoned": dt.date(2024, 1, 2),
        "naive": dt.date(2024, 1, 1),
        "d64": dt.date(2024, 1, 1),
        "text": dt.date(2024, 1, 1),
    }
    s = summarise(read_transactions(path, customer_col="c", date_col="d64", amount_col="dec"))
    assert s.spend.tolist() == [30.75, 3.0]
    s = summarise(
        read_transactions(
            path, customer_col="c", date_col="d64", amount_col="comma", decimal_comma=True
        )
    )
    assert s.spend.tolist() == [3000.75, 3.0]
    pq.write_table(pa.table({"c": ["a"], "d": [True]}), tmp_path / "bool.parquet")
    with pytest.raises(InvalidInput, match="has type bool"):
        read_transactions(tmp_path / "bool.parquet", customer_col="c", date_col="d")


def test_parquet_detected_by_magic_bytes(tmp_path: Path) -> None:
    path = _cdnow_parquet(tmp_path / "export.dat")
    tx = read_transactions(path, customer_col="customer", date_col="date")
    assert len(tx) == 6919
    with pytest.raises(InvalidInput, match="is not in the Parquet file's columns"):
        read_transactions(path, customer_col="client", date_col="date")
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(InvalidInput, match=r"cannot read .* as Parquet"):
        read_transactions(tmp_path / "broken.parquet", customer_col="0", date_col="1")


BAD = pa.table(
    {
        "c": ["a", None, "  ", "b", "c", "d", "e", "f", "g", "h"],
        "d": [
            *("2024-01-01", "2024-01-02", "2024-01-03", "nope", None),
            *("2024-01-06", "2024-01-07", "2024-01-08", "2024-01-09", "2024-01-10"),
        ],
        "a": ["1", "2", "3", "4", "5", "ten", None, "inf", "9", "10"],
    }
)


def test_bad_parquet_rows_are_reported_by_row_number(tmp_path: Path) -> None:
    path = tmp_path / "bad.parquet"
    pq.write_table(BAD, path, row_group_size=3)  # bad rows in several row groups
    with pytest.raises(InvalidInput) as info:
        files.read_parquet_transactions(
            path, customer_col="c", date_col="d", amount_col="a", batch_rows=2
        )
    err = info.value
    assert err.code == "bad_rows"
    assert "7 bad row(s)" in err.detail
    assert (
        "row 2: missing customer; row 3: empty customer; row 4: date 'nope' does not parse"
        in err.detail
    )
    assert "(and 2 more)" in err.detail
    assert err.extra["bad_rows"] == [
        {"row": 2, "reason": "missing customer"},
        {"row": 3, "reason": "empty customer"},
        {"row": 4, "reason": "date 'nope' does not parse"},
        {"row": 5, "reason": "missing date"},
        {"row": 6, "reason": "amount 'ten' is not a number"},
        {"row": 7, "reason": "missing amount"},
        {"row": 8, "reason": "amount 'inf' is not finite"},
    ]
    tx = read_transactions(path, customer_col="c", date_col="d", amount_col="a", skip_bad_rows=True)
    assert [b.line for b in tx.bad_rows] == [2, 3, 4, 5, 6, 7, 8]
    s = summarise(tx, unit="day")
    assert s.customer.tolist() == ["a", "g", "h"]
    assert s.spend.tolist() == [1.0, 9.0, 10.0]
    # a batch whose text dates and amounts are all null
    nulls = pa.table(
        {
            "c": ["a", "b"],
            "d": pa.array([None] * 2, pa.string()),
            "a": pa.array([None] * 2, pa.string()),
        }
    )
    pq.write_table(nulls, tmp_path / "nulls.parquet")
    with pytest.raises(InvalidInput, match="row 1: missing date; row 2: missing date"):
        read_transactions(
            tmp_path / "nulls.parquet", customer_col="c", date_col="d", amount_col="a"
        )
    nulls = nulls.set_column(1, "d", pa.array(["2024-01-01"] * 2))
    pq.write_table(nulls, tmp_path / "nulls.parquet")
    with pytest.raises(InvalidInput, match="row 1: missing amount; row 2: missing amount"):
        read_transactions(
            tmp_path / "nulls.parquet", customer_col="c", date_col="d", amount_col="a"
        )
    # numeric columns: a null and a NaN amount
    num = pa.table({"c": ["a", "b", "c"], "d": ["2024-01-01"] * 3, "a": [1.0, None, math.nan]})
    pq.write_table(num, tmp_path / "num.parquet")
    with pytest.raises(InvalidInput, match="row 2: missing amount; row 3: amount 'nan' is not"):
        read_transactions(tmp_path / "num.parquet", customer_col="c", date_col="d", amount_col="a")
    # the CLI: error with row numbers, or skipped rows listed on stderr
    args = ["analytics", "fit", "--transactions", str(path), "--customer-col", "c"]
    args += ["--date-col", "d", "--amount-col", "a"]
    res = runner.invoke(app, args)
    assert res.exit_code == 2
    assert "error: 7 bad row(s)" in res.stderr
    assert "row 2: missing customer" in res.stderr
    res = runner.invoke(app, [*args, "--skip-bad-rows", "--time-unit", "day", "--json"])
    assert "skipped row 4: date 'nope' does not parse" in res.stderr
    assert "skipped row 8: amount 'inf' is not finite" in res.stderr


# --- score output -----------------------------------------------------------------------------


def _score(tmp_path: Path, source: Path, out: str, *extra: str) -> Path:
    target = tmp_path / out
    res = runner.invoke(
        app,
        [
            "analytics",
            "score",
            "--transactions",
            str(source),
            *extra,
            "--horizon",
            "39",
            "--output",
            str(target),
        ],
    )
    assert res.exit_code == 0, res.output
    assert f"2357 customers scored into {target}" in res.stderr
    return target


def test_score_columns_and_values_csv_and_parquet(tmp_path: Path) -> None:
    cdnow = [*CDNOW, "--amount-col", "4"]
    csv_out = _score(tmp_path, sample_file(), "scores.csv", *cdnow)
    pq_in = _cdnow_parquet(tmp_path / "cdnow.parquet")
    pq_out = _score(tmp_path, pq_in, "scores.parquet", *cdnow)
    rows = list(csv.DictReader(csv_out.open()))
    assert list(rows[0]) == list(scoring.SCORE_COLUMNS)
    table = pq.read_table(pq_out)
    assert table.column_names == list(scoring.SCORE_COLUMNS)
    assert table.schema.field("first_purchase").type == pa.date32()
    assert table.schema.field("r").type == pa.int8()
    back = table.to_pylist()
    assert len(back) == len(rows) == 2357
    # CSV and Parquet carry the same values (CSV as text)
    for i in (0, 1, 2, 500, 2356):
        for name in scoring.SCORE_COLUMNS:
            value = back[i][name]
            text = rows[i][name]
            if isinstance(value, float):
                assert float(text) == pytest.approx(value, rel=1e-12), name
            else:
                assert text == str(value), name

    # values: the model functions per customer, RFM scores and segment, label rules
    tx = read_transactions(sample_file(), customer_col="1", date_col="2", amount_col="4")
    s = summarise(tx, calibration_end=CALIBRATION_END)
    bg = models.fit_bgnbd(s.x, s.t_x, s.T)
    gg = models.fit_gamma_gamma(s.x, s.monetary)
    alive = models.p_alive(bg, s.x, s.t_x, s.T)
    expected = models.expected_purchases(bg, 39, s.x, s.t_x, s.T)
    value = models.clv(
        bg, models.expected_spend(gg.params, s.x, s.monetary), s.x, s.t_x, s.T, months=12
    )
    end = CALIBRATION_END
    recency = [(end - r["last_purchase"]).days for r in back]
    scores = rfm.score(recency, [r["orders"] for r in back], [r["spend"] for r in back])
    th = labels.Thresholds()
    for i, r in enumerate(back):
        assert r["customer"] == s.customer[i]
        assert r["p_alive"] == pytest.approx(alive[i], rel=1e-9)
        assert r["expected_purchases"] == pytest.approx(expected[i], rel=1e-9)
        assert r["clv"] == pytest.approx(value[i], rel=1e-9)
        assert r["recency_days"] == recency[i]
        assert r["tenure_days"] == (end - r["first_purchase"]).days
        assert (r["r"], r["f"], r["m"]) == (scores.r[i], scores.f[i], scores.m[i])
        assert r["segment"] == scores.segments[i]
        assert r["frequency"] + 1 <= r["orders"]
        row = MemberRow(
            uuid.uuid4(),
            r["orders"],
            Decimal(str(r["spend"])),
            Decimal(str(r["refunds"])),
            0,
            None,
            None,
            r["frequency"] + 1,
            r["first_purchase"],
            r["last_purchase"],
            0.0,
            0.0,
            0.0,
            0.0,
        )
        expected_label, _ = labels._label(
            row, r["recency_days"], r["tenure_days"], round(r["p_alive"], 4), th
        )
        assert r["label"] == expected_label
    assert {r["label"] for r in back} <= {"new", "lost", "loyal", "at_risk", "happy"}
    assert sum(r["label"] == "loyal" for r in back) > 100
    # first customer of CDNOW: three orders on three days, amounts summed
    assert back[0]["orders"] == 3
    assert back[0]["spend"] == pytest.approx(74.02)
    assert rows[0]["spend"] == "74.02"
    assert rows[0]["refunds"] == "0"


def test_score_without_amounts_and_with_thresholds(tmp_path: Path) -> None:
    out = _score(tmp_path, sample_file(), "s.parquet", *CDNOW, "--lost-days", "400")
    t = pq.read_table(out).to_pylist()
    assert all(r["clv"] is None and r["m"] is None and r["spend"] is None for r in t)
    # no M: the segment is read at FM = F
    for r in t[:50]:
        assert r["segment"] == rfm.DEFAULT_GRID[(r["r"], r["f"])]
    # lost_days beyond the period: nobody is lost by recency
    assert all(r["label"] != "lost" or r["p_alive"] < 0.1 for r in t)
    res = runner.invoke(
        app,
        [
            "analytics",
            "score",
            "--transactions",
            str(sample_file()),
            *CDNOW,
            "--lost-days",
            "30",
            "--active-days",
            "20",
        ],
    )
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(res.stdout.splitlines()))
    assert len(rows) == 2357
    assert rows[0]["clv"] == ""
    res = runner.invoke(
        app,
        ["analytics", "score", "--transactions", str(sample_file()), *CDNOW, "--lost-days", "5"],
    )
    assert res.exit_code == 2
    assert "lost_days must be more than active_days" in res.stderr


def test_csv_output_quotes_only_when_needed(tmp_path: Path) -> None:
    path = tmp_path / "tx.csv"
    path.write_text(
        'c,d,a\n"Smith, J",2024-01-01,1\n"Smith, J",2024-01-09,2\nplain,2024-01-02,3\n'
        "plain,2024-01-05,3\nthird,2024-01-03,3\n"
    )
    res = runner.invoke(
        app,
        [
            *("analytics", "score", "--transactions", str(path), "--customer-col", "c"),
            *("--date-col", "d", "--time-unit", "day"),
        ],
    )
    assert res.exit_code == 0, res.output
    keys = [r["customer"] for r in csv.DictReader(res.stdout.splitlines())]
    assert keys == ["Smith, J", "plain", "third"]
    assert '"Smith, J"' in res.stdout


@settings(max_examples=200, deadline=None)
@given(
    days=st.integers(0, 8),
    refunds=st.sampled_from([0.0, 5.0]),
    recency=st.integers(0, 400),
    tenure=st.integers(0, 400),
    alive=st.one_of(st.none(), st.floats(0, 1)),
    th=st.sampled_from(
        [labels.Thresholds(), labels.Thresholds(loyal_min_days=1, new_days=0, lost_days=50)]
    ),
)
def test_vectorised_labels_follow_the_label_rules(
    days: int, refunds: float, recency: int, tenure: int, alive: float | None, th: Any
) -> None:
    row = MemberRow(
        uuid.uuid4(),
        days,
        Decimal(0),
        Decimal(str(refunds)),
        0,
        None,
        None,
        days,
        None,
        None,
        0.0,
        0.0,
        0.0,
        0.0,
    )
    p = None if alive is None else round(alive, 4)
    expected, _ = labels._label(
        row, None if days == 0 else recency, None if days == 0 else tenure, p, th
    )
    got = scoring.label_codes(
        np.array([days]),
        np.array([refunds]),
        np.array([recency]),
        np.array([tenure]),
        None if alive is None else np.array([alive]),
        th,
    )
    assert labels.LABELS[int(got[0])] == expected


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(
        st.lists(st.integers(-5, 40), max_size=60),
        st.lists(st.integers(-(10**12), 10**12), max_size=60),
        st.lists(st.floats(-1e6, 1e6, allow_nan=False).map(lambda v: round(v, 1)), max_size=60),
    )
)
def test_fast_quintiles_equal_rfm_quintiles(values: list[float]) -> None:
    arr = np.array(values, dtype=np.float64 if values and isinstance(values[0], float) else None)
    if arr.size == 0:
        arr = np.zeros(0)
    assert scoring.quintile_scores(arr).tolist() == rfm.quintile_scores(arr).tolist()


# --- export from the API ----------------------------------------------------------------------


def _csv_rows(body: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(body.decode().splitlines()))


def test_api_exports_members_rfm_and_labels(
    db: Database, tenant: TenantFixture, client: TestClient
) -> None:
    random_history(db, tenant)
    base = {"as_of": AS_OF}

    def get(path: str, **params: Any) -> Any:
        r = client.get(f"/v1/analytics/{path}", params={**base, **params}, headers=tenant.headers)
        assert r.status_code == 200, r.text
        return r

    # members: the JSON pages and the file carry the same rows (the file: all, unpaged)
    pages = []
    cursor = None
    while True:
        body = get("members", limit=10, **({"cursor": cursor} if cursor else {})).json()
        pages += body["data"]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    r = get("members", format="csv", limit=3)
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    assert r.headers["content-disposition"] == 'attachment; filename="members.csv"'
    rows = _csv_rows(r.content)
    assert [c for c, _ in export.MEMBER_COLUMNS] == list(rows[0])
    assert len(rows) == len(pages) == 25
    for j, c in zip(pages, rows, strict=True):
        assert c["member_id"] == j["member_id"]
        assert c["segment"] == j["segment"]
        assert (int(c["r"]), int(c["f"]), int(c["m"])) == (j["r"], j["f"], j["m"])
        assert c["spend"] == j["spend"]  # IDR: no decimals, as in JSON
        assert c["clv"] == (j["clv"] or "")
        assert float(c["p_alive"]) == j["p_alive"]
        assert c["label"] == j["label"]
        assert c["loyalty_type"] == j["loyalty_type"]
    r = get("members", format="parquet")
    assert r.headers["content-type"] == files.PARQUET_MEDIA_TYPE
    table = pq.read_table(pa.BufferReader(r.content))
    assert table.schema.field("spend").type == pa.decimal128(20, 0)
    assert table.schema.field("r").type == pa.int8()
    back = table.to_pylist()
    assert [b["member_id"] for b in back] == [j["member_id"] for j in pages]
    assert [str(b["spend"]) for b in back] == [j["spend"] for j in pages]
    assert [b["expected_purchases"] for b in back] == [j["expected_purchases"] for j in pages]
    # filters apply to the file too
    seg = pages[0]["segment"]
    only = _csv_rows(get("members", format="csv", segment=seg).content)
    assert {c["segment"] for c in only} == {seg}
    assert len(only) == sum(j["segment"] == seg for j in pages)

    # rfm: one row per member with a purchase; segments count as in the report
    report = get("rfm").json()
    rows = _csv_rows(get("rfm", format="csv").content)
    assert list(rows[0]) == [c for c, _ in export.RFM_COLUMNS]
    counts: dict[str, int] = {}
    for c in rows:
        counts[c["segment"]] = counts.get(c["segment"], 0) + 1
    assert counts == {s["segment"]: s["members"] for s in report["segments"]}
    back = pq.read_table(pa.BufferReader(get("rfm", format="parquet").content)).to_pylist()
    assert [b["member_id"] for b in back] == [c["member_id"] for c in rows]
    assert all(b["x"] == float(c["x"]) for b, c in zip(back, rows, strict=True))
    assert all(b["refunds"] >= 0 for b in back)

    # labels: one row per member; counts as in the report
    report = get("labels").json()
    rows = _csv_rows(get("labels", format="csv").content)
    assert list(rows[0]) == [c for c, _ in export.LABEL_COLUMNS]
    assert len(rows) == report["members"]
    for name, n in report["labels"].items():
        assert sum(c["label"] == name for c in rows) == n
    back = pq.read_table(pa.BufferReader(get("labels", format="parquet").content)).to_pylist()
    assert [b["label"] for b in back] == [c["label"] for c in rows]
    assert all(0 <= b["habitual"] <= 1 for b in back)

    # an unknown format is a 422
    r = client.get("/v1/analytics/members", params={"format": "xlsx"}, headers=tenant.headers)
    assert r.status_code == 422


def test_export_is_documented_in_openapi(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    for path in ("/v1/analytics/members", "/v1/analytics/rfm", "/v1/analytics/labels"):
        op = doc["paths"][path]["get"]
        content = op["responses"]["200"]["content"]
        assert set(content) >= {"application/json", "text/csv", files.PARQUET_MEDIA_TYPE}
        param = {p["name"]: p for p in op["parameters"]}["format"]
        assert param["in"] == "query"


def test_refund_lines_are_netted_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "tx.parquet"
    table = pa.table(
        {
            "c": ["a", "a", "b", "b", "c"],
            "d": [dt.date(2024, m, d) for m, d in ((1, 1), (1, 1), (1, 2), (3, 1), (3, 1))],
            "a": [100.0, -30.0, 50.0, -5.0, 20.0],
        }
    )
    pq.write_table(table, path)
    s = summarise(read_transactions(path, customer_col="c", date_col="d", amount_col="a"))
    assert s.spend.tolist() == [70.0, 45.0, 20.0]
    assert s.refunds.tolist() == [30.0, 5.0, 0.0]
    assert s.orders.tolist() == [2, 2, 1]
    assert s.x.tolist() == [0.0, 1.0, 0.0]
    assert s.monetary.tolist() == [0.0, -5.0, 0.0]
    # a one-time buyer with a refund is dissatisfied, not happy (the labels' rule)
    codes = scoring.label_codes(
        s.x.astype(np.int64) + 1,
        s.refunds,
        np.array([60, 0, 0]),
        np.array([60, 59, 0]),
        None,
        labels.Thresholds(),
    )
    assert [labels.LABELS[int(c)] for c in codes] == ["dissatisfied", "dissatisfied", "new"]
