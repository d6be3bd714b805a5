"""The CDNOW data shipped in the lifetimes wheel, opened as files (lifetimes is not imported)."""

from __future__ import annotations

import csv
import datetime as dt
import importlib.metadata
from functools import cache
from pathlib import Path

import pytest

from setia.analytics.summary import Summary, read_transactions, summarise

CALIBRATION_END = dt.date(1997, 9, 30)  # 39 weeks from 1997-01-01


def datasets() -> Path:
    try:
        dist = importlib.metadata.distribution("lifetimes")
    except importlib.metadata.PackageNotFoundError:
        pytest.fail("lifetimes (a dev dependency) is not installed: pip install -e '.[dev]'")
    return Path(str(dist.locate_file("lifetimes/datasets")))


def sample_file() -> Path:
    """CDNOW_sample.txt: master id, sample id (1..2357), YYYYMMDD, CDs, dollars; no header."""
    return datasets() / "CDNOW_sample.txt"


@cache
def calibration_summary() -> Summary:
    tx = read_transactions(sample_file(), customer_col="1", date_col="2", amount_col="4")
    return summarise(tx, unit="week", calibration_end=CALIBRATION_END)


def published_summary() -> dict[int, dict[str, float]]:
    """cdnow_customers_summary_with_transactions.csv: ID, x, t_x, T, zbar (2 decimals)."""
    with (datasets() / "cdnow_customers_summary_with_transactions.csv").open() as f:
        return {
            int(r["ID"]): {k: float(v) for k, v in r.items() if k != "ID"}
            for r in csv.DictReader(f)
        }


def published_rfm() -> dict[int, dict[str, float]]:
    """cdnow_customers_summary.csv: ID, frequency, recency, T (2 decimals)."""
    with (datasets() / "cdnow_customers_summary.csv").open() as f:
        return {
            int(r["ID"]): {k: float(v) for k, v in r.items() if k != "ID"}
            for r in csv.DictReader(f)
        }
