"""Features stage: gold Delta tables per ``game`` partition, built from the raw slot series of silver.

``anomaly_features`` -> ``gold/anomaly`` (hist_anom_*); ``embeddings`` -> ``gold/embeddings`` (+ hist_emb_* by PCA)
only where a model is configured; ``gold_features`` (hist_ + fut_ on history rows), ``gold_static`` (stat_),
``gold_futr`` (fut_ on every step of the horizon). Generators are data (``fcast_assets/features/generators.yaml``
-> feature_generator / feature_def); each write records a feature_materialization row. The tables are written by
``fcast_assets.features.gold`` under the ``lake`` resource's root, one Delta table per game
(``gold/<table>/game=<code>``, read by the plan runner at that path): not through dagster-deltalake-pandas' IO
manager, whose partitioned table (one ``_delta_log`` above a ``game`` column) is another layout (see
:mod:`fcast_assets.defs.resources`).
"""

from typing import Any, Optional

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow as pa
from sqlmodel import Session, select

from fcast_assets.db.feature_models import FeatureDef
from fcast_assets.defs.lake.assets import game_partitions, silver_series
from fcast_assets.defs.metadata import log_progress, preview
from fcast_assets.defs.resources import Lake, MetadataDB
from fcast_assets.features import gold
from fcast_assets.lake import games as G

GROUP = "features"
# re-materialized when silver (or another upstream) changes, one game partition at a time
REMATERIALIZE = dg.AutomationCondition.eager()
KINDS = {"delta", "pandas"}


class HorizonConfig(dg.Config):
    h: int = gold.DEFAULT_H
    """Forecast horizon (draws) the future rows cover."""


class StaticConfig(dg.Config):
    cutoff: Optional[int] = None
    """Training cutoff (draw_no, inclusive) of the historical moments; None: every draw."""


class EmbeddingsConfig(dg.Config):
    chronos_model: Optional[str] = None
    """Local path or hub id of a Chronos-2 / Chronos-Bolt model; None: FCAST_CHRONOS_MODEL."""
    timesfm_model: Optional[str] = None
    """Local path or hub id of a TimesFM 3 model; None: FCAST_TIMESFM_MODEL."""
    context: int = 64
    stride: int = 50
    n_components: int = 4


def _type(t: pa.DataType) -> str:
    return str(t)


def _narrow(df: pd.DataFrame, cols: int = 12) -> pd.DataFrame:
    """The first ``cols`` columns of the latest rows, list cells (embeddings) shown as their length."""
    out = df.iloc[-10:, :cols].copy()
    for c in out.columns:
        if out[c].map(lambda v: isinstance(v, (list, tuple, np.ndarray))).any():
            out[c] = out[c].map(lambda v: f"[{len(v)} values]" if isinstance(v, (list, tuple, np.ndarray)) else v)
    return out


def _meta(res: dict[str, Any], spec: G.GameSpec) -> dict[str, Any]:
    schema: pa.Schema = res["schema"]
    nulls = res.get("null_rates") or {}
    top = sorted(nulls.items(), key=lambda kv: -kv[1])[:15]
    return {
        "game": spec.code,
        "dagster/row_count": res["rows"],
        "dagster/column_schema": dg.TableSchema(columns=[dg.TableColumn(f.name, _type(f.type)) for f in schema]),
        "preview": preview(_narrow(res["frame"])) if res.get("frame") is not None else dg.MetadataValue.md("-"),
        "features": res["features"],
        "features_per_group": dg.MetadataValue.json(res.get("per_group") or {}),
        "null_rates": dg.MetadataValue.md("| feature | null rate |\n|---|---|\n"
                                          + "\n".join(f"| {k} | {v:.4f} |" for k, v in top)),
        "max_null_rate": max(nulls.values()) if nulls else 0.0,
        "dataset_version_id": res.get("dataset_version_id"),
        "materialization_id": res["materialization_id"],
        "delta_version": res["delta_version"],
        "lake_uri": dg.MetadataValue.path(res["uri"]),
    }


def _undefined(meta_db: MetadataDB, cols: list[str]) -> list[str]:
    with Session(meta_db.engine()) as s:
        known = {f.name for f in s.exec(select(FeatureDef).where(FeatureDef.name.in_(cols)))}  # type: ignore[attr-defined]
    return [c for c in cols if c not in known]


@dg.asset(
    automation_condition=REMATERIALIZE,
    partitions_def=game_partitions, deps=[silver_series], group_name=GROUP, kinds=KINDS, owners=["team:fcast"],
    description="Unsupervised anomaly features of every raw slot series (hist_anom_*): a rolling z-score of the "
    "previous draw and an IsolationForest score on past-only windows (refitted per block on earlier windows), each "
    "with a flag. Delta gold/anomaly.",
)
def anomaly_features(context: dg.AssetExecutionContext, meta_db: MetadataDB, lake: Lake) -> dg.MaterializeResult:
    eng = meta_db.engine()
    spec = G.get_game(eng, context.partition_key)
    return dg.MaterializeResult(metadata=_meta(gold.build_anomaly(eng, spec, root=lake.root_uri()), spec))


