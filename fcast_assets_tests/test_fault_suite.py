"""The fault suite: a real SIGKILL (psutil ``Process.kill``) at each stage — lake ingest (bronze), silver, gold
features, model training (first version), retraining, the compat runner (its parent process, and one probe child)
— then a re-run that must succeed with nothing lost, on SQLite and on PostgreSQL.

Each kill is injected in a child ``python -c`` process that replaces one product function with a kill at the chosen
point and then runs the stage's real code; product code has no test hooks. After the kill the test re-runs the
stage in-process and compares with an unkilled run: row counts (metadata tables and Delta tables), every Delta
version readable and the latest equal in content, model versions v1..vn registered with their folders and no
``.partial-`` leftovers, no execution left ``running``, no compat run left unfinished and no probe process left
running, every compat cell recorded. The metadata DBs with the registry and compat cells are copies of one template
built once per session (faults.template_db); the kills of a stage start together (their imports overlap).

With ``FCAST_RELIABILITY_LOG`` set, each case appends one JSON line (suite, case, db, survived, rows_lost)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pandas as pd
import psutil
import pytest
from deltalake import DeltaTable
from sqlalchemy import text

from fcast_assets.db.engine import make_engine

from . import faults as F

DBS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
SMALL = {"hyperparams": {"max_steps": 5}, "cv": {"n_windows": 2}}
HOLD_BACK = 10  # the bronze cases ingest all but the newest draws first: the killed run merges into a table


# ------------------------------------------------------------------------------------------------ lake
LAKE_CHILD = """
    import pyarrow as pa
    from fcast_assets.features import gold
    from fcast_assets.lake import bronze as B, games, pipeline, silver as S, versions as V

    stage, point = sys.argv[1], sys.argv[2]
    spec = games.get_game(ENGINE, "loto6")

    def torn(to_arrow):
        # the writer gets its rows as a stream and the process dies while the writer is consuming it
        def stream(*a, **k):
            t = to_arrow(*a, **k)
            def gen():
                for i, b in enumerate(t.to_batches(max_chunksize=max(1, t.num_rows // 4))):
                    if i == 2:
                        die()
                    yield b
            return pa.RecordBatchReader.from_batches(t.schema, gen())
        return stream

    if point == "after_delta_write":  # the Delta commit is done, the metadata rows are not
        if stage == "gold":
            gold.summarize = die
        else:
            V.record_version = die
    elif point == "before_dq_commit":  # dataset_version row flushed, its data-quality rows being added: the
        V._add_dq_issues = die         # transaction dies uncommitted (neither row is stored)
    elif point == "mid_delta_write":
        if stage == "bronze":
            B.to_arrow = torn(B.to_arrow)
        elif stage == "silver":
            S.to_arrow = torn(S.to_arrow)
        else:
            gold._to_arrow = torn(gold._to_arrow)
    if stage == "bronze":
        pipeline.ingest_bronze(ENGINE, spec)
    elif stage == "silver":
        pipeline.build_silver_table(ENGINE, spec, engine_name="pandas")
    else:
        gold.build_features(ENGINE, spec)
    print("not killed")
"""

LAKE_CASES = [("bronze", "mid_delta_write"), ("bronze", "after_delta_write"), ("bronze", "before_dq_commit"),
              ("silver", "mid_delta_write"), ("silver", "after_delta_write"),
              ("gold", "mid_delta_write"), ("gold", "after_delta_write")]
LAYERS = ["bronze", "silver", "gold"]


def _spec(eng):
    from fcast_assets.lake import games

    return games.get_game(eng, "loto6")


def _run_stage(eng, stage: str, upto_hold_back: bool = False):
    from fcast_assets.features import gold
    from fcast_assets.lake import pipeline

    spec = _spec(eng)
    if stage == "bronze":
        recs = None
        if upto_hold_back:
            recs = list(pipeline.iter_records(spec))
            newest = max(int(r["draw_no"]) for r in recs)
            recs = [r for r in recs if int(r["draw_no"]) <= newest - HOLD_BACK]
        return pipeline.ingest_bronze(eng, spec, records=recs)
    if stage == "silver":
        return pipeline.build_silver_table(eng, spec, engine_name="pandas")
    return gold.build_features(eng, spec)


def _uris(spec) -> dict[str, str]:
    from fcast_assets.features import gold
    from fcast_assets.lake import pipeline

    return {"bronze": pipeline.bronze_uri(spec), "silver": pipeline.silver_uri(spec),
            "gold": gold.gold_uri(spec, "features")}


def _frame(uri: str) -> pd.DataFrame:
    """The latest Delta version, in a stable order, without the ingestion time (the one column that differs
    between two runs of the same data)."""
    df = DeltaTable(uri).to_pandas().drop(columns=["ingested_at"], errors="ignore")
    keys = [c for c in ("unique_id", "transform", "draw_no") if c in df.columns]
    return df.sort_values(keys).reset_index(drop=True)


def _lake_state(eng) -> dict:
    """What the lake and the metadata DB hold, per layer (absent layers are left out)."""
    spec = _spec(eng)
    out: dict = {}
    for layer, uri in _uris(spec).items():
        if not (Path(uri) / "_delta_log").is_dir():
            continue
        dt = DeltaTable(uri)
        for v in range(dt.version() + 1):  # every version stays readable
            DeltaTable(uri, version=v).to_pyarrow_table()
        out[layer] = {"frame": _frame(uri), "delta_version": dt.version()}
    with eng.connect() as conn:
        for layer in ("bronze", "silver"):
            row = conn.execute(text("SELECT dataset_version_id, row_count, delta_version, lake_uri FROM "
                                    "dataset_version WHERE game_id = :g AND layer = :l ORDER BY dataset_version_id "
                                    "DESC"), {"g": spec.game_id, "l": layer}).first()
            if row is not None and layer in out:
                out[layer]["meta_rows"] = row.row_count
                out[layer]["meta_delta_version"] = row.delta_version
                out[layer]["meta_uri"] = row.lake_uri
                if layer == "bronze":
                    out[layer]["dq"] = conn.execute(text("SELECT COUNT(*) FROM dataset_dq_issue WHERE "
                                                         "dataset_version_id = :v"),
                                                    {"v": row.dataset_version_id}).scalar()
        row = conn.execute(text("SELECT row_count, lake_uri FROM feature_materialization WHERE game_id = :g AND "
                                "table_name = 'gold_features' ORDER BY materialization_id DESC"),
                           {"g": spec.game_id}).first()
        if row is not None and "gold" in out:
            out["gold"]["meta_rows"] = row.row_count
            out["gold"]["meta_uri"] = row.lake_uri
    return out


def _rows_lost(ref: dict, got: dict, layers: list[str]) -> int:
    lost = 0
    for layer in layers:
        r, g = ref[layer], got.get(layer, {})
        lost += max(0, len(r["frame"]) - len(g.get("frame", [])))
        lost += max(0, r["meta_rows"] - g.get("meta_rows", 0))
        lost += max(0, r.get("dq", 0) - g.get("dq", 0))
    return lost


@pytest.fixture(scope="module")
def lake_ref(tmp_path_factory):
    """An unkilled run of every lake stage (SQLite), the state the re-runs must reach."""
    folder = tmp_path_factory.mktemp("lake_ref")
    mp = pytest.MonkeyPatch()
    url = F.empty_db("sqlite", folder)
    F.use_home(mp, folder, url)
    eng = make_engine(url)
    _run_stage(eng, "bronze", upto_hold_back=True)
    for stage in LAYERS:
        _run_stage(eng, stage)
    state = _lake_state(eng)
    eng.dispose()
    mp.undo()
    return state


@pytest.fixture(scope="module", params=DBS)
def lake_killed(request, tmp_path_factory):
    """Every lake case of one database, killed: per case its own metadata DB and lake with the stages before the
    killed one done, then all the kills started at once (the children's imports overlap) and waited for."""
    kind, cases = request.param, {}
    mp = pytest.MonkeyPatch()
    try:
        for stage, point in LAKE_CASES:
            folder = tmp_path_factory.mktemp(f"lake_{kind}_{stage}_{point}")
            url = F.empty_db(kind, folder)
            F.use_home(mp, folder, url)
            eng = make_engine(url)
            if stage == "bronze":  # bronze exists: the killed run merges the newest draws into it
                _run_stage(eng, "bronze", upto_hold_back=True)
            for before in LAYERS[:LAYERS.index(stage)]:
                _run_stage(eng, before)
            eng.dispose()
            cases[(stage, point)] = {"folder": folder, "url": url,
                                     "proc": F.start_child(LAKE_CHILD, stage, point, env=F.home_env(folder, url))}
        for c in cases.values():
            c["child"] = F.finish_child(c.pop("proc"), check=False)
    finally:
        mp.undo()
    yield kind, cases


@pytest.mark.parametrize("stage,point", LAKE_CASES)
def test_lake_stage_killed_then_rerun(stage, point, lake_killed, lake_ref, monkeypatch):
    db, cases = lake_killed
    with F.case(f"{stage}:{point}", db) as c:
        k = cases[(stage, point)]
        F.check_child(k["child"])
        F.use_home(monkeypatch, k["folder"], k["url"])
        eng = make_engine(k["url"])
        _run_stage(eng, stage)  # the re-run
        for after in LAYERS[LAYERS.index(stage) + 1:]:  # ... and what comes after it still builds
            _run_stage(eng, after)
        got = _lake_state(eng)
        with eng.connect() as conn:  # a version row is stored with its DQ rows or not at all (one transaction)
            bare = conn.execute(text("SELECT COUNT(*) FROM dataset_version v WHERE v.layer = 'bronze' AND NOT EXISTS "
                                     "(SELECT 1 FROM dataset_dq_issue d WHERE d.dataset_version_id = "
                                     "v.dataset_version_id)")).scalar()
        eng.dispose()
        assert bare == 0  # loto6's history always carries its recorded warnings
        c.rows_lost = _rows_lost(lake_ref, got, LAYERS)
        for layer in LAYERS:
            r, g = lake_ref[layer], got[layer]
            pd.testing.assert_frame_equal(g["frame"], r["frame"], check_dtype=True)
            assert g["meta_rows"] == r["meta_rows"] == len(r["frame"])
            assert g["meta_uri"].endswith(f"@v{g['delta_version']}"), (layer, g["meta_uri"])  # the latest row
            if layer == "bronze":                                                       # names the latest data
                assert g["dq"] == r["dq"] and g["meta_delta_version"] == g["delta_version"]
        assert c.rows_lost == 0


def _bad_copy(rec: dict) -> dict:
    """The draw as a broken source delivered it: its second number equal to its first (a blocking rule)."""
    return {**rec, "n2": rec["n1"]}


def _corrections(eng) -> dict:
    with eng.connect() as conn:
        rows = conn.execute(text("SELECT rule, severity, COUNT(*) AS n FROM dataset_dq_issue WHERE rule IN "
                                 "('corrected_draw', 'superseded_draw', 'changed_draw', 'conflicting_draw') "
                                 "OR severity = 'error' GROUP BY rule, severity")).all()
    return {(r.rule, r.severity): r.n for r in rows}


def _correction_run(eng, killed: bool = False) -> dict:
    """Bronze with one draw stored broken; a run that delivers it right (corrected), killed after its Delta write
    when ``killed`` (then re-run); then a stale source delivering the broken copy again."""
    from fcast_assets.lake import pipeline

    spec = _spec(eng)
    recs = list(pipeline.iter_records(spec))
    target = max(int(r["draw_no"]) for r in recs) - 5
    broken = [_bad_copy(r) if int(r["draw_no"]) == target else r for r in recs]
    pipeline.ingest_bronze(eng, spec, records=broken)
    if killed:
        F.run_child(LAKE_CHILD, "bronze", "after_delta_write")
    pipeline.ingest_bronze(eng, spec)  # the correct history (the re-run, when the first one was killed)
    after_fix = _corrections(eng)
    stale = pipeline.ingest_bronze(eng, spec, records=[r for r in broken if int(r["draw_no"]) == target])
    return {"after_fix": after_fix, "stale_errors": stale["errors"], "final": _corrections(eng),
            "frame": _frame(pipeline.bronze_uri(spec))}


@pytest.mark.parametrize("db", DBS)
def test_correction_killed_after_delta_write_keeps_its_audit(db, tmp_path, monkeypatch):
    """A run that corrects a broken stored draw, killed after its Delta write: the re-run still records the
    correction (the stored draw's hash), so that a stale source delivering the broken copy later is recognised
    (a warning), exactly as after an unkilled run — not a new conflict (an error)."""
    with F.case("bronze:after_delta_write_correction", db) as c:
        ref_dir, kill_dir = tmp_path / "ref", tmp_path / "kill"
        ref_dir.mkdir()
        kill_dir.mkdir()
        ref_url = F.empty_db("sqlite", ref_dir)
        F.use_home(monkeypatch, ref_dir, ref_url)
        ref_eng = make_engine(ref_url)
        ref = _correction_run(ref_eng)
        ref_eng.dispose()
        url = F.empty_db(db, kill_dir)
        F.use_home(monkeypatch, kill_dir, url)
        eng = make_engine(url)
        got = _correction_run(eng, killed=True)
        eng.dispose()
        c.rows_lost = sum(max(0, n - got["final"].get(k, 0)) for k, n in ref["final"].items())
        assert got["after_fix"] == ref["after_fix"]
        assert got["stale_errors"] == ref["stale_errors"] and got["final"] == ref["final"]
        pd.testing.assert_frame_equal(got["frame"], ref["frame"])


# ------------------------------------------------------------------------------------------------ models
MODEL_CHILD = """
    from fcast_assets.models import train as T
    from fcast_assets.plans import runner

    stage, point = sys.argv[1], sys.argv[2]
    run = runner._Exec.run
    if point == "after_save":  # the model folder is written (under its partial name): die
        def run_then_die(self, step):
            out = run(self, step)
            if step["short"] == "save" and not self.miniature:
                die()
            return out
        runner._Exec.run = run_then_die
    elif point == "in_fit":  # cross-validation done and recorded, the final fit starts: die
        def die_in_fit(self, step):
            if step["short"] == "fit" and not self.miniature:
                die()
            return run(self, step)
        runner._Exec.run = die_in_fit
    elif point == "after_rename":  # the plan succeeded and v<n> is in place, the model_version row is not
        T.cv_metrics = die
    if stage == "train":
        T.train(ENGINE, "loto6", "N1", overrides=json.loads(sys.argv[3]))
    else:
        T.retrain(ENGINE, int(sys.argv[3]), reason="killed")
    print("not killed")
"""

# a chain on one model per database: each case starts where the previous re-run ended (v1, v2, v3)
MODEL_CASES = [("train", "in_fit"), ("retrain", "after_save"), ("retrain", "after_rename")]


@pytest.fixture(scope="module", params=DBS)
def models_env(request, tmp_path_factory):
    """A metadata DB copied from the session template (registry + compat cells) and loto6's lake and gold."""

    kind = request.param
    folder = tmp_path_factory.mktemp(f"fault_models_{kind}")
    url = F.copy_db(F.template_db(tmp_path_factory), kind, folder)
    mp = pytest.MonkeyPatch()
    F.use_home(mp, folder, url)
    eng = make_engine(url)
    F.build_loto6(eng)
    state = {"kind": kind, "engine": eng, "url": url, "folder": folder, "model_id": None, "versions": 0}
    yield state
    mp.undo()
    eng.dispose()


def _model_state(eng, model_id: int) -> dict:
    with eng.connect() as conn:
        versions = conn.execute(text("SELECT version, artifact_uri FROM model_version WHERE model_id = :m "
                                     "ORDER BY version"), {"m": model_id}).all()
        reg = conn.execute(text("SELECT version, artifact_uri, status FROM model_registry WHERE model_id = :m"),
                           {"m": model_id}).one()
    return {"versions": versions, "registry": reg}


@pytest.mark.parametrize("stage,point", MODEL_CASES)
def test_training_killed_then_rerun(stage, point, models_env):
    from fcast_assets.models import train as T
    from fcast_assets.plans import runner

    env = models_env
    eng, db = env["engine"], env["kind"]
    with F.case(f"{stage}:{point}", db) as c:
        if stage == "retrain" and env["model_id"] is None:
            pytest.skip("the first training case failed")
        before = F.count(eng, "SELECT MAX(execution_id) FROM run_execution")
        arg = json.dumps(SMALL) if stage == "train" else str(env["model_id"])
        F.run_child(MODEL_CHILD, stage, point, arg)
        n = env["versions"] + 1
        model_id = env["model_id"] or T.find_model(eng, "loto6", "N1").model_id
        folder = Path(T.artifact_path("loto6", "N1", n)).parent
        killed = F.count(eng, "SELECT MAX(execution_id) FROM run_execution")
        assert killed > before  # the killed run had started its execution
        with eng.connect() as conn:
            killed_status = conn.execute(text("SELECT status FROM run_execution WHERE execution_id = :e"),
                                         {"e": killed}).scalar()
        if point == "after_save":  # what the kill left: the saved model under its partial name, no v<n>
            partial = [p for p in folder.iterdir() if p.name.startswith(f"v{n}.partial-")]
            assert partial and (partial[0] / "NHITS_0.safetensors").is_file() and not (folder / f"v{n}").exists()
        if killed_status == "running":
            with eng.connect() as conn:
                work_dir = conn.execute(text("SELECT work_dir FROM run_execution WHERE execution_id = :e"),
                                        {"e": killed}).scalar()
            dead_pid = json.loads((Path(work_dir) / runner.EXECUTION_FILE).read_text(encoding="utf-8"))["pid"]
        if point == "after_rename":
            assert (folder / f"v{n}").is_dir() and killed_status == "success"
        else:
            assert killed_status == "running"

        # the re-run
        out = (T.train(eng, "loto6", "N1", overrides=SMALL) if stage == "train"
               else T.retrain(eng, model_id, reason="re-run"))
        env["model_id"], env["versions"] = model_id, n
        st = _model_state(eng, model_id)
        c.rows_lost = max(0, n - len(st["versions"]))
        assert out["version"] == n and out["execution_id"] != killed
        assert [v.version for v in st["versions"]] == list(range(1, n + 1))  # contiguous, all registered
        for v in st["versions"]:
            assert v.artifact_uri == str(folder / f"v{v.version}")
            assert (Path(v.artifact_uri) / "NHITS_0.safetensors").is_file()
        assert (st["registry"].version, st["registry"].status) == (n, "trained")
        assert st["registry"].artifact_uri == str(folder / f"v{n}")
        names = [p.name for p in folder.iterdir()]
        assert not [x for x in names if ".partial-" in x], names
        assert sorted(x for x in names if re.fullmatch(r"v\d+", x)) == sorted(f"v{k}" for k in range(1, n + 1))
        assert F.running_executions(eng) == []
        with eng.connect() as conn:
            row = conn.execute(text("SELECT status, ended_at FROM run_execution WHERE execution_id = :e"),
                               {"e": killed}).one()
            errs = conn.execute(text("SELECT exception_type, message FROM run_error WHERE execution_id = :e"),
                                {"e": killed}).all()
            artifacts = conn.execute(text("SELECT uri FROM run_artifact WHERE execution_id = :e AND "
                                          "kind = 'model_dir'"), {"e": killed}).scalars().all()
        if point == "after_rename":
            # the killed run's folder was moved aside; its artifact row follows it instead of naming the new v<n>
            aside = [p for p in folder.iterdir() if p.name.startswith(f"v{n}.orphan-")]
            assert aside and artifacts == [str(aside[0])]
        else:
            assert row.status == "failed" and row.ended_at is not None
            assert [e.exception_type for e in errs] == ["ProcessGone"]
            assert f"process {dead_pid} is gone" in errs[0].message
            info = json.loads((Path(work_dir) / runner.EXECUTION_FILE).read_text(encoding="utf-8"))
            assert "is gone" in info["failed_reason"]
            assert all(".partial-" in u for u in artifacts)  # never a v<n> it did not produce


# ------------------------------------------------------------------------------------------------ compat runner
COMPAT_CHILD = """
    import json
    from fcast_assets.compat import probe
    from fcast_assets.compat.neuralforecast_adapter import NeuralForecastAdapter

    point, arg = sys.argv[1], sys.argv[2]
    if point == "parent":  # the runner process itself dies after <arg> cells were reported to it, while its
        import time        # probe processes are busy in long cells (freq=1: 30 s each)
        run = NeuralForecastAdapter.run
        def run_slowly(self, state, cell):
            if cell.param == "freq" and cell.value_label.startswith("1 "):
                time.sleep(30)
            return run(self, state, cell)
        NeuralForecastAdapter.run = run_slowly
        record = probe._Recorder.__call__
        def record_then_die(self, group, cell, res):
            record(self, group, cell, res)
            if self.done == int(arg):
                kids = [p.pid for p in psutil.Process().children(recursive=True)]
                print("CHILDREN " + json.dumps(kids), flush=True)
                die()
        probe._Recorder.__call__ = record_then_die
    else:  # one probe child (the process that runs cell <arg>) dies
        run = NeuralForecastAdapter.run
        def run_or_die(self, state, cell):
            if cell.param == "freq" and cell.value_label == arg:
                die()
            return run(self, state, cell)
        NeuralForecastAdapter.run = run_or_die
    probe.run_matrix(ENGINE, "neuralforecast", models=["NHITS"], families=["freq"], workers=2, cell_timeout=60)
    print("matrix done")
"""
COMPAT_KEY = ("method", "param", "value_label", "scenario")
KILLED_CELL = "1 (ds int)"


def _cells(eng, run_id: int, params=("input_size", "freq")) -> dict:
    with eng.connect() as conn:
        rows = conn.execute(text("SELECT method, param, value_label, scenario, status, exception_type FROM "
                                 "compat_result WHERE compat_run_id = :r AND model LIKE '%.NHITS'"),
                            {"r": run_id}).all()
    return {tuple(getattr(r, k) for k in COMPAT_KEY): (r.status, r.exception_type) for r in rows
            if r.param in params}


def _template_cells(eng) -> dict:
    first = F.count(eng, "SELECT MIN(compat_run_id) FROM compat_run")
    cells = _cells(eng, first)
    assert len(cells) == 8  # 4 calibration sizes + 4 freq cells
    return cells


@pytest.fixture(scope="module", params=DBS)
def compat_killed(request, tmp_path_factory):
    """Both compat cases of one database, each in its own copy of the template, their children started at once:
    the runner killed mid-matrix, and a runner one of whose probe processes is killed."""
    kind, cases = request.param, {}
    for point, arg in (("parent", "5"), ("child", KILLED_CELL)):
        folder = tmp_path_factory.mktemp(f"compat_{kind}_{point}")
        url = F.copy_db(F.template_db(tmp_path_factory), kind, folder)
        cases[point] = {"folder": folder, "url": url,
                        "proc": F.start_child(COMPAT_CHILD, point, arg, env=F.home_env(folder, url))}
    for c in cases.values():
        c["child"] = F.finish_child(c.pop("proc"), check=False)
    yield kind, cases


@pytest.fixture
def compat_env(request, compat_killed, monkeypatch):
    kind, cases = compat_killed
    case = cases["parent" if "parent" in request.node.name else "child"]
    F.use_home(monkeypatch, case["folder"], case["url"])
    eng = make_engine(case["url"])
    yield kind, eng, case["child"]
    eng.dispose()


def _wait_gone(pids: list[int], timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
        if not alive:
            return []
        time.sleep(0.2)
    return alive


def _check_complete_rerun(eng, template: dict) -> dict:
    from fcast_assets.compat.probe import run_matrix

    s = run_matrix(eng, "neuralforecast", models=["NHITS"], families=["freq"], workers=2, cell_timeout=60)
    got = _cells(eng, s["compat_run_id"])
    assert got == template  # every cell, with the statuses of an unkilled run
    assert F.count(eng, "SELECT COUNT(*) FROM compat_run WHERE finished_at IS NULL") == 0
    return got


def test_compat_parent_killed_mid_matrix_then_rerun(compat_env):
    db, eng, child = compat_env
    with F.case("compat:parent_mid_matrix", db) as c:
        template = _template_cells(eng)
        F.check_child(child)
        kids = json.loads(child.stdout.split("CHILDREN ", 1)[1].splitlines()[0])
        assert kids, "the runner had no probe process running when it was killed"
        left = _wait_gone(kids, 5)  # they die with the runner, not when their cells end (30 s after they began)
        assert not left, f"probe processes {left} outlived their killed runner"
        killed = F.count(eng, "SELECT MAX(compat_run_id) FROM compat_run")
        got = _check_complete_rerun(eng, template)
        c.rows_lost = max(0, len(template) - len(got))
        with eng.connect() as conn:  # the killed run is closed, not left "running" forever
            fin = conn.execute(text("SELECT finished_at, config FROM compat_run WHERE compat_run_id = :r"),
                               {"r": killed}).one()
        assert fin.finished_at is not None
        cfg = fin.config if isinstance(fin.config, dict) else json.loads(fin.config)
        assert "is gone" in cfg.get("abandoned", "")


def test_compat_probe_child_killed_then_rerun(compat_env):
    db, eng, child = compat_env
    with F.case("compat:probe_child", db) as c:
        template = _template_cells(eng)
        F.check_child(child, killed=False)  # the runner survives its probe's death
        run_id = F.count(eng, "SELECT MAX(compat_run_id) FROM compat_run")
        cells = _cells(eng, run_id)
        assert set(cells) == set(template)  # every cell recorded once, the killed one as a crash
        dead = next(k for k in cells if k[2] == KILLED_CELL)
        assert cells[dead] == ("error", "WorkerCrashed")
        assert {k: v for k, v in cells.items() if k != dead} == {k: v for k, v in template.items() if k != dead}
        got = _check_complete_rerun(eng, template)  # the re-run restores the killed cell's real result
        c.rows_lost = max(0, len(template) - len(got))
