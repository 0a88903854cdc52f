"""The read-only views of the gold feature tables that notebooks/50_features.ipynb shows
(:mod:`fcast_assets.features.views`)."""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from fcast_assets.features import embeddings as E
from fcast_assets.features import gold, views
from fcast_assets.lake import games, pipeline


@pytest.fixture
def bingo5(lake_env):
    eng = lake_env["engine"]
    spec = games.get_game(eng, "bingo5")
    pipeline.ingest_bronze(eng, spec)
    pipeline.build_silver_table(eng, spec, engine_name="pandas")
    gold.build_anomaly(eng, spec)
    return {**lake_env, "spec": spec, "features": gold.build_features(eng, spec, h=5)["frame"],
            "static": gold.build_static(eng, spec)["frame"]}


def test_feature_group():
    assert [views.feature_group(c) for c in ["hist_lag1", "hist_anom_z", "hist_emb_chronos2_0", "fut_month",
                                             "stat_mean", "y", "unique_id", "draw_no"]] == \
        ["hist", "anomaly", "embedding", "fut", "stat", None, None, None]


def test_group_summary_and_sample(bingo5):
    feats, stat = bingo5["features"], bingo5["static"]
    s = views.group_summary(feats, stat)
    assert list(s.index) == ["hist", "anomaly", "fut", "stat"]  # no embedding model configured here
    assert s["features"].sum() == len(gold.feature_columns(feats)) + len(gold.feature_columns(stat))
    assert s.loc["anomaly", "features"] == 4 and s.loc["stat", "mean_null_rate"] == 0.0
    assert s.loc["hist", "examples"].startswith("hist_lag1")
    smp = views.group_sample(feats, n=3, per_group=2)
    assert len(smp) == 3 and list(smp.columns[:4]) == ["unique_id", "ds", "draw_no", "y"]
    assert [views.feature_group(c) for c in smp.columns[4:]] == ["hist", "hist", "anomaly", "anomaly", "fut", "fut"]


def test_null_rates(bingo5):
    feats = bingo5["features"]
    one = views.null_rates(feats)
    assert list(one.columns) == ["group", "null_rate"] and set(one.index) == set(gold.feature_columns(feats))
    assert one["null_rate"].is_monotonic_decreasing
    assert one.loc["hist_lag1", "null_rate"] == pytest.approx(feats["hist_lag1"].isna().mean())
    two = views.null_rates({"a": feats, "b": feats.iloc[100:]})
    assert list(two.columns) == ["group", "a", "b"] and (two["b"] <= two["a"]).all()


def _emb(models=("M1", "M2"), dims=(8, 5), n=12):
    rng = np.random.default_rng(0)
    rows = [{"unique_id": f"s{i % 3}", "ds": pd.Timestamp("2024-01-01") + pd.Timedelta(days=i), "draw_no": i,
             "model": m, "model_path": "-", "context": 16, "dim": d, "embedding": rng.normal(size=d).tolist()}
            for m, d in zip(models, dims) for i in range(n)]
    return pd.DataFrame(rows, columns=E.EMB_COLUMNS)


def test_embedding_projection_and_plot():
    emb = _emb()
    proj = views.embedding_projection(emb)
    assert len(proj) == len(emb) and set(proj["model"]) == {"M1", "M2"}
    assert np.isfinite(proj[["x", "y"]].to_numpy()).all()
    for _, p in proj.groupby("model"):  # PCA per model: centred axes, first axis explains the most
        assert abs(p["x"].mean()) < 1e-9 and p["explained_x"].iloc[0] >= p["explained_y"].iloc[0]
    one_dim = views.embedding_projection(_emb(models=("M",), dims=(1,)))  # fewer dims than axes: y is 0
    assert (one_dim["y"] == 0).all()
    assert views.embedding_projection(_emb().iloc[:0]).empty
    fig = views.plot_embedding_projection(proj, title="t")
    assert len(fig.axes) == 2 and [a.get_title() for a in fig.axes] == ["M1", "M2"]
    plt.close(fig)


def test_tiny_models_embed_into_gold(bingo5, tmp_path):
    models = views.build_tiny_models(tmp_path / "tiny")
    assert set(models) == {"chronos", "timesfm"}
    res = gold.build_embeddings(bingo5["engine"], bingo5["spec"], models=models, context=16, stride=200,
                                n_components=2)
    proj = views.embedding_projection(res["frame"])
    assert set(proj["model"]) == {"Chronos2Pipeline", "TimesFM3Forecaster"}
    assert len(proj) == len(res["frame"])
