"""Crash safety, the parts the fault suite (test_fault_suite.py: real kills at every stage, re-run, nothing lost)
does not cover: a first version saved under a partial name and renamed; executions of exited processes marked
failed (live ones left alone); orphan version folders moved aside (their artifact rows follow them); compat runs
left unfinished by a dead process closed (live ones left alone); the small training settings the crash tests use
really apply (an unknown key is refused); Dagster's instance configs turn run monitoring on."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from sqlalchemy import text

from fcast_assets.db.engine import make_engine
from fcast_assets.models import train as T
from fcast_assets.plans import runner

from . import faults as F

REPO = F.REPO
SMALL = {"hyperparams": {"max_steps": 5}, "cv": {"n_windows": 2}}

@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """The fault suite's template (registry + compat cells), loto6's lake + gold, one selector trained (v1)."""

    folder = tmp_path_factory.mktemp("crash")
    mp = pytest.MonkeyPatch()
    url = F.copy_db(F.template_db(tmp_path_factory), "sqlite", folder)
    F.use_home(mp, folder, url)
    engine = make_engine(url)
    F.build_loto6(engine)
    first = T.train(engine, "loto6", "N1", overrides=SMALL)
    yield {"engine": engine, "url": url, "folder": folder, "first": first}
    mp.undo()
    engine.dispose()


def _execution(eng, eid):
    with eng.connect() as conn:
        row = conn.execute(text("SELECT status, ended_at, work_dir FROM run_execution WHERE execution_id = :e"),
                           {"e": eid}).one()
        errs = conn.execute(text("SELECT exception_type, message FROM run_error WHERE execution_id = :e"),
                            {"e": eid}).all()
    return row, errs


def test_first_version_is_renamed_from_its_partial_folder(env):
    first = env["first"]
    final = Path(first["artifact_uri"])
    assert first["version"] == 1 and final.name == "v1" and (final / "NHITS_0.safetensors").is_file()
    assert not [p for p in final.parent.iterdir() if ".partial-" in p.name]
    with env["engine"].connect() as conn:
        uri = conn.execute(text("SELECT uri FROM run_artifact WHERE execution_id = :e AND kind = 'model_dir'"),
                           {"e": first["execution_id"]}).scalar()
    assert uri == str(final)  # the run's artifact row follows the rename
    row, _ = _execution(env["engine"], first["execution_id"])
    info = yaml.safe_load((Path(row.work_dir) / runner.EXECUTION_FILE).read_text())
    assert info["pid"] == os.getpid() and info["execution_id"] == first["execution_id"] and info["host"]


def test_running_execution_of_an_exited_process_is_marked_failed(env, tmp_path):
    eng = env["engine"]
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    with eng.begin() as conn:
        plan_id = conn.execute(text("SELECT plan_id FROM run_plan ORDER BY plan_id LIMIT 1")).scalar()
        eid = conn.execute(text("INSERT INTO run_execution (plan_id, status, started_at, work_dir) "
                                "VALUES (:p, 'running', CURRENT_TIMESTAMP, :w)"),
                           {"p": plan_id, "w": str(tmp_path)}).lastrowid
        alive = conn.execute(text("INSERT INTO run_execution (plan_id, status, started_at, work_dir) "
                                  "VALUES (:p, 'running', CURRENT_TIMESTAMP, :w)"),
                             {"p": plan_id, "w": str(tmp_path / "alive")}).lastrowid
    import json
    import socket

    import psutil

    (tmp_path / runner.EXECUTION_FILE).write_text(json.dumps(
        {"execution_id": eid, "pid": proc.pid, "create_time": 0.0, "host": socket.gethostname()}))
    (tmp_path / "alive").mkdir()
    me = psutil.Process()
    (tmp_path / "alive" / runner.EXECUTION_FILE).write_text(json.dumps(
        {"execution_id": alive, "pid": me.pid, "create_time": me.create_time(), "host": socket.gethostname()}))
    reaped = runner.reap_dead_executions(eng)
    assert [r["execution_id"] for r in reaped] == [eid]
    row, errs = _execution(eng, eid)
    assert row.status == "failed" and f"process {proc.pid} is gone" in errs[0].message
    assert _execution(eng, alive)[0].status == "running"  # a live process's execution is left alone
    with eng.begin() as conn:
        conn.execute(text("UPDATE run_execution SET status = 'failed' WHERE execution_id = :e"), {"e": alive})


def test_orphan_version_folder_is_moved_aside(env):
    """A v<n> folder no model_version row points at (killed between rename and commit, or left by a run from
    before partial saves) does not block the next save; a registered version's folder is never touched."""
    eng = env["engine"]
    folder = Path(env["first"]["artifact_uri"]).parent
    orphan = folder / "v9"
    orphan.mkdir()
    (orphan / "model.ckpt").write_text("x", encoding="utf-8")
    stale = folder / "v9.partial-999999999-deadbeef"
    stale.mkdir()
    first = env["first"]
    with eng.begin() as conn:  # the artifact row of the run that left the orphan
        row = conn.execute(text("SELECT plan_id, step_id FROM run_artifact WHERE execution_id = :e"),
                           {"e": first["execution_id"]}).first()
        conn.execute(text("INSERT INTO run_artifact (plan_id, step_id, execution_id, kind, uri, created_at) "
                          "VALUES (:p, :s, :e, 'model_dir', :u, CURRENT_TIMESTAMP)"),
                     {"p": row.plan_id, "s": row.step_id, "e": first["execution_id"], "u": str(orphan)})
    touched = T.clear_leftovers(eng, str(orphan))
    assert not orphan.exists() and not stale.exists()
    aside = [p for p in folder.iterdir() if p.name.startswith("v9.orphan-")]
    assert aside and (aside[0] / "model.ckpt").is_file() and str(aside[0]) in touched
    with eng.connect() as conn:  # the row follows the folder: it never names the next v9
        uris = conn.execute(text("SELECT uri FROM run_artifact WHERE execution_id = :e AND kind = 'model_dir'"),
                            {"e": first["execution_id"]}).scalars().all()
    assert str(aside[0]) in uris and str(orphan) not in uris and first["artifact_uri"] in uris
    T.clear_leftovers(eng, first["artifact_uri"])  # a registered version's folder: untouched
    assert Path(first["artifact_uri"]).is_dir()
    shutil.rmtree(aside[0])


