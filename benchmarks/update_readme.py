"""Copy the latest benchmark figures (reports/scan_bench.json, compat_bench.json, features_bench.json,
models_bench.json) into README.md between the BENCH / COMPAT-BENCH / FEATURES-BENCH / MODELS-BENCH markers.

    uv run python benchmarks/update_readme.py
"""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _replace(text: str, marker: str, body: str) -> str:
    pattern = re.compile(rf"(<!-- {marker}:START -->\n).*?(<!-- {marker}:END -->)", re.S)
    return pattern.sub(lambda m: m.group(1) + body.rstrip() + "\n" + m.group(2), text)


def scan_table(rows: list[dict]) -> str:
    out = ["Measured by `benchmarks/scan_bench.py` (each library in a fresh process: interpreter start, import and",
           "scan included; 2-core machine, SQLite):", "",
           "| library | version | modules | classes | functions | methods | parameters | enum values | import failures "
           "| scan s (import incl.) | wall s (new process) |", "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        c = r["counts"]
        out.append(f"| {r['library']} | {r['version']} | {c['modules']} | {c['classes']} | {c['functions']} | "
                   f"{c['methods']} | {c['parameters']} | {c['enum_values']} | {c['import_failures']} | "
                   f"{r['scan_seconds']:.1f} | {r['wall_seconds']:.1f} |")
    return "\n".join(out)


def compat_text(fig: dict) -> str:
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


def main() -> None:
    readme = ROOT / "README.md"
    text = readme.read_text()
    for name, marker, render in (("scan_bench.json", "BENCH", scan_table), ("compat_bench.json", "COMPAT-BENCH",
                                 compat_text), ("features_bench.json", "FEATURES-BENCH", features_table),
                                 ("models_bench.json", "MODELS-BENCH", models_table)):
        fig = ROOT / "reports" / name
        if fig.exists():
            text = _replace(text, marker, render(json.loads(fig.read_text())))
    readme.write_text(text)

if __name__ == "__main__":
    main()
