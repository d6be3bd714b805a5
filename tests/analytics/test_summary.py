"""Summaries from transaction files: conventions, delimiters, headers, bad rows."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from setia.analytics.summary import read_transactions, summarise
from setia.core.errors import InvalidInput

ROWS = [
    ("alice", "2024-01-01", "10"),
    ("alice", "2024-01-01", "5"),  # same day: one purchase day of 15
    ("alice", "2024-01-08", "20"),
    ("alice", "2024-01-15", "40"),
    ("bob", "2024-01-03", "7"),
    ("carol", "2024-01-29", "3"),
    ("carol", "2024-02-12", "9"),  # after the calibration end used below
]


def _write(tmp_path: Path, text: str, name: str = "tx.csv") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def _csv(delimiter: str = ",", header: bool = True) -> str:
    lines = [delimiter.join(("customer", "date", "amount"))] if header else []
    lines += [delimiter.join(r) for r in ROWS]
    return "\n".join(lines) + "\n"


def test_btyd_conventions(tmp_path: Path) -> None:
    tx = read_transactions(
        _write(tmp_path, _csv()), customer_col="customer", date_col="date", amount_col="amount"
    )
    s = summarise(tx, unit="week", calibration_end=dt.date(2024, 1, 29))
    assert s.customer.tolist() == ["alice", "bob", "carol"]
    assert s.x.tolist() == [2.0, 0.0, 0.0]  # distinct days − 1
    assert s.t_x.tolist() == [2.0, 0.0, 0.0]  # 14 days
    assert s.T.tolist() == pytest.approx([4.0, 26 / 7, 0.0])
    assert s.monetary.tolist() == [30.0, 0.0, 0.0]  # mean of repeat days 20 and 40
    assert s.repeat_customers == 1
    assert s.period_end == dt.date(2024, 1, 29)
    days = summarise(tx, unit="day", calibration_end=dt.date(2024, 1, 29))
    assert days.t_x.tolist() == [14.0, 0.0, 0.0]
    assert days.T.tolist() == [28.0, 26.0, 0.0]
    # without a calibration end: the last date in the file
    full = summarise(tx, unit="day")
    assert full.period_end == dt.date(2024, 2, 12)
    assert full.x.tolist() == [2.0, 0.0, 1.0]
    assert full.monetary.tolist() == [30.0, 0.0, 9.0]


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|", " "])
@pytest.mark.parametrize("header", [True, False])
def test_any_delimiter_header_or_not(tmp_path: Path, delimiter: str, header: bool) -> None:
    path = _write(tmp_path, _csv(delimiter, header))
    tx = read_transactions(path, customer_col="0", date_col="1", amount_col="2")
    assert len(tx) == len(ROWS)
    assert tx.amount is not None
    assert tx.amount.sum() == pytest.approx(94.0)
    if header:
        by_name = read_transactions(path, customer_col="customer", date_col="date")
        assert len(by_name) == len(ROWS)
        assert by_name.amount is None


def test_whitespace_aligned_file_with_date_format(tmp_path: Path) -> None:
    path = _write(tmp_path, " 00001 19970101  1   11.77\n 00001 19970112  1   12.00\n")
    tx = read_transactions(path, customer_col="0", date_col="1", amount_col="3")
    assert tx.day.tolist() == [9862, 9873]
    path2 = _write(tmp_path, "c;d\nx;03/02/2024\n", "eu.csv")
    tx2 = read_transactions(path2, customer_col="c", date_col="d", date_format="%d/%m/%Y")
    assert tx2.day.tolist() == [(dt.date(2024, 2, 3) - dt.date(1970, 1, 1)).days]


def test_decimal_comma_amounts(tmp_path: Path) -> None:
    path = _write(tmp_path, "c;d;a\nx;2024-01-01;1.234.567,50\ny;2024-01-02;6,1\n")
    with pytest.raises(InvalidInput, match="amount '6,1' is not a number"):
        read_transactions(path, customer_col="c", date_col="d", amount_col="a")
    tx = read_transactions(path, customer_col="c", date_col="d", amount_col="a", decimal_comma=True)
    assert tx.amount is not None
    assert tx.amount.tolist() == [1234567.5, 6.1]


def test_bad_rows_are_reported_with_line_numbers(tmp_path: Path) -> None:
    text = (
        "customer,date,amount\n"
        "a,2024-01-01,10\n"
        "b,not-a-date,10\n"  # line 3
        "c,2024-01-02,ten\n"  # line 4
        ",2024-01-02,1\n"  # line 5
        "d\n"  # line 6
        "e,2024-01-05,4\n"
    )
    path = _write(tmp_path, text)
    with pytest.raises(InvalidInput) as err:
        read_transactions(path, customer_col="customer", date_col="date", amount_col="amount")
    detail = err.value.detail
    assert detail.startswith("4 bad row(s)")
    for needle in (
        "line 3: date 'not-a-date'",
        "line 4: amount 'ten'",
        "line 5: empty customer",
        "line 6: 1 fields",
    ):
        assert needle in detail
    assert [b["line"] for b in err.value.extra["bad_rows"]] == [3, 4, 5, 6]
    tx = read_transactions(
        path, customer_col="customer", date_col="date", amount_col="amount", skip_bad_rows=True
    )
    assert tx.customer.tolist() == ["a", "e"]
    assert [b.line for b in tx.bad_rows] == [3, 4, 5, 6]


def test_many_bad_rows_list_the_first_few(tmp_path: Path) -> None:
    text = "c,d\n" + "".join(f"k{i},bad\n" for i in range(12))
    with pytest.raises(InvalidInput, match=r"12 bad row\(s\).*line 2:.*line 6:.*and 7 more"):
        read_transactions(_write(tmp_path, text), customer_col="c", date_col="d")


def test_unknown_columns_and_formats(tmp_path: Path) -> None:
    path = _write(tmp_path, _csv())
    with pytest.raises(InvalidInput, match="not in the header"):
        read_transactions(path, customer_col="client", date_col="date")
    headerless = _write(tmp_path, _csv(header=False), "nh.csv")
    with pytest.raises(InvalidInput, match="no header, give 0-based column indexes"):
        read_transactions(headerless, customer_col="0", date_col="date")
    with pytest.raises(InvalidInput, match=r"cannot read .* as Parquet"):
        read_transactions(tmp_path / "tx.parquet", customer_col="0", date_col="1")
    with pytest.raises(InvalidInput, match="is empty"):
        read_transactions(_write(tmp_path, "\n\n", "empty.csv"), customer_col="0", date_col="1")
    with pytest.raises(InvalidInput, match="no non-empty rows"):
        read_transactions(_write(tmp_path, ",,,\n", "commas.csv"), customer_col="0", date_col="1")
    with pytest.raises(InvalidInput, match="no transactions to summarise"):
        summarise(
            read_transactions(_write(tmp_path, "c,d\n", "h.csv"), customer_col="c", date_col="d")
        )
    tx = read_transactions(path, customer_col="customer", date_col="date")
    with pytest.raises(InvalidInput, match="no transactions on or before"):
        summarise(tx, calibration_end=dt.date(2023, 1, 1))
    with pytest.raises(InvalidInput, match="time unit"):
        summarise(tx, unit="month")


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 6), st.integers(0, 45), st.integers(1, 500)),
        min_size=1,
        max_size=60,
    )
)
def test_summary_matches_a_plain_python_reference(rows: list[tuple[int, int, int]]) -> None:
    from setia.analytics.summary import Transactions

    cust = np.array([f"c{c}" for c, _, _ in rows])
    day = np.array([20000 + d for _, d, _ in rows], dtype=np.int64)
    amount = np.array([float(a) for _, _, a in rows])
    end = 20000 + 45
    s = summarise(
        Transactions(cust, day, amount),
        unit="day",
        calibration_end=dt.date(1970, 1, 1) + dt.timedelta(days=end),
    )
    ref: dict[str, dict[int, float]] = {}
    for c, d, a in rows:
        if 20000 + d <= end:
            ref.setdefault(f"c{c}", {}).setdefault(20000 + d, 0.0)
            ref[f"c{c}"][20000 + d] += a
    assert s.customer.tolist() == sorted(ref)
    for i, k in enumerate(s.customer.tolist()):
        days = sorted(ref[k])
        assert s.x[i] == len(days) - 1
        assert s.t_x[i] == days[-1] - days[0]
        assert s.T[i] == end - days[0]
        repeat = [ref[k][d] for d in days[1:]]
        assert s.monetary[i] == pytest.approx(sum(repeat) / len(repeat) if repeat else 0.0)
