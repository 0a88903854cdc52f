"""The two process models give the same answers on the real library: a small neuralforecast matrix run once with
fork and once with spawn (the path of platforms without fork, forced by FCAST_PROCESS_MODEL) records the same
status and exception type in every cell; the miniature run of a plan works in spawn mode, with the library's own
reason for a wrong plan."""

from __future__ import annotations

import os
import time

import pytest
from sqlalchemy import text

from fcast_assets.compat import process
from fcast_assets.compat.probe import run_matrix
from fcast_assets.plans import loader, validator

from .conftest import matrix_copy, scanned_db

MLP = {"model": "MLP", "params": {"h": 2, "input_size": 8, "max_steps": 1}}
FIT, PREDICT = {"method": "NeuralForecast.fit"}, {"method": "NeuralForecast.predict"}


def _init(freq):
    return {"method": "NeuralForecast.__init__", "params": {"freq": freq}}


@pytest.fixture(scope="module")
def scanned(tmp_path_factory):
    """neuralforecast scanned once; each process model gets its own copy of the DB."""
    folder = tmp_path_factory.mktemp("scan")
    engine, _ = scanned_db(folder)
    engine.dispose()
    return folder / "forecast_meta.db"


@pytest.fixture(scope="module")
def matrices(scanned, tmp_path_factory):
    out = {}
    mp = pytest.MonkeyPatch()
    try:
        for mode in ("fork", "spawn"):
            if mode == "fork" and not hasattr(os, "fork"):
                continue
            mp.setenv("FCAST_PROCESS_MODEL", mode)
            engine, _ = matrix_copy(scanned, tmp_path_factory.mktemp(mode))
            t0 = time.perf_counter()
            summary = run_matrix(engine, "neuralforecast", models=["MLP"], families=["freq", "h"], workers=2,
                                 cell_timeout=90)
            out[mode] = (engine, summary, time.perf_counter() - t0)
    finally:
        mp.undo()
    yield out
    for engine, _, _ in out.values():
        engine.dispose()
    process.shutdown()  # the warm workers (each holding torch) are not kept for the rest of the session


def _cells(engine, run_id):
    with engine.connect() as conn:
        rows = conn.execute(text("""SELECT model, method, param, value_label, status, exception_type
                                    FROM compat_result WHERE compat_run_id = :r"""), {"r": run_id}).all()
    return {(r.model, r.method, r.param, r.value_label): (r.status, r.exception_type) for r in rows}


def test_fork_and_spawn_record_the_same_cells(matrices):
    if "fork" not in matrices:
        pytest.skip("no os.fork on this platform")
    (fe, fs, f_wall), (se, ss, s_wall) = matrices["fork"], matrices["spawn"]
    fork, spawn = _cells(fe, fs["compat_run_id"]), _cells(se, ss["compat_run_id"])
    assert len(fork) == fs["cells"] >= 10
    assert spawn == fork, {k: (fork.get(k), spawn.get(k)) for k in fork.keys() | spawn.keys()
                           if fork.get(k) != spawn.get(k)}
    statuses = {s for s, _ in fork.values()}
    assert "ok" in statuses and "error" in statuses  # both outcomes are compared, not just one
    print(f"matrix wall: fork {f_wall:.1f}s, spawn {s_wall:.1f}s, {len(fork)} cells")


def test_miniature_run_in_spawn_mode(matrices, monkeypatch):
    monkeypatch.setenv("FCAST_PROCESS_MODEL", "spawn")
    engine = matrices["spawn"][0]

    def check(steps, **kw):
        plan = loader._plan({"name": "x", "data": "synthetic", "steps": steps}, None)
        return validator.validate_plan(engine, plan, record=False, **kw)

    assert check([MLP, _init("D"), FIT, PREDICT]) == []
    wrong = [v for v in check([MLP, _init(1), FIT, PREDICT]) if v.rule == "miniature_error"]
    assert len(wrong) == 1, wrong
    assert wrong[0].detail["exception_type"] == "ValueError"
    assert "Time column contains timestamps but the specified frequency is an integer" in wrong[0].message