@dg.asset(
    automation_condition=REMATERIALIZE,
    partitions_def=game_partitions, deps=[silver_series], group_name=GROUP, kinds={"delta", "pytorch"},
    owners=["team:fcast"],
    check_specs=[dg.AssetCheckSpec("model_configured", asset="embeddings",
                                   description="a foundation model is configured, so the embeddings exist (a WARN "
                                   "when none is: the asset is then an empty step, not a result)")],
    description="Window embeddings of every raw slot series from Chronos (-2 / -Bolt) and TimesFM 3 (array "
    "columns, Delta gold/embeddings) and their PCA as hist_emb_* (gold/emb_features, as of the previous draw). "
    "Only where a model is configured (FCAST_CHRONOS_MODEL / FCAST_TIMESFM_MODEL: local path or hub id).",
)
def embeddings(context: dg.AssetExecutionContext, config: EmbeddingsConfig, meta_db: MetadataDB, lake: Lake):
    from fcast_assets.features.embeddings import configured_models

    eng = meta_db.engine()
    spec = G.get_game(eng, context.partition_key)
    models = configured_models()
    if config.chronos_model:
        models["chronos"] = config.chronos_model
    if config.timesfm_model:
        models["timesfm"] = config.timesfm_model
    res = gold.build_embeddings(eng, spec, root=lake.root_uri(), models=models, context=config.context,
                                stride=config.stride,
                                n_components=config.n_components, progress=log_progress(context, "embeddings"))
    if "skipped" in res:
        context.log.warning(res["skipped"])
        # still a materialization (gold_features depends on this step), flagged by a WARN check on the page
        yield dg.MaterializeResult(metadata={"game": spec.code, "status": res["skipped"]})
        yield dg.AssetCheckResult(check_name="model_configured", passed=False,
                                  severity=dg.AssetCheckSeverity.WARN, description=res["skipped"])
        return
    meta = _meta(res, spec)
    meta.update({"status": "ok", "models": dg.MetadataValue.json(res["models"]),
                 "pca_columns": ", ".join(res["pca_columns"])})
    yield dg.MaterializeResult(metadata=meta)
    yield dg.AssetCheckResult(check_name="model_configured", passed=True,
                              description=f"embeddings from {', '.join(sorted(res['models']))}")


@dg.asset(
    automation_condition=REMATERIALIZE,
    partitions_def=game_partitions, deps=[silver_series, anomaly_features, embeddings], group_name=GROUP,
    kinds=KINDS, owners=["team:fcast"],
    check_specs=[dg.AssetCheckSpec("features_defined", asset="gold_features",
                                   description="every column is a key, y, or a hist_/fut_ feature with a "
                                   "feature_def row")],
    description="History rows of every raw slot series: unique_id, ds, draw_no, y, hist_* (lags, rolling "
    "sum/mean/std/min/max, diff, cumsum, expanding stats, value counts, anomaly, embeddings PCA; all from draws "
    "before t) and fut_* (calendar of the draw, draw number, days since the previous draw). Delta gold/features.",
)
def gold_features(context: dg.AssetExecutionContext, config: HorizonConfig, meta_db: MetadataDB, lake: Lake):
    eng = meta_db.engine()
    spec = G.get_game(eng, context.partition_key)
    res = gold.build_features(eng, spec, root=lake.root_uri(), h=config.h)
    yield dg.MaterializeResult(metadata=_meta(res, spec))
    cols = [c for c in res["frame"].columns if c not in ("unique_id", "ds", "draw_no", "y")]
    bad = [c for c in cols if not c.startswith(("hist_", "fut_"))]
    undefined = _undefined(meta_db, cols)
    yield dg.AssetCheckResult(check_name="features_defined", asset_key="gold_features",
                              passed=not bad and not undefined,
                              metadata={"bad_prefix": ", ".join(bad) or "none",
                                        "no_feature_def": ", ".join(undefined) or "none"})


@dg.asset(
    automation_condition=REMATERIALIZE,
    partitions_def=game_partitions, deps=[silver_series], group_name=GROUP, kinds=KINDS, owners=["team:fcast"],
    description="One row per raw slot series: stat_* (slot index, bonus or main, the slot's number range, slot "
    "counts, historical mean / variance up to the training cutoff). Delta gold/static.",
)
def gold_static(context: dg.AssetExecutionContext, config: StaticConfig, meta_db: MetadataDB, lake: Lake):
    eng = meta_db.engine()
    spec = G.get_game(eng, context.partition_key)
    res = gold.build_static(eng, spec, root=lake.root_uri(), cutoff=config.cutoff)
    meta = _meta(res, spec)
    meta["cutoff_draw_no"] = res["cutoff_draw_no"]
    return dg.MaterializeResult(metadata=meta)


@dg.asset(
    automation_condition=REMATERIALIZE,
    partitions_def=game_partitions, deps=[silver_series], group_name=GROUP, kinds=KINDS, owners=["team:fcast"],
    check_specs=[dg.AssetCheckSpec("horizon_covered", asset="gold_futr",
                                   description="a row for every series and step of h, no missing fut_ value")],
    description="Future rows for every raw slot series and every step 1..h of the horizon: unique_id, ds (next "
    "draw dates on the game's draw weekdays), draw_no, step, fut_*. Delta gold/futr.",
)
def gold_futr(context: dg.AssetExecutionContext, config: HorizonConfig, meta_db: MetadataDB, lake: Lake):
    eng = meta_db.engine()
    spec = G.get_game(eng, context.partition_key)
    res = gold.build_futr(eng, spec, root=lake.root_uri(), h=config.h)
    meta = _meta(res, spec)
    meta["h"] = config.h
    yield dg.MaterializeResult(metadata=meta)
    gaps = res["horizon_gaps"]
    yield dg.AssetCheckResult(check_name="horizon_covered", asset_key="gold_futr", passed=not gaps,
                              metadata={"h": config.h, "problems": "; ".join(gaps) or "none"})


features_game_job = dg.define_asset_job(
    "features_game_job", selection=[anomaly_features, embeddings, gold_features, gold_static, gold_futr],
    description="Gold feature tables for one game partition.",
)
