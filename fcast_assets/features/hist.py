"""hist_ generators: computed strictly from the past. The value of a feature at draw t uses y at draws < t only
(every statistic is taken over ``y.shift(1)`` within a series). Input: long frame unique_id, ds, draw_no, y sorted
by (unique_id, draw_no); output: a frame of feature columns on the same index."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from fcast_assets.lake.games import GameSpec


def _past(frame: pd.DataFrame) -> pd.core.groupby.SeriesGroupBy:
    """y shifted by one draw within each series: the last value known before the draw."""
    return frame.groupby("unique_id", sort=False)["y"].shift(1).groupby(frame["unique_id"], sort=False)


def lags(frame: pd.DataFrame, spec: GameSpec | None = None, lags: list[int] = (1, 2, 3), **_: Any) -> pd.DataFrame:
    g = frame.groupby("unique_id", sort=False)["y"]
    return pd.DataFrame({f"hist_lag{k}": g.shift(int(k)) for k in lags}, index=frame.index)


def rolling(frame: pd.DataFrame, spec: GameSpec | None = None, windows: list[int] = (5, 10),
            stats: list[str] = ("sum", "mean", "std", "min", "max"), **_: Any) -> pd.DataFrame:
    past = _past(frame)
    out = {}
    for w in windows:
        r = past.rolling(int(w), min_periods=int(w))
        for st in stats:
            out[f"hist_roll{w}_{st}"] = getattr(r, st)().reset_index(level=0, drop=True)
    return pd.DataFrame(out, index=frame.index)


def diff(frame: pd.DataFrame, spec: GameSpec | None = None, periods: list[int] = (1,), **_: Any) -> pd.DataFrame:
    past = _past(frame)
    return pd.DataFrame({f"hist_diff{p}": past.diff(int(p)) for p in periods}, index=frame.index)


def cumsum(frame: pd.DataFrame, spec: GameSpec | None = None, **_: Any) -> pd.DataFrame:
    past = frame.groupby("unique_id", sort=False)["y"].shift(1).fillna(0.0)
    return pd.DataFrame({"hist_cumsum": past.groupby(frame["unique_id"], sort=False).cumsum()}, index=frame.index)


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
