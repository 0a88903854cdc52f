"""The statsforecast / mlforecast cell families of issue 18 (edge levels and horizons, fitted values, X_df shapes,
conformal intervals on the model, cross-validation variants; LightGBM, lags, lag_transforms, date_features,
target_transforms, keep_last_n below the largest lag, level edges) run for real on a few models. Every expected
status below is what the library did when run, not a verdict written by hand."""

from __future__ import annotations

import sys

import pytest
import yaml

from fcast_assets.compat.frame_adapter import load_spec
from fcast_assets.compat.neuralforecast_adapter import N_IDS, build_data, decode
from fcast_assets.compat.objects import problems
from fcast_assets.compat.probe import run_matrix
from fcast_assets.compat.tables import rerun_cell

from .conftest import compat_rows as _rows, scanned_db

SF_MODELS = ["Naive", "NaNModel", "ARIMA", "SklearnModel"]
SF_FAMILIES = ["sf_edges", "sf_fitted", "sf_xdf", "sf_conformal", "sf_cv"]
MLF_MODELS = ["LinearRegression", "LGBMRegressor"]
MLF_FAMILIES = ["mlf_features", "mlf_level", "h"]


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    engine, _ = scanned_db(tmp_path_factory.mktemp("compat_frames"), "statsforecast", "mlforecast")
    sf = run_matrix(engine, "statsforecast", models=SF_MODELS, families=SF_FAMILIES, workers=2)
    mlf = run_matrix(engine, "mlforecast", models=MLF_MODELS, families=MLF_FAMILIES, workers=2)
    yield engine, sf, mlf
    engine.dispose()




def one(engine, model: str, method: str, param: str, label: str):
    rows = _rows(engine, "model LIKE :m AND method = :meth AND param = :p AND value_label = :l",
                 m=f"%.{model}", meth=method, p=param, l=label)
    assert len(rows) == 1, (model, method, param, label, [r.value_label for r in rows])
    return rows[0]


def test_no_model_is_skipped(frames):
    engine, sf, mlf = frames
    assert sf["cells"] > 100 and mlf["cells"] > 40
    # NaNModel (NaN by design) and SklearnModel (an estimator over exogenous columns) are probed, not skipped
    for model in ("NaNModel", "SklearnModel", "LGBMRegressor"):
        rows = _rows(engine, "model LIKE :m", m=f"%.{model}")
        assert rows and not [r for r in rows if r.status == "skipped"], model


def test_statsforecast_level_and_h_edges(frames):
    engine = frames[0]
    for method in ("StatsForecast.forecast", "StatsForecast.predict", "StatsForecast.cross_validation"):
        for lab in ("[0]", "[100]"):
            r = one(engine, "Naive", method, "level", lab)
            assert (r.status, r.exception_type) == ("error", "ValueError")
            assert "between 0 and 100 (exclusive)" in r.message
        bare = one(engine, "Naive", method, "level", "80")  # a bare int, not a list
        assert (bare.status, bare.exception_type) == ("error", "TypeError") and "len()" in bare.message
    assert one(engine, "Naive", "StatsForecast.cross_validation", "level", "[80, 95]").status == "ok"
    for method in ("StatsForecast.forecast", "StatsForecast.predict"):
        zero = one(engine, "Naive", method, "h", "0")
        assert (zero.status, zero.exception_type) == ("error", "ValueError")
        assert "need at least one array" in zero.message
        neg = one(engine, "Naive", method, "h", "-1")
        assert (neg.status, neg.exception_type) == ("error", "ValueError") and "negative" in neg.message


def test_fitted_values(frames):
    engine = frames[0]
    m = "StatsForecast.forecast_fitted_values"
    for model in ("Naive", "ARIMA"):
        for lab in ("None | fitted=True", "[80] | fitted=True"):
            assert one(engine, model, m, "level", lab).status == "ok", (model, lab)
    nan = one(engine, "NaNModel", m, "level", "[80] | fitted=True")
    assert nan.status == "suspect" and "fitted values all NaN in NaNModel" in nan.message
    assert one(engine, "Naive", m, "level", "[100] | fitted=True").status == "error"


