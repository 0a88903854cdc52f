"""Evaluation of a forecast step with ``utilsforecast.evaluation.evaluate``: the plan's metrics, per series and
overall, per cross-validation window. Interval columns (``M-lo-80``/``M-hi-80``) feed the probabilistic metrics;
symmetric quantile columns (``M-ql0.1``/``M-ql0.9`` of conformal intervals, ``M_ql0.1``/``M_ql0.9`` of quantile
losses) are read as the equivalent level."""

from __future__ import annotations

import re
from functools import partial
from typing import Callable

import pandas as pd
from utilsforecast import losses
from utilsforecast.evaluation import evaluate

KEYS = {"unique_id", "ds", "cutoff", "y"}
_LEVEL = re.compile(r"^(?P<m>.+)-(?P<side>lo|hi)-(?P<lv>\d+(\.\d+)?)$")
_QUANT = re.compile(r"^(?P<m>.+?)(?P<sep>[-_])ql(?P<q>0?\.\d+|[01](\.0+)?)$")  # conformal -ql, model _ql


def metric_fns(names: list[str]) -> list[Callable]:
    out = []
    for n in names:
        fn = getattr(losses, n)
        if n in ("mase", "msse", "rmsse"):
            fn = partial(fn, seasonality=1)
            fn.__name__ = n  # type: ignore[attr-defined]
        out.append(fn)
    return out


def _split_columns(fc: pd.DataFrame) -> tuple[pd.DataFrame, list[str], list[int | float]]:
    """Point model columns and levels; quantile pairs q / 1-q renamed to lo/hi of level 100 * (1 - 2q)."""
    fc = fc.copy()
    rename = {}
    for c in fc.columns:
        m = _QUANT.match(str(c))
        if m:
            q = float(m["q"])
            upper = f"{m['m']}{m['sep']}ql{round(1 - q, 10):g}"
            if q < 0.5 and upper in fc.columns:
                lv = round(100 * (1 - 2 * q), 6)
                lv = int(lv) if float(lv).is_integer() else lv
                rename[c] = f"{m['m']}-lo-{lv}"
                rename[upper] = f"{m['m']}-hi-{lv}"
    fc = fc.rename(columns=rename)
    levels: set = set()
    points = []
    for c in fc.columns:
        if c in KEYS:
            continue
        m = _LEVEL.match(str(c))
        if m:
            lv = float(m["lv"])
            levels.add(int(lv) if lv.is_integer() else lv)
        elif not _QUANT.match(str(c)) and pd.api.types.is_numeric_dtype(fc[c]):
            points.append(c)
    # a level counts only when every point model has both sides
    levels = {lv for lv in levels if all(f"{p}-lo-{lv}" in fc and f"{p}-hi-{lv}" in fc for p in points)}
    keep = ["unique_id", "ds", "y", *points] + [f"{p}-{s}-{lv}" for p in points for lv in sorted(levels)
                                                for s in ("lo", "hi")]
    return fc[[c for c in keep if c in fc]], points, sorted(levels)


def _long(ev: pd.DataFrame, points: list[str]) -> pd.DataFrame:
    ev = ev.melt(id_vars=["unique_id", "metric"], value_vars=points, var_name="model", value_name="value")
    return ev


def evaluate_forecast(fc: pd.DataFrame, metrics: list[str], train_df: pd.DataFrame,
                      actuals: pd.DataFrame | None = None, probabilistic: tuple[str, ...] = ()) -> pd.DataFrame:
    """Long frame: metric, model, unique_id (None = overall mean), window (None = all windows pooled), value."""
    if "y" not in fc.columns:
        if actuals is None:
            raise ValueError("the forecast has no y column and no actuals were given")
        fc = fc.merge(actuals[["unique_id", "ds", "y"]], on=["unique_id", "ds"], how="inner")
    if fc.empty:
        raise ValueError("no forecast rows overlap the actuals")
    windows = [(None, fc)]
    if "cutoff" in fc.columns:
        windows = [(i, part) for i, (_, part) in enumerate(fc.groupby("cutoff", sort=True))]
    frames = []
    for w, part in windows:
        part, points, levels = _split_columns(part)
        names = [m for m in metrics if m not in probabilistic or levels]
        if not names or not points:
            continue
        ev = evaluate(part, metric_fns(names), models=points, train_df=train_df[["unique_id", "ds", "y"]],
                      level=levels or None)
        long = _long(ev, points).assign(window=w)
        frames.append(long)
    if not frames:
        return pd.DataFrame(columns=["metric", "model", "unique_id", "window", "value"])
    per = pd.concat(frames, ignore_index=True)
    out = [per]
    if "cutoff" in fc.columns:  # all windows: the rows of every window pooled per series (RMSE over all errors)
        part, points, levels = _split_columns(fc)
        names = [m for m in metrics if m not in probabilistic or levels]
        if names and points:
            ev = evaluate(part, metric_fns(names), models=points, train_df=train_df[["unique_id", "ds", "y"]],
                          level=levels or None)
            out.append(_long(ev, points).assign(window=None))
    allw = pd.concat(out, ignore_index=True)
    overall = allw.groupby(["metric", "model", "window"], as_index=False, dropna=False)["value"].mean()
    res = pd.concat([allw, overall.assign(unique_id=None)], ignore_index=True)
    res["window"] = res["window"].astype(object).where(res["window"].notna(), None)
    return res[["metric", "model", "unique_id", "window", "value"]]
