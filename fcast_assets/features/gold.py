"""Gold Delta tables per game, built from the raw slot series of silver (``<game>_N1`` .., ``<game>_B1`` ..) and
their silver variants (the hist_ features that equal a variant read it, as of the previous draw:
:mod:`fcast_assets.features.variants`; a variant silver lacks fails the build with one line):

- ``gold/anomaly``   unique_id, ds, draw_no, hist_anom_*            (anomaly generators, past-only)
- ``gold/features``  unique_id, ds, draw_no, y, hist_*, fut_*        (history rows; hist_ past-only)
- ``gold/static``    unique_id, stat_*                               (up to the training cutoff)
- ``gold/futr``      unique_id, ds, draw_no, step, fut_*             (every series x every step of h)
- ``gold/embeddings`` see :mod:`fcast_assets.features.embeddings`

Each write records a ``feature_materialization`` row (dataset version of silver, feature set, versioned URI,
schema hash, availability per feature: covers the horizon or not).
"""

from __future__ import annotations

import hashlib
from typing import Any, Callable, Iterable, Optional

import pandas as pd
import pyarrow as pa
from sqlalchemy import Engine
from sqlmodel import Session, select

from fcast_assets.db.feature_models import FeatureMaterialization, FeatureSet
from fcast_assets.lake import deltaio, pipeline
from fcast_assets.lake import versions as V
from fcast_assets.lake.games import GameSpec

from . import fut as FUT
from . import variants as VAR
from .registry import DEFAULT_SET, Generator, load_generators, sync_registry

KEYS = ["unique_id", "ds", "draw_no"]
DEFAULT_H = 10


def gold_uri(spec: GameSpec, table: str, root: Optional[str] = None) -> str:
    return deltaio.table_uri("gold", table, spec.code, root)


def slot_ids(spec: GameSpec) -> list[str]:
    return [f"{spec.code}_{s}" for s in spec.slot_codes]


def slot_series(spec: GameSpec, root: Optional[str] = None, silver: Optional[pd.DataFrame] = None) -> pd.DataFrame:
    """The raw slot series of silver (not the transform variants, not SUM), sorted by (unique_id, draw_no)."""
    df = deltaio.read(pipeline.silver_uri(spec, root)) if silver is None else silver
    if df.empty:
        raise ValueError(f"silver for {spec.code} is empty: materialize silver_series first")
    ids = slot_ids(spec)
    df = df[(df["transform"] == "raw") & df["unique_id"].isin(ids)][["unique_id", "ds", "draw_no", "y"]].copy()
    df["ds"] = pd.to_datetime(df["ds"])
    df["unique_id"] = pd.Categorical(df["unique_id"], categories=ids)
    df = df.sort_values(["unique_id", "draw_no"]).reset_index(drop=True)
    df["unique_id"] = df["unique_id"].astype(str)
    return df


def read_silver(spec: GameSpec, root: Optional[str] = None) -> tuple[pd.DataFrame, VAR.Variants]:
    """The raw slot series of silver (:func:`slot_series`) and silver's variants aligned with them, from one read
    of the silver table."""
    uri = pipeline.silver_uri(spec, root)
    sil = deltaio.read(uri)
    frame = slot_series(spec, root, silver=sil)
    return frame, VAR.from_silver(frame, sil, spec.code, source=uri)


def _gens(group: Optional[str] = None, target: Optional[str] = None,
          generators: Optional[list[Generator]] = None) -> list[Generator]:
    gens = generators or load_generators()
    return [g for g in gens if (group is None or g.group == group) and (target is None or g.target == target)]


def compute_hist(frame: pd.DataFrame, spec: GameSpec, generators: Optional[list[Generator]] = None,
                 variants: Optional[VAR.Variants] = None) -> pd.DataFrame:
    """hist_ features of ``frame``; ``variants``: silver's (:func:`read_silver`), or, when not given, silver's code
    run on ``frame`` (a frame that did not come from the silver table)."""
    variants = VAR.resolve(frame, variants)
    parts = [g(frame, spec, variants=variants) for g in _gens("hist", "gold_features", generators)]
    return pd.concat(parts, axis=1) if parts else pd.DataFrame(index=frame.index)


