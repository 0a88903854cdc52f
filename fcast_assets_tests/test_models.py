"""Models per game (issue 6) on the real library, a real SQLite DB and real Delta tables: selectors, model choice
from the registry + compat cells, loto6's 7 models trained through Dagster (validated run plans, CV vs baselines,
versioned artifacts, resources), predictions / evaluation / attribution, retraining from the registry row alone,
the refusal when gold lost a column, and the scrape-and-retrain staleness + sensor."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import numpy as np
import pytest
from sqlalchemy import insert, text
from sqlmodel import Session, select

from fcast_assets.db.model_models import ModelRegistry, ModelVersion, ModelXai
from fcast_assets.db.models import RegistryRelease
from fcast_assets.defs.models import assets as MA
from fcast_assets.defs.models.sensors import model_partitions_sensor, retrain_models_sensor
from fcast_assets.defs.resources import MetadataDB
from fcast_assets.features import gold
from fcast_assets.lake import deltaio, games, pipeline
from fcast_assets.plans import baselines as B
from fcast_assets.models import train as T
from fcast_assets.models.choose import ModelChoiceError, choose
from fcast_assets.models.config import game_config
from fcast_assets.models.evaluation import comparison, overview, stale_models
from fcast_assets.models.selectors import get_selector, seed_selectors
from fcast_assets.models.xai import xai_uri
from fcast_assets.plans import loader, validator

from .conftest import loto6_models_env, resources

SMALL = {"max_steps": 5, "n_windows": 4}
SIX = {"numbers3": 4, "numbers4": 5, "miniloto": 6, "loto6": 7, "loto7": 8, "bingo5": 9}


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """neuralforecast scanned, real compat cells for NHITS and TSMixerx (baseline + exogenous families), the games
    seeded, loto6's lake and gold tables built; FCAST_HOME / FCAST_LAKE / FCAST_DB_URL point at the folder."""
    folder = tmp_path_factory.mktemp("models")
    mp = pytest.MonkeyPatch()
    # the README's order: scan, compat cells, lake, gold; the last 3 draws arrive later ("scrape")
    engine, url, spec = loto6_models_env(folder, mp, hold_back=3)
    instance = dg.DagsterInstance.ephemeral()
    yield {"engine": engine, "url": url, "folder": folder, "spec": spec, "instance": instance}
    mp.undo()
    engine.dispose()


def _run(env, assets, key, config=None):
    res = dg.materialize(assets, partition_key=key, instance=env["instance"],
                         resources=resources(env["url"]),
                         run_config={"ops": {"trained_models": {"config": config}}} if config else None)
    assert res.success
    return res


def _meta(res, asset):
    mats = [e for e in res.get_asset_materialization_events() if e.asset_key == dg.AssetKey(asset)]
    return mats[-1].materialization.metadata


def test_example_plans_still_valid_after_the_matrix(env):
    """The project's own valid example plans pass validation (rules, matching matrix cells, miniature run) in the
    database the README's order builds; the wrong ones are still stopped."""
    eng = env["engine"]
    examples = Path(__file__).resolve().parents[1] / "plans" / "examples.yaml"
    plans = loader.read_file(examples)
    loader.store_plans(eng, plans)
    res = validator.validate_plans(eng, [p["name"] for p in plans])
    for p in plans:
        if p["expect"] == "valid":
            assert not res[p["name"]], (p["name"], res[p["name"]])
        else:
            assert res[p["name"]], p["name"]
    with eng.connect() as conn:
        freq_cells = conn.execute(text("""SELECT value_label, status FROM compat_result
            WHERE method = 'NeuralForecast.__init__' AND param = 'freq'""")).all()
    assert ("1 (ds datetime)", "error") in {(r.value_label, r.status) for r in freq_cells}


