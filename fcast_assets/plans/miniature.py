"""A miniature run of the plan itself, before the real run.

The plan's own steps run on a miniature of its own data — the same ids, columns, dtypes and ds spacing, each
series cut to the tail the steps need (never below what they need, so a series that is too short stays too
short) — with max_steps 1 (Auto: one sample, max_steps 1 in its config), in a child process after the libraries
are imported (forked, or a warm spawned worker where there is no fork: compat.process), with a timeout. Saves go to a temporary folder (a real folder that already holds files is mirrored
by a marker, so "save without overwrite" fails as it would for real); loads read the real artifact.

An exception stops the plan with the library's own exception type and message, the step and the argument it
names; a forecast whose dates, rows, interval columns or windows do not follow from the plan and the data, or a
library warning that means a wrong result (rules.yaml ``wrong_result_warnings``), stops it as "runs, but wrong".
"""

from __future__ import annotations

import os
import re
import time
import traceback
import warnings
from pathlib import Path
from typing import Any

import pandas as pd

from ..compat import scenario
from ..compat.runner import _warnings_of as warning_lines
from ..vocab import Exog

TIMEOUT_S = float(os.environ.get("FCAST_MINIATURE_TIMEOUT", "120"))
MODEL_OVERRIDES = {"max_steps": 1, "val_check_steps": 1}


def miniature_overrides(params: dict[str, Any]) -> dict[str, Any]:
    """max_steps 1 and val_check_steps 1, except a plan value below 1 (max_steps 0 / -1 is what must show)."""
    out = dict(MODEL_OVERRIDES)
    for k in out:
        v = params.get(k)
        if isinstance(v, int) and not isinstance(v, bool) and v < 1:
            out[k] = v
    return out


def exog_sensitivity(nf: Any, kw: dict[str, Any], out: pd.DataFrame, frames: dict[str, Any]) -> list[str]:
    """Models that list exogenous columns but forecast exactly the same when those columns change: predict again
    with the future values of futr_exog (futr_df), the history of hist_exog (df) and the statics (static_df)
    replaced by noise, one group at a time; an unchanged forecast means the model ignores that group."""
    import numpy as np

    rng = np.random.default_rng(7)
    found: list[str] = []
    groups = {e.value: e.list_param for e in (Exog.FUTR, Exog.HIST, Exog.STAT)}
    for g, attr in groups.items():
        models = [m for m in nf.models if list(getattr(m, attr, None) or [])]
        if not models:
            continue
        cols = sorted({c for m in models for c in getattr(m, attr)})
        call = dict(kw)
        if g == "futr":
            base = call.get("futr_df")
            if base is None or any(c not in base.columns for c in cols):
                continue
            call["futr_df"] = base.assign(**{c: rng.normal(0, 10, len(base)) for c in cols})
        elif g == "hist":
            base = call.get("df") if call.get("df") is not None else frames.get("df")
            if base is None or any(c not in base.columns for c in cols):
                continue
            call["df"] = base.assign(**{c: rng.normal(0, 10, len(base)) for c in cols})
        else:
            base = call.get("static_df") if call.get("static_df") is not None else frames.get("static_df")
            if base is None or any(c not in base.columns for c in cols):
                continue
            call["static_df"] = base.assign(**{c: rng.normal(0, 10, len(base)) for c in cols})
            if call.get("df") is None and frames.get("df") is not None:
                call["df"] = frames["df"]
        try:
            other = nf.predict(**call)
        except Exception:  # noqa: BLE001 - the sensitivity probe is a check, not the plan
            continue
        other = other.reset_index() if "unique_id" not in other.columns else other
        for m in models:
            name = str(m)
            if name in out.columns and name in other.columns and np.array_equal(
                    out[name].to_numpy(), other[name].to_numpy()):
                found.append(f"{name} forecasts the same when {', '.join(cols)} change: it ignores its {attr}")
    return found


def enabled(flag: bool | None = None) -> bool:
    if flag is not None:
        return flag
    return os.environ.get("FCAST_MINIATURE", "1").strip().lower() not in ("0", "false", "no", "off")


def miniature_frames(frames: dict[str, Any], steps: list[dict[str, Any]], models: list[dict[str, Any]]
                     ) -> dict[str, Any]:
    """The plan's frames with each series of df cut to the tail the steps need (2 x need + 16, at least 64)."""
    df = frames.get("df")
    if df is None or df.empty or not models:
        return dict(frames)
    args = [m["params"] for m in models]
    fit = next((s["params"] for s in steps if s.get("short") == "fit"), {})
    need = max([scenario.points_needed(args, s.get("short") or "", s["params"], fit) for s in steps] or [0])
    cap = max(2 * need + 16, 64)
    if int(df.groupby("unique_id").size().max()) <= cap:
        return dict(frames)
    cut = df.sort_values(["unique_id", "ds"]).groupby("unique_id", sort=False).tail(cap)
    return {**frames, "df": cut.reset_index(drop=True)}


