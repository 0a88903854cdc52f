"""hist_ generators: computed strictly from the past. The value of a feature at draw t uses y at draws < t only
(every statistic is taken over ``y.shift(1)`` within a series). Input: long frame unique_id, ds, draw_no, y sorted
by (unique_id, draw_no); output: a frame of feature columns on the same index.

The features that equal a silver variant read it (``variants``, :mod:`fcast_assets.features.variants`) at the
previous draw instead of recomputing it: ``hist_roll{w}_sum|mean|std`` (rsum/rmean/rstd{w}), ``hist_diff{p}``
(diff{p}), ``hist_cumsum`` (cumsum), ``hist_parity`` (parity). Their windows / differences are silver's
(:data:`fcast_assets.lake.silver.WINDOWS`, :data:`~fcast_assets.lake.silver.DIFFS`): one list for both layers."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
import pandas as pd

from fcast_assets.lake import silver as S
from fcast_assets.lake.games import GameSpec

from .variants import Variants, resolve

FROM_SILVER = ("sum", "mean", "std")  # rolling statistics silver stores as r<stat><w>


def _past(frame: pd.DataFrame) -> pd.core.groupby.SeriesGroupBy:
    """y shifted by one draw within each series: the last value known before the draw."""
    return frame.groupby("unique_id", sort=False)["y"].shift(1).groupby(frame["unique_id"], sort=False)


def lags(frame: pd.DataFrame, spec: GameSpec | None = None, lags: list[int] = (1, 2, 3), **_: Any) -> pd.DataFrame:
    g = frame.groupby("unique_id", sort=False)["y"]
    return pd.DataFrame({f"hist_lag{k}": g.shift(int(k)) for k in lags}, index=frame.index)


def rolling(frame: pd.DataFrame, spec: GameSpec | None = None, windows: Optional[list[int]] = None,
            stats: list[str] = ("sum", "mean", "std", "min", "max"), variants: Optional[Variants] = None,
            **_: Any) -> pd.DataFrame:
    """hist_roll{w}_{stat} over the ``w`` draws before t; windows: silver's. sum / mean / std are silver's
    rsum / rmean / rstd{w} at t-1; min / max are computed over ``y.shift(1)``."""
    windows = S.WINDOWS if windows is None else windows
    v = resolve(frame, variants) if any(st in FROM_SILVER for st in stats) else None
    past = _past(frame) if any(st not in FROM_SILVER for st in stats) else None
    out = {}
    for w in windows:
        r = past.rolling(int(w), min_periods=int(w)) if past is not None else None
        for st in stats:
            name = f"hist_roll{w}_{st}"
            if st in FROM_SILVER:
                out[name] = v.past(f"r{st}{w}", needed_by=name)  # type: ignore[union-attr]
            else:
                out[name] = getattr(r, st)().reset_index(level=0, drop=True)
    return pd.DataFrame(out, index=frame.index)


def diff(frame: pd.DataFrame, spec: GameSpec | None = None, periods: Optional[list[int]] = None,
         variants: Optional[Variants] = None, **_: Any) -> pd.DataFrame:
    """hist_diff{p} = y[t-1] - y[t-1-p]: silver's diff{p} at t-1; periods: silver's."""
    v = resolve(frame, variants)
    periods = S.DIFFS if periods is None else periods
    return pd.DataFrame({f"hist_diff{p}": v.past(f"diff{p}", needed_by=f"hist_diff{p}") for p in periods},
                        index=frame.index)


def cumsum(frame: pd.DataFrame, spec: GameSpec | None = None, variants: Optional[Variants] = None, **_: Any
           ) -> pd.DataFrame:
    """hist_cumsum = sum of y before t (0 at the first draw): silver's cumsum at t-1."""
    v = resolve(frame, variants)
    return pd.DataFrame({"hist_cumsum": v.past("cumsum", needed_by="hist_cumsum").fillna(0.0)}, index=frame.index)


def parity(frame: pd.DataFrame, spec: GameSpec | None = None, variants: Optional[Variants] = None, **_: Any
           ) -> pd.DataFrame:
    """hist_parity = y[t-1] mod 2 (odd / even of the last drawn value): silver's parity at t-1."""
    v = resolve(frame, variants)
    return pd.DataFrame({"hist_parity": v.past("parity", needed_by="hist_parity")}, index=frame.index)


def expanding(frame: pd.DataFrame, spec: GameSpec | None = None, stats: list[str] = ("mean", "std"),
              min_periods: int = 2, **_: Any) -> pd.DataFrame:
    r = _past(frame).expanding(min_periods=int(min_periods))
    return pd.DataFrame({f"hist_exp_{st}": getattr(r, st)().reset_index(level=0, drop=True) for st in stats},
                        index=frame.index)


def _count_last(y: np.ndarray, n: int) -> np.ndarray:
    """c[i] = how often y[i] occurs in y[i-n+1 .. i] (NaN until the window is full)."""
    out = np.full(len(y), np.nan)
    if len(y) < n:
        return out
    for v in np.unique(y[~np.isnan(y)]):
        ind = (y == v).astype(float)
        cs = np.concatenate([[0.0], np.cumsum(ind)])
        roll = cs[n:] - cs[:-n]  # window ending at i = n-1 ..
        hit = np.where(ind[n - 1:] == 1)[0]
        out[hit + n - 1] = roll[hit]
    return out


def counts(frame: pd.DataFrame, spec: GameSpec | None = None, windows: list[int] = (10, 50), **_: Any
           ) -> pd.DataFrame:
    """hist_count{N}: how often the last drawn value (y at t-1) appeared in the last N draws (t-N .. t-1)."""
    out = {f"hist_count{n}": np.full(len(frame), np.nan) for n in windows}
    for _, idx in frame.groupby("unique_id", sort=False).indices.items():
        y = frame["y"].to_numpy(dtype=float)[idx]
        for n in windows:
            c = _count_last(y, int(n))
            out[f"hist_count{n}"][idx] = np.concatenate([[np.nan], c[:-1]])  # shift: known before the draw
    return pd.DataFrame(out, index=frame.index)
