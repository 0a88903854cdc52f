"""A declarative adapter for foundation-model libraries (chronos-forecasting, timesfm): pretrained pipelines that
forecast without a fit, probed on tiny models of the real classes built here (../shared/FOUNDATION_MODELS.md).

One YAML per library (``<library>_cells.yaml``) names:

- ``variants``: the pipeline / forecaster classes (one group each). The group's setup builds a tiny model of the
  class into the run's work folder (:data:`BUILDERS`; random weights, no network) and loads it through the
  library's public loader (``loader``: ``BaseChronosPipeline.from_pretrained`` / ``TimesFM3Forecaster
  .from_pretrained``) on that local folder, with ``HF_HUB_OFFLINE=1``: every cell runs against the loaded object
  (the runner forks a child per cell). ``sizes`` are the tiny model's patch, context and own prediction length;
- ``families``: a public method of the loaded object (``method``), how the series are passed (``input``:
  ``tensors``, ``arrays``, ``array``, ``df``), base kwargs and the post-condition (``check``); op ``load`` calls
  the loader itself with the probed kwarg, then ``then`` on what it loaded;
- ``cells``: ``{param, values, generic, inputs, data, with, scenario, only}``. ``param`` is looked up in the
  registry row of ``<variant>.<method>`` (or ``kwargs_of`` for a loader's ``**kwargs``): a variant whose method
  does not take it gets no cell; a family's ``via_kwargs`` names documented keyword arguments a method takes
  through its ``**kwargs`` (planned only for a variant whose registry row has one); ``generic: true`` adds the
  candidates derived from the parameter's registry row; ``inputs`` names
  a list of data variants of the series argument (``{label, data}``); ``{__size__: name, plus: k}`` is a size of
  the variant's tiny model; ``{__data__: name}`` an object of the cell's data set (covariates, future_df).

Post-conditions (a breach makes the cell ``suspect``): one forecast per series and step (the horizon asked,
or the model's own when None), the quantile levels asked for present and non-decreasing in the level, no NaN,
``predict_df`` timestamps on the data's grid after each series' last timestamp, embeddings of
``ceil(context / patch) + special tokens`` patches of ``d_model``. Every cell records its scenario facts.
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import io
import json
import logging
import math
import os
import sys
import warnings
from functools import lru_cache
from pathlib import Path
from statistics import NormalDist
from typing import Any, Callable

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from .candidates import candidates, label
from .frame_adapter import DeclarativeAdapter
from .function_adapter import load_spec
from .postconditions import expected_grid
from ..registry.view import params_of
from .runner import Cell, Group

H = 4  # the base horizon of every family (covariates are built for it)
DEFAULT_DATA: dict[str, Any] = {"n_series": 2, "length": 40, "lengths": None, "freq": "D", "nan": None,
                                "constant": False, "negative": False, "variates": 1, "cov": None, "gaps": False,
                                "shuffle": False, "dup": False, "names": None, "h": H}
Q9 = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
Q_CHRONOS2 = [0.01, 0.05, *Q9, 0.95, 0.99]  # the released Chronos-2 quantile set


def _import(qualname: str) -> Any:
    mod, _, attr = qualname.rpartition(".")
    try:
        return getattr(importlib.import_module(mod), attr)
    except ModuleNotFoundError:  # Class.method
        obj = _import(mod)
        return getattr(obj, attr)


def _short(q: str) -> str:
    return q.rsplit(".", 1)[-1]


def _same(a: Any, b: Any) -> bool:
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


def offline() -> None:
    """No network at run time: the loaders get local folders only; a hub module imported before is told too."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    try:
        import huggingface_hub.constants as hub

        hub.HF_HUB_OFFLINE = True
    except ImportError:
        pass


# ------------------------------------------------------------------------------------------------ tiny models
def _ordered_head(block: Any, quantiles: list[float], steps: int) -> None:
    """Make a ResidualBlock output head give, for every step, the standard normal quantile of each level (scaled):
    the tiny model's quantiles are then ordered by construction, as a trained model's are, so that a quantile
    post-condition judges what the library does with them (interpolation, order of levels, unrolling)."""
    import torch

    z = torch.tensor([NormalDist().inv_cdf(q) * 0.5 for q in quantiles], dtype=torch.float32)
    with torch.no_grad():
        for layer in (block.output_layer, block.residual_layer):
            layer.weight.zero_()
        block.output_layer.bias.zero_()
        block.residual_layer.bias.copy_(z.repeat_interleave(steps))  # layout (q p): quantile-major


def build_chronos2(path: Path, sizes: dict[str, int]) -> str:
    """Chronos-2 (same recipe as features.embeddings.build_tiny_chronos2) with the released quantile set: a model
    with fewer quantiles cannot predict at all (its unrolled quantiles default to 0.1 … 0.9)."""
    from chronos import Chronos2Pipeline
    from chronos.chronos2 import Chronos2Model
    from chronos.chronos2.config import Chronos2CoreConfig

    patch = int(sizes["patch"])
    cfg = Chronos2CoreConfig(
        d_model=int(sizes["d_model"]), d_kv=8, d_ff=32, num_layers=1, num_heads=2,
        chronos_config={"context_length": int(sizes["context"]), "input_patch_size": patch,
                        "input_patch_stride": patch, "output_patch_size": patch,
                        "max_output_patches": int(sizes["max_output"]) // patch, "quantiles": Q_CHRONOS2,
                        "use_reg_token": True, "use_arcsinh": True},
        chronos_pipeline_class="Chronos2Pipeline")
    model = Chronos2Model(cfg)
    _ordered_head(model.output_patch_embedding, Q_CHRONOS2, patch)
    Chronos2Pipeline(model=model).save_pretrained(str(path))
    return str(path)


