"""Auto model steps: search spaces as data, trainer settings through the config, real fits on tiny data."""

from __future__ import annotations

import logging

import pytest

from fcast_assets.compat.neuralforecast_adapter import QUIET_TRAINER, decode
from fcast_assets.plans import auto
from fcast_assets.plans.data import synthetic

H = 2
MINI = {"max_steps": 1, "val_check_steps": 1}
SPACE = {
    "input_size": {"choice": [4, 8]},
    "hidden_size": {"choice": [8, 16]},
    "num_layers": {"randint": [1, 3]},
    "learning_rate": {"loguniform": [1e-4, 1e-2]},
    "scaler_type": {"choice": [None, "robust"]},
    "max_steps": 1,
    "val_check_steps": 1,
}


@pytest.fixture(scope="module")
def data():
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for name in ("pytorch_lightning", "lightning_fabric", "lightning", "lightning.pytorch"):
        logging.getLogger(name).setLevel(logging.ERROR)
    return synthetic()


def _dec(data):
    return lambda v: decode(v, data)


def _fit_predict(model, df):
    from neuralforecast import NeuralForecast

    nf = NeuralForecast(models=[model], freq="D")
    nf.fit(df)
    out = nf.predict()
    return nf, out


def _check_forecast(out, df, alias):
    assert out.groupby("unique_id").size().to_dict() == {u: H for u in df["unique_id"].unique()}
    assert not out[alias].isna().any()


# ------------------------------------------------------------------------------------------------ fits (optuna)
def test_optuna_space_fits_and_predicts(data):
    params = {"h": H, "backend": "optuna", "num_samples": 1, "config": {"__space__": SPACE}}
    kw = auto.build_auto_kwargs("neuralforecast.auto.AutoMLP", params, _dec(data), QUIET_TRAINER)
    assert callable(kw["config"]) and kw["num_samples"] == 1
    nf, out = _fit_predict(auto.auto_class("neuralforecast.auto.AutoMLP")(**kw), data["df"])
    _check_forecast(out, data["df"], "AutoMLP")
    fitted = nf.models[0]
    best = fitted.results.best_trial
    assert set(best.params) == {"input_size", "hidden_size", "num_layers", "learning_rate", "scaler_type"}
    assert best.params["input_size"] in (4, 8) and best.params["num_layers"] in (1, 2)  # randint hi excluded
    for k, v in QUIET_TRAINER.items():  # the quiet trainer reached the tuned model's trainer
        assert fitted.model.trainer_kwargs[k] == v
    assert fitted.model.trainer_kwargs["max_steps"] == 1


def test_optuna_default_space_with_forced_miniature_run(data):
    params = {"h": H, "backend": "optuna", "num_samples": 5, "config": None}
    kw = auto.build_auto_kwargs("neuralforecast.auto.AutoMLP", params, _dec(data), QUIET_TRAINER,
                                forced=MINI, num_samples=1)
    assert kw["num_samples"] == 1  # the miniature run overrides the plan's value
    nf, out = _fit_predict(auto.auto_class("AutoMLP")(**kw), data["df"])
    _check_forecast(out, data["df"], "AutoMLP")
    tk = nf.models[0].model.trainer_kwargs
    assert tk["max_steps"] == 1 and tk["logger"] is False  # forced over the class default (500 / 1000 steps)


def _trial_params(kw, df):
    from neuralforecast import NeuralForecast

    nf = NeuralForecast(models=[auto.auto_class("AutoMLP")(**kw)], freq="D")
    nf.fit(df)
    return [t.params for t in nf.models[0].results.trials]