def test_x_df_shapes(frames):
    engine = frames[0]
    lab = "{} | exog in df"
    for method in ("StatsForecast.forecast", "StatsForecast.predict"):
        # a model with exogenous regressors names the missing feature; one without only sees a shape mismatch
        arima = one(engine, "ARIMA", method, "X_df", lab.format("futr_df_missing_col"))
        assert arima.status == "error" and "require the following exogenous features ['fut_x']" in arima.message
        naive = one(engine, "Naive", method, "X_df", lab.format("futr_df_missing_col"))
        assert naive.status == "error" and "Expected X to have shape (4, 3), but got (4, 2)" in naive.message
        for frame, got in (("futr_df_long", "(8, 3)"), ("futr_df_extra", "(4, 4)")):
            r = one(engine, "ARIMA", method, "X_df", lab.format(frame))
            assert (r.status, r.exception_type) == ("error", "ValueError") and got in r.message
    # the valid look-alike: X_df covering h exactly
    assert one(engine, "ARIMA", "StatsForecast.predict", "X_df", lab.format("futr_df")).status == "ok"
    assert one(engine, "SklearnModel", "StatsForecast.predict", "X_df", lab.format("futr_df")).status == "ok"
    sk = one(engine, "SklearnModel", "StatsForecast.predict", "X_df", lab.format("None"))
    assert sk.status == "error" and "Please provide them through `X_df`" in sk.message


def test_conformal_intervals_on_the_model(frames):
    engine = frames[0]
    m, p = "Model.__init__", "prediction_intervals"
    for model in ("Naive", "ARIMA"):
        one_w = one(engine, model, m, p, "ConformalIntervals(h=2, n_windows=1) | level=[80]")
        assert one_w.status == "error" and "at least two windows" in one_w.message
        assert one(engine, model, m, p, "ConformalIntervals(h=2, n_windows=2) | level=[80]").status == "ok"
        # 40 windows of h=2 need 80 points, the series have 64: statsforecast runs anyway (it caps the windows)
        assert one(engine, model, m, p, "ConformalIntervals(h=2, n_windows=40) | level=[80]").status == "ok"
    # a model without the parameter (NaNModel) has no such cell
    assert not _rows(engine, "model LIKE '%.NaNModel' AND method = 'Model.__init__' "
                             "AND param = 'prediction_intervals'")


def test_cross_validation_variants(frames):
    engine = frames[0]
    many = one(engine, "Naive", "StatsForecast.cross_validation", "n_windows", "100")
    assert many.status == "error" and "too short for the cross validation settings" in many.message
    for lab in ("true", "false", "2"):
        assert one(engine, "Naive", "StatsForecast.cross_validation", "refit", f"{lab} | n_windows=3").status == "ok"
    r = one(engine, "Naive", "StatsForecast.cross_validation", "level", "[80] | n_windows=2, refit=False")
    assert r.status == "ok"


def test_nan_model_is_suspect_not_skipped(frames):
    engine = frames[0]
    r = one(engine, "NaNModel", "StatsForecast.cross_validation", "refit", "2 | n_windows=3")
    assert r.status == "suspect" and "NaN forecasts in NaNModel" in r.message
    r = one(engine, "NaNModel", "Model.__init__", "baseline", "baseline")  # calibration: the call runs
    assert r.status == "ok"


def test_mlforecast_lightgbm_and_features(frames):
    engine = frames[0]
    for h in ("1", "2", "4"):
        assert one(engine, "LGBMRegressor", "MLForecast.predict", "h", h).status == "ok"
    init = "MLForecast.__init__"
    for model in MLF_MODELS:
        assert one(engine, model, init, "lags", "[1]").status == "ok"
        zero = one(engine, model, init, "lags", "[0]")
        assert zero.status == "error" and "lags must be positive integers" in zero.message
        bad = one(engine, model, init, "date_features", '["not_a_feature"]')
        assert (bad.status, bad.exception_type) == ("error", "AttributeError") and "not_a_feature" in bad.message
        assert one(engine, model, init, "date_features", '["dayofweek", "month"]').status == "ok"
        for lab in ("[Differences([1])]", "[LocalStandardScaler()]", "[Differences([1]), LocalStandardScaler()]"):
            assert one(engine, model, init, "target_transforms", lab).status == "ok"
        assert one(engine, model, init, "lag_transforms", "{1: [RollingMean(window_size=2)]}").status == "ok"
        assert one(engine, model, init, "lag_transforms",
                   "{1: [RollingMean(window_size=100)]} (window > series)").status == "error"
    # no features at all: each estimator fails its own way
    assert one(engine, "LinearRegression", init, "lags", "[]").exception_type == "ValueError"
    assert one(engine, "LGBMRegressor", init, "lags", "[]").exception_type == "LightGBMError"


