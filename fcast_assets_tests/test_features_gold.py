"""Features (issue 5): gold tables per game, the leakage test (no hist_ value at draw t uses y at t or later), the
horizon-coverage test (a future row for every series and step of h), feature names vs feature_def, and the Dagster
assets of the ``features`` group."""

from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest
from sqlmodel import Session, select

from fcast_assets.db.dataset_models import DatasetGame
from fcast_assets.db.feature_models import (FeatureDef, FeatureGenerator, FeatureMaterialization, FeatureSet,
                                            FeatureSetItem)
from fcast_assets.features import gold
from fcast_assets.features.fut import next_draw_dates
from fcast_assets.features.registry import load_generators, sync_registry
from fcast_assets.lake import deltaio, games, pipeline
from fcast_assets.lake.games import WEEKDAYS

SIX = ["numbers3", "numbers4", "miniloto", "loto6", "loto7", "bingo5"]
PREFIXES = ("hist_", "fut_", "stat_")


@pytest.fixture
def env(lake_env):
    return lake_env


def _lake(eng, code):
    spec = games.get_game(eng, code)
    pipeline.ingest_bronze(eng, spec)
    pipeline.build_silver_table(eng, spec, engine_name="pandas")
    return spec


def _prefix_ok(cols):
    return all(sum(c.startswith(p) for p in PREFIXES) == 1 for c in cols)


def test_registry_is_data(env):
    eng = env["engine"]
    res = sync_registry(eng)
    again = sync_registry(eng)  # idempotent
    assert res["features"] == again["features"] > 40
    with Session(eng) as s:
        gens = s.exec(select(FeatureGenerator)).all()
        defs = s.exec(select(FeatureDef)).all()
        items = s.exec(select(FeatureSetItem)).all()
        assert {g.name for g in gens} == {g.name for g in load_generators()}
        assert len(defs) == len(items) == res["features"]
        assert s.exec(select(FeatureSet)).one().name == "default"
    assert _prefix_ok([d.name for d in defs])
    for d in defs:
        assert d.name.startswith(d.group + "_")
        assert d.covers_horizon == (d.group in ("fut", "stat"))
    kinds = {g.kind for g in gens}
    assert {"transform", "anomaly", "calendar", "static"} <= kinds
    schema = next(g for g in gens if g.name == "hist_rolling").output_schema
    assert {c["name"] for c in schema} >= {"hist_roll5_sum", "hist_roll50_std", "hist_roll20_max"}


def test_adding_a_generator_is_a_registration(env, tmp_path):
    """A new YAML entry (here: another lag set) becomes feature_generator + feature_def rows; no schema change."""
    base = (Path(gold.__file__).with_name("generators.yaml")).read_text()
    extra = base + """
  - name: hist_lags_weekly
    kind: transform
    group: hist
    library: pandas
    symbol: fcast_assets.features.hist.lags
    params: {lags: [7, 14]}
"""
    path = tmp_path / "generators.yaml"
    path.write_text(extra)
    eng = env["engine"]
    before = sync_registry(eng)["features"]
    gens = load_generators(path)
    after = sync_registry(eng, gens)["features"]
    assert after == before + 2
    with Session(eng) as s:
        fd = s.exec(select(FeatureDef).where(FeatureDef.name == "hist_lag14")).one()
        g = s.exec(select(FeatureGenerator).where(FeatureGenerator.generator_id == fd.generator_id)).one()
    assert g.name == "hist_lags_weekly" and fd.group == "hist" and fd.available == "past_only"
    spec = _lake(eng, "bingo5")
    frame = gold.slot_series(spec)
    assert {"hist_lag7", "hist_lag14"} <= set(gold.compute_hist(frame, spec, gens).columns)


def test_leakage_hist_and_anomaly_use_only_the_past(env):
    """Change y at draw t and later: no hist_ feature (incl. anomaly) at draws <= t may change."""
    spec = _lake(env["engine"], "loto7")
    frame = gold.slot_series(spec)
    base = pd.concat([gold.compute_hist(frame, spec), gold.compute_anomaly(frame, spec)], axis=1)
    assert _prefix_ok(base.columns) and all(c.startswith("hist_") for c in base.columns)
    rng = np.random.default_rng(1)
    for t in (120, 333, 650):
        pert = frame.copy()
        later = pert["draw_no"] >= t
        pert.loc[later, "y"] = rng.integers(1, 38, int(later.sum())).astype(float) + 100.0
        got = pd.concat([gold.compute_hist(pert, spec), gold.compute_anomaly(pert, spec)], axis=1)
        upto = (frame["draw_no"] <= t).to_numpy()
        pd.testing.assert_frame_equal(base[upto], got[upto], check_exact=False, rtol=1e-9)
        # and the perturbation is visible right after t (the features do react to the past)
        after = (frame["draw_no"] == t + 1).to_numpy()
        assert not base[after]["hist_lag1"].equals(got[after]["hist_lag1"])
    # every hist_ column has values somewhere (nothing is silently all-NaN on a real game)
    assert base.notna().any().all()


