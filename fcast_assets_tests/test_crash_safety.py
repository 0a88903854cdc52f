"""Crash safety (real kills): a training killed after its save step leaves only a ``v<n>.partial-*`` folder and a
``running`` execution; the next retrain marks that execution failed ("process <pid> is gone"), ignores / cleans
the partial folder and writes a clean ``v<n>``. Dagster's instance configs turn run monitoring on."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from sqlalchemy import text

from fcast_assets.models import train as T
from fcast_assets.plans import runner

from .conftest import loto6_models_env

REPO = Path(__file__).resolve().parents[1]
SMALL = {"max_steps": 5, "n_windows": 2}

KILL_AFTER_SAVE = textwrap.dedent("""
    import os, signal, sys
    from fcast_assets.db.engine import get_engine
    from fcast_assets.models import train as T
    from fcast_assets.plans import runner

    run = runner._Exec.run
    def run_then_die(self, step):
        out = run(self, step)
        if step["short"] == "save" and not self.miniature:  # the model folder is written: die now
            os.kill(os.getpid(), signal.SIGKILL)
        return out
    runner._Exec.run = run_then_die
    T.retrain(get_engine(os.environ["FCAST_DB_URL"]), int(sys.argv[1]), reason="killed")
""")


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """As test_models' fixture, smaller: NHITS cells only, loto6's lake + gold, one selector trained (v1)."""
    folder = tmp_path_factory.mktemp("crash")
    mp = pytest.MonkeyPatch()
    engine, url, _ = loto6_models_env(folder, mp)
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


def test_retrain_killed_after_save_then_retry_succeeds(env):
    eng, first = env["engine"], env["first"]
    model_id = first["model_id"]
    child = subprocess.run([sys.executable, "-c", KILL_AFTER_SAVE, str(model_id)], env=dict(os.environ),
                           cwd=str(REPO), capture_output=True, text=True, timeout=300)
    assert child.returncode == -signal.SIGKILL, child.stderr[-3000:]
    folder = Path(first["artifact_uri"]).parent
    partial = [p for p in folder.iterdir() if p.name.startswith("v2.partial-")]
    assert partial and (partial[0] / "NHITS_0.safetensors").is_file()  # the save step did run
    assert not (folder / "v2").exists()  # ... but no v2 that would block the retry
    with eng.connect() as conn:
        killed = conn.execute(text("SELECT max(execution_id) FROM run_execution")).scalar()
    row, _ = _execution(eng, killed)
    assert row.status == "running"  # what the kill left
    dead_pid = yaml.safe_load((Path(row.work_dir) / runner.EXECUTION_FILE).read_text())["pid"]

    out = T.retrain(eng, model_id, reason="retry")  # the next run: reaps the dead execution, then trains
    assert out["version"] == 2 and out["execution_id"] != killed
    assert Path(out["artifact_uri"]) == folder / "v2" and (folder / "v2" / "NHITS_0.safetensors").is_file()
    assert not [p for p in folder.iterdir() if ".partial-" in p.name]  # the leftover was cleaned
    row, errs = _execution(eng, killed)
    assert row.status == "failed" and row.ended_at is not None
    assert [e.exception_type for e in errs] == ["ProcessGone"]
    assert f"process {dead_pid} is gone" in errs[0].message
    assert "failed_reason" in yaml.safe_load((Path(row.work_dir) / runner.EXECUTION_FILE).read_text())


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
    (orphan / "model.ckpt").write_text("x")
    stale = folder / "v9.partial-999999999-deadbeef"
    stale.mkdir()
    touched = T.clear_leftovers(eng, str(orphan))
    assert not orphan.exists() and not stale.exists()
    aside = [p for p in folder.iterdir() if p.name.startswith("v9.orphan-")]
    assert aside and (aside[0] / "model.ckpt").is_file() and str(aside[0]) in touched
    T.clear_leftovers(eng, env["first"]["artifact_uri"])
    assert Path(env["first"]["artifact_uri"]).is_dir()
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
