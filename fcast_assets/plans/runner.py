"""Runner: executes validated plans step by step against the installed library.

Per step it records run_result (status, times, summary), run_resource (wall, CPU, peak RSS, IO, peak VRAM, device),
run_error (exception type, message, traceback), run_artifact (model dir, prediction Parquet) and, for evaluate
steps, run_metric. Each step's rows are committed when the step ends, so a failed step loses nothing of the others;
steps that need what a failed step should have produced are recorded as skipped.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import math
import os
import traceback
import warnings
from pathlib import Path
from typing import Any, Callable

import pandas as pd
from sqlalchemy import Engine, insert, select, update

from .. import config
from ..compat.spec import QUIET_TRAINER, decode
from ..compat.process import owner, owner_gone
from ..db import run_models as rm
from ..db.models import utcnow
from . import data as plan_data
from .baselines import add_baselines
from .evaluate import evaluate_forecast
from .loader import get_plan, plan_names
from .miniature import (MODEL_OVERRIDES, exog_sensitivity, miniature_overrides, warning_lines,
                        wrong_result_warnings)
from .resources import measure
from .safety import check_name, resolve_in
from .model import Plan, PlanRun
from .validator import PLAN_LIBRARIES, Context, occupied, plan_context, rules, validate_plan

log = logging.getLogger(__name__)
FATAL = {"model", "__init__", "fit", "load"}  # later steps need what these produce
SPLIT = {"predict": "test", "cross_validation": "cv", "predict_insample": "insample"}


class PlanNotValidError(RuntimeError):
    def __init__(self, plan: str, violations: list[Any]):
        super().__init__(f"plan {plan!r} failed validation: " + "; ".join(
            f"step {v.step} {v.param or ''}: {v.rule} ({v.layer}): {v.message}" for v in violations))
        self.violations = violations


def _quiet() -> None:
    try:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
    except ImportError:  # pragma: no cover
        pass
    for name in ("pytorch_lightning", "lightning_fabric", "lightning", "lightning.pytorch", "neuralforecast"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="lightning")
    warnings.filterwarnings("ignore", module="pytorch_lightning")


def _trainer_defaults() -> dict[str, Any]:
    try:
        import torch

        if torch.cuda.is_available():
            return {k: v for k, v in QUIET_TRAINER.items() if k not in ("accelerator", "devices")}
    except ImportError:  # pragma: no cover
        pass
    return dict(QUIET_TRAINER)


def _import(qualname: str) -> Any:
    mod, _, attr = qualname.rpartition(".")
    return getattr(importlib.import_module(mod), attr)


def _frame_summary(df: pd.DataFrame) -> dict[str, Any]:
    return {"rows": int(len(df)), "columns": [str(c) for c in df.columns]}


class _Exec:
    """Executes classified plan steps; ``miniature`` = the validator's miniature run (max_steps 1, one Auto
    sample, saves mirrored into the temporary work folder)."""

    def __init__(self, engine: Engine | None, plan: dict[str, Any], ctx: Context | None, work_dir: Path,
                 data: dict[str, Any] | None = None, miniature: bool = False, roots: list[str] | None = None,
                 baselines: pd.DataFrame | None = None):
        self.engine, self.plan, self.ctx, self.work_dir = engine, plan, ctx, work_dir
        self.data = data if data is not None else plan_data.load(plan.get("data"), engine=engine, plan=plan)
        self.miniature, self.roots, self.baselines = miniature, roots, baselines
        self.mirrored: dict[str, str] = {}  # absolute path of the plan -> its folder in the miniature run
        self.models: list[Any] = []
        self.nf = None
        self.forecasts: dict[int, tuple[pd.DataFrame, str, str]] = {}  # ord -> (frame, split, step name)
        self.artifacts: list[dict[str, Any]] = []
        self.metrics: list[dict[str, Any]] = []

    def args(self, params: dict[str, Any]) -> dict[str, Any]:
        return {k: decode(v, self.data) for k, v in (params or {}).items()}

    def path(self, raw: str, saving: bool) -> str:
        """A save / load path inside the allowed roots (safety); in the miniature run an absolute save goes to the
        temporary folder (mirroring a real folder that already holds files, so overwrite rules hold)."""
        real = resolve_in(raw, self.work_dir, self.roots)
        if not self.miniature or not os.path.isabs(raw):
            return real
        if saving or raw in self.mirrored:
            if raw not in self.mirrored:
                mirror = self.work_dir / "mirror" / hashlib.sha1(raw.encode()).hexdigest()[:12]
                if occupied(real):
                    mirror.mkdir(parents=True, exist_ok=True)
                    (mirror / "existing.txt").write_text("mirrors a folder that already holds files", encoding="utf-8")
                self.mirrored[raw] = str(mirror)
            return self.mirrored[raw]
        return real  # a load of a real artifact only reads it

    def artifact(self, kind: str, uri: str) -> None:
        self.artifacts.append({"kind": kind, "uri": uri})

    def run(self, step: dict[str, Any]) -> dict[str, Any]:
        kind, short, params = step["kind"], step["short"], step["params"]
        if kind == "model":
            from .auto import auto_class, build_auto_kwargs, is_auto

            if is_auto(step["qualname"]):  # trainer settings go into the config, not the constructor
                n = params.get("num_samples")
                kw = build_auto_kwargs(step["qualname"], params, lambda v: decode(v, self.data),
                                       _trainer_defaults(), forced=dict(MODEL_OVERRIDES) if self.miniature else None,
                                       num_samples=(min(n, 1) if isinstance(n, int) else 1) if self.miniature
                                       else None)
                model = auto_class(step["qualname"])(**kw)
            else:
                if self.miniature:  # one training step (a plan's own max_steps below 1 stays: it is the finding)
                    params = {**params, **miniature_overrides(params)}
                kw = {**_trainer_defaults(), **self.args(params)}
                model = _import(step["qualname"])(**kw)
            self.models.append(model)
            return {"model": repr(model), "kwargs": sorted(params)}
        if kind == "evaluate":
            return self.evaluate(step)
        from neuralforecast import NeuralForecast

        kw = self.args(params)
        if short == "__init__":
            self.nf = NeuralForecast(models=self.models, **kw)
            return {"models": [repr(m) for m in self.models]}
        if short == "load":
            path = self.path(kw.pop("path"), saving=False)
            self.nf = NeuralForecast.load(path=path, **kw)
            self.models = list(self.nf.models)
            return {"path": path, "models": [repr(m) for m in self.models]}
        if self.nf is None:
            raise RuntimeError("no NeuralForecast object: a NeuralForecast.__init__ or load step must come first")
        if short == "fit":
            kw.setdefault("df", self.data["df"])
            self.nf.fit(**kw)
            return {"rows": int(len(kw["df"]))}
        if short == "save":
            path = self.path(kw.pop("path"), saving=True)
            self.nf.save(path=path, **kw)
            self.artifact("model_dir", path)
            return {"path": path, "files": sorted(os.listdir(path))}
        if short in SPLIT:
            if short == "cross_validation":
                kw.setdefault("df", self.data["df"])
            out = getattr(self.nf, short)(**kw)
            out = out.reset_index() if "unique_id" not in out.columns else out
            if self.miniature and short == "predict":
                ignored = exog_sensitivity(self.nf, kw, out, self.data)
                if ignored:
                    raise _Suspect(ignored, _frame_summary(out))
            path = self.work_dir / f"step{step['ord']:02d}_{short}.parquet"
            out.to_parquet(path, index=False)
            self.artifact({"predict": "predictions", "cross_validation": "cv_predictions",
                           "predict_insample": "insample"}[short], str(path))
            self.forecasts[step["ord"]] = (out, SPLIT[short], step.get("name") or short)
            summary = _frame_summary(out)
            breaches = self.postconditions(short, kw, out)
            if breaches:
                raise _Suspect(breaches, summary)
            return summary
        raise ValueError(f"the runner cannot execute {step['qualname']}")

    def postconditions(self, short: str, kw: dict[str, Any], out: pd.DataFrame) -> list[str]:
        """Breaches of the forecast's post-conditions (one row per id and step on the freq grid after the last ds,
        the interval / quantile columns asked for, no NaN); predict_insample is not checked."""
        from ..compat.postconditions import check_cross_validation, check_forecast

        names = [str(m) for m in self.nf.models]
        h = kw.get("h") or max(int(m.h) for m in self.nf.models)
        off = self.spacing_breach()
        if off:
            return [off]
        level, quantiles = kw.get("level"), kw.get("quantiles")
        if short == "predict":
            if kw.get("df") is not None:  # forecasting from a new history
                last = kw["df"].groupby("unique_id")["ds"].max().to_dict()
            elif getattr(self.nf, "uids", None) is not None and getattr(self.nf, "last_dates", None) is not None:
                last = dict(zip(list(self.nf.uids), list(self.nf.last_dates)))  # what fit (or load) stored
            else:
                last = self.data["df"].groupby("unique_id")["ds"].max().to_dict()
            return check_forecast(out, last_ds=last, h=h, freq=self.nf.freq, model_names=names, level=level,
                                  quantiles=quantiles)
        if short == "cross_validation":
            return check_cross_validation(out, n_ids=kw["df"]["unique_id"].nunique(), h=h,
                                          n_windows=kw.get("n_windows", 1), model_names=names, level=level,
                                          quantiles=quantiles)
        return []

    def spacing_breach(self) -> str | None:
        """freq against the spacing of ds inferred from the data (pandas offsets): a forecast on another grid than
        the data's runs, but is wrong."""
        from ..compat.scenario import freq_fits, spacing

        data_spacing = spacing(self.data.get("df"))
        freq = getattr(self.nf, "freq", None)
        if freq_fits(freq, data_spacing) is False:
            return (f"freq={freq!r} does not match the spacing of ds in the data ({data_spacing!r}): the forecast "
                    "dates fall off the data's grid")
        return None

    def evaluate(self, step: dict[str, Any]) -> dict[str, Any]:
        params = step["params"]
        names = params.get("metrics") or self.plan.get("metrics") or ["mae", "rmse"]
        on = params.get("on")
        cands = {o: f for o, f in self.forecasts.items() if o < step["ord"] and (on is None or f[2] == on)}
        if not cands:
            raise _Skip(f"no forecast to evaluate{' named ' + on if on else ''} (did the forecast step fail?)")
        fc, split, _ = cands[max(cands)]
        if params.get("baselines"):
            fc = add_baselines(fc, self.data, params["baselines"], given=self.baselines)
            path = self.work_dir / f"step{step['ord']:02d}_with_baselines.parquet"
            fc.to_parquet(path, index=False)
            self.artifact("forecasts_with_baselines", str(path))
        ev = evaluate_forecast(fc, names, self.data["df"], actuals=self.data["test"],
                               probabilistic=tuple(rules().get("probabilistic_metrics", [])))
        for r in ev.itertuples(index=False):
            v = None if r.value is None or (isinstance(r.value, float) and math.isnan(r.value)) else float(r.value)
            self.metrics.append({"metric": r.metric, "model": r.model, "unique_id": r.unique_id,
                                 "window": None if r.window is None else int(r.window), "split": split, "value": v})
        overall = ev[ev["unique_id"].isna() & ev["window"].isna()]
        return {"split": split, "metrics": {f"{r.model}.{r.metric}": r.value for r in overall.itertuples()}}


