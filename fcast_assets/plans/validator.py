"""Pre-flight validation of plans against the registry of the installed release and the compatibility matrix.

Every step is checked before anything runs; the outcome is one ``run_validation`` row per step (ok, violations).
The rules are data: parameter facts of the registry (names, kinds, required, normalised types, enum values),
``registry_param_constraint`` rows (ranges, excludes, named cross-argument checks written from ``rules.yaml``
with source 'rule'), and ``compat_result`` rows (a (model, method, param, value) the matrix recorded as an error).
A violation names the plan, the step, the argument, the rule and a fix.
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
import inspect
import json
import os
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any, Callable

import yaml
from sqlalchemy import Engine, delete, insert, text

from ..compat import scenario
from ..registry.view import RegistryView, latest_release
from ..db import run_models as rm
from . import data as plan_data
from .baselines import check_baselines
from .loader import EVALUATE, get_plan, plan_names
from .model import Plan, PlanFormatError, Validation

RULE_SOURCE = "rule"
SIMPLE_TYPES = {"int", "float", "bool", "str", "list", "dict", "None", "tuple"}
CORE_PREFIX = "neuralforecast.core.NeuralForecast."
NEEDS_NF = {"fit", "predict", "cross_validation", "predict_insample", "save"}
NEEDS_FIT = {"predict", "predict_insample", "save"}
FORECASTS = {"predict", "cross_validation", "predict_insample"}


@lru_cache(maxsize=1)
def _rules_text() -> str:
    return resources.files("fcast_assets.plans").joinpath("rules.yaml").read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def rules() -> dict[str, Any]:
    return yaml.safe_load(_rules_text())


def rules_hash() -> str:
    import hashlib

    return hashlib.sha256(_rules_text().encode()).hexdigest()[:16]


# which layer of the pre-flight found a violation: a static rule (registry rows, rules.yaml), a matrix cell whose
# scenario matches the step, the miniature run of the plan itself, or the plan's data
MATRIX_RULES = {"compat_error", "compat_suspect"}
MINIATURE_RULES = {"miniature_error", "miniature_suspect", "miniature_timeout"}
DATA_RULES = {"unknown_data", "freq_vs_spacing"}


def layer_of(rule: str) -> str:
    return ("matrix" if rule in MATRIX_RULES else "miniature" if rule in MINIATURE_RULES
            else "data" if rule in DATA_RULES else "rule")


@dataclass
class Violation:
    plan: str
    step: int
    method: str
    param: str | None
    rule: str
    message: str
    fix: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    layer: str = ""

    def __post_init__(self) -> None:
        self.layer = self.layer or layer_of(self.rule)

    def row(self) -> dict[str, Any]:
        """What run_validation.violations keeps of it."""
        return {k: getattr(self, k) for k in ("param", "rule", "message", "fix", "detail", "layer")}


# ----------------------------------------------------------------------------------------------- rule rows
def sync_rules(engine: Engine, release_id: int) -> int:
    """Write rules.yaml's constraints as registry_param_constraint rows (source 'rule') for the release."""
    with engine.begin() as conn:
        params = conn.execute(text("""
            SELECT p.param_id, p.name, s.qualname FROM registry_param p
            JOIN registry_symbol s ON s.symbol_id = p.symbol_id WHERE s.release_id = :r"""), {"r": release_id}).all()
        ids = [p.param_id for p in params]
        conn.execute(text("""DELETE FROM registry_param_constraint WHERE source = :src AND param_id IN
                             (SELECT p.param_id FROM registry_param p JOIN registry_symbol s
                              ON s.symbol_id = p.symbol_id WHERE s.release_id = :r)"""),
                     {"src": RULE_SOURCE, "r": release_id})
        rows = []
        by_name: dict[str, list[Any]] = {}
        for p in params:
            by_name.setdefault(p.name, []).append(p)
        for c in rules()["constraints"]:
            for p in by_name.get(c["param"], []):
                if fnmatch.fnmatchcase(p.qualname, c["symbol"]):
                    rows.append({"param_id": p.param_id, "constraint_type": c["type"],
                                 "spec": {**c["spec"], "fix": c.get("fix"), "symbol": c["symbol"],
                                          "rules_hash": rules_hash()},
                                 "message": c.get("message"), "source": RULE_SOURCE})
        if rows:
            from ..db.models import RegistryParamConstraint

            conn.execute(insert(RegistryParamConstraint.__table__), rows)  # type: ignore[attr-defined]
    return len(rows) if ids else 0


# ----------------------------------------------------------------------------------------------- registry
class Context(RegistryView):
    """What validation reads: the release's registry view, with the matrix cells filtered by scenario facts.
    Read-only; :func:`plan_context` writes the rule rows first (``sync_rules``) where plans are validated."""

    def compat(self, model: str, method: str, param: str, facts: dict[str, Any] | None = None
               ) -> list[dict[str, Any]]:
        """The matrix cells of (model, method, param); with ``facts``, only those whose scenario matches them."""
        rows = super().compat(model, method, param)
        return rows if facts is None else [r for r in rows if scenario.matches(r["facts"], facts)]