@pytest.mark.parametrize("name", ["dagster.yaml", "dagster.postgres.yaml"])
def test_dagster_run_monitoring_on(name, tmp_path, monkeypatch):
    from dagster._config import process_config
    from dagster._core.instance.config import dagster_instance_config_schema

    for v in ("DAGSTER_PG_USERNAME", "DAGSTER_PG_PASSWORD", "DAGSTER_PG_HOST", "DAGSTER_PG_DB"):
        monkeypatch.setenv(v, "x")
    raw = yaml.safe_load((REPO / name).read_text())
    res = process_config(dagster_instance_config_schema(), raw)
    assert res.success, res.errors
    mon = res.value["run_monitoring"]
    assert mon["enabled"] is True and mon["poll_interval_seconds"] > 0
    assert mon["start_timeout_seconds"] > 0 and mon["cancel_timeout_seconds"] > 0 and mon["max_runtime_seconds"] > 0
    if name == "dagster.yaml":  # the instance the project runs with loads it
        import dagster as dg

        shutil.copy(REPO / name, tmp_path / "dagster.yaml")
        inst = dg.DagsterInstance.from_config(str(tmp_path))
        try:
            assert inst.run_monitoring_enabled and inst.run_monitoring_max_runtime_seconds == mon["max_runtime_seconds"]
        finally:
            inst.dispose()


def test_training_plan_invalid_names_the_folder_and_the_fix():
    from fcast_assets.plans.validator import Violation

    v = Violation("train.loto6.N1.v2", 5, "neuralforecast.core.NeuralForecast.save", "path", "save_path_free",
                  "path '/art/models/loto6/N1/v2' exists", "set overwrite: true or use a new path")
    e = T.TrainingPlanInvalidError("training loto6.N1 v2", "train.loto6.N1.v2", [v])
    assert isinstance(e, runner.PlanNotValidError) and isinstance(e, T.TrainingError)
    assert "/art/models/loto6/N1/v2" in str(e) and "fix: set overwrite: true" in str(e)


