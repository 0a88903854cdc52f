"""Lake stage: games table, bronze draws, silver series and the predictability profile, one ``game`` partition
per row of ``dataset_game`` (dynamic partitions kept in sync by ``game_partitions_sensor``).

Delta tables are written explicitly with delta-rs (``fcast_assets.lake``) under the ``lake`` resource's root (passed
as ``root=``): bronze is merged on ``draw_no``, silver is overwritten as a new table version; each materialization
records a ``dataset_version`` row. Why not dagster-deltalake-pandas' IO manager: see
:mod:`fcast_assets.defs.resources`.
"""

from typing import Optional

import dagster as dg
import pandas as pd
from dagster_pyspark import LazyPySparkResource

from fcast_assets.defs.lake.checks import (
    PROFILE_VERDICT,
    bronze_check_result,
    bronze_check_spec,
    profile_check_spec,
    silver_check_result,
    silver_check_spec,
)
from fcast_assets.db.dataset_models import DatasetGame, DatasetProfile
from fcast_assets.defs.metadata import delta_schema, image_metadata, sql_table_schema, table_metadata
from fcast_assets.defs.resources import Lake, MetadataDB
from fcast_assets.lake import deltaio, plots
from fcast_assets.lake import games as G
from fcast_assets.lake import pipeline
from fcast_assets.lake.silver import engine_name
from fcast_assets.lake.sources import SourceError, scraper_enabled

game_partitions = dg.DynamicPartitionsDefinition(name="game")

GROUP = "lake"


class BronzeConfig(dg.Config):
    scrape: Optional[bool] = None
    """Fetch draws newer than the newest known one from the official result files. None: ``FCAST_SCRAPER``."""
    overwrite_changed: bool = False
    """Accept a source's other numbers for a stored draw (default: keep the stored draw and record a
    ``source_disagreement`` DQ error, which holds silver back). A stored draw that breaks a rule is replaced by a
    re-delivered version that passes every rule without this flag."""
    max_new: int = 20


class SilverConfig(dg.Config):
    engine: Optional[str] = None
    """``pandas`` or ``spark``; None: ``FCAST_ENGINE`` (default pandas)."""


@dg.asset(
    group_name=GROUP,
    kinds={"python", "sqlite", "postgres"},
    owners=["team:fcast"],
    description="The games and their rules (dataset_game, dataset_game_slot, dataset_source), seeded from "
    "fcast_assets/lake/games.yaml; existing rows (user changes, deactivations) are kept. Registers every active "
    "game as a `game` partition.",
)
def lottery_games(context: dg.AssetExecutionContext, meta_db: MetadataDB) -> dg.MaterializeResult:
    eng = meta_db.engine()
    added = G.seed_games(eng)
    active = G.active_game_codes(eng)
    known = set(context.instance.get_dynamic_partitions(game_partitions.name))
    new = [c for c in active if c not in known]
    if new:
        context.instance.add_dynamic_partitions(game_partitions.name, new)
    games = G.list_games(eng)
    rows = pd.DataFrame([{"code": g.code, "name": g.name, "n_main": g.n_main, "n_bonus": g.n_bonus,
                          "number_min": g.number_min, "number_max": g.number_max, "active": g.active}
                         for g in games])
    return dg.MaterializeResult(metadata={
        **table_metadata(len(games), sql_table_schema(DatasetGame.__table__), rows, rows=50),
        "seeded": added, "active": active, "partitions_added": new,
        "games": dg.MetadataValue.md("\n".join(
            f"- `{g.code}` {g.name}: {g.n_main} main {g.number_min}–{g.number_max}, {g.n_bonus} bonus, "
            f"repeat={g.allow_repeat}, order={g.order_matters}, active={g.active}" for g in games)),
    })


