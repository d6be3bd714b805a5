"""BG/NBD, Pareto/NBD and Gamma-Gamma by maximum likelihood, with predictions and CLV.

NumPy and SciPy only. Likelihoods are evaluated on compressed rows (distinct (x, t_x, T)
with integer weights) in log space; parameters are optimised as logarithms with L-BFGS-B.
Formulas and the numerical-safety choices are written up in docs/analytics.md.

References: Fader, Hardie & Lee (2005) "Counting your customers the easy way: an
alternative to the Pareto/NBD model" (BG/NBD); Schmittlein, Morrison & Colombo (1987) and
Fader & Hardie (2005) "A note on deriving the Pareto/NBD model and related expressions";
Fader, Hardie & Lee (2005) "RFM and CLV: using iso-value curves" and Fader & Hardie (2013)
"The Gamma-Gamma model of monetary value".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import optimize, special

from setia.analytics.summary import compress
from setia.core.errors import InvalidInput

FloatArray = npt.NDArray[np.float64]
ArrayLike = FloatArray | float

WEEKS_PER_MONTH = 4.345
LOG_BOUND = 12.0  # parameters are searched in [e^-12, e^12]
DAYS_PER_MONTH = 30.0


@dataclass(frozen=True)
class Fit:
    """A fitted model: named parameters, total log-likelihood, optimiser facts."""

    model: str
    params: dict[str, float]
    log_likelihood: float
    iterations: int
    converged: bool
    rows: int
    customers: int
    starts: int = 1

    @property
    def at_bound(self) -> list[str]:
        """Parameters stuck at the search bounds (e^±12): the data do not identify them,
        e.g. a and b of BG/NBD grow without limit when nobody ever drops out."""
        return [k for k, v in self.params.items() if abs(np.log(v)) >= LOG_BOUND - 1e-3]


def _dot(a: FloatArray, b: FloatArray) -> float:
    """Σ a·b without BLAS: a threaded BLAS dot can spin for milliseconds on a busy machine,
    far longer than the sum itself, and the optimiser calls this thousands of times."""
    return float(np.einsum("i,i->", a, b))


def _as_float(a: ArrayLike) -> FloatArray:
    return np.asarray(a, dtype=np.float64)


def _weighted(
    x: ArrayLike, t_x: ArrayLike, T: ArrayLike, weights: ArrayLike | None
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    xs, ts, Ts = _as_float(x), _as_float(t_x), _as_float(T)
    ws = np.ones_like(xs) if weights is None else _as_float(weights)
    if not (xs.shape == ts.shape == Ts.shape == ws.shape):
        raise InvalidInput("x, t_x, T and weights must have the same length", code="bad_shape")
    if xs.size == 0:
        raise InvalidInput("no customers to fit", code="no_customers")
    # T = 0 (first purchase on the last day) is allowed: such a customer's likelihood is 1.
    if not (np.all(xs >= 0) and np.all(ts >= 0) and np.all(ts <= Ts + 1e-9)):
        raise InvalidInput("need x >= 0 and 0 <= t_x <= T for every customer", code="bad_summary")
    if not np.any(Ts > 0):
        raise InvalidInput("every customer has T = 0: nothing to fit", code="bad_summary")
    return xs, ts, Ts, ws


def _maximise(
    neg_ll: Callable[[FloatArray], tuple[float, FloatArray]],
    starts: Sequence[Sequence[float]],
) -> tuple[FloatArray, float, int, bool, int]:
    """Minimise ``neg_ll`` over log-parameters from several starts; the best wins."""
    best: optimize.OptimizeResult | None = None
    tried = 0
    for start in starts:
        tried += 1
        res = optimize.minimize(
            neg_ll,
            np.log(np.asarray(start, dtype=np.float64)),
            jac=True,
            method="L-BFGS-B",
            bounds=[(-LOG_BOUND, LOG_BOUND)] * len(start),
            options={"maxiter": 2000, "ftol": 1e-13, "gtol": 1e-9},
        )
        if np.isfinite(res.fun) and (best is None or res.fun < best.fun):
            best = res
        if best is not None and best.success:
            break
    if best is None:
        raise InvalidInput("the likelihood could not be evaluated", code="fit_failed")
    return np.exp(best.x), float(best.fun), int(best.nit), bool(best.success), tried


def _series_2f1(a: FloatArray, b: FloatArray, c: FloatArray, z: FloatArray) -> FloatArray:
    """Gauss's series for 2F1, summed in blocks of terms (vectorised), for 0 <= z < 1.

    Used only where SciPy's ``hyp2f1`` returns inf or NaN: it does for some perfectly
    regular arguments (e.g. 2F1(19.08, 0.649; 109.7; 0.906) = 1.1185 comes back as inf).
    """
    total = np.ones_like(z)
    term = np.ones_like(z)
    block = np.arange(512, dtype=np.float64)
    done = np.zeros(z.shape, dtype=bool)
    for start in range(0, 2_000_000, 512):
        n = start + block[None, :]
        ratios = (a[:, None] + n) * (b[:, None] + n) / ((c[:, None] + n) * (n + 1)) * z[:, None]
        terms = term[:, None] * np.cumprod(ratios, axis=1)
        add = np.where(done[:, None], 0.0, terms).sum(axis=1)
        total += add
        term = terms[:, -1]
        done |= np.abs(terms[:, -1]) <= 1e-17 * np.abs(total)
        if done.all():
            break
    return np.where(done, total, np.nan)


def _hyp2f1(a: ArrayLike, b: ArrayLike, c: ArrayLike, z: ArrayLike) -> FloatArray:
    """SciPy's 2F1, with the series as a fallback where SciPy gives inf or NaN."""
    A, B, C, Z = np.broadcast_arrays(_as_float(a), _as_float(b), _as_float(c), _as_float(z))
    h = np.asarray(special.hyp2f1(A, B, C, Z), dtype=np.float64)
    bad = ~np.isfinite(h) & (Z >= 0) & (Z < 1)
    if bad.any():
        h = h.copy()
        h[bad] = _series_2f1(A[bad], B[bad], C[bad], Z[bad])
    return h


