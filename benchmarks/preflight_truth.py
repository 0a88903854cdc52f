"""Ground truth of the preflight plans: run every plan of plans/preflight.yaml directly on neuralforecast.

    .venv/bin/python benchmarks/preflight_truth.py [--plans plans/preflight.yaml] [--out docs/preflight_truth.md]
                                                   [--only NAME ...] [--class CODE ...] [--no-write]

A small executor of its own (it does not import the project's runner or validator): model steps build the models
(quiet CPU trainer), ``NeuralForecast.__init__`` builds the object, ``fit`` / ``cross_validation`` get the data set's
``df`` when none is given, ``predict`` / ``predict_insample`` / ``save`` / ``load`` are called as written (relative
paths live in a temporary folder per plan). The first exception ends a plan.

Per plan the observed outcome is compared with ``expect``:
- ``valid``: every step runs (and the plan's look-alike check, where one is registered, holds);
- ``stop``: a step raises an exception of class ``exception`` whose message contains ``reason``;
- ``flag``: every step runs and the plan's registered check (``CHECKS``) proves the wrongness by execution.

Writes a table (plan, class, expect, observed, seconds, evidence) to docs/preflight_truth.md and exits 1 when an
outcome contradicts its plan.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import logging
import os
import re
import signal
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import yaml  # noqa: E402

QUIET = {"enable_progress_bar": False, "logger": False, "enable_model_summary": False,
         "enable_checkpointing": False, "accelerator": "cpu", "devices": 1}
OBJ_ALLOWED = (re.compile(r"^neuralforecast\.losses\.pytorch\.[A-Za-z_][A-Za-z0-9_]*$"),
               re.compile(r"^neuralforecast\.utils\.PredictionIntervals$"),
               re.compile(r"^optuna\.samplers\.(RandomSampler|TPESampler)$"))
CLASSES = ["exog_capability", "futr_df_missing", "futr_df_short", "futr_df_nulls", "freq_spacing",
           "level_point_loss", "level_with_quantiles", "loss_valid_loss", "early_stopping", "series_too_short",
           "cv_windows", "insample", "save_load", "n_series", "auto", "predict_h", "max_epochs"]
PLAN_TIMEOUT_S = 90


class PlanTimeout(Exception):
    pass


def _quiet() -> None:
    for name in ("pytorch_lightning", "lightning_fabric", "lightning", "lightning.pytorch", "neuralforecast",
                 "optuna", "ray"):
        logging.getLogger(name).setLevel(logging.ERROR)
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    try:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.ERROR)
    except ImportError:  # pragma: no cover
        pass


# ------------------------------------------------------------------------------------------------ values
def _space_entry(key: str, spec: Any, backend: str, trial: Any = None) -> Any:
    """One entry of a ``__space__``: a constant or one of choice / uniform / loguniform / randint / quniform."""
    if not (isinstance(spec, dict) and len(spec) == 1
            and next(iter(spec)) in ("choice", "uniform", "loguniform", "randint", "quniform")):
        return spec
    kind, args = next(iter(spec.items()))
    if backend == "optuna":
        if kind == "choice":
            return trial.suggest_categorical(key, args)
        if kind == "uniform":
            return trial.suggest_float(key, args[0], args[1])
        if kind == "loguniform":
            return trial.suggest_float(key, args[0], args[1], log=True)
        if kind == "randint":  # ray's randint excludes the upper bound
            return trial.suggest_int(key, args[0], args[1] - 1)
        return trial.suggest_float(key, args[0], args[1], step=args[2])
    from ray import tune

    return {"choice": lambda a: tune.choice(a), "uniform": lambda a: tune.uniform(*a),
            "loguniform": lambda a: tune.loguniform(*a), "randint": lambda a: tune.randint(*a),
            "quniform": lambda a: tune.quniform(*a)}[kind](args)


def build_space(space: dict[str, Any], backend: str) -> Any:
    """A ``__space__`` as the library wants it: an optuna callable or a ray tune dict; the quiet CPU trainer
    settings are added as constants (they are not part of the plan's intent)."""
    space = {**QUIET, **space}
    if backend == "optuna":
        return lambda trial: {k: _space_entry(k, v, "optuna", trial) for k, v in space.items()}
    return {k: _space_entry(k, v, backend) for k, v in space.items()}


def decode(value: Any, data: dict[str, Any], backend: str = "ray") -> Any:
    if isinstance(value, dict):
        if "__data__" in value:
            return data[value["__data__"]]
        if "__obj__" in value:
            qualname = value["__obj__"]
            if not any(p.match(qualname) for p in OBJ_ALLOWED):
                raise RuntimeError(f"executor: object {qualname!r} is not allowed in a plan")
            mod, _, attr = qualname.rpartition(".")
            cls = getattr(importlib.import_module(mod), attr)
            return cls(**{k: decode(v, data, backend) for k, v in (value.get("kwargs") or {}).items()})
        if "__space__" in value:
            return build_space(value["__space__"], backend)
        return {k: decode(v, data, backend) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v, data, backend) for v in value]
    return value


