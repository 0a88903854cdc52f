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

MODES = ["fork", "fork-batch", "spawn"]


@pytest.fixture(params=MODES)
def mode(request, monkeypatch):
    """fork: a child per cell; fork-batch: an adapter with ``batch_cells`` (cheap cells run in turn in one child,
    a cell that overruns or kills it runs again alone); spawn: the worker pool."""
    if request.param.startswith("fork") and not hasattr(os, "fork"):
        pytest.skip("no os.fork on this platform")
    monkeypatch.setenv("FCAST_PROCESS_MODEL", request.param.split("-")[0])
    monkeypatch.setattr(ToyAdapter, "batch_cells", request.param == "fork-batch", raising=False)
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
        if action == "hang_once":  # hangs on the first try only: the marker file says a try has begun
            marker = cell.spec["marker"]
            if not os.path.exists(marker):
                with open(marker, "w", encoding="utf-8") as f:
                    f.write(str(os.getpid()))
                time.sleep(30)
            return []
        if action == "sleep":
            time.sleep(cell.spec["s"])
            return []
        if action == "pid":  # which process ran the cell
            with open(cell.spec["file"], "a", encoding="utf-8") as f:
                f.write(f"{os.getpid()}\n")
            return []
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
    assert hang["status"] == "timeout"
    assert hang["message"] == "no result within 2s, twice (retried in a fresh process)"
    assert hang["retry"]["tries"] == 2 and hang["retry"]["first_message"] == "no result within 2s"
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


def test_batch_cells_share_one_child_until_one_breaks_it(mode, tmp_path):
    """fork-batch: the cells of a group run in one child, in order, until a crash or a hang; the cells after it
    run in a new child (and the broken one alone). fork: a child per cell. spawn: the worker's own process."""
    if mode == "spawn":
        pytest.skip("spawn workers run cells in their own process by design")
    log = tmp_path / "pids"
    pid = {"do": "pid", "file": str(log)}
    cells = [Cell("toy.Model", "Toy.fit", "x", f"p{i}", f"p{i}", spec=pid) for i in range(3)]
    cells += [_cell("crash")] + [Cell("toy.Model", "Toy.fit", "x", f"q{i}", f"q{i}", spec=pid) for i in range(2)]
    results = []
    run_groups(ToyAdapter(), [Group("g", "toy.Model", {}, cells)], workers=1, cell_timeout=5.0,
               on_result=lambda g, c, r: results.append((c.value, r["status"])))
    assert results == [("p0", "ok"), ("p1", "ok"), ("p2", "ok"), ("crash", "error"), ("q0", "ok"), ("q1", "ok")]
    pids = log.read_text(encoding="utf-8").split()
    if mode == "fork-batch":
        assert len(set(pids[:3])) == 1 and len(set(pids[3:])) == 1 and pids[0] != pids[3]
    else:
        assert len(set(pids)) == 5


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


def test_timed_out_cell_is_retried_once_in_a_fresh_process(mode, tmp_path):
    """A cell that hangs on its first try and answers on the second is recorded with its real status and the note;
    one that always hangs is a timeout after two tries; an Auto-named model gets its own, longer timeout."""
    marker = tmp_path / "tried"
    once = Cell("toy.Model", "Toy.fit", "x", "once", "once", spec={"do": "hang_once", "marker": str(marker)})
    slow = {"do": "sleep", "s": 0.9}
    groups = [Group("g1", "toy.Model", {}, [once, _cell("hang"), _cell("ok")]),
              Group("auto", "toy.AutoModel", {}, [Cell("toy.AutoModel", "Auto.fit", "x", "slow", "slow", spec=slow)]),
              Group("plain", "toy.Model", {}, [Cell("toy.Model", "Toy.fit", "x", "slow", "slow", spec=slow)])]
    results = {}
    t0 = time.perf_counter()
    run_groups(ToyAdapter(), groups, workers=2, cell_timeout=0.5,
               on_result=lambda g, c, r: results.setdefault((g.key, c.value), []).append(r))
    assert time.perf_counter() - t0 < 20
    assert all(len(v) == 1 for v in results.values()) and len(results) == 5  # each cell reported once
    first = int(marker.read_text(encoding="utf-8"))
    ok = results[("g1", "once")][0]
    assert ok["status"] == "ok" and ok["exception_type"] is None
    assert ok["retry"] == {"tries": 2, "first_try": "timeout", "first_message": "no result within 0.5s",
                           "first_seconds": ok["retry"]["first_seconds"]} and ok["retry"]["first_seconds"] >= 0.5
    assert ok["message"] == "retried in a fresh process: the first try timed out (no result within 0.5s)"
    assert not psutil.pid_exists(first) or psutil.Process(first).status() == psutil.STATUS_ZOMBIE  # killed
    hang = results[("g1", "hang")][0]
    assert (hang["status"], hang["exception_type"]) == ("timeout", "Timeout")
    assert hang["message"] == "no result within 0.5s, twice (retried in a fresh process)"
    assert hang["retry"]["tries"] == 2
    plain = results[("g1", "ok")][0]  # the look-alike: a cell that answers at once is neither retried nor noted
    assert plain["status"] == "ok" and "retry" not in plain and plain["message"] is None
    # 0.9 s: over the cell timeout (0.5 s), under the Auto one (default 3 x 0.5 s)
    auto = results[("auto", "slow")][0]
    assert auto["status"] == "ok" and "retry" not in auto
    slow_plain = results[("plain", "slow")][0]
    assert slow_plain["status"] == "timeout" and slow_plain["retry"]["tries"] == 2


