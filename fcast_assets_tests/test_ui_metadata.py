"""What the UI shows besides the data (issue 11): PNG plots of the lake beside it and inline on the lake assets,
row count / column schema / preview on the lake and runs assets, and progress bars on the command line only when
stderr is a terminal."""

from __future__ import annotations

import base64
import io
import os
import pty
import select
import struct
import subprocess
import sys
import threading
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest
from sqlalchemy import text

from fcast_assets import progress as P
from fcast_assets.cli import main
from fcast_assets.defs.lake.assets import bronze_draws, dataset_profile, lottery_games, silver_series
from fcast_assets.lake import deltaio, games, pipeline, plots
from fcast_assets.registry.scanner import scan_library

from .conftest import resources
from .fakelib import V1, new_name, write_library

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
REPO = Path(__file__).resolve().parents[1]


def _png_size(path: Path) -> tuple[int, int]:
    """(width, height) from the IHDR chunk; fails unless the file is a PNG."""
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC and data[12:16] == b"IHDR", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


def _lake(eng, code):
    spec = games.get_game(eng, code)
    pipeline.ingest_bronze(eng, spec)
    pipeline.build_silver_table(eng, spec, engine_name="pandas")
    return spec


# ------------------------------------------------------------------------------------------------ plots
def test_plots_are_pngs_beside_the_lake(lake_env):
    eng = lake_env["engine"]
    spec = _lake(eng, "bingo5")
    bronze = deltaio.read(pipeline.bronze_uri(spec))
    plot_dir = Path(os.environ["FCAST_LAKE"]) / "plots" / "bingo5"

    freq_png = plots.draw_frequency_png(spec, bronze)
    prof_png = plots.profile_png(spec, pipeline.build_profile(eng, spec)["profile"])
    assert freq_png == plot_dir / "draw_frequency.png" and prof_png == plot_dir / "profile.png"
    for p in (freq_png, prof_png):
        w, h = _png_size(p)
        assert w > 200 and h > 100
        assert 1_000 < p.stat().st_size < 150_000
    assert not list(plot_dir.glob(".*.tmp"))  # written atomically, nothing left over

    # the heatmap's numbers: per slot the shares of its allowed numbers sum to 1, numbers outside are blank
    freq = plots.draw_frequency(spec, bronze)
    assert list(freq.index) == spec.slot_codes
    for col, slot in zip(spec.number_cols, spec.slot_codes):
        lo, hi = spec.slot_range(col)
        row = freq.loc[slot]
        assert row.loc[lo:hi].notna().all() and row.drop(index=range(lo, hi + 1)).isna().all()
        assert row.sum() == pytest.approx(1.0)
        assert row[bronze[col].value_counts().idxmax()] == pytest.approx(bronze[col].value_counts().max() / len(bronze))

    wide = plots.profile_frame(pipeline.build_profile(eng, spec)["profile"])
    assert list(wide.index) == [f"bingo5_{s}" for s in spec.slot_codes] + ["bingo5_SUM"]
    assert {"chi2_pvalue", "ljung_box_pvalue", "runs_pvalue", "entropy_ratio", "acf_lag1", "acf_band",
            "bonferroni_level"} <= set(wide.columns)


# ------------------------------------------------------------------------------------------------ assets
def _image(meta, key: str) -> Path:
    md = meta[key].value
    assert md.startswith("![") and "](data:image/png;base64," in md
    data = base64.b64decode(md.split("base64,", 1)[1].rstrip(")"))
    path = Path(meta[f"{key}_path"].value)
    assert data == path.read_bytes() and data[:8] == PNG_MAGIC  # the inline image is the file
    return path


def _columns(meta) -> list[str]:
    schema = meta["dagster/column_schema"].schema
    assert isinstance(schema, dg.TableSchema)
    return [c.name for c in schema.columns]


