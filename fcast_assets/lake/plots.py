"""Small PNG plots of the lake per game (plain module, no Dagster): written beside the lake under
``<lake root>/plots/<game>/<name>.png`` and shown by the lake assets as Markdown image metadata.

- :func:`draw_frequency_png`: how often each number was drawn in each slot (heatmap slot × number, share of the
  rule-conforming draws; numbers outside a slot's allowed range are blank).
- :func:`profile_png`: the predictability profile per series (``dataset_profile`` rows): the uniformity / serial
  test p-values against the significance levels, entropy relative to the fair-draw maximum, and the
  autocorrelation against the 95% white-noise band.

Figures are drawn with matplotlib's Agg canvas (no GUI backend, no pyplot state) at a low dpi, so an image stays
well under 150 KB.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Iterable, Optional

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from fcast_assets import config

from .games import GameSpec

DPI = 80
PVALUE_TESTS = (("chi2_pvalue", "chi-square vs fair draw"), ("ljung_box_pvalue", "Ljung-Box"),
                ("runs_pvalue", "runs test"))


def plots_dir(game: str, root: Optional[str] = None) -> Path:
    """``<lake root>/plots/<game>``; for a remote lake (``s3://`` ...) ``<reports>/plots/<game>`` instead."""
    root = root or config.lake_root()
    base = config.reports_dir() if "://" in root else Path(root)
    d = base / "plots" / game
    d.mkdir(parents=True, exist_ok=True)
    return d


def _save(fig: Figure, path: Path) -> Path:
    """Write atomically (a reader never sees half a PNG)."""
    FigureCanvasAgg(fig)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fig.savefig(tmp, format="png", dpi=DPI)
    os.replace(tmp, path)
    return path


# ------------------------------------------------------------------------------------------------ draws
def draw_frequency(spec: GameSpec, bronze: pd.DataFrame) -> pd.DataFrame:
    """Share of draws in which each number came up in each slot: index = slot code, columns = numbers
    ``number_min..number_max``; NaN where the number is outside the slot's allowed range. Rows with
    ``dq_ok = false`` are left out (as in silver)."""
    df = bronze[bronze["dq_ok"].astype(bool)] if "dq_ok" in bronze.columns else bronze
    numbers = list(range(spec.number_min, spec.number_max + 1))
    out = pd.DataFrame(np.nan, index=spec.slot_codes, columns=numbers, dtype=float)
    for col, slot in zip(spec.number_cols, spec.slot_codes):
        lo, hi = spec.slot_range(col)
        counts = df[col].dropna().astype(int).value_counts()
        n = int(df[col].notna().sum())
        for x in range(max(lo, spec.number_min), min(hi, spec.number_max) + 1):
            out.loc[slot, x] = counts.get(x, 0) / n if n else 0.0
    return out


def draw_frequency_png(spec: GameSpec, bronze: pd.DataFrame, root: Optional[str] = None) -> Path:
    """Heatmap slot × number of :func:`draw_frequency`; returns the PNG path."""
    freq = draw_frequency(spec, bronze)
    n_draws = int(bronze["dq_ok"].astype(bool).sum()) if "dq_ok" in bronze.columns else len(bronze)
    width = min(12.0, max(5.0, 2.0 + 0.22 * freq.shape[1]))
    height = max(2.4, 1.3 + 0.35 * freq.shape[0])
    fig = Figure(figsize=(width, height), layout="constrained")
    ax = fig.add_subplot()
    data = np.ma.masked_invalid(freq.to_numpy())
    im = ax.imshow(data, aspect="auto", cmap="viridis", interpolation="nearest")
    ax.set_yticks(range(freq.shape[0]), freq.index)
    step = max(1, math.ceil(freq.shape[1] / 25))
    ax.set_xticks(range(0, freq.shape[1], step), [str(c) for c in freq.columns[::step]])
    ax.set_xlabel("number")
    ax.set_ylabel("slot")
    ax.set_title(f"{spec.code}: share of {n_draws} draws per slot and number", fontsize=10)
    fig.colorbar(im, ax=ax, label="share of draws", shrink=0.9)
    return _save(fig, plots_dir(spec.code, root) / "draw_frequency.png")


# ------------------------------------------------------------------------------------------------ profile
def profile_frame(rows: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """``dataset_profile`` rows (unique_id, metric, value, detail) -> one row per series, one column per metric
    (series only; the game-level row is left out), plus ``bonferroni_level`` / ``alpha`` from the verdict."""
    rows = list(rows)
    series = [r for r in rows if r["metric"] == "length"]  # every series has a length, the game row has not
    ids = [r["unique_id"] for r in series]
    df = pd.DataFrame([r for r in rows if r["unique_id"] in ids])
    if df.empty:
        return pd.DataFrame()
    wide = df.pivot_table(index="unique_id", columns="metric", values="value", aggfunc="first").reindex(ids)
    for r in rows:
        if r["unique_id"] in ids and r["metric"] == "verdict_random" and r.get("detail"):
            wide.loc[r["unique_id"], "bonferroni_level"] = r["detail"].get("bonferroni_level")
            wide.loc[r["unique_id"], "alpha"] = r["detail"].get("alpha")
    return wide


def profile_png(spec: GameSpec, rows: Iterable[dict[str, Any]], root: Optional[str] = None) -> Path:
    """Three panels per series: test p-values (log scale, with the Bonferroni level), entropy ratio (observed over
    the entropy of the fair-draw distribution of the slot: 1 = as spread as a fair draw), lag-1 and max |ACF| over lags 1..20 against the white-noise band."""
    wide = profile_frame(rows)
    if wide.empty:
        raise ValueError(f"no profile rows of a series for {spec.code}")
    labels = [u.removeprefix(f"{spec.code}_") for u in wide.index]
    y = np.arange(len(wide))
    fig = Figure(figsize=(10.0, max(2.6, 1.2 + 0.32 * len(wide))), layout="constrained")
    ax_p, ax_e, ax_a = fig.subplots(1, 3, sharey=True)

    h = 0.8 / len(PVALUE_TESTS)
    for i, (metric, label) in enumerate(PVALUE_TESTS):
        vals = wide[metric].to_numpy(dtype=float) if metric in wide else np.full(len(wide), np.nan)
        ax_p.barh(y - 0.4 + h * (i + 0.5), np.clip(np.nan_to_num(vals, nan=1.0), 1e-12, 1.0), height=h, label=label)
    level = wide["bonferroni_level"].dropna()
    if len(level):
        ax_p.axvline(float(level.iloc[0]), color="red", lw=1, ls="--", label=f"Bonferroni level {level.iloc[0]:.3g}")
    ax_p.set_xscale("log")
    ax_p.set_xlim(1e-6, 1.5)
    ax_p.set_title("p-values (left of red: deviates)", fontsize=9)

    ratio = wide["entropy_ratio"].to_numpy(dtype=float) if "entropy_ratio" in wide else np.full(len(wide), np.nan)
    ax_e.barh(y, np.nan_to_num(ratio), color="tab:purple")
    ax_e.axvline(1.0, color="black", lw=0.8, ls=":")
    finite = ratio[np.isfinite(ratio)]
    ax_e.set_xlim(min(0.9, float(finite.min()) - 0.01) if len(finite) else 0.0,
                  max(1.005, float(finite.max()) + 0.005) if len(finite) else 1.005)
    # the reference is the entropy of the slot's distribution under a fair draw, not a maximum: a sorted slot's
    # distribution is not uniform, so a sample can spread wider than it (ratio above 1)
    ax_e.set_title("entropy / fair-draw entropy (1 = as fair)", fontsize=9)

    acf1 = wide["acf_lag1"].to_numpy(dtype=float) if "acf_lag1" in wide else np.full(len(wide), np.nan)
    acfm = wide["acf_max_abs_1_20"].to_numpy(dtype=float) if "acf_max_abs_1_20" in wide else acf1
    ax_a.barh(y - 0.2, np.nan_to_num(acf1), height=0.4, color="tab:gray", label="ACF lag 1")
    ax_a.barh(y + 0.2, np.nan_to_num(acfm), height=0.4, color="tab:brown", label="max |ACF| lags 1-20")
    if "acf_band" in wide and wide["acf_band"].notna().any():
        band = float(wide["acf_band"].dropna().iloc[0])
        for b in (-band, band):
            ax_a.axvline(b, color="red", lw=1, ls="--")
    ax_a.axvline(0.0, color="black", lw=0.6)
    ax_a.set_title("autocorrelation (red: 95% band)", fontsize=9)
    handles, names = [], []
    for ax in (ax_p, ax_a):
        hs, ns = ax.get_legend_handles_labels()
        handles, names = handles + hs, names + ns
    fig.legend(handles, names, loc="outside lower center", ncol=len(names), fontsize=7, frameon=False)

    ax_p.set_yticks(y, labels)
    ax_p.invert_yaxis()
    for ax in (ax_p, ax_e, ax_a):
        ax.tick_params(labelsize=7)
    fig.suptitle(f"{spec.code}: predictability profile per series", fontsize=10)
    return _save(fig, plots_dir(spec.code, root) / "profile.png")
