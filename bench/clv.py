"""BG/NBD + Gamma-Gamma fits: Setia's compressed maximum likelihood against lifetimes.

What it measures, in one process:

* **CDNOW** (the 2,357-customer sample shipped in the lifetimes wheel, calibration = first 39
  weeks): reading and summarising the transaction file, then fitting BG/NBD and
  Gamma-Gamma, best of ``--repeat`` runs; lifetimes' ``BetaGeoFitter`` and
  ``GammaGammaFitter`` on the same summary, best of as many runs; the ratio.
* **synthetic**: ``--customers`` (default 1,000,000) customers drawn from the BG/NBD
  generative process with CDNOW-like parameters (r=0.243, α=4.414, a=0.793, b=2.426; ages
  27-39 weeks in whole days) and Gamma-Gamma spends (p=6.25, q=3.74, γ=15.44); then our
  compression + BG/NBD fit and Gamma-Gamma fit; the same with compression off (one
  likelihood term per customer, our code) to show what compression buys; and lifetimes on
  the same arrays — on all of them when ``--lifetimes-customers`` is at least
  ``--customers`` (the default), on a random subsample otherwise (said in the output).
  Both optima are compared: parameters and the log-likelihood at each side's parameters.

* **from a Parquet file** (``--file-customers``, default 1,000,000; 10,000,000 is the
  issue's target): the same generative process written out as a transactions file —
  customer id, date, amount per row, in date order, some purchase days split into two rows
  — with the first, last and x − 1 distinct intermediate purchase days per customer and a
  Gamma-Gamma amount per purchase day. Then, timed stage by stage as ``setia analytics
  score`` runs them: read the Parquet file, summarise, BG/NBD (with compression),
  Gamma-Gamma, score (P(alive), expected purchases, CLV, RFM, segment, label) and write the
  scores as Parquet. The summary read back is checked against the simulated (x, t_x, T).
  ``--file-customers 0`` skips it.

lifetimes is a bench/test-only dependency (the ``dev`` extra). If it cannot be imported,
the lifetimes lines are replaced by the uncompressed baseline only, and the output says so.

    python bench/clv.py
    python bench/clv.py --customers 200000
    python bench/clv.py --customers 10000000 --lifetimes-customers 1000000
    python bench/clv.py --customers 0 --file-customers 10000000     # the 10 M file target
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import platform
import resource
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from setia.analytics import models
from setia.analytics.simulate import simulate_bgnbd
from setia.analytics.summary import compress, day_number, read_transactions, summarise

CDNOW_BG = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
CDNOW_GG = {"p": 6.25, "q": 3.74, "gamma": 15.44}


def best_of(n: int, fn: Callable[[], Any]) -> tuple[float, Any]:
    best = float("inf")
    result: Any = None
    for _ in range(n):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def load_lifetimes() -> Any:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import lifetimes
            import pandas  # noqa: F401  (lifetimes needs it)
    except Exception as exc:
        print(
            f"lifetimes does not import here ({type(exc).__name__}: {exc}): no lifetimes baseline"
        )
        return None
    return lifetimes


def lifetimes_fit(
    lt: Any, x: np.ndarray, t_x: np.ndarray, T: np.ndarray, z: np.ndarray
) -> tuple[dict[str, float], dict[str, float]]:
    import pandas as pd

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bg = lt.BetaGeoFitter().fit(pd.Series(x), pd.Series(t_x), pd.Series(T))
        rep = x > 0
        gg = lt.GammaGammaFitter().fit(pd.Series(x[rep]), pd.Series(z[rep]))
    return (
        {k: float(bg.params_[k]) for k in ("r", "alpha", "a", "b")},
        {"p": float(gg.params_["p"]), "q": float(gg.params_["q"]), "gamma": float(gg.params_["v"])},
    )


def ours(
    x: np.ndarray, t_x: np.ndarray, T: np.ndarray, z: np.ndarray, compressed: bool = True
) -> tuple[models.Fit, models.Fit]:
    return models.fit_bgnbd(x, t_x, T, compressed=compressed), models.fit_gamma_gamma(x, z)


def simulate_spend(x: np.ndarray, seed: int) -> np.ndarray:
    """Mean spend over x repeat purchases: ν ~ Gamma(q, 1/γ), z̄ | ν ~ Gamma(p x, 1/(ν x))."""
    rng = np.random.default_rng(seed + 1)
    nu = rng.gamma(CDNOW_GG["q"], 1.0 / CDNOW_GG["gamma"], x.shape[0])
    z = np.zeros_like(x)
    rep = x > 0
    z[rep] = rng.gamma(CDNOW_GG["p"] * x[rep], 1.0 / (nu[rep] * x[rep]))
    return z


def fmt(params: dict[str, float]) -> str:
    return " ".join(f"{k}={v:.4f}" for k, v in params.items())


def ll(params: dict[str, float], x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> float:
    c = compress(x, t_x, T)
    return float(c.weight @ models.bgnbd_loglik_terms(list(params.values()), c.x, c.t_x, c.T))


def write_transactions_file(
    path: Path, n: int, seed: int, *, string_ids: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """``n`` simulated customers' transactions as Parquet; returns their (x, t_x, T) in
    weeks, as a summary of the file must give them, and the number of rows."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed + 10)
    x, t_x, T = simulate_bgnbd(n, **CDNOW_BG, seed=seed)
    tx_days = np.rint(t_x * 7).astype(np.int32)
    age_days = np.rint(T * 7).astype(np.int32)
    # x repeat purchase days need x distinct days in (first, last]: at most tx_days of them
    xs = np.minimum(x.astype(np.int32), tx_days)
    del x, t_x, T
    end = day_number(dt.date(2026, 6, 30))
    first = (end - age_days).astype(np.int32)
    # intermediate days: m = x - 1 distinct days strictly between first and last, drawn as
    # sorted draws from [0, R - m] plus their rank (R = tx_days - 1 days available)
    m = np.maximum(xs - 1, 0).astype(np.int64)
    owner = np.repeat(np.arange(n, dtype=np.int64), m)
    room = (tx_days.astype(np.int64) - 1 - m + 1)[owner]
    draw = np.floor(rng.random(owner.shape[0]) * room).astype(np.int64)
    draw = np.sort(owner * (int(tx_days.max()) + 1) + draw) % (int(tx_days.max()) + 1)
    start = np.zeros(n, dtype=np.int64)
    np.cumsum(m[:-1], out=start[1:])
    rank = np.arange(owner.shape[0], dtype=np.int64) - start[owner]
    middle = (first[owner] + 1 + draw + rank).astype(np.int32)
    del draw, rank, room, start
    rep = np.flatnonzero(xs > 0)
    cust = np.concatenate([np.arange(n, dtype=np.int64), rep.astype(np.int64), owner])
    day = np.concatenate([first, first[rep] + tx_days[rep], middle])
    del owner, middle
    # Gamma-Gamma spend: nu ~ Gamma(q, 1/gamma) per customer, z ~ Gamma(p, 1/nu) per day
    nu = rng.gamma(CDNOW_GG["q"], 1.0 / CDNOW_GG["gamma"], n)
    amount = np.round(rng.gamma(CDNOW_GG["p"], 1.0 / nu[cust]), 2)
    # one purchase day in ten is two rows on the same day (the summary adds them)
    split = np.flatnonzero(rng.random(cust.shape[0]) < 0.1)
    part = np.round(amount[split] * rng.random(split.shape[0]), 2)
    amount[split] -= part
    cust = np.concatenate([cust, cust[split]])
    day = np.concatenate([day, day[split]])
    amount = np.concatenate([amount, part])
    order = np.argsort(day, kind="stable")  # a transaction log, in date order
    ids = pa.array(cust[order] + 10 ** len(str(n)))  # same width: text sorts as numbers
    if string_ids:
        ids = pc.binary_join_element_wise("C", pc.cast(ids, pa.string()), "")
    table = pa.table(
        {
            "customer_id": ids,
            "date": pa.array(day[order], pa.int32()).cast(pa.date32()),
            "amount": pa.array(amount[order]),
        }
    )
    rows = table.num_rows
    pq.write_table(table, path, row_group_size=1 << 20)
    return xs.astype(np.float64), tx_days / 7.0, age_days / 7.0, rows


