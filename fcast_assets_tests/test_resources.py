"""Dagster resources: every asset, check, sensor and schedule names its resources as typed ``ConfigurableResource``
parameters defined in the Definitions; the ``lake`` resource decides where a materialization writes (not
FCAST_LAKE), ``meta_db`` which database it uses (not FCAST_DB_URL); the CLI builds the same resources."""

from __future__ import annotations

import inspect
import typing
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

import fcast_assets
from fcast_assets.defs.lake.assets import bronze_draws, game_partitions
from fcast_assets.defs.resources import Lake, MetadataDB, default_resources

from .conftest import resources

BUILT_IN = {"io_manager"}  # Dagster's default IO manager: required by every asset, never configured by fcast


def _fn(obj) -> typing.Callable | None:
    """The user function behind an asset / check (its op), a sensor or a schedule."""
    node = getattr(obj, "node_def", None)
    if node is not None and hasattr(node, "compute_fn"):
        return getattr(node.compute_fn, "decorated_fn", None)
    fn = getattr(obj, "_raw_fn", None) or getattr(obj, "_execution_fn", None)
    return getattr(fn, "decorated_fn", fn)  # a schedule wraps its function


def untyped_resources(defs: dg.Definitions) -> list[str]:
    """What breaks the rule: a required resource key that is not a ConfigurableResource of the Definitions, or that
    the function does not take as a parameter annotated with a ConfigurableResource class (``required_resource_keys``
    strings, ``context.resources.x``)."""
    typed = {k for k, v in (defs.resources or {}).items() if isinstance(v, dg.ConfigurableResource)}
    things = [*(a for a in defs.assets or [] if isinstance(a, dg.AssetsDefinition)), *(defs.asset_checks or []),
              *(defs.sensors or []), *(defs.schedules or [])]
    problems = []
    for obj in things:
        name = getattr(obj, "name", None) or "/".join(k.to_user_string() for k in obj.keys)
        keys = set(obj.required_resource_keys) - BUILT_IN
        problems += [f"{name}: resource {k!r} is not a ConfigurableResource of the Definitions"
                     for k in sorted(keys - typed)]
        fn = _fn(obj)
        if fn is None:
            problems.append(f"{name}: no function to read the resource parameters of")
            continue
        hints = typing.get_type_hints(fn)
        params = inspect.signature(fn).parameters
        for k in sorted(keys):
            hint = hints.get(k)
            if k not in params or not (inspect.isclass(hint) and issubclass(hint, dg.ConfigurableResource)):
                problems.append(f"{name}: resource {k!r} is not a typed ConfigurableResource parameter")
    return problems


@pytest.fixture(scope="module")
def defs():
    return dg.load_from_defs_folder(path_within_project=Path(fcast_assets.__file__).parent)


def test_every_resource_is_a_typed_configurable_resource(defs):
    assert {"meta_db", "lake", "pyspark"} <= set(defs.resources)
    assert isinstance(defs.resources["lake"], Lake) and isinstance(defs.resources["meta_db"], MetadataDB)
    assert untyped_resources(defs) == []
    # every asset that writes Delta tables takes the lake
    delta = [a for a in defs.assets if isinstance(a, dg.AssetsDefinition)
             and any(s.kinds and "delta" in s.kinds for s in a.specs)]
    assert len({a.key for a in delta}) >= 9
    assert [a.key.to_user_string() for a in delta if "lake" not in a.required_resource_keys] == []

    # the look-alikes the check must catch: a string resource key and an untyped (plain ResourceDefinition) one
    @dg.asset(required_resource_keys={"meta_db"})
    def by_string(context):  # noqa: ANN001, ANN202
        return None

    @dg.asset
    def untyped(legacy: dg.ResourceParam[str]):  # noqa: ANN202
        return None

    bad = dg.Definitions(assets=[by_string, untyped],
                         resources={"meta_db": MetadataDB(), "legacy": dg.ResourceDefinition.hardcoded_resource("x")})
    problems = untyped_resources(bad)
    assert any(p.startswith("by_string: resource 'meta_db' is not a typed") for p in problems), problems
    assert any(p.startswith("untyped: resource 'legacy' is not a ConfigurableResource") for p in problems), problems
    # and a valid look-alike passes
    @dg.asset
    def typed(meta_db: MetadataDB, lake: Lake):  # noqa: ANN202
        return None

    assert untyped_resources(dg.Definitions(assets=[typed], resources={"meta_db": MetadataDB(), "lake": Lake()})) == []


