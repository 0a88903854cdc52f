"""Series / window embeddings from foundation models (Chronos-2, Chronos-Bolt, TimesFM 3).

The loaders are the real public loading calls (``BaseChronosPipeline.from_pretrained`` and
``TimesFM3Forecaster.from_pretrained``) on a local path or a hub id. A model is used only where a path is configured
(``FCAST_CHRONOS_MODEL`` / ``FCAST_TIMESFM_MODEL``); otherwise the embeddings asset records
"skipped: no model configured", so the default materialization stays offline and fast.

A window embedding is the mean over the patch tokens of the encoder hidden states of the ``context`` values ending
at draw ``draw_no`` (inclusive): it may be used as a hist_ feature of draw ``draw_no + 1`` and later
(:func:`pca_features` does that as-of join). ``build_tiny_*`` write tiny randomly initialised models of the real
classes (tests, offline demos).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import pandas as pd

ENV = {"chronos": "FCAST_CHRONOS_MODEL", "timesfm": "FCAST_TIMESFM_MODEL"}
EMB_COLUMNS = ["unique_id", "ds", "draw_no", "model", "model_path", "context", "dim", "embedding"]


def configured_models() -> dict[str, str]:
    return {k: os.environ[v] for k, v in ENV.items() if os.environ.get(v)}


# ----------------------------------------------------------------------------------------------------- loaders
def load_chronos(path: str) -> Any:
    from chronos import BaseChronosPipeline

    return BaseChronosPipeline.from_pretrained(path, device_map="cpu")


def load_timesfm(path: str) -> Any:
    from timesfm3 import TimesFM3Forecaster

    return TimesFM3Forecaster.from_pretrained(path, device="cpu")


class Embedder:
    """Embeds a batch of 1-D windows into (batch, d) vectors with a loaded model."""

    def __init__(self, kind: str, path: str):
        self.kind, self.path = kind, path
        self.model = load_chronos(path) if kind == "chronos" else load_timesfm(path)
        self.name = type(self.model).__name__

    def embed(self, windows: list[np.ndarray]) -> np.ndarray:
        if self.kind == "chronos":
            return self._embed_chronos(windows)
        return self._embed_timesfm(windows)

    def _embed_chronos(self, windows: list[np.ndarray]) -> np.ndarray:
        import torch

        ctx = [torch.tensor(w, dtype=torch.float32) for w in windows]
        if self.name == "Chronos2Pipeline":
            embs, _ = self.model.embed(ctx)  # list of (n_variates, patches + 2, d)
            return np.stack([e[0, :-2].float().mean(0).numpy() if e.shape[1] > 2 else e[0].float().mean(0).numpy()
                             for e in embs])
        emb, _ = self.model.embed(torch.nn.utils.rnn.pad_sequence(
            [c.flip(0) for c in ctx], batch_first=True, padding_value=float("nan")).flip(1))
        return emb.float().mean(1).numpy()  # (batch, patches [+ reg], d)

    def _embed_timesfm(self, windows: list[np.ndarray]) -> np.ndarray:
        """TimesFM has no embed method: the transformer stack's output is caught by a forward hook."""
        import torch

        caught: list[torch.Tensor] = []

        def hook(_m: Any, _i: Any, out: Any) -> None:
            t = out[0] if isinstance(out, (tuple, list)) else out
            caught.append(t.detach())

        h = self.model.model.transformer_stack.register_forward_hook(hook)
        out: list[Optional[np.ndarray]] = [None] * len(windows)
        try:
            by_len: dict[int, list[int]] = {}
            for i, w in enumerate(windows):  # equal lengths per call: no padding of short windows in the mean
                by_len.setdefault(len(w), []).append(i)
            for idx in by_len.values():
                caught.clear()
                list(self.model.predict_batch(contexts=[np.asarray(windows[i], dtype=np.float32) for i in idx],
                                              horizon=1))  # a generator; runs in chunks of per_core_batch_size
                t = torch.cat(caught)[:len(idx)]  # (batch, variates, patches, model_dims)
                vecs = t.reshape(t.shape[0], -1, t.shape[-1]).float().mean(1).numpy()
                for j, i in enumerate(idx):
                    out[i] = vecs[j]
        finally:
            h.remove()
        return np.stack(out)


# ------------------------------------------------------------------------------------------------- embeddings
def window_ends(draw_nos: np.ndarray, stride: int, context: int) -> list[int]:
    """Positions (0-based) of the windows' last draws: every ``stride`` draws once ``context`` are known + the last."""
    n = len(draw_nos)
    ends = list(range(context - 1, n, max(int(stride), 1)))
    if n and (not ends or ends[-1] != n - 1):
        ends.append(n - 1)
    return ends


