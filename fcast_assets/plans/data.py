"""Data sets that plans reference by name or describe as data — never as code.

``data:`` in a plan is one of
- a name: ``synthetic``, ``synthetic_futr``, ``synthetic_hist``, ``synthetic_exog`` (tiny synthetic frames);
- ``gold:<game>:<selector>``: a game's gold feature tables (see :mod:`fcast_assets.plans.gold_data`);
- a mapping ``{synthetic: {...}}``: synthetic frames shaped as described (keys in ``SYNTHETIC_KEYS``):
  ``n_series``, ``n_points`` (or per-series ``lengths``), ``ds`` (``datetime`` / ``int``), ``freq`` (a pandas
  alias such as D, B, MS, W-SUN, h for datetime ds; an integer step for int ds), ``start``, ``horizon`` (rows per
  series in futr_df / test), ``exog`` (columns kept in df: ``fut_x``, ``hist_x``);
- a mapping ``{files: {df: PATH, futr_df: PATH, static_df: PATH, test: PATH}}``: the user's own Parquet / CSV
  files, read as data from inside the allowed roots (:mod:`fcast_assets.plans.safety`).

Frames a step can name (``{__data__: NAME}``): df, test, static_df, futr_df, futr_df_short (one row per series),
futr_df_with_y (futr_df carrying the target, a common mistake), futr_df_nulls (every other fut_x missing).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..compat.synthetic import series, split
from .gold_data import load_gold, plan_inputs
from .model import DataRef, Plan, PlanFormatError

N_SERIES = 2
N_POINTS = 64
HORIZON = 4  # rows per series in futr_df and in the held-out test frame

# name -> exogenous columns kept in df
DATASETS: dict[str, tuple[str, ...]] = {
    "synthetic": (),
    "synthetic_futr": ("fut_x",),
    "synthetic_hist": ("hist_x",),
    "synthetic_exog": ("fut_x", "hist_x"),
}
SYNTHETIC_KEYS = {"n_series", "n_points", "lengths", "ds", "freq", "start", "horizon", "exog"}
EXOG_COLUMNS = ("fut_x", "hist_x")
FRAME_FILES = ("df", "futr_df", "static_df", "test")
MAX_SYNTHETIC_ROWS = 200_000


class PlanDataError(ValueError):
    """A plan's data set is unknown or malformed (one line, names the rule)."""


def synthetic(exog: tuple[str, ...] = (), n_series: int = N_SERIES, n_points: int = N_POINTS,
              horizon: int = HORIZON, ds: str = "datetime", freq: Any = "D", start: str = "2020-01-01",
              lengths: list[int] | None = None) -> dict[str, Any]:
    lengths = list(lengths) if lengths else [n_points] * n_series
    train, test = split(series(lengths, horizon, ds=ds, freq=freq, start=start))  # the probes' formula
    futr_df = test[["unique_id", "ds", "fut_x"]].reset_index(drop=True)
    ids = [f"s{i + 1}" for i in range(len(lengths))]
    return {
        "df": train[["unique_id", "ds", "y", *exog]].reset_index(drop=True),
        "test": test[["unique_id", "ds", "y"]].reset_index(drop=True),
        "static_df": pd.DataFrame({"unique_id": ids, "stat_x": np.linspace(0.5, 1.5, len(ids))}),
        "futr_df": futr_df,
        "futr_df_short": futr_df.groupby("unique_id").head(1).reset_index(drop=True),
        "futr_df_with_y": test[["unique_id", "ds", "fut_x", "y"]].reset_index(drop=True),
        "futr_df_nulls": futr_df.assign(fut_x=futr_df["fut_x"].where(futr_df.index % 2 == 0)),
        "freq": int(freq) if ds == "int" else freq,
    }


def _int(spec: dict[str, Any], key: str, default: int, lo: int, hi: int) -> int:
    v = spec.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise PlanDataError(f"data.synthetic.{key} must be an integer in [{lo}, {hi}], not {v!r}")
    return v


