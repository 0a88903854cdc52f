"""Bad input at the command line: one clear line and a non-zero exit, no traceback (unless --debug), passwords
never printed; one bad stored plan is reported and skipped by the "all plans" commands, and can be deleted."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlalchemy import insert, text

from fcast_assets.cli import main, mask
from fcast_assets.db.run_models import RunPlan, RunStep
from fcast_assets.plans import loader, validator

from .conftest import matrix_copy

MLP = {"model": "MLP", "params": {"h": 2, "input_size": 8, "max_steps": 1}}
INIT = {"method": "NeuralForecast.__init__", "params": {"freq": "D"}}


@pytest.fixture
def db(nf_matrix_file, tmp_path, monkeypatch):
    engine, url = matrix_copy(nf_matrix_file, tmp_path)
    monkeypatch.setenv("FCAST_DB_URL", url)
    monkeypatch.setenv("FCAST_HOME", str(tmp_path / "home"))
    yield engine
    engine.dispose()


def _bad_rows(engine):
    """Two stored plans written by hand, the way the issue found them: params [1, 2] and library os."""
    with engine.begin() as conn:
        p1 = conn.execute(insert(RunPlan).values(name="bad_params", library="neuralforecast", data="synthetic")
                          ).inserted_primary_key[0]
        conn.execute(insert(RunStep).values(plan_id=p1, ord=0, method="neuralforecast.models.MLP", params=[1, 2]))
        p2 = conn.execute(insert(RunPlan).values(name="bad_library", library="os", data="synthetic")
                          ).inserted_primary_key[0]
        conn.execute(insert(RunStep).values(plan_id=p2, ord=0, method="os.system", params={"command": "true"}))


def test_one_bad_stored_plan_is_reported_and_skipped(db):
    loader.store_plans(db, [loader._plan({"name": "good", "steps": [MLP, INIT, {"method": "NeuralForecast.fit"}]},
                                         None)])
    _bad_rows(db)
    res = validator.validate_plans(db)
    assert res["good"] == []
    assert [v.rule for v in res["bad_params"]] == ["bad_plan"] and "mapping" in res["bad_params"][0].message
    assert [v.rule for v in res["bad_library"]] == ["bad_plan"] and "'os'" in res["bad_library"][0].message
    out = CliRunner().invoke(main, ["plan", "validate"])
    assert out.exit_code == 1 and "bad_plan" in out.output and "Traceback" not in out.output
    # delete them; the good plan stays
    out = CliRunner().invoke(main, ["plan", "delete", "bad_params", "bad_library"])
    assert out.exit_code == 0, out.output
    assert loader.plan_names(db) == ["good"]
    out = CliRunner().invoke(main, ["plan", "delete", "nope"])
    assert out.exit_code == 1 and "no plan 'nope'" in out.output


def test_failures_are_one_line_unless_debug(db, monkeypatch):
    out = CliRunner().invoke(main, ["model", "retrain", "987654"])
    assert out.exit_code != 0 and "Traceback" not in out.output
    assert len([ln for ln in out.output.splitlines() if ln.strip()]) == 1 and "987654" in out.output
    out = CliRunner().invoke(main, ["compat", "--run", "--model", "NoSuchModel"])
    assert out.exit_code == 2 and "NoSuchModel" in out.output and "Traceback" not in out.output
    monkeypatch.setenv("FCAST_DB_URL", "postgresql+psycopg://fcast:s3cret@127.0.0.1:1/forecast_meta")
    out = CliRunner().invoke(main, ["db", "init"])
    assert out.exit_code != 0 and "s3cret" not in out.output and "Traceback" not in out.output
    out = CliRunner().invoke(main, ["--debug", "db", "init"])
    assert out.exception is not None and "s3cret" not in out.output  # --debug: the exception itself


def test_mask_hides_passwords_only():
    assert mask("postgresql+psycopg://u:pw@h:5432/db") == "postgresql+psycopg://u:***@h:5432/db"
    assert mask("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"
    assert mask("see https://example.org/a:b") == "see https://example.org/a:b"


def test_db_init_prints_the_url_without_its_password(db, monkeypatch):
    out = CliRunner().invoke(main, ["db", "init"])
    assert out.exit_code == 0 and "initialised sqlite:///" in out.output
    with db.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM registry_release")).scalar() >= 1


def test_run_all_plans_skips_a_bad_stored_plan(db, tmp_path):
    from fcast_assets.plans import runner

    loader.store_plans(db, [loader._plan({"name": "good", "steps": [MLP, INIT, {"method": "NeuralForecast.fit"}]},
                                         None)])
    _bad_rows(db)
    out = {o["plan"]: o for o in runner.run_plans(db, work_root=tmp_path)}
    assert out["good"]["status"] == "success"
    assert out["bad_params"]["status"] == "invalid" and "bad_plan" in out["bad_params"]["violations"][0]
    assert out["bad_library"]["status"] == "invalid" and "'os'" in out["bad_library"]["violations"][0]
