"""Read-only views of the gold feature tables for notebooks and reports (nothing here writes to the lake or the DB,
except :func:`build_tiny_models`, which writes two tiny model folders).

- :func:`build_tiny_models`      tiny randomly initialised Chronos-2 / TimesFM 3 models in a local folder, in the
  ``models`` form :func:`fcast_assets.features.gold.build_embeddings` takes (offline, no download)
- :func:`feature_group`          hist / fut / stat / anomaly / embedding of a feature column name
- :func:`group_summary`          features per group of gold frames: count, mean null rate, examples
- :func:`group_sample`           the last rows of a gold frame with a few columns of every group
- :func:`null_rates`             null rate per feature column (one column per frame when given several)
- :func:`embedding_projection`   2-D PCA projection of the window embeddings, per model
- :func:`plot_embedding_projection` a scatter plot of that projection (one panel per model)
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .gold import KEYS, feature_columns

GROUPS = ["hist", "anomaly", "embedding", "fut", "stat"]


def build_tiny_models(folder: str | Path | None = None) -> dict[str, str]:
    """``{"chronos": path, "timesfm": path}``: a tiny Chronos-2 and a tiny TimesFM 3 (the real classes, random
    weights) saved under ``folder`` (default ``$FCAST_HOME/tiny_models``); loaded later from the local path only."""
    from fcast_assets import config

    from . import embeddings as EMB

    root = Path(folder) if folder is not None else config.data_home() / "tiny_models"
    root.mkdir(parents=True, exist_ok=True)
    return {"chronos": EMB.build_tiny_chronos2(root / "chronos2"), "timesfm": EMB.build_tiny_timesfm(root / "timesfm")}


def feature_group(name: str) -> str | None:
    """hist / fut / stat by prefix; the anomaly (``hist_anom_*``) and embedding (``hist_emb_*``) outputs of the hist
    group are told apart; None for a key or target column."""
    if name.startswith("hist_anom_"):
        return "anomaly"
    if name.startswith("hist_emb_"):
        return "embedding"
    prefix = name.split("_", 1)[0]
    return prefix if prefix in ("hist", "fut", "stat") else None


def _ordered(groups: pd.Index) -> list[str]:
    return [g for g in GROUPS if g in groups] + sorted(g for g in groups if g not in GROUPS)


def group_summary(*frames: pd.DataFrame, examples: int = 4) -> pd.DataFrame:
    """One row per feature group present in the gold ``frames`` (e.g. gold_features and gold_static of one game):
    features, mean null rate (each feature's rate within its own frame), the first ``examples`` names."""
    rows = [{"feature": c, "group": feature_group(c), "null_rate": float(f[c].isna().mean()) if len(f) else np.nan}
            for f in frames for c in feature_columns(f)]
    info = pd.DataFrame(rows, columns=["feature", "group", "null_rate"])
    out = info.groupby("group").agg(features=("feature", "size"), mean_null_rate=("null_rate", "mean"),
                                    examples=("feature", lambda s: ", ".join(s.iloc[:examples])))
    return out.loc[_ordered(out.index)].round({"mean_null_rate": 4})


def group_sample(df: pd.DataFrame, n: int = 5, per_group: int = 2) -> pd.DataFrame:
    """The last ``n`` rows of ``df`` with its key columns (and ``y``) and the first ``per_group`` features of every
    group."""
    cols = feature_columns(df)
    by: dict[str, list[str]] = {}
    for c in cols:
        by.setdefault(feature_group(c) or "", []).append(c)
    keep = [c for c in [*KEYS, "step", "y"] if c in df.columns]
    for g in _ordered(pd.Index(list(by))):
        keep += by[g][:per_group]
    return df[keep].tail(n)


def null_rates(frames: pd.DataFrame | Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Null rate per feature column (index), with its group; one column per frame when given ``{name: frame}``
    (e.g. one per game); rows sorted by the highest rate first."""
    named = {"null_rate": frames} if isinstance(frames, pd.DataFrame) else dict(frames)
    rates = pd.DataFrame({k: {c: float(f[c].isna().mean()) if len(f) else np.nan for c in feature_columns(f)}
                          for k, f in named.items()})
    rates.insert(0, "group", [feature_group(c) for c in rates.index])
    rates = rates.rename_axis("feature")
    return rates.loc[rates[list(named)].max(axis=1).sort_values(ascending=False, kind="stable").index]


def embedding_projection(emb: pd.DataFrame, n_components: int = 2) -> pd.DataFrame:
    """The window embeddings of gold/embeddings projected by PCA (fitted per model: dimensions differ between
    models): model, unique_id, ds, draw_no, x, y and the explained variance ratio of the two axes."""
    from sklearn.decomposition import PCA

    cols = ["model", "unique_id", "ds", "draw_no", "x", "y", "explained_x", "explained_y"]
    parts = []
    for model, e in emb.groupby("model", sort=True):
        X = np.stack(e["embedding"].map(lambda v: np.asarray(v, dtype=np.float64)).to_list())
        k = int(min(n_components, X.shape[0], X.shape[1]))
        pca = PCA(n_components=k, random_state=0).fit(X)
        Z = np.zeros((len(X), 2))
        Z[:, :k] = pca.transform(X)[:, :2]
        ev = list(pca.explained_variance_ratio_[:2]) + [0.0] * (2 - min(k, 2))
        parts.append(pd.DataFrame({
            "model": model, "unique_id": e["unique_id"].to_numpy(), "ds": e["ds"].to_numpy(),
            "draw_no": e["draw_no"].to_numpy(), "x": Z[:, 0], "y": Z[:, 1],
            "explained_x": float(ev[0]), "explained_y": float(ev[1])}))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=cols)


def plot_embedding_projection(proj: pd.DataFrame, title: str = "", size: float = 4.0) -> Any:
    """A scatter of :func:`embedding_projection`: one panel per model, one colour per series; returns the figure."""
    import matplotlib.pyplot as plt

    models = list(dict.fromkeys(proj["model"])) or [""]
    fig, axes = plt.subplots(1, len(models), figsize=(size * 1.3 * len(models), size), squeeze=False)
    for ax, model in zip(axes[0], models):
        p = proj[proj["model"] == model]
        for uid, g in p.groupby("unique_id", sort=False):
            ax.scatter(g["x"], g["y"], s=10, alpha=0.7, label=uid)
        if len(p):
            ax.set_xlabel(f"PC1 ({p['explained_x'].iloc[0]:.0%})")
            ax.set_ylabel(f"PC2 ({p['explained_y'].iloc[0]:.0%})")
        ax.set_title(model)
        ax.locator_params(nbins=5)
    axes[0][-1].legend(fontsize="small", markerscale=1.5, loc="center left", bbox_to_anchor=(1.0, 0.5))
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
