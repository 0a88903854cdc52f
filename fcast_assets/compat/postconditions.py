"""Post-conditions of a forecast frame: a call that runs is not yet right.

Each check returns breach strings; a cell with any breach is recorded as ``suspect`` with them as its message.
"""

from __future__ import annotations

from typing import Any, Iterable

import pandas as pd

ID, DS = "unique_id", "ds"
NON_FORECAST = {ID, DS, "cutoff", "y", "index"}


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def expected_grid(last: Any, h: int, freq: Any) -> list[Any]:
    if isinstance(freq, (int,)) and not isinstance(freq, bool):
        return [last + freq * k for k in range(1, h + 1)]
    return list(pd.date_range(pd.Timestamp(last), periods=h + 1, freq=freq)[1:])


def check_forecast(
    out: pd.DataFrame | None,
    *,
    last_ds: dict[str, Any],
    h: int,
    freq: Any,
    model_names: Iterable[str],
    level: Iterable[float] | None = None,
    quantiles: Iterable[float] | None = None,
) -> list[str]:
    """Breaches of a ``predict`` output: one row per id and step, dates on the grid after the last ds,
    the interval / quantile columns asked for, no NaN."""
    if out is None or not isinstance(out, pd.DataFrame):
        return [f"no DataFrame returned ({type(out).__name__})"]
    df = out.reset_index() if ID not in out.columns and out.index.name == ID else out
    breaches: list[str] = []
    if ID not in df.columns or DS not in df.columns:
        return [f"output lacks {ID}/{DS} columns: {list(df.columns)[:8]}"]
    expected_rows = len(last_ds) * h
    if len(df) != expected_rows:
        breaches.append(f"rows {len(df)} != ids {len(last_ds)} x h {h}")
    off_grid = []
    for uid, g in df.groupby(ID, sort=False):
        if str(uid) not in {str(k) for k in last_ds}:
            breaches.append(f"unexpected id {uid}")
            continue
        last = last_ds[uid] if uid in last_ds else last_ds[str(uid)]
        want = expected_grid(last, h, freq)
        got = list(g[DS])
        if [pd.Timestamp(x) if not isinstance(x, (int,)) else x for x in got] != \
                [pd.Timestamp(x) if not isinstance(x, (int,)) else x for x in want]:
            off_grid.append(str(uid))
    if off_grid:
        breaches.append(f"ds not on the {freq!r} grid after the last ds for {', '.join(off_grid[:3])}")
    breaches += check_columns(df, model_names=model_names, level=level, quantiles=quantiles)
    return breaches


def check_columns(df: pd.DataFrame, *, model_names: Iterable[str], level: Iterable[float] | None = None,
                  quantiles: Iterable[float] | None = None) -> list[str]:
    breaches: list[str] = []
    cols = [c for c in df.columns if c not in NON_FORECAST]
    missing: list[str] = []
    for m in model_names:
        if not any(c == m or c.startswith(m + "-") or c.startswith(m + "_") for c in cols):
            missing.append(m)
        for lv in level or []:
            missing += [c for c in (f"{m}-lo-{_fmt(lv)}", f"{m}-hi-{_fmt(lv)}") if c not in cols]
        for q in quantiles or []:  # model quantiles are <m>_ql<q>, conformal ones <m>-ql<q> (neuralforecast)
            if f"{m}_ql{q}" not in cols and f"{m}-ql{q}" not in cols:
                missing.append(f"{m}_ql{q}")
    if missing:
        breaches.append(f"requested columns missing: {', '.join(missing[:6])}")
    nan_cols = [c for c in cols if pd.api.types.is_numeric_dtype(df[c]) and df[c].isna().any()]
    if nan_cols:
        breaches.append(f"NaN forecasts in {', '.join(nan_cols[:4])}")
    return breaches


def check_cross_validation(out: pd.DataFrame | None, *, n_ids: int, h: int, n_windows: int | None,
                           model_names: Iterable[str], level=None, quantiles=None) -> list[str]:
    if out is None or not isinstance(out, pd.DataFrame):
        return [f"no DataFrame returned ({type(out).__name__})"]
    breaches: list[str] = []
    if "cutoff" not in out.columns:
        breaches.append("no cutoff column")
    elif n_windows:
        windows = out["cutoff"].nunique()
        if windows != n_windows:
            breaches.append(f"{windows} cutoffs != n_windows {n_windows}")
        if len(out) != n_ids * h * windows:
            breaches.append(f"rows {len(out)} != ids {n_ids} x h {h} x windows {windows}")
        if (out["ds"] <= out["cutoff"]).any():
            breaches.append("ds not after its cutoff")
    return breaches + check_columns(out, model_names=model_names, level=level, quantiles=quantiles)


def check_fitted(out: pd.DataFrame | None, *, n_rows: int, model_names: Iterable[str],
                 level: Iterable[float] | None = None) -> list[str]:
    """Breaches of in-sample fitted values (statsforecast ``forecast_fitted_values``): one row per input row, the
    model and interval columns asked for, not all NaN (the first steps of a lag-based model are NaN by nature)."""
    if out is None or not isinstance(out, pd.DataFrame):
        return [f"no DataFrame returned ({type(out).__name__})"]
    df = out.reset_index() if ID not in out.columns and out.index.name == ID else out
    breaches: list[str] = []
    if len(df) != n_rows:
        breaches.append(f"fitted rows {len(df)} != input rows {n_rows}")
    cols = [c for c in df.columns if c not in NON_FORECAST]
    missing: list[str] = []
    for m in model_names:
        if m not in cols:
            missing.append(m)
        for lv in level or []:
            missing += [c for c in (f"{m}-lo-{_fmt(lv)}", f"{m}-hi-{_fmt(lv)}") if c not in cols]
    if missing:
        breaches.append(f"requested columns missing: {', '.join(missing[:6])}")
    all_nan = [c for c in cols if pd.api.types.is_numeric_dtype(df[c]) and len(df) and df[c].isna().all()]
    if all_nan:
        breaches.append(f"fitted values all NaN in {', '.join(all_nan[:4])}")
    return breaches