def test_hist_values(env):
    spec = _lake(env["engine"], "bingo5")
    frame = gold.slot_series(spec)
    h = gold.compute_hist(frame, spec)
    one = frame[frame["unique_id"] == "bingo5_N1"].reset_index(drop=True)
    hh = h.loc[frame["unique_id"] == "bingo5_N1"].reset_index(drop=True)
    y = one["y"]
    i = 120
    assert hh.loc[i, "hist_lag1"] == y[i - 1] and hh.loc[i, "hist_lag10"] == y[i - 10]
    assert hh.loc[i, "hist_roll5_sum"] == pytest.approx(y[i - 5:i].sum())
    assert hh.loc[i, "hist_roll20_std"] == pytest.approx(y[i - 20:i].std())
    assert hh.loc[i, "hist_exp_max"] == y[:i].max() and hh.loc[i, "hist_cumsum"] == pytest.approx(y[:i].sum())
    assert hh.loc[i, "hist_diff1"] == y[i - 1] - y[i - 2]
    assert hh.loc[i, "hist_count10"] == (y[i - 10:i] == y[i - 1]).sum()
    assert np.isnan(hh.loc[0, "hist_lag1"])


def test_horizon_coverage(env):
    eng = env["engine"]
    for code in ("bingo5", "loto6"):
        spec = _lake(eng, code)
        frame = gold.slot_series(spec)
        h = 12
        futr = gold.compute_futr(frame, spec, h)
        ids = gold.slot_ids(spec)
        assert len(futr) == len(ids) * h and gold.horizon_gaps(futr, ids, h) == []
        assert set(futr["unique_id"]) == set(ids) and set(futr["step"]) == set(range(1, h + 1))
        fut_cols = [c for c in futr.columns if c.startswith("fut_")]
        assert fut_cols and futr[fut_cols].notna().all().all()
        last = frame["ds"].max()
        one = futr[futr["unique_id"] == ids[0]].sort_values("step")
        assert (one["ds"] > last).all() and one["ds"].is_monotonic_increasing
        assert {WEEKDAYS[d] for d in one["ds"].dt.weekday} <= set(spec.draw_weekdays)
        assert list(one["draw_no"]) == list(range(int(frame["draw_no"].max()) + 1, int(frame["draw_no"].max()) + h + 1))
        assert (one["fut_draw_no"] == one["draw_no"]).all() and (one["fut_days_since_prev"] >= 1).all()
        # the same fut_ columns exist on history rows (gold_features) and future rows (gold_futr)
        hist_fut = gold.compute_fut(frame, spec)
        assert list(hist_fut.columns) == fut_cols
        res = gold.build_futr(eng, spec, h=h)
        assert res["horizon_gaps"] == [] and res["rows"] == len(ids) * h
    # the next draw dates follow the weekdays: loto6 Mon/Thu
    import datetime as dt
    assert next_draw_dates(dt.date(2026, 11, 23), ("mon", "thu"), 3) == [dt.date(2026, 11, 26), dt.date(2026, 11, 30),
                                                                          dt.date(2026, 12, 3)]


