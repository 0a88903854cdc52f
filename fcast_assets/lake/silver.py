"""Silver: long format ``unique_id, ds, y`` (+ ``draw_no``, ``slot``, ``transform``), one series per slot and its
transformed variants, from the rule-conforming bronze rows. Two engines produce the same rows: pandas (default)
and Spark (``FCAST_ENGINE=spark``; window functions over the same ordering).

Time index: draws are not on a fixed calendar frequency (weekday schedules changed over the years, holidays
shift draws), so models use the integer ``draw_no`` as their time index (``freq=1``); ``ds`` is the draw date,
kept for display and as a calendar feature.

unique_id naming: ``<game>_<SLOT>`` is the raw slot (``loto6_N1`` … ``loto6_B1``), ``<game>_SUM`` the sum of the
main numbers (raw only), and ``<game>_<SLOT>_<transform>`` the variants of each slot: ``cumsum``, ``diff{p}``
(``p`` in :data:`DIFFS`: ``y[t] - y[t-p]``), ``parity`` (value mod 2), ``rsum{w}``, ``rmean{w}``, ``rstd{w}``
(rolling over the last ``w`` draws, ``w`` in :data:`WINDOWS`; the first ``w-1`` draws omitted).

Every variant is read by a gold feature (:mod:`fcast_assets.features.variants`): the gold value at draw t is the
variant at the previous draw (t-1), so it only uses draws before t. :data:`WINDOWS` and :data:`DIFFS` are the one
list of windows / differences: the gold generators (``hist_rolling``, ``hist_diff``, ``anomaly_zscore``) take
theirs from here, and gold fails with one line when silver lacks a variant it needs (silver of an older release).
"""

from __future__ import annotations

import os
from typing import Any, Optional

import numpy as np
import pandas as pd
import pyarrow as pa

from .games import GameSpec

WINDOWS = (5, 10, 20, 50)  # rolling windows of the rsum / rmean / rstd variants (gold's hist_roll{w}_* read them)
DIFFS = (1, 2)  # differences of the diff{p} variants (gold's hist_diff{p} read them)
SILVER_COLUMNS = ["unique_id", "ds", "draw_no", "y", "slot", "transform"]


def transforms(windows: tuple[int, ...] = WINDOWS, diffs: tuple[int, ...] = DIFFS) -> list[str]:
    """Every transform of a slot, ``raw`` first (``<game>_SUM`` has ``raw`` only)."""
    out = ["raw", "cumsum", *[f"diff{p}" for p in diffs], "parity"]
    for w in windows:
        out += [f"rsum{w}", f"rmean{w}", f"rstd{w}"]
    return out


def variants(x: pd.Series, windows: tuple[int, ...] = WINDOWS, diffs: tuple[int, ...] = DIFFS
             ) -> dict[str, pd.Series]:
    """The transformed variants of one series in draw order (NaN where a variant is undefined: the first ``p``
    draws of ``diff{p}``, the first ``w-1`` of a rolling one). The pandas engine; the Spark engine writes the same
    values with window functions."""
    out: dict[str, pd.Series] = {"cumsum": x.cumsum()}
    for p in diffs:
        out[f"diff{p}"] = x.diff(int(p))
    out["parity"] = x % 2
    for w in windows:
        r = x.rolling(int(w), min_periods=int(w))
        out[f"rsum{w}"] = r.sum()
        out[f"rmean{w}"] = r.mean()
        out[f"rstd{w}"] = r.std(ddof=1)
    return out


def engine_name() -> str:
    return (os.environ.get("FCAST_ENGINE") or "pandas").lower()


def _uid(game: str, slot: str, transform: str) -> str:
    return f"{game}_{slot}" if transform == "raw" else f"{game}_{slot}_{transform}"


def slot_frame(spec: GameSpec, bronze: pd.DataFrame) -> pd.DataFrame:
    """Wide per-draw slot values: draw_no, ds, N1..Nk, B1.., SUM (floats)."""
    df = bronze.sort_values("draw_no")
    out = pd.DataFrame({"draw_no": df["draw_no"].astype("int64").to_numpy(),
                        "ds": pd.to_datetime(df["draw_date"]).to_numpy()})
    for c in spec.number_cols:
        out[c.upper()] = df[c].astype("float64").to_numpy()
    out["SUM"] = out[[c.upper() for c in spec.main_cols]].sum(axis=1, min_count=len(spec.main_cols))
    return out


def silver_pandas(spec: GameSpec, bronze: pd.DataFrame, windows: tuple[int, ...] = WINDOWS) -> pd.DataFrame:
    wide = slot_frame(spec, bronze)
    parts = []
    slots = [c.upper() for c in spec.number_cols] + ["SUM"]
    for slot in slots:
        x = wide[slot]
        per: dict[str, pd.Series] = {"raw": x}
        if slot != "SUM":  # the sum series is kept raw: no gold feature reads variants of it
            per.update(variants(x, windows))
        for t, y in per.items():
            part = pd.DataFrame({"unique_id": _uid(spec.code, slot, t), "ds": wide["ds"], "draw_no": wide["draw_no"],
                                 "y": y.astype("float64"), "slot": slot, "transform": t})
            parts.append(part[part["y"].notna()])
    out = pd.concat(parts, ignore_index=True)
    return normalize(out)