def test_selectors_per_game(env):
    eng = env["engine"]
    for code, n in SIX.items():
        sels = seed_selectors(eng, games.get_game(eng, code))
        assert len(sels) == n and sels[-1].name == "ALL"
        assert list(sels[-1].unique_ids) == [f"{code}_N{i}" for i in range(1, n)]
        assert all(len(s.unique_ids) == 1 for s in sels[:-1])
    assert len(seed_selectors(eng, games.get_game(eng, "loto6"))) == 7  # idempotent


def test_baseline_draws_follow_the_rules(env):
    rng = np.random.default_rng(1)
    eng = env["engine"]
    for code in SIX:
        spec = games.get_game(eng, code)
        d = B.simulate_draws(spec, 2000, rng)
        assert d.shape == (2000, spec.n_main)
        for i in range(spec.n_main):
            lo, hi = spec.slot_range(f"n{i + 1}")
            assert d[:, i].min() >= lo and d[:, i].max() <= hi
        if spec.main_sorted:
            assert (np.diff(d, axis=1) > 0).all()  # distinct and ascending
    n3 = B.simulate_draws(games.get_game(eng, "numbers3"), 20000, rng)
    assert abs(n3.mean() - 4.5) < 0.1
    l6 = B.simulate_draws(games.get_game(eng, "loto6"), 20000, rng).mean(axis=0)
    assert l6[0] < 10 < 35 < l6[-1]  # order statistics of 6 of 1..43


def test_model_choice_from_registry_and_compat(env):
    eng = env["engine"]
    cfg = game_config("loto6")
    n1, all_ = get_selector(eng, "loto6", "N1"), get_selector(eng, "loto6", "ALL")
    ch = choose(eng, n1, cfg)
    assert ch.qualname.endswith("NHITS") and ch.series_mode == "per_slot" and ch.n_series == 1
    assert ch.exog["hist"] == cfg["exog"]["hist"] and ch.exog["futr"] and ch.exog["stat"]
    assert any("compat ok" in n for n in ch.notes)
    joint = choose(eng, all_, game_config("loto6", {"all_mode": "multivariate_joint"}))
    assert joint.name == "TSMixerx" and joint.hyperparams["n_series"] == 6 and joint.series_mode == "multivariate_joint"
    with pytest.raises(ModelChoiceError, match="univariate"):
        choose(eng, all_, game_config("loto6", {"all_mode": "multivariate_joint", "multivariate_model": "NHITS"}))
    with pytest.raises(ModelChoiceError, match="multivariate"):
        choose(eng, n1, game_config("loto6", {"model": "TSMixerx"}))
    with pytest.raises(ModelChoiceError, match="compat"):  # never probed: no passing cell, no choice
        choose(eng, n1, game_config("loto6", {"model": "MLP"}))
    # a compat error for a group drops it (with the reason), it is never used untested
    with eng.begin() as conn:
        conn.execute(text("UPDATE compat_result SET status = 'error', exception_type = 'ValueError' "
                          "WHERE model LIKE '%NHITS' AND param = 'stat_exog_list'"))
    try:
        ch2 = choose(eng, n1, cfg)
        assert ch2.exog["stat"] == [] and any("stat exogenous dropped: compat error" in n for n in ch2.notes)
    finally:
        with eng.begin() as conn:
            conn.execute(text("UPDATE compat_result SET status = 'ok', exception_type = NULL "
                              "WHERE model LIKE '%NHITS' AND param = 'stat_exog_list' AND scenario = 'with_data'"))


