"""Pre-flight benchmark: the validator on plans/preflight.yaml with and without the miniature run.

Builds a metadata DB in a temporary folder (neuralforecast scanned, the compatibility matrix of MLP and TSMixer),
then for every plan: validation with the miniature run (seconds, verdict, layers), validation without it
(seconds, verdict), and for valid plans the real run's wall time. Prints the figures and writes them, with the
counts per class, into docs/plans.md between the preflight markers.

    uv run python benchmarks/preflight_bench.py [--db sqlite:///path/forecast_meta.db] [--no-write] [--gold]

``--gold`` also measures the share on real training plans: loto6's lake and gold tables are built in a temporary
FCAST_HOME, the N1 and ALL models trained (the models.yaml configuration), and each stored training plan validated
again with and without the miniature run against its real run's wall time.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import yaml
from sqlalchemy import text

ROOT = Path(__file__).resolve().parents[1]
PLANS = ROOT / "plans" / "preflight.yaml"
DOC = ROOT / "docs" / "plans.md"
BEGIN, END = "<!-- preflight:begin -->", "<!-- preflight:end -->"


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))] if xs else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", help="an existing metadata DB with the registry and the matrix")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--gold", action="store_true")
    args = ap.parse_args()
    gold_rows = gold_plans() if args.gold else []

    from fcast_assets.db.engine import init_db, make_engine
    from fcast_assets.plans import loader, runner, validator

    tmp = tempfile.mkdtemp(prefix="fcast-preflight-bench-")
    if args.db:
        engine = make_engine(args.db)
        init_db(engine)
    else:
        from fcast_assets.compat.probe import run_matrix
        from fcast_assets.registry import scan_and_store

        engine = make_engine(f"sqlite:///{tmp}/forecast_meta.db")
        init_db(engine)
        scan_and_store("neuralforecast", engine)
        t = time.perf_counter()
        run_matrix(engine, "neuralforecast", models=["MLP", "TSMixer"], workers=2, cell_timeout=90)
        print(f"matrix (MLP, TSMixer): {time.perf_counter() - t:.0f} s")
    raw = yaml.safe_load(PLANS.read_text())["plans"]
    plans = loader.read_file(PLANS)
    loader.store_plans(engine, plans)
    ctx = validator.plan_context(engine)
    import neuralforecast.models  # noqa: F401 - import time is not validation time

    rows = []
    for r, p in zip(raw, plans):
        t = time.perf_counter()
        with_mini = validator.validate_plan(engine, p, ctx, record=False, miniature=True)
        s_with = time.perf_counter() - t
        t = time.perf_counter()
        without = validator.validate_plan(engine, p, ctx, record=False, miniature=False)
        s_without = time.perf_counter() - t
        real = None
        if r["expect"] == "valid" and not with_mini:
            out = runner.run_plan(engine, p["name"], ctx=ctx, work_root=Path(tmp) / "runs")
            if out["status"] == "success":  # the real run's own wall time: its steps' run_resource rows
                with engine.connect() as conn:
                    real = conn.execute(text("SELECT SUM(wall_s) FROM run_resource WHERE execution_id = :e"),
                                        {"e": out["execution_id"]}).scalar()
        msgs = " | ".join(v.message for v in with_mini)
        right = (not with_mini) if r["expect"] == "valid" else bool(with_mini) and (
            r["expect"] != "stop" or r["reason"] in msgs)
        mini_s = next((v.detail.get("seconds") for v in with_mini if v.layer == "miniature"), None)
        rows.append({"name": r["name"], "class": r["class"], "expect": r["expect"], "right": right,
                     "stopped_without": bool(without), "s_with": s_with, "s_without": s_without, "real": real,
                     "layers": sorted({v.layer for v in with_mini}), "mini_s": mini_s})
    with_s = [x["s_with"] for x in rows]
    without_s = [x["s_without"] for x in rows]
    valid_s = [x["s_with"] for x in rows if x["expect"] == "valid"]
    shares = [x["s_with"] / x["real"] for x in rows if x["real"]]
    per = defaultdict(lambda: defaultdict(int))
    for x in rows:
        c = per[x["class"]]
        wrong = x["expect"] != "valid"
        c["wrong" if wrong else "valid"] += 1
        c[("wrong_ok" if wrong else "valid_ok")] += int(x["right"])
        c["wrong_rules_only"] += int(wrong and x["stopped_without"])
        for layer in x["layers"]:
            c[f"layer_{layer}"] += int(wrong)
    lines = [BEGIN, "",
             f"Measured by `benchmarks/preflight_bench.py` on {len(rows)} plans of `plans/preflight.yaml` "
             "(2 cores, the matrix of MLP and TSMixer loaded):", "",
             "| | median s | p90 s |", "|---|---|---|",
             f"| validation with the miniature run | {statistics.median(with_s):.2f} | {_pct(with_s, 0.9):.2f} |",
             f"| the same, valid plans only (every step runs) | {statistics.median(valid_s):.2f} | "
             f"{_pct(valid_s, 0.9):.2f} |",
             f"| validation without it (rules + matrix) | {statistics.median(without_s):.3f} | "
             f"{_pct(without_s, 0.9):.3f} |", "",
             f"For the valid plans the validation (miniature included) took a median {statistics.median(shares):.0%} "
             "of the real run's wall time (these real runs are themselves tiny: max_steps 1).", "",
             "| class | wrong | stopped / flagged | by rules + matrix alone | found by rule / matrix / miniature "
             "| valid | pass and run |", "|---|---|---|---|---|---|---|"]
    tot = defaultdict(int)
    for cls in sorted(per):
        c = per[cls]
        for k, v in c.items():
            tot[k] += v
        lines.append(f"| {cls} | {c['wrong']} | {c['wrong_ok']} | {c['wrong_rules_only']} | "
                     f"{c['layer_rule']} / {c['layer_matrix']} / {c['layer_miniature']} | {c['valid']} | "
                     f"{c['valid_ok']} |")
    if gold_rows:
        lines[lines.index("| class | wrong | stopped / flagged | by rules + matrix alone | found by rule / matrix / "
                          "miniature | valid | pass and run |"):0] = [
            "Real training plans (`data: gold:loto6:<selector>`, the models.yaml configuration, CV + fit + save + "
            "predict):", "", "| plan | rows | miniature rows | validation with miniature s | without s | "
            "real run s | share |", "|---|---|---|---|---|---|---|",
            *[f"| {g['plan']} | {g['rows']} | {g['mini_rows']} | {g['with']:.2f} | {g['without']:.3f} | "
              f"{g['real']:.1f} | {g['with'] / g['real']:.0%} |" for g in gold_rows], ""]
    lines += [f"| **total** | {tot['wrong']} | {tot['wrong_ok']} | {tot['wrong_rules_only']} | "
              f"{tot['layer_rule']} / {tot['layer_matrix']} / {tot['layer_miniature']} | {tot['valid']} | "
              f"{tot['valid_ok']} |", "", END]
    block = "\n".join(lines)
    print(block)
    wrong = [x["name"] for x in rows if not x["right"]]
    if wrong:
        print("NOT RIGHT:", wrong)
    if not args.no_write:
        doc = DOC.read_text()
        if BEGIN in doc:
            doc = doc[:doc.index(BEGIN)] + block + doc[doc.index(END) + len(END):]
        else:
            doc += "\n" + block + "\n"
        DOC.write_text(doc)


def gold_plans() -> list[dict]:
    """Train loto6 N1 and ALL in a temporary FCAST_HOME; time the validation of their stored training plans."""
    import os

    home = tempfile.mkdtemp(prefix="fcast-preflight-gold-")
    os.environ["FCAST_HOME"], os.environ["FCAST_LAKE"] = home, str(Path(home) / "lake")
    os.environ["FCAST_DB_URL"] = f"sqlite:///{Path(home) / 'forecast_meta.db'}"
    from fcast_assets.compat.probe import run_matrix
    from fcast_assets.db.engine import get_engine
    from fcast_assets.features import gold
    from fcast_assets.lake import games
    from fcast_assets.models import train as T
    from fcast_assets.plans import loader, validator
    from fcast_assets.registry import scan_and_store

    eng = get_engine(os.environ["FCAST_DB_URL"])
    scan_and_store("neuralforecast", eng)
    run_matrix(eng, "neuralforecast", models=["NHITS", "TSMixerx"],
               families=["futr_exog_list", "hist_exog_list", "stat_exog_list", "freq"], workers=2)
    games.seed_games(eng)
    gold.build_game(eng, games.get_game(eng, "loto6"))
    ctx = validator.plan_context(eng)
    out = []
    for sel in ("N1", "ALL"):
        r = T.train(eng, "loto6", sel)
        plan = loader.get_plan(eng, r["plan"])
        art = Path(r["artifact_uri"])  # as before the run: the version folder does not exist yet
        aside = art.with_name(art.name + ".bench-aside")
        art.rename(aside)
        t = time.perf_counter()
        assert not validator.validate_plan(eng, plan, ctx, record=False, miniature=True)
        with_s = time.perf_counter() - t
        t = time.perf_counter()
        validator.validate_plan(eng, plan, ctx, record=False, miniature=False)
        without_s = time.perf_counter() - t
        aside.rename(art)
        with eng.connect() as conn:
            real = conn.execute(text("SELECT SUM(wall_s) FROM run_resource WHERE execution_id = :e"),
                                {"e": r["execution_id"]}).scalar()
        from fcast_assets.plans import data as plan_data
        from fcast_assets.plans import miniature

        frames = plan_data.load(plan["data"], engine=eng, plan=plan)
        state = validator._state(ctx, plan, [])
        mini = miniature.miniature_frames(frames, state["steps"], state["models"])
        out.append({"plan": r["plan"], "rows": len(frames["df"]), "mini_rows": len(mini["df"]), "with": with_s,
                    "without": without_s, "real": real})
        print(out[-1], flush=True)
    return out


if __name__ == "__main__":
    main()