def embed_frame(frame: pd.DataFrame, embedder: Embedder, context: int = 64, stride: int = 50,
                batch: int = 64, progress: Optional[Callable[[str], None]] = None) -> pd.DataFrame:
    """One row per series and window end: unique_id, ds, draw_no (window end), model, dim, embedding (list).

    ``progress(unique_id)`` is called after each series (optional)."""
    rows: list[dict[str, Any]] = []
    for uid, g in frame.groupby("unique_id", sort=False):
        y = g["y"].to_numpy(dtype=np.float32)
        ends = window_ends(g["draw_no"].to_numpy(), stride, min(context, len(y)))
        wins = [y[max(0, e - context + 1): e + 1] for e in ends]
        vecs = np.concatenate([embedder.embed(wins[i:i + batch]) for i in range(0, len(wins), batch)])
        for e, v in zip(ends, vecs):
            rows.append({"unique_id": uid, "ds": g["ds"].iloc[e], "draw_no": int(g["draw_no"].iloc[e]),
                         "model": embedder.name, "model_path": embedder.path, "context": int(context),
                         "dim": int(len(v)), "embedding": v.astype(np.float32).tolist()})
        if progress:
            progress(str(uid))
    return pd.DataFrame(rows, columns=EMB_COLUMNS)


def pca_features(emb: pd.DataFrame, frame: pd.DataFrame, n_components: int = 4, cutoff: Optional[int] = None
                 ) -> pd.DataFrame:
    """hist_emb_<model>_<i>: PCA of the window embeddings (fitted on windows ending at or before ``cutoff``), joined
    as of the previous draw: the value at draw t comes from the latest window ending before t."""
    from sklearn.decomposition import PCA

    out = frame[["unique_id", "draw_no"]].copy()
    for model, e in emb.groupby("model"):
        X = np.stack(e["embedding"].map(np.asarray).to_list())
        fit = X if cutoff is None else X[(e["draw_no"] <= cutoff).to_numpy()]
        k = int(min(n_components, fit.shape[0], fit.shape[1]))
        Z = PCA(n_components=k, random_state=0).fit(fit).transform(X)
        tag = model.lower().replace("pipeline", "").replace("forecaster", "")
        cols = [f"hist_emb_{tag}_{i}" for i in range(k)]
        z = pd.DataFrame(Z, columns=cols)
        z["unique_id"] = e["unique_id"].to_numpy()
        z["avail_from"] = e["draw_no"].to_numpy() + 1  # usable from the next draw on
        parts = []
        for uid, f in out.groupby("unique_id", sort=False):
            zz = z[z["unique_id"] == uid].sort_values("avail_from")
            m = pd.merge_asof(f.reset_index().sort_values("draw_no"), zz.drop(columns="unique_id"),
                              left_on="draw_no", right_on="avail_from", direction="backward")
            parts.append(m.set_index("index")[cols])
        out = out.join(pd.concat(parts))
    return out.drop(columns=["unique_id", "draw_no"])


# --------------------------------------------------------------------------------------------- tiny models
def build_tiny_chronos2(path: str | Path, d_model: int = 16, context_length: int = 64, patch: int = 16) -> str:
    from chronos import Chronos2Pipeline
    from chronos.chronos2 import Chronos2Model
    from chronos.chronos2.config import Chronos2CoreConfig

    cfg = Chronos2CoreConfig(
        d_model=d_model, d_kv=8, d_ff=32, num_layers=1, num_heads=2,
        chronos_config={"context_length": context_length, "input_patch_size": patch, "input_patch_stride": patch,
                        "output_patch_size": patch, "max_output_patches": 2,
                        "quantiles": [0.1, 0.5, 0.9], "use_reg_token": True, "use_arcsinh": True},
        chronos_pipeline_class="Chronos2Pipeline")
    Chronos2Pipeline(model=Chronos2Model(cfg)).save_pretrained(str(path))
    return str(path)


def build_tiny_chronos_bolt(path: str | Path, d_model: int = 16, context_length: int = 64, patch: int = 16) -> str:
    from chronos.chronos_bolt import ChronosBoltModelForForecasting
    from transformers import T5Config

    cfg = T5Config(d_model=d_model, d_kv=8, d_ff=32, num_layers=1, num_decoder_layers=1, num_heads=2,
                   vocab_size=2, decoder_start_token_id=0, pad_token_id=0, is_encoder_decoder=True,
                   chronos_config={"context_length": context_length, "prediction_length": patch,
                                   "input_patch_size": patch, "input_patch_stride": patch,
                                   "quantiles": [0.1, 0.5, 0.9], "use_reg_token": True},
                   chronos_pipeline_class="ChronosBoltPipeline")
    ChronosBoltModelForForecasting(cfg).save_pretrained(str(path))
    return str(path)


def build_tiny_timesfm(path: str | Path, model_dims: int = 16, patch: int = 8) -> str:
    from timesfm3.torch import configs
    from timesfm3.torch.model import TimesFM3Torch

    tcfg = configs.StackedTransformersConfig(num_layers=1, transformer=configs.TransformerConfig(
        model_dims=model_dims, hidden_dims=model_dims, num_heads=2, attention_norm="rms", feedforward_norm="rms",
        qk_norm="rms", use_bias=False, use_rope_seq=True, use_rope_var=False, ff_activation="relu",
        deterministic=True))
    rcfg = configs.ResidualBlockConfig(hidden_dims=model_dims, output_dims=model_dims, use_bias=False,
                                       activation="relu")
    TimesFM3Torch(input_patch_len=patch, output_patch_len=2 * patch, residual_block_config=rcfg,
                  transformer_config=tcfg).save_pretrained(str(path))
    return str(path)