# ------------------------------------------------------------------------------------------------ executor
class Ctx:
    """What a plan's execution leaves behind, for the checks."""

    def __init__(self, plan: dict[str, Any], data: dict[str, Any], work: Path):
        self.plan, self.data, self.work = plan, data, work
        self.models: list[Any] = []
        self.nf: Any = None
        self.outputs: list[tuple[str, Any]] = []  # (method short name, returned frame)
        self.warnings: list[str] = []
        self.params: list[dict[str, Any]] = []  # decoded params per step

    def last(self, method: str) -> pd.DataFrame:
        return [o for m, o in self.outputs if m == method][-1]


def run_step(ctx: Ctx, step: dict[str, Any]) -> None:
    from neuralforecast import NeuralForecast

    if "model" in step:
        name = step["model"]
        raw = step.get("params") or {}
        mod = importlib.import_module("neuralforecast.auto" if name.startswith("Auto") else "neuralforecast.models")
        cls = getattr(mod, name)
        backend = raw.get("backend", "ray")
        kw = {k: decode(v, ctx.data, backend) for k, v in raw.items()}
        if not name.startswith("Auto"):
            kw = {**QUIET, **kw}
        ctx.params.append(kw)
        ctx.models.append(cls(**kw))
        return
    method = step["method"].rpartition(".")[2]
    kw = {k: decode(v, ctx.data) for k, v in (step.get("params") or {}).items()}
    ctx.params.append(kw)
    if method == "__init__":
        ctx.nf = NeuralForecast(models=ctx.models, **kw)
        return
    if method in ("save", "load") and "path" in kw and not os.path.isabs(kw["path"]):
        kw["path"] = str(ctx.work / kw["path"])
    if method == "load":
        ctx.nf = NeuralForecast.load(**kw)
        ctx.models = list(ctx.nf.models)
        return
    if ctx.nf is None:
        raise RuntimeError("executor: no NeuralForecast object before " + method)
    if method in ("fit", "cross_validation"):
        kw.setdefault("df", ctx.data["df"])
    out = getattr(ctx.nf, method)(**kw)
    ctx.outputs.append((method, out))


def run_plan(plan: dict[str, Any]) -> tuple[Ctx, BaseException | None, float]:
    from fcast_assets.plans.data import load

    t0 = time.perf_counter()
    err: BaseException | None = None
    with tempfile.TemporaryDirectory(prefix="preflight_") as tmp:
        ctx = Ctx(plan, {}, Path(tmp))
        cwd = os.getcwd()
        os.chdir(tmp)  # anything the library writes by itself (lightning_logs, ...) stays in the temp dir
        signal.signal(signal.SIGALRM, _on_alarm)
        signal.alarm(PLAN_TIMEOUT_S)
        try:
            ctx.data = load(plan.get("data") or "synthetic")
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                sink = io.StringIO()
                with contextlib.redirect_stdout(sink):
                    for step in plan["steps"]:
                        run_step(ctx, step)
            ctx.warnings = sorted({f"{w.category.__name__}: {str(w.message).splitlines()[0]}" for w in caught
                                   if not _noise(w)})
        except PlanTimeout as e:
            err = e
        except Exception as e:  # noqa: BLE001 - the library's own exception is the observation
            err = e
        finally:
            signal.alarm(0)
            os.chdir(cwd)
        secs = time.perf_counter() - t0
        if err is None and plan["name"] in CHECKS:  # checks may call the library again (temp dir still alive)
            os.chdir(tmp)
            try:
                with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
                    warnings.simplefilter("ignore")
                    ctx.check = CHECKS[plan["name"]](ctx)
            except Exception as e:  # noqa: BLE001
                ctx.check = (False, f"check raised {type(e).__name__}: {first_line(e)}")
            finally:
                os.chdir(cwd)
    return ctx, err, secs


def _on_alarm(signum: int, frame: Any) -> None:
    raise PlanTimeout(f"plan ran past {PLAN_TIMEOUT_S}s")


