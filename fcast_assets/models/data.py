"""Plan data sets over a game's gold tables: ``data: gold:<game>:<selector>``.

Frames for the plan steps (``{__data__: ...}``): ``df`` (unique_id, ds, y and the hist_/fut_ columns the plan's
models list), ``futr_df`` (the fut_ columns on every future step of gold_futr), ``static_df`` (the stat_ columns),
an empty ``test``. The time index ``ds`` is ``draw_no`` with ``freq=1``: draws fall on irregular dates, one step
per draw is what the models see. Leading rows whose listed hist_ features are not defined yet (rolling windows
warming up) are dropped; a gap inside the history is an error.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from ..features import gold
from ..lake import deltaio
from ..lake import games as G

PREFIX = "gold:"
EXOG_PARAMS = {"hist_exog_list": "hist", "futr_exog_list": "futr", "stat_exog_list": "stat"}


class GoldDataError(ValueError):
    pass


def is_gold(name: str | None) -> bool:
    return bool(name) and str(name).startswith(PREFIX)


def parse(name: str) -> tuple[str, str]:
    parts = name[len(PREFIX):].split(":")
    if len(parts) != 2 or not all(parts):
        raise GoldDataError(f"a gold data set is gold:<game>:<selector> (e.g. gold:loto6:N1), not {name!r}")
    return parts[0], parts[1]


def plan_h(plan: dict[str, Any] | None, engine: Engine | None = None) -> int | None:
    """The largest ``h`` of the plan's model steps; for a registered model's plan without model steps, the
    model's h; None otherwise."""
    hs = [s["params"]["h"] for s in (plan or {}).get("steps") or []
          if isinstance((s.get("params") or {}).get("h"), int)]
    if not hs and (plan or {}).get("model_id") and engine is not None:
        from sqlmodel import Session

        from ..db.model_models import ModelRegistry

        with Session(engine) as s:
            row = s.get(ModelRegistry, plan["model_id"])
        h = (row.hyperparams or {}).get("h") if row is not None else None
        return int(h) if isinstance(h, int) else None
    return max(hs) if hs else None


def plan_exog(plan: dict[str, Any] | None, engine: Engine | None = None) -> dict[str, list[str]]:
    """hist / futr / stat columns named by the plan's model steps (union, in order); a plan without model steps
    that belongs to a registered model (``model_id``: load + predict) gets the model's stored lists."""
    out: dict[str, list[str]] = {"hist": [], "futr": [], "stat": []}
    has_models = any("params" in s and any(p in (s.get("params") or {}) for p in EXOG_PARAMS)
                     for s in (plan or {}).get("steps") or [])
    if not has_models and (plan or {}).get("model_id") and engine is not None:
        from ..db.model_models import ModelRegistry
        from sqlmodel import Session

        with Session(engine) as s:
            row = s.get(ModelRegistry, plan["model_id"])
        if row is not None:
            return {"hist": list(row.hist_exog or []), "futr": list(row.futr_exog or []),
                    "stat": list(row.stat_exog or [])}
    for s in (plan or {}).get("steps") or []:
        for p, grp in EXOG_PARAMS.items():
            for c in (s.get("params") or {}).get(p) or []:
                if c not in out[grp]:
                    out[grp].append(c)
    return out


def load_gold(name: str, engine: Engine, exog: dict[str, list[str]] | None = None,
              root: str | None = None, h: int | None = None) -> dict[str, Any]:
    from .selectors import get_selector

    game, sel_name = parse(name)
    spec = G.get_game(engine, game)
    sel = get_selector(engine, game, sel_name)
    exog = exog or {"hist": [], "futr": [], "stat": []}
    ids = list(sel.unique_ids)
    feats = deltaio.read(gold.gold_uri(spec, "features", root))
    if feats.empty:
        raise GoldDataError(f"gold features of {game} are empty: materialize gold_features for {game} first")
    feats = feats[feats["unique_id"].isin(ids)]
    temporal = [c for c in exog["hist"] + exog["futr"] if c in feats.columns]
    df = feats[["unique_id", "draw_no", "y", *temporal]].rename(columns={"draw_no": "ds"})
    df = df.sort_values(["unique_id", "ds"]).reset_index(drop=True)
    df["ds"] = df["ds"].astype("int64")
    df["y"] = df["y"].astype("float64")
    if temporal:
        ok = df[temporal].notna().all(axis=1)
        started = ok.groupby(df["unique_id"]).cummax()  # drop the warm-up rows only
        df = df[started].reset_index(drop=True)
        holes = [c for c in temporal if df[c].isna().any()]
        if holes:
            raise GoldDataError(f"gold features of {game} have missing values inside the history in {holes}")
    gaps = df.groupby("unique_id")["ds"].apply(lambda s: int((np.diff(s.to_numpy()) != 1).sum()))
    if gaps.any():
        raise GoldDataError(f"draw numbers of {game} are not contiguous: {gaps[gaps > 0].to_dict()}")
    futr = deltaio.read(gold.gold_uri(spec, "futr", root))
    fcols = [c for c in exog["futr"] if c in futr.columns]
    futr_df = (futr[futr["unique_id"].isin(ids)][["unique_id", "draw_no", *fcols]]
               .rename(columns={"draw_no": "ds"}).sort_values(["unique_id", "ds"]).reset_index(drop=True)
               if not futr.empty else pd.DataFrame(columns=["unique_id", "ds", *fcols]))
    futr_df["ds"] = futr_df["ds"].astype("int64")
    if h:  # the steps the models forecast (gold_futr covers the gold horizon, often longer)
        futr_df = futr_df[futr_df.groupby("unique_id").cumcount() < int(h)].reset_index(drop=True)
    static = deltaio.read(gold.gold_uri(spec, "static", root))
    scols = [c for c in exog["stat"] if c in static.columns]
    static_df = (static[static["unique_id"].isin(ids)][["unique_id", *scols]].reset_index(drop=True)
                 if not static.empty else pd.DataFrame(columns=["unique_id", *scols]))
    return {"df": df, "futr_df": futr_df, "static_df": static_df,
            "test": pd.DataFrame(columns=["unique_id", "ds", "y"]), "freq": 1,
            "game": spec, "selector": sel, "gold_columns": {"features": list(feats.columns),
                                                            "futr": list(futr.columns), "static": list(static.columns)}}