@dg.asset(
    partitions_def=game_partitions,
    deps=[lottery_games],
    group_name=GROUP,
    kinds={"delta", "pandas"},
    owners=["team:fcast"],
    check_specs=[bronze_check_spec()],
    description="Raw draws of one game as a Delta table (draw_no, draw_date, n1..nK, b1.., source, raw_hash, "
    "ingested_at, dq_ok), merged on draw_no: re-ingesting is idempotent. Source: the embedded history files; "
    "the official result files too when scraping is enabled.",
)
def bronze_draws(context: dg.AssetExecutionContext, config: BronzeConfig, meta_db: MetadataDB, lake: Lake):
    # not through DeltaLakePandasIOManager: bronze is an upsert (merge on draw_no, the changed and rule-breaking
    # rows decided against the stored table), which the IO manager (overwrite / append only) cannot express
    eng = meta_db.engine()
    spec = G.get_game(eng, context.partition_key)
    scrape = scraper_enabled() if config.scrape is None else config.scrape
    scraper = pipeline.scraper_for(eng, spec) if scrape else None
    if scrape and scraper is None:
        context.log.warning(f"scraping enabled but {spec.code} has no result-file URL in dataset_source")
    try:
        res = pipeline.ingest_bronze(eng, spec, root=lake.root_uri(), scraper=scraper,
                                     overwrite_changed=config.overwrite_changed, run_id=context.run.run_id)
    except SourceError as e:  # 403 / network: one line, nothing written to the lake
        raise dg.Failure(description=str(e), metadata={"game": spec.code, "url": e.url}) from None
    context.log.info(f"{spec.code}: {res['row_count']} draws, {res['inserted']} new, {res['errors']} rule errors")
    for i in [i for i in res["issues"] if i["severity"] == "error"][:5]:
        context.log.error((i.get("detail") or {}).get("message") or f"{i['rule']} at draw {i['draw_no']}")
    draws = deltaio.read(res["uri"])
    latest = draws.sort_values("draw_no", ascending=False).drop(columns=["raw_hash", "ingested_at"])
    yield dg.MaterializeResult(metadata={
        "game": spec.code,
        **table_metadata(res["row_count"], delta_schema(res["uri"]), latest),
        "inserted": res["inserted"],
        "written": res["written"],
        "source_disagreements": res["changed"],
        "dq_errors": res["errors"],
        "dq_warnings": res["warnings"],
        "first_draw_date": str(res["first_draw_date"]),
        "last_draw_date": str(res["last_draw_date"]),
        "sources": ", ".join(res["sources"]),
        "dataset_version_id": res["dataset_version_id"],
        "delta_version": res["delta_version"],
        "lake_uri": dg.MetadataValue.path(res["uri"]),
        **image_metadata("draw_frequency", plots.draw_frequency_png(spec, draws, root=lake.root_uri()),
                         f"{spec.code}: draw-number frequency per slot"),
    })
    yield bronze_check_result(res)


@dg.asset(
    partitions_def=game_partitions,
    deps=[bronze_draws],
    group_name=GROUP,
    kinds={"delta", "pandas", "spark"},
    owners=["team:fcast"],
    check_specs=[silver_check_spec()],
    description="Long format unique_id, ds, y (+ draw_no, slot, transform): one series per slot (`<game>_N1` …, "
    "`B1` …, `SUM`) and, per slot, its cumsum, diff1/diff2, parity and rolling sum/mean/std variants over "
    "5/10/20/50 draws (the sum series is raw only; gold reads the variants). Models index time by draw_no "
    "(draws are not on a fixed calendar); ds is the draw date. Engine: pandas, or Spark with FCAST_ENGINE=spark.",
)
def silver_series(context: dg.AssetExecutionContext, config: SilverConfig, meta_db: MetadataDB, lake: Lake,
                  pyspark: LazyPySparkResource):
    # not through DeltaLakePandasIOManager: silver is one Delta table per game (``silver/series/game=<code>``, its
    # own versions recorded in dataset_version), built in pandas or Spark; the IO manager would make one table
    # partitioned by a ``game`` column (see fcast_assets.defs.resources)
    eng = meta_db.engine()
    spec = G.get_game(eng, context.partition_key)
    engine = config.engine or engine_name()
    spark = pyspark.spark_session if engine == "spark" else None  # the session comes from dagster-pyspark
    res = pipeline.build_silver_table(eng, spec, root=lake.root_uri(), engine_name=engine, spark=spark,
                                      run_id=context.run.run_id)
    problems = pipeline.silver_issues(spec, res["frame"], res["draws"])
    frame = res["frame"]
    raw = frame[frame["transform"] == "raw"].sort_values(["draw_no", "unique_id"], ascending=[False, True])
    yield dg.MaterializeResult(metadata={
        "game": spec.code,
        **table_metadata(res["row_count"], delta_schema(res["uri"]), raw),
        "series": res["series"],
        "draws": res["draws"],
        "first_draw_date": str(pd.Timestamp(frame["ds"].min()).date()),
        "last_draw_date": str(pd.Timestamp(frame["ds"].max()).date()),
        "dq_issues": len(problems),
        "engine": res["engine"],
        "dataset_version_id": res["dataset_version_id"],
        "delta_version": res["delta_version"],
        "lake_uri": dg.MetadataValue.path(res["uri"]),
        "time_index": "draw_no (integer, freq=1); ds = draw date",
    })
    yield silver_check_result(problems, res["dataset_version_id"])


