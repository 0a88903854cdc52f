"""Embeddings through the real Chronos-2, Chronos-Bolt and TimesFM 3 classes: tiny randomly initialised models are
built and saved in tmp, then loaded through the same loading code a configured hub id / path goes through
(``BaseChronosPipeline.from_pretrained`` / ``TimesFM3Forecaster.from_pretrained``); no network."""

from pathlib import Path

import dagster as dg
import numpy as np
import pytest
from sqlmodel import Session, select

from fcast_assets.db.feature_models import FeatureDef, FeatureMaterialization
from fcast_assets.features import embeddings as E
from fcast_assets.features import gold
from fcast_assets.lake import deltaio, games, pipeline


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    d = tmp_path_factory.mktemp("fm")
    return {"chronos2": E.build_tiny_chronos2(d / "chronos2"), "bolt": E.build_tiny_chronos_bolt(d / "bolt"),
            "timesfm": E.build_tiny_timesfm(d / "timesfm")}


@pytest.fixture
def env(lake_env):
    eng = lake_env["engine"]
    spec = games.get_game(eng, "bingo5")
    pipeline.ingest_bronze(eng, spec)
    pipeline.build_silver_table(eng, spec, engine_name="pandas")
    return {**lake_env, "spec": spec}


@pytest.mark.parametrize("key,kind,cls", [("chronos2", "chronos", "Chronos2Pipeline"),
                                          ("bolt", "chronos", "ChronosBoltPipeline"),
                                          ("timesfm", "timesfm", "TimesFM3Forecaster")])
def test_real_classes_embed(tiny, key, kind, cls):
    emb = E.Embedder(kind, tiny[key])
    assert emb.name == cls
    rng = np.random.default_rng(0)
    wins = [rng.integers(1, 40, 64).astype(np.float32), rng.integers(1, 40, 23).astype(np.float32)]
    v = emb.embed(wins)
    assert v.shape == (2, 16) and np.isfinite(v).all()
    assert not np.allclose(v[0], v[1])
    # deterministic: the same window gives the same vector
    np.testing.assert_allclose(emb.embed(wins[:1])[0], v[0], rtol=1e-5, atol=1e-6)


def test_timesfm_loaded_weights_are_the_saved_ones(tiny):
    """TimesFM loading is not strict (FOUNDATION_MODELS.md): compare the state dicts after loading."""
    import torch
    from safetensors.torch import load_file

    saved = load_file(str(Path(tiny["timesfm"]) / "model.safetensors"))
    loaded = E.load_timesfm(tiny["timesfm"]).model.state_dict()
    assert set(saved) == set(loaded)
    for k, t in saved.items():
        assert torch.equal(t, loaded[k].cpu()), k


def test_hub_id_offline_fails_fast():
    with pytest.raises(Exception):
        E.load_chronos("amazon/chronos-2-this-does-not-exist")


def test_gold_embeddings_and_pca_features(env, tiny):
    eng, spec = env["engine"], env["spec"]
    res = gold.build_embeddings(eng, spec, models={"chronos": tiny["chronos2"], "timesfm": tiny["timesfm"]},
                                context=32, stride=100, n_components=3)
    t = deltaio.read(gold.gold_uri(spec, "embeddings"))
    assert set(t["model"]) == {"Chronos2Pipeline", "TimesFM3Forecaster"}
    assert set(t["unique_id"]) == set(gold.slot_ids(spec))
    assert (t["dim"] == 16).all() and all(len(v) == 16 for v in t["embedding"])
    n = int(gold.slot_series(spec).groupby("unique_id").size().iloc[0])
    per = t[(t["unique_id"] == "bingo5_N1") & (t["model"] == "TimesFM3Forecaster")]
    assert per["draw_no"].max() == n and len(per) == len(E.window_ends(np.arange(n), 100, 32))
    cols = res["pca_columns"]
    assert len(cols) == 6 and all(c.startswith("hist_emb_") for c in cols)
    ef = deltaio.read(gold.gold_uri(spec, "emb_features"))
    # as-of the previous draw: nothing before the first window end + 1, values from then on
    first_end = int(per["draw_no"].min())
    one = ef[ef["unique_id"] == "bingo5_N1"].sort_values("draw_no")
    assert one.loc[one["draw_no"] <= first_end, cols].isna().all().all()
    assert one.loc[one["draw_no"] > first_end, cols].notna().all().all()
    # gold_features picks the hist_emb_* columns up, and every one has a feature_def row
    gold.build_anomaly(eng, spec)
    f = gold.build_features(eng, spec)
    assert set(cols) <= set(f["frame"].columns)
    with Session(eng) as s:
        names = {d.name for d in s.exec(select(FeatureDef))}
        tabs = {m.table_name for m in s.exec(select(FeatureMaterialization))}
    assert set(cols) <= names and "gold_embeddings" in tabs


def test_embeddings_asset_with_configured_model(env, tiny, monkeypatch):
    from fcast_assets.defs.features.assets import embeddings
    from .conftest import resources

    monkeypatch.setenv("FCAST_CHRONOS_MODEL", tiny["bolt"])
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("game", ["bingo5"])
    r = dg.materialize([embeddings], partition_key="bingo5", instance=instance,
                       resources=resources(env["url"]),
                       run_config={"ops": {"embeddings": {"config": {"stride": 200, "context": 32}}}})
    assert r.success
    meta = r.get_asset_materialization_events()[0].materialization.metadata
    assert meta["status"].value == "ok" and meta["models"].value == {"chronos": tiny["bolt"]}
    assert [c.passed for c in r.get_asset_check_evaluations()] == [True]
    assert meta["dagster/row_count"].value > 0
