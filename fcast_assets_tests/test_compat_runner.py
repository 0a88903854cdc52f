"""The cell runner's isolation: crashes, hangs and failing setups become recorded cells, never a lost run — in
both process models (fork, and spawn: the path of platforms without fork, forced here by FCAST_PROCESS_MODEL).
And the post-conditions that turn a run into `suspect`.

Spawned workers import what they run by module path: the toy adapter and the isolated functions below are
module-level for that reason."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pandas as pd
import psutil
import pytest

from fcast_assets.compat import process
from fcast_assets.compat.postconditions import check_cross_validation, check_forecast
from fcast_assets.compat.process import call_isolated, process_model
from fcast_assets.compat.runner import Cell, Group, run_groups

MODES = ["fork", "spawn"]


@pytest.fixture(params=MODES)
def mode(request, monkeypatch):
    if request.param == "fork" and not hasattr(os, "fork"):
        pytest.skip("no os.fork on this platform")
    monkeypatch.setenv("FCAST_PROCESS_MODEL", request.param)
    return request.param


class ToyAdapter:
    def setup(self, group):
        if group.setup.get("fail"):
            raise RuntimeError("cannot build the baseline")
        if group.setup.get("hang"):
            time.sleep(30)
        if group.setup.get("crash"):
            os._exit(7)
        return {"base": 41, "pid": os.getpid()}

    def run(self, state, cell):
        action = cell.spec["do"]
        if action == "ok":
            assert state["base"] + 1 == 42
            return []
        if action == "raise":
            raise ValueError("bad value for x\nsecond line")
        if action == "crash":
            os._exit(9)
        if action == "hang":
            time.sleep(30)
        if action == "mutate":  # a cell mutating the shared state must not leak into the next one
            state["base"] = 0
            return []
        if action == "suspect":
            return ["rows 3 != ids 2 x h 2"]
        if action == "exit":  # SystemExit is not an Exception: the cell's process ends without a result
            sys.exit(5)
        raise AssertionError(action)


def _cell(do):
    return Cell("toy.Model", "Toy.fit", "x", do, do, spec={"do": do})


def test_runner_records_every_outcome(mode):
    groups = [
        Group("g1", "toy.Model", {}, [_cell(d) for d in ("ok", "raise", "crash", "mutate", "ok", "suspect")]),
        Group("g2", "toy.Model", {}, [_cell("hang"), _cell("ok")]),
        Group("g3", "toy.Model", {"fail": True}, [_cell("ok"), _cell("ok")]),
    ]
    results = []
    t0 = time.perf_counter()
    run_groups(ToyAdapter(), groups, workers=2, cell_timeout=2.0,
               on_result=lambda g, c, r: results.append((g.key, c.value, r)))
    assert time.perf_counter() - t0 < 20
    assert len(results) == 10
    by = {}
    for key, value, r in results:
        by.setdefault((key, value), []).append(r)
    assert [r["status"] for r in by[("g1", "ok")]] == ["ok", "ok"]  # the second ok ran after "mutate"
    err = by[("g1", "raise")][0]
    assert err["status"] == "error" and err["exception_type"] == "ValueError" and err["message"] == "bad value for x"
    crash = by[("g1", "crash")][0]
    assert crash["status"] == "error" and crash["exception_type"] == "WorkerCrashed" and "code 9" in crash["message"]
    assert by[("g1", "suspect")][0]["status"] == "suspect"
    assert by[("g1", "mutate")][0]["status"] == "ok"
    hang = by[("g2", "hang")][0]
    assert hang["status"] == "timeout" and hang["message"] == "no result within 2s"
    assert by[("g2", "ok")][0]["status"] == "ok"  # after the hang, in a fresh worker (spawn: setup again)
    setup = by[("g3", "ok")]
    assert [r["status"] for r in setup] == ["error", "error"]
    assert all(r["message"] == "setup failed: cannot build the baseline" for r in setup)
    assert all(r["exception_type"] == "RuntimeError" and r["stage"] == "setup" for r in setup)
    assert all(isinstance(r["seconds"], float) for key, _, r in results if key == "g1")


def test_runner_contains_setup_hangs_crashes_and_exits(mode):
    groups = [
        Group("hang", "toy.Model", {"hang": True}, [_cell("ok"), _cell("ok")]),
        Group("crash", "toy.Model", {"crash": True}, [_cell("ok")]),
        Group("exit", "toy.Model", {}, [_cell("exit"), _cell("ok"), _cell("crash"), _cell("ok")]),
    ]
    results = []
    t0 = time.perf_counter()
    run_groups(ToyAdapter(), groups, workers=2, cell_timeout=1.0, setup_timeout=1.0,
               on_result=lambda g, c, r: results.append((g.key, c.value, r)))
    assert time.perf_counter() - t0 < 20
    statuses = [(k, v, r["status"], r["exception_type"]) for k, v, r in results]
    assert len(statuses) == 7
    assert sorted(x for x in statuses if x[0] == "hang") == [("hang", "ok", "timeout", "Timeout")] * 2
    assert [x for x in statuses if x[0] == "crash"] == [("crash", "ok", "error", "WorkerCrashed")]
    assert [x for x in statuses if x[0] == "exit"] == [
        ("exit", "exit", "error", "WorkerCrashed"), ("exit", "ok", "ok", None),
        ("exit", "crash", "error", "WorkerCrashed"), ("exit", "ok", "ok", None)]
    assert "code 7" in next(r["message"] for k, _, r in results if k == "crash")


def test_runner_one_worker_goes_on_after_a_hang(mode):
    """After a cell overruns, the group's remaining cells and the next groups still run, each reported once."""
    groups = [Group("a", "toy.Model", {}, [_cell("ok"), _cell("hang"), _cell("mutate"), _cell("ok")]),
              Group("b", "toy.Model", {}, [_cell("crash"), _cell("ok")]),
              Group("c", "toy.Model", {}, [])]
    results = []
    run_groups(ToyAdapter(), groups, workers=1, cell_timeout=1.0,
               on_result=lambda g, c, r: results.append((g.key, c.value, r["status"])))
    assert results == [("a", "ok", "ok"), ("a", "hang", "timeout"), ("a", "mutate", "ok"), ("a", "ok", "ok"),
                       ("b", "crash", "error"), ("b", "ok", "ok")]