def test_miniature_run_samples_the_real_runs_first_config(data):
    """No search_alg with optuna: a seeded sampler, so the miniature run (one sample) tries the config the real run
    samples first, and the same plan samples the same configs on every run."""
    import optuna

    params = {"h": H, "backend": "optuna", "num_samples": 3, "config": {"__space__": SPACE}}

    def build(p, n=None):
        return auto.build_auto_kwargs("neuralforecast.auto.AutoMLP", p, _dec(data), QUIET_TRAINER, forced=MINI,
                                      num_samples=n)

    assert isinstance(build(params)["search_alg"], optuna.samplers.TPESampler)
    df = data["df"]
    real, again, mini = (_trial_params(build(params), df), _trial_params(build(params), df),
                         _trial_params(build(params, 1), df))
    assert len(real) == 3 and len(mini) == 1
    assert mini[0] == real[0] and again == real
    assert len({tuple(sorted(p.items())) for p in real}) > 1  # the space is sampled, not one config repeated
    # look-alikes the default must not touch: the step's own sampler is kept; ray gets none from us
    own = {**params, "search_alg": {"__obj__": "optuna.samplers.RandomSampler", "kwargs": {"seed": 7}}}
    assert isinstance(build(own)["search_alg"], optuna.samplers.RandomSampler)
    ray = auto.build_auto_kwargs("neuralforecast.auto.AutoMLP", {"h": H, "backend": "ray", "config": None},
                                 _dec(data), QUIET_TRAINER)
    assert "search_alg" not in ray


def test_plan_that_used_to_fail_now_runs(data):
    """The runner used to pass the quiet trainer kwargs to the Auto constructor: TypeError."""
    params = {"h": H, "backend": "optuna", "num_samples": 1, "config": {"__space__": SPACE},
              "loss": {"__obj__": "neuralforecast.losses.pytorch.MSE"}}
    cls = auto.auto_class("neuralforecast.auto.AutoMLP")
    old = {**QUIET_TRAINER, **{k: decode(v, data) for k, v in params.items() if k != "config"},
           "config": auto.build_config(params["config"], "optuna", cls, h=H)}
    with pytest.raises(TypeError, match="unexpected keyword argument"):
        cls(**old)
    kw = auto.build_auto_kwargs("neuralforecast.auto.AutoMLP", params, _dec(data), QUIET_TRAINER)
    assert not set(QUIET_TRAINER) & set(kw)
    assert type(kw["loss"]).__name__ == "MSE"  # decoded; config is not
    _, out = _fit_predict(cls(**kw), data["df"])
    _check_forecast(out, data["df"], "AutoMLP")


def test_multivariate_auto_gets_n_series_in_its_config(data):
    params = {"h": H, "n_series": 2, "backend": "optuna", "num_samples": 1, "config": None}
    kw = auto.build_auto_kwargs("neuralforecast.auto.AutoMLPMultivariate", params, _dec(data), QUIET_TRAINER,
                                forced={**MINI, "input_size": 4, "batch_size": 2})
    _, out = _fit_predict(auto.auto_class("neuralforecast.auto.AutoMLPMultivariate")(**kw), data["df"])
    _check_forecast(out, data["df"], "AutoMLPMultivariate")


# ------------------------------------------------------------------------------------------------ config building
def test_optuna_config_samples_the_described_distributions():
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    space = {"a": {"choice": [1, 2]}, "b": {"uniform": [0.0, 1.0]}, "c": {"loguniform": [1e-3, 1e-1]},
             "d": {"randint": [2, 6]}, "e": {"quniform": [0.0, 1.0, 0.25]}, "f": 7, "g": {"const": {"x": 1}}}
    fn = auto.build_config({"__space__": space}, "optuna", auto.auto_class("AutoMLP"), h=H,
                           forced={"max_steps": 1, "f": 8})
    study = optuna.create_study()
    trial = study.ask()
    cfg = fn(trial)
    assert cfg["f"] == 8 and cfg["g"] == {"x": 1} and cfg["max_steps"] == 1
    dist = trial.distributions
    assert dist["a"] == CategoricalDistribution([1, 2])
    assert dist["b"] == FloatDistribution(0.0, 1.0)
    assert dist["c"] == FloatDistribution(1e-3, 1e-1, log=True)
    assert dist["d"] == IntDistribution(2, 5)
    assert dist["e"] == FloatDistribution(0.0, 1.0, step=0.25)