class _Skip(Exception):
    pass


class _Suspect(Exception):
    """The step ran, but its output breaks a post-condition: recorded as ``suspect`` with the breaches."""

    def __init__(self, breaches: list[str], summary: dict[str, Any]):
        super().__init__("; ".join(breaches))
        self.breaches, self.summary = breaches, summary


def run_plan(engine: Engine, plan: int | str | Plan, work_root: str | Path | None = None,
             ctx: Context | None = None, progress: Callable[[int, int, str], None] | None = None,
             roots: list[str] | None = None, miniature: bool | None = None,
             frames: dict[str, Any] | None = None, baselines: pd.DataFrame | None = None) -> PlanRun:
    """Validate, then execute one stored plan (its name, id, or a :class:`Plan` read back with its plan_id).
    Raises PlanNotValidError (nothing executed) when validation fails; otherwise executes the plan as the
    validator resolved it, on the frames the validation used.

    ``frames`` injects the plan's data (``plans.data`` frames, e.g. what ``load_gold`` returned to a retrain that
    has read the gold tables already): neither the validation nor the run reads it again. ``baselines`` injects
    baseline forecasts for the evaluate steps (unique_id, ds, [cutoff], one column per baseline: those columns
    are used instead of being computed). ``progress(done, total, current step)`` is called before each step and
    once at the end (optional)."""
    reap_dead_executions(engine)
    if isinstance(plan, Plan):
        if plan.plan_id is None:
            raise ValueError(f"plan {plan.name!r} is not stored: store it first (loader.store_plans)")
        plan = plan.plan_id
    p = get_plan(engine, plan)
    lib = p.get("library") or "neuralforecast"
    ctx = ctx or (plan_context(engine, lib) if lib in PLAN_LIBRARIES else None)  # None: validation reports the plan
    verdict = validate_plan(engine, p, ctx, miniature=miniature, roots=roots, frames=frames)
    if verdict or verdict.plan is None:
        raise PlanNotValidError(p["name"], list(verdict))
    resolved = verdict.plan
    _quiet()
    importlib.import_module(f"{lib}.models")  # import time is not step time
    runs = Path(work_root or config.data_home() / "runs") / check_name(p["name"])
    with engine.begin() as conn:  # the row becomes visible with its work folder and execution.json (pid, host)
        eid = conn.execute(insert(rm.RunExecution).values(plan_id=p["plan_id"], release_id=ctx.release_id,
                                                          status="running")).inserted_primary_key[0]
        work_dir = runs / f"exec{eid}"
        work_dir.mkdir(parents=True, exist_ok=True)
        _write_owner(work_dir, eid)
        conn.execute(update(rm.RunExecution).where(rm.RunExecution.execution_id == eid)
                     .values(work_dir=str(work_dir)))
    ex = _Exec(engine, resolved.as_dict(), ctx, work_dir, data=verdict.frames, roots=roots, baselines=baselines)
    steps = [s.as_dict() for s in resolved.steps]  # classified once, by the validation
    statuses: dict[int, str] = {}
    blocked = None
    for i, s in enumerate(steps):
        if progress:
            progress(i, len(steps), s.get("name") or s["short"])
        started = utcnow()
        ex.artifacts, ex.metrics = [], []
        err = None
        summary: dict[str, Any] = {}
        if blocked is not None:
            status, summary = "skipped", {"reason": f"step {blocked} failed"}
            res = None
        else:
            with measure() as res, warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    summary = ex.run(s) or {}
                    status = "success"
                except _Skip as e:
                    status, summary = "skipped", {"reason": str(e)}
                except _Suspect as e:
                    status, summary = "suspect", {**e.summary, "breaches": e.breaches}
                except Exception as e:  # noqa: BLE001 - recorded, the plan goes on
                    status = "failed"
                    err = {"exception_type": type(e).__name__, "message": str(e)[:4000],
                           "traceback": traceback.format_exc()}
                    summary = {"error": f"{type(e).__name__}: {str(e)[:300]}"}
            seen = warning_lines(caught)
            if seen:  # what the library warned about, kept; a warning that means a wrong result is a finding
                summary["warnings"] = seen
                bad = wrong_result_warnings(seen, rules().get("wrong_result_warnings") or [])
                if bad and status == "success":
                    status, summary["breaches"] = "suspect", [f"warning {w}" for w in bad]
            if status == "failed" and s["short"] in FATAL:
                blocked = s["ord"]
        statuses[s["ord"]] = status
        with engine.begin() as conn:
            conn.execute(insert(rm.RunResult).values(step_id=s["step_id"], execution_id=eid, status=status,
                                                     started_at=started, ended_at=utcnow(),
                                                     summary=_jsonable(summary)))
            if res:
                conn.execute(insert(rm.RunResource).values(step_id=s["step_id"], execution_id=eid, **res))
            if err:
                conn.execute(insert(rm.RunError).values(step_id=s["step_id"], execution_id=eid, **err))
            for a in ex.artifacts:
                conn.execute(insert(rm.RunArtifact).values(plan_id=p["plan_id"], step_id=s["step_id"],
                                                           execution_id=eid, **a))
            if ex.metrics:
                conn.execute(insert(rm.RunMetric.__table__),  # type: ignore[attr-defined]
                             [{"step_id": s["step_id"], "execution_id": eid, **m} for m in ex.metrics])
    if progress:
        progress(len(steps), len(steps), "done")
    vals = set(statuses.values())
    final = "success" if vals == {"success"} else "suspect" if vals == {"success", "suspect"} else "failed"
    with engine.begin() as conn:
        conn.execute(update(rm.RunExecution).where(rm.RunExecution.execution_id == eid)
                     .values(status=final, ended_at=utcnow(), work_dir=str(work_dir)))
    return PlanRun(plan=p["name"], execution_id=eid, status=final, steps=statuses, work_dir=str(work_dir))