def test_lake_resource_resolves_root(tmp_path, monkeypatch):
    monkeypatch.setenv("FCAST_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("FCAST_LAKE", raising=False)
    monkeypatch.delenv("FCAST_DB_URL", raising=False)
    assert Lake().root_path() == (tmp_path / "home" / "forecast_lake").resolve()  # works with FCAST_LAKE unset
    assert MetadataDB().resolved_url() == f"sqlite:///{(tmp_path / 'home').resolve() / 'forecast_meta.db'}"
    assert isinstance(default_resources()["lake"].root, (str, type(None)))  # no EnvVar when the variable is unset
    monkeypatch.setenv("FCAST_LAKE", str(tmp_path / "env_lake"))
    assert Lake().root_path() == (tmp_path / "env_lake").resolve()
    assert Lake(root=str(tmp_path / "mine")).root_path() == (tmp_path / "mine").resolve()  # explicit wins
    assert Lake(root="s3://bucket/lake").root_uri() == "s3://bucket/lake"
    with pytest.raises(ValueError, match="is a URI, not a local folder"):
        Lake(root="s3://bucket/lake").root_path()
    # the Definitions' resource names FCAST_LAKE / FCAST_DB_URL as EnvVars where they are set
    monkeypatch.setenv("FCAST_DB_URL", "sqlite:///x.db")
    res = default_resources()
    assert isinstance(res["lake"].root, dg.EnvVar) and isinstance(res["meta_db"].url, dg.EnvVar)


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def test_lake_resource_decides_where_a_materialization_writes(tmp_path, monkeypatch):
    """bronze_draws of one game through Dagster with ``lake`` at a tmp folder: the Delta table and the plot land
    there; FCAST_LAKE, FCAST_HOME and FCAST_DB_URL point elsewhere and nothing is written there. The look-alike
    (``Lake()`` with no root) writes to FCAST_LAKE: the check can fail."""
    from fcast_assets.db.engine import get_engine, init_db
    from fcast_assets.lake import deltaio, games

    env_lake, home, mine = tmp_path / "env_lake", tmp_path / "home", tmp_path / "mine"
    monkeypatch.setenv("FCAST_HOME", str(home))
    monkeypatch.setenv("FCAST_LAKE", str(env_lake))
    monkeypatch.setenv("FCAST_DB_URL", f"sqlite:///{tmp_path / 'env.db'}")
    for v in ("FCAST_ENGINE", "FCAST_SCRAPER"):
        monkeypatch.delenv(v, raising=False)
    url = f"sqlite:///{tmp_path / 'meta.db'}"
    eng = get_engine(url)
    init_db(eng)
    games.seed_games(eng)
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(game_partitions.name, ["bingo5"])

    r = dg.materialize([bronze_draws], partition_key="bingo5", instance=instance,
                       resources=resources(url, mine / "lake"))
    assert r.success
    table = mine / "lake" / "bronze" / "draws" / "game=bingo5"
    assert (table / "_delta_log").is_dir() and len(deltaio.read(str(table))) > 100
    assert (mine / "lake" / "plots" / "bingo5" / "draw_frequency.png").is_file()
    meta = r.asset_materializations_for_node("bronze_draws")[0].metadata
    assert Path(meta["lake_uri"].value) == table
    assert _files(env_lake) == [] and not (tmp_path / "env.db").exists()
    # FCAST_HOME holds only the inter-process lock files (fcast_assets.locks), no lake data
    assert [f for f in _files(home) if not Path(f).parts[0] == "locks"] == []

    # the look-alike: the lake resource left to the environment writes to FCAST_LAKE
    r = dg.materialize([bronze_draws], partition_key="bingo5", instance=instance, resources=resources(url))
    assert r.success
    assert (env_lake / "bronze" / "draws" / "game=bingo5" / "_delta_log").is_dir()


def test_cli_builds_the_same_resources(tmp_path, monkeypatch):
    """``fcast`` resolves the database and the lake through the same resource classes as the Definitions."""
    from click.testing import CliRunner

    from fcast_assets.cli import CliResources, main

    monkeypatch.setenv("FCAST_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("FCAST_LAKE", str(tmp_path / "env_lake"))
    monkeypatch.setenv("FCAST_DB_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    cli, dag = CliResources(), default_resources()
    assert isinstance(cli["meta_db"], MetadataDB) and isinstance(cli["lake"], Lake)
    assert cli["lake"].root_uri() == str((tmp_path / "env_lake").resolve())
    assert dag["lake"].root.get_value() == str(tmp_path / "env_lake")  # an EnvVar, resolved by Dagster at run time
    assert cli["meta_db"].resolved_url() == f"sqlite:///{tmp_path / 'cli.db'}"
    with pytest.raises(KeyError):
        cli["pyspark"]  # noqa: B018 - only the two the CLI uses
    # one command through the group: `fcast game ingest` merges into the lake of the resources, the database is
    # the resource's
    from fcast_assets.lake.sources import embedded_dir

    obj = CliResources()
    file = embedded_dir() / "fixtures" / "mizuho_loto6_A1022141.csv"
    res = CliRunner().invoke(main, ["game", "ingest", "loto6", str(file)], obj=obj)
    assert res.exit_code == 0, res.output
    assert (tmp_path / "cli.db").exists()
    assert (tmp_path / "env_lake" / "bronze" / "draws" / "game=loto6" / "_delta_log").is_dir()
    assert obj._built is not None  # the command used the group's resources


def test_deltalake_io_manager_layout_is_not_the_lakes(tmp_path):
    """Why the lake is not stored through dagster-deltalake-pandas' IO manager (fcast_assets.defs.resources): with
    ``partition_expr="game"`` it writes ONE table ``<root>/silver/series`` partitioned by a ``game`` column, so the
    lake's per-game path ``<root>/silver/series/game=<code>`` (deltaio.table_uri, read by every module) holds data
    files but is no Delta table. A real round trip; if a later version writes one table per partition, this fails
    and the IO manager is worth another look."""
    from dagster_deltalake import LocalConfig
    from dagster_deltalake_pandas import DeltaLakePandasIOManager

    from fcast_assets.lake import deltaio

    parts = dg.StaticPartitionsDefinition(["bingo5", "loto6"])

    @dg.asset(key_prefix=["silver"], name="series", partitions_def=parts, metadata={"partition_expr": "game"},
              io_manager_key="delta_io")
    def series(context) -> pd.DataFrame:  # noqa: ANN001
        return pd.DataFrame({"game": [context.partition_key] * 3, "draw_no": [1, 2, 3], "y": [1.0, 2.0, 3.0]})

    @dg.asset(partitions_def=parts, ins={"series": dg.AssetIn(key=["silver", "series"])})
    def rows(series: pd.DataFrame) -> int:
        return len(series)

    io = {"delta_io": DeltaLakePandasIOManager(root_uri=str(tmp_path), storage_options=LocalConfig())}
    instance = dg.DagsterInstance.ephemeral()
    for game in ("bingo5", "loto6"):
        r = dg.materialize([series, rows], partition_key=game, instance=instance, resources=io)
        assert r.success and r.output_for_node("rows") == 3  # the round trip through real Delta files
    one_table = deltaio.read(str(tmp_path / "silver" / "series"))
    assert sorted(one_table["game"].unique()) == ["bingo5", "loto6"] and len(one_table) == 6
    per_game = deltaio.table_uri("silver", "series", "bingo5", str(tmp_path))
    assert Path(per_game).is_dir() and deltaio.open_table(per_game) is None
