"""The silver transforms on local Spark (local[1], one shuffle partition) give the same rows as pandas."""

from pathlib import Path

import pytest

from fcast_assets.db.engine import get_engine
from fcast_assets.lake import deltaio, games, pipeline
from fcast_assets.lake.silver import frames_equal, get_spark, silver_pandas, silver_spark

pyspark = pytest.importorskip("pyspark")


@pytest.fixture(scope="module")
def spark():
    s = get_spark("fcast-lake-test", master="local[1]")
    yield s
    s.stop()


def test_spark_and_pandas_silver_rows_are_identical(tmp_path: Path, monkeypatch, spark):
    monkeypatch.setenv("FCAST_HOME", str(tmp_path))
    monkeypatch.setenv("FCAST_LAKE", str(tmp_path / "lake"))
    url = f"sqlite:///{tmp_path / 'meta.db'}"
    eng = get_engine(url)
    games.seed_games(eng)
    spec = games.get_game(eng, "bingo5")
    pipeline.ingest_bronze(eng, spec)
    bronze = pipeline.B.read_bronze(pipeline.bronze_uri(spec), only_ok=True)
    pd_rows = silver_pandas(spec, bronze)
    sp_rows = silver_spark(spec, bronze, spark=spark)
    ok, why = frames_equal(pd_rows, sp_rows)
    assert ok, why
    assert len(sp_rows) == len(pd_rows) > 50_000
    # and the Spark path end to end (FCAST_ENGINE=spark) writes the same silver Delta table
    monkeypatch.setenv("FCAST_ENGINE", "spark")
    res = pipeline.build_silver_table(eng, spec, spark=spark)
    assert res["engine"] == "spark"
    ok, why = frames_equal(deltaio.read(res["uri"]), pd_rows)
    assert ok, why


def test_silver_asset_on_the_dagster_pyspark_resource(tmp_path: Path, monkeypatch, spark):
    """The silver asset with engine=spark takes its session from dagster-pyspark's resource."""
    import dagster as dg

    from fcast_assets.defs.lake.assets import bronze_draws, silver_series
    from .conftest import resources

    monkeypatch.setenv("FCAST_HOME", str(tmp_path))
    monkeypatch.setenv("FCAST_LAKE", str(tmp_path / "lake"))
    url = f"sqlite:///{tmp_path / 'meta.db'}"
    games.seed_games(get_engine(url))
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("game", ["bingo5"])
    res = dg.materialize([bronze_draws, silver_series], partition_key="bingo5", instance=instance,
                         resources=resources(url, spark=True),
                         run_config={"ops": {"silver_series": {"config": {"engine": "spark"}}}})
    assert res.success
    meta = res.asset_materializations_for_node("silver_series")[0].metadata
    assert meta["engine"].value == "spark" and meta["dagster/row_count"].value > 50_000