def _noise(w: warnings.WarningMessage) -> bool:
    text = str(w.message)
    return any(s in text for s in ("does not have many workers", "GPU available", "TPU available", "HPU available",
                                   "Seed set", "sync_dist", "torch.utils._pytree", "Checkpoint directory",
                                   "LightningDeprecationWarning", "The number of training batches",
                                   "srun", "tensorboardX", "Trying to infer the `batch_size`",
                                   "You defined a `validation_step` but have no `val_dataloader`",
                                   "pkg_resources", "`isinstance(treespec, LeafSpec)`",
                                   # on every plan (max_steps 1 < the default val_check_steps 100) or torch-internal
                                   "val_check_steps is greater than max_steps", "Initializing zero-element tensors",
                                   "not supported with oneDNN"))


def first_line(e: BaseException) -> str:
    s = str(e).strip()
    return s.splitlines()[0] if s else ""


# ------------------------------------------------------------------------------------------------ checks
# A check returns (holds, evidence). For `flag` plans it proves the claimed wrongness; for some `valid` look-alikes
# it proves the look-alike does what the flagged plan does not.
def _forecast_cols(out: pd.DataFrame) -> list[str]:
    return [c for c in out.columns if c not in ("unique_id", "ds", "cutoff", "y")]


def _ts(x: Any) -> str:
    return str(x).removesuffix(" 00:00:00")


def _grid_breach(out: pd.DataFrame, last: dict[Any, Any], step: Any, h: int) -> tuple[bool, str]:
    """True when the forecast ds are not last + k * step (k = 1..h) per id, the data's own grid."""
    bad, shown = 0, ""
    for uid, g in out.groupby("unique_id"):
        got = list(g["ds"])
        if isinstance(step, int):
            want = [last[uid] + k * step for k in range(1, h + 1)]
        else:
            want = list(pd.date_range(last[uid], periods=h + 1, freq=step)[1:])
        if got != want:
            bad += 1
            shown = shown or f"{uid}: got {[_ts(x) for x in got]}, data grid {[_ts(x) for x in want]}"
    return bad > 0, (f"{bad} id(s) off the data's {step} grid; " + shown) if bad else "on the data's grid"


def off_grid(ctx: Ctx) -> tuple[bool, str]:
    out = ctx.last("predict")
    last = ctx.data["df"].groupby("unique_id")["ds"].max().to_dict()
    h = out.groupby("unique_id").size().iloc[0]
    return _grid_breach(out, last, ctx.data["freq"], int(h))


def on_grid(ctx: Ctx) -> tuple[bool, str]:
    breach, ev = off_grid(ctx)
    return not breach, ev


def _same(a: pd.DataFrame, b: pd.DataFrame) -> float:
    cols = _forecast_cols(a)
    return float(np.abs(a[cols].to_numpy(dtype=float) - b[cols].to_numpy(dtype=float)).max())


def futr_ignored(ctx: Ctx) -> tuple[bool, str]:
    """Predict again with random future values of fut_x: identical forecasts prove the future values are unused."""
    futr = ctx.params[-1]["futr_df"]
    noisy = futr.assign(fut_x=np.random.default_rng(7).normal(0, 3, len(futr)))
    diff = _same(ctx.last("predict"), ctx.nf.predict(futr_df=noisy))
    return diff == 0.0, f"max |forecast(futr_df) - forecast(random fut_x)| = {diff:.3g}"


def futr_used(ctx: Ctx) -> tuple[bool, str]:
    ignored, ev = futr_ignored(ctx)
    return not ignored, ev


def stat_ignored(ctx: Ctx) -> tuple[bool, str]:
    """Predict again with other static values: identical forecasts prove stat_x is unused."""
    static = ctx.data["static_df"]
    other = static.assign(stat_x=static["stat_x"].to_numpy()[::-1] * 50 - 20)
    diff = _same(ctx.last("predict"), ctx.nf.predict(df=ctx.data["df"], static_df=other))
    return diff == 0.0, f"max |forecast(static_df) - forecast(other stat_x)| = {diff:.3g}"


def hist_ignored(ctx: Ctx) -> tuple[bool, str]:
    """Predict again from a history whose hist_x is random noise: identical forecasts prove hist_x is unused."""
    df = ctx.data["df"]
    noisy = df.assign(hist_x=np.random.default_rng(8).normal(0, 3, len(df)))
    diff = _same(ctx.last("predict"), ctx.nf.predict(df=noisy))
    return diff == 0.0, f"max |forecast(df) - forecast(random hist_x)| = {diff:.3g}"


def no_interval_cols(method: str) -> Callable[[Ctx], tuple[bool, str]]:
    def check(ctx: Ctx) -> tuple[bool, str]:
        out = ctx.last(method)
        asked = ctx.params[[i for i, s in enumerate(ctx.plan["steps"]) if s.get("method", "").endswith(method)][-1]]
        level = asked.get("level") or []
        want = [f"-lo-{lv}" for lv in level] + [f"-hi-{lv}" for lv in level]
        have = [c for c in out.columns if any(w in c for w in want)]
        return not have, f"level={level} asked; forecast columns {_forecast_cols(out)}"
    return check


