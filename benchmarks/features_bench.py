"""Feature build time per game, and how it scales with the length of the history (1x, 2x, 4x the shipped draws,
extended synthetically by repeating the history after itself with shifted draw numbers and dates).

    uv run python benchmarks/features_bench.py [--games loto6 bingo5] [--scales 1 2 4]

Times the in-memory build of every gold feature (anomaly, hist_, fut_, stat_, future rows) of the raw slot
series of each game; Delta writes are left out. Prints a Markdown table and writes reports/features_bench.json.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import pandas as pd


def extend(frame: pd.DataFrame, times: int) -> pd.DataFrame:
    """The history repeated ``times`` times, each copy after the previous one (draw_no and ds shifted)."""
    n = int(frame["draw_no"].max())
    span = frame["ds"].max() - frame["ds"].min() + pd.Timedelta(days=7)
    parts = [frame.assign(draw_no=frame["draw_no"] + i * n, ds=frame["ds"] + i * span) for i in range(times)]
    return pd.concat(parts, ignore_index=True).sort_values(["unique_id", "draw_no"]).reset_index(drop=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--games", nargs="*", default=None)
    ap.add_argument("--scales", nargs="*", type=int, default=[1, 2, 4])
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="fcast-featbench-")
    os.environ["FCAST_HOME"], os.environ["FCAST_LAKE"] = tmp, str(Path(tmp) / "lake")
    from fcast_assets.db.engine import get_engine
    from fcast_assets.features import gold
    from fcast_assets.lake import games, pipeline

    eng = get_engine(f"sqlite:///{Path(tmp) / 'meta.db'}")
    games.seed_games(eng)
    rows = []
    for code in args.games or [g.code for g in games.list_games(eng)]:
        spec = games.get_game(eng, code)
        pipeline.ingest_bronze(eng, spec)
        pipeline.build_silver_table(eng, spec)
        base = gold.slot_series(spec)
        for k in args.scales:
            frame = extend(base, k)
            t0 = time.perf_counter()
            anomaly = gold.compute_anomaly(frame, spec)
            hist = gold.compute_hist(frame, spec)
            fut = gold.compute_fut(frame, spec)
            gold.compute_static(frame, spec)
            gold.compute_futr(frame, spec)
            secs = time.perf_counter() - t0
            rows.append({"game": code, "scale": k, "draws": int(frame["draw_no"].nunique()), "rows": len(frame),
                         "features": anomaly.shape[1] + hist.shape[1] + fut.shape[1], "seconds": round(secs, 2),
                         "us_per_row": round(1e6 * secs / len(frame), 1)})
            print(rows[-1], flush=True)
    out = Path("reports")
    out.mkdir(exist_ok=True)
    (out / "features_bench.json").write_text(json.dumps(rows, indent=2))
    print("\n| game | scale | draws | rows | features | seconds | µs per row |\n|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['game']} | {r['scale']}x | {r['draws']} | {r['rows']} | {r['features']} | {r['seconds']} | "
              f"{r['us_per_row']} |")


if __name__ == "__main__":
    main()
