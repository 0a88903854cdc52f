"""The site over the full matrices: every correspondence table of a library's current matrix has its page, and
every cell its mark, checked against the database the pages came from; then ``mkdocs build --strict`` timed.

    uv run python benchmarks/site_bench.py [--library neuralforecast --library statsforecast ...] [--no-mkdocs]

Reads the full-matrix databases ``reports/compat_bench_<library>.db`` written by ``benchmarks/compat_bench.py``
(default: neuralforecast, statsforecast, mlforecast). Per library: tables in the database (distinct (method,
param) among the latest cells of its newest release), pages written, cells checked on their page (by result_id),
seconds to write the pages and to build the site. Results: reports/site_bench.json.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--library", action="append", default=[])
    ap.add_argument("--no-mkdocs", action="store_true")
    args = ap.parse_args()
    from fcast_assets.db.engine import make_engine
    from fcast_assets.site.build import matrix_rows, mkdocs_build, slug, write_matrix_pages

    out = {}
    for lib in args.library or ["neuralforecast", "statsforecast", "mlforecast"]:
        db = ROOT / "reports" / f"compat_bench_{lib}.db"
        if not db.exists():
            print(f"{lib}: {db} missing: run benchmarks/compat_bench.py --library {lib} first", file=sys.stderr)
            return 2
        eng = make_engine(f"sqlite:///{db}")
        rows = [r for r in matrix_rows(eng) if r["library"] == lib]
        want = {(r["method"], r["param"]) for r in rows}
        with tempfile.TemporaryDirectory() as tmp:
            pages = Path(tmp) / "pages"
            t0 = time.perf_counter()
            summary = write_matrix_pages(rows, pages / "matrix")
            write_s = time.perf_counter() - t0
            folder = pages / "matrix" / slug(lib)
            seen_ids: set[int] = set()
            for page in folder.glob("*.md"):
                seen_ids.update(int(x) for x in re.findall(r'data-result="(\d+)"', page.read_text(encoding="utf-8")))
            missing = [r["result_id"] for r in rows if r["result_id"] not in seen_ids]
            entry = {"version": rows[0]["version"] if rows else None, "tables_in_db": len(want),
                     "table_pages": summary["libraries"].get(lib, {}).get("tables", 0), "cells": len(rows),
                     "cells_on_pages": len(rows) - len(missing), "write_seconds": round(write_s, 2)}
            if not args.no_mkdocs:
                entry["mkdocs_seconds"] = mkdocs_build(pages, Path(tmp) / "html", strict=True)
        entry["complete"] = entry["tables_in_db"] == entry["table_pages"] and not missing
        out[lib] = entry
        print(lib, entry, flush=True)
    path = ROOT / "reports" / "site_bench.json"
    path.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    return 0 if all(e["complete"] for e in out.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
