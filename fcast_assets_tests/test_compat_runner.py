"""The cell runner's isolation: crashes, hangs and failing setups become recorded cells, never a lost run.
And the post-conditions that turn a run into `suspect`."""

from __future__ import annotations

import os
import time

import pandas as pd

from fcast_assets.compat.postconditions import check_cross_validation, check_forecast
from fcast_assets.compat.runner import Cell, Group, run_groups


class ToyAdapter:
    def setup(self, group):
        if group.setup.get("fail"):
            raise RuntimeError("cannot build the baseline")
        return {"base": 41}

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
        raise AssertionError(action)


def _cell(do):
    return Cell("toy.Model", "Toy.fit", "x", do, do, spec={"do": do})


def test_runner_records_every_outcome():
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
    assert by[("g2", "hang")][0]["status"] == "timeout"
    assert by[("g2", "ok")][0]["status"] == "ok"
    setup = by[("g3", "ok")]
    assert [r["status"] for r in setup] == ["error", "error"]
    assert all(r["message"] == "setup failed: cannot build the baseline" for r in setup)


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
