"""anomaly generators (hist_ group): unsupervised anomaly scores per point from past-only windows.

The score at draw t describes the window of the ``window`` values before t; an IsolationForest is refitted every
``refit_every`` draws on windows that end before the block it scores, so nothing at t or later is used."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
import pandas as pd

from fcast_assets.lake.games import GameSpec

from .variants import Variants, resolve


def rolling_zscore(frame: pd.DataFrame, spec: GameSpec | None = None, window: int = 50, threshold: float = 2.5,
                   variants: Optional[Variants] = None, **_: Any) -> pd.DataFrame:
    """hist_anom_z: z-score of y[t-1] against the ``window`` draws before it (silver's rmean / rstd{window} at t-2;
    ``window`` must be one of silver's windows); hist_anom_z_flag: |z| > threshold."""
    v = resolve(frame, variants)
    last = frame.groupby("unique_id", sort=False)["y"].shift(1)
    mu = v.past(f"rmean{int(window)}", lag=2, needed_by="hist_anom_z")
    sd = v.past(f"rstd{int(window)}", lag=2, needed_by="hist_anom_z").replace(0.0, np.nan)
    z = (last - mu) / sd
    flag = (z.abs() > threshold).astype(float).where(z.notna())
    return pd.DataFrame({"hist_anom_z": z, "hist_anom_z_flag": flag}, index=frame.index)


def _windows(y: np.ndarray, w: int) -> np.ndarray:
    """Row t holds y[t-w .. t-1] (NaN rows where the window is incomplete)."""
    X = np.full((len(y), w), np.nan)
    for j in range(w):
        X[w:, j] = y[j:len(y) - w + j]
    return X


def isolation_forest(frame: pd.DataFrame, spec: GameSpec | None = None, window: int = 10, refit_every: int = 250,
                     min_train: int = 100, n_estimators: int = 50, max_samples: int = 256,
                     contamination: float = 0.02, seed: int = 0, **_: Any) -> pd.DataFrame:
    """hist_anom_iforest: -score_samples of an IsolationForest (higher = more anomalous); hist_anom_iforest_flag:
    the score exceeds the (1 - contamination) quantile of the training scores."""
    from sklearn.ensemble import IsolationForest

    score = np.full(len(frame), np.nan)
    flag = np.full(len(frame), np.nan)
    w = int(window)
    yall = frame["y"].to_numpy(dtype=float)
    for _, idx in frame.groupby("unique_id", sort=False).indices.items():
        X = _windows(yall[idx], w)
        n = len(idx)
        start = max(int(min_train), w + 10)
        for b in range(start, n, int(refit_every)):
            train = X[w:b]  # windows ending at b-1 or earlier
            if len(train) < 10:
                continue
            m = IsolationForest(n_estimators=int(n_estimators), max_samples=min(int(max_samples), len(train)),
                                random_state=int(seed)).fit(train)
            # threshold from the most recent training windows (a bounded sample keeps the build linear in
            # the history: scoring every earlier window at every refit would be quadratic)
            ref = train[-4 * int(max_samples):]
            thr = np.quantile(-m.score_samples(ref), 1 - float(contamination))
            e = min(b + int(refit_every), n)
            s = -m.score_samples(X[b:e])
            score[idx[b:e]] = s
            flag[idx[b:e]] = (s > thr).astype(float)
    return pd.DataFrame({"hist_anom_iforest": score, "hist_anom_iforest_flag": flag}, index=frame.index)