def plan_context(engine: Engine, library: str = "neuralforecast", release_id: int | None = None) -> Context:
    """The view a validation or a plan run reads, after the rule rows follow rules.yaml and the current scan (a
    rescan may add parameters: ~0.1 s). The one place that writes them besides the run_plans asset."""
    rid = latest_release(engine, library)[0] if release_id is None else release_id
    sync_rules(engine, rid)
    return Context(engine, library, rid)


# ----------------------------------------------------------------------------------------------- helpers
def _canon(v: Any) -> str:
    return json.dumps(v, sort_keys=True, default=str)


def _value_types(v: Any) -> set[str] | None:
    if isinstance(v, bool):
        return {"bool"}
    if isinstance(v, int):
        return {"int", "float"}
    if isinstance(v, float):
        return {"float"}
    if isinstance(v, str):
        return {"str"}
    if isinstance(v, list):
        return {"list", "tuple"}
    if v is None:
        return {"None"}
    if isinstance(v, dict) and "__data__" in v:
        return {"DataFrame", "pl_DataFrame"}
    if isinstance(v, dict) and "__obj__" in v:
        return {v["__obj__"].rsplit(".", 1)[-1]}
    if isinstance(v, dict):
        return {"dict"}
    return None


def _glob_get(table: dict[str, Any], qualname: str) -> Any:
    for pattern, v in table.items():
        if fnmatch.fnmatchcase(qualname, pattern):
            return v
    return None


def _signature_names(targets: str | list[str]) -> set[str] | None:
    """Parameter names of the first importable callable of ``targets`` (None when none imports)."""
    for target in [targets] if isinstance(targets, str) else targets:
        mod, _, attr = target.rpartition(".")
        try:
            try:
                obj = importlib.import_module(mod)
            except ImportError:
                mod, _, cls = mod.rpartition(".")
                obj = getattr(importlib.import_module(mod), cls)
            return set(inspect.signature(getattr(obj, attr)).parameters)
        except (ImportError, AttributeError, ValueError, TypeError):
            continue
    return None


def compat_method(step: dict[str, Any]) -> str:
    if step["kind"] == "model":
        return "Model.__init__"
    return step["method"].split("neuralforecast.core.", 1)[-1]


# ----------------------------------------------------------------------------------------------- checks
# named cross-argument checks: (ctx, plan state, step, param, value, spec) -> [(step, param, message)]
CheckResult = list[tuple[dict[str, Any], str | None, str]]


def _later(state: dict[str, Any], step: dict[str, Any], shorts: list[str]) -> list[dict[str, Any]]:
    return [s for s in state["steps"] if s["ord"] > step["ord"] and s["short"] in shorts]


def check_futr_df_covers_h(ctx, state, step, param, value, spec) -> CheckResult:  # noqa: ANN001
    out: CheckResult = []
    cols = list(value or [])
    if not cols:
        return out
    for s in _later(state, step, spec["methods"]):
        fp = spec["frame_param"]
        frame = state["frames"].get(s["params"].get(fp, {}).get("__data__")) if isinstance(
            s["params"].get(fp), dict) else None
        h = s["params"].get("h") or state["h"]
        if frame is None:
            out.append((s, fp, f"model {step['label']} has futr_exog_list {cols} but {s['label']} has no {fp}"))
            continue
        missing = [c for c in cols if c not in frame.columns]
        if missing:
            out.append((s, fp, f"{fp} lacks the future columns {missing}"))
        df = state["frames"]["df"]
        last = df.groupby("unique_id")["ds"].max()
        short = []
        for uid, ds in last.items():
            n = int(((frame["unique_id"] == uid) & (frame["ds"] > ds)).sum())
            if n < h:
                short.append(f"{uid}: {n} rows")
        if short:
            out.append((s, fp, f"{fp} does not cover h={h} for every series ({', '.join(short)})"))
    return out


def check_columns_in_frame(ctx, state, step, param, value, spec) -> CheckResult:  # noqa: ANN001
    frame = state["frames"][spec["frame"]]
    missing = [c for c in value or [] if c not in frame.columns]
    return [(step, param, f"columns {missing} are not in the data set's {spec['frame']} "
                          f"(data: {state['plan']['data']}, columns {list(frame.columns)})")] if missing else []


def check_static_columns_present(ctx, state, step, param, value, spec) -> CheckResult:  # noqa: ANN001
    out: CheckResult = []
    if not value:
        return out
    fp = spec["frame_param"]
    for s in _later(state, step, spec["methods"]):
        ref = s["params"].get(fp)
        frame = state["frames"].get(ref.get("__data__")) if isinstance(ref, dict) else None
        if frame is None:
            out.append((s, fp, f"model {step['label']} has stat_exog_list {list(value)} but {s['label']} has no {fp}"))
        else:
            missing = [c for c in value if c not in frame.columns]
            if missing:
                out.append((step, param, f"static columns {missing} are missing from {fp} "
                                         f"(columns {list(frame.columns)})"))
    return out


def check_n_series_matches(ctx, state, step, param, value, spec) -> CheckResult:  # noqa: ANN001
    n = state["frames"]["df"]["unique_id"].nunique()
    if isinstance(value, int) and value != n:
        return [(step, param, f"n_series={value} but the data has {n} series")]
    return []


_H_LABELS = {"lt": "(< trained h)", "eq": "(= h)", "gt": "(> h)"}


