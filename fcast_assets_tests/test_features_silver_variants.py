"""Gold reads silver's transformed variants (issue 19): the hist_ features that equal a silver variant
(hist_roll{w}_sum|mean|std, hist_diff{p}, hist_cumsum, hist_parity, hist_anom_z) take it from the silver Delta table
at the previous draw instead of recomputing it; their values are those of the former computation (kept below as a
reference) on a real game; every variant silver computes is read; windows are one list (silver's); gold fails with
one line when silver lacks a variant (silver written by an older release)."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fcast_assets.features import gold
from fcast_assets.features import variants as VAR
from fcast_assets.features.registry import load_generators
from fcast_assets.lake import deltaio, games, pipeline
from fcast_assets.lake import silver as S

OLD_RELEASE_MISSING = {"diff2", "rsum50", "rmean50", "rstd50"}  # what silver of the previous release lacked


@pytest.fixture
def loto6(lake_env):
    eng = lake_env["engine"]
    spec = games.get_game(eng, "loto6")  # the embedded history, fcast_assets/data/lottery/loto6.csv
    pipeline.ingest_bronze(eng, spec)
    pipeline.build_silver_table(eng, spec, engine_name="pandas")
    return eng, spec


# ------------------------------------------------------------------ the former computation, kept as a reference
def reference_hist(frame: pd.DataFrame) -> pd.DataFrame:
    """hist_roll / hist_diff / hist_cumsum / hist_anom_z as gold computed them from the raw series before it read
    silver's variants (features/hist.py rolling, diff, cumsum and anomaly.rolling_zscore of the previous release)."""
    g = frame.groupby("unique_id", sort=False)["y"]
    past = g.shift(1).groupby(frame["unique_id"], sort=False)
    out = {}
    for w in (5, 10, 20, 50):
        r = past.rolling(w, min_periods=w)
        for st in ("sum", "mean", "std", "min", "max"):
            out[f"hist_roll{w}_{st}"] = getattr(r, st)().reset_index(level=0, drop=True)
    for p in (1, 2):
        out[f"hist_diff{p}"] = past.diff(p)
    first0 = g.shift(1).fillna(0.0)
    out["hist_cumsum"] = first0.groupby(frame["unique_id"], sort=False).cumsum()
    ref = g.shift(2).groupby(frame["unique_id"], sort=False).rolling(50, min_periods=50)
    mu = ref.mean().reset_index(level=0, drop=True)
    sd = ref.std().reset_index(level=0, drop=True).replace(0.0, np.nan)
    out["hist_anom_z"] = (g.shift(1) - mu) / sd
    return pd.DataFrame(out, index=frame.index)


def _same(a: pd.Series, b: pd.Series, what: str) -> None:
    a, b = a.to_numpy(dtype=float), b.to_numpy(dtype=float)
    assert (np.isnan(a) == np.isnan(b)).all(), f"{what}: NaN at other rows"
    ok = ~np.isnan(a)
    assert ok.any(), f"{what}: all NaN"
    assert np.max(np.abs(a[ok] - b[ok])) <= 1e-12, f"{what}: differs by {np.max(np.abs(a[ok] - b[ok]))}"


def test_gold_features_from_silver_equal_the_former_computation(loto6):
    eng, spec = loto6
    gold.build_anomaly(eng, spec)
    res = gold.build_features(eng, spec)
    written = deltaio.read(res["uri"])  # what the gold Delta table holds
    frame = gold.slot_series(spec)
    assert len(written) == len(frame) > 10_000
    written = frame[["unique_id", "draw_no"]].merge(written, on=["unique_id", "draw_no"], how="left")
    ref = reference_hist(frame)
    for c in ref.columns:
        _same(written[c], ref[c], c)
    # the new feature: parity of the last drawn value
    _same(written["hist_parity"], frame.groupby("unique_id", sort=False)["y"].shift(1) % 2, "hist_parity")