def test_unfinished_compat_run_of_a_dead_process_is_closed(env):
    """A compat run killed mid-matrix (its process gone) is closed by the next run with the counts of the cells it
    stored; an unfinished run of a live process, and one that names no process, are left alone."""
    import psutil

    from fcast_assets.compat import probe
    from fcast_assets.compat.process import owner

    eng = env["engine"]
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    me = owner()
    dead = {**me, "pid": proc.pid, "create_time": 0.0}
    with eng.begin() as conn:
        rel = conn.execute(text("SELECT release_id FROM compat_run ORDER BY compat_run_id LIMIT 1")).scalar()
        ids = {}
        for name, who in (("dead", dead), ("alive", me), ("unknown", None)):
            cfg = {"models": ["NHITS"], **({"owner": who} if who else {})}
            ids[name] = conn.execute(text("INSERT INTO compat_run (release_id, library, started_at, workers, "
                                          "cells_total, cells_ok, cells_error, cells_timeout, cells_skipped, "
                                          "cells_suspect, config) VALUES (:r, 'neuralforecast', CURRENT_TIMESTAMP, "
                                          "1, 0, 0, 0, 0, 0, 0, :c)"), {"r": rel, "c": json.dumps(cfg)}).lastrowid
        conn.execute(text("INSERT INTO compat_result (compat_run_id, release_id, model, method, param, value_label, "
                          "scenario, status) VALUES (:k, :r, 'x.NHITS', 'NeuralForecast.fit', 'p', 'v', 'baseline', "
                          "'ok')"), {"k": ids["dead"], "r": rel})
    assert psutil.pid_exists(me["pid"])
    assert probe.close_abandoned_runs(eng) == [ids["dead"]]
    with eng.connect() as conn:
        rows = {r.compat_run_id: r for r in conn.execute(text(
            "SELECT compat_run_id, finished_at, cells_total, cells_ok, config FROM compat_run "
            "WHERE compat_run_id IN (:a, :b, :c)"), {"a": ids["dead"], "b": ids["alive"], "c": ids["unknown"]})}
    closed = rows[ids["dead"]]
    cfg = closed.config if isinstance(closed.config, dict) else json.loads(closed.config)
    assert closed.finished_at is not None and (closed.cells_total, closed.cells_ok) == (1, 1)
    assert f"process {proc.pid} is gone" in cfg["abandoned"]
    assert rows[ids["alive"]].finished_at is None and rows[ids["unknown"]].finished_at is None
    assert probe.close_abandoned_runs(eng) == []  # closing is done once
    with eng.begin() as conn:
        conn.execute(text("DELETE FROM compat_result WHERE compat_run_id = :k"), {"k": ids["dead"]})
        conn.execute(text("DELETE FROM compat_run WHERE compat_run_id IN (:a, :b, :c)"),
                     {"a": ids["dead"], "b": ids["alive"], "c": ids["unknown"]})


@pytest.mark.parametrize("over,expect", [
    ({"max_steps": 5, "n_windows": 2}, (5, 2)),  # the shorthand of the Dagster config and the CLI
    ({"hyperparams": {"max_steps": 7}, "cv": {"n_windows": 3}}, (7, 3)),  # the models.yaml layout
    ({}, (40, 20)),
])
def test_training_overrides_apply(over, expect):
    from fcast_assets.models.config import game_config

    cfg = game_config("loto6", over)
    assert (cfg["hyperparams"]["max_steps"], cfg["cv"]["n_windows"]) == expect
    assert cfg["hyperparams"]["input_size"] == 20 and cfg["cv"]["step_size"] == 1  # the rest of each group kept


def test_unknown_training_override_is_refused():
    from fcast_assets.models.config import game_config

    with pytest.raises(ValueError) as ei:  # it used to be merged in beside hyperparams and change nothing
        game_config("loto6", {"max_stepz": 5})
    assert "unknown model configuration key 'max_stepz'" in str(ei.value) and "hyperparams" in str(ei.value)


ORPHAN_CHILD = """
    from fcast_assets.compat.runner import Cell, Group, run_groups
    from fcast_assets_tests.test_compat_runner import ToyAdapter

    def cell(do):
        return Cell("toy.Model", "Toy.fit", "x", do, do, spec={"do": do})

    def report(group, c, res):
        if c.value == "ok":  # the first cell is in: the other group hangs in its cell (30 s); the runner dies
            kids = [p.pid for p in psutil.Process().children(recursive=True)]
            print("CHILDREN " + json.dumps(kids), flush=True)
            die()

    run_groups(ToyAdapter(), [Group("g1", "toy.Model", {}, [cell("hang")]),
                              Group("g2", "toy.Model", {}, [cell("ok"), cell("hang")])],
               workers=2, cell_timeout=60, on_result=report)
"""


@pytest.mark.parametrize("model", ["fork", "spawn"])
def test_probe_processes_end_with_their_killed_runner(model, monkeypatch):
    """A runner killed while its probe processes are in long cells leaves none of them running (fork: the kernel
    ends a forked group / cell with its parent; spawn: each worker watches the process that started it)."""
    import psutil

    if model == "fork" and not hasattr(os, "fork"):
        pytest.skip("no os.fork on this platform")
    monkeypatch.setenv("FCAST_PROCESS_MODEL", model)
    monkeypatch.setenv("FCAST_DB_URL", "sqlite://")
    child = F.run_child(ORPHAN_CHILD)
    kids = json.loads(child.stdout.split("CHILDREN ", 1)[1].splitlines()[0])
    assert kids
    deadline = time.monotonic() + 5  # the hanging cells would run for 30 s
    alive = kids
    while alive and time.monotonic() < deadline:
        time.sleep(0.2)
        alive = [p for p in kids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    assert not alive, f"probe processes {alive} outlived their killed runner"