def file_bench(n: int, seed: int, path: Path | None, string_ids: bool) -> None:
    from setia.analytics import files, scoring

    with tempfile.TemporaryDirectory() as tmp:
        target = path or Path(tmp) / "transactions.parquet"
        t0 = time.perf_counter()
        x, t_x, T, rows = write_transactions_file(target, n, seed, string_ids=string_ids)
        t_gen = time.perf_counter() - t0
        size = target.stat().st_size
        print(
            f"\nfrom a Parquet file: {n:,} customers, {rows:,} transactions "
            f"({'string' if string_ids else 'integer'} customer ids), {size / 1e6:.0f} MB, "
            f"generated and written in {t_gen:.1f} s (not counted below)"
        )
        stages: list[tuple[str, float]] = []

        def stage(name: str, fn: Callable[[], Any]) -> Any:
            t = time.perf_counter()
            out = fn()
            stages.append((name, time.perf_counter() - t))
            return out

        t = time.perf_counter()
        tx = read_transactions(
            target, customer_col="customer_id", date_col="date", amount_col="amount"
        )
        stages.append(("read Parquet", time.perf_counter() - t))
        t = time.perf_counter()
        summ = summarise(tx, unit="week")
        stages.append(("summarise", time.perf_counter() - t))
        del tx
        same = (
            np.array_equal(summ.x, x)
            and np.allclose(summ.t_x, t_x, atol=1e-9)
            and np.allclose(summ.T, T, atol=1e-9)
        )
        del x, t_x, T
        bg = stage("BG/NBD (incl. compression)", lambda: models.fit_bgnbd(summ.x, summ.t_x, summ.T))
        gg = stage("Gamma-Gamma", lambda: models.fit_gamma_gamma(summ.x, summ.monetary))
        table = stage(
            "score (P(alive), expected purchases, CLV, RFM, segment, label)",
            lambda: scoring.score_table(summ, bg, gg, has_amounts=True),
        )
        out = Path(tmp) / "scores.parquet"
        stage("write scores as Parquet", lambda: files.write_table(table, out))
        total = sum(t for _, t in stages)
        print(
            f"  summary read back equals the simulated (x, t_x, T): {same}; "
            f"{summ.repeat_customers:,} repeat customers"
        )
        for name, t in stages:
            print(f"  {name}: {t:.2f} s")
        print(f"  total: {total:.1f} s (target: under 120 s at 10,000,000 customers)")
        print(f"  BG/NBD {fmt(bg.params)} LL={bg.log_likelihood:.1f}")
        print(f"  Gamma-Gamma {fmt(gg.params)}")
        labels = table.column("label").combine_chunks().dictionary_decode().value_counts()
        print(
            "  labels: " + ", ".join(f"{v['values']} {v['counts']:,}" for v in labels.to_pylist())
        )
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"  peak memory of the process (generation included): {peak:,.0f} MB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument(
        "--lifetimes-customers",
        type=int,
        default=None,
        help="lifetimes on a subsample of this size (default: all customers)",
    )
    ap.add_argument("--repeat", type=int, default=3, help="best of N on CDNOW")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument(
        "--file-customers",
        type=int,
        default=1_000_000,
        help="customers in the Parquet-file run (0: skip; 10000000: the issue's target)",
    )
    ap.add_argument("--parquet", type=Path, default=None, help="keep the generated file here")
    ap.add_argument("--string-ids", action="store_true", help="customer ids as text (C1000000)")
    args = ap.parse_args()

    print(
        f"python {platform.python_version()}, numpy {np.__version__}, scipy "
        f"{importlib.metadata.version('scipy')}, {platform.machine()}, {dt.datetime.now(dt.UTC):%Y-%m-%d}"
    )
    lt = load_lifetimes()
    if lt is not None:
        print(
            f"lifetimes {importlib.metadata.version('lifetimes')}, pandas {importlib.metadata.version('pandas')}"
        )

    # --- CDNOW ----------------------------------------------------------------------------
    data = Path(str(importlib.metadata.distribution("lifetimes").locate_file("lifetimes/datasets")))
    t_sum, summ = best_of(
        args.repeat,
        lambda: summarise(
            read_transactions(
                data / "CDNOW_sample.txt", customer_col="1", date_col="2", amount_col="4"
            ),
            unit="week",
            calibration_end=dt.date(1997, 9, 30),
        ),
    )
    x, t_x, T, z = summ.x, summ.t_x, summ.T, summ.monetary
    t_ours, (bg, gg) = best_of(args.repeat, lambda: ours(x, t_x, T, z))
    print(
        f"\nCDNOW: {len(summ)} customers, {summ.repeat_customers} repeat, "
        f"{len(compress(x, t_x, T))} distinct (x, t_x, T) rows"
    )
    print(f"  read + summarise 6,919 transactions: {t_sum * 1000:.1f} ms")
    print(
        f"  setia BG/NBD + Gamma-Gamma: {t_ours * 1000:.1f} ms   BG/NBD {fmt(bg.params)} LL={bg.log_likelihood:.3f}"
    )
    print(f"                                         Gamma-Gamma {fmt(gg.params)}")
    if lt is not None:
        t_lt, (lbg, _lgg) = best_of(args.repeat, lambda: lifetimes_fit(lt, x, t_x, T, z))
        print(
            f"  lifetimes BG/NBD + Gamma-Gamma: {t_lt * 1000:.1f} ms   BG/NBD {fmt(lbg)} LL={ll(lbg, x, t_x, T):.3f}"
        )
        print(f"  ratio lifetimes / setia: {t_lt / t_ours:.1f}x")

    if args.customers > 0:
        synthetic(args, lt)
    if args.file_customers > 0:
        file_bench(args.file_customers, args.seed, args.parquet, args.string_ids)