def build_chronos_bolt(path: Path, sizes: dict[str, int]) -> str:
    """Chronos-Bolt (features.embeddings.build_tiny_chronos_bolt's recipe) with the released 0.1 … 0.9 set."""
    from chronos.chronos_bolt import ChronosBoltModelForForecasting
    from transformers import T5Config

    patch = int(sizes["patch"])
    cfg = T5Config(d_model=int(sizes["d_model"]), d_kv=8, d_ff=32, num_layers=1, num_decoder_layers=1, num_heads=2,
                   vocab_size=2, decoder_start_token_id=0, pad_token_id=0, is_encoder_decoder=True,
                   chronos_config={"context_length": int(sizes["context"]), "prediction_length": int(sizes["max_output"]),
                                   "input_patch_size": patch, "input_patch_stride": patch, "quantiles": Q9,
                                   "use_reg_token": True},
                   chronos_pipeline_class="ChronosBoltPipeline")
    model = ChronosBoltModelForForecasting(cfg)
    _ordered_head(model.output_patch_embedding, Q9, int(sizes["max_output"]))
    model.save_pretrained(str(path))
    return str(path)


def build_chronos_t5(path: Path, sizes: dict[str, int]) -> str:
    """The original Chronos (a T5 over tokenized values, forecasts are samples): ``T5ForConditionalGeneration``
    with a ``chronos_config`` (MeanScaleUniformBins tokenizer) and ``chronos_pipeline_class="ChronosPipeline"``."""
    from transformers import T5Config, T5ForConditionalGeneration

    n_tokens = 64
    cfg = T5Config(d_model=int(sizes["d_model"]), d_kv=8, d_ff=32, num_layers=1, num_decoder_layers=1, num_heads=2,
                   vocab_size=n_tokens, decoder_start_token_id=0, pad_token_id=0, eos_token_id=1,
                   is_encoder_decoder=True,
                   chronos_config={"tokenizer_class": "MeanScaleUniformBins",
                                   "tokenizer_kwargs": {"low_limit": -15.0, "high_limit": 15.0},
                                   "context_length": int(sizes["context"]),
                                   "prediction_length": int(sizes["max_output"]), "n_tokens": n_tokens,
                                   "n_special_tokens": 2, "pad_token_id": 0, "eos_token_id": 1,
                                   "use_eos_token": True, "model_type": "seq2seq",
                                   "num_samples": int(sizes["num_samples"]), "temperature": 1.0, "top_k": 50,
                                   "top_p": 1.0},
                   chronos_pipeline_class="ChronosPipeline")
    T5ForConditionalGeneration(cfg).save_pretrained(str(path))
    return str(path)


def build_timesfm(path: Path, sizes: dict[str, int]) -> str:
    from ..features.embeddings import build_tiny_timesfm

    return build_tiny_timesfm(path, patch=int(sizes["patch"]))


BUILDERS: dict[str, Callable[[Path, dict[str, int]], str]] = {
    "chronos2": build_chronos2, "chronos_bolt": build_chronos_bolt, "chronos_t5": build_chronos_t5,
    "timesfm": build_timesfm}


# ------------------------------------------------------------------------------------------------ data
def data_spec(*overrides: dict[str, Any] | None) -> dict[str, Any]:
    out = dict(DEFAULT_DATA)
    for o in overrides:
        out.update(o or {})
    return out


@lru_cache(maxsize=64)
def _build(key: str) -> dict[str, Any]:
    return build_data(json.loads(key))