def test_lake_assets_report_rows_schema_preview_and_plots(lake_env):
    url = lake_env["url"]
    inst = dg.DagsterInstance.ephemeral()
    res = resources(url, spark=True)
    r = dg.materialize([lottery_games], instance=inst, resources=res)
    assert r.success
    meta = r.asset_materializations_for_node("lottery_games")[0].metadata
    assert meta["dagster/row_count"].value == 6
    assert {"code", "n_main", "number_min", "number_max"} <= set(_columns(meta))
    assert all(f"| {g}" in meta["preview"].value for g in ("numbers3", "loto7", "bingo5"))

    r = dg.materialize([bronze_draws, silver_series, dataset_profile], partition_key="bingo5", instance=inst,
                       resources=res)
    assert r.success
    mats = {m.asset_key.to_user_string(): m.materialization.metadata for m in r.get_asset_materialization_events()}
    spec = games.get_game(lake_env["engine"], "bingo5")

    bronze = deltaio.read(pipeline.bronze_uri(spec))
    b = mats["bronze_draws"]
    assert b["dagster/row_count"].value == len(bronze) > 400
    assert _columns(b) == ["draw_no", "draw_date", *spec.number_cols, "source", "raw_hash", "ingested_at", "dq_ok"]
    header = b["preview"].value.splitlines()[0]
    assert "draw_no" in header and "n8" in header and "raw_hash" not in header
    first_row = b["preview"].value.splitlines()[2]
    assert first_row.split("|")[1].strip() == str(int(bronze["draw_no"].max()))  # the latest draws first
    assert b["first_draw_date"].value == str(bronze["draw_date"].min())
    assert b["dq_errors"].value == 0
    freq_png = _image(b, "draw_frequency")
    assert freq_png == Path(os.environ["FCAST_LAKE"]) / "plots" / "bingo5" / "draw_frequency.png"

    silver = deltaio.read(pipeline.silver_uri(spec))
    s = mats["silver_series"]
    assert s["dagster/row_count"].value == len(silver)
    assert _columns(s) == ["unique_id", "ds", "draw_no", "y", "slot", "transform"]
    assert "bingo5_N1" in s["preview"].value and "| raw " in s["preview"].value
    assert s["last_draw_date"].value == str(pd.Timestamp(silver["ds"].max()).date())
    assert s["dq_issues"].value == 0

    p = mats["dataset_profile"]
    with lake_env["engine"].connect() as conn:
        n_rows = conn.execute(text("SELECT COUNT(*) FROM dataset_profile")).scalar()
    assert p["dagster/row_count"].value == n_rows > 100
    assert {"unique_id", "metric", "value", "detail"} <= set(_columns(p))
    assert "| bingo5_N1 " in p["preview"].value and "| length " in p["preview"].value
    assert _image(p, "profile_plot").name == "profile.png"


@pytest.fixture(scope="module")
def plans_db(tmp_path_factory):
    from .conftest import scanned_db

    engine, url = scanned_db(tmp_path_factory.mktemp("ui_runs"))
    yield engine, url
    engine.dispose()


def test_runs_assets_report_rows_schema_preview(plans_db, tmp_path):
    from fcast_assets.defs.runs.assets import plan_executions, run_plans

    engine, url = plans_db
    r = dg.materialize(
        [run_plans, plan_executions], resources=resources(url),
        run_config={"ops": {"plan_executions": {"config": {"plans": ["mlp_basic", "bad_enum"],
                                                            "work_root": str(tmp_path)}}}},
        instance=dg.DagsterInstance.ephemeral())
    assert r.success
    with engine.connect() as conn:
        count = {t: conn.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar()
                 for t in ("run_plan", "run_step", "run_validation", "run_result", "run_metric")}
    plans = r.asset_materializations_for_node("run_plans")[0].metadata
    assert plans["dagster/row_count"].value == count["run_plan"] >= 20
    assert plans["run_step_rows"].value == count["run_step"] and plans["run_validation_rows"].value > 0
    assert {"plan_id", "name", "enabled", "library"} <= set(_columns(plans))
    assert "| mlp_basic " in plans["preview"].value

    ex = r.asset_materializations_for_node("plan_executions")[0].metadata
    assert ex["dagster/row_count"].value == count["run_result"] > 0  # only mlp_basic ran, bad_enum is invalid
    assert {"result_id", "step_id", "execution_id", "status", "summary"} <= set(_columns(ex))
    assert "| mlp_basic " in ex["preview"].value and "success" in ex["preview"].value
    assert "bad_enum" not in ex["preview"].value
    assert ex["run_metric_rows"].value == count["run_metric"]