EXECUTION_FILE = "execution.json"


def _write_owner(work_dir: Path, eid: int) -> None:
    """execution.json in the work folder: which process (pid, its create_time, host) runs the execution."""
    info = {"execution_id": int(eid), **owner()}
    tmp = work_dir / f"{EXECUTION_FILE}.tmp"
    tmp.write_text(json.dumps(info), encoding="utf-8")
    os.replace(tmp, work_dir / EXECUTION_FILE)


def process_gone(info: dict[str, Any]) -> bool:
    """True when the process recorded in ``info`` (execution.json) ran on this host and no longer exists (or its
    pid now belongs to another process, or it is a zombie); False when alive or not judgeable (another host)."""
    return owner_gone(info)


def reap_dead_executions(engine: Engine) -> list[dict[str, Any]]:
    """Mark ``failed`` every ``running`` execution whose process (execution.json in its work folder) is gone from
    this host: a run_error row on the step it died in ("process <pid> is gone") and ``failed_reason`` in
    execution.json. Executions of other hosts, or without execution.json, are left as they are."""
    with engine.connect() as conn:
        running = conn.execute(select(rm.RunExecution.execution_id, rm.RunExecution.plan_id,
                                      rm.RunExecution.work_dir).where(rm.RunExecution.status == "running")).all()
    out = []
    for r in running:
        f = Path(r.work_dir) / EXECUTION_FILE if r.work_dir else None
        try:
            info = json.loads(f.read_text(encoding="utf-8")) if f is not None and f.is_file() else None
        except (OSError, ValueError):
            info = None
        if not info or not process_gone(info):
            continue
        reason = (f"process {info['pid']} is gone (host {info['host']}): the execution was killed or crashed "
                  "before it ended; marked failed by the next run")
        with engine.begin() as conn:
            n = conn.execute(update(rm.RunExecution).where(rm.RunExecution.execution_id == r.execution_id,
                                                           rm.RunExecution.status == "running")
                             .values(status="failed", ended_at=utcnow())).rowcount
            if not n:
                continue
            done = set(conn.execute(select(rm.RunResult.step_id)
                                    .where(rm.RunResult.execution_id == r.execution_id)).scalars())
            steps = list(conn.execute(select(rm.RunStep.step_id).where(rm.RunStep.plan_id == r.plan_id)
                                      .order_by(rm.RunStep.ord)).scalars())
            step = next((sid for sid in steps if sid not in done), steps[-1] if steps else None)
            if step is not None:
                conn.execute(insert(rm.RunError).values(step_id=step, execution_id=r.execution_id,
                                                        exception_type="ProcessGone", message=reason))
        try:
            f.write_text(json.dumps({**info, "failed_reason": reason}), encoding="utf-8")  # type: ignore[union-attr]
        except OSError:  # pragma: no cover
            pass
        log.warning("execution %s: %s", r.execution_id, reason)
        out.append({"execution_id": r.execution_id, "pid": info["pid"], "reason": reason})
    return out


def _jsonable(v: Any) -> Any:
    return json.loads(json.dumps(v, default=lambda o: o.item() if hasattr(o, "item") else str(o)))


def run_plans(engine: Engine, names: list[str] | None = None, enabled_only: bool = True,
              work_root: str | Path | None = None, roots: list[str] | None = None,
              miniature: bool | None = None) -> list[PlanRun]:
    """Execute plans (default: every enabled one); a plan that fails validation is reported, not executed."""
    names = names or plan_names(engine, enabled_only=enabled_only)
    ctxs: dict[str, Context] = {}
    out = []
    for n in names:
        p = get_plan(engine, n)
        lib = p.get("library") or "neuralforecast"
        if lib in PLAN_LIBRARIES and lib not in ctxs:
            ctxs[lib] = plan_context(engine, lib)
        ctx = ctxs.get(lib)  # a plan of another library is reported by its validation (bad_plan), not fatal
        try:
            out.append(run_plan(engine, n, work_root=work_root, ctx=ctx, roots=roots, miniature=miniature))
        except PlanNotValidError as e:
            out.append(PlanRun(plan=n, status="invalid", violations=[
                f"step {v.step} {v.param or ''}: {v.rule}: {v.message}" for v in e.violations]))
    return out