def test_keep_last_n_below_the_largest_lag(frames):
    engine = frames[0]
    m = "MLForecast.fit"
    # LinearRegression refuses the NaN lag feature; LightGBM takes it silently (a forecast without lag 2 / 7)
    for lab in ("1", "3 | lags=[1, 7]"):
        lr = one(engine, "LinearRegression", m, "keep_last_n", lab)
        assert lr.status == "error" and "Input X contains NaN" in lr.message
        assert one(engine, "LGBMRegressor", m, "keep_last_n", lab).status == "ok"
    for lab in ("2", "7 | lags=[1, 7]", "8 | lags=[1, 7]"):  # at or above the largest lag: both run
        assert one(engine, "LinearRegression", m, "keep_last_n", lab).status == "ok"


def test_mlforecast_level_edges(frames):
    engine = frames[0]
    for model in MLF_MODELS:
        for lab in ("[0]", "[100]"):  # mlforecast accepts what statsforecast refuses
            assert one(engine, model, "MLForecast.predict", "level", f"{lab} | prediction_intervals").status == "ok"
        r = one(engine, model, "MLForecast.predict", "level", "[120] | prediction_intervals")
        assert r.status == "error" and "Quantiles must be in the range [0, 1]" in r.message
        many = one(engine, model, "MLForecast.fit", "prediction_intervals",
                   "PredictionIntervals(n_windows=40, h=2) | level=[80]")
        assert many.status == "error" and "Minimum required samples" in many.message


def test_rerun_from_row_with_int_keyed_value(frames):
    engine = frames[0]
    r = one(engine, "LinearRegression", "MLForecast.__init__", "lag_transforms", "{1: [RollingMean(window_size=2)]}")
    # the stored value went through JSON (string keys); decoding gives mlforecast its int lags back
    assert list(decode(r.value, build_data())) == [1]
    assert rerun_cell(engine, r.result_id)["after"]["status"] == "ok"


def test_every_non_baseline_cell_has_a_scenario(frames):
    engine = frames[0]
    base = {k for name in ("statsforecast", "mlforecast") for steps in load_spec(name)["methods"].values()
            for s in steps for k in s.get("kwargs", {})}  # what the library's own step templates pass
    rows = _rows(engine, "method <> 'Model.__init__' OR param <> 'baseline'")
    assert len(rows) > 150
    for r in rows:
        spec = r.context["cell"]["spec"]
        changed = spec.get("data") or spec.get("core_kwargs", {}).keys() - {r.param}
        changed = changed or any(s.get("kwargs", {}).keys() - base - {r.param} for s in spec["steps"])
        if changed:
            assert r.scenario != "baseline", (r.model, r.method, r.param, r.value_label)
    # the look-alike: a cell in the baseline setup keeps the baseline scenario
    assert one(engine, "Naive", "StatsForecast.forecast", "h", "0").scenario == "baseline"


@pytest.mark.parametrize("name", ["statsforecast", "mlforecast"])
def test_specs_declare_scenarios_and_closed_objects(name):
    spec = load_spec(name)
    for entry in spec["cells"]:
        if entry.get("with") or entry.get("data") or entry.get("core"):
            assert entry.get("scenario"), entry
        assert not problems(entry.get("values", [])), entry
    assert not problems(yaml.safe_load(yaml.safe_dump(spec.get("model_overrides", {}))))


# --- one fit per shared setup -------------------------------------------------------------------------------
# A real statsforecast model (Naive) whose fit and predict also write a line to a log file (every process of the
# run appends to it): the library's own fit / predict run unchanged. predict also changes the fitted model (a
# counter on it), so a cell that saw another cell's predict would log a count above 1.
try:
    from statsforecast.models import Naive as _Naive
except ImportError:  # pragma: no cover - statsforecast is a dependency of the project
    _Naive = object


class CountingNaive(_Naive):
    def _log(self, line: str) -> None:
        import os

        with open(os.environ["FCAST_TEST_FIT_LOG"], "a", encoding="utf-8") as fh:
            fh.write(f"{line} {os.getpid()}\n")

    def fit(self, *args, **kwargs):
        self._log("fit")
        return super().fit(*args, **kwargs)

    def predict(self, *args, **kwargs):
        self.n_predicts = getattr(self, "n_predicts", 0) + 1
        self._log(f"predict {self.n_predicts}")
        return super().predict(*args, **kwargs)


COUNTING = f"{__name__}.CountingNaive"


