"""Time the compatibility matrix per library and say what the matrix costs against what its cells cost.

    uv run python benchmarks/compat_bench.py --library statsforecast [--library mlforecast ...] [--all]
        [--model AutoARIMA | --model statsforecast:AutoARIMA ...] [--family h ...] [--workers 2] [--timeout 60] [--replace] [--readme]

Per library: a fresh SQLite database (reports/compat_bench_<library>.db) with the library scanned into it, the
matrix run (``probe.run_matrix``), then from its compat_result rows:

- ``cells`` and the counts by status;
- ``wall_seconds``: the matrix's own wall time (``compat_run.wall_seconds``: both phases, planning, DB writes);
- ``cell_seconds``: Σ of the cells' durations (a timed-out first try counted too) and ``setup_seconds``: Σ of the
  groups' setups (once per group, ``context.setup_seconds``), ``sum_seconds`` both together;
- ``cpu_seconds``: CPU time of the whole matrix (every process of it; not on Windows): the work, whatever else
  runs on the machine;
- ``ratio``: wall / (sum_seconds / workers), 1.0 being perfect use of the workers; ``budget_seconds``:
  1.3 × sum_seconds / workers + ``import_seconds`` (the library's one-time import, ``adapter.prepare()`` timed in
  a fresh process) and ``within_budget``: wall ≤ budget.

Results go into reports/compat_bench.json (one entry per library, merged with what is there: run the libraries
one at a time; ``--replace`` starts the file afresh); the statuses of every cell into
reports/compat_cells_<library>.json (to compare two runs cell by cell), the Markdown report of every
correspondence table into reports/compat_<library>.md; ``--readme`` then renders README's
COMPAT-BENCH table (benchmarks/update_readme.py).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUDGET_FACTOR = 1.3

_IMPORT_PROBE = """
import sys, time
from fcast_assets.compat.probe import adapter_for
from fcast_assets.registry.view import latest_release
from fcast_assets.db.engine import make_engine
engine = make_engine(sys.argv[1])
adapter = adapter_for(sys.argv[2], engine, latest_release(engine, sys.argv[2])[0], ".")
t0 = time.perf_counter()
adapter.prepare()
print(round(time.perf_counter() - t0, 3))
"""


def import_seconds(url: str, library: str) -> float | None:
    """The library's one-time import, as the matrix pays it: ``adapter.prepare()`` in a fresh interpreter."""
    out = subprocess.run([sys.executable, "-c", _IMPORT_PROBE, url, library], capture_output=True, text=True,
                         cwd=ROOT, timeout=600)
    try:
        return float(out.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        print(f"  import probe of {library} failed: {out.stderr.strip().splitlines()[-1:]}", flush=True)
        return None


def _load() -> float | None:
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


def _cpu() -> float | None:
    """CPU seconds (user + system) of this process and its waited-for descendants (group and cell processes)."""
    try:
        import resource
    except ImportError:  # Windows: no resource module
        return None
    return sum(r.ru_utime + r.ru_stime for r in (resource.getrusage(resource.RUSAGE_SELF),
                                                  resource.getrusage(resource.RUSAGE_CHILDREN)))


def run_figures(engine, run_id: int) -> dict:
    """Σ cell seconds, Σ setup seconds (one per group), cells by status, per-cell statuses of one compat run."""
    from sqlalchemy import select

    from fcast_assets.db import models as m

    r = m.CompatResult.__table__
    rows = [x._mapping for x in engine.connect().execute(select(
        r.c.model, r.c.method, r.c.param, r.c.value_label, r.c.scenario, r.c.status, r.c.exception_type,
        r.c.seconds, r.c.context).where(r.c.compat_run_id == run_id).order_by(r.c.result_id))]
    cell_s, setups, counts, cells = 0.0, {}, {}, []
    for x in rows:
        ctx = x["context"] or {}
        cell_s += x["seconds"] or 0.0
        first = (ctx.get("retry") or {}).get("first_seconds")
        cell_s += first or 0.0
        key = (ctx.get("group") or {}).get("key")
        if key is not None and ctx.get("setup_seconds") is not None:
            setups[key] = max(setups.get(key, 0.0), ctx["setup_seconds"])
        counts[x["status"]] = counts.get(x["status"], 0) + 1
        cells.append({"model": x["model"].rsplit(".", 1)[-1], "method": x["method"], "param": x["param"],
                      "value_label": x["value_label"], "scenario": x["scenario"], "status": x["status"],
                      "exception_type": x["exception_type"]})
    return {"cell_seconds": round(cell_s, 2), "setup_seconds": round(sum(setups.values()), 2),
            "groups": len(setups), "counts": counts, "cells": cells}


def bench_library(library: str, args: argparse.Namespace, out: Path) -> dict:
    from fcast_assets.compat.probe import run_matrix
    from fcast_assets.compat.tables import write_report
    from fcast_assets.db.engine import init_db, make_engine
    from fcast_assets.registry import scan_and_store

    db = out / f"compat_bench_{library}.db"
    for p in (db, Path(str(db) + "-wal"), Path(str(db) + "-shm")):
        p.unlink(missing_ok=True)
    url = f"sqlite:///{db.resolve()}"
    engine = make_engine(url)
    init_db(engine)
    t0 = time.perf_counter()
    scan_and_store(library, engine)
    t_scan = time.perf_counter() - t0
    imp = import_seconds(url, library)
    last = {"t": time.perf_counter()}
    load0, cpu0 = _load(), _cpu()

    def progress(done: int, total: int, model: str) -> None:
        if time.perf_counter() - last["t"] > 30:
            last["t"] = time.perf_counter()
            print(f"  {library}: {done}/{total} cells, {time.perf_counter() - t0:.0f}s, {model}", flush=True)

    models = models_for(library, args.model)
    s = run_matrix(engine, library, models=models, families=args.family, workers=args.workers,
                   cell_timeout=args.timeout, progress=progress)
    cpu = None if cpu0 is None else round(_cpu() - cpu0, 2)
    f = run_figures(engine, s["compat_run_id"])
    report = write_report(engine, out / f"compat_{library}.md", library=library)
    engine.dispose()
    total = f["cell_seconds"] + f["setup_seconds"]
    per_worker = total / args.workers
    wall = s["wall_seconds"]
    cells = f.pop("cells")
    (out / f"compat_cells_{library}.json").write_text(json.dumps(cells, indent=1), encoding="utf-8")
    budget = BUDGET_FACTOR * per_worker + (imp or 0.0)
    return {
        "library": library, "version": s["version"], "models": len(s["models"]),
        "model_filter": models, "family_filter": args.family, "cells": s["cells"], "counts": s["counts"],
        "wall_seconds": wall, "cell_seconds": f["cell_seconds"], "setup_seconds": f["setup_seconds"],
        "groups": f["groups"], "sum_seconds": round(total, 2), "workers": args.workers,
        "sum_per_worker_seconds": round(per_worker, 2),
        "ratio": round(wall / per_worker, 3) if per_worker else None,
        "import_seconds": imp, "budget_seconds": round(budget, 2), "within_budget": wall <= budget,
        "scan_seconds": round(t_scan, 1), "cell_timeout": args.timeout, "cpus": os.cpu_count(),
        "machine": platform.machine(), "capability_mismatches": s["capability_mismatches"], "report": str(report),
        "cpu_seconds": cpu,  # user + system CPU of this process and every process of the matrix (load-proof work)
        "load_avg": [load0, _load()],  # 1-minute load average before / after the matrix: other work on the machine
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def models_for(library: str, names: list[str] | None) -> list[str] | None:
    """``--model`` names for ``library``: ``library:Model`` for that library only, a plain ``Model`` for each."""
    if not names:
        return None
    mine = [n.split(":", 1)[1] for n in names if n.startswith(f"{library}:")] + [n for n in names if ":" not in n]
    return mine or None


def merge(path: Path, new: list[dict], replace: bool) -> list[dict]:
    """The libraries of ``path`` (a list of per-library entries; an older single-library dict counts as one)
    with ``new`` replacing those of the same library."""
    old: list[dict] = []
    if path.exists() and not replace:
        data = json.loads(path.read_text(encoding="utf-8"))
        old = data if isinstance(data, list) else [data]
    fresh = {e["library"] for e in new}
    return [e for e in old if e.get("library") not in fresh] + new


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--library", action="append", default=None, help="repeatable")
    ap.add_argument("--all", action="store_true", help="every library with a compat adapter (probe.ADAPTERS)")
    ap.add_argument("--exclude", action="append", default=[], help="with --all: a library to leave out (repeatable)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--model", action="append", default=None,
                    help="model class name (repeatable); library:Model for one library of several")
    ap.add_argument("--family", action="append", default=None, help="cell family (repeatable)")
    ap.add_argument("--out", default=str(ROOT / "reports"))
    ap.add_argument("--replace", action="store_true", help="start compat_bench.json afresh instead of merging")
    ap.add_argument("--readme", action="store_true", help="render README's COMPAT-BENCH table afterwards")
    args = ap.parse_args()
    from fcast_assets.compat.probe import ADAPTERS

    libraries = ([x for x in ADAPTERS if x not in args.exclude] if args.all
                 else list(dict.fromkeys(args.library or [])))
    unknown = [lib for lib in libraries if lib not in ADAPTERS]
    if not libraries or unknown:
        sys.exit(f"compat_bench: give --library (one of {', '.join(ADAPTERS)}) or --all"
                 + (f"; no compat adapter for {unknown}" if unknown else ""))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for lib in libraries:
        print(f"{lib}: scanning and running the matrix ...", flush=True)
        fig = bench_library(lib, args, out)
        results.append(fig)
        print(json.dumps({k: v for k, v in fig.items() if k != "capability_mismatches"}, default=str), flush=True)
    path = out / "compat_bench.json"
    path.write_text(json.dumps(merge(path, results, args.replace), indent=2, default=str), encoding="utf-8")
    if args.readme:
        sys.path.insert(0, str(ROOT / "benchmarks"))
        import update_readme

        update_readme.main(only=["COMPAT-BENCH"])


if __name__ == "__main__":
    main()