def has_interval_cols(method: str) -> Callable[[Ctx], tuple[bool, str]]:
    def check(ctx: Ctx) -> tuple[bool, str]:
        missing, ev = no_interval_cols(method)(ctx)
        return not missing, ev
    return check


def valid_loss_replaced(ctx: Ctx) -> tuple[bool, str]:
    asked = next(p["valid_loss"] for p in ctx.params if "valid_loss" in p)
    got = ctx.nf.models[0].valid_loss
    asked_d = getattr(asked, "distribution", None)
    got_d = getattr(got, "distribution", None)
    replaced = got is not asked
    return replaced, (f"valid_loss asked {type(asked).__name__}({asked_d}), model validates with "
                      f"{type(got).__name__}({got_d}) (the training loss object: {got is ctx.nf.models[0].loss})")


def _rebuild(ctx: Ctx, **override: Any) -> Any:
    """A fresh copy of the plan's first model (same kwargs, same seed), with some kwargs overridden."""
    return type(ctx.nf.models[0])(**{**ctx.params[0], **override})


def _fit_params(ctx: Ctx) -> dict[str, Any]:
    i = next(i for i, s in enumerate(ctx.plan["steps"]) if s.get("method", "").endswith(".fit"))
    return {"df": ctx.data["df"], **ctx.params[i]}


def untrained(ctx: Ctx) -> tuple[bool, str]:
    """No optimisation step ran: the fitted weights equal those of a freshly built copy (same seed)."""
    fitted, fresh = ctx.nf.models[0].state_dict(), _rebuild(ctx).state_dict()
    same = all(torch_equal(fitted[k], fresh[k]) for k in fresh)
    return same, (f"fitted weights {'identical to' if same else 'differ from'} a never-fitted copy "
                  f"({len(fresh)} tensors); max_steps={ctx.nf.models[0].max_steps}")


def trained(ctx: Ctx) -> tuple[bool, str]:
    untouched, ev = untrained(ctx)
    return not untouched, ev


def torch_equal(a: Any, b: Any) -> bool:
    import torch

    return bool(torch.equal(a, b))


def n_series_harmless(ctx: Ctx) -> tuple[bool, str]:
    """The wrong n_series changes nothing: the same model with n_series = number of ids forecasts identically."""
    from neuralforecast import NeuralForecast

    n_ids = ctx.data["df"]["unique_id"].nunique()
    nf = NeuralForecast(models=[_rebuild(ctx, n_series=n_ids)], freq=ctx.nf.freq)
    nf.fit(df=ctx.data["df"])
    diff = _same(ctx.last("predict"), nf.predict())
    return diff == 0.0, (f"n_series={ctx.nf.models[0].n_series} on {n_ids} ids; max |forecast - forecast with "
                         f"n_series={n_ids}| = {diff:.3g}")


def mqloss_valid_point(ctx: Ctx) -> tuple[bool, str]:
    """MQLoss validation of a one-output (point) model scores the same point forecast as every quantile: with a
    symmetric quantile set, its value is exactly len(quantiles) / 2 times the MAE of that forecast (no quantile
    information at all)."""
    from neuralforecast import NeuralForecast
    from neuralforecast.losses.pytorch import MAE

    model = ctx.nf.models[0]
    got = float(model.metrics["ptl/val_loss"])
    nf = NeuralForecast(models=[_rebuild(ctx, valid_loss=MAE())], freq=ctx.nf.freq)
    nf.fit(**_fit_params(ctx))
    mae = float(nf.models[0].metrics["ptl/val_loss"])
    k = len(model.valid_loss.quantiles) / 2
    out = model.loss.outputsize_multiplier
    return out == 1 and abs(got - k * mae) < 1e-4 * max(1.0, mae), (
        f"model outputs {out} column(s); MQLoss val_loss {got:.5f} = {k:g} x MAE val_loss {mae:.5f} "
        f"(ratio {got / mae:.5f})")


def loss_level_ignored(ctx: Ctx) -> tuple[bool, str]:
    """The loss was given level and quantiles: its outputs follow the quantiles, the level is silently dropped."""
    loss = ctx.nf.models[0].loss
    raw = ctx.plan["steps"][0]["params"]["loss"]["kwargs"]
    want = [f"-lo-{lv}" for lv in raw["level"]]
    cols = _forecast_cols(ctx.last("predict"))
    dropped = not any(c.endswith(w) for c in cols for w in want)
    return dropped, (f"loss level={raw['level']} quantiles={raw['quantiles']}; loss quantiles "
                     f"{[round(float(q), 3) for q in loss.quantiles]}; forecast columns {cols}")


