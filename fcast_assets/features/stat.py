"""stat_ generators: one row per series (static exogenous): slot index and role, the game's number range and slot
count, and the slot's historical mean / variance up to the training cutoff (rows with draw_no <= cutoff)."""

from __future__ import annotations

from typing import Any, Optional

import pandas as pd

from fcast_assets.lake.games import GameSpec


def slot_of(spec: GameSpec, unique_id: str) -> str:
    return unique_id[len(spec.code) + 1:]


def game_rules(frame: pd.DataFrame, spec: GameSpec, **_: Any) -> pd.DataFrame:
    rows = []
    for uid in frame["unique_id"].unique():
        slot = slot_of(spec, uid)
        col = slot.lower()
        lo, hi = spec.slot_range(col)
        rows.append({"unique_id": uid,
                     "stat_slot_index": float(spec.number_cols.index(col) + 1),
                     "stat_is_bonus": float(col.startswith("b")),
                     "stat_number_min": float(lo), "stat_number_max": float(hi),
                     "stat_n_main": float(spec.n_main), "stat_n_slots": float(spec.n_main + spec.n_bonus),
                     "stat_allow_repeat": float(spec.allow_repeat)})
    return pd.DataFrame(rows).set_index("unique_id")


def history_moments(frame: pd.DataFrame, spec: GameSpec | None = None, cutoff: Optional[int] = None, **_: Any
                    ) -> pd.DataFrame:
    f = frame if cutoff is None else frame[frame["draw_no"] <= int(cutoff)]
    g = f.groupby("unique_id", sort=False)["y"]
    out = pd.DataFrame({"stat_mean": g.mean(), "stat_var": g.var(), "stat_n_train": g.size().astype(float)})
    return out.reindex(frame["unique_id"].unique())
