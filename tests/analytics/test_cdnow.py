"""CDNOW oracle: the 2,357-customer sample, calibration = the first 39 weeks of 1997.

Published values: Fader, Hardie & Lee (2005) "Counting your customers the easy way" (BG/NBD,
and the Pareto/NBD fit they compare it with); Fader & Hardie (2013) "The Gamma-Gamma model
of monetary value". The same figures are the reference values of the CLVTools R package's
correctness tests (BG/NBD r=0.243 α=4.414 a=0.793 b=2.426 LL=-9582.4; Pareto/NBD r=0.553
α=10.578 s=0.606 β=11.669 LL=-9595.0; Gamma-Gamma p=6.25 q=3.74 γ=15.44 LL=-4055.9177).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import mpmath
import numpy as np
import pytest

from setia.analytics import models
from setia.analytics.summary import Summary
from tests.analytics.cdnow import calibration_summary, published_rfm, published_summary


@pytest.fixture(scope="module")
def cal() -> Summary:
    return calibration_summary()


@pytest.fixture(scope="module")
def bg(cal: Summary) -> models.Fit:
    return models.fit_bgnbd(cal.x, cal.t_x, cal.T)


@pytest.fixture(scope="module")
def pn(cal: Summary) -> models.Fit:
    return models.fit_pareto(cal.x, cal.t_x, cal.T)


@pytest.fixture(scope="module")
def gg(cal: Summary) -> models.Fit:
    return models.fit_gamma_gamma(cal.x, cal.monetary)


def _ids(cal: Summary) -> list[int]:
    return [int(c) for c in cal.customer]


# --- the summary -------------------------------------------------------------------------


def test_summary_from_transactions_equals_the_published_summary(cal: Summary) -> None:
    rfm = published_rfm()
    full = published_summary()
    assert len(cal) == 2357 == len(rfm) == len(full)
    assert cal.repeat_customers == 946
    assert cal.period_start.isoformat() == "1997-01-01"
    for i, cid in enumerate(_ids(cal)):
        ref = rfm[cid]
        assert cal.x[i] == ref["frequency"], cid
        assert cal.t_x[i] == pytest.approx(ref["recency"], abs=0.005), cid
        assert cal.T[i] == pytest.approx(ref["T"], abs=0.005), cid
        # zbar is rounded to cents in the file (23.475 shows as 23.48)
        assert cal.monetary[i] == pytest.approx(full[cid]["zbar"], abs=0.00501), cid
        assert cal.x[i] == full[cid]["x"]
    assert cal.T.max() == pytest.approx(272 / 7)  # 1997-01-01 .. 1997-09-30


# --- published parameters ----------------------------------------------------------------


def _assert_published(
    fit: models.Fit, expected: dict[str, float], ll: float, ll_digits: int
) -> None:
    for name, value in expected.items():
        digits = len(str(value).split(".")[1])
        assert round(fit.params[name], digits) == value, (name, fit.params[name])
    assert round(fit.log_likelihood, ll_digits) == ll
    assert fit.converged


def test_bgnbd_matches_fader_hardie_lee_2005(bg: models.Fit) -> None:
    _assert_published(bg, {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}, -9582.4, 1)
    # distinct (x, t_x, T) rows: the likelihood is evaluated 1,016 times, not 2,357
    assert bg.rows == 1016
    assert bg.customers == 2357


def test_pareto_nbd_matches_the_published_fit(pn: models.Fit) -> None:
    _assert_published(pn, {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}, -9595.0, 1)


def test_gamma_gamma_matches_fader_hardie_2013(gg: models.Fit) -> None:
    _assert_published(gg, {"p": 6.25, "q": 3.74, "gamma": 15.44}, -4055.92, 2)
    assert gg.customers == 946


def test_gamma_gamma_on_the_published_zbar_column() -> None:
    full = published_summary()
    x = np.array([r["x"] for r in full.values()])
    z = np.array([r["zbar"] for r in full.values()])
    fit = models.fit_gamma_gamma(x, z)
    for name, value in {"p": 6.25, "q": 3.74, "gamma": 15.44}.items():
        assert fit.params[name] == pytest.approx(value, abs=0.01)


def test_uncompressed_fit_reaches_the_same_optimum(cal: Summary, bg: models.Fit) -> None:
    plain = models.fit_bgnbd(cal.x, cal.t_x, cal.T, compressed=False)
    assert plain.rows == 2357
    assert plain.log_likelihood == pytest.approx(bg.log_likelihood, abs=1e-6)
    for k in bg.params:
        assert plain.params[k] == pytest.approx(bg.params[k], rel=1e-4)


# --- per-customer predictions against independent closed forms (mpmath) -------------------

mpmath.mp.dps = 30
PICK = [0, 1, 2, 10, 100, 500, 1000, 2356]


def _mp_bgnbd(p: dict[str, float], t: float, x: float, tx: float, T: float) -> tuple[float, float]:
    r, al, a, b = (mpmath.mpf(p[k]) for k in ("r", "alpha", "a", "b"))
    x_, tx_, T_, t_ = (mpmath.mpf(v) for v in (x, tx, T, t))
    odds = a / (b + x_ - 1) * ((al + T_) / (al + tx_)) ** (r + x_) if x > 0 else mpmath.mpf(0)
    alive = 1 / (1 + odds)
    z = t_ / (al + T_ + t_)
    bracket = 1 - ((al + T_) / (al + T_ + t_)) ** (r + x_) * mpmath.hyp2f1(
        r + x_, b + x_, a + b + x_ - 1, z
    )
    expected = (a + b + x_ - 1) / (a - 1) * bracket * alive
    return float(alive), float(expected)


def _mp_pareto(p: dict[str, float], t: float, x: float, tx: float, T: float) -> tuple[float, float]:
    """P(alive) from the likelihood's integral form (no hypergeometric function at all)."""
    r, al, s, be = (mpmath.mpf(p[k]) for k in ("r", "alpha", "s", "beta"))
    x_, tx_, T_, t_ = (mpmath.mpf(v) for v in (x, tx, T, t))
    alive_part = (al + T_) ** (-(r + x_)) * (be + T_) ** (-s)
    dead_part = s * mpmath.quad(
        lambda tau: (al + tau) ** (-(r + x_)) * (be + tau) ** (-(s + 1)), [tx_, T_]
    )
    alive = alive_part / (alive_part + dead_part)
    expected = (
        (r + x_) * (be + T_) / ((al + T_) * (s - 1)) * (1 - ((be + T_) / (be + T_ + t_)) ** (s - 1))
    ) * alive
    return float(alive), float(expected)


