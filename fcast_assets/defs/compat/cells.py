"""Compat stage, scaled out: the matrix partitioned by (library x model class) with Dagster's multi-partitions.

``compat_cells`` runs the cells of ONE model class of ONE library per partition, so a deployment whose run
launcher / executor puts runs on several machines (dagster-k8s, dagster-celery, dagster-docker) spreads a backfill
over them, and one model class is re-run alone from the UI. Re-running a model replaces just its cells: the views
and reports use the newest result per cell. ``compat_matrix`` (one partition per library) stays the whole-library
path.

The ``library`` dimension is the registry's static library list (the same partitions as ``library_registry``);
the ``model`` dimension is dynamic (``compat_model``): the model class names of every library with a compat
adapter, read from the scanned registry and kept in step by ``compat_model_partitions_sensor``. Dagster's
multi-partitions are a full product, so a pair whose model is not a class of that library (``statsforecast|MLP``)
exists in the grid: it runs in well under a second and records no materialization (it stays "missing").
"""

import json
import tempfile

import dagster as dg
import pandas as pd
from sqlalchemy import Engine, select

from fcast_assets.compat.probe import ADAPTERS, adapter_for, run_matrix
from fcast_assets.registry.view import RegistryMissingError, latest_release
from fcast_assets.db.models import CompatResult
from fcast_assets.defs.compat.assets import CompatConfig
from fcast_assets.defs.metadata import preview, sql_table_schema
from fcast_assets.defs.partitions import sync_requests
from fcast_assets.defs.registry.assets import library_partitions, library_registry
from fcast_assets.defs.resources import MetadataDB

compat_model_partitions = dg.DynamicPartitionsDefinition(name="compat_model")
compat_cell_partitions = dg.MultiPartitionsDefinition(
    {"library": library_partitions, "model": compat_model_partitions})

_BAD_KEY = ("|", ",", "[", "]", "...")  # not allowed in a multi-partition dimension key


def model_keys(engine: Engine, library: str) -> list[str]:
    """The ``model`` partition keys of ``library``: its model class names as the adapter selects them (the short
    class name; the qualified name where two classes share a short name). [] without an adapter; raises
    ``RegistryMissingError`` when the library is not scanned."""
    if library not in ADAPTERS:
        return []
    release_id, _ = latest_release(engine, library)
    with tempfile.TemporaryDirectory(prefix="fcast-compat-keys-") as work:
        qualnames = adapter_for(library, engine, release_id, work).select_models(None)
    short = [q.rsplit(".", 1)[-1] for q in qualnames]
    keys = [s if short.count(s) == 1 else q for q, s in zip(qualnames, short)]
    return [k for k in keys if not any(b in k for b in _BAD_KEY)]


def wanted_model_keys(engine: Engine, cursor: dict[str, list]) -> tuple[list[str], dict[str, list], list[str]]:
    """(keys of every scanned adapter library, new cursor, libraries not scanned yet). The cursor keeps
    ``{library: [release_id, keys]}`` so a library's adapter is only rebuilt when a new release is scanned."""
    out: dict[str, list] = {}
    missing = []
    for lib in ADAPTERS:
        try:
            release_id, _ = latest_release(engine, lib)
        except RegistryMissingError:
            missing.append(lib)
            continue
        prev = cursor.get(lib)
        if prev and prev[0] == release_id:
            out[lib] = prev
            continue
        try:
            out[lib] = [release_id, model_keys(engine, lib)]
        except Exception as e:  # noqa: BLE001 - one library's adapter failing must not stop the others' keys
            missing.append(f"{lib} ({type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''})")
    keys = sorted({k for _, ks in out.values() for k in ks})
    return keys, out, missing


def sync_model_partitions(instance: dg.DagsterInstance, engine: Engine) -> tuple[list[str], list[str]]:
    """Add the model keys of the scanned registry to ``instance`` without the daemon (what the sensor does on its
    tick); removes nothing. Returns (added, not scanned libraries). ``python -m fcast_assets.defs.compat.cells``."""
    wanted, _, missing = wanted_model_keys(engine, {})
    known = set(instance.get_dynamic_partitions(compat_model_partitions.name))
    add = [k for k in wanted if k not in known]
    if add:
        instance.add_dynamic_partitions(compat_model_partitions.name, add)
    return add, missing


compat_cells_job = dg.define_asset_job(
    "compat_cells_job", selection="compat_cells",
    description="compat_cells, one (library|model) partition per run: backfill it (UI, or `dagster job backfill`) "
    "and the run launcher spreads the runs (local processes, or pods / workers on a cluster).")


