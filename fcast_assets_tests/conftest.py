"""Shared fixtures: a metadata DB per test (SQLite in tmp_path, or PostgreSQL for the `postgres` marker),
and a registry scanned once per session for neuralforecast through the Dagster asset."""

from __future__ import annotations

import os
import uuid

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from fcast_assets.db.engine import init_db, make_engine

PG_URL = os.environ.get("FCAST_TEST_PG_URL")


@pytest.fixture
def sqlite_url(tmp_path):
    return f"sqlite:///{tmp_path / 'forecast_meta.db'}"


@pytest.fixture
def fcast_env(tmp_path, monkeypatch):
    """FCAST_HOME in tmp_path: every default path (SQLite DB, lake) lands there."""
    monkeypatch.setenv("FCAST_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("FCAST_DB_URL", raising=False)
    monkeypatch.delenv("FCAST_LAKE", raising=False)
    return tmp_path / "home"


def _fresh_pg_database() -> str:
    """A new empty database on the test server, so tests never see each other's rows."""
    if not PG_URL:
        if os.environ.get("FCAST_REQUIRE_PG"):
            pytest.fail("FCAST_REQUIRE_PG is set but FCAST_TEST_PG_URL is not: the PostgreSQL tests must run")
        pytest.skip("FCAST_TEST_PG_URL not set (CI starts a PostgreSQL server and sets it)")
    name = f"fcast_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(PG_URL).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request, tmp_path):
    """Both databases: every test using it runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'forecast_meta.db'}"
    return _fresh_pg_database()


@pytest.fixture
def engine(db_url):
    eng = make_engine(db_url)
    init_db(eng)
    yield eng
    eng.dispose()


@pytest.fixture(scope="session")
def nf_registry(tmp_path_factory):
    """neuralforecast scanned once through the Dagster asset into a session SQLite DB."""
    import dagster as dg

    from fcast_assets.defs.registry.assets import library_registry
    from fcast_assets.defs.resources import MetadataDB

    url = f"sqlite:///{tmp_path_factory.mktemp('nf') / 'forecast_meta.db'}"
    result = dg.materialize(
        [library_registry], partition_key="neuralforecast", resources={"meta_db": MetadataDB(url=url)},
        instance=dg.DagsterInstance.ephemeral(),
    )
    assert result.success
    eng = make_engine(url)
    yield eng, result
    eng.dispose()


def scanned_db(folder, *libraries: str):
    """(engine, url) of a fresh SQLite metadata DB in ``folder`` with ``libraries`` scanned into it."""
    from fcast_assets.registry import scan_and_store

    url = f"sqlite:///{folder / 'forecast_meta.db'}"
    eng = make_engine(url)
    init_db(eng)
    for lib in libraries or ("neuralforecast",):
        scan_and_store(lib, eng)
    return eng, url


@pytest.fixture
def lake_env(tmp_path, monkeypatch):
    """FCAST_HOME / FCAST_LAKE / FCAST_DB_URL in tmp_path, optional engines and models off, the games seeded."""
    from fcast_assets.db.engine import get_engine
    from fcast_assets.lake import games

    url = f"sqlite:///{tmp_path / 'meta.db'}"
    monkeypatch.setenv("FCAST_HOME", str(tmp_path))
    monkeypatch.setenv("FCAST_LAKE", str(tmp_path / "lake"))
    monkeypatch.setenv("FCAST_DB_URL", url)
    for v in ("FCAST_ENGINE", "FCAST_SCRAPER", "FCAST_CHRONOS_MODEL", "FCAST_TIMESFM_MODEL"):
        monkeypatch.delenv(v, raising=False)
    eng = get_engine(url)
    init_db(eng)
    games.seed_games(eng)
    return {"url": url, "engine": eng, "tmp": tmp_path}


MATRIX_MODELS = ["MLP", "TSMixer"]


@pytest.fixture(scope="session")
def nf_matrix_file(tmp_path_factory):
    """neuralforecast scanned and the real compatibility matrix of MLP and TSMixer, every cell family (with their
    scenario facts), built once per session; tests take copies (:func:`matrix_copy`)."""
    from fcast_assets.compat.probe import run_matrix

    folder = tmp_path_factory.mktemp("matrix")
    engine, url = scanned_db(folder)
    run_matrix(engine, "neuralforecast", models=MATRIX_MODELS, workers=2, cell_timeout=90)
    engine.dispose()
    return folder / "forecast_meta.db"


def matrix_copy(source, folder):
    """(engine, url) of a private copy of the session's matrix database in ``folder``."""
    from .faults import copy_db

    url = copy_db(source, "sqlite", folder)
    return make_engine(url), url


def loto6_models_env(folder, mp, hold_back: int = 0):
    """The README's order at small scale in ``folder`` (FCAST_HOME / FCAST_LAKE / FCAST_DB_URL set through ``mp``):
    neuralforecast scanned, the compat cells of the model choice (NHITS, TSMixerx: exogenous families, and the
    freq / level cells whose errors on datetime ds must not block the gold plans' freq=1 on the integer draw_no),
    the games seeded, loto6's lake and gold tables (without its last ``hold_back`` draws). Returns
    (engine, url, spec)."""
    from fcast_assets.compat.probe import run_matrix
    from fcast_assets.features import gold
    from fcast_assets.lake import games, pipeline

    engine, url = scanned_db(folder)
    mp.setenv("FCAST_HOME", str(folder))
    mp.setenv("FCAST_LAKE", str(folder / "lake"))
    mp.setenv("FCAST_DB_URL", url)
    for v in ("FCAST_ENGINE", "FCAST_SCRAPER", "FCAST_CHRONOS_MODEL", "FCAST_TIMESFM_MODEL", "FCAST_ARTIFACTS"):
        mp.delenv(v, raising=False)
    run_matrix(engine, "neuralforecast", models=["NHITS", "TSMixerx"],
               families=["futr_exog_list", "hist_exog_list", "stat_exog_list", "freq", "level"], workers=2,
               cell_timeout=90)
    games.seed_games(engine)
    spec = games.get_game(engine, "loto6")
    recs = list(pipeline.iter_records(spec))
    newest = max(int(r["draw_no"]) for r in recs)
    gold.build_game(engine, spec, records=[r for r in recs if int(r["draw_no"]) <= newest - hold_back])
    return engine, url, spec


@pytest.fixture(scope="session")
def loto6_trained(tmp_path_factory):
    """:func:`loto6_models_env` once per session with loto6.N1 trained (small: 5 steps, 2 windows); the environment
    is returned, not left set: tests set FCAST_HOME / FCAST_LAKE / FCAST_DB_URL from ``env`` themselves and restore
    what they change (test_bad_inputs, test_concurrency)."""
    from fcast_assets.models import train as T

    folder = tmp_path_factory.mktemp("trained")
    mp = pytest.MonkeyPatch()
    engine, url, _ = loto6_models_env(folder, mp)
    first = T.train(engine, "loto6", "N1", overrides={"max_steps": 5, "n_windows": 2})
    env = {k: os.environ[k] for k in ("FCAST_HOME", "FCAST_LAKE", "FCAST_DB_URL")}
    mp.undo()
    yield {"engine": engine, "url": url, "folder": folder, "env": env, "first": first}
    engine.dispose()


def fork_and_spawn_matrix(folder, fork: tuple, spawn: tuple, cell_timeout: float = 60):
    """Two libraries scanned into one database, a small matrix of each: ``fork = (library, families, workers)``
    through the fork path and ``spawn = (...)`` through the spawn path (Windows' only one: the adapter must
    pickle). Returns (engine, fork summary, spawn summary)."""
    from fcast_assets.compat.probe import run_matrix

    engine, _ = scanned_db(folder, fork[0], spawn[0])
    a = run_matrix(engine, fork[0], families=fork[1], workers=fork[2], cell_timeout=cell_timeout)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FCAST_PROCESS_MODEL", "spawn")
        b = run_matrix(engine, spawn[0], families=spawn[1], workers=spawn[2], cell_timeout=cell_timeout)
    return engine, a, b


def compat_rows(engine, where: str, **params):
    """compat_result rows (value and context decoded) matching the SQL condition ``where``."""
    from sqlalchemy import text

    from fcast_assets.db.models import JSONType

    with engine.connect() as conn:
        return conn.execute(text(f"""SELECT result_id, model, method, param, value, value_label, scenario, status,
                                     exception_type, message, context FROM compat_result WHERE {where}""")
                            .columns(value=JSONType, context=JSONType), params).all()


def compat_cells_of_runs(engine, where: str, **params):
    """As :func:`compat_rows`, with the scenario facts and the run's columns (``library``) to filter on."""
    from sqlalchemy import text

    from fcast_assets.db.models import JSONType

    with engine.connect() as conn:
        return conn.execute(text(f"""SELECT r.result_id, model, method, param, value, value_label, scenario, status,
                                     exception_type, message, context, scenario_facts
                                     FROM compat_result r JOIN compat_run c USING (compat_run_id)
                                     WHERE {where}""")
                            .columns(value=JSONType, context=JSONType, scenario_facts=JSONType), params).all()


def one_compat_cell(engine, where: str, **params):
    """The one cell matching ``where`` (an assertion names what matched when it is not exactly one)."""
    rows = compat_cells_of_runs(engine, where, **params)
    assert len(rows) == 1, (where, params, [(r.model, r.value_label, r.scenario) for r in rows])
    return rows[0]


def resources(db_url, lake_root=None, spark: bool = False) -> dict:
    """The Dagster resources of a test run, typed as in the Definitions: ``meta_db`` on ``db_url``, ``lake`` on
    ``lake_root`` (None: the environment's lake, FCAST_LAKE / FCAST_HOME), ``pyspark`` when ``spark``."""
    from fcast_assets.defs.resources import Lake, MetadataDB, spark_resource

    out = {"meta_db": MetadataDB(url=str(db_url)), "lake": Lake(root=str(lake_root) if lake_root else None)}
    if spark:
        out["pyspark"] = spark_resource()
    return out


def headless_chromium(user_data_dir):
    """A selenium driver on Debian's chromium + chromedriver, headless, with the flags that keep it off the
    network (this machine's closed network refuses its background connections). The caller quits it."""
    import shutil

    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    os.environ["SE_OFFLINE"] = "true"  # selenium must not look for drivers online
    opts = Options()
    opts.binary_location = shutil.which("chromium")
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
              "--disable-background-networking", "--disable-component-update", "--disable-sync",
              f"--user-data-dir={user_data_dir}", "--window-size=1600,1000"):
        opts.add_argument(a)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=opts)