def normalize(df: pd.DataFrame) -> pd.DataFrame:
    df = df[SILVER_COLUMNS].copy()
    df["ds"] = pd.to_datetime(df["ds"]).astype("datetime64[us]")
    df["draw_no"] = df["draw_no"].astype("int64")
    df["y"] = df["y"].astype("float64")
    return df.sort_values(["unique_id", "draw_no"]).reset_index(drop=True)


def silver_schema() -> pa.Schema:
    return pa.schema([("unique_id", pa.string()), ("ds", pa.timestamp("us")), ("draw_no", pa.int64()),
                      ("y", pa.float64()), ("slot", pa.string()), ("transform", pa.string())])


def to_arrow(df: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(df[SILVER_COLUMNS], schema=silver_schema(), preserve_index=False)


# ------------------------------------------------------------------------------------------------ spark
def spark_config(app_name: str = "fcast-lake", master: Optional[str] = None) -> dict[str, str]:
    """The one Spark configuration of the project (the CLI's session and the Dagster resource): local by default
    (``FCAST_SPARK_MASTER``, e.g. ``spark://host:7077`` for a cluster), small shuffles, no UI, UTC; no Delta jars
    (Delta is read and written with delta-rs around Spark)."""
    return {
        "spark.master": master or os.environ.get("FCAST_SPARK_MASTER", "local[1]"),
        "spark.app.name": app_name,
        "spark.sql.shuffle.partitions": os.environ.get("FCAST_SPARK_SHUFFLE_PARTITIONS", "1"),
        "spark.default.parallelism": "1",
        "spark.ui.enabled": "false",
        "spark.sql.session.timeZone": "UTC",
        "spark.driver.memory": "1g",
    }


def get_spark(app_name: str = "fcast-lake", master: Optional[str] = None):  # noqa: ANN201
    """A SparkSession with :func:`spark_config`."""
    from pyspark.sql import SparkSession

    builder = SparkSession.builder
    for k, v in spark_config(app_name, master).items():
        builder = builder.config(k, v)
    return builder.getOrCreate()


def silver_spark(spec: GameSpec, bronze: pd.DataFrame, spark: Any = None,
                 windows: tuple[int, ...] = WINDOWS) -> pd.DataFrame:
    """The silver transforms as Spark window functions (bronze is read with delta-rs and handed to Spark)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    spark = spark or get_spark()
    wide = slot_frame(spec, bronze)
    wide["ds"] = wide["ds"].dt.strftime("%Y-%m-%d")
    slots = [c.upper() for c in spec.number_cols] + ["SUM"]
    sdf = spark.createDataFrame(wide[["draw_no", "ds", *slots]])
    stack = "stack({n}, {pairs}) as (slot, x)".format(n=len(slots), pairs=", ".join(f"'{s}', `{s}`" for s in slots))
    long = sdf.selectExpr("draw_no", "ds", stack).withColumn("x", F.col("x").cast("double"))
    w_all = Window.partitionBy("slot").orderBy("draw_no")
    cols = {
        "raw": F.col("x"),
        "cumsum": F.sum("x").over(w_all.rowsBetween(Window.unboundedPreceding, 0)),
        **{f"diff{p}": F.col("x") - F.lag("x", int(p)).over(w_all) for p in DIFFS},
        "parity": F.col("x") % 2,
    }
    for w in windows:
        w = int(w)
        ww = w_all.rowsBetween(-(w - 1), 0)
        full = F.count("x").over(ww) == w
        cols[f"rsum{w}"] = F.when(full, F.sum("x").over(ww))
        cols[f"rmean{w}"] = F.when(full, F.avg("x").over(ww))
        cols[f"rstd{w}"] = F.when(full, F.stddev_samp("x").over(ww))
    wide_t = long.select("draw_no", "ds", "slot", *[c.alias(f"t_{t}") for t, c in cols.items()])
    tstack = "stack({n}, {pairs}) as (transform, y)".format(
        n=len(cols), pairs=", ".join(f"'{t}', `t_{t}`" for t in cols))
    out = (wide_t.selectExpr("draw_no", "ds", "slot", tstack)
           .where(F.col("y").isNotNull() & ((F.col("transform") == "raw") | (F.col("slot") != "SUM")))
           .withColumn("unique_id", F.when(F.col("transform") == "raw", F.concat_ws("_", F.lit(spec.code), "slot"))
                       .otherwise(F.concat_ws("_", F.lit(spec.code), "slot", "transform"))))
    pdf = out.select("unique_id", "ds", "draw_no", "y", "slot", "transform").toPandas()
    return normalize(pdf)


def build_silver(spec: GameSpec, bronze: pd.DataFrame, engine: Optional[str] = None, spark: Any = None
                 ) -> pd.DataFrame:
    engine = (engine or engine_name()).lower()
    if engine == "spark":
        return silver_spark(spec, bronze, spark=spark)
    return silver_pandas(spec, bronze)


def frames_equal(a: pd.DataFrame, b: pd.DataFrame, rtol: float = 1e-9, atol: float = 1e-9) -> tuple[bool, str]:
    """Same rows (keys exact, y within float tolerance)."""
    a, b = normalize(a), normalize(b)
    if len(a) != len(b):
        return False, f"row counts differ: {len(a)} vs {len(b)}"
    for c in ("unique_id", "ds", "draw_no", "slot", "transform"):
        if not (a[c].to_numpy() == b[c].to_numpy()).all():
            return False, f"column {c} differs"
    if not np.allclose(a["y"].to_numpy(), b["y"].to_numpy(), rtol=rtol, atol=atol):
        return False, "y differs"
    return True, "equal"