def insample_gaps(ctx: Ctx) -> tuple[bool, str]:
    """Timestamps of the training df that get no insample forecast."""
    out = ctx.last("predict_insample")
    df = ctx.data["df"]
    have = set(zip(out["unique_id"], out["ds"]))
    missing = [(u, d) for u, d in zip(df["unique_id"], df["ds"]) if (u, d) not in have]
    return bool(missing), (f"{len(missing)} of {len(df)} training timestamps have no insample forecast "
                           f"(output {len(out)} rows); e.g. {[_ts(d) for _, d in missing[:3]]}")


def insample_covered(ctx: Ctx) -> tuple[bool, str]:
    gaps, ev = insample_gaps(ctx)
    out = ctx.last("predict_insample")
    nan = int(out[_forecast_cols(out)].isna().sum().sum())
    return not gaps and nan == 0, ev + f"; {nan} NaN forecasts"


def forecast_complete(ctx: Ctx) -> tuple[bool, str]:
    """predict returned h rows per id (h as asked), on the data's grid, without NaN."""
    out = ctx.last("predict")
    i = [i for i, s in enumerate(ctx.plan["steps"]) if s.get("method", "").endswith(".predict")][-1]
    h = ctx.params[i].get("h") or ctx.nf.h
    last = ctx.data["df"].groupby("unique_id")["ds"].max().to_dict()
    breach, ev = _grid_breach(out, last, ctx.data["freq"], int(h))
    nan = int(out[_forecast_cols(out)].isna().sum().sum())
    rows = out.groupby("unique_id").size().to_dict()
    return not breach and nan == 0 and set(rows.values()) == {h}, f"h={h}: rows per id {rows}, {nan} NaN, {ev}"


def y_in_futr_df_unused(ctx: Ctx) -> tuple[bool, str]:
    """The y carried by futr_df changes nothing (no leak): forecasts from futr_df without y, and with y x 100,
    are identical."""
    futr = ctx.params[-1]["futr_df"]
    d1 = _same(ctx.last("predict"), ctx.nf.predict(futr_df=futr.drop(columns="y")))
    d2 = _same(ctx.last("predict"), ctx.nf.predict(futr_df=futr.assign(y=futr["y"] * 100)))
    return d1 == 0.0 and d2 == 0.0, (f"max |forecast(futr_df with y) - forecast(without y)| = {d1:.3g}, "
                                     f"- forecast(y x 100)| = {d2:.3g}")


def cv_windows(n: int) -> Callable[[Ctx], tuple[bool, str]]:
    def check(ctx: Ctx) -> tuple[bool, str]:
        out = ctx.last("cross_validation")
        got = out["cutoff"].nunique()
        return got == n, f"{got} cutoff(s) in the cross-validation output, {n} expected"
    return check


CHECKS: dict[str, Callable[[Ctx], tuple[bool, str]]] = {}


def _register() -> None:
    """Checks per plan name (the plan format has no check key): every flag plan needs one, see _lint."""
    CHECKS.update({
        # exog_capability
        "tide_futr_exog_ignored": futr_ignored,
        "tide_stat_exog_ignored": stat_ignored,
        "tide_hist_exog_ignored": hist_ignored,
        "timesnet_futr_exog_ignored": futr_ignored,
        "tide_futr_exog_no_layernorm": futr_used,
        "mlp_futr_exog_supported": futr_used,
        # futr_df_nulls
        "mlp_futr_df_with_y": y_in_futr_df_unused,
        "lstm_recurrent_futr_df_with_y": y_in_futr_df_unused,
        # freq_spacing
        "freq_weekly_on_daily": off_grid,
        "freq_month_end_on_month_start": off_grid,
        "freq_daily_on_business_days": off_grid,
        "freq_hourly_on_daily": off_grid,
        "freq_int_step_mismatch": off_grid,
        "freq_month_start_ok": on_grid,
        "freq_business_days_ok": on_grid,
        "freq_int_ok": on_grid,
        # level_point_loss
        "cv_level_point_loss_dropped": no_interval_cols("cross_validation"),
        "cv_level_mqloss_dropped": no_interval_cols("cross_validation"),
        "level_prediction_intervals_ok": has_interval_cols("predict"),
        "cv_refit_prediction_intervals_ok": has_interval_cols("cross_validation"),
        # loss_valid_loss
        "distribution_valid_loss_replaced": valid_loss_replaced,
        # max_epochs
        "max_steps_zero": untrained,
        "max_steps_only_ok": trained,
        # cv_windows
        "cv_test_size_windows_ok": cv_windows(3),
        # insample
        "insample_step_size_not_dividing_h": insample_gaps,
        "insample_mlp_ok": insample_covered,
        # series_too_short
        "short_series_below_input_plus_h_ok": forecast_complete,
        "short_series_start_padding_ok": forecast_complete,
        "insample_lstm_recurrent": insample_covered,
        "insample_after_load": insample_covered,
        # level_with_quantiles
        "mqloss_level_and_quantiles": loss_level_ignored,
        "distribution_level_and_quantiles": loss_level_ignored,
        # loss_valid_loss (2)
        "mae_with_mqloss_valid_loss": mqloss_valid_point,
        # n_series (2)
        "itransformer_n_series_too_many": n_series_harmless,
        "softs_n_series_too_few": n_series_harmless,
        # predict_h
        "predict_h_above_with_futr_exog_ok": forecast_complete,
        "predict_h_above_no_exog_ok": forecast_complete,
    })


