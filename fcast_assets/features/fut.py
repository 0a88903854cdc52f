"""fut_ generators: values known before the draw (calendar of the draw, draw number), for history rows and for
the future rows of the forecast horizon. Next draw dates follow the game's draw weekdays (``dataset_game``)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd

from fcast_assets.lake.games import WEEKDAYS, GameSpec


def next_draw_dates(last: date, weekdays: tuple[str, ...] | list[str], h: int) -> list[date]:
    """The next ``h`` dates after ``last`` that fall on one of the game's draw weekdays (every day if none)."""
    days = {WEEKDAYS.index(d) for d in weekdays} if weekdays else set(range(7))
    out: list[date] = []
    d = pd.Timestamp(last).date()
    while len(out) < h:
        d = d + timedelta(days=1)
        if d.weekday() in days:
            out.append(d)
    return out


def future_frame(hist: pd.DataFrame, spec: GameSpec, h: int) -> pd.DataFrame:
    """One row per series and horizon step: unique_id, ds, draw_no, step (y missing)."""
    last = hist.groupby("unique_id", sort=False).agg(ds=("ds", "max"), draw_no=("draw_no", "max"))
    rows = []
    for uid, r in last.iterrows():
        for k, d in enumerate(next_draw_dates(r["ds"], spec.draw_weekdays, h), start=1):
            rows.append({"unique_id": uid, "ds": pd.Timestamp(d), "draw_no": int(r["draw_no"]) + k, "step": k})
    out = pd.DataFrame(rows, columns=["unique_id", "ds", "draw_no", "step"])
    out["y"] = np.nan
    return out


def calendar(frame: pd.DataFrame, spec: GameSpec | None = None, special_days: int = 3, **_: Any) -> pd.DataFrame:
    """fut_weekday (0=Mon), fut_month, fut_day, fut_dayofyear, fut_draw_no, fut_days_since_prev (days since the
    previous draw of the same series), fut_year_end (draw in the last / first ``special_days`` days of the year,
    the new-year holiday period)."""
    ds = pd.to_datetime(frame["ds"])
    prev = ds.groupby(frame["unique_id"], sort=False).shift(1)
    since = (ds - prev).dt.days.astype(float)
    year_end = ((ds.dt.month == 12) & (ds.dt.day > 31 - int(special_days))) | (
        (ds.dt.month == 1) & (ds.dt.day <= int(special_days)))
    return pd.DataFrame({
        "fut_weekday": ds.dt.weekday.astype(float),
        "fut_month": ds.dt.month.astype(float),
        "fut_day": ds.dt.day.astype(float),
        "fut_dayofyear": ds.dt.dayofyear.astype(float),
        "fut_draw_no": frame["draw_no"].astype(float),
        "fut_days_since_prev": since,
        "fut_year_end": year_end.astype(float),
    }, index=frame.index)