def synthetic(args: argparse.Namespace, lt: Any) -> None:
    n = args.customers
    t0 = time.perf_counter()
    x, t_x, T = simulate_bgnbd(n, **CDNOW_BG, seed=args.seed)
    z = simulate_spend(x, args.seed)
    t_sim = time.perf_counter() - t0
    t0 = time.perf_counter()
    c = compress(x, t_x, T)
    t_comp = time.perf_counter() - t0
    print(
        f"\nsynthetic: {n:,} customers ({int((x > 0).sum()):,} repeat), simulated in {t_sim:.2f} s; "
        f"{len(c):,} distinct rows, compressed in {t_comp:.2f} s"
    )
    t0 = time.perf_counter()
    bg = models.fit_bgnbd(x, t_x, T)
    t_bg = time.perf_counter() - t0
    gg = models.fit_gamma_gamma(x, z)
    t_ours = time.perf_counter() - t0
    print(
        f"  setia BG/NBD + Gamma-Gamma (compressed): {t_ours:.2f} s (BG/NBD incl. compression "
        f"{t_bg:.2f} s, Gamma-Gamma {t_ours - t_bg:.2f} s)   BG/NBD {fmt(bg.params)} LL={bg.log_likelihood:.1f}"
    )
    print(f"                                                   Gamma-Gamma {fmt(gg.params)}")
    t0 = time.perf_counter()
    bg_plain, _ = ours(x, t_x, T, z, compressed=False)
    t_plain = time.perf_counter() - t0
    print(
        f"  setia, compression off (one term per customer): {t_plain:.2f} s "
        f"({t_plain / t_ours:.1f}x the compressed fit); LL={bg_plain.log_likelihood:.1f}"
    )
    if lt is not None:
        m = n if args.lifetimes_customers is None else min(n, args.lifetimes_customers)
        if m < n:
            idx = np.random.default_rng(args.seed + 2).choice(n, m, replace=False)
            xs, ts, Ts, zs = x[idx], t_x[idx], T[idx], z[idx]
            t0 = time.perf_counter()
            ours(xs, ts, Ts, zs)
            t_ours_m = time.perf_counter() - t0
            label = f"a random subsample of {m:,} customers (the full fit would take too long)"
        else:
            xs, ts, Ts, zs, t_ours_m, label = x, t_x, T, z, t_ours, f"all {m:,} customers"
        t0 = time.perf_counter()
        lbg, lgg = lifetimes_fit(lt, xs, ts, Ts, zs)
        t_lt = time.perf_counter() - t0
        print(f"  lifetimes on {label}: {t_lt:.2f} s   BG/NBD {fmt(lbg)}")
        print(f"                                                   Gamma-Gamma {fmt(lgg)}")
        print(
            f"  setia on the same customers: {t_ours_m:.2f} s; ratio lifetimes / setia: {t_lt / t_ours_m:.1f}x"
        )
        ours_ll, their_ll = (
            ll(bg.params if m == n else models.fit_bgnbd(xs, ts, Ts).params, xs, ts, Ts),
            ll(lbg, xs, ts, Ts),
        )
        print(
            f"  same optimum? LL at setia's parameters {ours_ll:.3f}, at lifetimes' {their_ll:.3f} "
            f"(difference {ours_ll - their_ll:+.6f})"
        )


if __name__ == "__main__":
    main()
