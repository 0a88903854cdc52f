"""The same thing twice at once, in real processes, on SQLite and PostgreSQL: two scans of a library on an empty
database, two ingests of the same game file, two trainings of the same model selector. Both end correct (one
registry release, one new Delta version, versions v1 and v2), the second one waiting for the first on the
cross-process lock of :mod:`fcast_assets.locks`; a lock held too long is one clear refusal naming its holder, and a
holder that dies releases it. Without the lock (another host), the registry insert is still safe (IntegrityError
caught, the winner's rows re-read)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest
from sqlalchemy import text

from fcast_assets.db.engine import init_db, make_engine

REPO = Path(__file__).resolve().parents[1]
FCAST = [sys.executable, "-m", "fcast_assets.cli"]
OPTIONAL = ("FCAST_ENGINE", "FCAST_SCRAPER", "FCAST_CHRONOS_MODEL", "FCAST_TIMESFM_MODEL", "FCAST_ARTIFACTS",
            "FCAST_DEBUG", "FCAST_LOCK_TIMEOUT")


def _env(**over: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in OPTIONAL}
    env.update(over)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _together(cmds: list[list[str]], env: dict[str, str], timeout: float = 240) -> list[tuple[int, str, str]]:
    """Start every command at once (real processes), wait for all: [(exit code, stdout, stderr)]."""
    procs = [subprocess.Popen(c, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              encoding="utf-8") for c in cmds]
    out = []
    for p in procs:
        o, e = p.communicate(timeout=timeout)
        out.append((p.returncode, o, e))
    return out


def _clean(err: str) -> None:
    assert "Traceback" not in err and "IntegrityError" not in err, err


def _at_go(tmp_path: Path, script: str, extra: list[str], env: dict[str, str], what: str) -> list[tuple[str, str]]:
    """Two processes of ``script`` that import and set up, each touch ``ready<i>``, then wait for a ``go`` file
    to start their write at the same instant; both must exit 0 with nothing on stderr but logging. Their outputs."""
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", script, str(tmp_path / f"ready{i}"), str(go), *extra], env=env,
                              cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8")
             for i in range(2)]
    deadline = time.monotonic() + 120
    while not all((tmp_path / f"ready{i}").exists() for i in range(2)):
        assert time.monotonic() < deadline and all(p.poll() is None for p in procs), f"{what} did not start"
        time.sleep(0.02)
    go.touch()
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (o, e) in zip(procs, outs):
        assert p.returncode == 0, e
        _clean(e)
    return outs


def _scalar(engine, sql: str, **kw):  # noqa: ANN001
    with engine.connect() as conn:
        return conn.execute(text(sql), kw).scalar()


# ------------------------------------------------------------------------------------------------------ scans
def _registry_is_single(db_url: str, library: str = "utilsforecast") -> None:
    eng = make_engine(db_url)
    try:
        assert _scalar(eng, "SELECT COUNT(*) FROM registry_library WHERE name = :n", n=library) == 1
        assert _scalar(eng, "SELECT COUNT(*) FROM registry_release r JOIN registry_library l "
                            "ON l.library_id = r.library_id WHERE l.name = :n", n=library) == 1
        n, distinct = (_scalar(eng, "SELECT COUNT(*) FROM registry_symbol"),
                       _scalar(eng, "SELECT COUNT(DISTINCT qualname) FROM registry_symbol"))
        assert n == distinct and n > 100  # every symbol once, the library really scanned
    finally:
        eng.dispose()


def test_two_scans_at_once_on_an_empty_database(db_url, tmp_path):
    env = _env(FCAST_HOME=str(tmp_path / "home"), FCAST_DB_URL=db_url)
    outs = _together([FCAST + ["scan", "utilsforecast"]] * 2, env)
    for rc, out, err in outs:
        assert rc == 0, err
        _clean(err)
    statuses = sorted(next(w for w in ("created", "unchanged", "updated") if w in o) for _, o, _ in outs)
    assert statuses == ["created", "unchanged"], outs  # the second waited, then found the first one's release
    _registry_is_single(db_url)


WRITE_AT_GO = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    from fcast_assets.db.engine import get_engine
    from fcast_assets.registry import get_library, scan_library, write_scan
    spec = get_library("utilsforecast")
    result = scan_library(spec)
    engine = get_engine(os.environ["FCAST_DB_URL"])
    Path(sys.argv[1]).touch()
    while not Path(sys.argv[2]).exists():
        time.sleep(0.005)
    print(write_scan(engine, spec, result)["status"])
""")


def test_registry_write_without_the_lock_is_still_safe(db_url, tmp_path):
    """Two writers released at the same instant, bypassing the scan lock (another host): the loser's insert hits
    the unique key, rolls back and is re-run against the winner's rows."""
    env = _env(FCAST_HOME=str(tmp_path / "home"), FCAST_DB_URL=db_url)
    eng = make_engine(db_url)
    init_db(eng)
    eng.dispose()
    outs = _at_go(tmp_path, WRITE_AT_GO, [], env, "writers")
    assert sorted(o.strip() for o, _ in outs) == ["created", "unchanged"]
    _registry_is_single(db_url)


