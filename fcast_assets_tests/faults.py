"""Helpers of the fault suite (test_fault_suite.py, test_crash_safety.py): a metadata-DB template (neuralforecast
scanned, the compat cells the model choice needs) built once per test session and copied per case (SQLite file
copy, or a row copy into a fresh PostgreSQL database), child processes that kill themselves at a chosen point, and
the reliability figures (``FCAST_RELIABILITY_LOG``)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest
from sqlalchemy import Engine, Integer, insert, select, text
from sqlmodel import SQLModel

from fcast_assets.db.engine import init_db, make_engine

REPO = Path(__file__).resolve().parents[1]
TEMPLATE_MODELS = ["NHITS"]  # the model of the per-slot selectors the cases train
TEMPLATE_FAMILIES = ["futr_exog_list", "hist_exog_list", "stat_exog_list", "freq"]  # what the choice checks
_TEMPLATE: dict[str, Path] = {}
# optional engines / models / a scraper / another artifact root: never inherited by a case
OPTIONAL_ENV = ("FCAST_ENGINE", "FCAST_SCRAPER", "FCAST_CHRONOS_MODEL", "FCAST_TIMESFM_MODEL", "FCAST_ARTIFACTS")

# Every child script starts with this: ``die()`` kills the process the hard way (no finally, no atexit, no flush),
# through psutil so that it works on every platform.
PRELUDE = textwrap.dedent("""
    import json, os, sys
    import psutil

    def die(*_a, **_k):
        sys.stdout.flush()
        psutil.Process().kill()

    from fcast_assets.db.engine import get_engine
    ENGINE = get_engine(os.environ["FCAST_DB_URL"])
""")


def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The SQLite file of the session's template: neuralforecast scanned and the compat cells of NHITS (the exogenous
    families the model choice checks, and freq: the training plans' freq=1). Built once per session, never written
    again."""
    if "db" not in _TEMPLATE:
        from fcast_assets.compat.probe import run_matrix
        from fcast_assets.registry import scan_and_store

        folder = tmp_path_factory.mktemp("fault_template")
        url = f"sqlite:///{folder / 'forecast_meta.db'}"
        eng = make_engine(url)
        init_db(eng)
        scan_and_store("neuralforecast", eng)
        run_matrix(eng, "neuralforecast", models=TEMPLATE_MODELS, families=TEMPLATE_FAMILIES, workers=2,
                   cell_timeout=90)
        eng.dispose()
        _TEMPLATE["db"] = folder / "forecast_meta.db"
    return _TEMPLATE["db"]


def fresh_pg_url() -> str:
    from .conftest import _fresh_pg_database

    return _fresh_pg_database()


def copy_db(source: Path, kind: str, folder: Path) -> str:
    """URL of a private copy of the SQLite file ``source``: a SQLite file in ``folder``, or a fresh PostgreSQL
    database with every row of every table (sequences moved past the copied ids, compat views created)."""
    if kind == "sqlite":
        target = folder / "forecast_meta.db"
        with sqlite3.connect(source) as src:
            src.execute(f"VACUUM INTO '{target}'")
        url = f"sqlite:///{target}"
        eng = make_engine(url)
        init_db(eng)
        eng.dispose()
        return url
    from fcast_assets.compat.probe import create_views

    url = fresh_pg_url()
    src, dst = make_engine(f"sqlite:///{source}"), make_engine(url)
    init_db(dst)
    with src.connect() as s, dst.begin() as d:
        d.execute(text("SET LOCAL session_replication_role = replica"))  # rows as they are (self-references)
        for t in SQLModel.metadata.sorted_tables:
            rows = [dict(r) for r in s.execute(select(t)).mappings()]
            if rows:
                d.execute(insert(t), rows)
            pk = list(t.primary_key.columns)
            if len(pk) == 1 and isinstance(pk[0].type, Integer) and rows:
                col = pk[0].name
                seq = d.execute(text(f"SELECT pg_get_serial_sequence('\"{t.name}\"', '{col}')")).scalar()
                if seq:
                    d.execute(text(f"SELECT setval('{seq}', (SELECT MAX(\"{col}\") FROM \"{t.name}\"))"))
    create_views(dst)
    src.dispose()
    dst.dispose()
    return url


def empty_db(kind: str, folder: Path) -> str:
    """URL of a new empty metadata DB (tables created, games seeded)."""
    from fcast_assets.lake import games

    url = f"sqlite:///{folder / 'forecast_meta.db'}" if kind == "sqlite" else fresh_pg_url()
    eng = make_engine(url)
    init_db(eng)
    games.seed_games(eng)
    eng.dispose()
    return url


