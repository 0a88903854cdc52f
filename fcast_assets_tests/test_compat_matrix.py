"""A reduced neuralforecast matrix (two fast models, the named cell families) run for real, checked against
what the library itself does when called the same way."""

from __future__ import annotations


import dagster as dg
import pytest
from click.testing import CliRunner
from sqlalchemy import text

from fcast_assets.cli import main
from fcast_assets.compat.candidates import INVALID_ENUM
from fcast_assets.compat.probe import run_matrix
from fcast_assets.compat.synthetic import build_data
from fcast_assets.compat.tables import correspondence, rerun_cell
from fcast_assets.db.models import JSONType
from fcast_assets.registry import scan_and_store

from .conftest import compat_rows as cells, scanned_db

MODELS = ["MLP", "NLinear"]
FAMILIES = ["local_scaler_type", "level", "quantiles", "loss", "futr_exog_list", "hist_exog_list",
            "stat_exog_list", "save", "load", "freq"]


@pytest.fixture(scope="module")
def matrix(tmp_path_factory):
    engine, url = scanned_db(tmp_path_factory.mktemp("compat"))
    summary = run_matrix(engine, "neuralforecast", models=MODELS, families=FAMILIES, workers=2, cell_timeout=90)
    yield engine, url, summary
    engine.dispose()




def _tiny(loss=None):
    from neuralforecast.losses.pytorch import MAE
    from neuralforecast.models import MLP

    from fcast_assets.compat.neuralforecast_adapter import QUIET_TRAINER

    return MLP(h=2, input_size=4, max_steps=1, loss=loss or MAE(), **QUIET_TRAINER)


def _live_exception(fn):
    try:
        fn()
    except Exception as e:  # noqa: BLE001
        return type(e).__name__
    return None


def test_every_cell_recorded(matrix):
    engine, _, s = matrix
    assert s["cells"] > 150
    with engine.connect() as conn:
        run = conn.execute(text("SELECT * FROM compat_run WHERE compat_run_id = :r"), {"r": s["compat_run_id"]}).one()
        n = conn.execute(text("SELECT COUNT(*) FROM compat_result WHERE compat_run_id = :r"),
                         {"r": s["compat_run_id"]}).scalar()
        models = set(conn.execute(text("SELECT DISTINCT model FROM compat_result")).scalars())
    assert run.cells_total == n == s["cells"]
    assert run.cells_ok > 0 and run.cells_error > 0 and run.finished_at is not None
    assert run.cells_ok + run.cells_error + run.cells_timeout + run.cells_skipped + run.cells_suspect == n
    assert {m.rsplit(".", 1)[1] for m in models} == set(MODELS)


def test_invalid_local_scaler_type_is_the_library_error(matrix):
    engine, _, _ = matrix
    from neuralforecast import NeuralForecast

    from fcast_assets.compat.neuralforecast_adapter import build_data

    rows = cells(engine, "method = 'NeuralForecast.__init__' AND param = 'local_scaler_type'")
    by_value = {}
    for r in rows:
        by_value.setdefault(r.value, []).append(r)
    data = build_data()
    live = _live_exception(lambda: NeuralForecast([_tiny()], freq="D", local_scaler_type=INVALID_ENUM)
                           .fit(data["df"]))
    assert live is not None
    assert {r.status for r in by_value[INVALID_ENUM]} == {"error"}
    assert {r.exception_type for r in by_value[INVALID_ENUM]} == {live}
    # every allowed value the registry scanned has a cell for each model, and runs
    for v in ("standard", "robust", "robust-iqr", "minmax", "boxcox"):
        assert len(by_value[v]) == len(MODELS)
        assert {r.status for r in by_value[v]} <= {"ok", "suspect"}, v


def test_level_with_point_and_probabilistic_loss(matrix):
    engine, _, _ = matrix
    from neuralforecast import NeuralForecast
    from neuralforecast.losses.pytorch import MAE, MQLoss

    from fcast_assets.compat.neuralforecast_adapter import build_data

    data = build_data()

    def live(loss):
        nf = NeuralForecast([_tiny(loss)], freq="D")
        nf.fit(data["df"])
        return _live_exception(lambda: nf.predict(level=[80]))

    point = cells(engine, "method = 'NeuralForecast.predict' AND param = 'level' AND value_label = '[80]' "
                          "AND scenario = 'loss=MAE' AND model LIKE '%.MLP'")
    prob = cells(engine, "method = 'NeuralForecast.predict' AND param = 'level' AND value_label = '[80]' "
                         "AND scenario = 'loss=MQLoss' AND model LIKE '%.MLP'")
    assert len(point) == 1 and len(prob) == 1
    assert point[0].status == "error" and point[0].exception_type == live(MAE())
    assert prob[0].status == "ok" and live(MQLoss(level=[80, 90])) is None


