"""Interaction cells of the neuralforecast matrix (neuralforecast_interactions.yaml): pairs of factors run for real
on tiny data (MLP for every pair, TSMixer for n_series ≠ ids), each cell with a scenario naming both factors and
scenario facts describing both; outcomes checked against the library called directly the same way."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from fcast_assets.compat.neuralforecast_adapter import (QUIET_TRAINER, build_data, interaction_catalogue,
                                                      interaction_data)
from fcast_assets.compat.probe import run_matrix
from fcast_assets.compat.tables import rerun_cell
from fcast_assets.db.models import JSONType

from .conftest import compat_rows, scanned_db


@pytest.fixture(scope="module")
def matrix(tmp_path_factory):
    engine, _ = scanned_db(tmp_path_factory.mktemp("compat_ix"))
    mlp = run_matrix(engine, "neuralforecast", models=["MLP"], families=["interactions"], workers=2,
                     cell_timeout=90)
    tsm = run_matrix(engine, "neuralforecast", models=["TSMixer"], families=["interactions:n_series_vs_ids"],
                     workers=2, cell_timeout=90)
    yield engine, mlp, tsm
    engine.dispose()


def _ix(engine, run_id: int, interaction: str | None = None):
    """Interaction rows of a run (optionally one interaction id), with their facts."""
    with engine.connect() as conn:
        rows = conn.execute(text("""SELECT result_id, model, method, param, value, scenario, status, exception_type,
                                    message, context, scenario_facts FROM compat_result WHERE compat_run_id = :r""")
                            .columns(value=JSONType, context=JSONType, scenario_facts=JSONType),
                            {"r": run_id}).all()
    rows = [r for r in rows if (r.context or {}).get("cell", {}).get("spec", {}).get("kind") == "interaction"]
    if interaction:
        rows = [r for r in rows if r.context["cell"]["spec"]["interaction"] == interaction]
    return rows


def _by_scenario(rows):
    return {r.scenario: r for r in rows}


def _mlp(**kw):
    from neuralforecast.models import MLP

    return MLP(h=2, input_size=4, max_steps=1, **{**QUIET_TRAINER, **kw})


def _outcome(fn):
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - the library's own exception is the outcome
        return type(e).__name__, str(e)
    return None, None


def test_every_pair_of_the_catalogue_has_cells_naming_both_factors(matrix):
    engine, mlp, tsm = matrix
    rows = _ix(engine, mlp["compat_run_id"])
    ids = {r.context["cell"]["spec"]["interaction"] for r in rows}
    expected = {e["id"] for e in interaction_catalogue() if not e.get("multivariate_only")}
    assert ids == expected and len(expected) >= 12
    assert {r.context["cell"]["spec"]["interaction"] for r in _ix(engine, tsm["compat_run_id"])} == \
        {"n_series_vs_ids"}
    by_id = {e["id"]: e for e in interaction_catalogue()}
    for r in rows + _ix(engine, tsm["compat_run_id"]):
        e = by_id[r.context["cell"]["spec"]["interaction"]]
        first, second = r.scenario.split(" × ")
        assert e["with"].get("name", e["with"]["param"]) in first and e["call"]["param"] in second, r.scenario
        assert (r.method, r.param) == (e["call"]["method"], e["call"]["param"])
        assert r.scenario_facts, f"no facts for {r.scenario}"
        assert r.status in ("ok", "error", "suspect"), (r.scenario, r.status, r.message)
    # one row per (method, param, scenario): the scenario tells every cell of a call apart
    keys = [(r.method, r.param, r.scenario) for r in rows]
    assert len(keys) == len(set(keys))
    # losses come from the registry's loss list, one per kind
    losses = {r.scenario.split(" × ")[0] for r in _ix(engine, mlp["compat_run_id"], "cv_level_loss")}
    assert losses == {"loss=MAE()", "loss=MQLoss()", "loss=DistributionLoss(distribution='Poisson')"}


def test_facts_describe_both_factors(matrix):
    engine, mlp, tsm = matrix
    cv = _by_scenario(_ix(engine, mlp["compat_run_id"], "cv_level_loss"))["loss=MQLoss() × level=[80]"]
    f = cv.scenario_facts
    assert f["loss"] == "MQLoss()" and f["loss_kind"] == "quantile" and f["level"] is True
    assert f["n_windows"] == 1 and f["state"] == "fresh"
    ts = _ix(engine, mlp["compat_run_id"], "test_size_n_windows_none")[0].scenario_facts
    assert ts["test_size"] == 4 and ts["n_windows"] is None
    pi = _by_scenario(_ix(engine, mlp["compat_run_id"], "pi_loss"))
    assert all(r.scenario_facts["prediction_intervals"] is True for r in pi.values())
    assert {r.scenario_facts["loss_kind"] for r in pi.values()} == {"point", "quantile", "distribution"}
    h = {r.scenario: r.scenario_facts for r in _ix(engine, mlp["compat_run_id"], "predict_h_gt_futr")}
    (hf,) = h.values()
    assert hf["h_rel"] == "gt" and hf["exog_futr"] == ["fut_x"] and hf["futr_df"] == "covers"
    before = _ix(engine, mlp["compat_run_id"], "predict_before_fit")[0].scenario_facts
    after_cv = _ix(engine, mlp["compat_run_id"], "insample_after_cv")[0].scenario_facts
    assert before["state"] == "fresh" and after_cv["state"] == "cv"
    weekly = {r.scenario: r.scenario_facts for r in _ix(engine, mlp["compat_run_id"], "freq_w")}
    assert weekly["data freq='W' × freq='W'"]["freq_fits_data"] is True
    assert weekly["data freq='D' × freq='W'"]["freq_fits_data"] is False
    ns = _ix(engine, tsm["compat_run_id"], "n_series_vs_ids")
    assert len(ns) == 2 and all(r.scenario_facts["n_series_matches"] is False for r in ns)


def test_test_size_runs_with_n_windows_none_and_not_with_the_default(matrix):
    engine, mlp, _ = matrix
    from neuralforecast import NeuralForecast

    (row,) = _ix(engine, mlp["compat_run_id"], "test_size_n_windows_none")
    assert row.status == "ok", row.message
    # the look-alike: test_size with the default n_windows (what the single-factor cells run) fails in the library
    df = build_data()["df"]
    assert _outcome(lambda: NeuralForecast([_mlp()], freq="D").cross_validation(df, test_size=4))[0] is not None
    assert _outcome(lambda: NeuralForecast([_mlp()], freq="D").cross_validation(
        df, test_size=4, n_windows=None))[0] is None


def test_predict_before_fit_is_the_library_error(matrix):
    engine, mlp, _ = matrix
    from neuralforecast import NeuralForecast

    (row,) = _ix(engine, mlp["compat_run_id"], "predict_before_fit")
    live = _outcome(lambda: NeuralForecast([_mlp()], freq="D").predict())
    assert row.status == "error" and (row.exception_type, row.message) == live
    # after cross_validation the in-sample prediction runs
    (ins,) = _ix(engine, mlp["compat_run_id"], "insample_after_cv")
    assert ins.status == "ok", ins.message


def test_distribution_loss_save_load_matches_the_library(matrix, tmp_path):
    engine, mlp, _ = matrix
    from neuralforecast import NeuralForecast
    from neuralforecast.losses.pytorch import DistributionLoss

    rows = _by_scenario(_ix(engine, mlp["compat_run_id"], "save_load_loss"))
    assert rows["loss=MAE() × path=path: saved"].status == "ok"
    assert rows["loss=MQLoss() × path=path: saved"].status == "ok"
    dist = rows["loss=DistributionLoss(distribution='Poisson') × path=path: saved"]
    df = build_data()["df"]

    def round_trip():
        nf = NeuralForecast([_mlp(loss=DistributionLoss(distribution="Poisson"))], freq="D")
        nf.fit(df)
        nf.save(str(tmp_path / "m"))
        NeuralForecast.load(str(tmp_path / "m")).predict()

    live_type, _ = _outcome(round_trip)
    assert (dist.status, dist.exception_type) == (("error", live_type) if live_type else ("ok", None))


def test_observed_statuses_of_the_loss_pairs(matrix):
    engine, mlp, _ = matrix
    cv = _by_scenario(_ix(engine, mlp["compat_run_id"], "cv_level_loss"))
    assert cv["loss=MQLoss() × level=[80]"].status == "ok"
    # a point loss without prediction intervals: level is accepted and no interval column comes back
    mae = cv["loss=MAE() × level=[80]"]
    assert mae.status == "suspect" and "MLP-lo-80" in mae.message
    vl = _by_scenario(_ix(engine, mlp["compat_run_id"], "valid_loss_loss"))
    assert vl["loss=MAE() × valid_loss=MQLoss()"].status == "ok"
    bad = vl["loss=MQLoss() × valid_loss=MAE()"]
    assert bad.status == "error" and "valid_loss" in bad.message
    hist = _by_scenario(_ix(engine, mlp["compat_run_id"], "predict_h_gt_hist"))
    futr = _by_scenario(_ix(engine, mlp["compat_run_id"], "predict_h_gt_futr"))
    assert next(iter(futr.values())).status == "ok"
    assert next(iter(hist.values())).exception_type == "NotImplementedError"
    freq = _by_scenario(_ix(engine, mlp["compat_run_id"], "freq_w"))
    assert freq["data freq='W' × freq='W'"].status == "ok"
    assert freq["data freq='D' × freq='W'"].status == "suspect"


def test_n_series_other_than_the_ids_fails_where_equal_runs(matrix):
    engine, _, tsm = matrix
    for r in _ix(engine, tsm["compat_run_id"], "n_series_vs_ids"):
        assert r.status == "error", (r.scenario, r.status)
    # the look-alike: n_series == ids (the calibrated baseline) runs
    calib = compat_rows(engine, "compat_run_id = :r AND param = 'input_size' AND status = 'ok'",
                        r=tsm["compat_run_id"])
    assert calib


def test_weekly_data_frames_are_on_the_weekly_grid():
    import pandas as pd

    d = interaction_data({"ds_kind": "datetime", "exog": ["futr"], "freq": "W"})
    assert d["freq"] == "W" and pd.infer_freq(d["df"][d["df"].unique_id == "s1"]["ds"]) == "W-SUN"
    assert (d["futr_df"].groupby("unique_id")["ds"].min() > d["df"].groupby("unique_id")["ds"].max()).all()


def test_an_interaction_cell_reruns_from_its_row(matrix):
    engine, mlp, _ = matrix
    row = _by_scenario(_ix(engine, mlp["compat_run_id"], "valid_loss_loss"))["loss=MQLoss() × valid_loss=MAE()"]
    r = rerun_cell(engine, row.result_id)
    assert r["reproduced"], r


def test_interaction_cells_show_in_the_call_views(matrix):
    engine, mlp, _ = matrix
    from fcast_assets.compat.probe import create_views

    names = create_views(engine)
    assert "compat_cv_level" in names and "compat_model_valid_loss" in names
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT scenario, \"[80]\" AS v FROM compat_cv_level")).all()
    cells = {r.scenario: r.v for r in rows}
    assert cells["loss=MQLoss() × level=[80]"] == "ok"
    assert cells["loss=MAE() × level=[80]"].startswith("suspect: requested columns missing")
