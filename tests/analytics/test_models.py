"""Model invariants: compression, gradients, numerical safety on extreme customers."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import optimize

from setia.analytics import models
from setia.analytics.simulate import simulate_bgnbd
from setia.analytics.summary import compress
from setia.core.errors import InvalidInput
from tests.analytics.test_cdnow import _mp_bgnbd as closed_form_bgnbd

BG = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
PN = {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}


@st.composite
def customers(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Small populations with many duplicates: x, t_x, T on a grid of days in weeks."""
    n = draw(st.integers(1, 40))
    T = np.array(draw(st.lists(st.integers(1, 60), min_size=n, max_size=n)), dtype=float)
    x = np.array(draw(st.lists(st.integers(0, 5), min_size=n, max_size=n)), dtype=float)
    frac = np.array(draw(st.lists(st.integers(0, 4), min_size=n, max_size=n)), dtype=float) / 4
    t_x = np.where(x > 0, np.maximum(np.round(T * frac), 1.0), 0.0)
    t_x = np.minimum(t_x, T)
    return x, t_x / 7, T / 7


@settings(max_examples=60, deadline=None)
@given(customers())
def test_compressed_likelihood_equals_per_row_likelihood(
    data: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    x, t_x, T = data
    c = compress(x, t_x, T)
    assert c.weight.sum() == len(x)
    assert np.array_equal(c.x[c.inverse], x)
    assert np.array_equal(c.t_x[c.inverse], t_x)
    assert np.array_equal(c.T[c.inverse], T)
    for terms, params in (
        (models.bgnbd_loglik_terms, list(BG.values())),
        (models.pareto_loglik_terms, list(PN.values())),
        (models.pareto_loglik_terms, [0.5, 12.0, 0.6, 3.0]),  # alpha >= beta branch
    ):
        per_row = terms(params, x, t_x, T).sum()
        weighted = c.weight @ terms(params, c.x, c.t_x, c.T)
        assert weighted == pytest.approx(per_row, rel=1e-12, abs=1e-9)
        if terms is models.pareto_loglik_terms:
            # the fit's path: 2F1 evaluated once per distinct (x, t_x) and (x, T) pair
            pairs = models._PairRows.build(c.x, c.t_x, c.T, c.weight)
            assert pairs.loglik(params) == pytest.approx(per_row, rel=1e-12, abs=1e-9)
        else:
            rows = models._Rows.build(c.x, c.t_x, c.T, c.weight)
            mean_neg, _ = models._bgnbd_neg(np.log(params), rows)
            assert -mean_neg * len(x) == pytest.approx(per_row, rel=1e-12, abs=1e-9)


@pytest.mark.parametrize(
    "theta",
    [
        np.log([0.243, 4.414, 0.793, 2.426]),
        np.log([1.0, 1.0, 1.0, 1.0]),
        np.log([3.0, 0.2, 5.0, 0.4]),
    ],
)
def test_bgnbd_analytic_gradient(theta: np.ndarray) -> None:
    rng = np.random.default_rng(1)
    T = rng.integers(7, 273, 300) / 7
    x = rng.integers(0, 8, 300).astype(float)
    t_x = np.where(x > 0, T * rng.uniform(0.05, 1.0, 300), 0.0)
    w = rng.integers(1, 5, 300).astype(float)

    rows = models._Rows.build(x, t_x, T, w)

    def f(th: np.ndarray) -> float:
        return models._bgnbd_neg(th, rows)[0]

    _, grad = models._bgnbd_neg(theta, rows)
    numeric = optimize.approx_fprime(theta, f, 1e-7)
    np.testing.assert_allclose(grad, numeric, rtol=1e-4, atol=1e-6)


def test_pareto_branches_agree_where_alpha_meets_beta() -> None:
    x = np.array([0.0, 1.0, 3.0, 20.0])
    t_x = np.array([0.0, 5.0, 30.0, 38.0])
    T = np.array([38.0, 38.0, 38.0, 38.5])
    below = models.pareto_loglik_terms([0.5, 10.0 - 1e-7, 0.6, 10.0], x, t_x, T)
    above = models.pareto_loglik_terms([0.5, 10.0 + 1e-7, 0.6, 10.0], x, t_x, T)
    equal = models.pareto_loglik_terms([0.5, 10.0, 0.6, 10.0], x, t_x, T)
    np.testing.assert_allclose(below, above, rtol=1e-7)
    np.testing.assert_allclose(equal, above, rtol=1e-7)


# Customers with many purchases, the last one at (or a hair before) the end of the window.
EXTREME = (
    np.array([221.0, 254.0, 161.0, 204.0, 500.0, 2000.0, 300.0, 1.0, 0.0]),
    np.array([103.42857, 97.14286, 94.71429, 98.57143, 52.0, 51.999, 0.01, 52.0, 0.0]),
    np.array([103.57143, 97.28571, 98.0, 99.42857, 52.0, 52.0, 52.0, 52.0, 0.001]),
)


@pytest.mark.parametrize(
    "pn",
    [
        PN,
        {"r": 0.5143, "alpha": 2.8845, "s": 0.2856, "beta": 14.1087},  # NaN case in CLVTools
        {"r": 0.1, "alpha": 0.01, "s": 2.0, "beta": 500.0},
        {"r": 5.0, "alpha": 900.0, "s": 1.0, "beta": 0.05},
    ],
)
def test_pareto_is_finite_for_extreme_customers(pn: dict[str, float]) -> None:
    x, t_x, T = EXTREME
    ll = models.pareto_loglik_terms(list(pn.values()), x, t_x, T)
    alive = models.pareto_p_alive(pn, x, t_x, T)
    expected = models.pareto_expected_purchases(pn, 52.0, x, t_x, T)
    assert np.all(np.isfinite(ll))
    assert np.all((alive >= 0) & (alive <= 1))
    assert np.all(np.isfinite(expected) & (expected >= 0))
    # the last purchase at the very end: nobody has had time to leave
    assert alive[4] == pytest.approx(1.0)


@pytest.mark.parametrize(
    "bg",
    [
        BG,
        {"r": 50.0, "alpha": 0.01, "a": 0.05, "b": 80.0},
        {"r": 0.01, "alpha": 300.0, "a": 9.0, "b": 0.3},
    ],
)
def test_bgnbd_is_finite_for_extreme_customers(bg: dict[str, float]) -> None:
    x, t_x, T = EXTREME
    ll = models.bgnbd_loglik_terms(list(bg.values()), x, t_x, T)
    alive = models.bgnbd_p_alive(bg, x, t_x, T)
    expected = models.bgnbd_expected_purchases(bg, 52.0, x, t_x, T)
    assert np.all(np.isfinite(ll))
    assert np.all((alive >= 0) & (alive <= 1))
    assert np.all(np.isfinite(expected) & (expected >= 0))
    assert alive[-1] == 1.0  # no repeat purchase: BG/NBD says alive


def test_customers_first_seen_on_the_last_day() -> None:
    """T = 0 (first purchase on the period's last day) carries no information: likelihood 1."""
    zero = (np.array([0.0]), np.array([0.0]), np.array([0.0]))
    assert models.bgnbd_loglik_terms(list(BG.values()), *zero)[0] == pytest.approx(0.0, abs=1e-12)
    assert models.pareto_loglik_terms(list(PN.values()), *zero)[0] == pytest.approx(0.0, abs=1e-12)
    assert models.bgnbd_p_alive(BG, *zero)[0] == 1.0
    assert models.pareto_p_alive(PN, *zero)[0] == 1.0
    x, t_x, T = simulate_bgnbd(5000, **BG, age_days=(0, 120), seed=5)
    assert np.count_nonzero(T == 0) > 10
    keep = T > 0
    for fit in (models.fit_bgnbd, models.fit_pareto):
        with_zero, without = fit(x, t_x, T), fit(x[keep], t_x[keep], T[keep])
        assert with_zero.log_likelihood == pytest.approx(without.log_likelihood, abs=1e-3)


def test_fits_survive_extreme_customers() -> None:
    rng = np.random.default_rng(7)
    T = rng.integers(7, 365, 2000) / 7
    x = rng.poisson(1.0, 2000).astype(float)
    t_x = np.where(x > 0, T * rng.uniform(0, 1, 2000), 0.0)
    x[:20] = 3000.0  # heavy buyers, last purchase on the final day
    t_x[:20] = T[:20]
    for fit in (models.fit_bgnbd(x, t_x, T), models.fit_pareto(x, t_x, T)):
        assert np.isfinite(fit.log_likelihood)
        assert all(np.isfinite(v) and v > 0 for v in fit.params.values())
        assert np.all(np.isfinite(models.p_alive(fit, x, t_x, T)))
        assert np.all(np.isfinite(models.expected_purchases(fit, 52.0, x, t_x, T)))


def test_fit_recovers_simulated_bgnbd_parameters() -> None:
    x, t_x, T = simulate_bgnbd(200_000, r=0.25, alpha=4.0, a=0.8, b=2.5, seed=3)
    fit = models.fit_bgnbd(x, t_x, T)
    assert fit.params["r"] == pytest.approx(0.25, rel=0.05)
    assert fit.params["alpha"] == pytest.approx(4.0, rel=0.08)
    assert fit.params["a"] == pytest.approx(0.8, rel=0.15)
    assert fit.params["b"] == pytest.approx(2.5, rel=0.2)


def test_unconditional_expectations() -> None:
    t = np.array([0.0, 10.0, 52.0])
    e_bg = models.bgnbd_unconditional(BG, t)
    e_pn = models.pareto_unconditional(PN, t)
    assert e_bg[0] == 0.0
    assert e_pn[0] == 0.0
    assert np.all(np.diff(e_bg) > 0)
    assert np.all(np.diff(e_pn) > 0)
    # for a brand-new customer (x = 0, T -> 0) the conditional equals the unconditional
    cond = models.bgnbd_expected_purchases(BG, 52.0, 0.0, 0.0, 1e-12)
    assert float(cond) == pytest.approx(e_bg[2], rel=1e-9)
    cond_pn = models.pareto_expected_purchases(PN, 52.0, 0.0, 0.0, 1e-12)
    assert float(cond_pn) == pytest.approx(e_pn[2], rel=1e-9)


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(InvalidInput, match="t_x <= T"):
        models.fit_bgnbd([1.0], [5.0], [4.0])
    with pytest.raises(InvalidInput, match="T = 0"):
        models.fit_bgnbd([0.0], [0.0], [0.0])
    with pytest.raises(InvalidInput, match="no customers"):
        models.fit_bgnbd([], [], [])
    with pytest.raises(InvalidInput, match="repeat customers"):
        models.fit_gamma_gamma([0.0, 0.0], [0.0, 0.0])
    with pytest.raises(InvalidInput, match="model must be"):
        models.fit_model("weibull", [1.0], [1.0], [2.0])


def test_hyp2f1_falls_back_where_scipy_fails() -> None:
    import mpmath
    from scipy import special

    r, alpha, a, b = np.exp([0.5, 0.0, 0.5, 3.0])
    x, T, t = 89.0, 1 / 7, 11.0
    args = (a + b - 1 - r, a - 1, a + b + x - 1, t / (alpha + T + t))
    assert not np.isfinite(special.hyp2f1(*args))  # SciPy 1.17.1 returns inf here
    assert float(models._hyp2f1(*args)) == pytest.approx(float(mpmath.hyp2f1(*args)), rel=1e-12)
    bg = {"r": r, "alpha": alpha, "a": a, "b": b}
    e = models.bgnbd_expected_purchases(bg, t, np.array([x]), np.array([T]), np.array([T]))
    ref = closed_form_bgnbd(bg, t, x, T, T)[1]
    assert float(e[0]) == pytest.approx(ref, rel=1e-9)


log_param = st.floats(-4.0, 4.0)


@settings(max_examples=150, deadline=None)
@given(
    params=st.tuples(log_param, log_param, log_param, log_param),
    x=st.integers(0, 5000),
    T=st.floats(0.0, 1000.0),
    frac=st.floats(0.0, 1.0),
    horizon=st.floats(0.0, 520.0),
)
def test_predictions_are_finite_anywhere(
    params: tuple[float, float, float, float], x: int, T: float, frac: float, horizon: float
) -> None:
    if x > 0:  # repeat purchases are on distinct days after the first: t_x >= 1 day
        T = max(T, 1 / 7)
        t_x = max(T * frac, 1 / 7)
    else:
        t_x = 0.0
    p = np.exp(np.array(params))
    xs, ts, Ts = np.array([float(x)]), np.array([t_x]), np.array([T])
    bg = dict(zip(("r", "alpha", "a", "b"), p.tolist(), strict=True))
    pn = dict(zip(("r", "alpha", "s", "beta"), p.tolist(), strict=True))
    assert np.isfinite(models.bgnbd_loglik_terms(list(bg.values()), xs, ts, Ts)).all()
    assert np.isfinite(models.pareto_loglik_terms(list(pn.values()), xs, ts, Ts)).all()
    for alive in (models.bgnbd_p_alive(bg, xs, ts, Ts), models.pareto_p_alive(pn, xs, ts, Ts)):
        assert ((alive >= 0) & (alive <= 1)).all()
    if abs(bg["a"] - 1) > 1e-3:
        e = models.bgnbd_expected_purchases(bg, horizon, xs, ts, Ts)
        assert np.isfinite(e).all()
        assert (e >= -1e-9).all()
    e = models.pareto_expected_purchases(pn, horizon, xs, ts, Ts)
    assert np.isfinite(e).all()
    assert (e >= 0).all()