def compute_anomaly(frame: pd.DataFrame, spec: GameSpec, generators: Optional[list[Generator]] = None,
                    variants: Optional[VAR.Variants] = None) -> pd.DataFrame:
    variants = VAR.resolve(frame, variants)
    parts = [g(frame, spec, variants=variants) for g in _gens("hist", "anomaly", generators)]
    return pd.concat(parts, axis=1) if parts else pd.DataFrame(index=frame.index)


def compute_fut(frame: pd.DataFrame, spec: GameSpec, generators: Optional[list[Generator]] = None) -> pd.DataFrame:
    parts = [g(frame, spec) for g in _gens("fut", None, generators)]
    return pd.concat(parts, axis=1) if parts else pd.DataFrame(index=frame.index)


def compute_static(frame: pd.DataFrame, spec: GameSpec, cutoff: Optional[int] = None,
                   generators: Optional[list[Generator]] = None) -> pd.DataFrame:
    parts = [g(frame, spec, cutoff=cutoff) for g in _gens("stat", None, generators)]
    return pd.concat(parts, axis=1).rename_axis("unique_id").reset_index()


def compute_futr(frame: pd.DataFrame, spec: GameSpec, h: int = DEFAULT_H,
                 generators: Optional[list[Generator]] = None) -> pd.DataFrame:
    """Future rows (every series, every step 1..h) with the fut_ features; computed on history + future so that
    differences (days since the previous draw) continue across the forecast origin."""
    fut = FUT.future_frame(frame, spec, h)
    both = pd.concat([frame.assign(step=0), fut], ignore_index=True).sort_values(["unique_id", "draw_no"])
    both = both.reset_index(drop=True)
    feats = compute_fut(both, spec, generators)
    out = pd.concat([both[["unique_id", "ds", "draw_no", "step"]], feats], axis=1)
    return out[out["step"] > 0].reset_index(drop=True)


# --------------------------------------------------------------------------------------------------- writing
def schema_hash(table: pa.Table) -> str:
    return hashlib.sha256(str(table.schema).encode()).hexdigest()[:16]


def _to_arrow(df: pd.DataFrame) -> pa.Table:
    df = df.copy()
    if "ds" in df:
        df["ds"] = pd.to_datetime(df["ds"]).astype("datetime64[us]")
    return pa.Table.from_pandas(df, preserve_index=False)


def feature_columns(df: pd.DataFrame) -> list[str]:
    return [c for c in df.columns if c.split("_", 1)[0] in ("hist", "fut", "stat")]


def summarize(df: pd.DataFrame) -> dict[str, Any]:
    cols = feature_columns(df)
    groups: dict[str, int] = {}
    for c in cols:
        groups[c.split("_", 1)[0]] = groups.get(c.split("_", 1)[0], 0) + 1
    nulls = {c: round(float(df[c].isna().mean()), 4) for c in cols} if len(df) else {}
    return {"rows": len(df), "features": len(cols), "per_group": groups, "null_rates": nulls}


def _feature_set_id(engine: Engine, name: str = DEFAULT_SET) -> Optional[int]:
    with Session(engine) as s:
        fs = s.exec(select(FeatureSet).where(FeatureSet.name == name)).first()
        return fs.feature_set_id if fs else None