def test_six_games_build_offline(env):
    eng = env["engine"]
    h = 10
    for code in SIX:
        spec = _lake(eng, code)
        gold.build_anomaly(eng, spec)
        feats = gold.build_features(eng, spec, h=h)
        stat = gold.build_static(eng, spec)
        futr = gold.build_futr(eng, spec, h=h)
        n_slots = spec.n_main + spec.n_bonus
        f = deltaio.read(gold.gold_uri(spec, "features"))
        assert len(f) == feats["rows"] and f["unique_id"].nunique() == n_slots
        assert set(f["unique_id"]) == set(gold.slot_ids(spec))  # raw slots only: no transform variants / SUM
        s = deltaio.read(gold.gold_uri(spec, "static"))
        assert len(s) == n_slots and stat["per_group"] == {"stat": len(s.columns) - 1}
        assert (s["stat_n_slots"] == n_slots).all() and s["stat_mean"].notna().all()
        assert len(deltaio.read(gold.gold_uri(spec, "futr"))) == n_slots * h and futr["horizon_gaps"] == []
        cols = [c for c in f.columns if c not in ("unique_id", "ds", "draw_no", "y")]
        cols += [c for c in s.columns if c != "unique_id"]
        assert _prefix_ok(cols)
        assert any(c.startswith("hist_anom_") for c in cols)
    with Session(eng) as s:
        names = {d.name for d in s.exec(select(FeatureDef))}
        mats = s.exec(select(FeatureMaterialization)).all()
        game_ids = {g.game_id for g in s.exec(select(DatasetGame))}
    assert set(cols) <= names
    assert len(mats) == 4 * len(SIX) and {m.game_id for m in mats} == game_ids
    for m in mats:
        assert "@v" in m.lake_uri and m.schema_hash and m.dataset_version_id and m.feature_set_id
    m = next(m for m in mats if m.table_name == "gold_features")
    assert m.availability["fut_weekday"] is True and m.availability["hist_lag1"] is False and m.horizon == h


def test_static_cutoff(env):
    spec = _lake(env["engine"], "bingo5")
    frame = gold.slot_series(spec)
    st = gold.compute_static(frame, spec, cutoff=100).set_index("unique_id")
    one = frame[(frame["unique_id"] == "bingo5_N3") & (frame["draw_no"] <= 100)]["y"]
    assert st.loc["bingo5_N3", "stat_mean"] == pytest.approx(one.mean())
    assert st.loc["bingo5_N3", "stat_var"] == pytest.approx(one.var())
    assert st.loc["bingo5_N3", "stat_slot_index"] == 3
    assert (st.loc["bingo5_N3", ["stat_number_min", "stat_number_max"]] == list(spec.slot_range("n3"))).all()


def test_dagster_features_assets(env, monkeypatch):
    from fcast_assets.defs.features.assets import (anomaly_features, embeddings, gold_features, gold_futr,
                                                   gold_static)
    from fcast_assets.defs.lake.assets import bronze_draws, silver_series
    from .conftest import resources as test_resources

    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("game", ["bingo5"])
    resources = test_resources(env["url"], spark=True)
    assets = [bronze_draws, silver_series, anomaly_features, embeddings, gold_features, gold_static, gold_futr]
    r = dg.materialize(assets, partition_key="bingo5", instance=instance, resources=resources)
    assert r.success
    mats = {m.asset_key.to_user_string(): m.materialization.metadata for m in r.get_asset_materialization_events()}
    assert mats["embeddings"]["status"].value.startswith("skipped: no model configured")
    fm = mats["gold_features"]
    assert fm["features_per_group"].value["hist"] > 30 and fm["features_per_group"].value["fut"] >= 5
    assert isinstance(fm["dagster/column_schema"].value, dg.TableSchema)
    assert mats["gold_futr"]["dagster/row_count"].value == 8 * 10  # bingo5: 8 slots x h=10
    checks = {c.check_name: c.passed for c in r.get_asset_check_evaluations()}
    assert checks["features_defined"] and checks["horizon_covered"]
    assert checks["model_configured"] is False  # no foundation model here: a WARN on the embeddings page


def test_definitions_have_features_group():
    from fcast_assets.definitions import defs

    d = defs()
    graph = d.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert {"gold_features", "gold_static", "gold_futr", "embeddings", "anomaly_features"} <= keys
    for k in ("gold_features", "gold_static", "gold_futr", "embeddings", "anomaly_features"):
        assert graph.get(dg.AssetKey(k)).group_name == "features"
    assert d.resolve_job_def("features_game_job") is not None