def check_h_vs_model_h(ctx, state, step, param, value, spec) -> CheckResult:  # noqa: ANN001
    if not isinstance(value, int) or isinstance(value, bool):
        return []
    unless = spec.get("unless") or {}
    if unless and all(step["params"].get(k) == v for k, v in unless.items()):
        return []
    out: CheckResult = []
    for m in state["models"]:
        mh = m["params"].get("h")
        if not isinstance(mh, int):
            continue
        rel = "lt" if value < mh else "gt" if value > mh else "eq"
        rows = [r for r in ctx.compat(m["qualname"], compat_method(step), "h", step["facts"].get(m["ord"]) or {})
                if r["value_label"].endswith(_H_LABELS[rel])]
        if rows:
            r = rows[-1]
            if r["status"] == "error":
                out.append((step, param, f"h={value} vs {m['label']} h={mh}: the compatibility matrix recorded "
                                         f"{r['exception_type']}: {r['message']} (compat_result {r['result_id']}, "
                                         f"scenario {scenario.describe(r['facts'])})"))
        elif (spec.get("fallback") or {}).get(rel) == "reject":
            out.append((step, param, f"h={value} vs {m['label']} h={mh} is rejected (rule; no matrix row yet)"))
    return out


def _earlier_save(steps: list[dict[str, Any]], step: dict[str, Any], path: Any) -> dict[str, Any] | None:
    """The first save step before ``step`` that wrote ``path``."""
    return next((s for s in steps if s["ord"] < step["ord"] and s["short"] == "save"
                 and s["params"].get("path") == path), None)


def occupied(path: Any) -> bool:
    """An absolute path that already holds something (a file, or a folder with files): a save there needs
    overwrite."""
    return isinstance(path, str) and os.path.isabs(path) and os.path.exists(path) and (
        not os.path.isdir(path) or bool(os.listdir(path)))


def check_save_path_free(ctx, state, step, param, value, spec) -> CheckResult:  # noqa: ANN001
    if not isinstance(value, str) or step["params"].get(spec["overwrite_param"]):
        return []
    earlier = _earlier_save(state["steps"], step, value)
    if earlier:
        return [(step, param, f"path {value!r} was already written by {earlier['label']}")]
    if occupied(value):
        return [(step, param, f"path {value!r} exists and is not empty: a save there would overwrite it (save to a "
                              "new folder, or set overwrite: true on this step; a model version folder left by a "
                              "killed training is moved aside by the next `fcast model retrain`)")]
    return []


def check_capability(ctx, state, step, param, value, spec) -> CheckResult:  # noqa: ANN001
    caps = (ctx.models.get(step["qualname"]) or {}).get("caps") or {}
    if value and caps.get(spec["capability"]) is False:
        return [(step, param, f"{step['qualname'].rsplit('.', 1)[-1]} declares {spec['capability']}=False")]
    return []


def check_loss_pair(ctx, state, step, param, value, spec) -> CheckResult:  # noqa: ANN001
    """valid_loss against loss (kinds from registry_loss): a point model scored by a quantile / distribution valid
    loss, or a distribution loss whose valid_loss is another distribution (silently replaced by the loss)."""
    if not isinstance(value, dict) or "__obj__" not in value:
        return []
    loss = scenario.loss_label(step["params"].get("loss"), ctx.default_loss(step["qualname"]))
    vloss = scenario.loss_label(value)
    kind, vkind = scenario.loss_kind(loss, ctx.loss_kinds), scenario.loss_kind(vloss, ctx.loss_kinds)
    if kind == "point" and vkind in ("quantile", "distribution"):
        return [(step, param, f"runs, but wrong: the model trained with {loss} has one output; {vloss} scores that "
                              "point forecast as every quantile")]
    if kind == "distribution" and vkind == "distribution" and loss != vloss:
        return [(step, param, f"runs, but wrong: valid_loss {vloss} is replaced by the training loss {loss}")]
    return []


def check_insample_step_covers(ctx, state, step, param, value, spec) -> CheckResult:  # noqa: ANN001
    hs = [m["params"].get("h") for m in state["models"] if isinstance(m["params"].get("h"), int)]
    if isinstance(value, int) and not isinstance(value, bool) and hs and value > min(hs):
        return [(step, param, f"runs, but wrong: step_size={value} > h={min(hs)} leaves training timestamps "
                              "without an in-sample forecast")]
    return []


def check_input_fits_series(ctx, state, step, param, value, spec) -> CheckResult:  # noqa: ANN001
    """input_size against the shortest series of the plan's data, minus the val_size of its fit (the library's
    own bound; start_padding_enabled lifts it)."""
    df = state["frames"].get("df")
    if not isinstance(value, int) or isinstance(value, bool) or df is None or df.empty or \
            step["params"].get("start_padding_enabled"):
        return []
    shortest = int(df.groupby("unique_id").size().min())
    fits = [s for s in state["steps"] if s["short"] in ("fit", "cross_validation")]
    val = max([s["params"].get("val_size") or 0 for s in fits
               if isinstance(s["params"].get("val_size") or 0, int)] or [0])
    if shortest - val < value:
        return [(step, param, f"input_size={value} but the shortest series has {shortest} points"
                              + (f" ({shortest - val} after val_size={val})" if val else ""))]
    return []