def test_ray_config_is_a_dict_of_tune_distributions():
    from ray.tune.search import sample

    space = {"a": {"choice": [1, 2]}, "b": {"uniform": [0.0, 1.0]}, "c": {"loguniform": [1e-3, 1e-1]},
             "d": {"randint": [2, 6]}, "e": {"quniform": [0.0, 1.0, 0.25]}, "f": 7}
    cfg = auto.build_config({"__space__": space}, "ray", auto.auto_class("AutoMLP"), h=H,
                            forced={**QUIET_TRAINER, **MINI})
    assert isinstance(cfg, dict)
    assert isinstance(cfg["a"], sample.Categorical) and cfg["a"].categories == [1, 2]
    assert isinstance(cfg["b"], sample.Float) and (cfg["b"].lower, cfg["b"].upper) == (0.0, 1.0)
    assert isinstance(cfg["c"].get_sampler(), sample.Float._LogUniform)
    assert isinstance(cfg["d"], sample.Integer) and (cfg["d"].lower, cfg["d"].upper) == (2, 6)
    assert isinstance(cfg["e"].get_sampler(), sample.Quantized) and cfg["e"].get_sampler().q == 0.25
    assert cfg["f"] == 7 and cfg["max_steps"] == 1 and cfg["logger"] is False

    default = auto.build_config(None, "ray", auto.auto_class("AutoMLP"), h=H, forced=MINI)
    assert default["max_steps"] == 1 and isinstance(default["hidden_size"], sample.Categorical)
    kw = auto.build_auto_kwargs("neuralforecast.auto.AutoNHITS", {"h": H, "backend": "ray", "config": None},
                                lambda v: v, QUIET_TRAINER, forced=MINI)
    assert kw["config"]["enable_progress_bar"] is False and not set(QUIET_TRAINER) & set(kw)
    auto.auto_class("AutoNHITS")(**kw)  # the constructor accepts it (no fit)


def test_ray_fit(data, tmp_path, monkeypatch):
    """One real ray trial (starts a local ray instance: about 10-20 s here). ray.tune.RunConfig is not in the closed
    table of objects (its storage_path would let a plan write anywhere): ray keeps its results under $HOME."""
    import ray

    monkeypatch.setenv("HOME", str(tmp_path))
    params = {
        "h": H, "backend": "ray", "num_samples": 1,
        "ray_options": {"__obj__": "neuralforecast.auto.RayOptions", "kwargs": {"cpus": 1}},
        "config": {"__space__": {k: v for k, v in SPACE.items() if k not in MINI}},
    }
    kw = auto.build_auto_kwargs("neuralforecast.auto.AutoMLP", params, _dec(data), QUIET_TRAINER, forced=MINI)
    try:
        nf, out = _fit_predict(auto.auto_class("AutoMLP")(**kw), data["df"])
    finally:
        if ray.is_initialized():
            ray.shutdown()
    _check_forecast(out, data["df"], "AutoMLP")
    best = nf.models[0].results.get_best_result().config
    assert best["max_steps"] == 1 and best["enable_progress_bar"] is False
    assert nf.models[0].model.trainer_kwargs["logger"] is False