# --- BG/NBD ---------------------------------------------------------------------------------


def bgnbd_loglik_terms(
    params: Sequence[float], x: ArrayLike, t_x: ArrayLike, T: ArrayLike
) -> FloatArray:
    """Per-row log-likelihood of BG/NBD (Fader, Hardie & Lee 2005, eq. 6)."""
    r, alpha, a, b = params
    xs, ts, Ts = _as_float(x), _as_float(t_x), _as_float(T)
    head = special.gammaln(r + xs) - special.gammaln(r) + r * np.log(alpha)
    l1 = special.betaln(a, b + xs) - special.betaln(a, b) - (r + xs) * np.log(alpha + Ts)
    rep = xs > 0
    l2 = np.full_like(xs, -np.inf)
    xr = xs[rep]
    l2[rep] = (
        special.betaln(a + 1, b + xr - 1)
        - special.betaln(a, b)
        - (r + xr) * np.log(alpha + ts[rep])
    )
    out: FloatArray = head + np.logaddexp(l1, l2)
    return out


@dataclass(frozen=True)
class _Rows:
    """Weighted rows with x, t_x and T each split into distinct values and indexes.

    Everything that depends on x alone (gammaln, betaln, digamma) is computed once per
    distinct x, and logs of α + t_x and α + T once per distinct time, then gathered.
    """

    ux: FloatArray
    ix: npt.NDArray[np.intp]
    ut: FloatArray
    it: npt.NDArray[np.intp]
    uT: FloatArray
    iT: npt.NDArray[np.intp]
    x: FloatArray
    w: FloatArray
    total: float

    @classmethod
    def build(cls, x: FloatArray, t_x: FloatArray, T: FloatArray, w: FloatArray) -> _Rows:
        ux, ix = np.unique(x, return_inverse=True)
        ut, it = np.unique(t_x, return_inverse=True)
        uT, iT = np.unique(T, return_inverse=True)
        return cls(ux, ix, ut, it, uT, iT, x, w, float(w.sum()))


