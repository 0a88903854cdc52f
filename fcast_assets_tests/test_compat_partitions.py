"""Scale-out of the compat matrix: the (library x model class) multi-partitioned ``compat_cells`` asset, the sensor
that keeps its dynamic model dimension in step with the registry, and one partition materialized through Dagster
on a real scanned registry (SQLite) with the real library."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from sqlalchemy import text

import fcast_assets
from fcast_assets.defs.compat import cells
from fcast_assets.defs.compat.cells import (compat_cell_partitions, compat_cells, compat_model_partitions,
                                            compat_model_partitions_sensor, model_keys)
from fcast_assets.defs.resources import MetadataDB
from fcast_assets.registry import library_names
from fcast_assets_tests.conftest import scanned_db


def _cells(engine) -> list:
    with engine.connect() as conn:
        return conn.execute(text("SELECT model, method, param, status FROM compat_result")).all()


def test_definitions_have_multi_partitioned_compat_cells():
    defs = dg.load_from_defs_folder(path_within_project=Path(fcast_assets.__file__).parent)
    graph = defs.resolve_asset_graph()
    node = graph.get(dg.AssetKey("compat_cells"))
    assert isinstance(node.partitions_def, dg.MultiPartitionsDefinition)
    dims = {d.name: d.partitions_def for d in node.partitions_def.partitions_defs}
    assert set(dims) == {"library", "model"}
    assert dims["library"].get_partition_keys() == library_names()
    assert isinstance(dims["model"], dg.DynamicPartitionsDefinition) and dims["model"].name == "compat_model"
    assert dg.AssetKey("library_registry") in node.parent_keys and node.group_name == "compat"
    # the whole-library path stays
    assert graph.get(dg.AssetKey("compat_matrix")).partitions_def.get_partition_keys()[0] == "neuralforecast"
    assert defs.resolve_sensor_def("compat_model_partitions_sensor") is not None


def test_sensor_adds_model_keys_then_one_partition_runs_only_that_model(tmp_path, monkeypatch):
    engine, url = scanned_db(tmp_path, "mlforecast")
    monkeypatch.setenv("FCAST_REPORTS", str(tmp_path / "reports"))
    instance = dg.DagsterInstance.ephemeral()
    resources = {"meta_db": MetadataDB(url=url)}

    # the sensor reads the scanned registry: mlforecast's estimators become model keys (other adapter libraries
    # are not scanned: nothing is removed while the registry is incomplete)
    keys = model_keys(engine, "mlforecast")
    assert {"LinearRegression", "KNeighborsRegressor"} <= set(keys)
    with dg.build_sensor_context(instance=instance, resources=resources) as ctx:
        res = compat_model_partitions_sensor(ctx)
    assert len(res.dynamic_partitions_requests) == 1
    assert set(res.dynamic_partitions_requests[0].partition_keys) == set(keys)
    instance.add_dynamic_partitions(compat_model_partitions.name, list(res.dynamic_partitions_requests[0].partition_keys))
    # a stale key (a class gone from the registry) is kept while other libraries are unscanned ...
    instance.add_dynamic_partitions(compat_model_partitions.name, ["GoneRegressor"])
    with dg.build_sensor_context(instance=instance, resources=resources, cursor=res.cursor) as ctx:
        again = compat_model_partitions_sensor(ctx)
    assert not again.dynamic_partitions_requests and again.skip_reason
    assert "statsforecast" in again.skip_reason.skip_message
    # ... and removed once every adapter library is scanned (here: the adapters narrowed to the scanned one)
    with monkeypatch.context() as mp, \
            dg.build_sensor_context(instance=instance, resources=resources, cursor=res.cursor) as ctx:
        mp.setattr(cells, "ADAPTERS", {"mlforecast": cells.ADAPTERS["mlforecast"]})
        third = compat_model_partitions_sensor(ctx)
    assert [(r.partition_keys, type(r).__name__) for r in third.dynamic_partitions_requests] == [
        (["GoneRegressor"], "DeleteDynamicPartitionsRequest")]

    # one (library, model) partition through Dagster: only LinearRegression's cells are written
    key = dg.MultiPartitionKey({"library": "mlforecast", "model": "LinearRegression"})
    assert key in compat_cell_partitions.get_partition_keys(dynamic_partitions_store=instance)
    out = dg.materialize([compat_cells], partition_key=key, instance=instance, resources=resources,
                         run_config={"ops": {"compat_cells": {"config": {"families": ["h"], "workers": 1}}}})
    assert out.success
    meta = out.asset_materializations_for_node("compat_cells")[0].metadata
    rows = _cells(engine)
    assert rows and {r.model.rsplit(".", 1)[-1] for r in rows} == {"LinearRegression"}
    assert meta["cells"].value == len(rows) and meta["model"].value == "LinearRegression"
    assert any(r.param == "h" and r.status == "ok" for r in rows)
    assert "| h " in meta["preview"].value and "ok" in meta["preview"].value

    # a pair whose model is not a class of that library: a successful run with no materialization, no cells
    instance.add_dynamic_partitions(compat_model_partitions.name, ["MLP"])
    other = dg.MultiPartitionKey({"library": "mlforecast", "model": "MLP"})
    out = dg.materialize([compat_cells], partition_key=other, instance=instance, resources=resources)
    assert out.success and not out.asset_materializations_for_node("compat_cells")
    assert len(_cells(engine)) == len(rows)
    # a library that is not scanned yet: the run fails with the one line that says what to do
    unscanned = dg.MultiPartitionKey({"library": "statsforecast", "model": "LinearRegression"})
    out = dg.materialize([compat_cells], partition_key=unscanned, instance=instance, resources=resources,
                         raise_on_error=False)
    assert not out.success
    failure = next(e for e in out.all_events if e.event_type_value == "STEP_FAILURE")
    assert "materialize library_registry[statsforecast]" in failure.step_failure_data.error.message
