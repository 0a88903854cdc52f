"""Entry point run *inside* a release environment (:mod:`fcast_assets.registry.envs`): the same scan and compat
code as ``fcast scan`` / ``fcast compat --run``, without the command line's Dagster-backed resources (a release
environment holds the library release and the scanner's dependencies, not Dagster).

``python -m fcast_assets.compat.inenv scan LIBRARY``, ``... rerun RESULT_ID`` and
``python -m fcast_assets.compat.inenv compat LIBRARY [--model M] [--family F] [--workers N] [--timeout S]
[--carry-from VERSION]``. The database is ``FCAST_DB_URL`` (set by the parent). The last stdout line is
``FCAST-RESULT <json summary>``; a failure is one line on stderr and exit code 1 (2 for bad arguments).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

PREFIX = "FCAST-RESULT "


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="fcast_assets.compat.inenv")
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("scan")
    s.add_argument("library")
    c = sub.add_parser("compat")
    c.add_argument("library")
    c.add_argument("--model", action="append", default=[])
    c.add_argument("--family", action="append", default=[])
    c.add_argument("--workers", type=int, default=2)
    c.add_argument("--timeout", type=float, default=60.0)
    c.add_argument("--carry-from", default=None)
    r = sub.add_parser("rerun")
    r.add_argument("result_id", type=int)
    for x in (s, c, r):
        x.add_argument("--debug", action="store_true")
    args = ap.parse_args(argv)
    if os.environ.get("FCAST_WATCH_PARENT") == "1":  # started by run_in_env: end with the fcast process
        from fcast_assets.compat.process import watch_parent

        watch_parent()

    from fcast_assets import config
    from fcast_assets.db.engine import get_engine

    engine = get_engine(config.db_url())
    try:
        if args.cmd == "scan":
            from fcast_assets.registry import scan_and_store

            out = scan_and_store(args.library, engine)
            out = {k: out[k] for k in ("release_id", "status", "library", "version", "scan_seconds", "counts",
                                       "diff")}
        elif args.cmd == "rerun":
            from fcast_assets.compat.tables import rerun_cell

            out = rerun_cell(engine, args.result_id)
        else:
            from fcast_assets.compat.probe import run_matrix

            out = run_matrix(engine, args.library, models=args.model or None, families=args.family or None,
                             workers=args.workers, cell_timeout=args.timeout, carry_from=args.carry_from)
            out = {k: out[k] for k in ("compat_run_id", "cells", "counts", "library", "version", "carried", "ran",
                                       "wall_seconds") if k in out}
    except Exception as e:  # one line for the parent; the traceback with --debug
        if args.debug:
            raise
        print(f"error: {type(e).__name__}: {e}".splitlines()[0], file=sys.stderr)
        return 1
    print(PREFIX + json.dumps(out, default=str), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