# ------------------------------------------------------------------------------------------------ progress
class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_scanner_progress_callback_follows_the_module_walk(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = write_library(tmp_path, new_name(), "1.0.0", V1)
    calls = []
    with_cb = scan_library(spec, progress=lambda d, t, m: calls.append((d, t, m)))
    without = scan_library(spec)
    modules = sorted(q for q, s in with_cb.symbols.items() if s.kind == "module")
    assert [d for d, _, _ in calls] == list(range(1, len(modules) + 1))
    assert all(d <= t for d, t, _ in calls) and calls[-1][0] == calls[-1][1] == len(modules)
    assert sorted(m for _, _, m in calls) == modules
    assert sorted(without.symbols) == sorted(with_cb.symbols)  # the callback changes nothing


def _run_with_stderr_on(cmd: list[str], env: dict[str, str], tty: bool) -> tuple[int, str, str]:
    """Run ``cmd`` with stdout on a pipe and stderr on a pseudo-terminal (tty) or a pipe; (rc, stdout, stderr)."""
    if not tty:
        p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
        return p.returncode, p.stdout, p.stderr
    master, slave = pty.openpty()
    chunks: list[bytes] = []

    def drain() -> None:
        while True:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    data = os.read(master, 4096)
                except OSError:
                    return
                if not data:
                    return
                chunks.append(data)
            elif done.is_set():
                return

    done = threading.Event()
    t = threading.Thread(target=drain, daemon=True)
    t.start()
    try:
        p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=slave, text=True, timeout=60)
    finally:
        os.close(slave)
        done.set()
        t.join(5)
        os.close(master)
    return p.returncode, p.stdout, b"".join(chunks).decode(errors="replace")


def test_fcast_scan_draws_a_bar_on_a_terminal_only(tmp_path):
    """``fcast scan`` in a subprocess: stderr on a real pseudo-terminal shows the bar, on a pipe nothing."""
    name = new_name()
    write_library(tmp_path, name, "1.0.0", V1)
    script = (
        "import sys\n"
        "from fcast_assets.registry import libraries as L\n"
        f"spec = L.LibrarySpec(name={name!r}, import_name={name!r}, dist_name={name!r})\n"
        "L.library_specs = lambda: {spec.name: spec}\n"
        "from fcast_assets.cli import main\n"
        f"main(['scan', {name!r}])\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO)]),
           "FCAST_HOME": str(tmp_path / "home"), "FCAST_DB_URL": f"sqlite:///{tmp_path / 'meta.db'}"}
    rc, out, err = _run_with_stderr_on([sys.executable, "-c", script], env, tty=True)
    assert rc == 0, err
    assert name in out and "1.0.0" in out  # the summary table on stdout
    assert f"scan {name}" in err and "module" in err and "100%" in err, err  # the bar (tqdm) on the terminal
    rc, out, err = _run_with_stderr_on([sys.executable, "-c", script], env, tty=False)
    assert rc == 0, err
    assert name in out and "1.0.0" in out
    assert f"scan {name}" not in err and "\r" not in err and "%|" not in err


def _invoke(args: list[str], monkeypatch, stderr: io.StringIO) -> tuple[int, str]:
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", stderr)
    try:
        main(args, standalone_mode=False)
        rc = 0
    except SystemExit as e:
        rc = int(e.code or 0)
    return rc, out.getvalue()


def test_fcast_compat_run_bar_on_a_terminal_only(monkeypatch, tmp_path):
    import fcast_assets.compat.probe as probe

    monkeypatch.setenv("FCAST_DB_URL", f"sqlite:///{tmp_path / 'meta.db'}")
    seen = []

    def fake_run_matrix(engine, library, progress=None, **kw):
        seen.append(progress)
        for i, model in enumerate(["MLP", "MLP", "NHITS", "NHITS"], 1):
            if progress:
                progress(i, 4, model)
        return {"compat_run_id": 7, "cells": 4, "wall_seconds": 0.1, "counts": {"ok": 4},
                "capability_mismatches": []}

    monkeypatch.setattr(probe, "run_matrix", fake_run_matrix)
    tty = FakeTTY()
    rc, out = _invoke(["compat", "--run", "-m", "MLP"], monkeypatch, tty)
    assert rc == 0 and "compat run 7: 4 cells" in out and "\r" not in out  # stdout stays clean
    assert seen[-1] is not None
    bar = tty.getvalue()
    assert "compat neuralforecast" in bar and "4/4" in bar and "NHITS" in bar and "cell" in bar

    pipe = io.StringIO()
    rc, out = _invoke(["compat", "--run", "-m", "MLP"], monkeypatch, pipe)
    assert rc == 0 and "compat run 7: 4 cells" in out
    assert seen[-1] is None and pipe.getvalue() == ""


