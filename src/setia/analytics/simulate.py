"""Synthetic customers from the BG/NBD generative process (for benchmarks and tests).

Each customer: purchase rate λ ~ Gamma(r, 1/α), drop-out probability p ~ Beta(a, b), an age
T (days, uniform over ``age_days``). Purchases form a Poisson(λ) process; after each repeat
purchase the customer leaves with probability p. Vectorised: with N ~ Poisson(λT) purchases
in the window if alive throughout and J ~ Geometric(p) the purchase after which they leave,
x = min(N, J), and the x-th of N uniform purchase times is T·Beta(x, N − x + 1).
Times are rounded to whole days, as a summary of real transactions would be.
"""

from __future__ import annotations

import numpy as np

from setia.analytics.summary import FloatArray


def simulate_bgnbd(
    n: int,
    *,
    r: float,
    alpha: float,
    a: float,
    b: float,
    age_days: tuple[int, int] = (189, 273),
    unit_days: int = 7,
    seed: int = 0,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """``n`` customers' (x, t_x, T) in units of ``unit_days`` (7: weeks)."""
    rng = np.random.default_rng(seed)
    lam = rng.gamma(r, 1.0 / alpha, n) / unit_days  # per day
    p = rng.beta(a, b, n)
    t_days = rng.integers(age_days[0], age_days[1] + 1, n).astype(np.float64)
    purchases = rng.poisson(lam * t_days)
    leave_after = rng.geometric(np.clip(p, 1e-12, 1.0))
    x = np.minimum(purchases, leave_after).astype(np.float64)
    rep = x > 0
    frac = np.zeros(n)
    frac[rep] = rng.beta(x[rep], purchases[rep] - x[rep] + 1)
    tx_days = np.where(rep, np.clip(np.round(frac * t_days), 1.0, t_days), 0.0)
    return x, tx_days / unit_days, t_days / unit_days
