"""Models stage: one ``model`` partition per game x selector (``loto6.N1`` .. ``loto6.N6``, ``loto6.ALL``), kept in
step with model_series_selector by ``model_selectors`` and ``model_partitions_sensor``.

``trained_models`` registers (first time: model choice from the registry and the compat matrix) and trains the
selector's model through a validated run plan (CV vs baselines, fit, versioned NeuralForecast.save); later
materializations retrain from the model_registry row alone. ``predictions``, ``model_evaluation`` and
``model_xai`` read the current version.
"""

from typing import Optional

import dagster as dg
from sqlalchemy import text

from fcast_assets.db.model_models import ModelRegistry, ModelSeriesSelector, ModelXai
from fcast_assets.defs.compat.assets import compat_matrix
from fcast_assets.defs.features.assets import gold_features, gold_futr, gold_static
from fcast_assets.defs.lake.assets import lottery_games
from fcast_assets.defs.metadata import (arrow_schema, image_metadata, log_progress, sql_table_schema,
                                         table_metadata)
from fcast_assets.defs.resources import Lake, MetadataDB

GROUP = "models"
model_partitions = dg.DynamicPartitionsDefinition(name="model")
ALL_UPSTREAM = dg.AllPartitionMapping()  # a model partition reads its game's gold tables (every game's, to Dagster)


class TrainConfig(dg.Config):
    max_steps: Optional[int] = None
    """Training steps; applies when the model is registered (first training) or with ``reconfigure``."""
    n_windows: Optional[int] = None
    """Cross-validation windows; same rule as max_steps."""
    reconfigure: bool = False
    """Re-choose the model from models.yaml (new registry settings) instead of retraining the stored row."""


def _overrides(config: TrainConfig) -> dict:
    out: dict = {}
    if config.max_steps:
        out["hyperparams"] = {"max_steps": config.max_steps}
    if config.n_windows:
        out["cv"] = {"n_windows": config.n_windows}
    return out


def _image(key: str, path: Optional[str], title: str) -> dict:
    return image_metadata(key, path, title) if path else {key: dg.MetadataValue.md("(no plot)")}


def _schema(df) -> dg.TableSchema:  # noqa: ANN001
    import pyarrow as pa

    return arrow_schema(pa.Schema.from_pandas(df, preserve_index=False))


def _model_id(engine, key: str) -> int:
    from fcast_assets.models.selectors import split_key
    from fcast_assets.models.train import find_model

    game, sel = split_key(key)
    row = find_model(engine, game, sel)
    if row is None or not row.version:
        raise dg.Failure(f"{key} has no trained model: materialize trained_models for this partition first")
    return int(row.model_id)  # type: ignore[arg-type]


@dg.asset(
    deps=[lottery_games], group_name=GROUP, kinds={"python", "sqlite", "postgres"}, owners=["team:fcast"],
    description="model_series_selector rows: per active game one selector per main slot (N1..Nk) and ALL; each is "
    "a `model` partition `<game>.<selector>` (loto6: 6 + 1 = 7).",
)
def model_selectors(context: dg.AssetExecutionContext, meta_db: MetadataDB) -> dg.MaterializeResult:
    import pandas as pd

    from fcast_assets.defs.partitions import partition_changes
    from fcast_assets.lake import games as G
    from fcast_assets.models.selectors import seed_selectors

    eng = meta_db.engine()
    sels = [s for spec in G.list_games(eng, active_only=True) for s in seed_selectors(eng, spec)]
    keys = [s.key for s in sels]
    known = set(context.instance.get_dynamic_partitions(model_partitions.name))
    new = partition_changes(keys, known)[0]
    if new:
        context.instance.add_dynamic_partitions(model_partitions.name, new)
    df = pd.DataFrame([{"partition": s.key, "game": s.game, "selector": s.name, "unique_ids": ", ".join(s.unique_ids)}
                       for s in sels])
    return dg.MaterializeResult(metadata={
        **table_metadata(len(sels), sql_table_schema(ModelSeriesSelector.__table__), df, 60),  # type: ignore[attr-defined]
        "partitions_added": len(new),
    })


