"""Scenario facts: the setup a call ran in, as canonical JSON, so knowledge is applied only where it holds.

A compatibility cell records the facts of the setup it ran under (``compat_result.scenario_facts``); the plan
validator derives the same facts for each step of a plan from its data and its earlier steps, with the same
function, and uses a cell as evidence only when every fact the cell recorded has the same value for the step
(:func:`matches`). A cell without facts (recorded by an older fcast) is not evidence.

Facts (canonical keys):

- setup: ``ds_dtype`` (datetime / int), ``freq``, ``freq_fits_data`` (the freq equals the spacing inferred from the
  data's ds), ``loss`` and ``valid_loss`` (class and arguments, e.g. ``MQLoss(level=[80])``), ``loss_kind``
  (point / quantile / distribution, from ``registry_loss``), ``exog_futr`` / ``exog_hist`` / ``exog_stat`` (the
  model's lists), ``exog_in_data`` (df / static_df hold them), ``n_series_matches`` (multivariate n_series equals
  the number of ids; None for univariate models), ``long_enough`` (the shortest series covers input_size + h and
  what the call holds out), ``prediction_intervals`` (the fit that produced the model had conformal intervals);
- call: ``state`` (fresh / fit / cv / loaded: what produced the models), ``futr_df`` (none / covers / short /
  nulls / extra / unused), ``static_df`` (given), ``level`` / ``quantiles`` (asked for), ``h_rel`` (none / lt / eq /
  gt: requested h against the trained h), ``path_state`` (new / existing / written: what a save finds at its
  path), ``overwrite``, ``n_windows`` / ``test_size`` / ``step_size`` / ``refit`` / ``val_size``
  (effective values, defaults filled from the registry).
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

SETUP_KEYS = ("ds_dtype", "freq", "freq_fits_data", "loss", "valid_loss", "loss_kind", "exog_futr", "exog_hist",
              "exog_stat", "exog_in_data", "n_series_matches", "long_enough", "prediction_intervals")
CALL_KEYS: dict[str, tuple[str, ...]] = {
    "predict": ("state", "futr_df", "static_df", "level", "quantiles", "h_rel"),
    "cross_validation": ("state", "static_df", "level", "quantiles", "h_rel", "n_windows", "test_size",
                         "step_size", "refit", "val_size", "cv_prediction_intervals"),
    "predict_insample": ("state", "level", "quantiles", "step_size"),
    "fit": ("state", "static_df", "val_size"),
    "save": ("state", "path_state", "overwrite"),
    "load": ("state",),
}
_UNKNOWN = object()
CV_DEFAULTS = {"n_windows": 1, "test_size": None, "step_size": 1, "refit": False, "val_size": 0}


def _short(qualname: str) -> str:
    return str(qualname).rsplit(".", 1)[-1]


def loss_label(value: Any, default: Any = None) -> str | None:
    """``MAE()``, ``MQLoss(level=[80])``: the loss a model trains with, from a plan / cell value or the registry
    default (a tagged ``{__repr__, __type__}``); None when there is none."""
    if value is None:
        value = default
    if value is None:
        return None
    if isinstance(value, dict) and "__obj__" in value:
        kw = value.get("kwargs") or {}
        return f"{_short(value['__obj__'])}(" + ", ".join(f"{k}={kw[k]!r}" for k in sorted(kw)) + ")"
    if isinstance(value, dict) and "__repr__" in value:
        return str(value["__repr__"])
    if hasattr(value, "__class__") and not isinstance(value, (str, int, float, list, dict)):
        return f"{type(value).__name__}()"
    return str(value)


def loss_kind(label: str | None, kinds: dict[str, str]) -> str | None:
    if not label:
        return None
    return kinds.get(label.split("(", 1)[0])


def spacing(df: pd.DataFrame) -> Any:
    """The spacing of ds inferred from the data: an integer step for integer ds, a pandas frequency alias for
    datetimes (``pd.infer_freq`` on the longest series); None when irregular or too short."""
    if df is None or df.empty or "ds" not in df.columns:
        return None
    if pd.api.types.is_integer_dtype(df["ds"]):
        diffs = df.sort_values(["unique_id", "ds"]).groupby("unique_id")["ds"].diff().dropna().unique()
        return int(diffs[0]) if len(diffs) == 1 else None
    sizes = df.groupby("unique_id").size()
    uid = sizes.idxmax()
    ds = pd.DatetimeIndex(df.loc[df["unique_id"] == uid, "ds"].sort_values())
    if len(ds) < 3:
        return None
    try:
        return pd.infer_freq(ds)
    except (TypeError, ValueError):
        return None


def freq_fits(freq: Any, inferred: Any) -> bool | None:
    """Does ``freq`` put forecasts on the data's grid? None when the data's spacing is unknown."""
    if inferred is None or freq is None:
        return None
    if isinstance(inferred, int) or isinstance(freq, int):
        return isinstance(inferred, int) and isinstance(freq, int) and not isinstance(freq, bool) \
            and freq == inferred
    try:
        a, b = pd.tseries.frequencies.to_offset(freq), pd.tseries.frequencies.to_offset(inferred)
    except (ValueError, TypeError):
        return False
    if a == b:
        return True
    # same grid written two ways (W == W-SUN): compare a few dates generated from one start
    start = pd.Timestamp("2021-01-04")
    try:
        return list(pd.date_range(start, periods=6, freq=a)) == list(pd.date_range(start, periods=6, freq=b))
    except (ValueError, TypeError):
        return False


def futr_df_kind(frame: pd.DataFrame | None, futr_cols: list[str], last_ds: dict[Any, Any], h: int) -> str:
    """none / unused / short / nulls / extra / covers: what a futr_df holds relative to the model and h."""
    if frame is None:
        return "none"
    if not futr_cols:
        return "unused"
    if any(c not in frame.columns for c in futr_cols):
        return "short"
    for uid, last in last_ds.items():
        part = frame[frame["unique_id"] == uid]
        if int((part["ds"] > last).sum()) < h:
            return "short"
    if frame[futr_cols].isna().any().any():
        return "nulls"
    if set(frame.columns) - {"unique_id", "ds", *futr_cols}:
        return "extra"
    return "covers"


def _num(v: Any, default: int) -> int:
    """A positive int argument, else ``default``: a wrong type (a string, a list) is the type check's to report."""
    return v if isinstance(v, int) and not isinstance(v, bool) and v > 0 else default


