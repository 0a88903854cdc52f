"""Predictability profile: is a slot series distinguishable from the game's random draw?

Per raw slot series (``<game>_N1`` …, bonus slots, ``<game>_SUM``) and per game (pooled main numbers):

- ``length``
- ``chi2_stat`` / ``chi2_pvalue``: observed value frequencies vs the *theoretical* distribution of the slot under a
  fair draw (uniform for Numbers digits, a single bonus number and bingo5 columns; the k-th order statistic of
  a draw without replacement for sorted slots (loto main numbers, loto7's two bonus numbers, stored ascending):
  P(N_k = x) = C(x-1, k-1)·C(M-x, n-k) / C(M, n)); bins with an
  expected count below 5 are merged. ``<game>_SUM`` uses the exact distribution of the sum (convolution) where
  it is cheap, else only the serial tests.
- ``entropy_bits``, ``entropy_max_bits`` (entropy of the theoretical distribution), ``entropy_ratio``
- ``acf_lag1``, ``acf_max_abs_1_20`` and the 95% white-noise band ``acf_band``
- ``ljung_box_stat`` / ``ljung_box_pvalue`` (lag 10)
- ``runs_z`` / ``runs_pvalue`` (Wald–Wolfowitz runs above/below the median)
- ``spectral_entropy`` (normalised Shannon entropy of the periodogram; 1 = flat spectrum = white noise) and
  ``forecastability`` = 1 − spectral_entropy (the ForeCA Ω score)
- ``verdict_random``: 1 when no test rejects randomness at a Bonferroni-corrected level (α = 0.01 over the
  three tests of the series), else 0; ``detail`` carries the verdict text and the smallest p-value.

The game-level row (unique_id = ``<game>``) adds the number of series flagged vs the number expected by chance.
"""

from __future__ import annotations

from math import comb, log2
from typing import Any

import numpy as np
import pandas as pd
from scipy import signal, stats

from .games import GameSpec

ALPHA = 0.01
LB_LAG = 10
ACF_LAGS = 20


# ------------------------------------------------------------------------------------------------ theory
def slot_pmf(spec: GameSpec, slot: str) -> dict[int, float]:
    """Theoretical distribution of one slot's value under a fair draw."""
    col = slot.lower()
    lo, hi = spec.slot_range(col)
    if col.startswith("b"):
        # the bonus numbers are, unconditionally, a uniform random subset of the range; stored ascending
        # (rules.bonus_sorted) the k-th one follows the order-statistic law below, else each is uniform
        if not (spec.rules.get("bonus_sorted") and spec.n_bonus > 1):
            return {x: 1.0 / (hi - lo + 1) for x in range(lo, hi + 1)}
        n = spec.n_bonus
    elif spec.allow_repeat or spec.rules.get("slot_ranges") or not spec.main_sorted:
        return {x: 1.0 / (hi - lo + 1) for x in range(lo, hi + 1)}
    else:
        n = spec.n_main
    m = spec.number_max - spec.number_min + 1
    k = int(col[1:])
    total = comb(m, n)
    return {spec.number_min + i - 1: comb(i - 1, k - 1) * comb(m - i, n - k) / total for i in range(1, m + 1)
            if comb(i - 1, k - 1) * comb(m - i, n - k) > 0}


def _sum_pmf(spec: GameSpec) -> tuple[tuple[int, float], ...] | None:
    """Exact pmf of the sum of the main numbers (None where it is not cheap to enumerate)."""
    lo_hi = [spec.slot_range(c) for c in spec.main_cols]
    if spec.allow_repeat or spec.rules.get("slot_ranges"):
        # independent uniform slots: convolution
        pmf = np.array([1.0])
        offset = 0
        for lo, hi in lo_hi:
            pmf = np.convolve(pmf, np.full(hi - lo + 1, 1.0 / (hi - lo + 1)))
            offset += lo
        return tuple((offset + i, float(p)) for i, p in enumerate(pmf))
    # distinct numbers from [a, b] without replacement: DP over (count chosen, sum)
    a, b = spec.number_min, spec.number_max
    n = spec.n_main
    if comb(b - a + 1, n) > 5e8:
        return None
    max_sum = sum(range(b - n + 1, b + 1))
    ways = np.zeros((n + 1, max_sum + 1))
    ways[0, 0] = 1
    for v in range(a, b + 1):
        for c in range(n, 0, -1):
            ways[c, v:] += ways[c - 1, : max_sum + 1 - v]
    total = ways[n].sum()
    return tuple((s, float(w / total)) for s, w in enumerate(ways[n]) if w > 0)


def sum_pmf(spec: GameSpec) -> dict[int, float] | None:
    r = _sum_pmf(spec)
    return dict(r) if r is not None else None