def test_gold_reads_the_silver_table_not_a_recomputation(loto6):
    """A silver whose rsum5 / diff1 / parity rows differ gives gold features that differ the same way (one draw
    later), while a feature computed from the raw series (hist_roll5_min) does not move."""
    eng, spec = loto6
    uri = pipeline.silver_uri(spec)
    sil = deltaio.read(uri)
    frame0 = gold.slot_series(spec, silver=sil)
    base = gold.compute_hist(frame0, spec, variants=VAR.from_silver(frame0, sil, spec.code))
    moved = sil.copy()
    for t, delta in (("rsum5", 1000.0), ("diff1", 0.5), ("parity", 7.0)):
        moved.loc[moved["transform"] == t, "y"] += delta
    deltaio.overwrite(uri, S.to_arrow(moved))
    frame, var = gold.read_silver(spec)
    got = gold.compute_hist(frame, spec, variants=var)
    for col, delta in (("hist_roll5_sum", 1000.0), ("hist_diff1", 0.5), ("hist_parity", 7.0)):
        d = (got[col] - base[col]).dropna()
        assert len(d) and np.allclose(d, delta), col
    pd.testing.assert_series_equal(got["hist_roll5_min"], base["hist_roll5_min"])
    pd.testing.assert_series_equal(got["hist_roll5_mean"], base["hist_roll5_mean"])


def test_gold_fails_with_one_line_when_silver_lacks_a_variant(loto6):
    """Silver as the previous release wrote it (no diff2, no window 50): gold_features and anomaly stop with one
    line naming the game, the variant and the fix; the current silver (the look-alike) builds."""
    eng, spec = loto6
    uri = pipeline.silver_uri(spec)
    sil = deltaio.read(uri)
    assert OLD_RELEASE_MISSING <= set(sil["transform"])
    old = sil[~sil["transform"].isin(OLD_RELEASE_MISSING)]
    deltaio.overwrite(uri, S.to_arrow(old))
    for build in (gold.build_features, gold.build_anomaly):
        with pytest.raises(VAR.SilverVariantMissing) as e:
            build(eng, spec)
        msg = str(e.value)
        assert "\n" not in msg and isinstance(e.value, ValueError)
        assert "silver of loto6" in msg and "older release" in msg and "silver_series" in msg
        assert any(f"'{t}'" in msg for t in OLD_RELEASE_MISSING), msg
    deltaio.overwrite(uri, S.to_arrow(sil))
    assert gold.build_features(eng, spec, with_anomaly=False)["rows"] > 0


def test_every_silver_variant_is_read_and_the_windows_are_one_list(loto6):
    eng, spec = loto6
    frame, var = gold.read_silver(spec)
    h = gold.compute_hist(frame, spec, variants=var)
    zscore = [g for g in load_generators() if g.name == "anomaly_zscore"]  # the anomaly generator reading silver
    gold.compute_anomaly(frame, spec, zscore, variants=var)
    # every variant silver computes is read by a gold feature (none computed for nothing)
    assert var.used == set(S.transforms()) - {"raw"} == set(var.available)
    # the windows / differences of gold are silver's: no second list in generators.yaml
    gens = {g.name: g for g in load_generators()}
    assert "windows" not in gens["hist_rolling"].params and "periods" not in gens["hist_diff"].params
    assert gens["anomaly_zscore"].params["window"] in S.WINDOWS
    roll = {c for c in h.columns if c.startswith("hist_roll")}
    assert roll == {f"hist_roll{w}_{st}" for w in S.WINDOWS for st in ("sum", "mean", "std", "min", "max")}
    assert {c for c in h.columns if c.startswith("hist_diff")} == {f"hist_diff{p}" for p in S.DIFFS}
    # SUM is kept raw: no variant of it is computed
    sil = deltaio.read(pipeline.silver_uri(spec), columns=["unique_id", "transform"])
    assert set(sil.loc[sil["unique_id"].str.startswith("loto6_SUM"), "transform"]) == {"raw"}