def build_data(spec: dict[str, Any]) -> dict[str, Any]:
    """The series of one data spec in every form a family passes them (deterministic, no network).

    ``n_series`` ids (``a``, ``b``, …) of ``length`` daily points (``lengths`` per id), ``variates`` targets per
    id (``target``, ``target2``), ``nan`` (leading / inner / all) in the first id, ``constant`` / ``negative``
    values; ``cov`` adds covariates ``x_past`` (past only) and ``x_fut`` (known ``h`` steps ahead):
    ``both``, ``past``, ``future_only`` (a future value without its past, chronos dict inputs). Forms: ``y`` (numpy,
    1-D or variates × length), ``tensors``, ``arrays``, ``array`` (the first id), ``dicts`` (chronos covariate
    inputs), ``df`` / ``future_df`` (+ ``future_df_missing_col`` / ``_short`` / ``_shifted`` / ``_extra``),
    ``past_cov`` / ``past_cov_short`` / ``past_cov_one`` / ``past_future_cov`` (+ ``_long``, ``1``: the first id)
    for timesfm; ``last`` (each id's last timestamp), ``freq``."""
    n, h = int(spec["n_series"]), int(spec["h"])
    lengths = list(spec["lengths"]) if spec.get("lengths") else [int(spec["length"])] * n
    nv = int(spec.get("variates") or 1)
    rng = np.random.default_rng(0)
    ids = [chr(ord("a") + i) for i in range(n)]
    ys, xp, xf, frames, fut = [], [], [], [], []
    for i, (uid, L) in enumerate(zip(ids, lengths)):
        t = np.arange(L + h)
        rows = []
        for v in range(nv):
            y = 10 + i + v + 3 * np.sin(2 * np.pi * t / 7) + 0.05 * t + rng.normal(0, 0.2, len(t))
            if spec.get("constant"):
                y = np.full(len(t), 5.0)
            if spec.get("negative"):
                y = y - 30
            rows.append(y[:L].astype("float32"))
        if i == 0 and spec.get("nan") and L:
            for y in rows:
                if spec["nan"] == "leading":
                    y[:min(5, L - 1)] = np.nan
                elif spec["nan"] == "inner":
                    y[L // 2] = np.nan
                elif spec["nan"] == "all":
                    y[:] = np.nan
        ys.append(rows[0] if nv == 1 else np.stack(rows))
        xp.append(np.cos(t / 3)[:L].astype("float32"))
        xf.append(np.sin(t / 5).astype("float32"))  # L + h values: the future part is known
        ds = pd.date_range("2021-01-04", periods=L + h, freq=spec["freq"])
        f = pd.DataFrame({"item_id": uid, "timestamp": ds[:L]})
        for v, y in enumerate(rows):
            f["target" if v == 0 else f"target{v + 1}"] = y
        if spec.get("cov"):
            f["x_past"] = xp[-1]
            f["x_fut"] = xf[-1][:L]
        frames.append(f)
        fut.append(pd.DataFrame({"item_id": uid, "timestamp": ds[L:], "x_fut": xf[-1][L:]}))
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        {"item_id": pd.Series(dtype=object), "timestamp": pd.Series(dtype="datetime64[ns]"),
         "target": pd.Series(dtype="float32")})
    last = {uid: f["timestamp"].max() for uid, f in zip(ids, frames) if len(f)}
    if spec.get("gaps") and len(df):
        pos = df.groupby("item_id").cumcount()
        df = df[~pos.isin([3, 4])].reset_index(drop=True)
    if spec.get("dup") and len(df):
        df = pd.concat([df, df.iloc[[5]]], ignore_index=True)
    if spec.get("shuffle") and len(df):
        df = df.sample(frac=1.0, random_state=0).reset_index(drop=True)
    future_df = pd.concat(fut, ignore_index=True) if fut else None
    names = spec.get("names")
    if names:
        df = df.rename(columns=dict(zip(["item_id", "timestamp", "target"], names)))
    out: dict[str, Any] = {"y": ys, "arrays": ys, "array": ys[0] if ys else np.array([], dtype="float32"),
                           "df": df, "future_df": future_df, "last": last, "freq": spec["freq"], "ids": ids,
                           "lengths": lengths, "spec": spec}
    if future_df is not None:
        out["future_df_missing_col"] = future_df.drop(columns="x_fut")
        out["future_df_short"] = future_df.groupby("item_id").head(h - 1).reset_index(drop=True)
        shifted = future_df.copy()
        shifted["timestamp"] = shifted["timestamp"] + pd.Timedelta(days=1)
        out["future_df_shifted"] = shifted
        out["future_df_extra"] = future_df.assign(x_unknown=1.0)
    cov = spec.get("cov")
    dicts = []
    for y, p, f in zip(ys, xp, xf):
        d: dict[str, Any] = {"target": y}
        L = y.shape[-1]
        if cov in ("both", "past"):
            d["past_covariates"] = {"x_past": p, **({"x_fut": f[:L]} if cov == "both" else {})}
        if cov == "both":
            d["future_covariates"] = {"x_fut": f[L:]}
        if cov == "future_only":
            d["past_covariates"] = {"x_past": p}
            d["future_covariates"] = {"x_fut": f[L:]}
        dicts.append(d)
    out["dicts"] = dicts
    out["past_cov"] = xp
    out["past_cov_short"] = [p[1:] for p in xp]
    out["past_cov_one"] = xp[:1]
    out["past_future_cov"] = xf
    out["past_future_cov_long"] = [np.concatenate([f, np.zeros(3, dtype="float32")]) for f in xf]
    out["past_future_cov1"] = xf[0] if xf else None
    return out


def _tensors(data: dict[str, Any]) -> list[Any]:
    import torch

    if data["spec"].get("cov"):
        return data["dicts"]
    return [torch.tensor(y) for y in data["y"]]


INPUTS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "tensors": _tensors, "arrays": lambda d: list(d["arrays"]), "array": lambda d: d["array"],
    "df": lambda d: d["df"]}