def test_bgnbd_predictions_match_closed_form(cal: Summary, bg: models.Fit) -> None:
    idx = np.array(PICK)
    alive = models.bgnbd_p_alive(bg.params, cal.x[idx], cal.t_x[idx], cal.T[idx])
    expected = models.bgnbd_expected_purchases(
        bg.params, 39.0, cal.x[idx], cal.t_x[idx], cal.T[idx]
    )
    for j, i in enumerate(PICK):
        ref_alive, ref_exp = _mp_bgnbd(bg.params, 39.0, cal.x[i], cal.t_x[i], cal.T[i])
        assert alive[j] == pytest.approx(ref_alive, rel=1e-10)
        assert expected[j] == pytest.approx(ref_exp, rel=1e-8)
    # customer 1 (two repeat purchases, last on 1997-08-02)
    assert alive[0] == pytest.approx(0.7266, abs=1e-4)
    assert expected[0] == pytest.approx(1.2260, abs=1e-4)


def test_pareto_predictions_match_the_integral_form(cal: Summary, pn: models.Fit) -> None:
    idx = np.array(PICK)
    alive = models.pareto_p_alive(pn.params, cal.x[idx], cal.t_x[idx], cal.T[idx])
    expected = models.pareto_expected_purchases(
        pn.params, 39.0, cal.x[idx], cal.t_x[idx], cal.T[idx]
    )
    for j, i in enumerate(PICK):
        ref_alive, ref_exp = _mp_pareto(pn.params, 39.0, cal.x[i], cal.t_x[i], cal.T[i])
        assert alive[j] == pytest.approx(ref_alive, rel=1e-9)
        assert expected[j] == pytest.approx(ref_exp, rel=1e-9)


def test_pareto_likelihood_matches_the_integral_form(cal: Summary, pn: models.Fit) -> None:
    p = pn.params
    r, al, s, be = (mpmath.mpf(p[k]) for k in ("r", "alpha", "s", "beta"))
    ours = models.pareto_loglik_terms(list(p.values()), cal.x[PICK], cal.t_x[PICK], cal.T[PICK])
    for j, i in enumerate(PICK):
        x_, tx_, T_ = (mpmath.mpf(float(v)) for v in (cal.x[i], cal.t_x[i], cal.T[i]))
        head = mpmath.gamma(r + x_) * al**r * be**s / mpmath.gamma(r)
        body = (al + T_) ** (-(r + x_)) * (be + T_) ** (-s) + s * mpmath.quad(
            lambda tau, x_=x_: (al + tau) ** (-(r + x_)) * (be + tau) ** (-(s + 1)), [tx_, T_]
        )
        assert ours[j] == pytest.approx(float(mpmath.log(head * body)), rel=1e-11)


