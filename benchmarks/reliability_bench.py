"""Reliability figures: run the fault suite (SIGKILL at each stage, then a re-run) and the bad-input table with
FCAST_RELIABILITY_LOG set, count what their cases recorded, and copy the figures into README.md between the
RELIABILITY markers (and reports/reliability_bench.json).

    FCAST_TEST_PG_URL=postgresql+psycopg://... uv run python benchmarks/reliability_bench.py

Without FCAST_TEST_PG_URL the PostgreSQL half of the fault suite is skipped and the figures say so. The figures
are what the tests recorded, case by case: a case counts as survived / answered clearly only when every assertion
of its test passed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTS = ["fcast_assets_tests/test_fault_suite.py", "fcast_assets_tests/test_crash_safety.py",
         "fcast_assets_tests/test_bad_inputs.py", "fcast_assets_tests/test_concurrency.py"]


def run_suite(log: Path) -> int:
    env = dict(os.environ, FCAST_RELIABILITY_LOG=str(log))
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *[t for t in TESTS if (ROOT / t).exists()]]
    return subprocess.run(cmd, cwd=ROOT, env=env).returncode


def figures(lines: list[dict]) -> dict:
    faults = [r for r in lines if r.get("suite") == "fault"]
    bad = [r for r in lines if r.get("suite") == "bad_input"]
    by_db = Counter(r["db"] for r in faults)
    return {
        "faults_injected": len(faults),
        "faults_survived": sum(bool(r.get("survived")) for r in faults),
        "faults_by_db": dict(sorted(by_db.items())),
        "stages": sorted({r["case"].split(":")[0] for r in faults}),
        "rows_lost": sum(int(r.get("rows_lost") or 0) for r in faults),
        "bad_inputs_tried": len(bad),
        "bad_inputs_answered": sum(bool(r.get("answered_clearly")) for r in bad),
        "commands": len({r["command"] for r in bad}),
        "not_survived": [f"{r['db']} {r['case']}" for r in faults if not r.get("survived")],
        "not_answered": [f"{r['command']} {r['case']}" for r in bad if not r.get("answered_clearly")],
    }


def readme_text(fig: dict) -> str:
    dbs = " and ".join(f"{db} ({n})" for db, n in fig["faults_by_db"].items()) or "no database"
    return "\n".join([
        f"Measured by `benchmarks/reliability_bench.py` (the same tests CI runs): **{fig['faults_injected']} faults "
        f"injected, {fig['faults_survived']} survived** — SIGKILL at {len(fig['stages'])} stages "
        f"({', '.join(fig['stages'])}) on {dbs}, each followed by a re-run compared with an unkilled one; "
        f"**rows lost: {fig['rows_lost']}**. **{fig['bad_inputs_tried']} bad inputs tried over {fig['commands']} "
        f"commands, {fig['bad_inputs_answered']} answered with one clear line** and a non-zero exit "
        "(path traversal and code-injection attempts included).",
    ])


def _replace(text: str, marker: str, body: str) -> str:
    import re

    pattern = re.compile(rf"(<!-- {marker}:START -->\n).*?(<!-- {marker}:END -->)", re.S)
    return pattern.sub(lambda m: m.group(1) + body.rstrip() + "\n" + m.group(2), text)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--log", help="aggregate an existing FCAST_RELIABILITY_LOG file instead of running the tests")
    args = ap.parse_args()
    rc = 0
    if args.log:
        log = Path(args.log)
    else:
        log = Path(tempfile.mkdtemp(prefix="fcast-reliability-")) / "reliability.jsonl"
        rc = run_suite(log)
    lines = [json.loads(x) for x in log.read_text(encoding="utf-8").splitlines() if x.strip()] if log.exists() else []
    fig = figures(lines)
    (ROOT / "reports").mkdir(exist_ok=True)
    (ROOT / "reports" / "reliability_bench.json").write_text(json.dumps(fig, indent=2), encoding="utf-8")
    readme = ROOT / "README.md"
    readme.write_text(_replace(readme.read_text(encoding="utf-8"), "RELIABILITY", readme_text(fig)), encoding="utf-8")
    print(json.dumps(fig, indent=2))
    return rc


if __name__ == "__main__":
    sys.exit(main())
