"""Run plans on the real library: the example file's valid plans run, every wrong one is stopped before execution
with the named rule; results, metrics, errors, artifacts and resources land in the run_ tables."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
import pytest
from click.testing import CliRunner
from sqlalchemy import insert, text

from fcast_assets.cli import main
from fcast_assets.db.models import JSONType
from fcast_assets.db.run_models import RunStep
from fcast_assets.plans import loader, runner, validator

from .conftest import matrix_copy

EXAMPLES = Path(__file__).resolve().parents[1] / "plans" / "examples.yaml"
RULE_CLASSES = {"unknown_argument", "missing_required", "type_mismatch", "enum_violation", "range", "excludes",
                "futr_df_covers_h", "static_columns_present", "n_series_matches", "h_vs_model_h", "save_path_free",
                "compat_error"}


@pytest.fixture(scope="module")
def db(nf_matrix_file, tmp_path_factory):
    """neuralforecast scanned, the real matrix of MLP and TSMixer (every family: freq, level, test_size, exog ...,
    each cell with its scenario facts), the examples loaded: the valid ones must still pass."""
    engine, url = matrix_copy(nf_matrix_file, tmp_path_factory.mktemp("plans"))
    loader.load_file(engine, EXAMPLES)
    yield engine, url
    engine.dispose()


def _expect(engine):
    return {n: loader.get_plan(engine, n)["expect"] for n in loader.plan_names(engine)}


def test_examples_mix_valid_and_wrong_plans(db):
    engine, _ = db
    expect = _expect(engine)
    assert len(expect) >= 20
    valid = [n for n, e in expect.items() if e == "valid"]
    assert len(valid) >= 8 and RULE_CLASSES <= set(expect.values())
    models = {s["method"] for n in valid for s in loader.get_plan(engine, n)["steps"]
              if s["method"].startswith("neuralforecast.models.")}
    assert len(models) >= 3
    shorts = {s["method"].rsplit(".", 1)[-1] for n in valid for s in loader.get_plan(engine, n)["steps"]}
    assert {"cross_validation", "save", "load", "predict_insample", "evaluate"} <= shorts


def test_wrong_plans_are_stopped_with_the_named_rule(db):
    engine, _ = db
    res = validator.validate_plans(engine)
    for name, exp in _expect(engine).items():
        rules = {v.rule for v in res[name]}
        if exp == "valid":
            assert not res[name], (name, res[name])
            continue
        assert exp in rules, (name, exp, res[name])
        with pytest.raises(runner.PlanNotValidError):
            runner.run_plan(engine, name)
        for v in res[name]:
            assert v.plan == name and v.rule and v.message and v.fix
    with engine.connect() as conn:
        executed = conn.execute(text("""SELECT DISTINCT p.name FROM run_execution e
                                        JOIN run_plan p ON p.plan_id = e.plan_id""")).scalars().all()
        rows = conn.execute(text("""SELECT p.name, s.ord, v.ok, v.violations FROM run_validation v
            JOIN run_step s ON s.step_id = v.step_id JOIN run_plan p ON p.plan_id = v.plan_id""")
            .columns(violations=JSONType)).all()
    assert not executed
    bad = {(r.name, r.ord): r.violations for r in rows if not r.ok}
    arg = bad[("bad_unknown_argument", 3)][0]
    assert arg["param"] == "levels" and arg["rule"] == "unknown_argument" and "'level'" in arg["fix"]
    assert {r.name for r in rows if not r.ok} == {n for n, e in _expect(engine).items() if e != "valid"}
    compat = bad[("bad_compat_error", 2)][0]
    assert compat["rule"] == "compat_error" and "ValueError" in compat["message"]


def test_rules_are_registry_constraint_rows(db):
    engine, _ = db
    with engine.connect() as conn:
        rows = conn.execute(text("""SELECT c.constraint_type, c.spec FROM registry_param_constraint c
            JOIN registry_param p ON p.param_id = c.param_id JOIN registry_symbol s ON s.symbol_id = p.symbol_id
            WHERE c.source = 'rule' AND s.qualname = 'neuralforecast.core.NeuralForecast.predict'
            AND p.name = 'level'""").columns(spec=JSONType)).all()
    kinds = {r.constraint_type: r.spec for r in rows}
    assert kinds["range"]["gt"] == 0 and kinds["range"]["lt"] == 100 and kinds["excludes"]["param"] == "quantiles"


def test_valid_plans_run_and_record_everything(db, tmp_path):
    engine, _ = db
    valid = [n for n, e in _expect(engine).items() if e == "valid"]
    out = runner.run_plans(engine, valid, work_root=tmp_path)
    assert {o["plan"]: o["status"] for o in out} == {n: "success" for n in valid}
    with engine.connect() as conn:
        q = lambda sql, **kw: conn.execute(text(sql), kw).all()  # noqa: E731
        metrics = q("""SELECT p.name, m.metric, m.model, m.unique_id, m.split, m."window", m.value FROM run_metric m
                       JOIN run_step s ON s.step_id = m.step_id JOIN run_plan p ON p.plan_id = s.plan_id""")
        res = q("SELECT * FROM run_resource")
        arts = q("SELECT kind, uri FROM run_artifact")
        errors = q("SELECT * FROM run_error")
    assert not errors
    basic = {(m.metric, m.unique_id) for m in metrics if m.name == "mlp_basic"}
    assert {("mae", None), ("mae", "s1"), ("mae", "s2"), ("mase", None), ("smape", "s1")} <= basic
    cv = {m.window for m in metrics if m.name == "mlp_cross_validation"}
    assert {0, 1, 2, None} <= cv and all(m.split == "cv" for m in metrics if m.name == "mlp_cross_validation")
    prob = {m.metric for m in metrics if m.name == "mlp_level_intervals"}
    assert {"coverage_level80", "coverage_level90", "scaled_crps", "mae"} <= prob
    assert "scaled_crps" in {m.metric for m in metrics if m.name == "mlp_quantiles"}
    assert {m.model for m in metrics if m.name == "two_models"} == {"MLP", "DLinear"}
    assert all(m.value is not None for m in metrics if m.metric == "mae")
    import torch

    assert res and all(r.wall_s >= 0 and r.max_rss_mb > 0 and r.device for r in res)
    assert all((r.max_vram_mb is None) != torch.cuda.is_available() for r in res)
    kinds = {a.kind for a in arts}
    assert {"predictions", "cv_predictions", "model_dir", "insample"} <= kinds
    assert all(os.path.exists(a.uri) for a in arts)


def test_failed_step_keeps_the_other_results(db, tmp_path):
    """A plan written as rows directly: it passes the static rules, its load step fails (missing path)."""
    engine, _ = db
    with engine.begin() as conn:
        pid = conn.execute(text("INSERT INTO run_plan (name, enabled, created_at, updated_at, library, data) "
                                "VALUES ('rows_load_missing', true, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, "
                                "'neuralforecast', 'synthetic') RETURNING plan_id")).scalar()
        steps = [("neuralforecast.models.MLP", {"h": 2, "input_size": 8, "max_steps": 1}),
                 ("neuralforecast.core.NeuralForecast.__init__", {"freq": "D"}),
                 ("neuralforecast.core.NeuralForecast.fit", {}),
                 ("neuralforecast.core.NeuralForecast.predict", {}),
                 ("utilsforecast.evaluation.evaluate", {"metrics": ["mae"]}),
                 ("neuralforecast.core.NeuralForecast.load", {"path": "never_saved"}),
                 ("neuralforecast.core.NeuralForecast.predict", {})]
        for i, (m, p) in enumerate(steps):
            conn.execute(insert(RunStep).values(plan_id=pid, ord=i, method=m, params=p))
    # the miniature run of the plan stops it before the real run, with the library's own exception
    with pytest.raises(runner.PlanNotValidError) as err:
        runner.run_plan(engine, "rows_load_missing", work_root=tmp_path)
    (v,) = err.value.violations
    assert v.rule == "miniature_error" and v.layer == "miniature" and v.step == 5 and "FileNotFoundError" in v.message
    # without it (a failure the miniature could not see), the real run records the failed step and keeps the rest
    out = runner.run_plan(engine, "rows_load_missing", work_root=tmp_path, miniature=False)
    assert out["status"] == "failed"
    assert list(out["steps"].values()) == ["success"] * 5 + ["failed", "skipped"]
    with engine.connect() as conn:
        err = conn.execute(text("SELECT exception_type, traceback FROM run_error WHERE execution_id = :e"),
                           {"e": out["execution_id"]}).one()
        n = conn.execute(text("SELECT COUNT(*) FROM run_metric WHERE execution_id = :e"),
                         {"e": out["execution_id"]}).scalar()
    assert err.exception_type and "Traceback" in err.traceback and n >= 3


def test_cli_validate_list_load(db, tmp_path, monkeypatch):
    engine, url = db
    monkeypatch.setenv("FCAST_DB_URL", url)
    out = CliRunner().invoke(main, ["plan", "validate", str(EXAMPLES)])
    assert out.exit_code == 1, out.output
    assert "unknown_argument" in out.output and "did you mean 'level'?" in out.output
    assert "with violations" in out.output
    one = EXAMPLES.with_suffix(".csv")
    out = CliRunner().invoke(main, ["plan", "validate", str(one)])
    assert out.exit_code == 0, out.output
    out = CliRunner().invoke(main, ["plan", "load", str(one)])
    assert out.exit_code == 0 and "csv_nhits_cv" in out.output
    out = CliRunner().invoke(main, ["plan", "list"])
    assert out.exit_code == 0 and "csv_nhits_cv" in out.output and "bad_enum" in out.output
    monkeypatch.setenv("FCAST_HOME", str(tmp_path / "home"))
    out = CliRunner().invoke(main, ["plan", "run", "csv_nhits_cv"])
    assert out.exit_code == 0 and "success" in out.output, out.output
    out = CliRunner().invoke(main, ["plan", "run", "bad_enum"])
    assert out.exit_code == 1 and "enum_violation" in out.output


def test_dagster_assets(db, tmp_path):
    from fcast_assets.defs.resources import MetadataDB
    from fcast_assets.defs.runs.assets import plan_executions, run_plans

    _, url = db
    result = dg.materialize(
        [run_plans, plan_executions], resources={"meta_db": MetadataDB(url=url)},
        run_config={"ops": {"plan_executions": {"config": {"plans": ["mlp_basic", "bad_enum"],
                                                            "work_root": str(tmp_path)}}}},
        instance=dg.DagsterInstance.ephemeral())
    assert result.success
    meta = result.asset_materializations_for_node("run_plans")[0].metadata
    assert meta["plans"].value >= 20 and "enum_violation" in meta["violations"].value
    ex = result.asset_materializations_for_node("plan_executions")[0].metadata
    assert ex["plans_success"].value == 1 and ex["plans_invalid"].value == 1


def test_reload_keeps_results(db, tmp_path):
    """Reloading an unchanged plan keeps its rows; changing a plan that ran archives the old one."""
    engine, _ = db
    before = loader.get_plan(engine, "mlp_basic")
    loader.load_file(engine, EXAMPLES)
    assert loader.get_plan(engine, "mlp_basic")["plan_id"] == before["plan_id"]
    changed = loader.read_file(EXAMPLES)
    plan = next(p for p in changed if p["name"] == "mlp_basic")
    plan["steps"][0]["params"] = {**plan["steps"][0]["params"], "hidden_size": 8}
    (new_id,) = loader.store_plans(engine, [plan])
    assert new_id != before["plan_id"]
    archived = loader.get_plan(engine, before["plan_id"])
    assert archived["name"] == f"mlp_basic~{before['plan_id']}" and not archived["enabled"]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM run_execution WHERE plan_id = :p"),
                            {"p": before["plan_id"]}).scalar() >= 1


def _rules(engine, steps, data="synthetic", roots=None, **plan):
    p = loader._plan({"name": "adhoc", "data": data, "steps": steps, **plan}, None)
    return {(v.step, v.param, v.rule) for v in validator.validate_plan(engine, p, roots=roots)}


MLP = {"model": "MLP", "params": {"h": 2, "input_size": 8, "max_steps": 1}}
INIT = {"method": "NeuralForecast.__init__", "params": {"freq": "D"}}


def test_validator_in_memory_plans(db, tmp_path):
    engine, _ = db
    # **trainer_kwargs are checked against lightning's Trainer signature
    trainer = {"model": "MLP", "params": {**MLP["params"], "accelerator": "cpu", "max_step": 3}}
    found = _rules(engine, [trainer, INIT, {"method": "NeuralForecast.fit"}])
    # the rule, and the miniature run confirming it with lightning's own TypeError at fit
    assert found == {(0, "max_step", "unknown_argument"), (2, None, "miniature_error")}
    # order of steps, data set names, frames where lists are expected
    assert (1, None, "step_order") in _rules(engine, [MLP, {"method": "NeuralForecast.predict"}])
    assert (0, "data", "unknown_data") in {(v.step if v.step >= 0 else 0, v.param, v.rule) for v in
                                           validator.validate_plan(engine, loader._plan(
                                               {"name": "x", "data": "lottery", "steps": [MLP]}, None))}
    bad_frame = {"method": "NeuralForecast.predict", "params": {"level": {"__data__": "futr_df"}}}
    assert (3, "level", "type_mismatch") in _rules(engine, [MLP, INIT, {"method": "NeuralForecast.fit"}, bad_frame])
    assert (3, None, "step_order") in _rules(engine, [MLP, INIT, {"method": "NeuralForecast.fit"},
                                                      {"method": "evaluate"}])
    # save onto an existing absolute path without overwrite; with overwrite it passes
    existing = tmp_path / "saved"
    existing.mkdir()
    (existing / "x.txt").write_text("here")
    fit = {"method": "NeuralForecast.fit"}
    save = {"method": "NeuralForecast.save", "params": {"path": str(existing)}}
    assert (3, "path", "path_outside_root") in _rules(engine, [MLP, INIT, fit, save])  # not a root of fcast's
    assert (3, "path", "save_path_free") in _rules(engine, [MLP, INIT, fit, save], roots=[str(tmp_path)])
    save_ow = {"method": "NeuralForecast.save", "params": {"path": str(existing), "overwrite": True}}
    assert not _rules(engine, [MLP, INIT, fit, save_ow], roots=[str(tmp_path)])
    assert (existing / "x.txt").read_text() == "here"  # the miniature run saved into its own folder
    # cross_validation h above the model's h passes with refit: true (the library allows it then)
    cv = {"method": "NeuralForecast.cross_validation", "params": {"h": 4, "refit": True}}
    assert not _rules(engine, [MLP, INIT, cv])