# ------------------------------------------------------------------------------------------------ tests
def chi2_vs(values: np.ndarray, pmf: dict[int, float], min_expected: float = 5.0) -> tuple[float, float, int]:
    """Chi-square goodness of fit of integer ``values`` against ``pmf``; adjacent bins merged until every
    expected count is >= ``min_expected``. Values outside the support go to an extra bin with expectation ~0
    (so they make the statistic explode, as they should). Returns (stat, p, dof)."""
    n = len(values)
    keys = sorted(pmf)
    counts = pd.Series(values).value_counts()
    obs = np.array([counts.get(k, 0) for k in keys], dtype=float)
    exp = np.array([pmf[k] * n for k in keys], dtype=float)
    outside = n - obs.sum()
    bo, be, acc_o, acc_e = [], [], 0.0, 0.0
    for o, e in zip(obs, exp):
        acc_o += o
        acc_e += e
        if acc_e >= min_expected:
            bo.append(acc_o)
            be.append(acc_e)
            acc_o = acc_e = 0.0
    if acc_e > 0 or acc_o > 0:
        if be:
            bo[-1] += acc_o
            be[-1] += acc_e
        else:
            bo, be = [acc_o], [acc_e]
    bo_a, be_a = np.array(bo), np.array(be)
    stat = float(((bo_a - be_a) ** 2 / be_a).sum())
    if outside > 0:
        stat += float(outside**2 / 1e-9)
    dof = max(len(bo_a) - 1, 1)
    return stat, float(stats.chi2.sf(stat, dof)), dof


def entropy_bits(values: np.ndarray) -> float:
    p = pd.Series(values).value_counts(normalize=True).to_numpy()
    return float(-(p * np.log2(p)).sum())


def pmf_entropy_bits(pmf: dict[int, float]) -> float:
    return float(-sum(p * log2(p) for p in pmf.values() if p > 0))


def acf(x: np.ndarray, nlags: int) -> np.ndarray:
    """Sample autocorrelation at lags 0..nlags (statsmodels); a constant series has none (zeros)."""
    from statsmodels.tsa.stattools import acf as sm_acf

    x = np.asarray(x, dtype=float)
    if float(np.var(x)) == 0:
        return np.zeros(nlags + 1)
    r = np.asarray(sm_acf(x, nlags=min(nlags, len(x) - 1), fft=False, adjusted=False), dtype=float)
    return np.pad(r, (0, nlags + 1 - len(r)))  # lags beyond the series: no pairs, no correlation


def ljung_box(x: np.ndarray, lag: int = LB_LAG) -> tuple[float, float]:
    """Ljung–Box Q at ``lag`` and its p-value (statsmodels' acorr_ljungbox)."""
    from statsmodels.stats.diagnostic import acorr_ljungbox

    x = np.asarray(x, dtype=float)
    if float(np.var(x)) == 0:
        return 0.0, 1.0
    res = acorr_ljungbox(x, lags=[lag], return_df=True)
    return float(res["lb_stat"].iloc[0]), float(res["lb_pvalue"].iloc[0])


def runs_test(x: np.ndarray) -> tuple[float, float]:
    """Wald–Wolfowitz runs test above/below the median (values equal to the median dropped; statsmodels'
    runstest_1samp without the small-sample continuity correction)."""
    from statsmodels.sandbox.stats.runs import runstest_1samp

    x = np.asarray(x, dtype=float)
    med = float(np.median(x))
    kept = x[x != med]
    if (kept > med).all() or (kept < med).all():
        return 0.0, 1.0
    z, p = runstest_1samp(kept, cutoff=med, correction=False)
    return (0.0, 1.0) if not np.isfinite(z) else (float(z), float(p))


def spectral_entropy(x: np.ndarray) -> float:
    x = np.asarray(x, dtype=float)
    _, pxx = signal.periodogram(x - x.mean(), detrend=False)
    pxx = pxx[1:]  # drop the zero frequency
    tot = pxx.sum()
    if tot <= 0 or len(pxx) < 2:
        return float("nan")
    p = pxx / tot
    p = p[p > 0]
    return float(-(p * np.log(p)).sum() / np.log(len(pxx)))


def white_noise_spectral_entropy(n: int) -> float:
    """Expected normalised spectral entropy of white noise of length n (periodogram ordinates ~ exponential):
    a finite random series scores below 1, so compare against this rather than against 1."""
    n_freq = n // 2
    if n_freq < 2:
        return float("nan")
    return float(1 - (1 - np.euler_gamma) / np.log(n_freq))