def test_expected_spend_and_clv(cal: Summary, bg: models.Fit, gg: models.Fit) -> None:
    spend = models.expected_spend(gg.params, cal.x, cal.monetary)
    p, q, g = gg.params["p"], gg.params["q"], gg.params["gamma"]
    # a customer without repeat purchases gets the population mean p γ / (q − 1)
    assert spend[cal.x == 0] == pytest.approx(p * g / (q - 1))
    i = 0  # customer 1: x = 2, zbar = 22.345
    weight = p * cal.x[i] / (p * cal.x[i] + q - 1)
    assert spend[i] == pytest.approx(weight * cal.monetary[i] + (1 - weight) * p * g / (q - 1))
    value = models.clv(bg, spend, cal.x, cal.t_x, cal.T, months=12, discount_rate=0.01)
    # the discounted sum of monthly increments of expected purchases, recomputed by hand
    f = models.WEEKS_PER_MONTH
    cum = [0.0] + [
        float(models.bgnbd_expected_purchases(bg.params, m * f, cal.x[i], cal.t_x[i], cal.T[i]))
        for m in range(1, 13)
    ]
    by_hand = sum(spend[i] * (cum[m] - cum[m - 1]) / 1.01**m for m in range(1, 13))
    assert value[i] == pytest.approx(by_hand, rel=1e-12)
    assert np.all(np.isfinite(value))
    assert np.all(value >= 0)


# --- against lifetimes' own fit ----------------------------------------------------------


def _lifetimes() -> Any:
    """lifetimes is a pinned dev dependency: if it stops importing, this test must fail,
    not skip (the comparison with its fit is part of the oracle)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import lifetimes
    return lifetimes


def test_matches_lifetimes_fit_and_predictions(
    cal: Summary, bg: models.Fit, pn: models.Fit, gg: models.Fit
) -> None:
    lt = _lifetimes()
    import pandas as pd

    df = pd.DataFrame({"x": cal.x, "t_x": cal.t_x, "T": cal.T, "z": cal.monetary})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lbg = lt.BetaGeoFitter().fit(df["x"], df["t_x"], df["T"])
        lpn = lt.ParetoNBDFitter().fit(df["x"], df["t_x"], df["T"])
        rep = df[df["x"] > 0]
        lgg = lt.GammaGammaFitter().fit(rep["x"], rep["z"])
    lbg_params = {k: float(lbg.params_[k]) for k in ("r", "alpha", "a", "b")}
    for k, v in lbg_params.items():
        assert bg.params[k] == pytest.approx(v, rel=1e-4)
    for k, v in lpn.params_.items():
        assert pn.params[k] == pytest.approx(v, rel=2e-3)  # a flat ridge in beta
    for ours, theirs in (("p", "p"), ("q", "q"), ("gamma", "v")):
        assert gg.params[ours] == pytest.approx(lgg.params_[theirs], rel=1e-4)
    # predictions with the SAME parameters: exact agreement on every customer
    lbg.params_ = pd.Series(bg.params)
    lpn.params_ = pd.Series(pn.params)
    x, tx, T = df["x"], df["t_x"], df["T"]
    np.testing.assert_allclose(
        models.bgnbd_p_alive(bg.params, cal.x, cal.t_x, cal.T),
        lbg.conditional_probability_alive(x, tx, T),
        rtol=1e-9,
    )
    np.testing.assert_allclose(
        models.bgnbd_expected_purchases(bg.params, 39.0, cal.x, cal.t_x, cal.T),
        lbg.conditional_expected_number_of_purchases_up_to_time(39, x, tx, T),
        rtol=1e-8,
    )
    np.testing.assert_allclose(
        models.pareto_p_alive(pn.params, cal.x, cal.t_x, cal.T),
        lpn.conditional_probability_alive(x, tx, T),
        rtol=1e-7,
    )
    np.testing.assert_allclose(
        models.pareto_expected_purchases(pn.params, 39.0, cal.x, cal.t_x, cal.T),
        lpn.conditional_expected_number_of_purchases_up_to_time(39, x, tx, T),
        rtol=1e-7,
    )
    # the same optimum: our likelihood at lifetimes' parameters is no better than at ours
    theirs = float(
        models.bgnbd_loglik_terms(list(lbg_params.values()), cal.x, cal.t_x, cal.T).sum()
    )
    assert theirs <= bg.log_likelihood + 1e-9
    assert math.isclose(theirs, bg.log_likelihood, abs_tol=1e-6)
