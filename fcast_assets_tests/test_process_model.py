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
