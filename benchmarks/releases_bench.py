"""Releases side by side, measured: environment builds (cold and cached), the full matrix of an older and a newer
release, and the diff-driven re-probe of the newer one against the full run.

    uv run python benchmarks/releases_bench.py --library statsforecast --from 2.0.3 --to 2.1.1 \
        [--model AutoARIMA ...] [--family sf_edges ...] [--workers 2] [--timeout 60] [--cold] [--docs]

One fresh SQLite database per release pair (reports/releases_bench_<library>_<from>_<to>.db). Steps, each timed:

1. ``env_cold_seconds`` (with ``--cold``: the environment folder is removed first; uv's package cache stays, as
   on any machine that installed the project) and ``env_cached_seconds`` (the second call);
2. both releases scanned, the older in its environment, the newer where it is (installed here or its environment);
3. ``full_old`` / ``full_new``: the matrix (or the --model / --family subset) of each release, every cell run;
4. ``diff_new``: the newer release again, diff-driven from the older (only the cells the registry diff touches
   run, the rest carried over): cells run vs carried, seconds, ``saved_seconds`` against ``full_new``, and
   ``misses``: carried cells whose outcome differs from the full run's (what the diff of signatures and bodies, helpers included, cannot see).

``--reuse-full "<library> <a>-><b>"``: the full run of the release this pair shares with an earlier pair (the
newer of a 3.1.9 → 3.2.2 pair is the older of 3.2.2 → 3.3.0) is taken from that pair's database and entry instead
of being run again (same models and families): its database is copied as this pair's, the other release is scanned,
run in full and re-probed as above.

``--diff-only --rerun-auto``: the Auto classes' cells of both releases run again first (full runs made before
the Auto cells sampled with a seeded sampler held chance outcomes), then the diff-driven re-probe.

Results go into reports/releases_bench.json (one entry per release pair, merged); ``--docs`` writes the upgrade report
from the full runs to docs/upgrades/<library>-<from>-to-<to>.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--library", required=True)
    ap.add_argument("--from", dest="old", required=True)
    ap.add_argument("--to", dest="new", required=True)
    ap.add_argument("--model", action="append", default=[])
    ap.add_argument("--family", action="append", default=[])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--cold", action="store_true", help="remove the older release's environment first")
    ap.add_argument("--docs", action="store_true", help="write docs/upgrades/<library>-<from>-to-<to>.md")
    ap.add_argument("--reuse-full", metavar="ENTRY", help="take the shared release's full run from this earlier "
                    "entry of reports/releases_bench.json (e.g. 'neuralforecast 3.2.2->3.3.0') and its database")
    ap.add_argument("--rerun-auto", action="store_true", help="with --diff-only: first run the Auto classes' "
                    "cells of both releases again (their full runs sampled configs unseeded before the Auto cells "
                    "had a seeded sampler); the reports and the misses then read those rows")
    ap.add_argument("--diff-only", action="store_true", help="keep the database and its full runs: rescan both "
                    "releases and run only the diff-driven re-probe again (after a change to the diff rules)")
    args = ap.parse_args()

    db = ROOT / "reports" / f"releases_bench_{args.library}_{args.old}_{args.new}{'_subset' if args.model else ''}.db"
    path = ROOT / "reports" / "releases_bench.json"
    key = f"{args.library} {args.old}->{args.new}" + (f" [{','.join(args.model)}]" if args.model else "")
    reused: dict = {}
    if args.reuse_full:  # checked before anything is removed; copies the earlier pair's database as this one's
        reused = _reused_full(args, path, db)
    elif not args.diff_only:
        db.unlink(missing_ok=True)
    os.environ["FCAST_DB_URL"] = f"sqlite:///{db}"

    from fcast_assets.compat.releases import probe_release, scan_release
    from fcast_assets.db.engine import init_db, make_engine
    from fcast_assets.registry.envs import ensure_env, env_dir, is_installed_release, parse_spec

    eng = make_engine(os.environ["FCAST_DB_URL"])
    init_db(eng)
    old, new = parse_spec(f"{args.library}=={args.old}"), parse_spec(f"{args.library}=={args.new}")
    if args.diff_only:
        out = json.loads(path.read_text(encoding="utf-8"))[key]
        for spec in (new, old):
            scan_release(eng, spec)
        kw = dict(models=args.model or None, families=args.family or None, workers=args.workers,
                  cell_timeout=args.timeout)
        if args.rerun_auto:
            _rerun_auto(args, eng, (old, new), out, path, key)
        return _diff(args, eng, new, kw, out, path, key, db)
    out: dict = {"library": args.library, "from": args.old, "to": args.new, "models": args.model or "all",
                 "families": args.family or "all", "workers": args.workers, "machine": platform.machine(),
                 "cpus": os.cpu_count(), "date": time.strftime("%Y-%m-%d")}
    if args.cold:
        shutil.rmtree(env_dir(old), ignore_errors=True)
    t = time.perf_counter()
    e = ensure_env(old)
    out["env_cold_seconds" if not e.cached else "env_first_call_seconds"] = round(time.perf_counter() - t, 2)
    t = time.perf_counter()
    ensure_env(old)
    out["env_cached_seconds"] = round(time.perf_counter() - t, 3)
    out["new_in_env"] = not is_installed_release(new)
    for spec in (new, old):
        s = scan_release(eng, spec)
        out[f"scan_{'old' if spec is old else 'new'}_seconds"] = s["scan_seconds"]
    kw = dict(models=args.model or None, families=args.family or None, workers=args.workers,
              cell_timeout=args.timeout)

    def probe(spec, step, **extra):
        if spec.version in reused:
            out[step] = {**reused[spec.version], "reused_from": args.reuse_full}
            print(step, "reused", out[step], flush=True)
            return
        r = probe_release(eng, spec, **kw, **extra)
        out[step] = {k: r[k] for k in ("cells", "counts", "ran", "carried", "seconds")}
        print(step, out[step], flush=True)
        _save(path, key, out)  # a long run killed later keeps its full runs (--diff-only picks them up)

    probe(old, "full_old")
    probe(new, "full_new")
    if args.docs:  # the report reads the full runs: written before the (long) diff-driven step
        _write_doc(args, eng, out, db)
        _save(path, key, out)
    return _diff(args, eng, new, kw, out, path, key, db)


def _diff(args, eng, new, kw, out, path, key, db) -> int:
    from fcast_assets.compat.releases import carry_misses, probe_release

    r = probe_release(eng, new, carry_from=args.old, **kw)
    out["diff_new"] = {k: r[k] for k in ("cells", "counts", "ran", "carried", "seconds")}
    print("diff_new", out["diff_new"], flush=True)
    misses = carry_misses(eng, args.library, args.new, compat_run_id=r["compat_run_id"])
    out["diff_new"]["misses"] = len(misses)
    out["diff_new"]["miss_examples"] = [
        f"{r.model.rsplit('.', 1)[-1]} {r.method} {r.param}={r.value_label}: carried {r.status_carried}, "
        f"ran {r.status_ran} {r.exception_type_ran or ''}".strip() for r in misses.head(5).itertuples()]
    out["diff_new"]["saved_seconds"] = round(out["full_new"]["seconds"] - out["diff_new"]["seconds"], 2)
    if args.docs and args.diff_only:  # a full run wrote it after its two full runs
        _write_doc(args, eng, out, db)
    _save(path, key, out)
    print(json.dumps(out, indent=1))
    return 0


def _rerun_auto(args, eng, specs, out: dict, path: Path, key: str) -> None:
    """The Auto classes' cells (family ``auto``) of both releases run again, each in its own environment."""
    from sqlalchemy import text

    from fcast_assets.compat.releases import probe_release

    with eng.connect() as conn:
        autos = sorted({q.rsplit(".", 1)[-1] for q in conn.execute(text(
            "SELECT DISTINCT model FROM compat_result WHERE method = 'Auto.__init__'")).scalars()})
    if args.model:
        autos = [a for a in autos if a in args.model]
    if not autos:
        return
    for spec, step in zip(specs, ("auto_rerun_old", "auto_rerun_new")):
        r = probe_release(eng, spec, models=autos, families=["auto"], workers=args.workers,
                          cell_timeout=args.timeout)
        out[step] = {k: r[k] for k in ("cells", "counts", "ran", "seconds")}
        print(step, out[step], flush=True)
        _save(path, key, out)


