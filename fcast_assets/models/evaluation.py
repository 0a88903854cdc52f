"""Model evaluation against the baselines (from the training's CV metrics in run_metric / model_version) and the
forecast-vs-actual plot of the CV windows; the list of models that need retraining (new draws, a new library
release) for the scrape-and-retrain sensor."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import pandas as pd
from sqlalchemy import Engine, text
from sqlmodel import Session, select

from ..db.model_models import ModelVersion
from .train import _artifact, _model_name, get_model


def latest_version(engine: Engine, model_id: int) -> Optional[ModelVersion]:
    with Session(engine) as s:
        mv = s.exec(select(ModelVersion).where(ModelVersion.model_id == model_id)
                    .order_by(ModelVersion.version.desc())).first()  # type: ignore[attr-defined]
        if mv is not None:
            s.expunge(mv)
        return mv


def comparison(engine: Engine, model_id: int) -> pd.DataFrame:
    """One row per forecast column (the model and each baseline) x metric of the current version's CV; columns
    model, is_baseline, metric, value, rank (1 = best on that metric)."""
    row = get_model(engine, model_id)
    mv = latest_version(engine, model_id)
    if mv is None:
        return pd.DataFrame(columns=["model", "is_baseline", "metric", "value", "rank"])
    name = _model_name(row)
    recs = [{"model": m, "is_baseline": m != name, "metric": k, "value": v}
            for m, ms in (mv.cv_metrics or {}).items() for k, v in ms.items()]
    df = pd.DataFrame(recs)
    df["rank"] = df.groupby("metric")["value"].rank(method="min").astype(int)
    return df.sort_values(["metric", "rank"]).reset_index(drop=True)


def comparison_wide(engine: Engine, model_id: int) -> pd.DataFrame:
    df = comparison(engine, model_id)
    if df.empty:
        return df
    return df.pivot_table(index="model", columns="metric", values="value").reset_index()


def plot_forecasts(engine: Engine, model_id: int, path: str | Path, max_series: int = 4) -> Optional[str]:
    """PNG of the CV windows: actual draws vs the model and the baselines, one panel per series."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    row = get_model(engine, model_id)
    mv = latest_version(engine, model_id)
    if mv is None or mv.execution_id is None:
        return None
    src = _artifact(engine, mv.execution_id, "forecasts_with_baselines")
    if not src or not Path(src).exists():
        return None
    fc = pd.read_parquet(src)
    cols = [c for c in fc.columns if c not in ("unique_id", "ds", "cutoff", "y")]
    ids = list(dict.fromkeys(fc["unique_id"]))[:max_series]
    fig, axes = plt.subplots(len(ids), 1, figsize=(7, 2.0 * len(ids)), squeeze=False, dpi=80)
    for ax, uid in zip(axes[:, 0], ids):
        part = fc[fc["unique_id"] == uid].sort_values("ds")
        ax.plot(part["ds"], part["y"], "k.-", label="actual", linewidth=1)
        for c in cols:
            ax.plot(part["ds"], part[c], linewidth=2 if c == _model_name(row) else 1, label=c,
                    alpha=1 if c == _model_name(row) else 0.6)
        ax.set_title(f"{uid}: CV forecasts vs actual (draw number)", fontsize=9)
        if pd.api.types.is_integer_dtype(part["ds"]):  # draw numbers: whole ticks, never 1234.5
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0, 0].legend(fontsize=7, ncol=3, loc="upper left")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return str(path)


