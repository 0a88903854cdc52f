"""The Dagster project: definitions load, the registry asset materializes from the command line the issue
names, every library partition materializes, and a new installed version makes a partition stale."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
from sqlalchemy import text

import fcast_assets
from fcast_assets.db.engine import make_engine
from fcast_assets.defs.registry import assets as reg_assets
from fcast_assets.defs.resources import MetadataDB
from fcast_assets.registry import library_names

REPO = Path(fcast_assets.__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def defs():
    return dg.load_from_defs_folder(path_within_project=Path(fcast_assets.__file__).parent)


def test_definitions_load(defs):
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert {"library_release", "library_registry", "compat_matrix", "bronze_draws", "silver_series"} <= keys
    node = graph.get(dg.AssetKey("library_registry"))
    assert node.partitions_def.get_partition_keys() == library_names()
    assert dg.AssetKey("library_release") in node.parent_keys
    assert node.group_name == "registry"
    assert defs.resolve_job_def("observe_library_releases") is not None


_TAG = __import__("re").compile(r"<[A-Za-z_/][^<>`]*>")
_CODE = __import__("re").compile(r"`[^`]*`")


def html_swallowed(markdown: str) -> list[str]:
    """The ``<word>`` pieces of a Markdown text the UI would take for HTML tags (outside `code` spans)."""
    return _TAG.findall(_CODE.sub("", markdown or ""))


def test_descriptions_render_in_the_ui(defs):
    """Dagster renders descriptions as Markdown: a bare ``<game>`` is an HTML tag and vanishes. Every asset's and
    sensor's description keeps its placeholders in code spans."""
    assert html_swallowed("one series per slot (<game>_N1)") == ["<game>"]  # the look-alike that must be caught
    assert html_swallowed("one series per slot (`<game>_N1`)") == []
    graph = defs.resolve_asset_graph()
    bad = {k.to_user_string(): html_swallowed(graph.get(k).description)
           for k in graph.get_all_asset_keys() if html_swallowed(graph.get(k).description)}
    bad |= {s.name: html_swallowed(s.description) for s in defs.sensors or [] if html_swallowed(s.description)}
    assert not bad, f"descriptions with text the UI takes for HTML: {bad}"


def test_cli_materialize_neuralforecast_partition(tmp_path):
    """`dagster asset materialize -m fcast_assets.definitions --select library_registry --partition neuralforecast`"""
    url = f"sqlite:///{tmp_path / 'forecast_meta.db'}"
    env = {**os.environ, "FCAST_DB_URL": url, "DAGSTER_HOME": str(tmp_path / "dh")}
    (tmp_path / "dh").mkdir()
    dagster = Path(sys.executable).parent / "dagster"
    proc = subprocess.run(
        [str(dagster), "asset", "materialize", "-m", "fcast_assets.definitions", "--select", "library_registry",
         "--partition", "neuralforecast"], cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "RUN_SUCCESS" in proc.stderr + proc.stdout
    with make_engine(url).connect() as conn:
        n_models = conn.execute(text("""
            SELECT COUNT(DISTINCT a.symbol_id) FROM registry_symbol_alias a
            JOIN registry_symbol s ON s.symbol_id = a.symbol_id
            WHERE a.module = 'neuralforecast.models' AND s.kind = 'class'""")).scalar()
    assert n_models > 30


@pytest.mark.slow
def test_every_library_partition_materializes(tmp_path):
    url = f"sqlite:///{tmp_path / 'forecast_meta.db'}"
    instance = dg.DagsterInstance.ephemeral()
    for name in library_names():
        res = dg.materialize([reg_assets.library_registry], partition_key=name, instance=instance,
                             resources={"meta_db": MetadataDB(url=url)})
        assert res.success, name
        meta = res.asset_materializations_for_node("library_registry")[0].metadata
        assert meta["symbols"].value > 20 and meta["parameters"].value > 50, name
    with make_engine(url).connect() as conn:
        rows = dict(conn.execute(text("""
            SELECT l.name, COUNT(s.symbol_id) FROM registry_library l
            JOIN registry_release r ON r.library_id = l.library_id
            JOIN registry_symbol s ON s.release_id = r.release_id GROUP BY l.name""")).all())
        failures = dict(conn.execute(text("""
            SELECT l.name, COUNT(f.failure_id) FROM registry_library l
            JOIN registry_release r ON r.library_id = l.library_id
            LEFT JOIN registry_import_failure f ON f.release_id = r.release_id GROUP BY l.name""")).all())
    assert set(rows) == set(library_names())
    # optional backends missing on this machine are rows (timesfm's flax / mlx modules), not crashes
    assert failures["timesfm"] > 0


def test_new_installed_version_makes_partition_stale(tmp_path, monkeypatch, defs):
    # Dagster's own resolver of the UI's "stale" badge (internal API; the test pins dagster 1.13's behaviour)
    from dagster._core.definitions.data_version import CachingStaleStatusResolver, StaleStatus
    from dagster._core.loader import LoadingContextForTest

    url = f"sqlite:///{tmp_path / 'forecast_meta.db'}"
    instance = dg.DagsterInstance.ephemeral()
    job = defs.resolve_job_def("observe_library_releases")
    assert job.execute_in_process(instance=instance).success
    res = dg.materialize([reg_assets.library_registry], partition_key="utilsforecast", instance=instance,
                         resources={"meta_db": MetadataDB(url=url)})
    assert res.success
    key = dg.AssetKey("library_registry")

    def status():
        resolver = CachingStaleStatusResolver(instance, defs.resolve_asset_graph(), LoadingContextForTest(instance))
        return resolver.get_status(key, "utilsforecast")

    assert status() == StaleStatus.FRESH
    # a new release of utilsforecast is observed: its registry partition goes stale
    real = reg_assets.installed_version
    monkeypatch.setattr(reg_assets, "installed_version",
                        lambda spec: "99.0.0" if spec.name == "utilsforecast" else real(spec))
    assert job.execute_in_process(instance=instance).success
    assert status() == StaleStatus.STALE
