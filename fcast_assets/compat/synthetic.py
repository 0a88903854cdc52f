"""The synthetic series every probe and every plan miniature runs on: one formula, so a cell of the matrix and a
plan's miniature run see the same kind of data.

Series ``s1..sk``: ``y = 10 + i + sin(t / 3) + N(0, 0.1)``, a known-in-advance ``fut_x = cos(t / 5)`` and a
past-only ``hist_x = N(0, 1)``; ``ds`` daily dates from 2020-01-01 (or any pandas freq) or integers ``1 + freq*t``.
Deterministic (seed 0)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .spec import H, N_IDS, N_POINTS


def series(lengths: list[int], horizon: int, ds: str = "datetime", freq: Any = "D",
           start: str = "2020-01-01") -> pd.DataFrame:
    """Every row of every series, the ``horizon`` rows after each training part included: unique_id, ds, ``n``
    (that series' training length), y, fut_x, hist_x."""
    rng = np.random.default_rng(0)
    frames = []
    for i, n in enumerate(lengths):
        t = np.arange(n + horizon)
        stamps = (pd.Series(1 + int(freq) * t, dtype="int64") if ds == "int"
                  else pd.date_range(start, periods=n + horizon, freq=freq))
        frames.append(pd.DataFrame({
            "unique_id": f"s{i + 1}", "ds": stamps, "n": n,
            "y": 10 + i + np.sin(t / 3) + rng.normal(0, 0.1, len(t)),
            "fut_x": np.cos(t / 5), "hist_x": rng.normal(0, 1, len(t)),
        }))
    return pd.concat(frames, ignore_index=True)


def split(full: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(training rows, horizon rows) of :func:`series`."""
    is_train = full.groupby("unique_id").cumcount() < full["n"]
    return full[is_train], full[~is_train]


def build_data(ds_kind: str = "datetime", exog: tuple[str, ...] = ()) -> dict[str, Any]:
    """The probes' data (compat.synthetic: N_IDS series of N_POINTS, the H rows after them as futr_df) and the
    futr_df variants the exogenous cells pass."""
    train, horizon = split(series([N_POINTS] * N_IDS, H, ds="int" if ds_kind != "datetime" else "datetime",
                                  freq="D" if ds_kind == "datetime" else 1))
    frames = [train.drop(columns="n")]
    futr = [horizon[["unique_id", "ds", "fut_x"]]]
    df = pd.concat(frames, ignore_index=True)
    keep = ["unique_id", "ds", "y"] + [c for c, k in (("fut_x", "futr"), ("hist_x", "hist")) if k in exog]
    futr_df = pd.concat(futr, ignore_index=True)
    # two steps more than h per id (the fut_x formula continued): an X_df longer than the horizon
    more = []
    for uid, g in futr_df.groupby("unique_id", sort=False):
        t = np.arange(N_POINTS + H, N_POINTS + H + 2)
        ds = (pd.date_range(g["ds"].iloc[-1], periods=3, freq="D")[1:] if ds_kind == "datetime"
              else pd.Series(t + 1, dtype="int64"))
        more.append(pd.DataFrame({"unique_id": uid, "ds": ds, "fut_x": np.cos(t / 5)}))
    futr_df_long = pd.concat([futr_df, *more], ignore_index=True).sort_values(["unique_id", "ds"],
                                                                              ignore_index=True)
    return {
        "df": df[keep],
        "static_df": pd.DataFrame({"unique_id": [f"s{i + 1}" for i in range(N_IDS)], "stat_x": [0.5, 1.5]}),
        "futr_df": futr_df,
        "futr_df_short": futr_df.groupby("unique_id").head(H - 1).reset_index(drop=True),
        "futr_df_extra": futr_df.assign(extra_col=1.0),
        "futr_df_long": futr_df_long,
        "futr_df_missing_col": futr_df[["unique_id", "ds"]],
        "last_ds": df.groupby("unique_id")["ds"].max().to_dict(),
        "freq": "D" if ds_kind == "datetime" else 1,
    }