def test_fcast_plan_run_bar_on_a_terminal_only(monkeypatch, tmp_path):
    import fcast_assets.plans.cli as plan_cli
    import fcast_assets.plans.runner as runner

    calls = []

    def fake_run_plans(engine, names=None, enabled_only=True, work_root=None, roots=None, miniature=None):
        calls.append(list(names))
        return [{"plan": n, "status": "success", "execution_id": i, "steps": {1: "success"}}
                for i, n in enumerate(names, 1)]

    monkeypatch.setenv("FCAST_DB_URL", f"sqlite:///{tmp_path / 'meta.db'}")
    monkeypatch.setattr(plan_cli, "_registry_ready", lambda engine: None)
    monkeypatch.setattr(plan_cli, "_known", lambda engine, names: None)  # the plans exist only in the fake runner
    monkeypatch.setattr(runner, "run_plans", fake_run_plans)
    tty = FakeTTY()
    rc, out = _invoke(["plan", "run", "p_one", "p_two"], monkeypatch, tty)
    assert rc == 0 and "p_one" in out and "p_two" in out
    assert calls == [["p_one"], ["p_two"]]  # one plan at a time, so the bar can move
    bar = tty.getvalue()
    assert "plan run" in bar and "2/2" in bar and "p_two" in bar

    calls.clear()
    pipe = io.StringIO()
    rc, out = _invoke(["plan", "run", "p_one", "p_two"], monkeypatch, pipe)
    assert rc == 0 and "p_one" in out and "p_two" in out
    assert calls == [["p_one", "p_two"]] and pipe.getvalue() == ""  # unchanged: one call, no bar


def test_plain_bar_without_tqdm(monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)  # `import tqdm` raises ImportError
    tty = FakeTTY()
    with P.terminal_progress("work", unit="item", stream=tty) as bar:
        assert isinstance(bar, P._PlainBar)
        for i in range(1, 4):
            bar(i, 3, f"item{i}")
    text_ = tty.getvalue()
    assert "\r" in text_ and "work [" + "#" * P._PlainBar.WIDTH + "] 3/3 item item3" in text_
    assert text_.endswith("\n")
    with P.terminal_progress("work", stream=io.StringIO()) as bar:
        assert bar is None


def test_embedding_progress_per_series():
    from fcast_assets.features.embeddings import embed_frame

    class Stub:
        name, path = "stub", "-"

        def embed(self, windows):
            return np.array([[float(len(w)), float(np.mean(w))] for w in windows], dtype=np.float32)

    frame = pd.DataFrame({"unique_id": ["a"] * 10 + ["b"] * 10, "draw_no": list(range(1, 11)) * 2,
                          "ds": pd.date_range("2024-01-01", periods=10).tolist() * 2,
                          "y": np.arange(20, dtype=float)})
    seen = []
    emb = embed_frame(frame, Stub(), context=4, stride=3, progress=seen.append)
    assert seen == ["a", "b"]
    assert emb.equals(embed_frame(frame, Stub(), context=4, stride=3))


def test_sql_column_schema_carries_the_model_descriptions():
    """The column schema on an asset page shows each column's description from its SQLModel field (SQLModel does
    not make them column comments); a column without one stays without."""
    from fcast_assets.db.models import RegistrySymbol
    from fcast_assets.defs.metadata import sql_table_schema

    cols = {c.name: c.description for c in sql_table_schema(RegistrySymbol.__table__).columns}
    assert cols["kind"] == RegistrySymbol.model_fields["kind"].description and "module" in cols["kind"]
    assert cols["symbol_id"] is None
