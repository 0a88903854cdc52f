"""Baselines that every model is evaluated against, on the same forecast rows (same series, cutoffs, steps):

- ``Naive`` and ``HistoricAverage``: statsforecast models fitted on the history up to each cutoff;
- ``UniformDraw``: the slot's number in a simulated random draw of the game (its rules: range, per-slot ranges,
  repeats, sorted main numbers) — what guessing looks like;
- ``UniformMean``: the expected value of the slot under random draws (the best point forecast if the draws are
  random), estimated from 20,000 simulated draws.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..lake.games import GameSpec

STATS = ("Naive", "HistoricAverage")
GAME = ("UniformDraw", "UniformMean")
BASELINES = STATS + GAME
N_SIM = 20_000


def check_baselines(names: list[str], frames: dict[str, Any]) -> list[tuple[str, str]]:
    """(message, fix) for every baseline name that is unknown or cannot run on this data set."""
    out = []
    for n in names:
        if n not in BASELINES:
            out.append((f"unknown baseline {n!r}", f"use one of {list(BASELINES)}"))
        elif n in GAME and not isinstance(frames.get("game"), GameSpec):
            out.append((f"baseline {n!r} simulates the game's draws: the data set is not a game",
                        "use data: gold:<game>:<selector>, or only " + ", ".join(STATS)))
    return out


def simulate_draws(spec: GameSpec, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` random draws (n x n_main) following the game's rules, in the order silver stores the slots."""
    k = spec.n_main
    if spec.rules.get("slot_ranges"):
        cols = [rng.integers(lo, hi + 1, size=n) for lo, hi in (spec.slot_range(f"n{i + 1}") for i in range(k))]
        return np.stack(cols, axis=1)
    lo, hi = spec.number_min, spec.number_max
    if spec.allow_repeat:
        return rng.integers(lo, hi + 1, size=(n, k))
    pool = np.arange(lo, hi + 1)
    draws = np.stack([rng.choice(pool, size=k, replace=False) for _ in range(n)])
    return np.sort(draws, axis=1) if spec.main_sorted else draws


def slot_index(uid: str, spec: GameSpec) -> int:
    slot = str(uid).rsplit("_", 1)[-1]
    if not slot.startswith("N") or not slot[1:].isdigit() or not 1 <= int(slot[1:]) <= spec.n_main:
        raise ValueError(f"{uid!r} is not a main slot series of {spec.code}")
    return int(slot[1:]) - 1


def _stats_forecasts(fc: pd.DataFrame, df: pd.DataFrame, names: list[str], freq: Any) -> pd.DataFrame:
    from statsforecast import StatsForecast
    from statsforecast import models as sfm

    frames = []
    for cutoff, part in fc.groupby("cutoff", sort=True):
        h = int(part.groupby("unique_id").size().max())
        hist = df[(df["ds"] <= cutoff) & df["unique_id"].isin(part["unique_id"].unique())][["unique_id", "ds", "y"]]
        sf = StatsForecast(models=[getattr(sfm, n)() for n in names], freq=freq)
        out = sf.forecast(df=hist, h=h)
        out = out.reset_index() if "unique_id" not in out.columns else out
        frames.append(out.assign(cutoff=cutoff))
    return pd.concat(frames, ignore_index=True)


def _given(out: pd.DataFrame, given: pd.DataFrame, names: list[str]) -> tuple[pd.DataFrame, list[str]]:
    """The injected baseline columns of ``names`` merged onto ``out`` (on unique_id, ds and cutoff when both have
    it); they must cover every row. Returns (out, the names still to compute)."""
    cols = [n for n in names if n in given.columns]
    if not cols:
        return out, list(names)
    keys = [k for k in ("unique_id", "ds", "cutoff") if k in given.columns and k in out.columns]
    if keys[:2] != ["unique_id", "ds"]:
        raise ValueError("injected baselines need the columns unique_id and ds (and cutoff for CV forecasts)")
    out = out.merge(given[keys + cols].drop_duplicates(keys), on=keys, how="left", validate="many_to_one")
    missing = [c for c in cols if out[c].isna().any()]
    if missing:
        raise ValueError(f"the injected baselines {missing} have no forecast for some rows of the evaluated forecast")
    return out, [n for n in names if n not in cols]


def add_baselines(fc: pd.DataFrame, data: dict[str, Any], names: list[str], seed: int = 0,
                  given: pd.DataFrame | None = None) -> pd.DataFrame:
    """``fc`` with one column per baseline (same rows). A forecast without ``cutoff`` (predict) is treated as one
    window whose cutoff is the last ds of the training frame. ``given``: baseline forecasts the caller already has
    (unique_id, ds, [cutoff], one column per baseline): its columns are used, only the others are computed."""
    df = data["df"]
    out = fc.copy()
    no_cutoff = "cutoff" not in out.columns
    if no_cutoff:
        last = df.groupby("unique_id")["ds"].max()
        out["cutoff"] = out["unique_id"].map(last)
    if given is not None:
        out, names = _given(out, given, names)
    stats = [n for n in names if n in STATS]
    if stats:
        sf = _stats_forecasts(out, df, stats, data.get("freq", 1))
        out = out.merge(sf, on=["unique_id", "ds", "cutoff"], how="left", validate="one_to_one")
        missing = out[stats].isna().any()
        if missing.any():
            raise ValueError(f"baselines {list(missing[missing].index)} have no forecast for some rows")
    game = [n for n in names if n in GAME]
    if game:
        spec: GameSpec = data["game"]
        rng = np.random.default_rng(seed)
        slots = out["unique_id"].map(lambda u: slot_index(u, spec)).to_numpy()
        if "UniformMean" in game:
            means = simulate_draws(spec, N_SIM, rng).mean(axis=0)
            out["UniformMean"] = means[slots]
        if "UniformDraw" in game:
            keys = out[["cutoff", "ds"]].drop_duplicates().reset_index(drop=True)
            sims = simulate_draws(spec, len(keys), rng)  # one draw per (cutoff, ds): coherent across slots
            pos = out[["cutoff", "ds"]].merge(keys.reset_index(), on=["cutoff", "ds"], how="left")["index"]
            out["UniformDraw"] = sims[pos.to_numpy(), slots].astype("float64")
    return out.drop(columns=["cutoff"]) if no_cutoff else out
