"""``setia analytics fit|score`` on files, with no service or database."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from setia.analytics import models
from setia.cli import app
from tests.analytics.cdnow import calibration_summary, sample_file

runner = CliRunner()
CDNOW = ["--customer-col", "1", "--date-col", "2", "--calibration-end", "1997-09-30"]


def test_fit_json_on_cdnow(monkeypatch: pytest.MonkeyPatch) -> None:
    # no database anywhere: a URL that cannot be opened must not matter
    monkeypatch.setenv("SETIA_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    res = runner.invoke(
        app,
        [
            "analytics",
            "fit",
            "--transactions",
            str(sample_file()),
            *CDNOW,
            "--amount-col",
            "4",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["model"] == "bgnbd"
    assert round(out["params"]["r"], 3) == 0.243
    assert round(out["params"]["alpha"], 3) == 4.414
    assert round(out["log_likelihood"], 1) == -9582.4
    assert out["data"] == {
        "transactions": 6919,
        "bad_rows_skipped": 0,
        "customers": 2357,
        "repeat_customers": 946,
        "distinct_rows": 1016,
        "time_unit": "week",
        "period_start": "1997-01-01",
        "period_end": "1997-09-30",
    }
    assert round(out["spend"]["params"]["p"], 2) == 6.25


def test_fit_pareto_text_output() -> None:
    res = runner.invoke(
        app, ["analytics", "fit", "--transactions", str(sample_file()), *CDNOW, "--model", "pareto"]
    )
    assert res.exit_code == 0, res.output
    assert "pareto: r=0.5533, alpha=10.577" in res.stdout
    assert "log-likelihood -9594.97" in res.stdout


def test_score_writes_one_row_per_customer(tmp_path: Path) -> None:
    out = tmp_path / "scores.csv"
    args = ["analytics", "score", "--transactions", str(sample_file()), *CDNOW, "--amount-col", "4"]
    res = runner.invoke(app, [*args, "--horizon", "39", "--months", "12", "--out", str(out)])
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 2357
    first = rows[0]
    assert first["customer"] == "0001"
    assert first["frequency"] == "2"
    assert first["first_purchase"] == "1997-01-01"
    assert first["last_purchase"] == "1997-08-02"
    assert float(first["p_alive"]) == pytest.approx(0.7266, abs=1e-4)
    assert float(first["expected_purchases"]) == pytest.approx(1.2260, abs=1e-4)
    assert float(first["expected_spend"]) > 0
    assert float(first["clv"]) > 0
    # the CLI scores compressed rows; the same numbers as the per-customer functions
    cal = calibration_summary()
    bg = models.fit_bgnbd(cal.x, cal.t_x, cal.T)
    gg = models.fit_gamma_gamma(cal.x, cal.monetary)
    spend = models.expected_spend(gg.params, cal.x, cal.monetary)
    value = models.clv(bg, spend, cal.x, cal.t_x, cal.T, months=12, discount_rate=0.01)
    alive = models.p_alive(bg, cal.x, cal.t_x, cal.T)
    for i in (0, 1, 2, 100, 2356):
        assert rows[i]["customer"] == cal.customer[i]
        assert float(rows[i]["clv"]) == pytest.approx(value[i], rel=1e-5)
        assert float(rows[i]["p_alive"]) == pytest.approx(alive[i], rel=1e-5)
    # stdout, without amounts: spend and CLV are empty
    res = runner.invoke(
        app,
        ["analytics", "score", "--transactions", str(sample_file()), *CDNOW, "--model", "pareto"],
    )
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    assert len(rows) == 2357
    assert rows[0]["clv"] == ""
    assert 0 < float(rows[0]["p_alive"]) < 1


def test_named_columns_and_day_unit(tmp_path: Path) -> None:
    path = tmp_path / "tx.csv"
    path.write_text(
        "member;when;total\n"
        "m1;2024-01-01;10\nm1;2024-01-15;20\nm1;2024-02-01;30\n"
        "m2;2024-01-03;5\nm3;2024-01-10;8\nm3;2024-03-01;9\nm4;2024-02-20;4\n"
    )
    res = runner.invoke(
        app,
        [
            "analytics",
            "fit",
            "--transactions",
            str(path),
            "--customer-col",
            "member",
            "--date-col",
            "when",
            "--amount-col",
            "total",
            "--time-unit",
            "day",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["data"]["customers"] == 4
    assert out["data"]["repeat_customers"] == 2
    assert out["data"]["period_end"] == "2024-03-01"


def test_errors_exit_non_zero_with_a_clear_message(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("c,d\na,2024-01-01\nb,2024-13-45\n")
    res = runner.invoke(
        app,
        ["analytics", "fit", "--transactions", str(path), "--customer-col", "c", "--date-col", "d"],
    )
    assert res.exit_code == 2
    assert "line 3: date '2024-13-45' does not parse" in res.output
    res = runner.invoke(
        app,
        [
            "analytics",
            "fit",
            "--transactions",
            str(path),
            "--customer-col",
            "c",
            "--date-col",
            "d",
            "--model",
            "weibull",
        ],
    )
    assert res.exit_code == 2
    assert "--model must be one of bgnbd, pareto" in res.output
    res = runner.invoke(
        app,
        [
            "analytics",
            "fit",
            "--transactions",
            str(path),
            "--customer-col",
            "c",
            "--date-col",
            "d",
            "--calibration-end",
            "30/09/1997",
        ],
    )
    assert res.exit_code == 2
    assert "is not a YYYY-MM-DD date" in res.output


def test_unidentified_parameters_are_flagged(tmp_path: Path) -> None:
    """Customers who never leave (steady buying up to the end): BG/NBD's a runs to its bound."""
    rng = np.random.default_rng(11)
    lines = ["c,d"]
    for c in range(400):
        days = np.unique(rng.integers(0, 200, rng.integers(1, 12)))
        days = np.append(days, 199 - rng.integers(0, 3))  # everyone still buying at the end
        lines += [
            f"k{c},{(dt.date(2024, 1, 1) + dt.timedelta(days=int(d))).isoformat()}" for d in days
        ]
    path = tmp_path / "steady.csv"
    path.write_text("\n".join(lines) + "\n")
    res = runner.invoke(
        app,
        [
            "analytics",
            "fit",
            "--transactions",
            str(path),
            "--customer-col",
            "c",
            "--date-col",
            "d",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert "a" in out["at_bound"]  # mean drop-out probability a/(a+b) driven to 0
    assert "at the search bound" in res.stderr


def test_too_few_repeat_buyers_for_spend_still_fits(tmp_path: Path) -> None:
    path = tmp_path / "few.csv"
    path.write_text(
        "c;d;a\nx;2024-01-01;5,5\nx;2024-01-09;7,25\ny;2024-01-02;6,1\nz;2024-01-20;3,0\n"
    )
    args = [
        "--transactions",
        str(path),
        "--customer-col",
        "c",
        "--date-col",
        "d",
        "--amount-col",
        "a",
        "--decimal-comma",
        "--time-unit",
        "day",
    ]
    res = runner.invoke(app, ["analytics", "fit", *args, "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["spend"] is None
    assert "no spend model: Gamma-Gamma needs at least two repeat customers" in res.stderr
    res = runner.invoke(app, ["analytics", "score", *args])
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    assert [r["customer"] for r in rows] == ["x", "y", "z"]
    assert rows[0]["monetary_value"] == "7.25"
    assert rows[0]["clv"] == ""