def test_feature_partitions_follow_a_new_silver(env):
    """Eager automation: once silver of a game is materialized, its feature partitions are requested."""
    from fcast_assets.defs.features import assets as F
    from fcast_assets.defs.lake.assets import bronze_draws, silver_series
    from .conftest import resources as test_resources

    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("game", ["bingo5"])
    feature_assets = [F.anomaly_features, F.embeddings, F.gold_features, F.gold_static, F.gold_futr]
    resources = test_resources(env["url"], spark=True)
    defs = dg.Definitions(assets=[bronze_draws, silver_series, *feature_assets], resources=resources)
    selection = dg.AssetSelection.assets(*feature_assets)
    first = dg.evaluate_automation_conditions(defs=defs, instance=instance, asset_selection=selection)
    assert first.total_requested == 0  # silver missing: nothing to build yet
    res = dg.materialize([bronze_draws, silver_series], partition_key="bingo5", instance=instance,
                         resources=resources)
    assert res.success
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance, asset_selection=selection,
                                               cursor=first.cursor)
    for a in feature_assets:
        assert result.get_requested_partitions(a.key) == {"bingo5"}, a.key


def test_jp_holiday_features_on_known_dates():
    """Japanese public holidays from the `holidays` package: New Year, a substitute holiday, an ordinary day."""
    from fcast_assets.features.fut import jp_holidays

    days = ["2024-01-01", "2024-02-12", "2024-01-09", "2024-02-10", "2024-05-06", "2024-05-07"]
    f = pd.DataFrame({"unique_id": "g_N1", "ds": pd.to_datetime(days), "draw_no": range(1, 7)})
    out = jp_holidays(f, max_days=30).set_index(f["ds"].dt.strftime("%Y-%m-%d"))
    assert out.loc["2024-01-01", "fut_jp_holiday"] == 1.0  # New Year's Day
    assert out.loc["2024-02-12", "fut_jp_holiday"] == 1.0  # substitute holiday for Foundation Day (Sun 02-11)
    assert out.loc["2024-01-09", "fut_jp_holiday"] == 0.0  # an ordinary Tuesday
    assert out.loc["2024-05-06", "fut_jp_holiday"] == 1.0 and out.loc["2024-05-07", "fut_jp_holiday"] == 0.0
    # eve: 2024-02-10 is the day before Foundation Day; 2024-01-09 is not the eve of anything
    assert out.loc["2024-02-10", "fut_jp_holiday_eve"] == 1.0 and out.loc["2024-01-09", "fut_jp_holiday_eve"] == 0.0
    # days to the next holiday: 01-01 -> 01-08 (Coming of Age Day) = 7; 01-09 -> 02-11 = 33, capped at 30
    assert out.loc["2024-01-01", "fut_days_to_jp_holiday"] == 7.0
    assert out.loc["2024-02-10", "fut_days_to_jp_holiday"] == 1.0
    assert out.loc["2024-01-09", "fut_days_to_jp_holiday"] == 30.0
    assert jp_holidays(f, max_days=60).iloc[2]["fut_days_to_jp_holiday"] == 33.0


def test_jp_holiday_features_reach_gold_and_the_future_frame(env):
    """The holiday columns are fut_ features of gold_features and of every future row of gold_futr (no NaN),
    so a model trained with them in futr_exog_list gets them in its futr_df."""
    eng = env["engine"]
    spec = _lake(eng, "bingo5")
    frame = gold.slot_series(spec)
    cols = ["fut_jp_holiday", "fut_jp_holiday_eve", "fut_days_to_jp_holiday"]
    hist = gold.compute_fut(frame, spec)
    assert set(cols) <= set(hist.columns) and hist[cols].notna().all().all()
    both = pd.concat([frame[["unique_id", "ds"]], hist[cols]], axis=1)
    assert both["fut_jp_holiday"].sum() > 0  # some draws fell on public holidays
    futr = gold.compute_futr(frame, spec, 60)  # more than a year of weekly draws beyond the last one
    assert (futr["ds"] > frame["ds"].max()).all()
    assert set(cols) <= set(futr.columns) and futr[cols].notna().all().all()
    one = futr[futr["unique_id"] == gold.slot_ids(spec)[0]]
    one = one.set_index(one["ds"].dt.strftime("%Y-%m-%d"))
    import holidays

    jp = holidays.country_holidays("JP", years=range(2026, 2029))
    expect = [1.0 if pd.Timestamp(d).date() in jp else 0.0 for d in one.index]
    assert one["fut_jp_holiday"].tolist() == expect and sum(expect) >= 1
    gold.build_futr(eng, spec, h=10)
    sync_registry(eng)
    stored = deltaio.read(gold.gold_uri(spec, "futr"))
    assert set(cols) <= set(stored.columns) and stored[cols].notna().all().all()
    with Session(eng) as s:
        assert {d.name for d in s.exec(select(FeatureDef).where(FeatureDef.name.in_(cols))).all()} == set(cols)
