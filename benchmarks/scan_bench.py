"""Time the registry scan of each library in a fresh interpreter (import included) and print counts.

    uv run python benchmarks/scan_bench.py [LIBRARY ...]     # default: every library of libraries.yaml

Each library is scanned in its own subprocess (cold import, as a Dagster run process pays it) into a fresh
SQLite database; the figures (wall seconds incl. interpreter start and import, scan seconds, counts) are
printed as a Markdown table and written to reports/scan_bench.json.
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
t0 = time.perf_counter()
from fcast_assets.db.engine import make_engine, init_db
from fcast_assets.registry import scan_and_store
e = make_engine(sys.argv[2]); init_db(e)
s = scan_and_store(sys.argv[1], e)
s["in_process_seconds"] = time.perf_counter() - t0
print("RESULT" + json.dumps({k: s[k] for k in ("library", "version", "counts", "scan_seconds", "in_process_seconds")}))
"""


def main(names: list[str]) -> None:
    from fcast_assets.registry import library_names

    names = names or library_names()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            url = f"sqlite:///{Path(tmp) / (name + '.db')}"
            t0 = time.perf_counter()
            proc = subprocess.run([sys.executable, "-c", CHILD, name, url], capture_output=True, text=True,
                                  env={**os.environ})
            wall = time.perf_counter() - t0
            line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT")), None)
            if proc.returncode or line is None:
                print(f"{name}: failed\n{proc.stderr[-2000:]}", file=sys.stderr)
                continue
            r = json.loads(line[6:])
            r["wall_seconds"] = round(wall, 1)
            rows.append(r)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cpus, python {platform.python_version()}\n")
    print("| library | version | modules | classes | functions | methods | parameters | enum values | "
          "import failures | scan s (import incl.) | wall s (new process) |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        c = r["counts"]
        print(f"| {r['library']} | {r['version']} | {c['modules']} | {c['classes']} | {c['functions']} | "
              f"{c['methods']} | {c['parameters']} | {c['enum_values']} | {c['import_failures']} | "
              f"{r['scan_seconds']:.1f} | {r['wall_seconds']:.1f} |")
    out = Path("reports") / "scan_bench.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