def write_gold(engine: Engine, spec: GameSpec, table: str, df: pd.DataFrame, root: Optional[str] = None,
               horizon: Optional[int] = None, availability: Optional[dict[str, bool]] = None,
               extra_stats: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    """Overwrite ``gold/<table>`` of the game as a new Delta version and record a feature_materialization row."""
    uri = gold_uri(spec, table, root)
    at = _to_arrow(df)
    version = deltaio.overwrite(uri, at)
    s_ver = V.latest_version(engine, spec, "silver")
    stats = {**summarize(df), **(extra_stats or {})}
    with Session(engine) as s:
        m = FeatureMaterialization(
            dataset_version_id=s_ver.dataset_version_id if s_ver else None, feature_set_id=_feature_set_id(engine),
            game_id=spec.game_id, table_name=f"gold_{table}" if table != "embeddings" else "gold_embeddings",
            lake_uri=deltaio.versioned_uri(uri, version), schema_hash=schema_hash(at), row_count=len(df),
            horizon=horizon, availability=availability or {}, stats=stats)
        s.add(m)
        s.commit()
        mid = m.materialization_id
    return {"uri": uri, "delta_version": version, "materialization_id": mid, "schema": at.schema, "frame": df,
            "dataset_version_id": s_ver.dataset_version_id if s_ver else None, **stats}


def _availability(df: pd.DataFrame, futr: Optional[pd.DataFrame] = None) -> dict[str, bool]:
    out = {}
    for c in feature_columns(df):
        grp = c.split("_", 1)[0]
        out[c] = grp == "stat" or (grp == "fut" and futr is not None and c in futr and bool(futr[c].notna().all()))
    return out


# ----------------------------------------------------------------------------------------------- stage entry
def build_anomaly(engine: Engine, spec: GameSpec, root: Optional[str] = None) -> dict[str, Any]:
    sync_registry(engine)
    frame, variants = read_silver(spec, root)
    df = pd.concat([frame[KEYS], compute_anomaly(frame, spec, variants=variants)], axis=1)
    return write_gold(engine, spec, "anomaly", df, root, availability=_availability(df))


def build_features(engine: Engine, spec: GameSpec, root: Optional[str] = None, h: int = DEFAULT_H,
                   with_anomaly: bool = True) -> dict[str, Any]:
    """gold_features: history rows with hist_ (incl. the anomaly table's hist_anom_* when it is current) and fut_."""
    sync_registry(engine)
    frame, variants = read_silver(spec, root)
    parts = [frame, compute_hist(frame, spec, variants=variants), compute_fut(frame, spec)]
    df = pd.concat(parts, axis=1)
    if with_anomaly:
        an = deltaio.read(gold_uri(spec, "anomaly", root))
        if an.empty or len(an) != len(frame):
            an = pd.concat([frame[KEYS], compute_anomaly(frame, spec, variants=variants)], axis=1)
        an = an.drop(columns=["ds"], errors="ignore")
        df = df.merge(an, on=["unique_id", "draw_no"], how="left")
    ef = deltaio.read(gold_uri(spec, "emb_features", root))
    if not ef.empty and len(ef) == len(frame):  # hist_emb_* of the embeddings asset, when it ran on this history
        df = df.merge(ef.drop(columns=["ds"], errors="ignore"), on=["unique_id", "draw_no"], how="left")
    futr = compute_futr(frame, spec, h)
    return write_gold(engine, spec, "features", df, root, horizon=h, availability=_availability(df, futr))


def build_static(engine: Engine, spec: GameSpec, root: Optional[str] = None, cutoff: Optional[int] = None
                 ) -> dict[str, Any]:
    sync_registry(engine)
    frame = slot_series(spec, root)
    df = compute_static(frame, spec, cutoff=cutoff)
    cut = int(frame["draw_no"].max()) if cutoff is None else int(cutoff)
    return write_gold(engine, spec, "static", df, root, availability=_availability(df),
                      extra_stats={"cutoff_draw_no": cut})


def build_futr(engine: Engine, spec: GameSpec, root: Optional[str] = None, h: int = DEFAULT_H) -> dict[str, Any]:
    sync_registry(engine)
    frame = slot_series(spec, root)
    df = compute_futr(frame, spec, h)
    missing = horizon_gaps(df, slot_ids(spec), h)
    return write_gold(engine, spec, "futr", df, root, horizon=h, availability=_availability(df, df),
                      extra_stats={"horizon_gaps": missing})


GOLD_BUILDS = (build_anomaly, build_features, build_static, build_futr)  # anomaly first: features read it


def build_gold(engine: Engine, spec: GameSpec, root: Optional[str] = None) -> dict[str, dict[str, Any]]:
    """Every gold table of a game from its silver table, in dependency order (what training reads)."""
    return {b.__name__.removeprefix("build_"): b(engine, spec, root) for b in GOLD_BUILDS}


def build_game(engine: Engine, spec: GameSpec, records: Optional[Iterable[dict[str, Any]]] = None,
               root: Optional[str] = None) -> dict[str, Any]:
    """A game's lake from bronze through gold in one call (bronze from ``records`` or the game's files, silver
    with pandas): what a fresh home, a test or a benchmark needs before training."""
    return {"bronze": pipeline.ingest_bronze(engine, spec, root, records=records),
            "silver": pipeline.build_silver_table(engine, spec, root, engine_name="pandas"),
            **build_gold(engine, spec, root)}


def horizon_gaps(futr: pd.DataFrame, ids: list[str], h: int) -> list[str]:
    """Problems of a futr frame: a (series, step) missing, or a fut_ value missing on a future row."""
    probs = []
    have = set(zip(futr["unique_id"], futr["step"]))
    miss = [(u, k) for u in ids for k in range(1, h + 1) if (u, k) not in have]
    if miss:
        probs.append(f"missing rows {miss[:5]}")
    for c in feature_columns(futr):
        if futr[c].isna().any():
            probs.append(f"NaN in {c}")
    return probs


def build_embeddings(engine: Engine, spec: GameSpec, root: Optional[str] = None,
                     models: Optional[dict[str, str]] = None, context: int = 64, stride: int = 50,
                     n_components: int = 4, progress: Optional[Callable[[int, int, str], None]] = None
                     ) -> dict[str, Any]:
    """gold_embeddings (window embeddings as array columns) + gold/emb_features (hist_emb_* by PCA, as of the
    previous draw) for every configured model; ``{"skipped": ...}`` when none is configured.

    ``progress(done, total, "<model> <unique_id>")`` is called after each (model, series) pair (optional)."""
    from . import embeddings as EMB
    from .registry import register_features

    models = EMB.configured_models() if models is None else models
    if not models:
        return {"skipped": "skipped: no model configured (FCAST_CHRONOS_MODEL / FCAST_TIMESFM_MODEL)"}
    frame = slot_series(spec, root)
    parts = []
    total, done = len(models) * frame["unique_id"].nunique(), [0]
    for kind, path in models.items():
        def step(uid: str, kind: str = kind) -> None:
            done[0] += 1
            if progress:
                progress(done[0], total, f"{kind} {uid}")

        parts.append(EMB.embed_frame(frame, EMB.Embedder(kind, path), context=context, stride=stride, progress=step))
    emb = pd.concat(parts, ignore_index=True)
    res = write_gold(engine, spec, "embeddings", emb, root,
                     extra_stats={"models": {k: v for k, v in models.items()}, "context": context, "stride": stride,
                                  "dims": emb.groupby("model")["dim"].first().to_dict()})
    pca = EMB.pca_features(emb, frame, n_components=n_components)
    register_features(engine, {c: "float64" for c in pca.columns}, generator="embedding_pca", kind="embedding",
                      library="+".join(sorted(models)), symbol="fcast_assets.features.embeddings.pca_features",
                      params={"models": models, "context": context, "stride": stride, "n_components": n_components})
    ef = pd.concat([frame[KEYS], pca], axis=1)
    res2 = write_gold(engine, spec, "emb_features", ef, root, availability=_availability(ef))
    return {**res, "emb_features": {k: res2[k] for k in ("uri", "delta_version", "features", "null_rates")},
            "pca_columns": list(pca.columns)}