# ------------------------------------------------------------------------------------------------ validation
@pytest.mark.parametrize("space, fragment", [
    ({"x": {"normal": [0, 1]}}, "unknown distribution kind 'normal'"),
    ({"x": {"uniform": [0, 1, 2]}}, "uniform takes [lo, hi] (2 numbers), got 3 values"),
    ({"x": {"quniform": [0, 1]}}, "quniform takes [lo, hi, q] (3 numbers), got 2 values"),
    ({"x": {"loguniform": 0.1}}, "loguniform takes [lo, hi] (2 numbers), got float"),
    ({"x": {"uniform": [1, 0]}}, "uniform needs lo <= hi, got lo=1 hi=0"),
    ({"x": {"randint": [3, 3]}}, "randint [lo, hi] needs lo < hi"),
    ({"x": {"randint": [1.5, 3]}}, "randint bounds must be integers"),
    ({"x": {"uniform": ["a", 1]}}, "bounds must be finite numbers"),
    ({"x": {"uniform": [True, 1]}}, "bounds must be finite numbers"),
    ({"x": {"loguniform": [0, 1]}}, "loguniform needs lo > 0"),
    ({"x": {"quniform": [0, 1, 0]}}, "quniform needs a step q > 0"),
    ({"x": {"choice": []}}, "choice has an empty list of values"),
    ({"x": {"choice": 3}}, "choice takes a list of values"),
    ({"x": {"choice": [1], "uniform": [0, 1]}}, "exactly one key"),
    ({"x": {}}, "exactly one key"),
    ([1, 2], "must be a mapping"),
])
def test_space_errors_catch_each_malformed_space(space, fragment):
    errors = auto.space_errors(space)
    assert len(errors) == 1 and fragment in errors[0], errors
    if isinstance(space, dict):
        with pytest.raises(ValueError, match="invalid search space"):
            auto.build_config({"__space__": space}, "optuna", auto.auto_class("AutoMLP"), h=H)


def test_valid_look_alike_space_passes():
    space = {"x": {"uniform": [0, 0]}, "y": {"randint": [1, 2]}, "z": {"choice": [None]},
             "w": {"loguniform": [1e-5, 1]}, "q": {"quniform": [0, 10, 2.5]}, "lst": [1, 2], "s": "normal",
             "c": {"const": {"normal": [0, 1]}}, "n": None}
    assert auto.space_errors(space) == []
    assert auto.config_errors({"__space__": space}) == [] and auto.config_errors(None) == []
    assert auto.config_errors({"__space__": {}, "x": 1}) and auto.config_errors([1, 2])
    assert auto.config_errors({"hidden_size": 8}) == []  # a plain mapping goes to the library as it is


# ------------------------------------------------------------------------------------------------ names
def test_is_auto_and_unknown_names_refused(data):
    assert auto.is_auto("neuralforecast.auto.AutoMLP") and auto.is_auto("neuralforecast.auto.AutoNHITS")
    for name in ("neuralforecast.models.MLP", "neuralforecast.auto.Autoformer", "neuralforecast.auto.AutoNope",
                 "os.system", "neuralforecast.auto.BaseAuto"):
        assert not auto.is_auto(name)
    for name in ("neuralforecast.auto.AutoNope", "neuralforecast.auto.Autoformer", "os.AutoMLP",
                 "neuralforecast.models.AutoMLP", "neuralforecast.auto.MLP"):
        with pytest.raises(ValueError, match="is not an Auto class"):
            auto.build_auto_kwargs(name, {"h": H}, _dec(data), QUIET_TRAINER)
    with pytest.raises(ValueError, match="AutoHINT"):
        auto.build_auto_kwargs("neuralforecast.auto.AutoHINT", {"h": H}, _dec(data), QUIET_TRAINER)
    with pytest.raises(ValueError, match=r"takes no parameter\(s\) \['max_steps'\]"):
        auto.build_auto_kwargs("neuralforecast.auto.AutoMLP", {"h": H, "max_steps": 1}, _dec(data), QUIET_TRAINER)
    # an unknown backend and h inside the space are left to the library, which rejects them with its own message
    kw = auto.build_auto_kwargs("neuralforecast.auto.AutoMLP", {"h": H, "backend": "hyperopt"}, _dec(data), {})
    with pytest.raises(ValueError, match="Unknown backend hyperopt"):
        auto.auto_class("AutoMLP")(**kw)
    kw = auto.build_auto_kwargs("neuralforecast.auto.AutoMLP", {"h": H, "backend": "optuna", "config": {
        "__space__": {"h": 3, "input_size": 4}}}, _dec(data), {})
    with pytest.raises(Exception, match="Please use `h` init argument"):
        auto.auto_class("AutoMLP")(**kw)