def plot_importance(imp: pd.DataFrame, path: str | Path, title: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    imp = imp.sort_values("importance")
    fig, ax = plt.subplots(figsize=(6, 0.3 * len(imp) + 1), dpi=80)
    ax.barh(imp["feature"], imp["importance"], xerr=imp["importance_std"].fillna(0))
    ax.axvline(0, color="k", linewidth=0.5)
    ax.set_xlabel("MAE increase when shuffled")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return str(path)


def plot_path(game: str, selector: str, name: str, root: Optional[str] = None) -> str:
    from .. import config

    return str(Path(root or config.lake_root()) / "plots" / "models" / game / f"{selector}_{name}.png")


def overview(engine: Engine, game: Optional[str] = None) -> pd.DataFrame:
    """Every trained model's current version: CV MAE / RMSE of the model and the best baseline, beats or not."""
    sql = """SELECT g.code AS game, s.name AS selector, m.model_id, m.model_class, m.series_mode, v.version,
                    v.cv_metrics, v.beats_baselines, v.train_rows, v.created_at
             FROM model_registry m JOIN model_series_selector s ON s.selector_id = m.selector_id
             JOIN dataset_game g ON g.game_id = m.game_id
             JOIN model_version v ON v.model_id = m.model_id AND v.version = m.version""" + \
        (" WHERE g.code = :g" if game else "") + " ORDER BY m.model_id"
    from ..db.models import JSONType

    with engine.connect() as conn:
        rows = conn.execute(text(sql).columns(cv_metrics=JSONType), {"g": game} if game else {}).all()
    out = []
    for r in rows:
        name = str(r.model_class).rsplit(".", 1)[-1]
        ms = r.cv_metrics or {}
        rec: dict[str, Any] = {"game": r.game, "selector": r.selector, "model_id": r.model_id, "model": name,
                               "series_mode": r.series_mode, "version": r.version, "train_rows": r.train_rows}
        for metric in ("mae", "rmse"):
            base = {b: v[metric] for b, v in ms.items() if b != name and v.get(metric) is not None}
            rec[f"{metric}_model"] = (ms.get(name) or {}).get(metric)
            if base:
                best = min(base, key=base.get)
                rec[f"{metric}_best_baseline"], rec[f"{metric}_baseline"] = base[best], best
        rec["beats_baselines"] = r.beats_baselines
        out.append(rec)
    return pd.DataFrame(out)


# --------------------------------------------------------------------------------------------- staleness
def stale_models(engine: Engine) -> list[dict[str, Any]]:
    """Trained models of active games that need a new version: the game's latest silver differs from the data the
    model was trained on (its source hash: new draws) AND gold features were rebuilt after that silver version,
    or the library has a
    newer scanned release than the one the model was trained with. One dict per model: key, model_id, reason,
    and a token that changes with the cause (a run key)."""
    sql = """
        SELECT m.model_id, s.partition_key, m.library, v.dataset_version_id AS trained_dv,
               v.feature_materialization_id AS trained_fm, v.release_id AS trained_release,
               (SELECT MAX(dv.dataset_version_id) FROM dataset_version dv
                 WHERE dv.game_id = m.game_id AND dv.layer = 'silver') AS silver_dv,
               (SELECT t.source_hash FROM dataset_version t WHERE t.dataset_version_id = v.dataset_version_id)
                 AS trained_hash,
               (SELECT dv.source_hash FROM dataset_version dv WHERE dv.game_id = m.game_id AND dv.layer = 'silver'
                 ORDER BY dv.dataset_version_id DESC LIMIT 1) AS silver_hash,
               (SELECT MAX(fm.materialization_id) FROM feature_materialization fm
                 WHERE fm.game_id = m.game_id AND fm.table_name = 'gold_features') AS latest_fm,
               (SELECT MAX(fm.created_at) FROM feature_materialization fm
                 WHERE fm.game_id = m.game_id AND fm.table_name = 'gold_features') AS latest_fm_at,
               (SELECT MAX(dv.created_at) FROM dataset_version dv
                 WHERE dv.game_id = m.game_id AND dv.layer = 'silver') AS silver_at,
               (SELECT MAX(r.release_id) FROM registry_release r JOIN registry_library l
                  ON l.library_id = r.library_id WHERE l.name = m.library) AS latest_release
        FROM model_registry m
        JOIN model_series_selector s ON s.selector_id = m.selector_id
        JOIN dataset_game g ON g.game_id = m.game_id AND g.active
        JOIN model_version v ON v.model_id = m.model_id AND v.version = m.version
        WHERE m.status = 'trained'"""
    with engine.connect() as conn:
        rows = conn.execute(text(sql)).all()
    out = []
    for r in rows:
        reasons = []
        if r.silver_dv is not None and (r.trained_dv is None or r.silver_hash != r.trained_hash) \
                and r.latest_fm is not None and (r.trained_fm is None or r.latest_fm > r.trained_fm) \
                and _ts(r.latest_fm_at) >= _ts(r.silver_at):
            reasons.append(("new draws", f"dv{r.silver_dv}-fm{r.latest_fm}"))
        if r.latest_release is not None and r.trained_release is not None and r.latest_release > r.trained_release:
            reasons.append((f"new {r.library} release", f"rel{r.latest_release}"))
        if reasons:
            out.append({"model_id": r.model_id, "key": r.partition_key, "reason": " + ".join(x for x, _ in reasons),
                        "token": "-".join(t for _, t in reasons)})
    return out


def _ts(v: Any) -> pd.Timestamp:
    t = pd.Timestamp(v)
    return t.tz_convert(None) if t.tzinfo is not None else t