def test_a_window_silver_does_not_hold_is_one_line(loto6, tmp_path: Path):
    """anomaly_zscore with window 30 (not one of silver's windows) fails with one line; window 50 (the look-alike,
    the shipped entry) computes."""
    eng, spec = loto6
    text = Path(gold.__file__).with_name("generators.yaml").read_text(encoding="utf-8")
    assert "params: {window: 50, threshold: 2.5}" in text
    bad = tmp_path / "generators.yaml"
    bad.write_text(text.replace("params: {window: 50, threshold: 2.5}", "params: {window: 30, threshold: 2.5}"),
                   encoding="utf-8")
    frame, var = gold.read_silver(spec)
    with pytest.raises(VAR.SilverVariantMissing, match=r"no 'rmean30' variant .* needed by hist_anom_z"):
        gold.compute_anomaly(frame, spec, load_generators(bad), variants=var)
    ok = gold.compute_anomaly(frame, spec, [g for g in load_generators() if g.name == "anomaly_zscore"],
                              variants=var)
    assert ok["hist_anom_z"].notna().any()


def test_variants_of_another_frame_are_refused(loto6):
    eng, spec = loto6
    frame, var = gold.read_silver(spec)
    with pytest.raises(ValueError, match="built for another frame"):
        gold.compute_hist(frame.iloc[:-1], spec, variants=var)


def test_a_short_history_has_no_long_window_rows_and_builds(loto6):
    """A game with 30 draws: silver writes no rsum50 / rmean50 / rstd50 row (the window never fills), which is not a
    missing variant: gold builds, hist_roll50_* and hist_anom_z all NaN, hist_roll5_* defined."""
    eng, spec = loto6
    bronze = pipeline.B.read_bronze(pipeline.bronze_uri(spec), only_ok=True).sort_values("draw_no").head(30)
    short = S.silver_pandas(spec, bronze)
    assert "rsum50" not in set(short["transform"]) and "rsum20" in set(short["transform"])
    deltaio.overwrite(pipeline.silver_uri(spec), S.to_arrow(short))
    frame, var = gold.read_silver(spec)
    h = pd.concat([gold.compute_hist(frame, spec, variants=var),
                   gold.compute_anomaly(frame, spec, [g for g in load_generators() if g.name == "anomaly_zscore"],
                                        variants=var)], axis=1)
    assert h[["hist_roll50_sum", "hist_roll50_std", "hist_anom_z"]].isna().all().all()
    assert h["hist_roll5_sum"].notna().sum() == 7 * (30 - 5)
    _same(h["hist_roll20_mean"], reference_hist(frame)["hist_roll20_mean"], "hist_roll20_mean")


def test_features_read_from_silver_use_only_earlier_draws(loto6):
    """Change every silver row (raw and variants) at draw t and later: no hist_ value at draws <= t moves; at t+1
    the silver-read features do move."""
    eng, spec = loto6
    sil = deltaio.read(pipeline.silver_uri(spec))
    zscore = [g for g in load_generators() if g.name == "anomaly_zscore"]

    def feats(s):
        frame = gold.slot_series(spec, silver=s)
        var = VAR.from_silver(frame, s, spec.code)
        return frame, pd.concat([gold.compute_hist(frame, spec, variants=var),
                                 gold.compute_anomaly(frame, spec, zscore, variants=var)], axis=1)

    frame, base = feats(sil)
    silver_read = ["hist_roll5_sum", "hist_roll50_std", "hist_diff2", "hist_cumsum", "hist_parity", "hist_anom_z"]
    for t in (200, 1500):
        pert = sil.copy()
        pert.loc[pert["draw_no"] >= t, "y"] += 101.0
        _, got = feats(pert)
        upto = (frame["draw_no"] <= t).to_numpy()
        pd.testing.assert_frame_equal(base[upto], got[upto])
        nxt = (frame["draw_no"] == t + 1).to_numpy()
        for c in silver_read:
            assert not np.allclose(base.loc[nxt, c], got.loc[nxt, c]), c
