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


def jp_holiday_dates(years: Any) -> set[date]:
    """Japanese public holidays (national holidays, substitute holidays 振替休日 and citizens' holidays 国民の休日)
    of ``years``, from the maintained ``holidays`` package (not a hand-written list)."""
    import holidays

    return set(holidays.country_holidays("JP", years=sorted({int(y) for y in years})).keys())


def jp_holidays(frame: pd.DataFrame, spec: GameSpec | None = None, max_days: int = 30, **_: Any) -> pd.DataFrame:
    """fut_jp_holiday (the draw date is a Japanese public holiday, substitute holidays included), fut_jp_holiday_eve
    (the next day is one), fut_days_to_jp_holiday (days from the draw date to the next holiday strictly after it,
    capped at ``max_days``). Known for any date, so defined on future rows too."""
    ds = pd.to_datetime(frame["ds"]).dt.normalize()
    out = pd.DataFrame({"fut_jp_holiday": np.nan, "fut_jp_holiday_eve": np.nan, "fut_days_to_jp_holiday": np.nan},
                       index=frame.index)
    ok = ds.notna()
    if not ok.any():
        return out
    days = ds[ok]
    lo, hi = days.min(), days.max() + pd.Timedelta(days=int(max_days) + 1)
    hol = pd.DatetimeIndex(sorted(jp_holiday_dates(range(lo.year, hi.year + 1))))
    hol_vals = hol.values  # sorted datetime64[ns]
    out.loc[ok, "fut_jp_holiday"] = days.isin(hol).astype(float).to_numpy()
    out.loc[ok, "fut_jp_holiday_eve"] = (days + pd.Timedelta(days=1)).isin(hol).astype(float).to_numpy()
    after = days.to_numpy().astype("datetime64[ns]")
    idx = np.searchsorted(hol_vals, after, side="right")  # first holiday strictly after the draw date
    nxt = np.where(idx < len(hol_vals), hol_vals[np.minimum(idx, len(hol_vals) - 1)], np.datetime64("NaT"))
    gap = (nxt - after).astype("timedelta64[D]").astype("float64")
    gap = np.where(np.isnan(gap), float(max_days), np.minimum(gap, float(max_days)))
    out.loc[ok, "fut_days_to_jp_holiday"] = gap
    return out
