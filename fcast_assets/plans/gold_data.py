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
from ..vocab import Exog
from .model import GOLD_PREFIX, GoldRef, GoldRefError, Plan

PREFIX = GOLD_PREFIX
EXOG_PARAMS = {e.list_param: e.value for e in Exog}


class GoldDataError(ValueError):
    pass


def is_gold(name: str | None) -> bool:
    return GoldRef.is_gold(name)


def ref(name: str | GoldRef) -> GoldRef:
    """The (game, selector) of a gold data set (:meth:`GoldRef.parse`; GoldDataError when malformed)."""
    try:
        return GoldRef.parse(name)
    except GoldRefError as e:
        raise GoldDataError(str(e)) from None


def parse(name: str | GoldRef) -> tuple[str, str]:
    r = ref(name)
    return r.game, r.selector


def plan_inputs(plan: Plan | dict[str, Any] | None, engine: Engine | None = None
                ) -> tuple[dict[str, list[str]], int | None]:
    """(hist / futr / stat columns, h) named by the plan's model steps (columns: union, in order; h: the largest).
    A plan whose steps name no exogenous list (or no h) and that belongs to a registered model (``model_id``: a
    load + predict plan) gets the model's stored lists (or h) instead; None when there is no h at all."""
    if isinstance(plan, Plan):
        plan = plan.as_dict()
    steps = (plan or {}).get("steps") or []
    exog: dict[str, list[str]] = {"hist": [], "futr": [], "stat": []}
    for s in steps:
        for p, grp in EXOG_PARAMS.items():
            for c in (s.get("params") or {}).get(p) or []:
                if c not in exog[grp]:
                    exog[grp].append(c)
    hs = [s["params"]["h"] for s in steps if isinstance((s.get("params") or {}).get("h"), int)]
    h = max(hs) if hs else None
    names_exog = any(p in (s.get("params") or {}) for s in steps for p in EXOG_PARAMS)
    if (not names_exog or h is None) and (plan or {}).get("model_id") and engine is not None:
        from sqlmodel import Session

        from ..db.model_models import ModelRegistry

        with Session(engine) as ses:
            row = ses.get(ModelRegistry, plan["model_id"])  # type: ignore[index]
        if row is not None:
            if not names_exog:
                exog = {"hist": list(row.hist_exog or []), "futr": list(row.futr_exog or []),
                        "stat": list(row.stat_exog or [])}
            if h is None:
                rh = (row.hyperparams or {}).get("h")
                h = int(rh) if isinstance(rh, int) else None
    return exog, h


def find_selector(engine: Engine, game: str | GoldRef, name: str | None = None) -> Any:
    """The ``model_series_selector`` row of (game, selector name) — or of a :class:`GoldRef` — : which series a
    gold data set holds."""
    if isinstance(game, GoldRef):
        game, name = game.game, game.selector
    from sqlmodel import Session, select

    from ..db.dataset_models import DatasetGame
    from ..db.model_models import ModelSeriesSelector

    with Session(engine) as s:
        row = s.exec(select(ModelSeriesSelector)
                     .join(DatasetGame, DatasetGame.game_id == ModelSeriesSelector.game_id)
                     .where(DatasetGame.code == game, ModelSeriesSelector.name == name)).first()
    if row is None:
        raise LookupError(f"no selector {name!r} for game {game!r}: selectors are N1..Nk and ALL of an active game "
                          "(materialize model_selectors or run `fcast model selectors`)")
    return row


def load_gold(name: str | GoldRef, engine: Engine, exog: dict[str, list[str]] | None = None,
              root: str | None = None, h: int | None = None) -> dict[str, Any]:
    """The frames of a gold data set (``gold:<game>:<selector>`` or a GoldRef): one read of the game's three gold
    tables. Callers that run plans on it pass the result on (``run_plan(..., frames=...)``) instead of reading
    again."""
    game, sel_name = parse(name)
    spec = G.get_game(engine, game)
    ids = list(find_selector(engine, game, sel_name).unique_ids or [])
    exog = exog or {"hist": [], "futr": [], "stat": []}
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
            "game": spec, "selector": sel_name, "ref": GoldRef(game=game, selector=sel_name), "unique_ids": ids, "gold_columns": {"features": list(feats.columns),
                                                            "futr": list(futr.columns), "static": list(static.columns)}}