# One sentence per class on what the library really does, from the observed outcomes of this script's runs
# (docs/preflight_classes.md; the counts there are computed from the plan file).
CLASS_NOTES = {
    "exog_capability": "A model whose EXOGENOUS_FUTR / HIST / STAT flag is False raises `Exception: <Model> does not "
    "support future / historical / static exogenous variables.` when it is built (DLinear, NLinear, TSMixer, "
    "iTransformer for hist); of the models that accept the lists, TiDE with its default layernorm=True ignores "
    "fut_x, hist_x and stat_x entirely (forecasts identical under random exogenous values; with layernorm=False they "
    "change) and TimesNet ignores the future values of fut_x (forecasts identical under a random futr_df).",
    "futr_df_missing": "predict without futr_df raises `ValueError: Models require the following future exogenous "
    "features: {...}`, a futr_df without the column raises `The following features are missing from `futr_df``, a "
    "futr_exog_list column absent from df fails at fit (`... future exogenous variables not found in input "
    "dataset`), and cross_validation needs no futr_df.",
    "futr_df_short": "A futr_df that does not hold every (id, date) of the horizon, including one of past dates, "
    "raises "
    "`ValueError: There are missing combinations of ids and times in `futr_df``; rows beyond h are dropped with a "
    "UserWarning `Dropped N unused rows from `futr_df``.",
    "futr_df_nulls": "Nulls in a future column a model needs raise `ValueError: Found null values in `futr_df`` (MLP, "
    "LSTM, TSMixerx); nulls in a column no model needs pass, and a y column carried by futr_df is ignored (forecasts "
    "identical with y dropped or multiplied by 100, MLP and recurrent LSTM).",
    "freq_spacing": "Only the type of freq is checked (an integer freq on datetime ds, an alias on integer ds raise "
    "ValueError at fit / cross_validation); a wrong alias or integer step of the right type runs and stamps the "
    "forecasts with dates off the data's grid (W, ME, h on daily data, D on business days, 1 on a step-7 integer ds).",
    "level_point_loss": "predict, predict_insample and cross_validation(refit=True) with level or quantiles on a point "
    "loss fitted without prediction_intervals raise `AttributeError: You have trained <Model> with loss=<Loss>()`; "
    "cross_validation with the default refit=False ignores level silently (a point loss returns no interval columns, "
    "an MQLoss returns its own levels).",
    "level_with_quantiles": "predict, cross_validation and predict_insample given both raise `ValueError: You can't "
    "set "
    "both level and quantiles`; MQLoss and DistributionLoss built with both run and keep only the quantiles "
    "(forecast columns -lo-50.0 / -hi-50.0 for level=[90], quantiles=[0.25, 0.75]).",
    "loss_valid_loss": "MQLoss with a non-MQ valid_loss, IQLoss with another valid_loss and a point loss with a "
    "DistributionLoss valid_loss raise when the model is built, MQLoss loss / valid_loss with different quantiles "
    "raise ValueError in NeuralForecast.__init__; a DistributionLoss valid_loss other than the DistributionLoss loss "
    "is silently replaced by the loss, and an MQLoss valid_loss on a point loss runs and scores the point forecast "
    "as every quantile (val_loss exactly 1.5 x the MAE).",
    "early_stopping": "fit without val_size raises `Exception: Set val_size>0 or provide a val_df if early stopping is "
    "enabled.`; cross_validation without val_size gets past the library and fails in lightning (`RuntimeError: Early "
    "stopping conditioned on metric `ptl/val_loss` which is not available`); val_size below h and an unknown "
    "val_monitor raise ValueError.",
    "series_too_short": "fit raises `ValueError: <Model> requires at least <input_size> training timestamp(s)` when "
    "the "
    "shortest series minus val_size is below input_size (start_padding_enabled=True lifts it; 9- and 12-point series "
    "with input_size 8, h 2 run, even below input_size + h), cross_validation with test_size beyond the series "
    "raises `Exception: Time series is too "
    "short for training`, and PredictionIntervals needs h + step_size * (n_windows - 1) + 1 points per series.",
    "cv_windows": "test_size with the default n_windows=1 raises `... but not both`, neither raises `you must define "
    "`n_windows` or `test_size`.`, test_size - h not a multiple of step_size raises, and step_size 0 crashes with a "
    "bare ZeroDivisionError; n_windows: null with test_size 6, step_size 2 gives 3 windows.",
    "insample": "Multivariate models raise NotImplementedError, predict_insample before fit raises, and after a "
    "save(save_dataset=False) + load it fails with `AttributeError: 'NeuralForecast' object has no attribute "
    "'dataset'`; a recurrent LSTM and a model loaded with its dataset work, and a step_size that does not divide h "
    "runs but leaves training timestamps without a forecast.",
    "save_load": "Saving into a non-empty folder without overwrite, saving before fit, loading a missing folder "
    "(FileNotFoundError), predicting without df after a save without dataset, and a too-short futr_df after load "
    "raise; save(overwrite=True) and fit / save / load / predict run.",
    "n_series": "TSMixer, TSMixerx and StemGNN with n_series other than the number of ids crash inside torch with "
    "RuntimeError shape messages (not messages of the library's own), TSMixer without n_series raises TypeError, "
    "while iTransformer and SOFTS run with any n_series and forecast exactly as with n_series = number of ids.",
    "auto": "An unknown backend, a plain dict config with backend optuna, a config holding h or lacking input_size, "
    "and "
    "the removed cpus argument raise when the Auto model is built; num_samples 0 raises optuna's `ValueError: No "
    "trials are completed yet.` at fit, and a space key the model does not take reaches pl.Trainer (`TypeError: ... "
    "unexpected keyword argument`).",
    "predict_h": "predict(h) above the trained h raises NotImplementedError with hist exogenous and ValueError after a "
    "PredictionIntervals fit, cross_validation(h) above it raises without refit, and h below it raises ValueError; "
    "with fut_x (a futr_df covering the new h) or without exogenous it runs and returns h rows per id on the grid.",
    "max_epochs": "Any max_epochs among the model kwargs, also inside an Auto space, raises `Exception: max_epochs is "
    "deprecated, use max_steps instead.`; max_steps -1 raises lightning's MisconfigurationException on "
    "val_check_interval, and max_steps 0 runs and forecasts from the untrained initial weights.",
}


