"""chronos (Chronos-2, Chronos-Bolt, the original Chronos) and timesfm (TimesFM 3) through the foundation adapter: tiny models of the real
classes built in the run's work folder, loaded through the public loaders on a local path (no network), their
public methods probed cell by cell into the same compat tables, with post-conditions that make a wrong output
``suspect``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import text

from fcast_assets.compat.foundation_adapter import (Q_CHRONOS2, build_chronos2, build_data, build_timesfm,
                                                    check_frame, check_monotone, check_timesfm, data_spec)
from fcast_assets.compat.tables import rerun_cell

from .conftest import compat_cells_of_runs as cells, fork_and_spawn_matrix, one_compat_cell as one

CHRONOS_FAMILIES = ["quantile_levels", "device_map", "freq"]
TIMESFM_FAMILIES = ["horizon", "ts_ids", "median_quantile_index"]
C2, BOLT = "chronos.chronos2.pipeline.Chronos2Pipeline", "chronos.chronos_bolt.ChronosBoltPipeline"
T5 = "chronos.chronos.ChronosPipeline"  # the original Chronos: sample paths
TFM = "timesfm3.torch.timesfm3_forecaster.TimesFM3Forecaster"


@pytest.fixture(scope="module")
def matrix(tmp_path_factory):
    engine, ch, tf = fork_and_spawn_matrix(tmp_path_factory.mktemp("compatfm"), ("chronos", CHRONOS_FAMILIES, 2),
                                           ("timesfm", TIMESFM_FAMILIES, 1))
    yield engine, ch, tf
    engine.dispose()


def test_counts_views_and_facts(matrix):
    engine, ch, tf = matrix
    assert ch["cells"] > 40 and tf["cells"] > 20
    assert ch["counts"].get("ok", 0) > 15 and ch["counts"].get("error", 0) > 5
    assert tf["counts"].get("ok", 0) > 8 and tf["counts"].get("error", 0) > 5
    with engine.connect() as conn:
        libs = dict(conn.execute(text("SELECT c.library, COUNT(*) FROM compat_result r JOIN compat_run c "
                                      "USING (compat_run_id) GROUP BY c.library")).all())
        views = {r[0] for r in conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'view'")).all()}
    assert set(libs) == {"chronos", "timesfm"} and libs["timesfm"] == tf["cells"]
    assert libs["chronos"] >= ch["cells"]  # (+ a re-run cell when the quantile test ran first)
    assert {"compat_pipeline_predict_quantiles_quantile_levels", "compat_forecaster_predict_batch_horizon"} <= views
    models = {r.model for r in cells(engine, "1 = 1")}
    assert models == {C2, BOLT, T5, TFM}
    for r in cells(engine, "1 = 1"):
        f = r.scenario_facts
        assert {"variant", "state", "n_series", "lengths", "h_rel", "device"} <= set(f), (r.model, r.param, f)
        assert f["state"] == "loaded"


def test_chronos_quantile_levels(matrix):
    engine, _, _ = matrix
    where = "model = :m AND method = 'pipeline.predict_quantiles' AND param = 'quantile_levels' AND value_label = :v"
    # levels the model has, a subset, unsorted: ok (the unsorted ones come back in the order asked)
    for m in (C2, BOLT, T5):
        for v in ("[0.1, 0.5, 0.9]", "[0.5]", "[0.9, 0.1, 0.5]", "[0.25, 0.75]"):
            r = one(engine, where, m=m, v=v)
            assert r.status == "ok", (m, v, r.message)
        assert one(engine, where, m=m, v="[0.9, 0.1, 0.5]").scenario_facts["quantile_levels"] == [0.9, 0.1, 0.5]
    # outside the levels Bolt was trained on: clamped, with the library's logged warning in the cell's context
    clamp = one(engine, where, m=BOLT, v="[0.01, 0.99]")
    assert clamp.status == "ok" and any("not within the range" in w for w in clamp.context["warnings"])
    # outside (0, 1): each pipeline's own error
    c2 = one(engine, where, m=C2, v="[1.5]")
    assert c2.status == "error" and c2.exception_type == "AssertionError" and "between 0 and 1" in c2.message
    assert one(engine, where, m=T5, v="[1.5]").exception_type == "RuntimeError"  # torch.quantile's own
    bolt = one(engine, where, m=BOLT, v="[1.5]")
    assert bolt.status == "error" and bolt.exception_type == "RuntimeError" and "[0, 1]" in bolt.message
    # the re-run from the row gives the same outcome
    again = rerun_cell(engine, bolt.result_id)
    assert again["reproduced"], again


def test_chronos_device_and_freq(matrix):
    engine, _, _ = matrix
    import torch

    where = "model = :m AND method = 'BaseChronosPipeline.from_pretrained' AND param = 'device_map' AND value_label = :v"
    assert one(engine, where, m=C2, v="'cpu'").status == "ok"
    cuda = one(engine, where, m=BOLT, v="'cuda'")
    if torch.cuda.is_available():
        assert cuda.status == "ok"
    else:  # the real error of a CPU-only torch, recorded, not guessed
        assert cuda.status == "error" and "CUDA" in cuda.message and cuda.scenario_facts["device"] == "cuda"
    where = "model = :m AND method = 'pipeline.predict_df' AND param = 'freq' AND value_label = :v"
    # the data's own freq: timestamps on its grid; an hourly freq on daily data is accepted and leaves the grid
    assert one(engine, where, m=C2, v="'D'").status == "ok"
    hourly = one(engine, where, m=BOLT, v="'h'")
    assert hourly.status == "suspect" and "grid" in hourly.message and hourly.scenario_facts["freq"] == "h"
    assert one(engine, where, m=C2, v="'x'").exception_type == "ValueError"


def test_timesfm_cells(matrix):
    engine, _, tf = matrix
    where = "model = :m AND method = :meth AND param = :p AND value_label = :v"
    h = {v: one(engine, where, m=TFM, meth="forecaster.predict_batch", p="horizon", v=v)
         for v in ("1", "one output patch", "beyond one output patch (40)", "0 (zero)")}
    assert h["1"].status == h["one output patch"].status == "ok"
    assert h["one output patch"].value == 16 and h["one output patch"].scenario_facts["horizon"] == 16
    assert h["beyond one output patch (40)"].status == "ok"
    assert h["beyond one output patch (40)"].scenario_facts["h_rel"] == "gt"
    assert h["0 (zero)"].status == "error" and "horizon > 0" in h["0 (zero)"].message
    ids = lambda v: one(engine, where, m=TFM, meth="forecaster.predict_batch", p="ts_ids", v=v)  # noqa: E731
    assert ids('["a", "b"]').status == "ok"
    assert ids('["a"]').status == "error" and ids('["a"]').exception_type == "IndexError"
    extra = ids('["a", "b", "c"]')
    assert extra.status == "suspect" and "3 ts_ids for 2 series" in extra.message
    # a median index that is not the median: the point forecast silently becomes another quantile
    med = lambda v: one(engine, where, m=TFM, meth="TimesFM3Forecaster.from_pretrained",  # noqa: E731
                        p="median_quantile_index", v=v)
    assert med("4 (default)").status == "ok"
    assert med("0 (zero)").status == "suspect" and "0.5 quantile" in med("0 (zero)").message
    assert med("80 (larger than the series)").status == "ok"  # the loader resets an index past the quantiles


def test_tiny_models_load_through_the_public_loaders(tmp_path):
    """The built weights are what the loader returns (loading is not strict for TimesFM: compare keys)."""
    import torch
    from chronos import BaseChronosPipeline
    from timesfm3 import TimesFM3Forecaster
    from timesfm3.torch.model import TimesFM3Torch

    sizes = {"patch": 16, "context": 64, "max_output": 32, "d_model": 16}
    pipe = BaseChronosPipeline.from_pretrained(build_chronos2(tmp_path / "c2", sizes), device_map="cpu")
    assert type(pipe).__name__ == "Chronos2Pipeline" and pipe.quantiles == Q_CHRONOS2
    q, mean = pipe.predict_quantiles([torch.linspace(0, 5, 40)], prediction_length=4, quantile_levels=[0.1, 0.5, 0.9])
    assert q[0].shape == (1, 4, 3) and not check_monotone(q[0].numpy(), [0.1, 0.5, 0.9])
    path = build_timesfm(tmp_path / "tf", {"patch": 8})
    fc = TimesFM3Forecaster.from_pretrained(path, device="cpu")
    built = TimesFM3Torch.from_pretrained(path)
    assert set(fc.model.state_dict()) == set(built.state_dict())
    assert all(torch.equal(fc.model.state_dict()[k], v) for k, v in built.state_dict().items())


def test_postconditions_judge_outputs():
    """Each check against a right output (no breach) and a wrong look-alike (a breach)."""
    assert check_monotone(np.array([[1.0, 2.0, 3.0]]), [0.1, 0.5, 0.9]) == []
    assert check_monotone(np.array([[3.0, 1.0, 2.0]]), [0.9, 0.1, 0.5]) == []  # asked unsorted, ordered by level
    assert check_monotone(np.array([[1.0, 3.0, 2.0]]), [0.1, 0.5, 0.9])
    data = build_data(data_spec())
    last = {k: v for k, v in data["last"].items()}
    rows = [{"item_id": u, "timestamp": t, "target_name": "target", "predictions": 1.0, "0.1": 0.5, "0.9": 1.5}
            for u, lt in last.items() for t in pd.date_range(lt, periods=3, freq="D")[1:]]
    ctx = {"id_column": "item_id", "timestamp_column": "timestamp", "last": last, "h": 2, "n_targets": 1,
           "freq": "D", "levels": [0.1, 0.9]}
    assert check_frame(pd.DataFrame(rows), ctx) == []
    shifted = pd.DataFrame(rows).assign(timestamp=lambda d: d["timestamp"] + pd.Timedelta(hours=1))
    assert any("grid" in b for b in check_frame(shifted, ctx))
    assert any("requested columns missing" in b for b in check_frame(pd.DataFrame(rows).drop(columns="0.9"), ctx))

    class Out:
        def __init__(self, f, q, ts_id=None):
            self.forecast, self.quantiles, self.ts_id = f, q, ts_id

    q = np.tile(np.arange(9.0), (2, 1))  # (h=2, 9 quantiles), ordered; the median is column 4
    tctx = {"single": False, "n_series": 1, "h": 2, "model_quantiles": [0.1 * i for i in range(1, 10)],
            "return_quantiles": True, "sort_quantiles": True, "make_positive": False, "nonnegative": [True],
            "ts_ids": None}
    tctx["model_quantiles"] = [round(x, 1) for x in tctx["model_quantiles"]]
    assert check_timesfm([Out(q[:, 4], q)], tctx) == []
    assert any("0.5 quantile" in b for b in check_timesfm([Out(q[:, 0], q)], tctx))
    assert any("NaN" in b for b in check_timesfm([Out(np.array([np.nan, 1.0]), q)], tctx))