def test_gold_plan_data_is_validated(env):
    eng = env["engine"]
    ok = {"name": "gold_ok", "data": "gold:loto6:N1", "steps": [
        {"model": "NHITS", "params": {"h": 1, "input_size": 8, "max_steps": 1, "hist_exog_list": ["hist_roll10_mean"]}},
        {"method": "NeuralForecast.__init__", "params": {"freq": 1}},
        {"method": "NeuralForecast.fit"}, {"method": "NeuralForecast.predict"}]}
    bad_col = dict(ok, name="gold_bad_col", steps=[dict(ok["steps"][0], params=dict(
        ok["steps"][0]["params"], hist_exog_list=["hist_not_there"]))] + ok["steps"][1:])
    bad_game = dict(ok, name="gold_bad_game", data="gold:loto9:N1")
    bad_base = dict(ok, name="gold_bad_base", data="synthetic", steps=[
        ok["steps"][0] | {"params": {"h": 1, "input_size": 8, "max_steps": 1}}, ok["steps"][1],
        {"method": "NeuralForecast.cross_validation", "params": {"n_windows": 2}},
        {"method": "evaluate", "params": {"baselines": ["UniformMean", "Oracle"]}}])
    loader.store_plans(eng, [loader._plan(p, "test") for p in (ok, bad_col, bad_game, bad_base)])
    res = validator.validate_plans(eng, ["gold_ok", "gold_bad_col", "gold_bad_game", "gold_bad_base"])
    assert res["gold_ok"] == []
    assert any("hist_not_there" in v.message for v in res["gold_bad_col"])
    assert any(v.rule == "unknown_data" and "loto9" in v.message for v in res["gold_bad_game"])
    rules = {(v.rule, v.message.split(":")[0]) for v in res["gold_bad_base"]}
    assert ("unknown_baseline", "unknown baseline 'Oracle'") in rules
    assert any("UniformMean" in v.message and "not a game" in v.message for v in res["gold_bad_base"])