# ------------------------------------------------------------------------------------------------ profile
def profile_series(spec: GameSpec, uid: str, slot: str, x: np.ndarray) -> list[dict[str, Any]]:
    x = np.asarray(x, dtype=float)
    out: list[dict[str, Any]] = []

    def m(metric: str, value: Any, **detail: Any) -> None:
        out.append({"unique_id": uid, "metric": metric, "value": value, "detail": detail or None})

    n = len(x)
    m("length", n)
    m("mean", float(x.mean()))
    m("std", float(x.std(ddof=1)) if n > 1 else float("nan"))
    pmf = sum_pmf(spec) if slot == "SUM" else slot_pmf(spec, slot)
    pvals: dict[str, float] = {}
    if pmf is not None:
        stat, p, dof = chi2_vs(x.astype(int), pmf)
        m("chi2_stat", stat, dof=dof, reference="theoretical distribution of the slot under a fair draw")
        m("chi2_pvalue", p)
        pvals["chi2"] = p
        m("entropy_max_bits", pmf_entropy_bits(pmf))
    ent = entropy_bits(x.astype(int))
    m("entropy_bits", ent)
    if pmf is not None:
        m("entropy_ratio", ent / pmf_entropy_bits(pmf) if pmf_entropy_bits(pmf) else float("nan"))
    r = acf(x, ACF_LAGS)
    m("acf_lag1", r[1])
    m("acf_max_abs_1_20", float(np.max(np.abs(r[1:]))), lag=int(np.argmax(np.abs(r[1:])) + 1))
    m("acf_band", float(1.96 / np.sqrt(n)))
    q, p = ljung_box(x, LB_LAG)
    m("ljung_box_stat", q, lag=LB_LAG)
    m("ljung_box_pvalue", p, lag=LB_LAG)
    pvals["ljung_box"] = p
    z, p = runs_test(x)
    m("runs_z", z)
    m("runs_pvalue", p)
    pvals["runs"] = p
    se = spectral_entropy(x)
    m("spectral_entropy", se)
    m("spectral_entropy_white_noise", white_noise_spectral_entropy(n),
      note="expected value for white noise of this length: 1 - (1 - euler_gamma) / ln(n_freq)")
    m("forecastability", 1 - se if se == se else float("nan"))
    level = ALPHA / len(pvals)
    rejected = sorted(k for k, v in pvals.items() if v < level)
    random_like = not rejected
    m("min_pvalue", min(pvals.values()), test=min(pvals, key=pvals.get))
    m("verdict_random", 1.0 if random_like else 0.0,
      verdict="indistinguishable from a fair random draw" if random_like
      else f"deviates from a fair random draw ({', '.join(rejected)})",
      alpha=ALPHA, bonferroni_level=level, pvalues=pvals)
    return out


def profile_game(spec: GameSpec, bronze: pd.DataFrame) -> list[dict[str, Any]]:
    """Profile rows for every raw slot series, the SUM series and the game (pooled main numbers)."""
    df = bronze.sort_values("draw_no")
    rows: list[dict[str, Any]] = []
    verdicts = []
    for c in spec.number_cols:
        slot = c.upper()
        prof = profile_series(spec, f"{spec.code}_{slot}", slot, df[c].astype(float).to_numpy())
        rows += prof
        verdicts.append(next(r["value"] for r in prof if r["metric"] == "verdict_random"))
    main_sum = df[spec.main_cols].astype(float).sum(axis=1).to_numpy()
    prof = profile_series(spec, f"{spec.code}_SUM", "SUM", main_sum)
    rows += prof
    verdicts.append(next(r["value"] for r in prof if r["metric"] == "verdict_random"))
    # game level: pooled main-number frequencies vs uniform (every number equally likely under a fair draw)
    pooled = df[spec.main_cols].astype(int).to_numpy().ravel()
    uni = {x: 1.0 / (spec.number_max - spec.number_min + 1) for x in range(spec.number_min, spec.number_max + 1)}
    stat, p, dof = chi2_vs(pooled, uni)
    g = spec.code
    flagged = int(sum(1 for v in verdicts if v == 0.0))
    n_series = len(verdicts)
    # probability that >= flagged of n_series independent series are flagged by chance (at most ALPHA each)
    p_flagged = float(stats.binom.sf(flagged - 1, n_series, ALPHA)) if flagged else 1.0
    game_random = p >= ALPHA and p_flagged >= ALPHA
    rows += [
        {"unique_id": g, "metric": "draws", "value": len(df), "detail": None},
        {"unique_id": g, "metric": "pooled_chi2_stat", "value": stat, "detail": {"dof": dof}},
        {"unique_id": g, "metric": "pooled_chi2_pvalue", "value": p, "detail": None},
        {"unique_id": g, "metric": "series_profiled", "value": n_series, "detail": None},
        {"unique_id": g, "metric": "series_flagged", "value": flagged,
         "detail": {"expected_by_chance_at_most": n_series * ALPHA, "p_at_least_this_many": p_flagged}},
        {"unique_id": g, "metric": "verdict_random", "value": 1.0 if game_random else 0.0,
         "detail": {"verdict": ("the draws are indistinguishable from a fair random draw: no usable signal for "
                                "forecasting") if game_random else
                    "some series deviate from a fair random draw beyond chance: inspect the flagged series",
                    "pooled_chi2_pvalue": p, "series_flagged": flagged, "series_profiled": n_series}},
    ]
    return rows


def summary_table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    return df.pivot_table(index="unique_id", columns="metric", values="value", aggfunc="first")