def test_miniature_timeout_in_spawn_mode(matrices, monkeypatch):
    """A spawned worker that overruns is stopped; the outcome is the fork path's timeout (a violation)."""
    from fcast_assets.plans import miniature

    monkeypatch.setenv("FCAST_PROCESS_MODEL", "spawn")
    monkeypatch.setattr(miniature, "TIMEOUT_S", 0.05)
    plan = loader._plan({"name": "x", "data": "synthetic", "steps": [MLP, _init("D"), FIT, PREDICT]}, None)
    t0 = time.perf_counter()
    found = validator.validate_plan(matrices["spawn"][0], plan, record=False)
    assert [v.rule for v in found] == ["miniature_timeout"]
    assert found[0].message == "the miniature run did not finish within 0s"
    assert time.perf_counter() - t0 < 30


def test_scratch_folders_of_dead_owners_are_swept(tmp_path):
    """A scratch folder whose owner process is gone is removed by the next sweep; one of a live owner (this
    process: a look-alike that must stay), a fresh one without an owner file (an older version's, maybe in use)
    and another prefix's are kept; one without an owner file older than a day is removed."""
    import json
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import json; from fcast_assets.compat.process import owner; "
                           "print(json.dumps(owner()))"], capture_output=True, text=True, check=True)
    folders = {n: tmp_path / f"fcast-compat-{n}" for n in ("dead", "live", "legacy_old", "legacy_new")}
    for d in folders.values():
        d.mkdir()
        (d / "model.ckpt").write_bytes(b"x" * 1024)
    (folders["dead"] / process.OWNER_FILE).write_text(dead.stdout)
    (folders["live"] / process.OWNER_FILE).write_text(json.dumps(process.owner()))
    old = time.time() - process.LEGACY_SCRATCH_AGE_S - 60
    os.utime(folders["legacy_old"], (old, old))
    other = tmp_path / "fcast-miniature-dead"
    other.mkdir()
    (other / process.OWNER_FILE).write_text(dead.stdout)
    removed = process.sweep_scratch("fcast-compat-", tmp_path)
    assert sorted(removed) == ["fcast-compat-dead", "fcast-compat-legacy_old"]
    assert folders["live"].exists() and folders["legacy_new"].exists() and other.exists()


def test_matrix_killed_midway_leaves_no_scratch_that_lasts(tmp_path, monkeypatch):
    """SIGKILL a real matrix run (utilsforecast) while it works in its scratch folder: no clean-up runs, the folder
    stays; the next run's scratch_dir removes it (and cleans its own up)."""
    import signal
    import subprocess
    import sys
    import tempfile

    if not hasattr(signal, "SIGKILL"):
        pytest.skip("POSIX kill; Windows ends a process the same way (TerminateProcess), tested in CI on Linux")
    db = f"sqlite:///{tmp_path / 'm.db'}"
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    code = ("from fcast_assets.db.engine import make_engine, init_db; from fcast_assets.registry import "
            "scan_and_store; from fcast_assets.compat.probe import run_matrix; "
            f"e = make_engine({db!r}); init_db(e); scan_and_store('utilsforecast', e); "
            "run_matrix(e, 'utilsforecast', workers=1)")
    child = subprocess.Popen([sys.executable, "-c", code], env={**os.environ, "TMPDIR": str(scratch),
                                                                "FCAST_HOME": str(tmp_path)})
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not list(scratch.glob(f"fcast-compat-*/{process.OWNER_FILE}")):
            time.sleep(0.2)
        left = list(scratch.glob("fcast-compat-*"))
        assert left, "the run did not start its scratch folder"
        time.sleep(1.0)
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    finally:
        if child.poll() is None:
            child.kill()
    assert all(d.exists() for d in left), "killed: nothing cleaned up"
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    with process.scratch_dir("fcast-compat-") as mine:
        assert not any(d.exists() for d in left) and os.path.isdir(mine)
    assert not os.path.exists(mine)
