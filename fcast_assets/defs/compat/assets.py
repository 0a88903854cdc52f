"""Compat stage: the compatibility matrix, executed against the installed library (one partition per library
with a prober adapter; run config narrows it to some models or cell families)."""


import dagster as dg

from fcast_assets import config as fcast_config
from fcast_assets.compat.probe import ADAPTERS, run_matrix
from fcast_assets.compat.tables import latest_results, ui_tables, write_report
from fcast_assets.defs.registry.assets import library_registry
from fcast_assets.db.models import CompatResult
from fcast_assets.defs.metadata import preview, sql_table_schema
from fcast_assets.defs.resources import MetadataDB

compat_partitions = dg.StaticPartitionsDefinition(list(ADAPTERS))


class CompatConfig(dg.Config):
    models: list[str] = []  # model class names; empty = every model of the registry
    families: list[str] = []  # method short names or params (predict, level, loss, ...); empty = all
    workers: int = 2
    cell_timeout: float = 60.0
    auto_cell_timeout: float | None = None  # seconds per Auto cell (a hyper-parameter search); None: 3 x cell_timeout


def _run_ids(engine, run_id: int) -> set[int]:
    from sqlalchemy import select

    with engine.connect() as conn:
        return set(conn.execute(select(CompatResult.result_id).where(CompatResult.compat_run_id == run_id)).scalars())


@dg.asset(
    partitions_def=compat_partitions,
    deps=[dg.AssetDep(library_registry, partition_mapping=dg.StaticPartitionMapping({k: k for k in ADAPTERS}))],
    group_name="compat",
    kinds={"python", "pytorch", "sqlite", "postgres"},
    owners=["team:fcast"],
    description="Which argument values run and which error, per model: every (model, method, param, value) cell "
    "executed on tiny synthetic data, recorded in compat_result with status, exception, seconds and the "
    "context to re-run it; observed capabilities and the model × loss table follow.",
    automation_condition=dg.AutomationCondition.eager(),
)
def compat_matrix(context: dg.AssetExecutionContext, config: CompatConfig, meta_db: MetadataDB) -> dg.MaterializeResult:
    engine = meta_db.engine()
    step = {"next": 0}

    def progress(done: int, total: int, model: str) -> None:
        if done >= step["next"] or done == total:
            context.log.info(f"compat {context.partition_key}: {done}/{total} cells (current model {model})")
            step["next"] = done + max(50, total // 20)

    s = run_matrix(engine, context.partition_key, models=config.models or None, families=config.families or None,
                   workers=config.workers, cell_timeout=config.cell_timeout,
                   auto_cell_timeout=config.auto_cell_timeout, progress=progress)
    report = write_report(engine, fcast_config.reports_dir() / f"compat_{context.partition_key}.md",
                          library=context.partition_key)
    df = latest_results(engine, library=context.partition_key)
    tables = {k: dg.MetadataValue.md(v) for k, v in ui_tables(df).items()}
    return dg.MaterializeResult(
        metadata={
            "library": context.partition_key,
            "version": s["version"],
            "compat_run_id": s["compat_run_id"],
            "dagster/row_count": s["cells"],
            "dagster/column_schema": sql_table_schema(CompatResult.__table__),
            "preview": preview(df[df["result_id"].isin(_run_ids(engine, s["compat_run_id"]))][
                ["model", "method", "param", "value_label", "scenario", "status", "exception_type"]].assign(
                model=lambda d: d["model"].str.rsplit(".", n=1).str[-1])),
            "models": len(s["models"]),
            "cells": s["cells"],
            **{f"cells_{k}": v for k, v in sorted(s["counts"].items())},
            "seconds": s["wall_seconds"],
            "cells_per_second": round(s["cells"] / s["wall_seconds"], 2) if s["wall_seconds"] else 0.0,
            "capability_mismatches": dg.MetadataValue.md(
                "\n".join(f"- {x['model']} {x['capability']}: declared {x['declared']}, observed {x['observed']} "
                          f"(result {x['result_id']}: {x['exception_type']}: {x['message']})"
                          for x in s["capability_mismatches"]) or "none"),
            "slowest_cells": dg.MetadataValue.md("\n".join(
                f"- {x['model'].rsplit('.', 1)[-1]} {x['method']}.{x['param']} = {x['value_label']}: {x['seconds']}s"
                for x in s["slowest"])),
            "report": dg.MetadataValue.path(str(report)),
            **tables,
        },
    )
