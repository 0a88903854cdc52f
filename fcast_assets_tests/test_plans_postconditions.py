"""The runner checks what a forecast step returned (one row per id and step on the freq grid after the last ds,
the interval / quantile columns asked for, no NaN) and records a breach as ``suspect`` with the breaches; the
quantile columns of both neuralforecast conventions are recognised."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import text

from fcast_assets.compat.postconditions import check_columns
from fcast_assets.db.models import JSONType
from fcast_assets.plans import loader, runner
from fcast_assets.plans.evaluate import _split_columns

PLAN = {"name": "mlp_post", "data": "synthetic", "steps": [
    {"model": "MLP", "params": {"h": 2, "input_size": 8, "max_steps": 1}},
    {"method": "NeuralForecast.__init__", "params": {"freq": "D"}},
    {"method": "NeuralForecast.fit"},
    {"method": "NeuralForecast.predict"},
    {"method": "NeuralForecast.cross_validation", "params": {"n_windows": 2}},
    {"method": "evaluate"}]}


def _results(engine, execution_id):
    with engine.connect() as conn:
        return {r.name: (r.status, r.summary) for r in conn.execute(text(
            """SELECT s.name, r.status, r.summary FROM run_result r JOIN run_step s ON s.step_id = r.step_id
               WHERE r.execution_id = :e""").columns(summary=JSONType), {"e": execution_id})}


def test_clean_forecasts_pass_and_a_nan_forecast_is_suspect(nf_registry, tmp_path, monkeypatch):
    engine, _ = nf_registry
    loader.store_plans(engine, [loader._plan(PLAN, "test")])
    ok = runner.run_plan(engine, "mlp_post", work_root=tmp_path)
    assert ok["status"] == "success", _results(engine, ok["execution_id"])

    from neuralforecast import NeuralForecast

    real = NeuralForecast.predict

    def nan_predict(self, *a, **kw):  # the library returns a frame with a hole in it
        out = real(self, *a, **kw)
        out.loc[out.index[0], "MLP"] = np.nan
        return out

    monkeypatch.setattr(NeuralForecast, "predict", nan_predict)
    # the miniature run of the plan sees the hole first and stops the plan as "runs, but wrong"
    with pytest.raises(runner.PlanNotValidError) as err:
        runner.run_plan(engine, "mlp_post", work_root=tmp_path)
    (v,) = err.value.violations
    assert v.rule == "miniature_suspect" and v.step == 3 and "NaN forecasts in MLP" in v.message
    # the real run checks the same post-conditions on its own output
    bad = runner.run_plan(engine, "mlp_post", work_root=tmp_path, miniature=False)
    res = _results(engine, bad["execution_id"])
    assert bad["status"] == "suspect" and res["predict"][0] == "suspect"
    assert any("NaN forecasts in MLP" in b for b in res["predict"][1]["breaches"])
    assert res["predict"][1]["rows"] == 4  # the summary of what ran is kept
    assert res["cross_validation"][0] == "success" and res["evaluate"][0] == "success"  # not blocked


@pytest.mark.parametrize("sep", ["-", "_"])
def test_quantile_columns_of_both_conventions(sep):
    fc = pd.DataFrame({"unique_id": ["a"], "ds": [1], "y": [1.0], "M": [1.0], f"M{sep}ql0.1": [0.5],
                       f"M{sep}ql0.9": [1.5]})
    assert check_columns(fc, model_names=["M"], quantiles=[0.1, 0.9]) == []
    assert check_columns(fc, model_names=["M"], quantiles=[0.2]) != []
    out, points, levels = _split_columns(fc)
    assert points == ["M"] and levels == [80] and {"M-lo-80", "M-hi-80"} <= set(out.columns)
