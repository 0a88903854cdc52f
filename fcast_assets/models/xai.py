"""Attribution per model, two methods side by side in ``model_xai``:

- ``integrated_gradients``: neuralforecast's own ``NeuralForecast.explain`` (captum's IntegratedGradients) over the
  last ``windows`` forecast origins: per feature the mean absolute attribution of the one-step forecast, summed
  over the input window (hist_ / fut_), plus ``insample_y`` (the target's own lags); univariate models only (the
  explainer of a multivariate model is called with its fixed ``n_series``, which the origin windows break).
- ``permutation``: for every model: the loaded model forecasts the next h draws from the true inputs and from
  inputs where one exogenous feature is shuffled (across the origins' rows; hist_ and fut_ in the history and the
  future rows, stat_ across series); the importance is the increase of the MAE against the actual draws, averaged
  over ``repeats`` shuffles. For univariate models all variants go through one ``predict`` call (each variant is its
  own series); a multivariate model is called once per origin and variant.

Per-time attributions go to the game's gold/xai Delta table: |y_hat(shuffled) - y_hat| per origin and step
(permutation) and the attribution of every input draw of the window (integrated gradients).
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
import pandas as pd
from sqlalchemy import Engine, delete
from sqlmodel import Session

from ..db.model_models import ModelXai
from ..lake import deltaio
from .selectors import selector_by_id
from .train import _model_name, check_features, exog_of, get_model, replace_model_rows

METHOD = "permutation"
IG = "integrated_gradients"
BASE_ID = "#__base__#0"  # the id suffix of the unshuffled variant (see _frames)


def xai_uri(game: str, root: Optional[str] = None) -> str:
    return deltaio.table_uri("gold", "xai", game, root)


def _variants(exog: dict[str, list[str]], repeats: int) -> list[tuple[str, int]]:
    return [("__base__", 0)] + [(f, r) for grp in ("hist", "futr", "stat") for f in exog[grp] for r in range(repeats)]


def _frames(data: dict[str, Any], exog: dict[str, list[str]], origins: list[int], h: int, keep: int,
            variants: list[tuple[str, int]], seed: int) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    df, static = data["df"], data["static_df"]
    rng = np.random.default_rng(seed)
    hists, futrs, stats, truth = [], [], [], []
    futr_cols = ["unique_id", "ds", *exog["futr"]]
    for c in origins:
        hist = df[(df["ds"] <= c) & (df["ds"] > c - keep)]
        fut = df[(df["ds"] > c) & (df["ds"] <= c + h)]
        for f, r in variants:
            vid = f"#{c}#{f}#{r}"
            hp = hist.assign(unique_id=hist["unique_id"] + vid)
            fp = fut[futr_cols].assign(unique_id=fut["unique_id"] + vid)
            hists.append(hp)
            futrs.append(fp)
            if len(static):
                stats.append(static.assign(unique_id=static["unique_id"] + vid))
        truth.append(fut[["unique_id", "ds", "y"]].assign(origin=c))
    H, F = pd.concat(hists, ignore_index=True), pd.concat(futrs, ignore_index=True)
    S = pd.concat(stats, ignore_index=True) if stats else pd.DataFrame()
    # shuffle one feature per variant, across all origins' rows of that variant
    for f, r in variants[1:]:
        tag = H["unique_id"].str.contains(f"#{f}#{r}$", regex=True)
        ftag = F["unique_id"].str.contains(f"#{f}#{r}$", regex=True)
        if f in H.columns:
            H.loc[tag, f] = rng.permutation(H.loc[tag, f].to_numpy())
        if f in F.columns:
            F.loc[ftag, f] = rng.permutation(F.loc[ftag, f].to_numpy())
        if len(S) and f in S.columns:
            stag = S["unique_id"].str.contains(f"#{f}#{r}$", regex=True)
            S.loc[stag, f] = rng.permutation(S.loc[stag, f].to_numpy())
    return H, F, S, pd.concat(truth, ignore_index=True)


def _predict(nf: Any, H: pd.DataFrame, F: pd.DataFrame, S: pd.DataFrame, exog: dict[str, list[str]],
             multivariate: bool) -> pd.DataFrame:
    kw: dict[str, Any] = {}
    if exog["futr"]:
        kw["futr_df"] = F
    if exog["stat"]:
        kw["static_df"] = S
    if not multivariate:
        out = nf.predict(df=H, **kw)
        return out.reset_index() if "unique_id" not in out.columns else out
    parts = []
    for vid in sorted({u.split("#", 1)[1] for u in H["unique_id"]}):
        sel = lambda d: d[d["unique_id"].str.endswith("#" + vid)] if len(d) else d  # noqa: E731
        k2 = {k: sel(v) for k, v in kw.items()}
        out = nf.predict(df=sel(H), **k2)
        parts.append(out.reset_index() if "unique_id" not in out.columns else out)
    return pd.concat(parts, ignore_index=True)


def integrated_gradients(nf: Any, H: pd.DataFrame, F: pd.DataFrame, S: pd.DataFrame, exog: dict[str, list[str]],
                         model_name: str) -> Optional[tuple[pd.DataFrame, pd.DataFrame]]:
    """(importance per feature, per-time attributions) from ``NeuralForecast.explain`` on the unshuffled variant of
    the origin frames (``_frames``); None without captum."""
    try:
        import captum  # noqa: F401
    except ImportError:
        return None
    import warnings

    base = BASE_ID
    H, F = H[H["unique_id"].str.endswith(base)], F[F["unique_id"].str.endswith(base)]
    S = S[S["unique_id"].str.endswith(base)] if len(S) else S
    kw: dict[str, Any] = {}
    if exog["futr"]:
        kw["futr_df"] = F
    if exog["stat"]:
        kw["static_df"] = S
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fc, ex = nf.explain(df=H, verbose=False, **kw)
    e = ex[model_name]
    fc = fc.reset_index() if "unique_id" not in fc.columns else fc
    ids = list(dict.fromkeys(fc["unique_id"]))  # the explainer's series order = the forecast's
    imp: dict[str, float] = {}
    rows: list[pd.DataFrame] = []

    def add(arr: Any, names: list[str], has_time: bool) -> None:
        a = np.abs(np.asarray(arr, dtype="float64"))  # (series, horizon, 1, outputs, features[, time])
        per_series = a.sum(axis=-1) if has_time else a  # summed over the input window
        for j, f in enumerate(names):
            imp[f] = float(per_series[..., j].mean())
        if has_time:
            t = a.mean(axis=(1, 2, 3))  # (series, features, time)
            for j, f in enumerate(names):
                frame = pd.DataFrame(t[:, j, :], index=ids)
                frame.columns = range(-frame.shape[1] + 1, 1) if frame.shape[1] else []
                long = frame.stack().rename("attribution").rename_axis(["vid", "lag"]).reset_index()
                rows.append(long.assign(feature=f))

    if e.get("insample") is not None:
        add(np.asarray(e["insample"])[..., 0][..., None, :], ["insample_y"], True)
    if exog["hist"] and e.get("hist_exog") is not None:
        add(e["hist_exog"], exog["hist"], True)
    if exog["futr"] and e.get("futr_exog") is not None:
        add(e["futr_exog"], exog["futr"], True)
    if exog["stat"] and e.get("stat_exog") is not None:
        add(e["stat_exog"], exog["stat"], False)
    importance = pd.DataFrame({"feature": list(imp), "importance": list(imp.values()), "importance_std": np.nan})
    per = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=["vid", "lag", "attribution", "feature"])
    parts = per["vid"].str.split("#", expand=True)
    per = per.assign(unique_id=parts[0], origin_draw_no=parts[1].astype(int))
    # lag 0 of a futr_ feature is the forecast draw (origin + 1); of a hist_ feature / y the origin itself
    shift = per["feature"].isin(exog["futr"]).astype(int)
    per["draw_no"] = per["origin_draw_no"] + per["lag"] + shift
    return importance, per.drop(columns=["vid"])


def explain(engine: Engine, model_id: int, windows: Optional[int] = None, repeats: Optional[int] = None,
            seed: int = 0, root: Optional[str] = None) -> dict[str, Any]:
    """Permutation importance of every exogenous feature of the model's current version -> model_xai rows and the
    per-time attributions -> gold/xai (this model's earlier rows replaced)."""
    import logging

    from neuralforecast import NeuralForecast

    for name in ("pytorch_lightning", "lightning", "lightning.pytorch", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    row = get_model(engine, model_id)
    if not row.version or not row.artifact_uri:
        raise ValueError(f"model {model_id} has no trained version: materialize trained_models first")
    sel = selector_by_id(engine, row.selector_id)
    data = check_features(engine, row, sel)
    exog = exog_of(row)
    cfg = (row.metrics or {}).get("xai") or {}
    windows = int(windows or cfg.get("windows") or 20)
    repeats = int(repeats or cfg.get("repeats") or 2)
    multivariate = row.series_mode == "multivariate_joint"
    if multivariate:
        windows = min(windows, 5)
    nf = NeuralForecast.load(path=row.artifact_uri)
    for m in nf.models:
        m.trainer_kwargs.update({"enable_progress_bar": False, "logger": False, "enable_model_summary": False,
                                 "accelerator": "cpu"})
        m.batch_size = max(int(getattr(m, "batch_size", 32)), 1024)  # inference only: fewer, larger batches
    model = nf.models[0]
    h, input_size = int(model.h), int(model.input_size)
    ds = np.sort(data["df"]["ds"].unique())
    origins = [int(c) for c in ds[-(windows + h):-h]] if len(ds) > windows + h else []
    if not origins:
        raise ValueError(f"{sel.key}: the history is too short for {windows} attribution windows")
    variants = _variants(exog, repeats)
    H, F, S, truth = _frames(data, exog, origins, h, max(2 * input_size, 32), variants, seed)
    col = _model_name(row)
    pred = _predict(nf, H, F, S, exog, multivariate).rename(columns={col: "y_hat"})
    parts = pred["unique_id"].str.split("#", expand=True)
    pred = pred.assign(series=parts[0], origin=parts[1].astype(int), feature=parts[2], rep=parts[3].astype(int))
    pred = pred.merge(truth.rename(columns={"unique_id": "series"}), on=["series", "ds", "origin"], how="inner")
    pred["abs_err"] = (pred["y_hat"] - pred["y"]).abs()
    base = pred[pred["feature"] == "__base__"][["series", "ds", "origin", "y_hat", "abs_err"]]
    base_mae = float(base["abs_err"].mean())
    perm = pred[pred["feature"] != "__base__"].merge(base, on=["series", "ds", "origin"], suffixes=("", "_base"))
    perm["attribution"] = (perm["y_hat"] - perm["y_hat_base"]).abs()
    by_rep = perm.groupby(["feature", "rep"])["abs_err"].mean() - base_mae
    imp = by_rep.groupby("feature").agg(["mean", "std"]).reset_index()
    group = {f: g for g, cols in exog.items() for f in cols}
    rows = [ModelXai(model_id=row.model_id, version=row.version, feature_name=r.feature, importance=float(r["mean"]),
                     importance_std=None if pd.isna(r["std"]) else float(r["std"]), method=METHOD,
                     detail={"group": group.get(r.feature), "windows": len(origins), "repeats": repeats,
                             "base_mae": base_mae, "h": h})
            for _, r in imp.iterrows()]
    ig = None if multivariate else integrated_gradients(nf, H, F, S, exog, col)
    if ig is not None:
        rows += [ModelXai(model_id=row.model_id, version=row.version, feature_name=r.feature,
                          importance=float(r.importance), method=IG,
                          detail={"group": group.get(r.feature, "target"), "windows": len(origins),
                                  "explainer": "captum IntegratedGradients via NeuralForecast.explain",
                                  "unit": "mean |attribution| of the forecast, summed over the input window"})
                 for r in ig[0].itertuples()]
    with Session(engine) as s:
        s.exec(delete(ModelXai).where(ModelXai.model_id == row.model_id, ModelXai.version == row.version))  # type: ignore[call-overload]
        s.add_all(rows)
        s.commit()
    per_time = (perm.groupby(["series", "origin", "ds", "feature"], as_index=False)
                .agg(attribution=("attribution", "mean"), y_hat_base=("y_hat_base", "first"), y=("y", "first"))
                .rename(columns={"series": "unique_id", "origin": "origin_draw_no", "ds": "draw_no"}))
    per_time = per_time.assign(method=METHOD, lag=np.nan)
    if ig is not None:
        per_time = pd.concat([per_time, ig[1].assign(method=IG)], ignore_index=True)
    per_time = per_time.assign(model_id=int(row.model_id), version=int(row.version), selector=sel.name)  # type: ignore[arg-type]
    uri = xai_uri(sel.game, root)
    dv = replace_model_rows(uri, per_time, int(row.model_id))  # type: ignore[arg-type]
    table = imp.rename(columns={"mean": "importance", "std": "importance_std"}).sort_values("importance",
                                                                                          ascending=False)
    ig_table = None if ig is None else ig[0].sort_values("importance", ascending=False).reset_index(drop=True)
    return {"model_id": row.model_id, "key": sel.key, "version": row.version, "method": METHOD,
            "importance": table.reset_index(drop=True), "base_mae": base_mae, "windows": len(origins),
            "integrated_gradients": ig_table,
            "uri": uri, "delta_version": dv, "attributions": len(per_time)}