def test_cell_limit_and_retries_setting():
    from fcast_assets.compat.runner import cell_limit, is_auto

    plain, auto = Cell("lib.models.MLP", "m", "p", 1, "1"), Cell("lib.auto.AutoMLP", "m", "p", 1, "1")
    assert not is_auto(plain) and is_auto(auto)
    assert cell_limit(plain, 60) == 60 and cell_limit(auto, 60) == 180 and cell_limit(auto, 60, 500) == 500
    flagged = Cell("lib.tune.Searcher", "m", "p", 1, "1", spec={"auto": True})  # the adapter's registry flag
    assert is_auto(flagged) and cell_limit(flagged, 10) == 30
    assert not is_auto(Cell("lib.AutoMLP", "m", "p", 1, "1", spec={"auto": False}))
    assert cell_limit(Cell("lib.AutoMLP", "m", "p", 1, "1", spec={"timeout": 20}), 60) == 20  # catalogue value


def test_no_retry_when_switched_off(tmp_path):
    if not hasattr(os, "fork"):
        pytest.skip("no os.fork on this platform")
    results = []
    run_groups(ToyAdapter(), [Group("g", "toy.Model", {}, [_cell("hang")])], workers=1, cell_timeout=0.3,
               timeout_retries=0, on_result=lambda g, c, r: results.append(r))
    assert [(r["status"], r["message"], "retry" in r) for r in results] == [("timeout", "no result within 0.3s",
                                                                             False)]


def test_views_and_report_show_the_message_and_the_retry(engine, tmp_path, monkeypatch):
    """Cells run by the real runner, stored by the real recorder, read through the pivot views, the correspondence
    table and the Markdown report (SQLite and PostgreSQL): the message is beside the type, the legend on top."""
    from sqlalchemy import insert, text

    from fcast_assets.compat.probe import _Recorder, finalize, view_name
    from fcast_assets.compat.tables import LEGEND, correspondence, write_report
    from fcast_assets.db import models as m

    monkeypatch.setenv("FCAST_PROCESS_MODEL", "fork" if hasattr(os, "fork") else "spawn")
    with engine.begin() as conn:
        lib = conn.execute(insert(m.RegistryLibrary.__table__).values(
            name="toylib", import_name="toylib", dist_name="toylib")).inserted_primary_key[0]
        rel = conn.execute(insert(m.RegistryRelease.__table__).values(
            library_id=lib, version="1.0", python_version="3")).inserted_primary_key[0]
        run_id = conn.execute(insert(m.CompatRun.__table__).values(
            release_id=rel, library="toylib", started_at=m.utcnow())).inserted_primary_key[0]
    long = Cell("toy.Model", "Toy.fit", "x", "long", "long | piped", spec={"do": "long"})
    cells = [_cell("ok"), _cell("raise"), _cell("suspect"), long,
             Cell("toy.Model", "Toy.fit", "x", "once", "once", spec={"do": "hang_once",
                                                                   "marker": str(tmp_path / "tried")})]
    rec = _Recorder(engine, run_id, rel, len(cells), None)
    run_groups(LongMessageAdapter(), [Group("g", "toy.Model", {}, cells)], workers=1, cell_timeout=0.5,
               on_result=rec)
    rec.flush()
    finalize(engine, run_id)
    with engine.connect() as conn:
        row = conn.execute(text(f"SELECT * FROM {view_name('Toy.fit', 'x')}")).mappings().one()
        retried = dict(conn.execute(text("SELECT value_label, retried FROM compat_cells")).all())
    assert row["raise"] == "error ValueError: bad value for x"
    assert row["suspect"] == "suspect: rows 3 != ids 2 x h 2" and row["ok"] == "ok"
    assert row["long | piped"] == "error ValueError: " + "y" * 99 + "…"  # the first 100 characters
    assert row["once"].startswith("ok: retried in a fresh process: the first try timed out")
    assert retried == {"ok": 0, "raise": 0, "suspect": 0, "long | piped": 0, "once": 1}
    (_, table), = correspondence(engine, "Toy.fit", "x")
    marks = table.loc["Model"].to_dict()
    assert marks == {"ok": "✓", "raise": "✗ ValueError: bad value for x", "suspect": "⚠ rows 3 != ids 2 x h 2",
                     "long | piped": "✗ ValueError: " + "y" * 99 + "…", "once": "✓ ↻"}
    report = write_report(engine, tmp_path / "r.md", "toylib").read_text(encoding="utf-8")
    assert all(line in report for line in LEGEND)
    assert "| ✗ ValueError: bad value for x |" in report and "long \\| piped" in report


class LongMessageAdapter(ToyAdapter):
    def run(self, state, cell):
        if cell.spec["do"] == "long":
            raise ValueError("y" * 300 + "\nsecond line")
        return super().run(state, cell)


def test_float_parameter_with_a_whole_default_gets_float_candidates_on_every_database():
    """SQLite's JSON column gives a default of 2.0 back as 2; the annotation (float) decides the candidates, so
    SQLite and PostgreSQL plan the same cells. A parameter annotated int keeps its int candidates."""
    from fcast_assets.compat.candidates import candidates

    as_sqlite = {"type_norm": ["float"], "has_default": True, "default": 2}
    as_pg = {"type_norm": ["float"], "has_default": True, "default": 2.0}
    assert candidates(as_sqlite, 10) == candidates(as_pg, 10)
    assert [v for v, _ in candidates(as_sqlite, 10)] == [2.0, 0.0, -1.0, "x"]
    ints = candidates({"type_norm": ["int"], "has_default": True, "default": 2}, 10)
    assert [v for v, _ in ints] == [2, 0, -1, 20, 1.5, "x"]