def synthetic_from_spec(spec: Any) -> dict[str, Any]:
    """Frames for ``{synthetic: {...}}`` (every key checked; nothing is evaluated)."""
    if spec is None:
        spec = {}
    if not isinstance(spec, dict):
        raise PlanDataError(f"data.synthetic must be a mapping of {sorted(SYNTHETIC_KEYS)}, not {spec!r}")
    unknown = sorted(set(spec) - SYNTHETIC_KEYS)
    if unknown:
        raise PlanDataError(f"data.synthetic has unknown keys {unknown}: known {sorted(SYNTHETIC_KEYS)}")
    ds = spec.get("ds", "datetime")
    if ds not in ("datetime", "int"):
        raise PlanDataError(f"data.synthetic.ds is 'datetime' or 'int', not {ds!r}")
    n_series = _int(spec, "n_series", N_SERIES, 1, 1000)
    n_points = _int(spec, "n_points", N_POINTS, 1, 100_000)
    horizon = _int(spec, "horizon", HORIZON, 1, 1000)
    lengths = spec.get("lengths")
    if lengths is not None:
        if not isinstance(lengths, list) or not lengths or not all(
                isinstance(n, int) and not isinstance(n, bool) and 1 <= n <= 100_000 for n in lengths):
            raise PlanDataError(f"data.synthetic.lengths is a list of positive integers, not {lengths!r}")
    total = sum(lengths) if lengths else n_series * n_points
    if total + horizon * (len(lengths) if lengths else n_series) > MAX_SYNTHETIC_ROWS:
        raise PlanDataError(f"data.synthetic asks for more than {MAX_SYNTHETIC_ROWS} rows")
    freq = spec.get("freq", 1 if ds == "int" else "D")
    if ds == "int":
        if isinstance(freq, bool) or not isinstance(freq, int) or freq < 1:
            raise PlanDataError(f"data.synthetic.freq with int ds is a positive integer step, not {freq!r}")
    else:
        try:
            pd.tseries.frequencies.to_offset(freq)
        except (ValueError, TypeError):
            raise PlanDataError(f"data.synthetic.freq {freq!r} is not a pandas frequency alias") from None
    start = spec.get("start", "2020-01-01")
    try:
        pd.Timestamp(start)
    except (ValueError, TypeError):
        raise PlanDataError(f"data.synthetic.start {start!r} is not a date") from None
    exog = spec.get("exog") or []
    if not isinstance(exog, list) or any(c not in EXOG_COLUMNS for c in exog):
        raise PlanDataError(f"data.synthetic.exog lists columns of {list(EXOG_COLUMNS)}, not {exog!r}")
    return synthetic(tuple(exog), n_series=n_series, n_points=n_points, horizon=horizon, ds=ds, freq=freq,
                     start=str(start), lengths=lengths)


def describe(name: Any) -> str:
    """A short label of a data spec for messages."""
    if isinstance(name, dict):
        return "{" + ", ".join(f"{k}: …" for k in name) + "}"
    return str(name)


def load(name: Any, engine: Any = None, plan: Any = None) -> dict[str, Any]:
    """A data set by name or spec (or a :class:`DataRef`); ``gold:<game>:<selector>`` reads the game's gold tables
    (needs the engine) with the exogenous columns the plan's models list (:mod:`fcast_assets.plans.gold_data`)."""
    try:
        ref = DataRef.parse(name)
    except PlanFormatError as e:
        raise PlanDataError(str(e)) from None
    if isinstance(plan, Plan):
        plan = plan.as_dict()
    if ref.kind == "synthetic":
        return synthetic_from_spec(ref.spec)
    if ref.kind == "files":
        from .safety import read_frames

        return read_frames(ref.spec, plan)
    if ref.kind == "gold":
        if engine is None:
            raise PlanDataError(f"data set {ref.raw()!r} needs the metadata database")
        exog, h = plan_inputs(plan, engine)
        return load_gold(ref.gold, engine, exog, h=h)
    if ref.name not in DATASETS:
        raise PlanDataError(f"unknown data set {ref.name!r}: known {sorted(DATASETS)}, gold:<game>:<selector>, "
                            "{synthetic: {...}} or {files: {...}}")
    return synthetic(DATASETS[ref.name])