# ------------------------------------------------------------------------------------------------ checks
def _np(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().float().cpu().numpy()
    return np.asarray(x, dtype="float64")


def _entries(out: Any) -> list[np.ndarray]:
    """A list of per-series arrays: a list / tuple of tensors as is, a batch tensor split along its first axis."""
    if isinstance(out, (list, tuple)):
        return [_np(o) for o in out]
    a = _np(out)
    return [a[i] for i in range(a.shape[0])] if a.ndim else []


def check_monotone(q: np.ndarray, levels: list[float], axis: int = -1) -> list[str]:
    """Quantiles along ``axis`` (in the order of ``levels``) must not decrease with the level."""
    if q.size == 0 or len(levels) < 2:
        return []
    order = np.argsort(np.asarray(levels, dtype="float64"), kind="stable")
    s = np.take(q, order, axis=axis)
    d = np.diff(s, axis=axis)
    if np.nanmin(d) < -1e-5 * max(1.0, float(np.nanmax(np.abs(s)))):
        return [f"quantiles decrease with the level (by up to {-float(np.nanmin(d)):.3g})"]
    return []


def _counts(n: int, expected: int, what: str) -> list[str]:
    return [] if n == expected else [f"{n} {what}, expected {expected} (one per series)"]


def check_predict(out: Any, ctx: dict[str, Any]) -> list[str]:
    """chronos ``predict``: per series (variates, quantiles, h) — the model's quantiles, h steps, ordered, no NaN;
    the original Chronos (``samples``): (num_samples, h) sample paths, no NaN."""
    ents = _entries(out)
    b = _counts(len(ents), ctx["n_series"], "forecasts")
    samples = ctx.get("samples")
    nq, h = (samples if samples else len(ctx["model_quantiles"])), ctx["h"]
    what = "samples" if samples else "quantiles"
    for i, e in enumerate(ents):
        e = e.reshape(-1, *e.shape[-2:]) if e.ndim >= 2 else e.reshape(1, 1, -1)
        if e.shape[-2:] != (nq, h):
            b.append(f"series {i}: ({what}, steps) {tuple(e.shape[-2:])}, expected ({nq}, {h})")
            break
        if np.isnan(e).any():
            b.append(f"series {i}: NaN in the forecast")
            break
        if not samples:
            b += check_monotone(e, ctx["model_quantiles"], axis=-2)
        if b:
            break
    return b


def check_quantiles(out: Any, ctx: dict[str, Any]) -> list[str]:
    """chronos ``predict_quantiles``: (quantiles, mean); per series (variates, h, levels asked) and (variates, h)."""
    if not isinstance(out, tuple) or len(out) != 2:
        return [f"not a (quantiles, mean) pair ({type(out).__name__})"]
    qs, means = _entries(out[0]), _entries(out[1])
    b = _counts(len(qs), ctx["n_series"], "quantile forecasts") + _counts(len(means), ctx["n_series"], "means")
    levels, h = list(ctx["levels"]), ctx["h"]
    for i, (q, m) in enumerate(zip(qs, means)):
        q = q.reshape(-1, *q.shape[-2:]) if q.ndim >= 2 else q
        if q.ndim < 2 or q.shape[-2:] != (h, len(levels)):
            b.append(f"series {i}: (steps, levels) {tuple(q.shape[-2:])}, expected ({h}, {len(levels)})")
            break
        if m.shape[-1:] != (h,):
            b.append(f"series {i}: mean of {m.shape[-1:]} steps, expected {h}")
            break
        if np.isnan(q).any() or np.isnan(m).any():
            b.append(f"series {i}: NaN in the forecast")
            break
        b += check_monotone(q, levels, axis=-1)
        if b:
            break
    return b


def check_frame(out: Any, ctx: dict[str, Any]) -> list[str]:
    """chronos ``predict_df``: one row per id, target and step, timestamps on the data's grid after each id's last
    timestamp, ``predictions`` and one column per level asked (ordered), no NaN."""
    if not isinstance(out, pd.DataFrame):
        return [f"no DataFrame returned ({type(out).__name__})"]
    idc, tsc = ctx["id_column"], ctx["timestamp_column"]
    if idc not in out.columns or tsc not in out.columns:
        return [f"output lacks {idc}/{tsc}: {list(out.columns)[:8]}"]
    last, h, nt = ctx["last"], ctx["h"], ctx["n_targets"]
    b: list[str] = []
    if len(out) != len(last) * h * nt:
        b.append(f"{len(out)} rows, expected ids {len(last)} × targets {nt} × h {h}")
    if set(map(str, out[idc].unique())) != set(map(str, last)):
        b.append(f"ids {sorted(map(str, out[idc].unique()))[:4]} differ from the input's {sorted(last)[:4]}")
    off = []
    for uid, g in out.groupby(idc, sort=False):
        if str(uid) not in last:
            continue
        for _, gt in (g.groupby("target_name", sort=False) if "target_name" in g.columns else [(None, g)]):
            want = [pd.Timestamp(x) for x in expected_grid(last[str(uid)], h, ctx["freq"])]
            if [pd.Timestamp(x) for x in gt[tsc]] != want:
                off.append(str(uid))
                break
    if off:
        b.append(f"timestamps not on the data's {ctx['freq']!r} grid after the last one for {', '.join(off[:3])}")
    cols = ["predictions"] + [str(q) for q in ctx["levels"]]
    missing = [c for c in cols if c not in out.columns]
    if missing:
        return b + [f"requested columns missing: {', '.join(missing[:6])}"]
    vals = out[cols].to_numpy(dtype="float64")
    if np.isnan(vals).any():
        b.append(f"NaN in {[c for c in cols if out[c].isna().any()][:4]}")
    levels = list(dict.fromkeys(ctx["levels"]))
    b += check_monotone(out[[str(q) for q in levels]].to_numpy(dtype="float64"), levels, axis=-1)
    return b


def check_embed(out: Any, ctx: dict[str, Any]) -> list[str]:
    """chronos ``embed``: (embeddings, loc_scale); per series (variates, ceil(context / patch) + special tokens,
    d_model), no NaN."""
    if not isinstance(out, tuple) or len(out) != 2:
        return [f"not an (embeddings, loc_scale) pair ({type(out).__name__})"]
    ents = _entries(out[0])
    b = _counts(len(ents), ctx["n_series"], "embeddings")
    s = ctx["sizes"]
    used = min(max(ctx["lengths"] or [0]), ctx.get("context_length") or s["context"], s["context"])
    want = (math.ceil(used / s["patch"]) + s["embed_extra"], s["d_model"])
    for i, e in enumerate(ents):
        if e.shape[-2:] != want:
            b.append(f"series {i}: (patches, dims) {tuple(e.shape[-2:])}, expected {want}")
            break
        if np.isnan(e).any():
            b.append(f"series {i}: NaN in the embedding")
            break
    return b


def check_timesfm(out: Any, ctx: dict[str, Any]) -> list[str]:
    """TimesFM ``predict`` / ``predict_batch``: one ForecastOutput per series (its ts_id), a forecast of h steps,
    quantiles (h, model quantiles) when asked (ordered when sort_quantiles, the point forecast their 0.5 level),
    none when not, no NaN; as many ts_ids as series; make_positive on a nonnegative context gives no negative
    value."""
    outs = [out] if ctx["single"] else list(out)
    b = _counts(len(outs), ctx["n_series"], "forecasts")
    h, nq = ctx["h"], len(ctx["model_quantiles"])
    ids = ctx.get("ts_ids")
    if ids is not None and len(ids) != ctx["n_series"]:
        b.append(f"{len(ids)} ts_ids for {ctx['n_series']} series accepted without an error")
    mid = ctx["model_quantiles"].index(0.5) if 0.5 in ctx["model_quantiles"] else None
    for i, o in enumerate(outs):
        f = None if o.forecast is None else _np(o.forecast)
        if f is None or f.shape[-1:] != (h,):
            b.append(f"series {i}: forecast of shape {None if f is None else f.shape}, expected {h} steps")
            break
        if np.isnan(f).any():
            b.append(f"series {i}: NaN in the forecast")
            break
        if ids is not None and i < len(ids) and o.ts_id != ids[i]:
            b.append(f"series {i}: ts_id {o.ts_id!r}, asked {ids[i]!r}")
        if ctx["return_quantiles"]:
            q = None if o.quantiles is None else _np(o.quantiles)
            if q is None or q.shape[-2:] != (h, nq):
                b.append(f"series {i}: quantiles of shape {None if q is None else q.shape}, expected ({h}, {nq})")
                break
            if np.isnan(q).any():
                b.append(f"series {i}: NaN in the quantiles")
                break
            if ctx["sort_quantiles"]:
                b += check_monotone(q, ctx["model_quantiles"], axis=-1)
                if mid is not None and not np.allclose(f, q[..., mid], rtol=1e-5, atol=1e-6):
                    b.append(f"series {i}: the point forecast is not the 0.5 quantile (the documented median)")
        elif o.quantiles is not None:
            b.append(f"series {i}: quantiles returned with return_quantiles=False")
        if ctx["make_positive"] and ctx["nonnegative"][i] and (f < 0).any():
            b.append(f"series {i}: make_positive=True on a nonnegative context but a forecast is {f.min():.3g}")
        if b:
            break
    return b


CHECKS: dict[str, Callable[[Any, dict[str, Any]], list[str]]] = {
    "predict": check_predict, "quantiles": check_quantiles, "frame": check_frame, "embed": check_embed,
    "timesfm": check_timesfm}


# ------------------------------------------------------------------------------------------------ adapter
class _LogToWarning(logging.Handler):
    """A library's logged warning as a Python warning: the runner records it in the cell's warnings."""

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage().strip()
        if msg:
            warnings.warn(f"{record.levelname.lower()} logged: {msg}", UserWarning, stacklevel=2)


class FoundationAdapter(DeclarativeAdapter):
    batch_cells = False  # torch models and their process-wide settings: a process per cell, as neuralforecast
    spec_name: str = ""

    def __init__(self, engine: Engine, release_id: int, work_dir: str):
        self.spec = load_spec(self.spec_name)
        self.library = self.spec["library"]
        self.release_id, self.work_dir = release_id, work_dir
        self.variants = {v["qualname"]: v for v in self.spec["variants"]}
        self.models = {q: {"qualname": q, "name": v["name"]} for q, v in self.variants.items()}
        # "<variant qualname>.<method>" or a kwargs_of qualname -> param name -> registry row
        self.params: dict[str, dict[str, dict[str, Any]]] = {}
        for fam in self.spec["families"]:
            for q in self._owners(fam):
                if q not in self.params:
                    self.params[q] = {p["name"]: p for p in params_of(engine, release_id, q)}
            for q in self.variants:
                then = fam.get("then", {}).get("method")
                if then and f"{q}.{then}" not in self.params:
                    self.params[f"{q}.{then}"] = {p["name"]: p for p in params_of(engine, release_id, f"{q}.{then}")}

    def _owners(self, fam: dict[str, Any]) -> list[str]:
        """The registry rows whose parameters a family's cells take."""
        if fam.get("kwargs_of"):
            return list(fam["kwargs_of"])
        return [f"{q}.{fam['method']}" for q in self.variants]

    def prepare(self) -> None:
        offline()
        super().prepare()
        import torch

        torch.set_num_threads(1)
        for name in ("transformers", "huggingface_hub"):
            logging.getLogger(name).setLevel(logging.ERROR)
        # the library's own warnings go through logging (chronos_bolt / chronos name their loggers by file):
        # a cell records them as warnings (its context), nothing is printed
        names = ["chronos", "timesfm3"] + [getattr(sys.modules.get(m), "__file__", None)
                                          for m in ("chronos.chronos", "chronos.chronos_bolt")]
        for name in filter(None, names):
            lg = logging.getLogger(name)
            lg.setLevel(logging.WARNING)
            lg.propagate = False
            if not any(isinstance(h, _LogToWarning) for h in lg.handlers):
                lg.addHandler(_LogToWarning())
        try:
            from transformers.utils import logging as tlog

            tlog.disable_progress_bar()
            tlog.set_verbosity_error()
        except ImportError:
            pass

    def calibration_groups(self, models: list[str]) -> list[Group]:
        return []  # a pretrained pipeline needs no calibrated baseline: its setup is the build + load

    # planning ----------------------------------------------------------------------------------------
    def _param_row(self, fam: dict[str, Any], q: str, param: str) -> dict[str, Any] | None:
        """The registry row of ``param`` for variant ``q`` (None: the method does not take it)."""
        owners = fam["kwargs_of"] if fam.get("kwargs_of") else [f"{q}.{fam['method']}"]
        for o in owners:
            row = self.params.get(o, {}).get(param)
            if row is not None and row["kind"] not in ("var_positional", "var_keyword"):
                return row
        if param in fam.get("via_kwargs", []) and any(
                p["kind"] == "var_keyword" for o in owners for p in self.params.get(o, {}).values()):
            return {"name": param, "kind": "var_keyword_item", "type_norm": [], "has_default": False,
                    "required": False, "enums": []}
        return None

    def _input_param(self, fam: dict[str, Any], q: str) -> str | None:
        """The method's series argument: its first required parameter in the registry."""
        method = fam.get("then", {}).get("method") if fam.get("op") == "load" else fam["method"]
        rows = sorted(self.params.get(f"{q}.{method}", {}).values(), key=lambda p: p["position"])
        return next((p["name"] for p in rows if p["required"]), None)

    def _resolve(self, v: Any, sizes: dict[str, int]) -> tuple[Any, str | None]:
        """``{__size__: name, plus: k}`` -> the variant's size (+ k) and its label; other values as they are."""
        if isinstance(v, dict) and "__size__" in v:
            val = int(sizes[v["__size__"]]) + int(v.get("plus", 0))
            return val, v.get("label") or v["__size__"]
        if isinstance(v, dict):
            return {k: self._resolve(x, sizes)[0] for k, x in v.items()}, None
        return v, None

    def _values(self, fam: dict[str, Any], entry: dict[str, Any], row: dict[str, Any] | None,
                sizes: dict[str, int], data: dict[str, Any]) -> list[tuple[Any, str]]:
        out: list[tuple[Any, str]] = []
        if entry.get("inputs"):
            for d in self.spec["inputs"][entry["inputs"]]:
                out.append(({"__input__": d["data"]}, d["label"]))
            return out
        if entry.get("generic") and row is not None and row["kind"] != "var_keyword_item":
            length = max(data["lengths"]) if data.get("lengths") else int(data["length"])
            out += candidates(row, length)
        for v in entry.get("values", []):
            if isinstance(v, dict) and "data" in v and "label" in v and "__data__" not in v:
                out.append(({"__input__": v["data"]}, v["label"]))
                continue
            val, note = self._resolve(v, sizes)
            if isinstance(v, dict) and "__data__" in v:
                out.append((v, v.get("label") or v["__data__"]))
            elif all(not _same(val, x) for x, _ in out):
                # a size of the tiny model is labelled by what it is (the same column for every variant in a
                # view); its number is the cell's value and in its facts
                out.append((val, note if note else label(val)))
        return out

    def plan(self, models: list[str], calibrated: dict[str, Any], families: set[str] | None = None) -> list[Group]:
        groups = []
        for q in models:
            v = self.variants[q]
            sizes = v["sizes"]
            cells: list[Cell] = []
            for fam in self.spec["families"]:
                for entry in fam["cells"]:
                    param = entry["param"]
                    if families and not families & {fam["name"], fam["method"], _short(fam["method"]), param}:
                        continue
                    if entry.get("only") and v["name"] not in entry["only"]:
                        continue
                    inp = self._input_param(fam, q)
                    row = self._param_row(fam, q, param)
                    if row is None and not (entry.get("inputs") or param == inp):
                        continue  # this variant's method does not take the parameter
                    if entry.get("inputs") and param != inp:
                        continue  # the series argument has another name in this variant
                    if row is None and param == inp and inp is None:
                        continue
                    data = data_spec(entry.get("data"))
                    for val, lab in self._values(fam, entry, row, sizes, data):
                        kwargs = {k: self._resolve(x, sizes)[0] for k, x in copy.deepcopy(fam.get("base", {})).items()}
                        kwargs.update({k: self._resolve(x, sizes)[0] for k, x in (entry.get("with") or {}).items()})
                        cell_data = data
                        if isinstance(val, dict) and "__input__" in val:
                            cell_data = data_spec(data, val["__input__"])
                            val = val["__input__"]
                        else:
                            kwargs[param] = val
                        spec = {"op": fam.get("op", "call"), "family": fam["name"], "method": fam["method"],
                                "input": fam["input"], "input_param": inp, "kwargs": kwargs, "data": cell_data,
                                "check": fam.get("check"), "then": fam.get("then"), "param": param}
                        sc = entry.get("scenario", "baseline")
                        cell = Cell(q, self._method_label(fam), param, val,
                                    lab + (f" | {entry['scenario']}" if entry.get("scenario") else ""), sc, spec)
                        cell.facts = self.cell_facts(cell)
                        cells.append(cell)
            # a variant's cells in chunks (each loads the tiny model again: milliseconds), so every worker has
            # work even when one variant holds all the cells (timesfm)
            size = int(self.spec.get("group_cells", 32))
            for k in range(0, len(cells), size):
                groups.append(Group(f"{q}:{self.library}:{k // size}", q, {"kind": "foundation", "variant": v["name"]},
                                    cells[k:k + size]))
        return groups

    def _method_label(self, fam: dict[str, Any]) -> str:
        """``pipeline.predict`` (chronos: every pipeline variant in one view) / ``forecaster.predict_batch``; a
        loader keeps its own name."""
        if fam.get("op") == "load":
            return fam["method"]
        return f"{self.spec.get('object_word', 'pipeline' if self.library == 'chronos' else 'forecaster')}." \
               f"{fam['method']}"

    # facts -------------------------------------------------------------------------------------------
    def _h_param(self) -> str:
        return "prediction_length" if self.library == "chronos" else "horizon"

    def cell_facts(self, cell: Cell) -> dict[str, Any]:
        spec, v = cell.spec, self.variants[cell.model]
        sizes, d, kw = v["sizes"], spec["data"], spec["kwargs"]
        if spec["op"] == "load":
            kw = {**(spec["then"].get("base") or {}), **{k: x for k, x in kw.items()}}
        lengths = list(d["lengths"]) if d.get("lengths") else [int(d["length"])] * int(d["n_series"])
        hp = self._h_param()
        h = kw.get(hp)
        own = int(sizes["max_output"])
        longest = max(lengths) if lengths else 0
        ctx_len = kw.get("context_length") if isinstance(kw.get("context_length"), int) else None
        out: dict[str, Any] = {
            "variant": v["name"], "state": "loaded", "n_series": int(d["n_series"]), "variates": int(d["variates"]),
            "lengths": sorted(set(lengths)),
            "context_rel": "none" if not lengths or longest == 0 else
            "shorter_than_patch" if longest < int(sizes["patch"]) else
            "longer_than_context" if longest > int(ctx_len or sizes["context"]) else "within",
            hp: h, "h_rel": "default" if h is None else "invalid" if not isinstance(h, int) or isinstance(h, bool)
            or h <= 0 else "lt" if h < own else "eq" if h == own else "gt",
            "model_patch": int(sizes["patch"]), "model_context": int(sizes["context"]), "model_prediction_length": own,
            "nan_in_data": d.get("nan"), "constant": bool(d.get("constant")), "negative": bool(d.get("negative")),
            "covariates": d.get("cov") or "none", "device": "cpu", "dtype": "float32",
        }
        if spec["input"] == "df":
            out.update({"ds_dtype": "datetime", "data_freq": d["freq"], "gaps": bool(d.get("gaps")),
                        "sorted": not d.get("shuffle"), "duplicates": bool(d.get("dup")),
                        "columns": list(d.get("names") or ["item_id", "timestamp", "target"])})
            if "freq" in kw:
                out["freq"] = kw["freq"]
            if isinstance(kw.get("future_df"), dict):
                out["future_df"] = kw["future_df"].get("__data__")
        for k in ("quantile_levels", "batch_size", "context_length", "limit_prediction_length", "cross_learning",
                  "return_quantiles", "use_znorm", "use_symmetric_averaging", "make_positive", "sort_quantiles",
                  "padding_mode", "per_core_batch_size"):
            if k in kw:
                out[k] = kw[k]
        for k in ("device", "device_map"):
            if k in kw:
                out["device"] = kw[k]
        for k in ("dtype", "torch_dtype"):
            if k in kw:
                out["dtype"] = kw[k]
        return json.loads(json.dumps(out, sort_keys=True, default=str))

    # execution ---------------------------------------------------------------------------------------
    def _load(self, q: str, path: str, kwargs: dict[str, Any]) -> Any:
        with contextlib.redirect_stdout(io.StringIO()):  # huggingface_hub prints "Loading weights from …"
            return _import(self.spec["loader"])(path, **kwargs)

    def setup(self, group: Group) -> dict[str, Any]:
        """Build the variant's tiny model into the work folder (once) and load it through the public loader."""
        offline()
        v = self.variants[group.model]
        path = Path(self.work_dir) / v["name"]
        if not (path / "config.json").exists():
            tmp = Path(self.work_dir) / f"{v['name']}.{os.getpid()}.tmp"
            BUILDERS[v["build"]](tmp, v["sizes"])
            try:
                tmp.rename(path)  # whole or not at all: a concurrent builder's folder stays as it is
            except OSError:
                pass
        pipe = self._load(group.model, str(path), dict(self.spec.get("load_kwargs") or {}))
        return {"pipeline": pipe, "path": str(path), "model": group.model}

    def decode(self, value: Any, data: dict[str, Any]) -> Any:
        if isinstance(value, dict) and "__data__" in value:
            return data[value["__data__"]]
        return value

    def run(self, state: dict[str, Any], cell: Cell) -> list[str]:
        spec = cell.spec
        fam = next((f for f in self.spec["families"] if f["name"] == spec.get("family")), None)
        if fam is None or spec.get("method") != fam["method"] or cell.model not in self.variants \
                or spec.get("op", "call") != fam.get("op", "call"):
            raise ValueError(f"cell spec names {spec.get('method')!r} on {cell.model!r}: not a cell of the "
                             f"{self.library} adapter")
        data = _build(json.dumps(spec["data"], sort_keys=True))
        data = {k: (copy.deepcopy(x) if isinstance(x, (list, dict, np.ndarray, pd.DataFrame)) else x)
                for k, x in data.items()}
        kwargs = {k: self.decode(x, data) for k, x in spec["kwargs"].items()}
        obj, method, check, base = state["pipeline"], fam["method"], fam.get("check"), {}
        if spec["op"] == "load":
            load_kw = {**(self.spec.get("load_kwargs") or {}), **kwargs}
            obj = self._load(cell.model, state["path"], load_kw)
            then = fam["then"]
            method, check, base = then["method"], then["check"], dict(then.get("base") or {})
            kwargs = {**base}
        series = INPUTS[spec["input"]](data)
        fn = getattr(obj, method)
        out = fn(series, **kwargs)
        if check == "timesfm" and not isinstance(out, (list, tuple)) and method == "predict_batch":
            out = list(out)  # a generator: the forecasts are computed here
        ctx = self._check_ctx(cell, obj, kwargs, data, check, method)
        return CHECKS[check](out, ctx) if check else []

    def _check_ctx(self, cell: Cell, obj: Any, kwargs: dict[str, Any], data: dict[str, Any], check: str,
                   method: str) -> dict[str, Any]:
        v = self.variants[cell.model]
        d = data["spec"]
        hp = self._h_param()
        h = kwargs.get(hp)
        nv = int(d.get("variates") or 1)
        ctx: dict[str, Any] = {"sizes": v["sizes"], "lengths": data["lengths"], "n_series": len(data["ids"]),
                               "context_length": kwargs.get("context_length")}
        if self.library == "chronos":
            ctx["model_quantiles"] = list(getattr(obj, "quantiles", None) or [])
            if v.get("output") == "samples":  # the original Chronos: sample paths, num_samples of them
                n = kwargs.get("num_samples")
                ctx["samples"] = int(n) if isinstance(n, int) else int(obj.model.config.num_samples)
            ctx["h"] = int(h) if h is not None else int(obj.model_prediction_length)
            ctx["levels"] = list(kwargs.get("quantile_levels", Q9))
            if check == "frame":
                target = kwargs.get("target", "target")
                ctx.update(id_column=kwargs.get("id_column", "item_id"),
                           timestamp_column=kwargs.get("timestamp_column", "timestamp"),
                           last={str(k): x for k, x in data["last"].items()}, freq=data["freq"],
                           n_targets=len(target) if isinstance(target, list) else 1)
        else:
            cfg = obj.config
            ctx.update(model_quantiles=list(cfg.quantiles), h=int(h), single=method == "predict",
                       return_quantiles=bool(kwargs.get("return_quantiles", False)),
                       sort_quantiles=bool(kwargs.get("sort_quantiles", True)),
                       make_positive=bool(kwargs.get("make_positive", False)),
                       ts_ids=kwargs.get("ts_ids") if method == "predict_batch" else
                       ([kwargs["ts_id"]] if kwargs.get("ts_id") is not None else None),
                       nonnegative=[bool(np.nanmin(y) >= 0) if np.size(y) and not np.isnan(y).all() else True
                                    for y in data["y"]])
            if method == "predict":
                ctx["n_series"] = 1
        ctx["n_variates"] = nv
        return ctx

    def cleanup(self) -> None:
        pass


class ChronosAdapter(FoundationAdapter):
    spec_name = "chronos"


class TimesFMAdapter(FoundationAdapter):
    spec_name = "timesfm"