CHECKS: dict[str, Callable[..., CheckResult]] = {
    "input_fits_series": check_input_fits_series,
    "capability": check_capability, "loss_pair": check_loss_pair, "insample_step_covers": check_insample_step_covers,
    "futr_df_covers_h": check_futr_df_covers_h, "columns_in_frame": check_columns_in_frame,
    "static_columns_present": check_static_columns_present, "n_series_matches": check_n_series_matches,
    "h_vs_model_h": check_h_vs_model_h, "save_path_free": check_save_path_free,
}


def _object_args(ctx: Context, value: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The arguments of an {__obj__, kwargs} row checked like any call: unknown names against the registry's
    parameters of its constructor, and its excludes rows (rules.yaml)."""
    qualname, kwargs = value["__obj__"], value.get("kwargs") or {}
    sym = ctx.symbol(qualname)
    if sym is None or not isinstance(kwargs, dict):
        return []
    reg = ctx.params(sym["qualname"] + ".__init__")
    if not reg:
        return []
    names = {p["name"] for p in reg if p["kind"] not in ("var_keyword", "var_positional")}
    out = []
    if not any(p["kind"] == "var_keyword" for p in reg):
        for k in kwargs:
            if k not in names:
                guess = difflib.get_close_matches(k, sorted(names), n=1)
                out.append(("unknown_argument", f"{qualname.rsplit('.', 1)[-1]} has no argument {k!r}",
                            f"did you mean {guess[0]!r}?" if guess else f"use one of {sorted(names)}"))
    for p in reg:
        for c in p["constraints"]:
            other = (c["spec"] or {}).get("param")
            if c["constraint_type"] == "excludes" and kwargs.get(p["name"]) is not None and \
                    kwargs.get(other) is not None:
                out.append(("excludes", f"{qualname.rsplit('.', 1)[-1]}({p['name']}=…, {other}=…): {c['message']}",
                            (c["spec"] or {}).get("fix") or f"keep either {p['name']} or {other}"))
    return out


def _range_breach(value: Any, spec: dict[str, Any]) -> str | None:
    values = value if spec.get("each") and isinstance(value, list) else [value]
    for v in values:
        if v is None or isinstance(v, bool) or not isinstance(v, (int, float)):
            continue
        if spec.get("integer") and not isinstance(v, int):
            return f"{v!r} is not an integer"
        for op, bad in (("gt", lambda a, b: a <= b), ("ge", lambda a, b: a < b),
                        ("lt", lambda a, b: a >= b), ("le", lambda a, b: a > b)):
            if op in spec and bad(v, spec[op]):
                return f"{v!r} breaks {op} {spec[op]}"
    return None


# ----------------------------------------------------------------------------------------------- steps
def _classify(ctx: Context, step: dict[str, Any]) -> None:
    m = step["method"]
    sym = ctx.symbol(m)
    step["symbol"] = sym
    step["qualname"] = sym["qualname"] if sym else m
    if m == EVALUATE:
        step["kind"], step["short"], step["params_of"] = "evaluate", "evaluate", None
    elif sym and sym["kind"] == "class":
        step["kind"], step["short"], step["params_of"] = "model", "model", sym["qualname"] + ".__init__"
    else:
        short = step["qualname"].split(CORE_PREFIX, 1)[-1] if step["qualname"].startswith(CORE_PREFIX) else None
        step["kind"], step["short"], step["params_of"] = "core", short, step["qualname"] if sym else None
    what = step["qualname"].rsplit(".", 1)[-1] if step["kind"] == "model" else step.get("name") or step["short"]
    step["label"] = f"step {step['ord']} ({what})"


def _state(ctx: Context, plan: dict[str, Any], out: list[Violation],
           frames: dict[str, Any] | None = None) -> dict[str, Any]:
    """Steps classified against the registry (once: the runner executes them as resolved here), the plan's frames
    (``frames`` when the caller injects them: nothing is read) and each step's scenario facts."""
    steps = [dict(s) for s in plan["steps"]]
    for i, s in enumerate(steps):
        s.setdefault("ord", i)
        s["params"] = dict(s.get("params") or {})
        _classify(ctx, s)
    try:
        if frames is None:
            frames = plan_data.load(plan.get("data"), engine=ctx.engine, plan=plan)
    except (KeyError, LookupError, ValueError, OSError) as e:
        out.append(Violation(plan["name"], -1, "plan", "data", "unknown_data", str(e.args[0] if e.args else e),
                             f"use one of {sorted(plan_data.DATASETS)}, gold:<game>:<selector> of a game whose "
                             "gold tables are materialized, {synthetic: {...}} or {files: {...}}"))
        frames = plan_data.load("synthetic")
    models = [s for s in steps if s["kind"] == "model"]
    hs = [m["params"].get("h") for m in models if isinstance(m["params"].get("h"), int)]
    state = {"plan": plan, "steps": steps, "models": models, "frames": frames, "h": max(hs) if hs else 1}
    _step_facts(ctx, state)
    return state


def _path_state(steps: list[dict[str, Any]], step: dict[str, Any]) -> str:
    path = step["params"].get("path")
    return "written" if _earlier_save(steps, step, path) else "existing" if occupied(path) else "new"


PRODUCERS = {"fit": "fit", "cross_validation": "cv", "load": "loaded"}


def _step_facts(ctx: Context, state: dict[str, Any]) -> None:
    """Scenario facts of every step, per model (``step["facts"][model ord]``), derived from the plan's data and its
    earlier steps with the same function the matrix uses for its cells (compat.scenario)."""
    steps, models = state["steps"], state["models"]
    init = next((s for s in steps if s["short"] == "__init__"), None)
    freq = (init or {}).get("params", {}).get("freq") if init else None
    producers = [s for s in steps if s["short"] in ("fit", "cross_validation")]
    model_args = [m["params"] for m in models]
    data_spacing = scenario.spacing(state["frames"].get("df"))  # once per plan, not per step and model
    made_by, fit = "fresh", None
    for s in steps:
        s["facts"] = {}
        short = s["short"]
        if short == "load":  # the models now come from the artifact: what they were fitted with is its own
            made_by, fit = "loaded", {}
            continue
        if s["kind"] == "evaluate" or not models:
            continue
        if s["kind"] == "model" or short == "__init__":
            first = next((p for p in producers if p["ord"] > s["ord"]), None)
            gov = dict(first["params"]) if first is not None and first["short"] == "fit" else {}
            method, call, fit_kw, st = "__init__", gov, gov, "fresh"
        elif short == "fit":
            method, call, fit_kw, st = "fit", s["params"], s["params"], "fresh"
        elif short == "cross_validation":
            method, call, fit_kw, st = "cross_validation", s["params"], {}, "fresh"
        elif short in ("predict", "predict_insample", "save"):
            method, call, fit_kw, st = short, s["params"], fit or {}, made_by
        else:
            continue
        targets = [s] if s["kind"] == "model" else models
        path_state = _path_state(steps, s) if short == "save" else None
        for m in targets:
            q = m["qualname"]
            s["facts"][m["ord"]] = scenario.facts(
                frames=state["frames"], freq=freq, model=m["params"], models=model_args, method=method, call=call,
                fit=fit_kw, state=st, loss_kinds=ctx.loss_kinds, default_loss=ctx.default_loss(q),
                data_spacing=data_spacing,
                multivariate=bool((ctx.models.get(q) or {}).get("caps", {}).get("multivariate")),
                path_state=path_state)
        if short in PRODUCERS:
            made_by = PRODUCERS[short]
            fit = dict(s["params"]) if short == "fit" else {}


def _check_step(ctx: Context, state: dict[str, Any], step: dict[str, Any]) -> list[tuple[dict, str | None, str, str, str | None, dict]]:
    """[(step, param, rule, message, fix, detail)]"""
    found: list[tuple[dict, str | None, str, str, str | None, dict]] = []
    add = lambda s, p, rule, msg, fix=None, **d: found.append((s, p, rule, msg, fix, d))  # noqa: E731
    params = step["params"]
    from . import auto, safety

    if step["kind"] == "evaluate":
        known = rules()["metrics"]
        for k in params:
            if k not in ("metrics", "on", "baselines"):
                add(step, k, "unknown_argument", f"evaluate takes metrics, on and baselines, not {k!r}",
                    "remove it")
        for msg, fix in check_baselines(params.get("baselines") or [], state["frames"]):
            add(step, "baselines", "unknown_baseline", msg, fix)
        forecasts = [s for s in state["steps"] if s["ord"] < step["ord"] and s["short"] in FORECASTS]
        if params.get("on") is not None:
            forecasts = [s for s in forecasts if (s.get("name") or s["short"]) == params["on"]]
        if not forecasts:
            add(step, "on" if params.get("on") else None, "step_order",
                f"no forecast step{' named ' + repr(params['on']) if params.get('on') else ''} before evaluate",
                "add a predict / cross_validation / predict_insample step before it")
        for metric in params.get("metrics") or state["plan"].get("metrics") or []:
            if metric not in known:
                guess = difflib.get_close_matches(metric, known, n=1)
                add(step, "metrics", "unknown_metric", f"unknown metric {metric!r}",
                    f"did you mean {guess[0]!r}?" if guess else f"use one of {known}")
        return found
    if step["kind"] == "model" and step["qualname"] not in ctx.models and not auto.is_auto(step["qualname"]):
        add(step, None, "unknown_callable", f"{step['qualname']} is not a model class of {ctx.library}",
            "use a model class of neuralforecast.models or an Auto class of neuralforecast.auto")
        return found
    if step["symbol"] is None or step["params_of"] is None:
        names = [m["name"] for m in ctx.models.values()] + [f"NeuralForecast.{x}" for x in
                                                            ("fit", "predict", "cross_validation", "save", "load")]
        guess = difflib.get_close_matches(step["method"].rsplit(".", 1)[-1], names, n=1)
        add(step, None, "unknown_callable", f"{step['method']} is not in the registry of "
            f"{ctx.library} (release {ctx.release_id})", f"did you mean {guess[0]}?" if guess else None)
        return found
    # plan data without code: closed table of objects, known markers, paths inside the allowed roots
    refused = safety.value_problems(params)
    refused_names = {p for p, _ in refused}
    for pname, msg in refused:
        add(step, pname, "object_not_allowed", msg, "use a loss, PredictionIntervals, DistributedConfig or sampler "
            "of the closed table (fcast_assets/compat/objects.yaml), or data ({__data__: frame})")
    for pname, v in params.items():
        if isinstance(v, dict) and str(v.get("__obj__", "")).startswith("neuralforecast.losses.") and \
                v["__obj__"].rsplit(".", 1)[-1] not in ctx.loss_kinds:
            add(step, pname, "object_not_allowed", f"{v['__obj__']} is not a loss class of the registry",
                f"use one of {sorted(ctx.loss_kinds)}")
        elif isinstance(v, dict) and "__obj__" in v and pname not in refused_names:
            for rule, msg, fix in _object_args(ctx, v):
                add(step, pname, rule, f"{pname}: {msg}", fix)
    if step["short"] in ("save", "load") and "path" in params:
        problem = safety.path_problem(params["path"], state.get("roots"))
        if problem:
            add(step, "path", "path_outside_root", problem, "use a relative path (inside the execution's folder) "
                "or a folder under FCAST_HOME, or pass the root explicitly")
    if step["kind"] == "model" and auto.is_auto(step["qualname"]):
        for msg in auto.config_errors(params.get("config")):
            add(step, "config", "auto_config", msg, "describe the space as {__space__: {param: value or "
                "{choice: [...]} / {uniform: [lo, hi]} / ...}}, or null for the class default")
    # order of steps
    short = step["short"]
    before = [s for s in state["steps"] if s["ord"] < step["ord"]]
    has_nf = any(s["short"] in ("__init__", "load") for s in before)
    if short in NEEDS_NF and not has_nf:
        add(step, None, "step_order", f"{short} needs a NeuralForecast object",
            "add a NeuralForecast.__init__ (or load) step before it")
    if short in NEEDS_FIT and not any(s["short"] in ("fit", "cross_validation", "load") for s in before):
        add(step, None, "step_order", f"{short} needs fitted models", "add a fit step before it")
    if short == "__init__" and not state["models"]:
        add(step, "models", "missing_required", "NeuralForecast needs at least one model step",
            "add a model step, e.g. {model: MLP, params: {h: 2, input_size: 8}}")
    reg = ctx.params(step["params_of"])
    by_name = {p["name"]: p for p in reg}
    injected = _glob_get(rules().get("injected", {}), step["params_of"]) or []
    var_kw = next((p for p in reg if p["kind"] == "var_keyword"), None)
    # unknown names
    for name in params:
        if name in by_name and by_name[name]["kind"] not in ("var_keyword", "var_positional"):
            continue
        extra: set[str] = set()
        if var_kw is not None:
            target = _glob_get(rules().get("var_keyword", {}), step["params_of"])
            if target is None:
                continue
            if target != "strict":
                names = _signature_names(target)
                if names is None or name in names:
                    continue
                extra = names
        choices = [p["name"] for p in reg if p["kind"] not in ("var_keyword", "var_positional")] + sorted(extra)
        guess = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
        add(step, name, "unknown_argument", f"{step['qualname']} has no argument {name!r}",
            f"did you mean {guess[0]!r}?" if guess else f"remove {name!r}")
    # missing required
    for p in reg:
        if p["required"] and p["kind"] not in ("var_keyword", "var_positional") and p["name"] not in params \
                and p["name"] not in injected:
            add(step, p["name"], "missing_required", f"{p['name']} is required by {step['qualname']}",
                f"add {p['name']} to the step's params")
    for name, value in params.items():
        p = by_name.get(name)
        if p is None or p["kind"] in ("var_keyword", "var_positional"):
            continue
        types = set(p.get("type_norm") or [])
        vt = _value_types(value)
        if isinstance(value, dict) and "__data__" in value and value["__data__"] not in state["frames"]:
            add(step, name, "unknown_data", f"no frame {value['__data__']!r} in data set {state['plan']['data']}",
                f"use one of {sorted(k for k in state['frames'] if k not in ('freq',))}")
        if not (value is None and (p["has_default"] and p["default"] is None)) and vt is not None and types \
                and not (vt & types) and (types <= SIMPLE_TYPES or vt <= SIMPLE_TYPES):
            add(step, name, "type_mismatch", f"{name}={value!r} is {'/'.join(sorted(vt))}, the registry says "
                f"{' | '.join(p['type_norm'])}", f"pass {' or '.join(t for t in p['type_norm'] if t != 'None')}")
            continue
        enums = [e for e in p["enums"] if e is not None]
        if enums and isinstance(value, str) and all(isinstance(e, str) for e in enums) \
                and value not in enums and value != p.get("default"):
            guess = difflib.get_close_matches(value, enums, n=1)
            add(step, name, "enum_violation", f"{name}={value!r} is not one of {enums}",
                f"did you mean {guess[0]!r}?" if guess else f"use one of {enums}")
        for c in p["constraints"]:
            spec = c["spec"] or {}
            if c["constraint_type"] == "range":
                breach = _range_breach(value, spec)
                if breach:
                    add(step, name, "range", f"{name}={value!r}: {breach} ({c['message']})", spec.get("fix"))
            elif c["constraint_type"] == "excludes":
                other = spec["param"]
                if value is not None and params.get(other) is not None:
                    add(step, name, "excludes", f"{name} with {other}: {c['message']}", spec.get("fix"))
            elif c["constraint_type"] == "custom":
                fn = CHECKS.get(spec.get("check"))
                if fn is None:
                    continue
                for s, pname, msg in fn(ctx, state, step, name, value, spec):
                    add(s, pname, spec["check"], f"{msg} ({c['message']})" if c["message"] else msg, spec.get("fix"))
        # the compatibility matrix: this exact value recorded as an error for the model(s)
        models = [step] if step["kind"] == "model" else state["models"]
        if any((c["spec"] or {}).get("compat") == "handled" for c in p["constraints"]):
            models = []
        for m in models:
            facts = step["facts"].get(m["ord"])
            if facts is None:
                continue
            for r in ctx.compat(m["qualname"], compat_method(step), name, facts):
                if r["status"] not in ("error", "suspect") or _canon(r["value"]) != _canon(value):
                    continue
                who = f"{m['qualname'].rsplit('.', 1)[-1]} {compat_method(step)} {name}={r['value_label']}"
                where = f"(compat_result {r['result_id']}, scenario: {scenario.describe(r['facts'])})"
                if r["status"] == "error":
                    add(step, name, "compat_error", f"{who} raises {r['exception_type']}: "
                        f"{(r['message'] or '')[:200]} {where}", "choose a value the matrix recorded as ok "
                        f"(`fcast compat --method {compat_method(step)} --param {name}`)",
                        compat_result_id=r["result_id"], scenario=r["facts"])
                else:
                    add(step, name, "compat_suspect", f"runs, but wrong: {who}: {(r['message'] or '')[:200]} "
                        f"{where}", "change the value or the setup (loss, prediction_intervals) so the output "
                        "holds what is asked for", compat_result_id=r["result_id"], scenario=r["facts"])
                break
    return found


def validate_plan(engine: Engine, plan: int | str | dict[str, Any] | Plan, ctx: Context | None = None,
                  record: bool = True, miniature: bool | None = None, roots: list[str] | None = None,
                  frames: dict[str, Any] | None = None) -> Validation:
    """Check every step of a plan; write run_validation (one row per step, replacing earlier ones).

    Returns a :class:`~fcast_assets.plans.model.Validation`: the violations (a list: empty when the plan may run)
    with ``.plan``, the typed plan resolved against the registry, and ``.frames``, the data the checks used —
    what :func:`fcast_assets.plans.runner.run_plan` executes. ``frames`` injects the plan's data (e.g. the gold
    frames a retrain has already read): nothing is read then."""
    plan = plan.as_dict() if isinstance(plan, Plan) else plan if isinstance(plan, dict) else get_plan(engine, plan)
    shape = plan_shape_problems(plan)
    typed = None
    if not shape:
        try:
            typed = Plan.parse(plan)
        except PlanFormatError as e:
            try:  # a malformed data reference is judged where the data is loaded (unknown_data), as any data
                typed = Plan.parse({**plan, "data": None})
            except PlanFormatError:
                shape = [("plan", str(e))]
    if shape:
        out = [Violation(str(plan.get("name")), -1, "plan", field, "bad_plan", msg,
                         "fix the stored row or `fcast plan delete` it") for field, msg in shape]
        if record:
            _record(engine, plan, None, [dict(st, ord=st.get("ord", i)) for i, st in enumerate(plan["steps"])],
                    {}, out)
        return Validation(out)
    ctx = ctx or plan_context(engine, plan.get("library") or "neuralforecast")
    out: list[Violation] = []
    from .safety import name_problem

    problem = name_problem(plan.get("name"))
    if problem:
        out.append(Violation(str(plan.get("name")), -1, "plan", "name", "bad_plan_name", problem,
                             "rename the plan to a plain label"))
    state = _state(ctx, plan, out, frames)
    state["roots"] = roots
    if not state["steps"]:
        out.append(Violation(plan["name"], -1, "plan", None, "empty_plan", "the plan has no steps", "add steps"))
    per_step: dict[int, list[dict[str, Any]]] = {s["ord"]: [] for s in state["steps"]}
    seen = set()
    data_failed = any(v.rule == "unknown_data" and v.step == -1 for v in out)
    for step in [] if data_failed else state["steps"]:  # without its data a plan's steps cannot be judged
        for s, param, rule, msg, fix, detail in _check_step(ctx, state, step):
            key = (s["ord"], param, rule, msg)
            if key in seen:
                continue
            seen.add(key)
            v = Violation(plan["name"], s["ord"], s["qualname"], param, rule, msg, fix, detail)
            out.append(v)
            per_step[s["ord"]].append(v.row())
    from . import miniature as mini

    unsafe = set(rules().get("no_miniature_after") or [])
    if state["steps"] and mini.enabled(miniature) and not any(v.rule in unsafe for v in out):
        found = _miniature(ctx, state, roots)
        # rules that only suspect a problem (rules.yaml confirm_by_miniature) stand when the run confirms them
        advisory = set(rules().get("confirm_by_miniature") or [])
        if not found and any(v.rule in advisory for v in out):
            dropped = [v for v in out if v.rule in advisory]
            out[:] = [v for v in out if v.rule not in advisory]
            for v in dropped:
                if v.step in per_step:
                    per_step[v.step] = [d for d in per_step[v.step] if d["rule"] != v.rule]
        for v in found:
            out.append(v)
            if v.step in per_step:
                per_step[v.step].append(v.row())
    if record:
        _record(engine, plan, ctx.release_id, state["steps"], per_step, out)
    resolved = typed.model_copy(update={"steps": [type(st).model_validate(s) for st, s in
                                                  zip(typed.steps, state["steps"])]})
    return Validation(out, plan=resolved, frames=state["frames"], release_id=ctx.release_id)


def _miniature(ctx: Context, state: dict[str, Any], roots: list[str] | None) -> list[Violation]:
    """The plan's own steps on a miniature of its data (plans.miniature): the library's exception, or a
    post-condition breach ("runs, but wrong"), becomes a violation of the step it happened in."""
    from . import miniature as mini

    plan = state["plan"]
    steps = [{k: v for k, v in s.items() if k not in ("facts", "symbol")} for s in state["steps"]]
    res = mini.run(plan, steps, state["frames"], state["models"], roots=roots,
                   patterns=rules().get("wrong_result_warnings") or [])
    state["miniature"] = res
    name = plan["name"]
    by_ord = {s["ord"]: s for s in state["steps"]}
    step = by_ord.get(res.get("step"))
    label = step["label"] if step else "the plan"
    method = step["qualname"] if step else "plan"
    ord_ = step["ord"] if step else -1
    detail = {"seconds": round(res.get("seconds") or 0, 3), "rows": res.get("rows")}
    if res["status"] == "error":
        return [Violation(name, ord_, method, res.get("argument"), "miniature_error",
                          f"{label} raised {res['exception_type']}: {res['message']} (miniature run of the plan on "
                          "its own data)", "change the step's arguments: the library itself rejects them here",
                          {**detail, "exception_type": res["exception_type"]})]
    if res["status"] == "suspect":
        return [Violation(name, ord_, method, None, "miniature_suspect",
                          f"runs, but wrong: {label}: " + "; ".join(res.get("breaches") or []),
                          "change the step or the setup so the output follows from the plan and the data",
                          detail)]
    if res["status"] == "timeout":
        return [Violation(name, -1, "plan", None, "miniature_timeout", res["message"],
                          "make the plan smaller or raise FCAST_MINIATURE_TIMEOUT", detail)]
    return []


PLAN_LIBRARIES = ("neuralforecast",)


def plan_shape_problems(plan: dict[str, Any]) -> list[tuple[str, str]]:
    """(field, message) for a stored plan whose rows are not a plan at all (written by hand or by an older fcast):
    a library plans cannot run, a step without a callable name, params that are not a mapping."""
    out = []
    lib = plan.get("library") or "neuralforecast"
    if lib not in PLAN_LIBRARIES:
        out.append(("library", f"library {lib!r} is not one plans can run (known: {', '.join(PLAN_LIBRARIES)})"))
    for i, s in enumerate(plan.get("steps") or []):
        if not isinstance(s.get("method"), str) or not s.get("method"):
            out.append(("method", f"step {i} has no callable name"))
        if s.get("params") is not None and not isinstance(s.get("params"), dict):
            out.append(("params", f"step {i}: params must be a mapping of argument names, not {s.get('params')!r}"))
    return out


def _record(engine: Engine, plan: dict[str, Any], release_id: int | None, steps: list[dict[str, Any]],
            per_step: dict[int, list[dict[str, Any]]], out: list[Violation]) -> None:
    """One run_validation row per stored step (replacing earlier ones): its own violations plus the plan-level
    ones (step -1), ok when there are none."""
    if "plan_id" not in plan:
        return
    plan_level = [v.row() for v in out if v.step == -1]
    rows = [{"step_id": s["step_id"], "plan_id": plan["plan_id"], "release_id": release_id,
             "ok": not per_step.get(s["ord"]) and not plan_level,
             "violations": per_step.get(s["ord"], []) + plan_level} for s in steps if "step_id" in s]
    with engine.begin() as conn:
        conn.execute(delete(rm.RunValidation).where(rm.RunValidation.plan_id == plan["plan_id"]))
        if rows:
            conn.execute(insert(rm.RunValidation.__table__), rows)  # type: ignore[attr-defined]


def validate_plans(engine: Engine, names: list[str] | None = None, miniature: bool | None = None,
                   roots: list[str] | None = None) -> dict[str, Validation]:
    """Validate stored plans; a plan that cannot even be read as a plan is reported (bad_plan), not fatal."""
    names = names or plan_names(engine)
    ctxs: dict[str, Context] = {}
    out = {}
    for n in names:
        plan = get_plan(engine, n)
        lib = plan.get("library") or "neuralforecast"
        if lib in PLAN_LIBRARIES and lib not in ctxs:
            ctxs[lib] = plan_context(engine, lib)
        out[n] = validate_plan(engine, plan, ctxs.get(lib), miniature=miniature, roots=roots)
    return out


def violations_frame(results: dict[str, list[Violation]]):  # noqa: ANN201
    import pandas as pd

    rows = [asdict(v) for vs in results.values() for v in vs]
    cols = ["plan", "step", "method", "param", "rule", "layer", "message", "fix"]
    return pd.DataFrame(rows, columns=cols + ["detail"])[cols]
