"""Time the full compatibility matrix of a library (default neuralforecast: every model and Auto class, every
cell family) and report cells, wall time and cells per second.

    uv run python benchmarks/compat_bench.py [--library neuralforecast] [--workers 2] [--model MLP ...]

Writes the matrix into a fresh SQLite database (reports/compat_bench.db), the Markdown report of every
correspondence table to reports/compat_<library>.md and the figures to reports/compat_bench.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--library", default="neuralforecast")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--model", action="append", default=None)
    ap.add_argument("--out", default="reports")
    args = ap.parse_args()

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    db = out / "compat_bench.db"
    for p in (db, Path(str(db) + "-wal"), Path(str(db) + "-shm")):
        p.unlink(missing_ok=True)
    t0 = time.perf_counter()
    from fcast_assets.compat.probe import run_matrix
    from fcast_assets.compat.tables import write_report
    from fcast_assets.db.engine import init_db, make_engine
    from fcast_assets.registry import scan_and_store

    engine = make_engine(f"sqlite:///{db.resolve()}")
    init_db(engine)
    scan_and_store(args.library, engine)
    t_scan = time.perf_counter() - t0
    last = {"t": 0.0}

    def progress(done: int, total: int, model: str) -> None:
        if time.perf_counter() - last["t"] > 30:
            last["t"] = time.perf_counter()
            print(f"  {done}/{total} cells, {time.perf_counter() - t0:.0f}s, {model}", flush=True)

    s = run_matrix(engine, args.library, models=args.model, workers=args.workers, cell_timeout=args.timeout,
                   progress=progress)
    report = write_report(engine, out / f"compat_{args.library}.md", library=args.library)
    fig = {
        "library": args.library, "version": s["version"], "models": len(s["models"]), "cells": s["cells"],
        "counts": s["counts"], "matrix_wall_seconds": s["wall_seconds"],
        "cells_per_second": round(s["cells"] / s["wall_seconds"], 2), "scan_seconds": round(t_scan, 1),
        "workers": args.workers, "cpus": os.cpu_count(), "machine": platform.machine(),
        "capability_mismatches": s["capability_mismatches"], "report": str(report),
    }
    (out / "compat_bench.json").write_text(json.dumps(fig, indent=2, default=str))
    print(json.dumps({k: v for k, v in fig.items() if k != "capability_mismatches"}, indent=2, default=str))
    print(f"capability mismatches: {len(s['capability_mismatches'])}")


if __name__ == "__main__":
    main()