@pytest.fixture
def counting_adapter(tmp_path, monkeypatch):
    """The statsforecast adapter with CountingNaive added as a model of its own (the registry's Naive
    parameters), and the log its fits and predicts write to."""
    from fcast_assets.compat.frame_adapter import StatsForecastAdapter
    from fcast_assets.registry.view import latest_release

    engine, _ = scanned_db(tmp_path, "statsforecast")
    adapter = StatsForecastAdapter(engine, latest_release(engine, "statsforecast")[0], str(tmp_path))
    adapter.models[COUNTING] = {"qualname": COUNTING, "name": "CountingNaive"}
    adapter.init_params[COUNTING] = adapter.init_params["statsforecast.models.Naive"]
    log = tmp_path / "fits.log"
    monkeypatch.setenv("FCAST_TEST_FIT_LOG", str(log))
    monkeypatch.setenv("FCAST_PROCESS_MODEL", "fork")
    yield adapter, log
    engine.dispose()


def _lines(log, word: str) -> list[str]:
    if not log.exists():
        return []
    return [x for x in log.read_text(encoding="utf-8").splitlines() if x.split()[0] == word]


@pytest.mark.skipif(sys.platform == "win32", reason="counts the fits of the fork process model")
def test_cells_on_one_fitted_setup_fit_once(counting_adapter):
    from fcast_assets.compat.runner import run_groups

    adapter, log = counting_adapter
    groups = adapter.plan([COUNTING], {}, {"predict"})  # fit → predict cells: level, h, X_df (exog data)
    cells = [c for g in groups for c in g.cells]
    keys = {adapter.fit_key(g.setup, c.spec) for g in groups for c in g.cells}
    assert len(cells) >= 10 and len(keys) == 2  # the plain data, and the frame with the exogenous column

    def run(groups_):
        log.unlink(missing_ok=True)
        out: dict = {}
        run_groups(adapter, groups_, workers=2, on_result=lambda g, c, r: out.__setitem__(
            (c.param, c.value_label), (r["status"], r.get("exception_type"))))
        return out, _lines(log, "fit"), _lines(log, "predict")

    shared, fits, predicts = run(groups)
    assert len(fits) == len(keys) * N_IDS  # one fit (of each series) per shared setup, by the group process
    assert len({f.split()[1] for f in fits}) == 1
    assert predicts and all(p.split()[1] == "1" for p in predicts)  # each cell predicted on its own copy
    assert shared[("level", "None")] == ("ok", None) and shared[("h", "0")] == ("error", "ValueError")
    # the look-alike: each cell alone in its group (as a re-run is) fits for itself — and records the same
    alone, fits_alone, _ = run([type(g)(f"{g.key}:{i}", g.model, g.setup, [c]) for g in groups
                                for i, c in enumerate(g.cells)])
    assert len(fits_alone) == len(cells) * N_IDS
    assert alone == shared


def test_a_cell_cannot_change_the_shared_fit(counting_adapter):
    adapter, log = counting_adapter
    (group,) = adapter.plan([COUNTING], {}, {"predict"})
    state = adapter.setup(group)  # in this process: no fork between the cells, only the copy in run
    assert len(_lines(log, "fit")) == 2 * N_IDS and len(state["fitted"]) == 2
    plain = [c for c in group.cells if c.param == "h" and c.value in (1, 2, 4)]
    assert len(plain) == 3
    for cell in plain + plain:
        assert adapter.run(state, cell) == []  # a right forecast (h rows per series)
    assert len(_lines(log, "fit")) == 2 * N_IDS  # no cell fitted again
    assert {p.split()[1] for p in _lines(log, "predict")} == {"1"}  # no cell saw another's predict
    # a cell whose value goes into the fit has a key of its own: it fits itself, on the same state
    (fit_group,) = adapter.plan([COUNTING], {}, {"fit"})
    cell = fit_group.cells[0]
    assert adapter.fit_key(fit_group.setup, cell.spec) not in state["fitted"]
    adapter.run(state, cell)
    assert len(_lines(log, "fit")) == 3 * N_IDS


def test_split_groups_keep_every_cell_once(counting_adapter):
    adapter, _ = counting_adapter
    whole = adapter._setup(COUNTING, None)
    groups = adapter.plan([COUNTING], {})
    cells = [(c.method, c.param, c.value_label) for g in groups for c in g.cells]
    assert len(groups) > 2 and all(g.setup == whole for g in groups)
    assert sum(len(g.cells) > 24 for g in groups) <= 1 and len(set(cells)) == len(cells)
    unsplit = [(c.method, c.param, c.value_label) for e in adapter.spec["cells"]
               for c in adapter._cells_for(COUNTING, e)]
    assert sorted(cells) == sorted(unsplit)