def test_loto6_seven_models_through_dagster(env):
    eng, inst = env["engine"], env["instance"]
    res = dg.materialize([MA.model_selectors], instance=inst, resources=resources(env["url"]))
    assert res.success
    keys = inst.get_dynamic_partitions("model")
    loto6 = [k for k in keys if k.startswith("loto6.")]
    assert loto6 == [f"loto6.N{i}" for i in range(1, 7)] + ["loto6.ALL"]
    assert len(keys) == sum(SIX.values())
    for key in loto6:
        r = _run(env, [MA.trained_models], key, SMALL)
        md = _meta(r, "trained_models")
        assert md["version"].value == 1 and "NHITS" in md["cv_vs_baselines"].value
        assert md["dagster/row_count"].value == 1 and "NHITS" in md["preview"].value
        logs = [e.user_message for e in inst.all_logs(r.run_id)]
        assert any(f"training {key}: plan steps: 7/7" in m for m in logs)  # progress in the run log
        assert md["max_vram_mb"].value == "n/a (no GPU)" or float(md["max_vram_mb"].value) > 0
    reg = T.model_table(eng, "loto6")
    assert len(reg) == 7 and set(reg["status"]) == {"trained"}
    assert list(reg["selector"]) == [f"N{i}" for i in range(1, 7)] + ["ALL"]
    for r in reg.itertuples():
        assert r.hist_exog and r.futr_exog and r.stat_exog
        assert (Path(r.artifact_uri) / "NHITS_0.safetensors").is_file()  # NeuralForecast.save output
        assert r.artifact_uri.endswith(f"loto6/{r.selector}/v1") and r.created_at is not None
    all_row = reg[reg["selector"] == "ALL"].iloc[0]
    assert all_row.series_mode == "global_univariate" and all_row.n_series == 6
    with eng.connect() as conn:
        q = lambda sql: conn.execute(text(sql)).all()  # noqa: E731
        versions = q("SELECT model_id, cv_metrics, beats_baselines, execution_id FROM model_version")
        res_rows = q("SELECT model_id, wall_s, cpu_user_s, max_rss_mb, max_vram_mb, io_read_mb, device "
                     "FROM run_resource WHERE model_id IS NOT NULL")
        metrics = q("SELECT DISTINCT model FROM run_metric WHERE split = 'cv'")
        plans = q("SELECT name, model_id FROM run_plan WHERE name LIKE 'train.loto6.%'")
    assert len(versions) == 7 and len(plans) == 7 and all(p.model_id for p in plans)
    assert {m.model for m in metrics} >= {"NHITS", "Naive", "HistoricAverage", "UniformDraw", "UniformMean"}
    assert {r.model_id for r in res_rows} == set(reg["model_id"])
    assert all(r.wall_s > 0 and r.max_rss_mb > 100 and r.device for r in res_rows)
    assert all(r.max_vram_mb is None for r in res_rows)  # CPU machine: null, never a made-up 0
    # the predictions, evaluation and attribution assets of the ALL model
    r = dg.materialize([MA.predictions, MA.model_evaluation, MA.model_xai], partition_key="loto6.ALL",
                       instance=inst, resources=resources(env["url"]),
                       selection=[MA.predictions, MA.model_evaluation, MA.model_xai])
    assert r.success
    pred = deltaio.read(T.predictions_uri("loto6"))
    last = int(deltaio.read(gold.gold_uri(env["spec"], "features"))["draw_no"].max())
    assert len(pred) == 6 and set(pred["draw_no"]) == {last + 1} and pred["y_hat"].notna().all()
    ev = _meta(r, "model_evaluation")
    assert ev["forecast_vs_actual"].value.startswith("![") and Path(ev["forecast_vs_actual_path"].value).stat().st_size > 2000
    mid = int(all_row.model_id)
    with Session(eng) as s:
        xai = s.exec(select(ModelXai).where(ModelXai.model_id == mid)).all()
    feats = set(all_row.hist_exog) | set(all_row.futr_exog) | set(all_row.stat_exog)
    perm = [x for x in xai if x.method == "permutation"]
    ig = [x for x in xai if x.method == "integrated_gradients"]
    assert {x.feature_name for x in perm} == feats and all(np.isfinite(x.importance) for x in xai)
    assert {x.feature_name for x in ig} == feats | {"insample_y"}  # neuralforecast's explain (captum)
    assert all(x.importance >= 0 for x in ig) and max(ig, key=lambda x: x.importance).importance > 0
    per_time = deltaio.read(xai_uri("loto6"))
    assert set(per_time["method"]) == {"permutation", "integrated_gradients"}
    assert set(per_time["feature"]) == feats | {"insample_y"} and (per_time["attribution"] >= 0).all()
    lags = per_time[per_time["method"] == "integrated_gradients"]
    assert lags["lag"].max() == 0 and lags["lag"].min() == -game_config("loto6")["hyperparams"]["input_size"]  # + h = 1
    comp = comparison(eng, mid)
    assert set(comp["metric"]) == {"mae", "rmse", "smape"} and comp["value"].notna().all()
    ov = overview(eng, "loto6")
    assert len(ov) == 7 and ov["mae_best_baseline"].notna().all()


def test_retrain_from_the_registry_row_alone(env):
    eng = env["engine"]
    row = T.find_model(eng, "loto6", "N2")
    before = T.exog_of(row)
    out = T.retrain(eng, row.model_id, reason="test")  # nothing but the id
    after = T.get_model(eng, row.model_id)
    assert out["version"] == after.version == 2 and T.exog_of(after) == before
    plan = loader.get_plan(eng, out["plan"])
    model_step = plan["steps"][0]["params"]
    assert model_step["hist_exog_list"] == before["hist"] and model_step["futr_exog_list"] == before["futr"]
    assert model_step["max_steps"] == SMALL["max_steps"]  # the stored hyperparameters, not the config default
    assert Path(row.artifact_uri).is_dir() and Path(after.artifact_uri).is_dir()  # the old version is kept
    assert after.artifact_uri != row.artifact_uri and after.updated_at > row.updated_at
    with Session(eng) as s:
        vs = s.exec(select(ModelVersion).where(ModelVersion.model_id == row.model_id)).all()
    assert [v.version for v in vs] == [1, 2] and vs[1].reason == "test"
    assert vs[0].hist_exog == vs[1].hist_exog == before["hist"]