# ------------------------------------------------------------------------------------------------ verdicts
def verdict(plan: dict[str, Any], ctx: Ctx, err: BaseException | None) -> tuple[bool, str, str]:
    """(agrees with expect, observed, evidence)."""
    expect = plan["expect"]
    check = getattr(ctx, "check", None)
    if err is not None:
        msg = str(err)
        observed = f"{type(err).__name__}: {first_line(err)}".replace(str(ctx.work), "<tmp>")
        if expect != "stop":
            return False, observed, f"expected {expect}, raised"
        if type(err).__name__ != plan.get("exception"):
            return False, observed, f"exception {type(err).__name__}, plan says {plan.get('exception')}"
        if plan.get("reason", "") not in msg:
            return False, observed, f"reason {plan.get('reason')!r} not in the message"
        return True, observed, ""
    observed = "ok"
    if ctx.warnings:
        observed += " (warns: " + "; ".join(w[:110] for w in ctx.warnings[:3]) + ")"
    if expect == "stop":
        return False, observed, "expected an exception, every step ran"
    if expect == "flag":
        if check is None:
            return False, observed, "flag plan without a registered check"
        return bool(check[0]), observed, ("PROVEN: " if check[0] else "NOT PROVEN: ") + check[1]
    if check is not None:
        return bool(check[0]), observed, ("look-alike holds: " if check[0] else "look-alike FAILS: ") + check[1]
    return True, observed, ""


