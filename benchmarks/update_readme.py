"""Copy the latest benchmark figures (reports/scan_bench.json, compat_bench.json, features_bench.json,
models_bench.json) into README.md between the BENCH / COMPAT-BENCH / FEATURES-BENCH / MODELS-BENCH markers.

    uv run python benchmarks/update_readme.py [--only COMPAT-BENCH]
"""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _block(text: str, marker: str) -> str:
    m = re.search(rf"<!-- {marker}:START -->\n(.*?)<!-- {marker}:END -->", text, re.S)
    return m.group(1) if m else ""


def _replace(text: str, marker: str, body: str) -> str:
    pattern = re.compile(rf"(<!-- {marker}:START -->\n).*?(<!-- {marker}:END -->)", re.S)
    return pattern.sub(lambda m: m.group(1) + body.rstrip() + "\n" + m.group(2), text)


def scan_table(rows: list[dict]) -> str:
    out = ["Measured by `benchmarks/scan_bench.py` (each library in a fresh process: interpreter start, import and",
           "scan included; 2-core machine, SQLite). *import only*: a fresh process importing just the modules the",
           "scan walked; *scan / import*: a second scan (walk + store) over that import time:", "",
           "| library | version | modules | classes | functions | methods | parameters | enum values | import failures "
           "| scan s (import incl.) | wall s (new process) | import only s | scan / import |",
           "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        c = r["counts"]
        out.append(f"| {r['library']} | {r['version']} | {c['modules']} | {c['classes']} | {c['functions']} | "
                   f"{c['methods']} | {c['parameters']} | {c['enum_values']} | {c['import_failures']} | "
                   f"{r['scan_seconds']:.1f} | {r['wall_seconds']:.1f} | {r.get('import_seconds', float('nan')):.1f} | "
                   f"{r.get('scan_import_ratio', float('nan')):.2f} |")
    if all("rescan_seconds" in r for r in rows) and rows:
        scan, imp = sum(r["rescan_seconds"] for r in rows), sum(r["import_seconds"] for r in rows)
        out += ["", f"All {len(rows)} libraries: scan {scan:.1f} s against import {imp:.1f} s, **{scan / imp:.2f} x** "
                    "(the scan's own work: signatures, docstrings, line numbers from one parse per file, the store)."]
    return "\n".join(out)


COMPAT_COLUMNS = ["library", "version", "models", "cells", "ok", "error", "suspect", "timeout", "skipped", "wall s",
                  "Σ cell s / workers", "ratio", "import s", "within target"]


def compat_row(fig: dict) -> str:
    c = fig["counts"]
    models = str(fig["models"]) + (f" ({', '.join(fig['model_filter'])})" if fig.get("model_filter") else "")
    if fig.get("family_filter"):
        models += f", families {', '.join(fig['family_filter'])}"
    imp = "" if fig.get("import_seconds") is None else f"{fig['import_seconds']:.2f}"
    return (f"| {fig['library']} | {fig['version']} | {models} | {fig['cells']} | {c.get('ok', 0)} | "
            f"{c.get('error', 0)} | {c.get('suspect', 0)} | {c.get('timeout', 0)} | {c.get('skipped', 0)} | "
            f"{fig['wall_seconds']:.1f} | {fig['sum_per_worker_seconds']:.1f} | {fig['ratio']:.2f} | {imp} | "
            f"{'yes' if fig.get('within_budget') else 'no'} |")


def compat_table(figs: list[dict] | dict, old_block: str = "") -> str:
    """The per-library table of ``compat_bench.json`` (a list of libraries; an older single dict is one). Rows of
    libraries the json lacks are kept from ``old_block`` (the README's current block), and so is a neuralforecast
    paragraph of the older single-run format while neuralforecast has no row."""
    figs = figs if isinstance(figs, list) else [figs]
    rows = {f["library"]: compat_row(f) for f in figs if "sum_per_worker_seconds" in f}
    for line in old_block.splitlines():
        cells = [x.strip() for x in line.strip().strip("|").split("|")]
        if line.startswith("| ") and len(cells) == len(COMPAT_COLUMNS) and cells[0] not in ("library",):
            rows.setdefault(cells[0], line.rstrip())
    prose = [line for line in old_block.splitlines() if line.startswith("**Benchmark**")
             and "neuralforecast" in line and "neuralforecast" not in rows]
    older = [f for f in figs if "sum_per_worker_seconds" not in f]  # the older one-library format
    prose += [_compat_text(f) for f in older if f["library"] not in rows and f["library"] == "neuralforecast"
              and not prose]
    def each(k: str) -> str:
        return "/".join(f"{v:g}" for v in sorted({f[k] for f in figs if f.get(k) is not None})) or "?"

    loads = [x for f in figs for x in (f.get("load_avg") or []) if x is not None]
    out = ["Measured by `benchmarks/compat_bench.py` (a fresh SQLite DB per library, the library scanned, then its "
           f"whole matrix; {each('workers')} workers, cell timeout {each('cell_timeout')} s, {each('cpus')}-core machine"
           + (f", 1-minute load average {min(loads):.1f}–{max(loads):.1f} during the runs" if loads else "") + "). "
           "*wall s*: the matrix (both phases, planning, DB writes); *Σ cell s / workers*: the cells' own "
           "durations plus each group's setup (its shared fits), over the workers; *ratio*: wall over that — "
           "1.0 is every worker busy with cells all the time, the rest is a process per cell, the wait for the "
           "calibration phase and the last group; *import s*: the library's one-time import "
           "(`adapter.prepare()` timed in a fresh process; the matrix pays it once, the target allows it). Target: wall ≤ 1.3 × Σ / workers + import.", "",
           "| " + " | ".join(COMPAT_COLUMNS) + " |", "|---|---|---|" + "---:|" * (len(COMPAT_COLUMNS) - 3)]
    out += [rows[k] for k in sorted(rows)]
    if prose:
        out += [""] + prose
    return "\n".join(out)


def _compat_text(fig: dict) -> str:
    counts = ", ".join(f"{k} {v}" for k, v in sorted(fig["counts"].items()))
    return "\n".join([
        f"**Benchmark** (`benchmarks/compat_bench.py`, {fig['library']} {fig['version']}, {fig['cpus']}-core "
        f"machine, {fig['workers']} workers, cell timeout 60 s): the full matrix — {fig['models']} model and Auto "
        f"classes, **{fig['cells']} cells** ({counts}) — ran in **{fig['matrix_wall_seconds'] / 60:.1f} minutes**, "
        f"**{fig['cells_per_second']} cells per second** (the registry scan before it: {fig['scan_seconds']} s). "
        f"Declared vs observed exogenous capabilities: {len(fig['capability_mismatches'])} disagreement(s). "
        f"The full report with every correspondence table is `reports/compat_{fig['library']}.md` "
        f"(a copy of this run: [docs/compat_{fig['library']}.md](docs/compat_{fig['library']}.md)).",
    ])


def features_table(rows: list[dict]) -> str:
    out = ["Feature build time (`benchmarks/features_bench.py`: every gold feature of the raw slot series, in memory,",
           "Delta writes left out; the history extended 2x and 4x by repeating it after itself):", "",
           "| game | scale | draws | rows | features | seconds | µs per row |", "|---|---:|---:|---:|---:|---:|---:|"]
    out += [f"| {r['game']} | {r['scale']}x | {r['draws']} | {r['rows']} | {r['features']} | {r['seconds']} | "
            f"{r['us_per_row']} |" for r in rows]
    return "\n".join(out)


def models_table(fig: dict) -> str:
    rows = fig["models"]
    beat = [r for r in rows if r["beats_baselines"]]
    games = sorted({r["game"] for r in rows}, key=[r["game"] for r in rows].index)
    total = sum(r["train_seconds"] + r["predict_seconds"] + r["xai_seconds"] for r in rows)
    out = [f"The full run (`benchmarks/models_bench.py`, {fig['cpus']}-core CPU machine, default configuration): "
           f"**{len(rows)} models** over {len(games)} games ({', '.join(games)}), trained, predicted and explained "
           f"in {total / 60:.1f} minutes ({fig['total_seconds'] / 60:.1f} with the registry scan, compat cells and "
           f"lake + gold builds). **{len(beat)} of {len(rows)} models beat every baseline** on every CV metric"
           + (f" ({', '.join(r['game'] + '.' + r['selector'] for r in beat)})" if beat else "")
           + ". Per model (CV over the last 20 draws, one step ahead):", "",
           "| model | series | train rows | train s | predict s | xai s | peak RSS MB | CV MAE | best baseline | "
           "its MAE | Naive MAE | uniform draw MAE | beats all | top feature |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---|---|"]
    for r in rows:
        out.append(f"| {r['game']}.{r['selector']} | {r['series']} | {r['train_rows']} | {r['train_seconds']} | "
                   f"{r['predict_seconds']} | {r['xai_seconds']} | {r['max_rss_mb']:.0f} | {r['mae']:.3f} | "
                   f"{r['best_baseline']} | {r['best_baseline_mae']:.3f} | {r['naive_mae']:.3f} | "
                   f"{r['uniform_draw_mae']:.3f} | {'yes' if r['beats_baselines'] else 'no'} | {r['top_feature']} |")
    return "\n".join(out)


def releases_table(figs: dict) -> str:
    """benchmarks/releases_bench.py: environment build, full matrices, diff-driven re-probe of the newer release."""
    lines = ["Releases side by side (`benchmarks/releases_bench.py`, 2 workers on this 2-core machine; the older "
             "release in its own environment, uv's package cache warm as after the project's install):", "",
             "| library | from → to | scope | env cold s | env cached s | cells (from / to) | full run of *to* s | "
             "diff-driven: ran / carried | diff-driven s | saved s | misses |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for key, f in sorted(figs.items()):
        if "diff_new" not in f:  # a run still going (or killed before its diff-driven step)
            continue
        scope = "all" if f.get("models") == "all" and f.get("families") == "all" else \
            f"models {', '.join(f['models']) if isinstance(f['models'], list) else 'all'}; families " \
            f"{', '.join(f['families']) if isinstance(f['families'], list) else 'all'}"
        d, fo, fn = f["diff_new"], f["full_old"], f["full_new"]
        lines.append(f"| {f['library']} | {f['from']} → {f['to']} | {scope} | "
                     f"{f.get('env_cold_seconds', '– (built earlier)')} | {f['env_cached_seconds']} | "
                     f"{fo['cells']} / {fn['cells']} | {fn['seconds']} | {d['ran']} / {d['carried']} | "
                     f"{d['seconds']} | {d['saved_seconds']} | {d['misses']} |")
    lines.append("")
    lines.append("*misses*: carried cells whose outcome differs from the full run of the same release (a change "
                 "reached another way than the diff follows: a method of another object, a C extension, a dependency). *carried* is 0 "
                 "where every cell goes through a method whose body changed (statsforecast 2.1.1's StatsForecast."
                 "forecast / predict, mlforecast 1.1.0's MLForecast methods): the diff re-runs them all.")
    reran = [f"{f['library']} {f['from']} → {f['to']} ({f['models'] if f['models'] == 'all' else 'subset'}: "
             f"{f['auto_rerun_new']['cells']} cells, {f['auto_rerun_old']['seconds']} s and "
             f"{f['auto_rerun_new']['seconds']} s)" for f in figs.values() if "auto_rerun_new" in f]
    if reran:
        lines.append(" " + "; ".join(reran) + ": its full runs sampled the Auto classes' configs unseeded, so their "
                     "Auto cells ran again in both releases with the seeded sampler before the diff-driven run, whose "
                     "misses are counted against those.")
    return "\n".join(lines) + "\n"


def main(only: list[str] | None = None) -> None:
    """Render every block whose json exists, or only the ``only`` markers (``--only COMPAT-BENCH``)."""
    readme = ROOT / "README.md"
    text = readme.read_text(encoding="utf-8")
    for name, marker, render in (("scan_bench.json", "BENCH", scan_table), ("compat_bench.json", "COMPAT-BENCH",
                                 compat_table), ("features_bench.json", "FEATURES-BENCH", features_table),
                                 ("models_bench.json", "MODELS-BENCH", models_table),
                                 ("releases_bench.json", "RELEASES-BENCH", releases_table)):
        fig = ROOT / "reports" / name
        if fig.exists() and (not only or marker in only):
            figs = json.loads(fig.read_text(encoding="utf-8"))
            body = render(figs, _block(text, marker)) if marker == "COMPAT-BENCH" else render(figs)
            text = _replace(text, marker, body)
    readme.write_text(text, encoding="utf-8")

if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description="copy the benchmark figures into README.md")
    ap.add_argument("--only", action="append", default=None, help="a marker (BENCH, COMPAT-BENCH, ...): repeatable")
    main(ap.parse_args().only)