def _bgnbd_neg(theta: FloatArray, d: _Rows) -> tuple[float, FloatArray]:
    """Negative mean log-likelihood of BG/NBD and its analytic gradient in log-parameters."""
    r, alpha, a, b = np.exp(theta)
    dg = special.digamma
    ux = d.ux
    rep_u = ux > 0
    xm1 = np.where(rep_u, ux - 1, 0.0)
    bab = special.betaln(a, b)
    # tables over distinct x
    head_u = special.gammaln(r + ux) - special.gammaln(r) + r * np.log(alpha)
    b1_u = special.betaln(a, b + ux) - bab
    b2_u = np.where(rep_u, special.betaln(a + 1, b + xm1) - bab, -np.inf)
    dab, dabx = dg(a + b), dg(a + b + ux)
    dr_u = dg(r + ux) - dg(r) + np.log(alpha)
    da1_u = dab - dabx
    da2_u = dg(a + 1) - dabx - dg(a) + dab
    db1_u = dg(b + ux) - dabx - dg(b) + dab
    db2_u = np.where(rep_u, dg(b + xm1) - dabx - dg(b) + dab, 0.0)
    # tables over distinct times
    lT_u, lt_u = np.log(alpha + d.uT), np.log(alpha + d.ut)
    iT_u, it_u = 1.0 / (alpha + d.uT), 1.0 / (alpha + d.ut)
    # per row: gathers and arithmetic only
    rx = r + d.x
    lT, lt = lT_u[d.iT], lt_u[d.it]
    l1 = b1_u[d.ix] - rx * lT
    l2 = b2_u[d.ix] - rx * lt
    m = np.logaddexp(l1, l2)
    w1 = np.exp(l1 - m)
    w2 = 1.0 - w1
    w = d.w
    value = _dot(w, head_u[d.ix] + m)
    if not np.isfinite(value):
        return 1e300, np.zeros(4)
    ww1, ww2 = w * w1, w * w2
    g_r = _dot(w, dr_u[d.ix]) - _dot(ww1, lT) - _dot(ww2, lt)
    g_alpha = r / alpha * d.total - _dot(ww1 * rx, iT_u[d.iT]) - _dot(ww2 * rx, it_u[d.it])
    g_a = _dot(ww1, da1_u[d.ix]) + _dot(ww2, da2_u[d.ix])
    g_b = _dot(ww1, db1_u[d.ix]) + _dot(ww2, db2_u[d.ix])
    grad = np.array([g_r * r, g_alpha * alpha, g_a * a, g_b * b])
    return -value / d.total, -grad / d.total


def fit_bgnbd(
    x: ArrayLike,
    t_x: ArrayLike,
    T: ArrayLike,
    weights: ArrayLike | None = None,
    *,
    compressed: bool = True,
) -> Fit:
    """Maximum-likelihood BG/NBD; with ``compressed`` identical rows are merged first."""
    xs, ts, Ts, ws = _weighted(x, t_x, T, weights)
    customers = round(float(ws.sum()))
    if compressed and weights is None:
        c = compress(xs, ts, Ts)
        xs, ts, Ts, ws = c.x, c.t_x, c.T, c.weight
    mean_rate = max(_dot(ws, xs) / _dot(ws, Ts), 1e-3)
    starts = [(1.0, 1.0 / mean_rate, 1.0, 1.0), (0.5, 5.0, 0.5, 2.0), (0.1, 1.0, 2.0, 5.0)]
    rows = _Rows.build(xs, ts, Ts, ws)
    p, fun, nit, ok, tried = _maximise(lambda th: _bgnbd_neg(th, rows), starts)
    return Fit(
        model="bgnbd",
        params={"r": float(p[0]), "alpha": float(p[1]), "a": float(p[2]), "b": float(p[3])},
        log_likelihood=-fun * rows.total,
        iterations=nit,
        converged=ok,
        rows=int(xs.size),
        customers=customers,
        starts=tried,
    )


def bgnbd_p_alive(
    params: dict[str, float], x: ArrayLike, t_x: ArrayLike, T: ArrayLike
) -> FloatArray:
    """P(alive | x, t_x, T) = 1 / (1 + [x>0] a/(b+x−1) ((α+T)/(α+t_x))^(r+x)), in log space."""
    r, alpha, a, b = params["r"], params["alpha"], params["a"], params["b"]
    xs, ts, Ts = _as_float(x), _as_float(t_x), _as_float(T)
    rep = xs > 0
    log_odds = np.where(
        rep,
        np.log(a)
        - np.log(np.where(rep, b + xs - 1, 1.0))
        + (r + xs) * (np.log(alpha + Ts) - np.log(alpha + ts)),
        -np.inf,
    )
    out: FloatArray = special.expit(-log_odds)
    return out


