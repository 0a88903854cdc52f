"""The full model run: every active game's k + 1 models (one per main slot + ALL) with the default configuration
(fcast_assets/models/models.yaml), trained through validated run plans, then predicted and explained.

    uv run python benchmarks/models_bench.py [--games loto6 bingo5] [--home DIR]

From a fresh FCAST_HOME (a temp folder by default): registry scan of neuralforecast, the compat cells the model
choice needs (NHITS / TSMixerx: baseline + exogenous families), lake + gold tables per game, then per model
train (CV vs baselines, fit, save, predict), predict (load + predict plan) and explain (permutation importance).
Writes reports/models_bench.json (per model: seconds per stage, peak RSS, CV metrics of the model and the
baselines, beats or not) and prints a Markdown table; benchmarks/update_readme.py copies it into README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--games", nargs="*", default=None)
    ap.add_argument("--home", default=None)
    args = ap.parse_args()
    home = args.home or tempfile.mkdtemp(prefix="fcast-modelbench-")
    os.environ["FCAST_HOME"], os.environ["FCAST_LAKE"] = home, str(Path(home) / "lake")
    os.environ["FCAST_DB_URL"] = f"sqlite:///{Path(home) / 'forecast_meta.db'}"
    from sqlalchemy import text

    from fcast_assets.compat.probe import run_matrix
    from fcast_assets.db.engine import get_engine
    from fcast_assets.features import gold
    from fcast_assets.lake import games
    from fcast_assets.models import train as T
    from fcast_assets.models.selectors import seed_selectors
    from fcast_assets.models.xai import explain
    from fcast_assets.registry import scan_and_store

    eng = get_engine(os.environ["FCAST_DB_URL"])
    t0 = time.perf_counter()
    scan_and_store("neuralforecast", eng)
    run_matrix(eng, "neuralforecast", models=["NHITS", "TSMixerx"],
               families=["futr_exog_list", "hist_exog_list", "stat_exog_list"], workers=2)
    games.seed_games(eng)
    prep = time.perf_counter() - t0
    rows = []
    codes = args.games or games.active_game_codes(eng)
    for code in codes:
        spec = games.get_game(eng, code)
        t = time.perf_counter()
        gold.build_game(eng, spec)
        lake_s = time.perf_counter() - t
        for sel in seed_selectors(eng, spec):
            t = time.perf_counter()
            r = T.train(eng, code, sel.name)
            train_s = time.perf_counter() - t
            t = time.perf_counter()
            T.predict(eng, r["model_id"])
            pred_s = time.perf_counter() - t
            t = time.perf_counter()
            x = explain(eng, r["model_id"])
            xai_s = time.perf_counter() - t
            with eng.connect() as conn:
                rss = conn.execute(text("SELECT MAX(max_rss_mb) FROM run_resource WHERE model_id = :m"),
                                   {"m": r["model_id"]}).scalar()
            m = r["metrics"]
            base = {b: v for b, v in m.items() if b != r["model"]}
            best = min(base, key=lambda b: base[b]["mae"])
            rec = {"game": code, "selector": sel.name, "model": r["model"], "series": len(sel.unique_ids),
                   "train_rows": r["train_rows"], "lake_seconds": round(lake_s, 1), "train_seconds": round(train_s, 1),
                   "predict_seconds": round(pred_s, 1), "xai_seconds": round(xai_s, 1), "max_rss_mb": rss,
                   "mae": m[r["model"]]["mae"], "rmse": m[r["model"]]["rmse"], "best_baseline": best,
                   "best_baseline_mae": base[best]["mae"], "naive_mae": base.get("Naive", {}).get("mae"),
                   "uniform_draw_mae": base.get("UniformDraw", {}).get("mae"),
                   "beats_baselines": r["beats_baselines"],
                   "top_feature": x["importance"].iloc[0]["feature"] if len(x["importance"]) else None}
            rows.append(rec)
            print(json.dumps(rec), flush=True)
    out = {"prep_seconds": round(prep, 1), "total_seconds": round(time.perf_counter() - t0, 1),
           "cpus": os.cpu_count(), "models": rows}
    path = ROOT / "reports" / "models_bench.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(out, indent=1))
    print(f"{len(rows)} models in {out['total_seconds']} s -> {path}")


if __name__ == "__main__":
    main()