def test_loss_table_and_observed_capabilities(matrix):
    engine, _, s = matrix
    with engine.connect() as conn:
        losses = conn.execute(text("""
            SELECT m.name AS model, l.name AS loss, c.status, c.exception_type FROM registry_model_loss_compat c
            JOIN registry_symbol m ON m.symbol_id = c.model_symbol_id
            JOIN registry_symbol l ON l.symbol_id = c.loss_symbol_id""")).all()
        observed = conn.execute(text("""
            SELECT s.name, c.capability_code, c.value FROM registry_symbol_capability c
            JOIN registry_symbol s ON s.symbol_id = c.symbol_id WHERE c.source = 'observed'""")
            .columns(value=JSONType)).all()
    by = {(r.model, r.loss): r for r in losses}
    assert by[("MLP", "MAE")].status == "ok"
    assert by[("MLP", "Accuracy")].status == "error"  # cannot be used for training, says the library
    assert {m for m, _ in by} == set(MODELS)
    obs = {(n, c): v for n, c, v in observed}
    import neuralforecast.models as nfm

    for name in MODELS:
        cls = getattr(nfm, name)
        for attr, code in (("EXOGENOUS_FUTR", "exog_futr"), ("EXOGENOUS_HIST", "exog_hist"),
                           ("EXOGENOUS_STAT", "exog_stat")):
            assert (name, code) in obs
            if obs[(name, code)] != getattr(cls, attr):
                assert any(x["model"] == name and x["capability"] == code for x in s["capability_mismatches"])
    # 'without the data' cells are errors naming the missing columns
    missing = cells(engine, "param = 'hist_exog_list' AND scenario = 'without_data' AND model LIKE '%.MLP'")
    assert missing[0].status == "error" and "hist_x" in missing[0].message


def test_views_cli_and_rerun(matrix, monkeypatch):
    engine, url, _ = matrix
    with engine.connect() as conn:
        view_rows = conn.execute(text("SELECT * FROM compat_predict_level")).mappings().all()
    assert view_rows and {"model", "scenario", "[80]"} <= set(view_rows[0])
    (meth, table), = correspondence(engine, "predict", "level", "neuralforecast")
    assert meth == "NeuralForecast.predict" and "[80]" in table.columns
    monkeypatch.setenv("FCAST_DB_URL", url)
    out = CliRunner().invoke(main, ["compat", "--method", "predict", "--param", "level"])
    assert out.exit_code == 0, out.output
    assert "NeuralForecast.predict · level" in out.output and "✗ AttributeError" in out.output
    # the message beside the type (view, CLI table) and the legend under the table
    err = cells(engine, "param = 'level' AND method = 'NeuralForecast.predict' AND status = 'error'")[0]
    assert any(v == f"error {err.exception_type}: {err.message[:99]}" + ("…" if len(err.message) > 100 else "")
               for r in view_rows for v in r.values())
    assert f"✗ {err.exception_type}: {err.message[:40]}" in out.output and "⏱ timeout" in out.output
    with engine.connect() as conn:
        config = conn.execute(text("SELECT config FROM compat_run").columns(config=JSONType)).scalars().first()
    assert config["cell_timeout"] == 90 and config["auto_cell_timeout"] == 270 and config["timeout_retries"] == 1
    bad = cells(engine, "param = 'local_scaler_type' AND status = 'error' AND model LIKE '%.MLP'")[0]
    r = rerun_cell(engine, bad.result_id)
    assert r["reproduced"], r
    out = CliRunner().invoke(main, ["compat", "--rerun", str(bad.result_id)])
    assert out.exit_code == 0 and "reproduced" in out.output
    out = CliRunner().invoke(main, ["compat", "--rerun", "999999"])
    assert out.exit_code != 0 and "no compat_result row" in out.output