HOLD = textwrap.dedent("""
    import sys, time
    from fcast_assets import locks
    with locks.hold(sys.argv[1]):
        print("held", flush=True)
        time.sleep(300)
""")


def test_a_held_lock_is_refused_in_one_line_and_released_when_its_holder_dies(tmp_path):
    env = _env(FCAST_HOME=str(tmp_path / "home"), FCAST_DB_URL=f"sqlite:///{tmp_path / 'meta.db'}")
    holder = subprocess.Popen([sys.executable, "-c", HOLD, "scan:utilsforecast"], env=env, cwd=REPO,
                              stdout=subprocess.PIPE, text=True, encoding="utf-8")
    try:
        assert holder.stdout.readline().strip() == "held"
        t0 = time.monotonic()
        r = subprocess.run(FCAST + ["scan", "utilsforecast"], env={**env, "FCAST_LOCK_TIMEOUT": "1"}, cwd=REPO,
                           capture_output=True, text=True, encoding="utf-8", timeout=120)
        assert r.returncode == 3, r.stderr
        lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
        assert "scan:utilsforecast" in lines[0] and f"process {holder.pid}" in lines[0]
        assert "FCAST_LOCK_TIMEOUT" in lines[0] and "Nothing was changed" in lines[0]
        assert time.monotonic() - t0 < 60
        # another lock name is not blocked by it
        r2 = subprocess.run(FCAST + ["scan", "coreforecast"], env={**env, "FCAST_LOCK_TIMEOUT": "1"}, cwd=REPO,
                            capture_output=True, text=True, encoding="utf-8", timeout=120)
        assert r2.returncode == 0, r2.stderr
    finally:
        psutil.Process(holder.pid).kill()  # killed, not released: the OS drops the lock with the process
        holder.wait(timeout=30)
    r = subprocess.run(FCAST + ["scan", "utilsforecast"], env={**env, "FCAST_LOCK_TIMEOUT": "5"}, cwd=REPO,
                       capture_output=True, text=True, encoding="utf-8", timeout=120)
    assert r.returncode == 0 and "created" in r.stdout, r.stderr


def test_lock_is_reentrant_and_named_for_every_os(tmp_path, monkeypatch):
    from fcast_assets import locks

    monkeypatch.setenv("FCAST_HOME", str(tmp_path))
    p = locks.lock_path("train:loto6/N1")
    assert p.parent == tmp_path / "locks" and ":" not in p.name and "/" not in p.name
    assert locks.lock_path("train:loto6/N1") != locks.lock_path("train:loto6_N1")  # different things, files
    with locks.hold("train:loto6/N1", timeout=0):
        with locks.hold("train:loto6/N1", timeout=0):  # train() holds it and calls retrain(), which takes it
            assert locks.read_owner("train:loto6/N1")["pid"] == os.getpid()
    with locks.hold("train:loto6/N1", timeout=0):  # released: free again
        pass


