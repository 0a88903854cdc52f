"""Pre-flight on the real library: plans/preflight.yaml holds 130 realistic plans over 17 classes of mistakes
(89 wrong: 72 the library rejects, 17 that run but give a wrong result; 41 valid look-alikes), each labelled from
an independent run of the plan on neuralforecast (benchmarks/preflight_truth.py). With the compatibility matrix
of MLP and TSMixer loaded, every wrong plan is stopped before the real run — a plan the library rejects with the
library's own reason among its violations, a plan that runs wrongly flagged — and every valid one passes and
runs. Rules stay in context: the matrix's cells apply only where their scenario facts match."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import yaml

from fcast_assets.compat import scenario
from fcast_assets.plans import loader, runner, validator

from .conftest import matrix_copy

PREFLIGHT = Path(__file__).resolve().parents[1] / "plans" / "preflight.yaml"
RAW = yaml.safe_load(PREFLIGHT.read_text())["plans"]


@pytest.fixture(scope="module")
def db(nf_matrix_file, tmp_path_factory):
    engine, url = matrix_copy(nf_matrix_file, tmp_path_factory.mktemp("preflight"))
    plans = loader.read_file(PREFLIGHT)
    loader.store_plans(engine, plans)
    yield engine, {p["name"]: p for p in plans}
    engine.dispose()


@pytest.fixture(scope="module")
def verdicts(db):
    engine, _ = db
    return validator.validate_plans(engine, [r["name"] for r in RAW])


def test_the_set_covers_17_classes_with_wrong_plans_and_look_alikes():
    per_class = Counter((r["class"], r["expect"] != "valid") for r in RAW)
    classes = {c for c, _ in per_class}
    assert len(classes) == 17
    assert all(per_class[(c, True)] >= 3 and per_class[(c, False)] >= 1 for c in classes), per_class
    assert sum(r["expect"] != "valid" for r in RAW) >= 60 and sum(r["expect"] == "valid" for r in RAW) >= 20


@pytest.mark.parametrize("raw", [r for r in RAW if r["expect"] == "stop"], ids=lambda r: r["name"])
def test_wrong_plan_is_stopped_with_the_librarys_reason(verdicts, raw):
    found = verdicts[raw["name"]]
    text = " | ".join(v.message for v in found)
    assert found, raw["name"]
    assert raw["reason"] in text, (raw["reason"], text)


@pytest.mark.parametrize("raw", [r for r in RAW if r["expect"] == "flag"], ids=lambda r: r["name"])
def test_plan_that_runs_wrongly_is_flagged(verdicts, raw):
    found = verdicts[raw["name"]]
    assert found, raw["name"]  # a post-condition breach, a silently ignored argument, or a rule that says why


def test_valid_plans_pass_and_run(db, verdicts, tmp_path):
    engine, _ = db
    valid = [r["name"] for r in RAW if r["expect"] == "valid"]
    assert {n: verdicts[n] for n in valid if verdicts[n]} == {}
    # the real run (validated again, miniature included)
    out = runner.run_plans(engine, valid, work_root=tmp_path)
    assert {o["plan"]: o["status"] for o in out} == {n: "success" for n in valid}


def test_every_violation_names_its_layer(verdicts):
    layers = Counter(v.layer for vs in verdicts.values() for v in vs)
    assert {"rule", "matrix", "miniature"} <= set(layers), layers


def test_matrix_cells_apply_only_where_their_scenario_matches(db):
    """Look-alikes of the cells that used to block valid plans: freq=1 errored on datetime ds but not on integer
    ds; level errored under a point loss but not after a PredictionIntervals fit; test_size errored with the
    default n_windows=1 but not with n_windows=None; an exog list errored without the data but not with it."""
    engine, _ = db

    def rules(steps, data="synthetic"):
        p = loader._plan({"name": "lookalike", "data": data, "steps": steps}, None)
        return {(v.step, v.param, v.rule) for v in validator.validate_plan(engine, p, record=False)}

    mlp = {"model": "MLP", "params": {"h": 2, "input_size": 8, "max_steps": 1}}
    fit, predict = {"method": "NeuralForecast.fit"}, {"method": "NeuralForecast.predict"}
    init = lambda f: {"method": "NeuralForecast.__init__", "params": {"freq": f}}  # noqa: E731
    # freq
    assert rules([mlp, init(1), fit, predict], data={"synthetic": {"ds": "int"}}) == set()
    assert (1, "freq", "compat_error") in rules([mlp, init(1), fit, predict])
    # level: point loss without / with prediction intervals
    lvl = {"method": "NeuralForecast.predict", "params": {"level": [80]}}
    assert (3, "level", "compat_error") in rules([mlp, init("D"), fit, lvl])
    pi = {"method": "NeuralForecast.fit", "params": {"prediction_intervals": {
        "__obj__": "neuralforecast.utils.PredictionIntervals", "kwargs": {"n_windows": 2}}}}
    assert rules([mlp, init("D"), pi, lvl]) == set()
    # test_size with the default n_windows, and with n_windows None
    cv = lambda **kw: {"method": "NeuralForecast.cross_validation", "params": kw}  # noqa: E731
    assert (2, "test_size", "compat_error") in rules([mlp, init("D"), cv(test_size=4)])
    assert rules([mlp, init("D"), cv(test_size=4, n_windows=None)]) == set()
    # exogenous list without / with the data
    hist = {"model": "MLP", "params": {"h": 2, "input_size": 8, "max_steps": 1, "hist_exog_list": ["hist_x"]}}
    assert (0, "hist_exog_list", "compat_error") in rules([hist, init("D"), fit])
    assert rules([hist, init("D"), fit], data="synthetic_hist") == set()


def test_scenario_facts_are_recorded_and_shown(db):
    engine, _ = db
    from sqlalchemy import text

    from fcast_assets.db.models import JSONType

    with engine.connect() as conn:
        rows = conn.execute(text("""SELECT value_label, status, scenario_facts FROM compat_cells
            WHERE method = 'NeuralForecast.__init__' AND param = 'freq' AND model LIKE '%MLP'""")
            .columns(scenario_facts=JSONType)).all()
    facts = {r.value_label: r.scenario_facts for r in rows}
    assert facts["1 (ds datetime)"]["ds_dtype"] == "datetime" and facts["1 (ds int)"]["ds_dtype"] == "int"
    assert facts["'D' (ds datetime)"]["loss"] == "MAE()" and facts["'D' (ds datetime)"]["loss_kind"] == "point"
    assert "ds_dtype=int" in scenario.describe(facts["1 (ds int)"])


def test_unsafe_plans_are_refused_and_never_run(db, tmp_path):
    engine, _ = db
    mlp = {"model": "MLP", "params": {"h": 2, "input_size": 8, "max_steps": 1}}
    init = {"method": "NeuralForecast.__init__", "params": {"freq": "D"}}
    obj = {"model": "MLP", "params": {"h": 2, "input_size": 8, "loss": {
        "__obj__": "subprocess.check_call", "kwargs": {"args": ["touch", str(tmp_path / "pwned")]}}}}
    p = loader._plan({"name": "evil_obj", "steps": [obj, init, {"method": "NeuralForecast.fit"}]}, None)
    found = validator.validate_plan(engine, p, record=False)
    assert [v.rule for v in found] == ["object_not_allowed"] and not (tmp_path / "pwned").exists()
    outside = {"method": "NeuralForecast.save", "params": {"path": str(tmp_path / "elsewhere")}}
    p = loader._plan({"name": "evil_path", "steps": [mlp, init, {"method": "NeuralForecast.fit"}, outside]}, None)
    found = validator.validate_plan(engine, p, record=False)
    assert [v.rule for v in found] == ["path_outside_root"] and not (tmp_path / "elsewhere").exists()
    assert not validator.validate_plan(engine, p, record=False, roots=[str(tmp_path)])  # an explicit root
    with pytest.raises(ValueError, match="not a plain label"):
        loader._plan({"name": "../../../x", "steps": [mlp]}, None)
    climb = {"method": "NeuralForecast.save", "params": {"path": "../../x"}}
    p = loader._plan({"name": "evil_rel", "steps": [mlp, init, {"method": "NeuralForecast.fit"}, climb]}, None)
    assert [v.rule for v in validator.validate_plan(engine, p, record=False)] == ["path_outside_root"]


def test_plan_reads_the_users_own_files_as_data(db, tmp_path, monkeypatch):
    """data: {files: {...}} reads Parquet / CSV inside FCAST_HOME (or an explicit root): no code, no path outside."""
    from fcast_assets.plans import data as plan_data

    engine, _ = db
    home = tmp_path / "home"
    (home / "mydata").mkdir(parents=True)
    monkeypatch.setenv("FCAST_HOME", str(home))
    frames = plan_data.synthetic(("fut_x",))
    frames["df"].to_parquet(home / "mydata" / "train.parquet")
    frames["futr_df"].to_csv(home / "mydata" / "future.csv", index=False)
    steps = [{"model": "MLP", "params": {"h": 2, "input_size": 8, "max_steps": 1, "futr_exog_list": ["fut_x"]}},
             {"method": "NeuralForecast.__init__", "params": {"freq": "D"}}, {"method": "NeuralForecast.fit"},
             {"method": "NeuralForecast.predict", "params": {"futr_df": {"__data__": "futr_df"}}}]
    data = {"files": {"df": str(home / "mydata" / "train.parquet"), "futr_df": str(home / "mydata" / "future.csv")}}
    p = loader._plan({"name": "own_files", "data": data, "steps": steps}, None)
    assert validator.validate_plan(engine, p, record=False) == []
    loader.store_plans(engine, [p])
    assert runner.run_plan(engine, "own_files", work_root=tmp_path / "runs", miniature=False)["status"] == "success"
    outside = tmp_path / "outside.parquet"
    frames["df"].to_parquet(outside)
    p = loader._plan({"name": "own_files_out", "data": {"files": {"df": str(outside)}}, "steps": steps}, None)
    found = validator.validate_plan(engine, p, record=False)
    assert [v.rule for v in found] == ["unknown_data"] and "outside the allowed roots" in found[0].message


@pytest.mark.skipif(__import__("fcast_assets.compat.process", fromlist=["x"]).process_model() != "fork",
                    reason="patches the child's code in the parent; spawn mode: test_process_model.py")
def test_miniature_run_hang_and_crash_are_contained(monkeypatch):
    """The miniature run is a forked child with a timeout: a hang is killed (timeout), a crash is an error
    (WorkerCrashed); neither takes the validator down."""
    import os
    import time

    from fcast_assets.plans import data as plan_data
    from fcast_assets.plans import miniature

    import neuralforecast.models  # noqa: F401 - imported before the clock starts, as the validator does

    plan = {"name": "x", "library": "neuralforecast", "steps": []}
    frames = plan_data.synthetic()
    monkeypatch.setattr(miniature, "_execute", lambda *a: time.sleep(30))
    t0 = time.perf_counter()
    out = miniature.run(plan, [], frames, [], timeout=1)
    assert out["status"] == "timeout" and time.perf_counter() - t0 < 10
    monkeypatch.setattr(miniature, "_execute", lambda *a: os._exit(9))
    out = miniature.run(plan, [], frames, [], timeout=10)
    assert out["status"] == "error" and out["exception_type"] == "WorkerCrashed" and "code 9" in out["message"]


@pytest.mark.parametrize("body, fragment", [
    ("plans:\n  - name: ../../x\n    steps: [{model: MLP}]\n", "not a plain label"),
    ("plans: [\n  - name: x\n", ":2:3: ParserError"),
    ("plans:\n  - name: ok1\n    steps: [{foo: MLP}]\n", "a step needs `model:` or `method:`"),
])
def test_cli_refuses_a_broken_plan_file_in_one_line(db, tmp_path, monkeypatch, body, fragment):
    from click.testing import CliRunner
    from sqlalchemy import text

    from fcast_assets.cli import main

    engine, _ = db
    monkeypatch.setenv("FCAST_DB_URL", str(engine.url))
    f = tmp_path / "broken.yaml"
    f.write_text(body)
    with engine.connect() as conn:
        before = conn.execute(text("SELECT COUNT(*) FROM run_plan")).scalar()
    out = CliRunner().invoke(main, ["plan", "load", str(f)])
    assert out.exit_code == 2 and fragment in out.output and "Traceback" not in out.output
    assert len(out.output.strip().splitlines()) == 1 and str(f) in out.output
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM run_plan")).scalar() == before
