"""Data sets that plans reference by name: ``synthetic*`` (tiny synthetic frames) or ``gold:<game>:<selector>``
(a game's gold feature tables, see :mod:`fcast_assets.models.data`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

N_SERIES = 2
N_POINTS = 64
HORIZON = 4  # rows per series in futr_df and in the held-out test frame

# name -> exogenous columns kept in df
DATASETS: dict[str, tuple[str, ...]] = {
    "synthetic": (),
    "synthetic_futr": ("fut_x",),
    "synthetic_hist": ("hist_x",),
    "synthetic_exog": ("fut_x", "hist_x"),
}


def synthetic(exog: tuple[str, ...] = (), n_series: int = N_SERIES, n_points: int = N_POINTS,
              horizon: int = HORIZON) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    frames = []
    for i in range(n_series):
        t = np.arange(n_points + horizon)
        frames.append(pd.DataFrame({
            "unique_id": f"s{i + 1}", "ds": pd.date_range("2020-01-01", periods=n_points + horizon, freq="D"),
            "y": 10 + i + np.sin(t / 3) + rng.normal(0, 0.1, len(t)),
            "fut_x": np.cos(t / 5), "hist_x": rng.normal(0, 1, len(t)),
        }))
    full = pd.concat(frames, ignore_index=True)
    pos = full.groupby("unique_id").cumcount()
    train, test = full[pos < n_points], full[pos >= n_points]
    futr_df = test[["unique_id", "ds", "fut_x"]].reset_index(drop=True)
    return {
        "df": train[["unique_id", "ds", "y", *exog]].reset_index(drop=True),
        "test": test[["unique_id", "ds", "y"]].reset_index(drop=True),
        "static_df": pd.DataFrame({"unique_id": [f"s{i + 1}" for i in range(n_series)],
                                   "stat_x": np.linspace(0.5, 1.5, n_series)}),
        "futr_df": futr_df,
        "futr_df_short": futr_df.groupby("unique_id").head(1).reset_index(drop=True),
        "freq": "D",
    }


def load(name: str | None, engine: Any = None, plan: dict[str, Any] | None = None) -> dict[str, Any]:
    """A data set by name; ``gold:<game>:<selector>`` reads the game's gold tables (needs the engine) with the
    exogenous columns the plan's models list (:mod:`fcast_assets.models.data`)."""
    name = name or "synthetic"
    if name.startswith("gold:"):
        from ..models.data import load_gold, plan_inputs

        if engine is None:
            raise ValueError(f"data set {name!r} needs the metadata database")
        exog, h = plan_inputs(plan, engine)
        return load_gold(name, engine, exog, h=h)
    if name not in DATASETS:
        raise KeyError(f"unknown data set {name!r}: known {sorted(DATASETS)}")
    return synthetic(DATASETS[name])