def test_process_model_choice(monkeypatch, caplog):
    has_fork = hasattr(os, "fork")
    monkeypatch.delenv("FCAST_PROCESS_MODEL", raising=False)
    assert process_model() == ("fork" if has_fork else "spawn")
    for value, want in (("auto", "fork" if has_fork else "spawn"), ("spawn", "spawn"), (" Spawn ", "spawn"),
                        ("fork", "fork" if has_fork else "spawn")):
        monkeypatch.setenv("FCAST_PROCESS_MODEL", value)
        assert process_model() == want
    monkeypatch.setenv("FCAST_PROCESS_MODEL", "fork")
    monkeypatch.delattr(os, "fork", raising=False)  # a platform without fork (Windows)
    with caplog.at_level("WARNING", logger="fcast_assets.compat.process"):
        process._said.clear()
        assert process_model() == "spawn"
    assert "no os.fork" in caplog.text


# module-level: a spawned worker imports them by reference
def isolated_double(x):
    return {"twice": x * 2, "pid": os.getpid()}


def isolated_sleep(seconds):
    time.sleep(seconds)
    return {"slept": seconds}


def isolated_exit(code):
    os._exit(code)


def isolated_raise():
    raise KeyError("nope")


def isolated_grandchild(seconds, pid_file):
    """Starts a process of its own, then hangs: a timeout must stop both."""
    child = subprocess.Popen([sys.executable, "-c", f"import time; time.sleep({seconds})"])
    with open(pid_file, "w", encoding="utf-8") as f:
        f.write(str(child.pid))
    time.sleep(seconds)
    return {"grandchild": child.pid}


def test_call_isolated(mode):
    out, reason = call_isolated(isolated_double, (21,), 60)
    assert reason is None and out["twice"] == 42 and out["pid"] != os.getpid()
    assert call_isolated(isolated_sleep, (10,), 1.0) == (None, "timeout")
    out, reason = call_isolated(isolated_exit, (6,), 30)
    assert out is None and reason == "exited with code 6"
    out, reason = call_isolated(isolated_raise, (), 30)
    assert out is None and reason
    again, reason = call_isolated(isolated_double, (1,), 60)  # a fresh process after the timeout and the exit
    assert reason is None and again["twice"] == 2
    if mode == "spawn":  # a warm worker is reused when the previous call ended well
        third, _ = call_isolated(isolated_double, (2,), 60)
        assert third["pid"] == again["pid"]


def test_spawn_timeout_stops_the_whole_process_tree(monkeypatch, tmp_path):
    monkeypatch.setenv("FCAST_PROCESS_MODEL", "spawn")
    pid_file = tmp_path / "grandchild.pid"
    assert call_isolated(isolated_grandchild, (60, str(pid_file)), 3.0) == (None, "timeout")
    pid = int(pid_file.read_text(encoding="utf-8"))
    try:
        assert psutil.Process(pid).status() == psutil.STATUS_ZOMBIE  # stopped; reaped by whoever adopted it
    except psutil.NoSuchProcess:
        pass


def _forecast(dates, values):
    return pd.DataFrame({"unique_id": ["a"] * len(dates), "ds": pd.to_datetime(dates), "M": values})


def test_check_forecast_breaches():
    last = {"a": pd.Timestamp("2020-01-10")}
    good = _forecast(["2020-01-11", "2020-01-12"], [1.0, 2.0])
    assert check_forecast(good, last_ds=last, h=2, freq="D", model_names=["M"]) == []
    off = _forecast(["2020-01-11", "2020-01-13"], [1.0, 2.0])
    assert any("grid" in b for b in check_forecast(off, last_ds=last, h=2, freq="D", model_names=["M"]))
    short = _forecast(["2020-01-11"], [1.0])
    assert any("rows 1 != ids 1 x h 2" in b for b in check_forecast(short, last_ds=last, h=2, freq="D",
                                                                      model_names=["M"]))
    nan = _forecast(["2020-01-11", "2020-01-12"], [1.0, float("nan")])
    assert any("NaN" in b for b in check_forecast(nan, last_ds=last, h=2, freq="D", model_names=["M"]))
    breaches = check_forecast(good, last_ds=last, h=2, freq="D", model_names=["M"], level=[80], quantiles=[0.1])
    assert any("M-lo-80" in b and "M_ql0.1" in b for b in breaches)
    ints = pd.DataFrame({"unique_id": ["a", "a"], "ds": [11, 12], "M": [1.0, 2.0]})
    assert check_forecast(ints, last_ds={"a": 10}, h=2, freq=1, model_names=["M"]) == []
    cv = pd.DataFrame({"unique_id": ["a"] * 2, "ds": [3, 4], "cutoff": [2, 2], "M": [1.0, 1.0]})
    assert check_cross_validation(cv, n_ids=1, h=2, n_windows=1, model_names=["M"]) == []
    assert check_cross_validation(cv, n_ids=1, h=2, n_windows=2, model_names=["M"])