def points_needed(models: list[dict[str, Any]], method: str, call: dict[str, Any], fit: dict[str, Any]) -> int:
    """Points the shortest series needs for this call (input window + horizon + what is held out)."""
    h = max(_num(m.get("h"), 1) for m in models) if models else 1
    inp = max(_num(m.get("input_size"), 0) for m in models) if models else 0
    need = inp + h
    kw = call if method == "cross_validation" else fit
    val = kw.get("val_size") or 0
    need += int(val) if isinstance(val, int) and not isinstance(val, bool) and val > 0 else 0
    if method == "cross_validation":
        test_size, n_windows = call.get("test_size"), call.get("n_windows", 1)
        step = call.get("step_size", 1)
        if isinstance(test_size, int) and not isinstance(test_size, bool):
            need += test_size
        elif isinstance(n_windows, int) and isinstance(step, int):
            need += h + step * max(n_windows - 1, 0)
    pi = fit.get("prediction_intervals")
    if isinstance(pi, dict):
        nw = (pi.get("kwargs") or {}).get("n_windows", 2)
        need += (nw if isinstance(nw, int) else 2) * h
    return need


def _json(v: Any) -> Any:
    return json.loads(json.dumps(v, sort_keys=True, default=str))


def facts(*, frames: dict[str, Any], freq: Any, model: dict[str, Any], models: list[dict[str, Any]] | None = None,
          method: str, call: dict[str, Any] | None = None, fit: dict[str, Any] | None = None,
          state: str = "fresh", loss_kinds: dict[str, str] | None = None,
          default_loss: Any = None, multivariate: bool = False, path_state: str | None = None,
          data_spacing: Any = _UNKNOWN) -> dict[str, Any]:
    """The scenario facts of one model in one call.

    ``model``: the model's constructor arguments as JSON (loss, valid_loss, h, input_size, n_series, exog lists);
    ``models``: every model of the NeuralForecast object (for h / input_size); ``method``: the short name of the
    call (predict, cross_validation, fit, ...; ``__init__`` for constructor cells); ``call``: its arguments as
    JSON; ``fit``: the arguments of the fit (or cross_validation) that produced the models; ``frames``: the data
    set (df, static_df, ...) with ``{__data__: name}`` references resolved against it; ``data_spacing``: the
    spacing of ``frames["df"]`` when the caller has it already (:func:`spacing`, computed once per data set)."""
    call, fit, models = dict(call or {}), dict(fit or {}), models or [model]
    df = frames.get("df")

    def frame(v: Any) -> Any:
        if isinstance(v, dict) and "__data__" in v:
            return frames.get(v["__data__"])
        return v if isinstance(v, pd.DataFrame) else None

    if method == "cross_validation":
        call = {**CV_DEFAULTS, **call}
        if call.get("df") is not None and frame(call.get("df")) is not None:
            df = frame(call["df"])
    elif method == "predict" and frame(call.get("df")) is not None:
        df = frame(call["df"])
    ids = df["unique_id"].nunique() if df is not None and not df.empty else 0
    futr, hist, stat = (sorted(model.get(f"{g}_exog_list") or []) for g in ("futr", "hist", "stat"))
    static = frame((call if method == "cross_validation" else fit).get("static_df"))
    cols = set(df.columns) if df is not None else set()
    in_data = all(c in cols for c in futr + hist) and (not stat or (
        static is not None and all(c in static.columns for c in stat)))
    loss = loss_label(model.get("loss"), default_loss)
    lens = df.groupby("unique_id").size() if df is not None and not df.empty else pd.Series(dtype=int)
    n_series = model.get("n_series")
    out: dict[str, Any] = {
        "ds_dtype": None if df is None else ("int" if pd.api.types.is_integer_dtype(df["ds"]) else "datetime"),
        "freq": freq,
        "freq_fits_data": freq_fits(freq, data_spacing if data_spacing is not _UNKNOWN and df is frames.get("df")
                                    else spacing(df)),
        "loss": loss,
        "valid_loss": loss_label(model.get("valid_loss")),
        "loss_kind": loss_kind(loss, loss_kinds or {}),
        "exog_futr": futr, "exog_hist": hist, "exog_stat": stat,
        "exog_in_data": in_data,
        "n_series_matches": (n_series == ids) if multivariate and isinstance(n_series, int) else None,
        "long_enough": bool(len(lens)) and int(lens.min()) >= points_needed(models, method, call, fit),
        "prediction_intervals": isinstance(fit.get("prediction_intervals"), dict),
    }
    if method in CALL_KEYS:
        trained_h = max(_num(m.get("h"), 1) for m in models)
        h = call.get("h")
        out.update({
            "state": state,
            "static_df": frame(call.get("static_df")) is not None,
            "level": bool(call.get("level")),
            "quantiles": bool(call.get("quantiles")),
            "h_rel": "none" if not isinstance(h, int) else "lt" if h < trained_h else "eq" if h == trained_h
            else "gt",
        })
        if method == "predict":
            last = df.groupby("unique_id")["ds"].max().to_dict() if df is not None and not df.empty else {}
            out["futr_df"] = futr_df_kind(frame(call.get("futr_df")), futr, last,
                                          h if isinstance(h, int) else trained_h)
        if method == "cross_validation":
            out.update({k: call.get(k) for k in ("n_windows", "test_size", "step_size", "refit", "val_size")})
            out["cv_prediction_intervals"] = isinstance(call.get("prediction_intervals"), dict)
        if method == "predict_insample":
            out["step_size"] = call.get("step_size", 1)
        if method == "fit":
            out["val_size"] = call.get("val_size", 0)
        if method == "save":
            out["path_state"], out["overwrite"] = path_state or "new", bool(call.get("overwrite", False))
        out = {k: v for k, v in out.items() if k in SETUP_KEYS or k in CALL_KEYS[method]}
    else:
        out["state"] = state
    return _json(out)


def matches(cell: dict[str, Any] | None, plan: dict[str, Any]) -> bool:
    """A cell is evidence for a plan step only when every fact it recorded has the same value there."""
    if not cell:
        return False
    return all(k in plan and plan[k] == v for k, v in cell.items())


def differing(cell: dict[str, Any] | None, plan: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """The facts on which a cell and a plan step differ (cell value, plan value): why a cell was not applied."""
    return {k: (v, plan.get(k)) for k, v in (cell or {}).items() if plan.get(k) != v}


def describe(f: dict[str, Any] | None, keys: tuple[str, ...] = ("ds_dtype", "freq", "loss", "prediction_intervals",
                                                                 "state", "futr_df", "exog_in_data")) -> str:
    """A short human label of the facts that most often decide an outcome."""
    if not f:
        return "no scenario recorded"
    return ", ".join(f"{k}={f[k]}" for k in keys if k in f and f[k] not in (None, [], False))