@dg.asset(
    partitions_def=model_partitions,
    deps=[model_selectors, compat_matrix,
          *(dg.AssetDep(a, partition_mapping=ALL_UPSTREAM) for a in (gold_features, gold_static, gold_futr))],
    group_name=GROUP, kinds={"pytorch", "sqlite", "postgres"}, owners=["team:fcast"],
    description="The selector's model trained through a validated run plan: cross_validation evaluated against "
    "Naive / HistoricAverage / uniform random draws, fit, NeuralForecast.save to a versioned folder. The first "
    "materialization registers the model (model_registry: class, hyperparameters, hist/futr/stat exogenous lists "
    "chosen from registry capabilities and passing compat cells); later ones retrain from that row and add a "
    "model_version, keeping the old one.",
)
def trained_models(context: dg.AssetExecutionContext, config: TrainConfig, meta_db: MetadataDB, lake: Lake
                   ) -> dg.MaterializeResult:
    from fcast_assets.models.evaluation import comparison_wide
    from fcast_assets.models.selectors import split_key
    from fcast_assets.models.train import get_model, model_table, train

    from fcast_assets.models.choose import ModelChoiceError
    from fcast_assets.plans.gold_data import GoldDataError

    eng = meta_db.engine()
    game, sel = split_key(context.partition_key)
    try:
        res = train(eng, game, sel, overrides=_overrides(config) or None, reconfigure=config.reconfigure,
                    progress=log_progress(context, f"training {context.partition_key}: plan steps"),
                    root=lake.root_uri())
    except (LookupError, ModelChoiceError, GoldDataError) as e:
        if isinstance(e, (KeyError, IndexError)):
            raise  # a defect, with its traceback
        # a missing prerequisite (no registry scan, no selectors, no gold tables, no passing compat cell): the one
        # line saying what to materialize first is the failure's message, not a line under a stack trace
        raise dg.Failure(description=str(e), allow_retries=False) from None
    row = get_model(eng, res["model_id"])
    with eng.connect() as conn:
        r = conn.execute(text("""SELECT SUM(wall_s) w, SUM(cpu_user_s) u, SUM(cpu_sys_s) s, MAX(max_rss_mb) rss,
                                 MAX(max_vram_mb) vram, SUM(io_read_mb) rd, SUM(io_write_mb) wr, MAX(device) dev
                                 FROM run_resource WHERE execution_id = :e"""), {"e": res["execution_id"]}).first()
    comp = comparison_wide(eng, res["model_id"])
    return dg.MaterializeResult(metadata={
        "model_id": res["model_id"], "version": res["version"], "model_class": row.model_class,
        "series_mode": row.series_mode, "n_series": row.n_series,
        "hist_exog": ", ".join(row.hist_exog or []) or "none", "futr_exog": ", ".join(row.futr_exog or []) or "none",
        "stat_exog": ", ".join(row.stat_exog or []) or "none",
        "artifact_uri": dg.MetadataValue.path(res["artifact_uri"]), "train_rows": res["train_rows"],
        "beats_baselines": str(res["beats_baselines"]),
        "cv_vs_baselines": dg.MetadataValue.md(comp.to_markdown(index=False) if not comp.empty else "none"),
        "choice_notes": dg.MetadataValue.md("\n".join(f"- {n}" for n in row.notes or []) or "none"),
        "wall_s": float(r.w or 0), "cpu_s": float((r.u or 0) + (r.s or 0)), "max_rss_mb": float(r.rss or 0),
        "max_vram_mb": "n/a (no GPU)" if r.vram is None else float(r.vram), "device": r.dev or "",
        "io_read_mb": float(r.rd or 0), "io_write_mb": float(r.wr or 0),
        "plan": res["plan"], "execution_id": res["execution_id"],
        **table_metadata(1, sql_table_schema(ModelRegistry.__table__),  # type: ignore[attr-defined]
                         model_table(eng).query("model_id == @res['model_id']")),
    })