def bgnbd_expected_purchases(
    params: dict[str, float], t: ArrayLike, x: ArrayLike, t_x: ArrayLike, T: ArrayLike
) -> FloatArray:
    """E[purchases in (T, T+t] | x, t_x, T] (FHL 2005, eq. 10).

    The 2F1 is Euler-transformed: (1−z)^(r+x) 2F1(r+x, b+x; a+b+x−1; z)
    = (1−z)^(a−1) 2F1(a+b−1−r, a−1; a+b+x−1; z), z = t/(α+T+t), whose parameters do not
    grow with x, so heavy buyers do not overflow.
    """
    r, alpha, a, b = params["r"], params["alpha"], params["a"], params["b"]
    xs, ts, Ts, tt = _as_float(x), _as_float(t_x), _as_float(T), _as_float(t)
    z = tt / (alpha + Ts + tt)
    c = a + b + xs - 1
    hyp = _hyp2f1(a + b - 1 - r, a - 1, c, z)
    bracket = 1.0 - np.exp((a - 1) * np.log1p(-z)) * hyp
    out: FloatArray = (c / (a - 1)) * bracket * bgnbd_p_alive(params, xs, ts, Ts)
    return out


def bgnbd_unconditional(params: dict[str, float], t: ArrayLike) -> FloatArray:
    """E[X(t)] for a new customer (FHL 2005, eq. 9)."""
    r, alpha, a, b = params["r"], params["alpha"], params["a"], params["b"]
    tt = _as_float(t)
    hyp = _hyp2f1(r, b, a + b - 1, tt / (alpha + tt))
    out: FloatArray = (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + tt)) ** r * hyp)
    return out


# --- Pareto/NBD -----------------------------------------------------------------------------