def _argument_of(step: dict[str, Any], message: str) -> str | None:
    """The step argument an exception message names (the first one found), else None."""
    for name in step.get("params") or {}:
        if re.search(rf"\b{re.escape(str(name))}\b", message):
            return str(name)
    return None


def wrong_result_warnings(caught: list[str], patterns: list[str]) -> list[str]:
    return [w for w in caught if any(re.search(p, w) for p in patterns)]


def _execute(plan: dict[str, Any], steps: list[dict[str, Any]], frames: dict[str, Any], work_dir: Path,
             roots: list[str] | None, patterns: list[str]) -> dict[str, Any]:
    """Run the steps in this process; a JSON-able outcome (never raises)."""
    from .runner import _Exec, _Skip, _Suspect, _quiet

    _quiet()
    ex = _Exec(None, plan, None, work_dir, data=frames, miniature=True, roots=roots)
    t0 = time.perf_counter()
    for s in steps:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                ex.run(s)
                breaches: list[str] = []
            except _Skip:
                breaches = []
            except _Suspect as e:
                breaches = list(e.breaches)
            except Exception as e:  # noqa: BLE001 - the library's own exception is the finding
                text = str(e).strip()
                return {"status": "error", "step": s["ord"], "exception_type": type(e).__name__,
                        "message": " ".join(text.split())[:600], "argument": _argument_of(s, text),
                        "seconds": time.perf_counter() - t0, "traceback": traceback.format_exc(limit=4)[-1500:]}
        bad = wrong_result_warnings(warning_lines(caught), patterns)
        if breaches or bad:
            return {"status": "suspect", "step": s["ord"], "breaches": breaches + [f"warning {w}" for w in bad],
                    "seconds": time.perf_counter() - t0}
    return {"status": "ok", "seconds": time.perf_counter() - t0}


def _execute_in_child(plan: dict[str, Any], steps: list[dict[str, Any]], frames: dict[str, Any], work_dir: Path,
                      roots: list[str] | None, patterns: list[str]) -> dict[str, Any]:
    """The body of the isolated process (a forked child or a spawned worker): one torch thread, then the steps."""
    import torch

    torch.set_num_threads(1)
    return _execute(plan, steps, frames, work_dir, roots, patterns)


def run(plan: dict[str, Any], steps: list[dict[str, Any]], frames: dict[str, Any], models: list[dict[str, Any]],
        roots: list[str] | None = None, timeout: float | None = None,
        patterns: list[str] | None = None) -> dict[str, Any]:
    """The miniature run of ``steps`` (classified by the validator) in an isolated process: a forked child, or a
    spawned worker where the platform has no fork (``compat.process``). Outcome: {status: ok / error / suspect /
    timeout, step, exception_type, message, argument, breaches, seconds}."""
    from ..compat.process import call_isolated, scratch_dir

    timeout = timeout or TIMEOUT_S
    mini = miniature_frames(frames, steps, models)
    library = plan.get("library") or "neuralforecast"
    with scratch_dir("fcast-miniature-") as tmp:
        work = Path(tmp)
        t0 = time.perf_counter()
        # the library is imported once (fork: here, inherited by every child; spawn: once per warm worker)
        out, reason = call_isolated(_execute_in_child, (plan, steps, mini, work, roots, patterns or []), timeout,
                                    preload=(f"{library}.models",))
        seconds = time.perf_counter() - t0
        if reason == "timeout":
            return {"status": "timeout", "seconds": seconds,
                    "message": f"the miniature run did not finish within {timeout:.0f}s"}
        if out is None:
            return {"status": "error", "step": None, "exception_type": "WorkerCrashed",
                    "message": f"the miniature run's process {reason} without a result", "seconds": seconds}
        out["seconds"] = seconds
        out["rows"] = {"df": int(len(mini["df"])) if mini.get("df") is not None else 0,
                       "df_full": int(len(frames["df"])) if frames.get("df") is not None else 0}
        return out


def frame_info(frames: dict[str, Any]) -> dict[str, Any]:
    df = frames.get("df")
    if not isinstance(df, pd.DataFrame):
        return {}
    return {"ids": int(df["unique_id"].nunique()), "rows": int(len(df)), "spacing": scenario.spacing(df)}