def test_compat_asset_materializes_one_model(tmp_path, monkeypatch):
    from fcast_assets.defs.compat.assets import compat_matrix
    from fcast_assets.defs.resources import MetadataDB

    engine, url = scanned_db(tmp_path)
    monkeypatch.setenv("FCAST_REPORTS", str(tmp_path / "reports"))
    instance = dg.DagsterInstance.ephemeral()
    res = dg.materialize(
        [compat_matrix], partition_key="neuralforecast", instance=instance,
        resources={"meta_db": MetadataDB(url=url)},
        run_config={"ops": {"compat_matrix": {"config": {"models": ["NLinear"],
                                                         "families": ["local_scaler_type"]}}}},
    )
    assert res.success
    meta = res.asset_materializations_for_node("compat_matrix")[0].metadata
    assert meta["models"].value == 1 and meta["cells"].value >= 11
    assert meta["dagster/row_count"].value == meta["cells"].value
    assert "NLinear" in meta["preview"].value and "local_scaler_type" in meta["preview"].value
    assert meta["cells_error"].value >= 1 and meta["cells_ok"].value >= 5
    assert "✗" in meta["table NeuralForecast.__init__.local_scaler_type"].value
    report = (tmp_path / "reports" / "compat_neuralforecast.md").read_text()
    assert "## NeuralForecast.__init__ · `local_scaler_type`" in report and "NLinear" in report
    logs = [e.user_message for e in instance.all_logs(res.run_id)]
    assert any("cells (current model NLinear)" in m for m in logs)  # progress in the run view


def test_small_matrix_on_both_databases(engine):
    """compat tables, the observed-capability write and the pivot views on SQLite and PostgreSQL."""
    scan_and_store("neuralforecast", engine)
    s = run_matrix(engine, "neuralforecast", models=["NLinear"], families=["local_scaler_type", "futr_exog_list"],
                   workers=2, cell_timeout=90)
    assert s["counts"].get("error", 0) >= 2 and s["counts"].get("ok", 0) >= 5
    bad = cells(engine, "param = 'local_scaler_type' AND value_label LIKE '%outside enum%'")
    assert bad and bad[0].status == "error" and bad[0].exception_type == "ValueError"
    assert bad[0].context["cell"]["spec"]["nf_kwargs"] == {"local_scaler_type": INVALID_ENUM}
    with engine.connect() as conn:
        view = conn.execute(text("SELECT * FROM compat_init_local_scaler_type")).mappings().all()
        obs = conn.execute(text("SELECT COUNT(*) FROM registry_symbol_capability WHERE source = 'observed'")).scalar()
    assert len(view) == 1 and obs == 1
    # re-scanning the registry keeps the compat rows' references valid
    assert scan_and_store("neuralforecast", engine)["status"] == "unchanged"


def test_auto_class_cells(tmp_path):
    """Auto models with the optuna backend: the config trap, deprecated arguments, an invalid backend."""
    engine, _ = scanned_db(tmp_path)
    s = run_matrix(engine, "neuralforecast", models=["AutoMLP"], workers=2, cell_timeout=90)
    rows = {(r.param, r.value_label): r for r in cells(engine, "method = 'Auto.__init__'")}
    # AutoMLP alone still calibrates MLP (its tiny config takes MLP's size): set up as in a whole matrix, not with
    # a fallback size that only an Auto-only run would use
    calib = cells(engine, "method = 'Model.__init__'")
    assert {(r.model, r.param) for r in calib} == {("neuralforecast.models.mlp.MLP", "input_size")}
    first = next(r.value for r in sorted(calib, key=lambda r: r.value) if r.status == "ok")
    assert s["cells"] == len(rows) + len(calib) and len(rows) > 20
    assert {r.context["group"]["setup"]["tiny_config"]["input_size"] for r in rows.values()} == {first} != {8}
    assert rows[("config", "tiny config")].status == "ok"
    trap = rows[("config", "default_override_distribution config")]
    assert trap.status == "error" and trap.exception_type == "ValueError" and "distribution" in trap.message
    assert rows[("num_samples", "0")].status == "error"
    bad_backend = next(r for (p, lab), r in rows.items() if p == "backend" and "outside enum" in lab)
    assert bad_backend.status == "error" and "backend" in bad_backend.message.lower()
    assert {r.status for (p, _), r in rows.items() if p == "loss"} == {"ok"}