@dg.asset(
    partitions_def=model_partitions, deps=[trained_models], group_name=GROUP, kinds={"pytorch", "delta"},
    owners=["team:fcast"],
    description="Forecast of the next h draws by the current model version (a load + predict run plan on the "
    "current gold tables), in the game's gold/predictions Delta table (unique_id, draw_no, step, y_hat, model_id, "
    "version).",
)
def predictions(context: dg.AssetExecutionContext, meta_db: MetadataDB, lake: Lake) -> dg.MaterializeResult:
    from fcast_assets.models.train import predict

    eng = meta_db.engine()
    res = predict(eng, _model_id(eng, context.partition_key), root=lake.root_uri())
    df = res["frame"]
    return dg.MaterializeResult(metadata={
        **table_metadata(res["rows"], _schema(df), df),
        "uri": dg.MetadataValue.path(res["uri"]), "delta_version": res["delta_version"],
        "model_version": res["version"],
    })


@dg.asset(
    partitions_def=model_partitions, deps=[trained_models], group_name=GROUP, kinds={"pandas", "sqlite", "postgres"},
    owners=["team:fcast"],
    description="CV accuracy of the current model version against the baselines (mae / rmse / smape from "
    "run_metric) and a forecast-vs-actual plot of the CV windows.",
)
def model_evaluation(context: dg.AssetExecutionContext, meta_db: MetadataDB, lake: Lake) -> dg.MaterializeResult:
    from fcast_assets.models.evaluation import comparison, comparison_wide, latest_version, plot_forecasts, plot_path
    from fcast_assets.models.selectors import split_key

    eng = meta_db.engine()
    mid = _model_id(eng, context.partition_key)
    game, sel = split_key(context.partition_key)
    long = comparison(eng, mid)
    png = plot_forecasts(eng, mid, plot_path(game, sel, "cv_forecasts", root=lake.root_uri()))
    mv = latest_version(eng, mid)
    return dg.MaterializeResult(metadata={
        **table_metadata(len(long), _schema(long), long),
        "cv_vs_baselines": dg.MetadataValue.md(comparison_wide(eng, mid).to_markdown(index=False)),
        "beats_baselines": str(mv.beats_baselines if mv else None), "version": mv.version if mv else 0,
        **_image("forecast_vs_actual", png, "CV forecasts vs actual"),
    })


@dg.asset(
    partitions_def=model_partitions, deps=[trained_models], group_name=GROUP,
    kinds={"pytorch", "delta", "sqlite", "postgres"}, owners=["team:fcast"],
    description="Feature importance of the current model version in model_xai, two methods: neuralforecast's "
    "NeuralForecast.explain (captum integrated gradients; univariate models) and permutation importance (MAE "
    "increase on the last CV windows when one exogenous feature is shuffled); per-time attributions of both in the "
    "game's gold/xai Delta table.",
)
def model_xai(context: dg.AssetExecutionContext, meta_db: MetadataDB, lake: Lake) -> dg.MaterializeResult:
    from fcast_assets.models.evaluation import plot_importance, plot_path
    from fcast_assets.models.selectors import split_key
    from fcast_assets.models.xai import explain

    eng = meta_db.engine()
    game, sel = split_key(context.partition_key)
    res = explain(eng, _model_id(eng, context.partition_key), root=lake.root_uri())
    imp = res["importance"]
    png = plot_importance(imp, plot_path(game, sel, "importance", root=lake.root_uri()),
                          f"{context.partition_key}: permutation importance")
    return dg.MaterializeResult(metadata={
        **table_metadata(len(imp), sql_table_schema(ModelXai.__table__), imp, 30),  # type: ignore[attr-defined]
        "integrated_gradients": dg.MetadataValue.md(
            res["integrated_gradients"].to_markdown(index=False) if res["integrated_gradients"] is not None
            else "not available (multivariate model, or captum missing)"),
        "methods": "permutation" + (", integrated_gradients" if res["integrated_gradients"] is not None else ""),
        "windows": res["windows"],
        "base_mae": res["base_mae"], "attributions": res["attributions"], "uri": dg.MetadataValue.path(res["uri"]),
        **_image("importance_plot", png, "permutation importance"),
    })


model_refresh_job = dg.define_asset_job(
    "model_refresh_job", selection=[trained_models, predictions, model_evaluation, model_xai],
    partitions_def=model_partitions,
    description="Train (or retrain from the registry row) one model partition, then predict, evaluate, explain.",
)