def build_loto6(eng: Engine) -> None:
    """The six games seeded, loto6's bronze, silver and gold tables built (what a training case needs)."""
    from fcast_assets.features import gold
    from fcast_assets.lake import games

    games.seed_games(eng)
    gold.build_game(eng, games.get_game(eng, "loto6"))


def home_env(folder: Path, url: str) -> dict[str, str]:
    return {"FCAST_HOME": str(folder), "FCAST_LAKE": str(folder / "lake"), "FCAST_DB_URL": url}


def use_home(mp: pytest.MonkeyPatch, folder: Path, url: str) -> None:
    """FCAST_HOME / FCAST_LAKE / FCAST_DB_URL of this process (and of the children it starts) in ``folder``."""
    for k, v in home_env(folder, url).items():
        mp.setenv(k, v)
    for v in OPTIONAL_ENV:
        mp.delenv(v, raising=False)


def start_child(body: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start ``PRELUDE + body`` as ``python -c`` in the repository (``env``: this process's environment plus
    these variables); :func:`finish_child` waits for it. Several cases start their kills at once this way.
    Its output goes to files, not pipes: waiting for the child never waits for processes it left behind."""
    full = {k: v for k, v in os.environ.items() if k not in OPTIONAL_ENV}
    out, err = tempfile.TemporaryFile("w+", encoding="utf-8"), tempfile.TemporaryFile("w+", encoding="utf-8")
    proc = subprocess.Popen([sys.executable, "-c", PRELUDE + textwrap.dedent(body), *args],
                            env={**full, **(env or {})}, cwd=str(REPO), stdout=out, stderr=err)
    proc.outputs = (out, err)  # type: ignore[attr-defined]
    return proc


def finish_child(proc: subprocess.Popen, timeout: float = 300, killed: bool = True,
                 check: bool = True) -> subprocess.CompletedProcess:
    """Wait for a :func:`start_child` process; with ``check``, assert how it ended (:func:`check_child`)."""
    try:
        proc.wait(timeout=timeout)
    finally:
        texts = []
        for f in proc.outputs:  # type: ignore[attr-defined]
            f.seek(0)
            texts.append(f.read())
            f.close()
    child = subprocess.CompletedProcess(proc.args, proc.returncode, *texts)
    if check:
        check_child(child, killed)
    return child


def check_child(child: subprocess.CompletedProcess, killed: bool = True) -> None:
    """``killed``: it died by the kill (not by an exception, not by finishing); else it finished with 0."""
    if killed:
        expected = -signal.SIGKILL if sys.platform != "win32" else None
        assert (child.returncode == expected) if expected is not None else child.returncode != 0, \
            f"child was not killed (rc {child.returncode}):\n{child.stdout[-2000:]}\n{child.stderr[-3000:]}"
    else:
        assert child.returncode == 0, f"child failed (rc {child.returncode}):\n{child.stderr[-3000:]}"


def run_child(body: str, *args: str, timeout: float = 300, killed: bool = True) -> subprocess.CompletedProcess:
    """:func:`start_child` + :func:`finish_child`."""
    return finish_child(start_child(body, *args), timeout=timeout, killed=killed)


def count(engine: Engine, sql: str, **params: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(sql), params).scalar() or 0)


def running_executions(engine: Engine) -> list[int]:
    with engine.connect() as conn:
        return list(conn.execute(text("SELECT execution_id FROM run_execution WHERE status = 'running'")).scalars())


# ------------------------------------------------------------------------------------------------ figures
@dataclass
class Case:
    name: str
    db: str
    rows_lost: int = 0


@contextmanager
def case(name: str, db: str) -> Iterator[Case]:
    """One fault case: its line in ``FCAST_RELIABILITY_LOG`` (when set) says survived true only when the block
    (the kill, the re-run and every assertion) ended without an exception."""
    c = Case(name, "postgresql" if db.startswith("postgres") else "sqlite")
    ok = False
    try:
        yield c
        ok = True
    finally:
        log = os.environ.get("FCAST_RELIABILITY_LOG")
        if log:
            with open(log, "a", encoding="utf-8") as f:
                f.write(json.dumps({"suite": "fault", "case": c.name, "db": c.db, "survived": ok,
                                    "rows_lost": int(c.rows_lost)}) + "\n")