def test_stale_models_and_the_retrain_sensor(env):
    eng, inst = env["engine"], env["instance"]
    assert stale_models(eng) == []
    ctx = dg.build_sensor_context(instance=inst, resources={"meta_db": MetadataDB(url=env["url"])})
    assert isinstance(retrain_models_sensor(ctx), dg.SkipReason)
    # new draws: the 3 held-back draws are ingested (as a scrape would), silver and the gold tables are rebuilt
    spec = env["spec"]
    assert pipeline.ingest_bronze(eng, spec)["inserted"] == 3
    pipeline.build_silver_table(eng, spec, engine_name="pandas")
    assert stale_models(eng) == []  # silver changed, but the features the models read have not been rebuilt yet
    for build in (gold.build_features, gold.build_static, gold.build_futr):
        build(eng, spec)
    stale = stale_models(eng)
    assert {s["key"] for s in stale} == {f"loto6.N{i}" for i in range(1, 7)} | {"loto6.ALL"}
    assert all(s["reason"] == "new draws" for s in stale)
    reqs = retrain_models_sensor(ctx)
    assert sorted(r.partition_key for r in reqs) == sorted(s["key"] for s in stale)
    assert all(r.run_key.startswith("retrain-loto6.") for r in reqs)
    # the requested run retrains on the new draws: 3 more training rows
    row = T.find_model(eng, "loto6", "N3")
    with Session(eng) as s:
        v1 = s.exec(select(ModelVersion).where(ModelVersion.model_id == row.model_id)).one()
    out = T.retrain(eng, row.model_id, reason="new draws")
    assert out["train_rows"] == v1.train_rows + 3 and out["version"] == 2
    assert "loto6.N3" not in {s["key"] for s in stale_models(eng)}
    # a newer scanned release of the library is a reason too
    with eng.begin() as conn:
        lib = conn.execute(text("SELECT library_id FROM registry_library WHERE name = 'neuralforecast'")).scalar()
        conn.execute(insert(RegistryRelease.__table__).values(library_id=lib, version="99.0.0",  # type: ignore[attr-defined]
                                                              python_version="3.11"))
    assert all("new neuralforecast release" in s["reason"] for s in stale_models(eng))
    with eng.begin() as conn:  # (the fake release has no symbols: the validator would refuse every plan)
        conn.execute(text("DELETE FROM registry_release WHERE version = '99.0.0'"))
    sres = model_partitions_sensor(ctx)
    assert isinstance(sres, dg.SensorResult)


def test_retraining_refuses_when_gold_lost_a_column(env):
    eng, spec = env["engine"], env["spec"]
    row = T.find_model(eng, "loto6", "N1")
    uri = gold.gold_uri(spec, "features")
    full = deltaio.read(uri)
    gone = row.hist_exog[0]
    deltaio.overwrite(uri, gold._to_arrow(full.drop(columns=[gone])))
    with eng.connect() as conn:
        n_plans = conn.execute(text("SELECT COUNT(*) FROM run_plan")).scalar()
    with pytest.raises(T.MissingFeatureError, match=gone) as e:
        T.retrain(eng, row.model_id)
    assert e.value.missing == [gone] and "nothing was changed" in str(e.value)
    after = T.get_model(eng, row.model_id)
    assert (after.version, after.artifact_uri, after.hist_exog) == (row.version, row.artifact_uri, row.hist_exog)
    with eng.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM run_plan")).scalar() == n_plans
        assert conn.execute(text("SELECT COUNT(*) FROM model_version WHERE model_id = :m"),
                            {"m": row.model_id}).scalar() == 1
    assert Path(row.artifact_uri).is_dir()
    # through Dagster the partition fails with the same message
    res = dg.materialize([MA.trained_models], partition_key="loto6.N1", instance=env["instance"],
                         resources=resources(env["url"]), raise_on_error=False)
    assert not res.success
    deltaio.overwrite(uri, gold._to_arrow(full))  # the feature is back: retraining works again
    assert T.retrain(eng, row.model_id)["version"] == 2