@dg.sensor(
    minimum_interval_seconds=120,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Keeps the dynamic `compat_model` partitions (the model dimension of compat_cells) in step with "
    "the registry: after a library_registry scan, adds a key for every model class the library's compat adapter "
    "selects and removes keys no scanned library has any more. Launches no runs.",
)
def compat_model_partitions_sensor(context: dg.SensorEvaluationContext, meta_db: MetadataDB) -> dg.SensorResult:
    cursor = json.loads(context.cursor) if context.cursor else {}
    wanted, new_cursor, missing = wanted_model_keys(meta_db.engine(), cursor)
    known = list(context.instance.get_dynamic_partitions(compat_model_partitions.name))
    # keys are only removed once every adapter library is scanned (a half-scanned database removes nothing)
    _, _, requests = sync_requests(compat_model_partitions, wanted, known, removable=not missing)
    return dg.SensorResult(
        dynamic_partitions_requests=requests,
        cursor=json.dumps(new_cursor, sort_keys=True),
        skip_reason=None if requests else dg.SkipReason(
            f"{len(wanted)} model keys in sync" + (f"; not scanned yet: {', '.join(missing)}" if missing else "")),
    )


@dg.asset(
    partitions_def=compat_cell_partitions,
    deps=[library_registry],  # library|model depends on library_registry[library] (the equal dimension, inferred)
    group_name="compat",
    kinds={"python", "pytorch", "sqlite", "postgres"},
    owners=["team:fcast"],
    output_required=False,
    description="The compatibility matrix of one model class of one library (partition library|model): every "
    "(method, param, value) cell of that model executed on tiny synthetic data into compat_result. Backfill a "
    "library row (or any selection) to spread the matrix over a multi-process executor or a cluster's run launcher; "
    "re-materialize one partition to re-run one model class (its newest cells replace the old ones in the "
    "views). A pair whose model is not a class of that library records no materialization.",
)
def compat_cells(context: dg.AssetExecutionContext, config: CompatConfig, meta_db: MetadataDB):
    pk = context.partition_key  # a MultiPartitionKey, or its "library|model" string in a job's run
    key = (pk if isinstance(pk, dg.MultiPartitionKey)
           else compat_cell_partitions.get_partition_key_from_str(pk)).keys_by_dimension
    library, model = key["library"], key["model"]
    engine = meta_db.engine()
    try:
        models = model_keys(engine, library)
    except RegistryMissingError as e:
        raise dg.Failure(description=str(e)) from None
    if model not in models:
        context.log.info(f"compat {library}|{model}: {model} is not a model class of {library} "
                         f"({len(models)} classes there) - nothing to run, no materialization")
        return
    if config.models and config.models != [model]:
        context.log.warning(f"config.models {config.models} ignored: the partition selects {model}")
    s = run_matrix(engine, library, models=[model], families=config.families or None, workers=config.workers,
                   cell_timeout=config.cell_timeout, auto_cell_timeout=config.auto_cell_timeout,
                   progress=lambda done, total, m: context.log.info(
                       f"compat {library}|{model}: {done}/{total} cells") if done % 50 == 0 or done == total else None)
    cols = ["method", "param", "value_label", "scenario", "status", "exception_type", "message"]
    with engine.connect() as conn:
        mine = pd.DataFrame(conn.execute(select(*[getattr(CompatResult, c) for c in cols]).where(
            CompatResult.compat_run_id == s["compat_run_id"]).order_by(CompatResult.result_id)).all(), columns=cols)
    yield dg.MaterializeResult(metadata={
        "library": library,
        "model": model,
        "version": s["version"],
        "compat_run_id": s["compat_run_id"],
        "dagster/row_count": s["cells"],
        "dagster/column_schema": sql_table_schema(CompatResult.__table__),
        "preview": preview(mine),
        "cells": s["cells"],
        **{f"cells_{k}": v for k, v in sorted(s["counts"].items())},
        "seconds": s["wall_seconds"],
    })


if __name__ == "__main__":  # add the model keys to $DAGSTER_HOME's instance from the registry in FCAST_DB_URL
    from fcast_assets.db.engine import get_engine

    added, not_scanned = sync_model_partitions(dg.DagsterInstance.get(), get_engine())
    print(f"compat_model partitions: {len(added)} added" +
          (f"; not scanned yet (materialize library_registry first): {', '.join(not_scanned)}" if not_scanned else ""))
