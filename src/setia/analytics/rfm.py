"""RFM scores 1–5 by quintiles, and named segments from (R, FM).

Scored among the members with at least one purchase:

- **R** on days since the last purchase day (fewer is better: the most recent get 5);
- **F** on the number of orders;
- **M** on net spend (spend minus refunds).

**Ties.** Values are ranked ascending (for R: descending days, so "better" is always
higher); equal values share the *lowest* rank of their group (1-based, "min" ranking) and
the score is ``1 + floor(5 · (rank − 1) / n)``. So equal values always get the same score,
the result does not depend on the order of the input, and with n distinct values the scores
are the quintiles (n = 5: 1, 2, 3, 4, 5). A large group of equal values takes the score of
where the group starts (e.g. 80 % of members with one order all get F = 1).

**Segments** come from R and FM = round-half-up of (F + M) / 2 through ``DEFAULT_GRID``
(the usual RFM grid). The grid is the same for every tenant in this slice; per-tenant
grids are a later slice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

SEGMENTS: dict[str, str] = {
    "champions": "Champions",
    "loyal": "Loyal",
    "potential_loyalists": "Potential loyalists",
    "new": "New",
    "promising": "Promising",
    "need_attention": "Need attention",
    "about_to_sleep": "About to sleep",
    "at_risk": "At risk",
    "cant_lose_them": "Can't lose them",
    "hibernating": "Hibernating",
    "lost": "Lost",
}

# DEFAULT_GRID[r][fm] for r, fm in 1..5 (rows: R from 5 down to 1 as written below).
_ROWS = {
    5: ("new", "potential_loyalists", "potential_loyalists", "champions", "champions"),
    4: ("promising", "potential_loyalists", "potential_loyalists", "loyal", "champions"),
    3: ("about_to_sleep", "about_to_sleep", "need_attention", "loyal", "loyal"),
    2: ("hibernating", "hibernating", "at_risk", "at_risk", "cant_lose_them"),
    1: ("lost", "lost", "hibernating", "at_risk", "cant_lose_them"),
}
DEFAULT_GRID: dict[tuple[int, int], str] = {
    (r, fm + 1): seg for r, row in _ROWS.items() for fm, seg in enumerate(row)
}


def quintile_scores(values: Sequence[float] | npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
    """Scores 1–5, higher value → higher score; ties share the lowest rank of their group."""
    v = np.asarray(values, dtype=np.float64)
    n = v.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    # "min" rank: 1 + number of values strictly smaller
    sorted_v = np.sort(v)
    rank = np.searchsorted(sorted_v, v, side="left") + 1
    out: npt.NDArray[np.int64] = (1 + (5 * (rank - 1)) // n).astype(np.int64)
    return out


def fm_score(f: int, m: int) -> int:
    """(F + M) / 2 rounded half up."""
    return (f + m + 1) // 2


def segment(r: int, f: int, m: int, grid: dict[tuple[int, int], str] | None = None) -> str:
    return (grid or DEFAULT_GRID)[(r, fm_score(f, m))]


@dataclass(frozen=True)
class Scores:
    recency_days: npt.NDArray[np.int64]
    r: npt.NDArray[np.int64]
    f: npt.NDArray[np.int64]
    m: npt.NDArray[np.int64]
    segments: list[str]


def score(
    recency_days: Sequence[int] | npt.NDArray[np.int64],
    orders: Sequence[int] | npt.NDArray[np.int64],
    spend: Sequence[float] | npt.NDArray[np.float64],
) -> Scores:
    """R, F, M and the segment of each member (all three sequences in the same order)."""
    days = np.asarray(recency_days, dtype=np.int64)
    r = quintile_scores(-days.astype(np.float64))
    f = quintile_scores(np.asarray(orders, dtype=np.float64))
    m = quintile_scores(np.asarray(spend, dtype=np.float64))
    segs = [segment(int(a), int(b), int(c)) for a, b, c in zip(r, f, m, strict=True)]
    return Scores(recency_days=days, r=r, f=f, m=m, segments=segs)