def _reused_full(args, path: Path, db: Path) -> dict:
    """{version: full-run numbers} of the release this pair shares with the entry ``args.reuse_full``, whose
    database becomes this pair's (copied); one line and exit 1 when the entry does not fit (nothing copied)."""
    entries = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    e = entries.get(args.reuse_full)
    if e is None or e.get("library") != args.library:
        sys.exit(f"--reuse-full: no entry {args.reuse_full!r} of {args.library} in {path.relative_to(ROOT)}")
    if (e.get("models"), e.get("families")) != (args.model or "all", args.family or "all"):
        sys.exit(f"--reuse-full: {args.reuse_full!r} ran other models or families than this pair")
    runs = {e["from"]: e.get("full_old"), e["to"]: e.get("full_new")}
    shared = {v: r for v, r in runs.items() if v in (args.old, args.new) and r and not r.get("reused_from")}
    if not shared:
        sys.exit(f"--reuse-full: {args.reuse_full!r} has no full run of {args.old} or {args.new}")
    src = ROOT / "reports" / (f"releases_bench_{args.library}_{e['from']}_{e['to']}"
                              f"{'_subset' if args.model else ''}.db")
    if not src.exists():
        sys.exit(f"--reuse-full: its database {src.relative_to(ROOT)} is gone")
    import sqlite3

    tmp = db.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    with sqlite3.connect(src) as a, sqlite3.connect(tmp) as b:  # the backup API: a WAL not yet merged comes along
        a.backup(b)
    a.close()
    b.close()
    tmp.replace(db)
    return shared


def _write_doc(args, eng, out, db) -> None:
    """docs/upgrades/<library>-<from>-to-<to>.md from the two full runs (written as soon as both exist)."""
    from fcast_assets.compat.releases import upgrade_report

    doc = ROOT / "docs" / "upgrades" / f"{args.library}-{args.old}-to-{args.new}.md"
    doc.parent.mkdir(parents=True, exist_ok=True)
    md = upgrade_report(eng, args.library, args.old, args.new)
    scope = (f"Scope: models {', '.join(args.model) if args.model else 'all'}; families "
             f"{', '.join(args.family) if args.family else 'all'}. Measured by `benchmarks/releases_bench.py` "
             f"on {out['date']} ({out['cpus']} CPUs). The result_ids are rows of its database, "
             f"{db.relative_to(ROOT)} (`FCAST_DB_URL=sqlite:///{db.relative_to(ROOT)} uv run fcast releases "
             f"rerun <id>`).")
    first, rest = md.split("\n", 1)
    doc.write_text(first + "\n\n" + scope + "\n" + rest, encoding="utf-8")
    out["report"] = str(doc.relative_to(ROOT))


def _save(path: Path, key: str, out: dict) -> None:
    allr = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    allr[key] = out
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(allr, indent=1) + "\n", encoding="utf-8")
    tmp.replace(path)


if __name__ == "__main__":
    sys.exit(main())