def _loto6_bronze(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN202
    """A home in tmp_path on ``db_url`` with the games seeded and loto6's shipped history in bronze."""
    from fcast_assets.lake import games, pipeline

    home = tmp_path / "home"
    for k, v in (("FCAST_HOME", str(home)), ("FCAST_LAKE", str(home / "lake")), ("FCAST_DB_URL", db_url)):
        monkeypatch.setenv(k, v)
    for v in OPTIONAL:
        monkeypatch.delenv(v, raising=False)
    eng = make_engine(db_url)
    init_db(eng)
    games.seed_games(eng)
    spec = games.get_game(eng, "loto6")
    pipeline.ingest_bronze(eng, spec)
    return eng, spec


# ---------------------------------------------------------------------------------------------------- ingests
def test_two_ingests_of_the_same_game_file_at_once(db_url, tmp_path, monkeypatch):
    from fcast_assets.lake import bronze as B
    from fcast_assets.lake import deltaio, pipeline
    from fcast_assets.lake.sources import embedded_dir

    eng, spec = _loto6_bronze(db_url, tmp_path, monkeypatch)  # the shipped history (draws 1..2139)
    uri = pipeline.bronze_uri(spec)
    before_rows, before_version = len(B.read_bronze(uri)), deltaio.current_version(uri)
    n_versions = _scalar(eng, "SELECT COUNT(*) FROM dataset_version")
    eng.dispose()
    file = embedded_dir() / "fixtures" / "mizuho_loto6_A1022141.csv"  # draw 2141, as downloaded in a browser
    outs = _together([FCAST + ["game", "ingest", "loto6", str(file)]] * 2, _env())
    for rc, out, err in outs:
        assert rc == 0, err
        _clean(err)
    assert sorted(o.split("file(s), ")[1].split(" new")[0] for _, o, _ in outs) == ["0", "1"], outs
    final = B.read_bronze(uri)
    assert len(final) == before_rows + 1 and final["draw_no"].is_unique
    assert (final["draw_no"] == 2141).sum() == 1
    assert deltaio.current_version(uri) == before_version + 1  # one Delta version with the new draw, not two
    eng = make_engine(db_url)
    assert _scalar(eng, "SELECT COUNT(*) FROM dataset_version") <= n_versions + 2
    eng.dispose()


INGEST_AT_GO = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    from fcast_assets.db.engine import get_engine
    from fcast_assets.lake import games, pipeline
    from fcast_assets.lake.sources import FileSource, parse_result_bytes
    engine = get_engine(os.environ["FCAST_DB_URL"])
    spec = games.get_game(engine, "loto6")
    f = Path(sys.argv[3])
    records = [*FileSource().read(spec), parse_result_bytes(f.read_bytes(), spec, source=f"manual:{f.name}")]
    Path(sys.argv[1]).touch()
    while not Path(sys.argv[2]).exists():
        time.sleep(0.005)
    print(pipeline.ingest_bronze(engine, spec, records=records)["inserted"])
""")


def test_two_ingests_released_at_the_same_instant(db_url, tmp_path, monkeypatch):
    """As above, but both processes enter ingest_bronze at the same instant (a go file): the lock, not luck,
    keeps the Delta table to one new version and each draw once."""
    from fcast_assets.lake import bronze as B
    from fcast_assets.lake import deltaio, pipeline
    from fcast_assets.lake.sources import embedded_dir

    eng, spec = _loto6_bronze(db_url, tmp_path, monkeypatch)
    eng.dispose()
    uri = pipeline.bronze_uri(spec)
    before_rows, before_version = len(B.read_bronze(uri)), deltaio.current_version(uri)
    file = embedded_dir() / "fixtures" / "mizuho_loto6_A1022141.csv"
    outs = _at_go(tmp_path, INGEST_AT_GO, [str(file)], _env(), "ingests")
    assert sorted(o.strip() for o, _ in outs) == ["0", "1"], outs
    final = B.read_bronze(uri)
    assert len(final) == before_rows + 1 and final["draw_no"].is_unique
    assert deltaio.current_version(uri) == before_version + 1


# -------------------------------------------------------------------------------------------------- trainings
TRAIN = textwrap.dedent("""
    import json, os, sys
    from fcast_assets.db.engine import get_engine
    from fcast_assets.models import train as T
    r = T.train(get_engine(os.environ["FCAST_DB_URL"]), "loto6", sys.argv[1], overrides={"max_steps": 2, "n_windows": 1})
    print(json.dumps({"version": r["version"], "artifact": r["artifact_uri"]}))
""")


def test_two_trainings_of_the_same_selector_at_once(loto6_trained):
    """loto6.N2 never trained: two processes at once. The second waits on train:loto6/N2, then trains from the
    row the first registered: v1 and v2, both complete and registered, no partial folder, one registry row."""
    _two_trainings(loto6_trained["engine"], loto6_trained["env"], "N2")


@pytest.mark.postgres
def test_two_trainings_of_the_same_selector_at_once_on_postgresql(loto6_trained, tmp_path):
    """The same on PostgreSQL: a copy of the trained SQLite database in a fresh PostgreSQL database, its own
    artifact root, another selector (N3)."""
    from sqlalchemy.engine import make_url

    from .faults import copy_db

    url = copy_db(Path(make_url(loto6_trained["url"]).database), "postgresql", tmp_path)
    eng = make_engine(url)
    try:
        _two_trainings(eng, {**loto6_trained["env"], "FCAST_DB_URL": url,
                             "FCAST_ARTIFACTS": str(tmp_path / "artifacts")}, "N3")
    finally:
        eng.dispose()


def _two_trainings(eng, env: dict[str, str], selector: str) -> None:  # noqa: ANN001
    import json

    outs = _together([[sys.executable, "-c", TRAIN, selector]] * 2, _env(**env), timeout=400)
    for rc, out, err in outs:
        assert rc == 0, err[-3000:]
        _clean(err)
    res = [json.loads(o.strip().splitlines()[-1]) for _, o, _ in outs]
    assert sorted(r["version"] for r in res) == [1, 2]
    with eng.connect() as conn:
        rows = conn.execute(text(
            "SELECT v.version, v.artifact_uri, e.status FROM model_version v JOIN model_registry m "
            "ON m.model_id = v.model_id JOIN model_series_selector s ON s.selector_id = m.selector_id "
            "JOIN run_execution e ON e.execution_id = v.execution_id WHERE s.name = :s ORDER BY v.version"),
            {"s": selector}).all()
        n_models = conn.execute(text("SELECT COUNT(*) FROM model_registry m JOIN model_series_selector s "
                                     "ON s.selector_id = m.selector_id WHERE s.name = :s"), {"s": selector}).scalar()
    assert [(r.version, r.status) for r in rows] == [(1, "success"), (2, "success")] and n_models == 1
    for r in rows:
        assert Path(r.artifact_uri).is_dir() and any(Path(r.artifact_uri).iterdir())
    folder = Path(rows[0].artifact_uri).parent
    assert sorted(p.name for p in folder.iterdir()) == ["v1", "v2"]  # no partial / orphan left