def _md(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--plans", default=str(ROOT / "plans" / "preflight.yaml"))
    ap.add_argument("--out", default=str(ROOT / "docs" / "preflight_truth.md"))
    ap.add_argument("--only", nargs="*", default=None)
    ap.add_argument("--class", dest="classes", nargs="*", default=None)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()

    import neuralforecast  # noqa: F401 - imported first: lightning sets its loggers' levels on import
    import torch

    _quiet()

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    _register()
    plans = yaml.safe_load(Path(args.plans).read_text())["plans"]
    problems = _lint(plans)
    sel = [p for p in plans if (not args.only or p["name"] in args.only)
           and (not args.classes or p["class"] in args.classes)]
    rows, bad = [], list(problems)
    t_all = time.perf_counter()
    for plan in sel:
        ctx, err, secs = run_plan(plan)
        ok, observed, evidence = verdict(plan, ctx, err)
        rows.append((plan, observed, secs, ok, evidence))
        mark = "ok  " if ok else "FAIL"
        print(f"{mark} {plan['name']:44s} {plan['class']:20s} {plan['expect']:5s} {secs:5.2f}s  {observed[:150]}"
              + (f"\n      {evidence}" if evidence else ""), flush=True)
        if not ok:
            bad.append(f"{plan['name']}: {evidence or observed}")
    total = time.perf_counter() - t_all
    print(f"{len(sel)} plans in {total:.1f}s; {len(bad)} contradiction(s)")
    for b in bad:
        print("  -", b)
    if not args.no_write and not args.only and not args.classes:
        _write(Path(args.out), rows, total)
        _write_classes(Path(args.out).with_name("preflight_classes.md"), plans, rows, total)
    return 1 if bad else 0


def _lint(plans: list[dict[str, Any]]) -> list[str]:
    problems, seen = [], set()
    for p in plans:
        n = p.get("name", "?")
        if not re.fullmatch(r"[a-z0-9_]+", str(n)) or n in seen:
            problems.append(f"{n}: bad or duplicate name")
        seen.add(n)
        if p.get("class") not in CLASSES:
            problems.append(f"{n}: unknown class {p.get('class')!r}")
        if p.get("expect") not in ("valid", "stop", "flag"):
            problems.append(f"{n}: expect is valid / stop / flag")
        if p.get("expect") == "stop" and not (p.get("reason") and p.get("exception")):
            problems.append(f"{n}: a stop plan needs reason and exception")
        if p.get("expect") == "flag" and not p.get("reason"):
            problems.append(f"{n}: a flag plan needs a reason")
        if p.get("expect") == "flag" and n not in CHECKS:
            problems.append(f"{n}: a flag plan needs a registered check")
    return problems


def _write(path: Path, rows: list[tuple], total: float) -> None:
    import neuralforecast

    lines = ["# Preflight plans: ground truth on the real library", "",
             f"Generated by `benchmarks/preflight_truth.py` from `plans/preflight.yaml`: every plan executed directly "
             f"on neuralforecast {neuralforecast.__version__} (CPU, max_steps 1, tiny synthetic data), without the "
             f"project's runner or validator. {len(rows)} plans in {total:.0f} s.", "",
             "`observed` is `ok` (every step ran; warnings raised are listed, except the `val_check_steps is greater "
             "than max_steps` one every plan gets and torch-internal ones) or the exception class and the first "
             "line of its message. `evidence` is what the plan's check proved by execution (flag plans and "
             "some valid look-alikes).", "",
             "| plan | class | expect | observed | s | agrees | evidence |", "|---|---|---|---|---|---|---|"]
    for plan, observed, secs, ok, evidence in rows:
        lines.append(f"| {plan['name']} | {plan['class']} | {plan['expect']} | {_md(observed)} | {secs:.2f} | "
                     f"{'yes' if ok else '**NO**'} | {_md(evidence)} |")
    path.write_text("\n".join(lines) + "\n")
    print(f"wrote {path}")


def _write_classes(path: Path, plans: list[dict[str, Any]], rows: list[tuple], total: float) -> None:
    agree = {plan["name"]: ok for plan, _, _, ok, _ in rows}
    lines = ["# Preflight plan classes", "",
             "The 17 classes of mistakes in `plans/preflight.yaml`: per class the wrong plans (stop = the library "
             "raises, flag = it runs but the result is wrong) and the valid look-alikes, and what neuralforecast "
             "really does, as observed by `benchmarks/preflight_truth.py` (full table: `docs/preflight_truth.md`; "
             f"{sum(agree.values())} of {len(plans)} plans agree with their label, {total:.0f} s).", "",
             "| # | class | stop | flag | wrong | valid | what the library does |", "|---|---|---|---|---|---|---|"]
    tot = {"stop": 0, "flag": 0, "valid": 0}
    for i, code in enumerate(CLASSES, 1):
        ps = [p for p in plans if p["class"] == code]
        n = {k: sum(p["expect"] == k for p in ps) for k in tot}
        for k in tot:
            tot[k] += n[k]
        lines.append(f"| {i} | {code} | {n['stop']} | {n['flag']} | {n['stop'] + n['flag']} | {n['valid']} | "
                     f"{_md(CLASS_NOTES[code])} |")
    lines.append(f"| | **total** | {tot['stop']} | {tot['flag']} | {tot['stop'] + tot['flag']} | {tot['valid']} | |")
    path.write_text("\n".join(lines) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