def test_model_tables_and_staleness_sql_on_both_databases(engine):
    """The model_ tables (JSON lists, FKs) and the staleness query on SQLite and PostgreSQL."""
    from fcast_assets.db.feature_models import FeatureMaterialization
    from fcast_assets.lake import versions as V

    games.seed_games(engine)
    spec = games.get_game(engine, "miniloto")
    sels = seed_selectors(engine, spec)
    assert [s.name for s in sels] == ["N1", "N2", "N3", "N4", "N5", "ALL"]

    def dv(h):
        return V.record_version(engine, spec, "silver", source_hash=h, row_count=10, first_draw_date="2020-01-07",
                                last_draw_date="2020-03-10", lake_uri="/lake/silver/miniloto", delta_version=0)

    def fm():
        with Session(engine) as s:
            m = FeatureMaterialization(game_id=spec.game_id, table_name="gold_features", lake_uri="/x@v0",
                                       schema_hash="h", row_count=10)
            s.add(m)
            s.commit()
            return m.materialization_id

    d1, f1 = dv("a"), fm()
    with Session(engine) as s:
        row = ModelRegistry(game_id=spec.game_id, selector_id=sels[-1].selector_id, model_class="x.NHITS",
                            series_mode="global_univariate", n_series=5, freq=1, hyperparams={"h": 1},
                            hist_exog=["hist_a"], futr_exog=["fut_b"], stat_exog=[], version=1, status="trained",
                            artifact_uri="/art/v1")
        s.add(row)
        s.commit()
        s.add(ModelVersion(model_id=row.model_id, version=1, artifact_uri="/art/v1", dataset_version_id=d1,
                           feature_materialization_id=f1, cv_metrics={"NHITS": {"mae": 1.0}}))
        s.commit()
    tbl = T.model_table(engine, "miniloto")
    assert tbl.loc[0, "hist_exog"] == ["hist_a"] and tbl.loc[0, "selector"] == "ALL"
    assert stale_models(engine) == []
    dv("a")  # silver rebuilt with the same draws: not stale
    fm()
    assert stale_models(engine) == []
    dv("b")  # new draws, and the features rebuilt after them
    assert stale_models(engine) == []
    fm()
    assert [s["reason"] for s in stale_models(engine)] == ["new draws"]


def test_trained_models_on_a_fresh_home_fails_with_what_to_run(tmp_path, monkeypatch):
    """A model partition launched on a fresh home (selectors seeded, nothing else built): the run fails with one
    line naming what to materialize first (a dagster Failure whose description is the message, not a stack
    trace)."""
    from fcast_assets.db.engine import init_db, make_engine

    url = f"sqlite:///{tmp_path / 'meta.db'}"
    init_db(make_engine(url))
    monkeypatch.setenv("FCAST_HOME", str(tmp_path))
    monkeypatch.setenv("FCAST_LAKE", str(tmp_path / "lake"))
    inst = dg.DagsterInstance.ephemeral()
    inst.add_dynamic_partitions("model", ["loto6.N1"])
    games.seed_games(make_engine(url))
    seed_selectors(make_engine(url), games.get_game(make_engine(url), "loto6"))
    res = dg.materialize([MA.trained_models], partition_key="loto6.N1", instance=inst,
                         resources=resources(url), raise_on_error=False)
    assert not res.success
    failure = next(e for e in res.all_events if e.event_type_value == "STEP_FAILURE")
    err = failure.step_failure_data.error
    assert err.cls_name == "Failure" and "materialize gold_features for loto6 first" in err.message, err.message
    assert failure.step_failure_data.user_failure_data.description.startswith("gold features of loto6 are empty")
