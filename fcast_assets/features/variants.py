"""Silver's transformed variants as gold reads them.

Silver stores, per raw slot series ``<game>_<SLOT>``, the variants ``<game>_<SLOT>_<transform>`` (cumsum, diff{p},
parity, rsum{w}, rmean{w}, rstd{w}; see :mod:`fcast_assets.lake.silver`). The hist_ generators that equal a variant
(``hist_roll{w}_sum|mean|std``, ``hist_diff{p}``, ``hist_cumsum``, ``hist_parity``, ``hist_anom_z``) read it
instead of recomputing it, shifted within the series so that the value at draw t only uses draws before t
(:meth:`Variants.past`).

:class:`Variants` aligns the variants row by row with the long raw frame handed to the generators (unique_id,
draw_no). Built from the silver table (:func:`from_silver`, what the gold builds do) a variant silver lacks is an
error of one line (:class:`SilverVariantMissing`: silver written by an older release); built from a frame that did
not come from silver (the registry's probe series, a test's perturbed history, a benchmark's scaled one:
:func:`from_frame`) the variants are computed with silver's own pandas code (:func:`fcast_assets.lake.silver.variants`),
so both paths give the same values.
"""

from __future__ import annotations

import re
from typing import Optional

import numpy as np
import pandas as pd

from fcast_assets.lake import silver as S


class SilverVariantMissing(ValueError):
    """Gold needs a silver variant that the silver table does not hold."""


def min_draws(transform: str) -> int:
    """The draws a series needs before silver writes a row of ``transform`` (rolling w: w; diff p: p + 1)."""
    m = re.fullmatch(r"r(?:sum|mean|std)(\d+)", transform)
    if m:
        return int(m.group(1))
    m = re.fullmatch(r"diff(\d+)", transform)
    return int(m.group(1)) + 1 if m else 1


class Variants:
    """Silver variants aligned with ``frame`` (same index, same row order); ``used`` records what was read."""

    def __init__(self, frame: pd.DataFrame, table: pd.DataFrame, game: str, source: str) -> None:
        self.index = frame.index
        self.keys = (frame["unique_id"].to_numpy(), frame["draw_no"].to_numpy())
        self.groups = frame["unique_id"].to_numpy()
        self.longest = int(frame.groupby("unique_id", sort=False).size().max()) if len(frame) else 0
        self.table = table  # columns = transforms, index = frame.index
        self.game = game
        self.source = source
        self.used: set[str] = set()

    @property
    def available(self) -> list[str]:
        return list(self.table.columns)

    def check(self, frame: pd.DataFrame) -> None:
        if not (len(frame) == len(self.index) and (frame["unique_id"].to_numpy() == self.keys[0]).all()
                and (frame["draw_no"].to_numpy() == self.keys[1]).all()):
            raise ValueError("silver variants were built for another frame (unique_id, draw_no differ): build them "
                             "with features.variants.from_silver / from_frame for this frame")

    def get(self, transform: str, needed_by: str = "gold") -> pd.Series:
        """The variant as of each row's draw (not shifted); all NaN when no series is long enough for it (silver
        writes no row of ``rsum50`` for a game with fewer than 50 draws)."""
        if transform not in self.table.columns and self.longest < min_draws(transform):
            self.used.add(transform)
            return pd.Series(np.nan, index=self.index, dtype="float64")
        if transform not in self.table.columns:
            have = ", ".join(self.available) or "none"
            raise SilverVariantMissing(
                f"silver of {self.game} ({self.source}) has no '{transform}' variant (e.g. {self.game}_N1_{transform}),"
                f" needed by {needed_by}; it holds [{have}]: silver was written by an older release or with other "
                f"windows - rebuild it (materialize silver_series for {self.game}) and then gold")
        self.used.add(transform)
        return self.table[transform]

    def past(self, transform: str, lag: int = 1, needed_by: str = "gold") -> pd.Series:
        """The variant at the draw ``lag`` draws before each row (within its series): known before the draw."""
        return self.get(transform, needed_by).groupby(self.groups, sort=False).shift(int(lag))


def _rows(frame: pd.DataFrame, long: pd.DataFrame) -> pd.DataFrame:
    """``long`` (base unique_id, draw_no, transform, y) as one column per transform, aligned with ``frame``."""
    if long.empty:
        return pd.DataFrame(index=frame.index)
    wide = long.set_index(["base", "draw_no", "transform"])["y"].unstack("transform")
    key = pd.MultiIndex.from_arrays([frame["unique_id"].to_numpy(), frame["draw_no"].to_numpy()])
    out = wide.reindex(key)
    out.index = frame.index
    out.columns = [str(c) for c in out.columns]
    return out.astype("float64")


def from_silver(frame: pd.DataFrame, silver: pd.DataFrame, game: str, source: str = "silver") -> Variants:
    """The variants of the series of ``frame`` from a silver table (long rows with ``slot`` and ``transform``)."""
    v = silver[(silver["transform"] != "raw")]
    v = pd.DataFrame({"base": game + "_" + v["slot"].astype(str), "draw_no": v["draw_no"].to_numpy(),
                      "transform": v["transform"].astype(str), "y": v["y"].astype("float64")})
    v = v[v["base"].isin(set(frame["unique_id"].unique()))]
    return Variants(frame, _rows(frame, v), game, source)


def from_frame(frame: pd.DataFrame, game: Optional[str] = None,
               windows: tuple[int, ...] = S.WINDOWS, diffs: tuple[int, ...] = S.DIFFS) -> Variants:
    """The variants of the series of ``frame`` (sorted by unique_id, draw_no) with silver's pandas code."""
    cols: dict[str, np.ndarray] = {t: np.full(len(frame), np.nan) for t in S.transforms(windows, diffs)[1:]}
    y = frame["y"].astype("float64").to_numpy()
    for _, idx in frame.groupby("unique_id", sort=False).indices.items():
        for t, s in S.variants(pd.Series(y[idx]), windows, diffs).items():
            cols[t][idx] = s.to_numpy()
    if game is None:
        game = str(frame["unique_id"].iloc[0]).rsplit("_", 1)[0] if len(frame) else "?"
    return Variants(frame, pd.DataFrame(cols, index=frame.index), game, "computed from the frame")


def resolve(frame: pd.DataFrame, variants: Optional[Variants]) -> Variants:
    """The variants a generator reads: those handed in (checked against ``frame``) or, when none were, silver's
    code run on ``frame``."""
    if variants is None:
        return from_frame(frame)
    variants.check(frame)
    return variants
