"""Time the registry scan of each library in a fresh interpreter (import included) and print counts, beside
the time it takes just to import every module the scan walks.

    uv run python benchmarks/scan_bench.py [LIBRARY ...]     # default: every library of libraries.yaml

Each library is scanned in its own subprocess (cold import, as a Dagster run process pays it) into a fresh
SQLite database; then a second fresh process imports exactly the modules the scan walked (and nothing else it
does), and a third scans again. The ratio (second scan, scan + store, over import alone) is the scan's own cost.
The figures (wall seconds incl. interpreter start and import, scan seconds, import seconds, ratio, counts) are
printed as a Markdown table and written to reports/scan_bench.json (benchmarks/update_readme.py copies them).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import json, sys, time
from fcast_assets.db.engine import make_engine, init_db
from fcast_assets.registry import get_library, scan_and_store
e = make_engine(sys.argv[2]); init_db(e)
t0 = time.perf_counter()
s = scan_and_store(sys.argv[1], e)
s["in_process_seconds"] = time.perf_counter() - t0
roots = get_library(sys.argv[1]).roots
from sqlalchemy import text
with e.connect() as c:  # modules that failed to import are walked too (and cost their time): import them again
    failed = [r[0] for r in c.execute(text("SELECT module FROM registry_import_failure"))]
s["modules_walked"] = sorted(m for m in sys.modules if m.split(".")[0] in roots) + sorted(failed)
print("RESULT" + json.dumps({k: s[k] for k in ("library", "version", "counts", "scan_seconds", "in_process_seconds",
                                                "modules_walked")}))
"""

# the same process set-up as CHILD (fcast and its database layer imported before the clock starts), then only the
# imports of the modules the scan walked
IMPORT_ONLY = r"""
import importlib, json, sys, time
from fcast_assets.db.engine import make_engine, init_db
from fcast_assets.registry import get_library, scan_and_store
mods = json.loads(sys.stdin.read())
t0 = time.perf_counter()
for m in mods:
    try:
        importlib.import_module(m)
    except BaseException:  # the scan records these as import failures; they cost their time here too
        pass
print("RESULT" + json.dumps({"import_seconds": time.perf_counter() - t0}))
"""


def _child(code: str, args: list[str], stdin: str | None = None) -> dict | None:
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, input=stdin,
                          env={**os.environ})
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT")), None)
    if proc.returncode or line is None:
        print(f"{args[:1]}: failed\n{proc.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(line[6:])


def main(names: list[str]) -> None:
    from fcast_assets.registry import library_names

    names = names or library_names()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            url = f"sqlite:///{Path(tmp) / (name + '.db')}"
            t0 = time.perf_counter()
            first = _child(CHILD, [name, url])
            wall = time.perf_counter() - t0
            if first is None:
                continue
            imp = _child(IMPORT_ONLY, [], json.dumps(first.pop("modules_walked")))
            Path(tmp, name + ".db").unlink()
            again = _child(CHILD, [name, url])
            if imp is None or again is None:
                continue
            r = first
            r["wall_seconds"] = round(wall, 1)
            r["import_seconds"] = round(imp["import_seconds"], 2)
            r["rescan_seconds"] = round(again["in_process_seconds"], 2)
            r["scan_import_ratio"] = round(again["in_process_seconds"] / imp["import_seconds"], 2)
            rows.append(r)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cpus, python {platform.python_version()}\n")
    print("| library | version | modules | classes | functions | methods | parameters | enum values | "
          "import failures | scan s (import incl.) | wall s (new process) | import only s | scan / import |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        c = r["counts"]
        print(f"| {r['library']} | {r['version']} | {c['modules']} | {c['classes']} | {c['functions']} | "
              f"{c['methods']} | {c['parameters']} | {c['enum_values']} | {c['import_failures']} | "
              f"{r['scan_seconds']:.1f} | {r['wall_seconds']:.1f} | {r['import_seconds']:.1f} | "
              f"{r['scan_import_ratio']:.2f} |")
    out = Path("reports") / "scan_bench.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