@dg.asset(
    partitions_def=game_partitions,
    deps=[silver_series],
    group_name=GROUP,
    kinds={"pandas", "sqlite", "postgres"},
    owners=["team:fcast"],
    check_specs=[profile_check_spec()],
    description="Predictability profile per slot series (dataset_profile): length, chi-square vs the slot's "
    "theoretical distribution under a fair draw, entropy, autocorrelation, Ljung-Box, runs test, spectral "
    "entropy / forecastability, and a verdict (distinguishable from random or not).",
)
def dataset_profile(context: dg.AssetExecutionContext, meta_db: MetadataDB, lake: Lake):
    eng = meta_db.engine()
    spec = G.get_game(eng, context.partition_key)
    res = pipeline.build_profile(eng, spec, root=lake.root_uri())
    rows = res["profile"]
    series = sorted({r["unique_id"] for r in rows if r["unique_id"] != spec.code})
    with_verdict = {r["unique_id"] for r in rows if r["metric"] == "verdict_random" and r["value"] is not None}
    table = "\n".join(
        f"| {u} | " + " | ".join(
            f"{next((r['value'] for r in rows if r['unique_id'] == u and r['metric'] == m), float('nan')):.4g}"
            for m in ("chi2_pvalue", "ljung_box_pvalue", "runs_pvalue", "spectral_entropy", "verdict_random"))
        + " |" for u in series)
    sample = pd.DataFrame([{k: r[k] for k in ("unique_id", "metric", "value")} for r in rows])
    yield dg.MaterializeResult(metadata={
        "game": spec.code,
        **table_metadata(res["rows"], sql_table_schema(DatasetProfile.__table__), sample),
        "verdict": res["verdict"],
        "verdict_random": res["verdict_random"],
        "pooled_chi2_pvalue": res["pooled_chi2_pvalue"],
        "series_flagged": res["series_flagged"],
        "series_profiled": res["series_profiled"],
        "dataset_version_id": res["dataset_version_id"],
        "profile_rows": res["rows"],
        "profile": dg.MetadataValue.md(
            "| series | chi2 p | Ljung-Box p | runs p | spectral entropy | random |\n|---|---|---|---|---|---|\n"
            + table),
        **image_metadata("profile_plot", plots.profile_png(spec, rows, root=lake.root_uri()),
                         f"{spec.code}: predictability profile"),
    })
    missing = [u for u in series if u not in with_verdict]
    yield dg.AssetCheckResult(check_name=PROFILE_VERDICT, asset_key="dataset_profile", passed=not missing,
                              metadata={"missing": ", ".join(missing) or "none", "series": len(series)})


lake_partitioned_assets = [bronze_draws, silver_series, dataset_profile]

lake_game_job = dg.define_asset_job(
    "lake_game_job", selection=lake_partitioned_assets, partitions_def=game_partitions,
    description="Bronze -> silver -> profile for one game partition.",
)
