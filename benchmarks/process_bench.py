"""The same real compatibility cells in both process models (compat.process): fork (one fork per group and per
cell) and spawn (a pool of warm spawned workers, the path of platforms without fork), run through the real entry
point (compat.probe.run_matrix) on copies of one scanned database. Prints a Markdown table:

- cells/s: cells recorded / matrix wall time (calibration included);
- wall / (Σ cell s / workers): 1.0 would be perfect packing of the cells' own run time on the workers; above it
  is overhead (forks, worker start, imports, setups, scheduling);
- spawn / fork: wall time relative to fork.

``spawn (cold)`` starts its workers (each imports the library once); ``spawn (warm)`` runs again in the same
process, reusing the idle workers, as a second matrix (or the miniature run) does. Also checks that every cell
has the same (status, exception type) in each mode.

    .venv/bin/python benchmarks/process_bench.py [--model MLP --model NHITS] [--family freq ...] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import tempfile
import time
from pathlib import Path

MODELS = ["MLP", "NHITS"]
FAMILIES = ["freq", "h", "level", "local_scaler_type", "save", "load"]


def _copy(source: Path, folder: Path):
    from fcast_assets.db.engine import init_db, make_engine

    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "forecast_meta.db"
    with sqlite3.connect(source) as src:
        src.execute(f"VACUUM INTO '{target}'")
    engine = make_engine(f"sqlite:///{target}")
    init_db(engine)
    return engine


def _cells(engine, run_id: int) -> dict[tuple[str, ...], tuple[str, str | None, float | None]]:
    from sqlalchemy import text

    with engine.connect() as conn:
        rows = conn.execute(text("""SELECT model, method, param, value_label, scenario, status, exception_type,
                                    seconds FROM compat_result WHERE compat_run_id = :r"""), {"r": run_id}).all()
    return {(r.model, r.method, r.param, r.value_label, r.scenario): (r.status, r.exception_type, r.seconds)
            for r in rows}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", action="append", default=None)
    ap.add_argument("--family", action="append", default=None)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=90.0)
    ap.add_argument("--json", default=None, help="also write the figures to this file")
    args = ap.parse_args()
    models, families = args.model or MODELS, args.family or FAMILIES

    from fcast_assets.compat import process
    from fcast_assets.compat.probe import run_matrix
    from fcast_assets.db.engine import init_db, make_engine
    from fcast_assets.registry import scan_and_store

    runs = [("fork", "fork"), ("spawn (cold)", "spawn"), ("spawn (warm)", "spawn")]
    if not hasattr(os, "fork"):
        runs = runs[1:]
    rows, cells = [], {}
    with tempfile.TemporaryDirectory(prefix="fcast-process-bench-") as tmp:
        base = Path(tmp) / "scan"
        base.mkdir()
        engine = make_engine(f"sqlite:///{base / 'forecast_meta.db'}")
        init_db(engine)
        scan_and_store("neuralforecast", engine)
        engine.dispose()
        for i, (name, mode) in enumerate(runs):
            os.environ["FCAST_PROCESS_MODEL"] = mode
            engine = _copy(base / "forecast_meta.db", Path(tmp) / f"run{i}")
            t0 = time.perf_counter()
            s = run_matrix(engine, "neuralforecast", models=models, families=families, workers=args.workers,
                           cell_timeout=args.timeout)
            wall = time.perf_counter() - t0
            got = _cells(engine, s["compat_run_id"])
            engine.dispose()
            cells[name] = got
            busy = sum(sec or 0.0 for _, _, sec in got.values())
            rows.append({"mode": name, "cells": len(got), "wall_s": round(wall, 2),
                         "cells_per_s": round(len(got) / wall, 2), "cell_s_sum": round(busy, 2),
                         "overhead": round(wall / (busy / args.workers), 2) if busy else None,
                         "counts": s["counts"]})
    process.shutdown()
    ref = rows[0]["wall_s"]
    ref_cells = {k: v[:2] for k, v in cells[rows[0]["mode"]].items()}
    for r in rows:
        r["vs_first"] = round(r["wall_s"] / ref, 2)
        other = {k: v[:2] for k, v in cells[r["mode"]].items()}
        r["differing_cells"] = sum(1 for k in ref_cells.keys() | other.keys() if ref_cells.get(k) != other.get(k))

    print(f"\nneuralforecast, models {', '.join(models)}, families {', '.join(families)}, {args.workers} workers, "
          f"{os.cpu_count()} CPUs ({platform.system()} {platform.machine()})\n")
    print(f"| mode | cells | wall s | cells/s | Σ cell s | wall / (Σ cell s / workers) | wall vs {rows[0]['mode']} "
          "| cells differing |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['mode']} | {r['cells']} | {r['wall_s']:.1f} | {r['cells_per_s']:.2f} | {r['cell_s_sum']:.1f} "
              f"| {r['overhead']} | {r['vs_first']:.2f}x | {r['differing_cells']} |")
    for r in rows[1:]:
        diff = [k for k in ref_cells.keys() | cells[r["mode"]].keys()
                if ref_cells.get(k) != cells[r["mode"]].get(k, (None, None, None))[:2]]
        for k in sorted(diff)[:10]:
            print(f"  {r['mode']} differs: {k}: {ref_cells.get(k)} vs {cells[r['mode']].get(k, ('-',))[:2]}")
    if args.json:
        Path(args.json).write_text(json.dumps({"models": models, "families": families, "workers": args.workers,
                                               "cpus": os.cpu_count(), "rows": rows}, indent=2),
                                   encoding="utf-8")


if __name__ == "__main__":
    main()