def test_auto_cells_sample_the_same_config_every_run(tmp_path):
    """An Auto cell with the optuna backend samples its config with a seeded sampler, so two runs (two releases)
    sample the same config and a flip is the library's, not chance; a cell that probes search_alg keeps its own
    sampler, and the ray backend gets none of optuna's."""
    import optuna

    from fcast_assets.compat.neuralforecast_adapter import NeuralForecastAdapter

    engine, _ = scanned_db(tmp_path)
    with engine.connect() as conn:
        rid = conn.execute(text("SELECT MAX(release_id) FROM registry_release")).scalar()
    ad = NeuralForecastAdapter(engine, rid, str(tmp_path))
    group = next(g for g in ad._auto_groups("neuralforecast.auto.AutoRNN", {}) if g.cells)
    cell = next(c for c in group.cells if c.param == "config" and "default_override_constant" in c.value_label)
    data = build_data("datetime", ())

    def sampled() -> dict:
        kw = ad.auto_kwargs(group.setup, cell.spec, data)
        assert isinstance(kw["search_alg"], optuna.samplers.TPESampler)
        study = optuna.create_study(sampler=kw["search_alg"])
        return kw["config"](study.ask())

    first = sampled()
    assert {"input_size", "random_seed"} <= set(first) and sampled() == first
    # the look-alike: the same space with an unseeded sampler does not promise that (what the cells had before)
    draws = [ad.auto_kwargs(group.setup, cell.spec, data)["config"](
        optuna.create_study(sampler=optuna.samplers.TPESampler()).ask()) for _ in range(8)]
    assert len({repr(sorted(d.items())) for d in draws}) > 1
    own = next(c for c in group.cells if c.param == "search_alg" and "RandomSampler" in c.value_label)
    assert isinstance(ad.auto_kwargs(group.setup, own.spec, data)["search_alg"], optuna.samplers.RandomSampler)
    ray = next(c for c in group.cells if c.param == "backend" and c.value == "ray")
    assert "search_alg" not in ad.auto_kwargs(group.setup, ray.spec, data)
    # an Auto class alone brings its model's calibration; with the model selected too, it is calibrated once
    rnn, mlp = "neuralforecast.models.rnn.RNN", "neuralforecast.models.mlp.MLP"
    assert [g.model for g in ad.calibration_groups(["neuralforecast.auto.AutoRNN"])] == [rnn]
    assert [g.model for g in ad.calibration_groups([mlp, "neuralforecast.auto.AutoMLP", rnn])] == [mlp, rnn]


def test_statsforecast_and_mlforecast_share_the_tables(tmp_path):
    from fcast_assets.compat.probe import view_name
    engine, _ = scanned_db(tmp_path, "statsforecast", "mlforecast")
    sf = run_matrix(engine, "statsforecast", models=["Naive"], workers=2)
    mlf = run_matrix(engine, "mlforecast", models=["LinearRegression", "KNeighborsRegressor"], workers=2)
    assert sf["cells"] > 20 and mlf["cells"] > 40
    lvl = cells(engine, "method = 'StatsForecast.forecast' AND param = 'level' AND value_label = '[120]'")
    assert lvl[0].status == "error" and lvl[0].exception_type == "ValueError"
    ok = cells(engine, "method = 'StatsForecast.forecast' AND param = 'level' AND value_label = '[80]'")
    assert ok[0].status == "ok"
    # generic cells take their candidates from the registry's StatsForecast.forecast (not a doubled qualname)
    fitted = cells(engine, "method = 'StatsForecast.forecast' AND param = 'fitted'")
    assert {r.value_label for r in fitted} == {"true", "false (default)"} and {r.status for r in fitted} == {"ok"}
    # mlforecast: level without conformal intervals runs but returns no interval columns -> suspect
    sus = cells(engine, "method = 'MLForecast.predict' AND param = 'level' AND value_label = '[80]' "
                        "AND scenario = 'baseline'")
    assert {r.status for r in sus} == {"suspect"} and all("lo-80" in r.message for r in sus)
    pi = cells(engine, "method = 'MLForecast.predict' AND param = 'level' AND scenario = 'prediction_intervals' "
                       "AND value_label LIKE '[80] |%'")
    assert {r.status for r in pi} == {"ok"}
    with engine.connect() as conn:
        libs = set(conn.execute(text("""SELECT DISTINCT l.name FROM compat_result c JOIN registry_release r
                   ON r.release_id = c.release_id JOIN registry_library l ON l.library_id = r.library_id""")).scalars())
        n = conn.execute(text(f"SELECT COUNT(*) FROM {view_name('MLForecast.predict', 'level')}")).scalar()
    assert libs == {"statsforecast", "mlforecast"} and n == 4  # 2 estimators x 2 scenarios