def _log_diff(u: FloatArray, v: FloatArray) -> FloatArray:
    """log(e^u − e^v), −inf where v >= u (a difference lost to rounding is taken as 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        d = v - u
        out = np.where(d < 0, u + np.log(-np.expm1(np.minimum(d, -1e-300))), -np.inf)
    return np.asarray(out, dtype=np.float64)


def _pareto_log_term(params: Sequence[float], x: FloatArray, tau: FloatArray) -> FloatArray:
    """log of 2F1(r+s+x, s+1 | r+x; r+s+x+1; z(τ)) / (max(α,β)+τ)^(r+s+x), z(τ) = |α−β|/(max+τ).

    α ≥ β: 2F1(r+s+x, s+1; r+s+x+1; z) <= (1−z)^−(s+1), bounded, taken as is.
    α < β: 2F1(r+s+x, r+x; r+s+x+1; z) can reach (1−z)^−(r+x), which overflows for heavy
    buyers; Euler's transformation gives (1−z)^(1−r−x) 2F1(1, s+1; r+s+x+1; z), in logs.
    """
    r, alpha, s, beta = params
    rsx = r + s + x
    big = max(alpha, beta)
    z = abs(alpha - beta) / (big + tau)
    if alpha >= beta:
        log_h = np.log(_hyp2f1(rsx, s + 1, rsx + 1, z))
    else:
        log_h = (1 - r - x) * np.log1p(-z) + np.log(_hyp2f1(1.0, s + 1, rsx + 1, z))
    return np.asarray(log_h - rsx * np.log(big + tau), dtype=np.float64)


def pareto_log_a0(
    params: Sequence[float], x: FloatArray, t_x: FloatArray, T: FloatArray
) -> FloatArray:
    """log A0 of Fader & Hardie's Pareto/NBD note (eq. 19/20), branch by α ≥ β or α < β:
    the term at t_x minus the term at T, the difference taken with ``_log_diff``."""
    return _log_diff(_pareto_log_term(params, x, t_x), _pareto_log_term(params, x, T))


def pareto_loglik_terms(
    params: Sequence[float], x: ArrayLike, t_x: ArrayLike, T: ArrayLike
) -> FloatArray:
    """Per-row Pareto/NBD log-likelihood (Fader & Hardie 2005 note, eq. 19)."""
    r, alpha, s, beta = params
    xs, ts, Ts = _as_float(x), _as_float(t_x), _as_float(T)
    head = special.gammaln(r + xs) - special.gammaln(r) + r * np.log(alpha) + s * np.log(beta)
    l1 = -(r + xs) * np.log(alpha + Ts) - s * np.log(beta + Ts)
    l2 = np.log(s) - np.log(r + s + xs) + pareto_log_a0(params, xs, ts, Ts)
    out: FloatArray = head + np.logaddexp(l1, l2)
    return out


@dataclass(frozen=True)
class _PairRows:
    """Rows split into distinct x, distinct (x, t_x) and distinct (x, T) pairs.

    Pareto/NBD's hypergeometric terms depend on (x, t_x) or on (x, T) only, and there are
    far fewer such pairs than rows, so each 2F1 is evaluated once per pair.
    """

    ux: FloatArray
    ix: npt.NDArray[np.intp]
    at_x: FloatArray
    at_t: FloatArray
    ia: npt.NDArray[np.intp]
    bT_x: FloatArray
    bT_T: FloatArray
    ib: npt.NDArray[np.intp]
    w: FloatArray
    total: float

    @classmethod
    def build(cls, x: FloatArray, t_x: FloatArray, T: FloatArray, w: FloatArray) -> _PairRows:
        ux, ix = np.unique(x, return_inverse=True)
        a, ia = np.unique(np.column_stack((x, t_x)), axis=0, return_inverse=True)
        b, ib = np.unique(np.column_stack((x, T)), axis=0, return_inverse=True)
        return cls(
            ux,
            ix,
            a[:, 0].copy(),
            a[:, 1].copy(),
            ia.reshape(-1),
            b[:, 0].copy(),
            b[:, 1].copy(),
            ib.reshape(-1),
            w,
            float(w.sum()),
        )

    def loglik(self, params: Sequence[float]) -> float:
        r, alpha, s, beta = params
        head_u = special.gammaln(r + self.ux) - special.gammaln(r)
        head_u += r * np.log(alpha) + s * np.log(beta)
        l1_b = -(r + self.bT_x) * np.log(alpha + self.bT_T) - s * np.log(beta + self.bT_T)
        u_a = _pareto_log_term(params, self.at_x, self.at_t)
        v_b = _pareto_log_term(params, self.bT_x, self.bT_T)
        l2 = np.log(s) - np.log(r + s + self.ux)[self.ix] + _log_diff(u_a[self.ia], v_b[self.ib])
        return _dot(self.w, head_u[self.ix] + np.logaddexp(l1_b[self.ib], l2))


def _pareto_neg(theta: FloatArray, d: _PairRows) -> tuple[float, FloatArray]:
    """Negative mean log-likelihood and its central-difference gradient in log-parameters."""

    def f(th: FloatArray) -> float:
        v = d.loglik(np.exp(th).tolist())
        return -v / d.total if np.isfinite(v) else 1e300

    value = f(theta)
    grad = np.zeros(4)
    h = 1e-6
    for i in range(4):
        e = np.zeros(4)
        e[i] = h
        grad[i] = (f(theta + e) - f(theta - e)) / (2 * h)
    if not np.all(np.isfinite(grad)) or value >= 1e300:
        return 1e300, np.zeros(4)
    return value, grad


def fit_pareto(
    x: ArrayLike,
    t_x: ArrayLike,
    T: ArrayLike,
    weights: ArrayLike | None = None,
    *,
    compressed: bool = True,
) -> Fit:
    """Maximum-likelihood Pareto/NBD (r, α, s, β)."""
    xs, ts, Ts, ws = _weighted(x, t_x, T, weights)
    customers = round(float(ws.sum()))
    if compressed and weights is None:
        c = compress(xs, ts, Ts)
        xs, ts, Ts, ws = c.x, c.t_x, c.T, c.weight
    mean_rate = max(_dot(ws, xs) / _dot(ws, Ts), 1e-3)
    starts = [(1.0, 1.0 / mean_rate, 1.0, 10.0), (0.5, 10.0, 0.5, 10.0), (1.0, 1.0, 1.0, 1.0)]
    pairs = _PairRows.build(xs, ts, Ts, ws)
    p, fun, nit, ok, tried = _maximise(lambda th: _pareto_neg(th, pairs), starts)
    return Fit(
        model="pareto",
        params={"r": float(p[0]), "alpha": float(p[1]), "s": float(p[2]), "beta": float(p[3])},
        log_likelihood=-fun * pairs.total,
        iterations=nit,
        converged=ok,
        rows=int(xs.size),
        customers=customers,
        starts=tried,
    )


def pareto_p_alive(
    params: dict[str, float], x: ArrayLike, t_x: ArrayLike, T: ArrayLike
) -> FloatArray:
    """P(alive) = 1 / (1 + s/(r+s+x) (α+T)^(r+x) (β+T)^s A0), in log space."""
    r, alpha, s, beta = params["r"], params["alpha"], params["s"], params["beta"]
    xs, ts, Ts = _as_float(x), _as_float(t_x), _as_float(T)
    log_odds = (
        np.log(s)
        - np.log(r + s + xs)
        + (r + xs) * np.log(alpha + Ts)
        + s * np.log(beta + Ts)
        + pareto_log_a0([r, alpha, s, beta], xs, ts, Ts)
    )
    out: FloatArray = special.expit(-log_odds)
    return out


def pareto_expected_purchases(
    params: dict[str, float], t: ArrayLike, x: ArrayLike, t_x: ArrayLike, T: ArrayLike
) -> FloatArray:
    """E[purchases in (T, T+t] | x, t_x, T] = (r+x)(β+T)/((α+T)(s−1)) [1 − ((β+T)/(β+T+t))^(s−1)] P(alive)."""
    r, alpha, s, beta = params["r"], params["alpha"], params["s"], params["beta"]
    xs, ts, Ts, tt = _as_float(x), _as_float(t_x), _as_float(T), _as_float(t)
    lg = np.log1p(tt / (beta + Ts))
    # [1 − e^{−(s−1)lg}]/(s−1), with its limit lg at s = 1
    frac = -np.expm1(-(s - 1) * lg) / (s - 1) if abs(s - 1) > 1e-12 else lg
    out: FloatArray = (
        (r + xs) * (beta + Ts) / (alpha + Ts) * frac * pareto_p_alive(params, xs, ts, Ts)
    )
    return out


def pareto_unconditional(params: dict[str, float], t: ArrayLike) -> FloatArray:
    """E[X(t)] = rβ/(α(s−1)) [1 − (β/(β+t))^(s−1)]."""
    r, alpha, s, beta = params["r"], params["alpha"], params["s"], params["beta"]
    lg = np.log1p(_as_float(t) / beta)
    frac = -np.expm1(-(s - 1) * lg) / (s - 1) if abs(s - 1) > 1e-12 else lg
    out: FloatArray = r * beta / alpha * frac
    return out


# --- dispatch by model name -----------------------------------------------------------------

MODELS = ("bgnbd", "pareto")


def fit_model(model: str, x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> Fit:
    if model == "bgnbd":
        return fit_bgnbd(x, t_x, T)
    if model == "pareto":
        return fit_pareto(x, t_x, T)
    raise InvalidInput(f"model must be one of {list(MODELS)}", code="unknown_model")


def p_alive(fit: Fit, x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> FloatArray:
    if fit.model == "bgnbd":
        return bgnbd_p_alive(fit.params, x, t_x, T)
    return pareto_p_alive(fit.params, x, t_x, T)


def expected_purchases(
    fit: Fit, t: ArrayLike, x: ArrayLike, t_x: ArrayLike, T: ArrayLike
) -> FloatArray:
    if fit.model == "bgnbd":
        return bgnbd_expected_purchases(fit.params, t, x, t_x, T)
    return pareto_expected_purchases(fit.params, t, x, t_x, T)


# --- Gamma-Gamma ----------------------------------------------------------------------------


def gamma_gamma_loglik_terms(
    params: Sequence[float], x: ArrayLike, mean_spend: ArrayLike
) -> FloatArray:
    """Per-customer log-likelihood of the mean spend zbar over x repeat purchases.

    f(zbar | p, q, γ, x) = Γ(px+q)/(Γ(px)Γ(q)) γ^q zbar^(px−1) x^(px) / (γ + x zbar)^(px+q)
    """
    p, q, g = params
    xs, zs = _as_float(x), _as_float(mean_spend)
    px = p * xs
    out: FloatArray = (
        special.gammaln(px + q)
        - special.gammaln(px)
        - special.gammaln(q)
        + q * np.log(g)
        + (px - 1) * np.log(zs)
        + px * np.log(xs)
        - (px + q) * np.log(g + xs * zs)
    )
    return out


def fit_gamma_gamma(x: ArrayLike, mean_spend: ArrayLike) -> Fit:
    """Gamma-Gamma (p, q, γ) on customers with x > 0 and a positive mean spend."""
    xs, zs = _as_float(x), _as_float(mean_spend)
    keep = (xs > 0) & (zs > 0)
    xs, zs = xs[keep], zs[keep]
    if xs.size < 2:
        raise InvalidInput(
            "Gamma-Gamma needs at least two repeat customers with a positive spend",
            code="no_repeat_customers",
        )
    n = float(xs.size)
    dg = special.digamma
    lz, lx = np.log(zs), np.log(xs)
    xz = xs * zs
    # functions of x alone are tabulated over the distinct x; constant sums are taken once
    ux, ix = np.unique(xs, return_inverse=True)
    cnt = np.bincount(ix).astype(np.float64)
    sum_x_lzx = float((xs * (lz + lx)).sum())
    sum_lz = float(lz.sum())

    def neg(theta: FloatArray) -> tuple[float, FloatArray]:
        p, q, g = np.exp(theta)
        pux = p * ux
        lgz = np.log(g + xz)
        pxq = p * xs + q
        table = special.gammaln(pux + q) - special.gammaln(pux)
        total = (
            _dot(cnt, table)
            - n * special.gammaln(q)
            + n * q * np.log(g)
            + p * sum_x_lzx
            - sum_lz
            - _dot(pxq, lgz)
        )
        if not np.isfinite(total):
            return 1e300, np.zeros(3)
        common = dg(pux + q)
        d_p = _dot(cnt, ux * (common - dg(pux))) + sum_x_lzx - _dot(xs, lgz)
        d_q = _dot(cnt, common) - n * dg(q) + n * np.log(g) - float(lgz.sum())
        d_g = n * q / g - float((pxq / (g + xz)).sum())
        return -float(total) / n, -np.array([d_p * p, d_q * q, d_g * g]) / n

    m = float(zs.mean())
    starts = [(1.0, 2.0, m), (5.0, 3.0, m), (0.5, 1.5, m / 2)]
    p, fun, nit, ok, tried = _maximise(neg, starts)
    return Fit(
        model="gamma_gamma",
        params={"p": float(p[0]), "q": float(p[1]), "gamma": float(p[2])},
        log_likelihood=-fun * n,
        iterations=nit,
        converged=ok,
        rows=int(n),
        customers=int(n),
        starts=tried,
    )


def expected_spend(params: dict[str, float], x: ArrayLike, mean_spend: ArrayLike) -> FloatArray:
    """E[Z | x, zbar] = (γ + x zbar) p / (p x + q − 1); the population mean pγ/(q−1) when x = 0."""
    p, q, g = params["p"], params["q"], params["gamma"]
    xs, zs = _as_float(x), _as_float(mean_spend)
    out: FloatArray = p * (g + xs * zs) / (p * xs + q - 1)
    return out


def discounted_purchases(
    fit: Fit,
    x: ArrayLike,
    t_x: ArrayLike,
    T: ArrayLike,
    *,
    months: int = 12,
    discount_rate: float = 0.01,
    unit: str = "week",
) -> FloatArray:
    """Σ_{m=1..M} (E[Y(m f)] − E[Y((m−1) f)]) / (1 + d)^m: CLV per unit of expected spend.

    E[Y(t)] is the conditional expected number of purchases in (T, T+t], f the month in the
    time unit (4.345 weeks or 30 days) and d the monthly discount rate, as lifetimes computes
    CLV. It depends on (x, t_x, T) only, so it can be computed on compressed rows.
    """
    if months < 1:
        raise InvalidInput("months must be at least 1", code="bad_horizon")
    if discount_rate <= -1:
        raise InvalidInput("discount rate must be greater than -1", code="bad_discount_rate")
    factor = WEEKS_PER_MONTH if unit == "week" else DAYS_PER_MONTH
    xs, ts, Ts = _as_float(x), _as_float(t_x), _as_float(T)
    total = np.zeros_like(xs)
    previous = np.zeros_like(xs)
    for m in range(1, months + 1):
        current = expected_purchases(fit, m * factor, xs, ts, Ts)
        total += (current - previous) / (1 + discount_rate) ** m
        previous = current
    return total


def clv(
    fit: Fit,
    spend: ArrayLike,
    x: ArrayLike,
    t_x: ArrayLike,
    T: ArrayLike,
    *,
    months: int = 12,
    discount_rate: float = 0.01,
    unit: str = "week",
) -> FloatArray:
    """Discounted value over ``months`` monthly steps, as lifetimes computes it.

    CLV = spend × Σ_{m=1..M} (E[Y(m f)] − E[Y((m−1) f)]) / (1 + d)^m (see
    ``discounted_purchases``), with ``spend`` the Gamma-Gamma expected spend per purchase.
    """
    per_spend = discounted_purchases(
        fit, x, t_x, T, months=months, discount_rate=discount_rate, unit=unit
    )
    out: FloatArray = _as_float(spend) * per_spend
    return out
