"""utilsforecast and coreforecast through the function adapter: real calls of the real libraries on tiny data,
stored in the same compat tables, with post-conditions that turn a wrong output into ``suspect``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import text

from fcast_assets.compat.tables import rerun_cell
from fcast_assets.db.engine import make_engine

from .conftest import compat_cells_of_runs as cells, fork_and_spawn_matrix, one_compat_cell as one, scanned_db

UF_FAMILIES = ["level", "fill_gaps", "q"]
CF_FAMILIES = ["scalers", "lag", "window_size"]


@pytest.fixture(scope="module")
def matrix(tmp_path_factory):
    engine, uf, cf = fork_and_spawn_matrix(tmp_path_factory.mktemp("compatfn"), ("utilsforecast", UF_FAMILIES, 2),
                                           ("coreforecast", CF_FAMILIES, 2))
    yield engine, uf, cf
    engine.dispose()




def test_counts_and_facts(matrix):
    engine, uf, cf = matrix
    assert uf["cells"] > 250 and cf["cells"] > 250
    assert uf["counts"].get("ok", 0) > 150 and uf["counts"].get("error", 0) > 30
    assert cf["counts"].get("ok", 0) > 150 and cf["counts"].get("error", 0) > 30
    with engine.connect() as conn:
        libs = dict(conn.execute(text("SELECT c.library, COUNT(*) FROM compat_result r JOIN compat_run c "
                                      "USING (compat_run_id) GROUP BY c.library")).all())
        n_view = conn.execute(text("SELECT COUNT(*) FROM compat_cells")).scalar()
    assert libs == {"utilsforecast": uf["cells"], "coreforecast": cf["cells"]}
    assert n_view == uf["cells"] + cf["cells"]
    for r in cells(engine, "1 = 1"):
        f = r.scenario_facts
        assert {"ds_dtype", "data_freq", "n_series", "length"} <= set(f), (r.model, r.param, f)


def test_every_registry_loss_has_evaluate_cells(matrix):
    engine, _, _ = matrix
    with engine.connect() as conn:
        losses = set(conn.execute(text("""
            SELECT s.qualname FROM registry_symbol s JOIN registry_release r USING (release_id)
            JOIN registry_library l USING (library_id) WHERE l.name = 'utilsforecast' AND s.kind = 'function'
              AND s.is_public AND s.module = 'utilsforecast.losses' AND s.name NOT LIKE '\\_%' ESCAPE '\\'
              AND s.qualname = s.module || '.' || s.name""")).scalars())
    assert {"utilsforecast.losses.mae", "utilsforecast.losses.quantile_loss", "utilsforecast.losses.mase",
            "utilsforecast.losses.coverage"} <= losses
    rows = cells(engine, "method = 'evaluation.evaluate' AND param = 'level'")
    by_loss: dict[str, set[str]] = {}
    for r in rows:
        by_loss.setdefault(r.model, set()).add(r.value_label)
    assert set(by_loss) == losses
    for q, labels in by_loss.items():
        assert {"None (default)", "[80]", "[80, 95]", "[120]"} <= labels, q
    # a point loss runs with and without level; every loss runs with the levels the frame has
    assert {r.status for r in rows if r.model.endswith(".mae") and r.value_label in ("None (default)", "[80]")} == {"ok"}
    assert {r.status for r in rows if r.value_label == "[80, 95]"} == {"ok"}


def test_quantile_loss_without_level_is_the_library_error(matrix):
    engine, _, _ = matrix
    from utilsforecast.evaluation import evaluate
    from utilsforecast.losses import quantile_loss

    from fcast_assets.compat.function_adapter import build_data, data_spec

    data = build_data(data_spec())
    with pytest.raises(ValueError) as live:
        evaluate(data["forecasts"], metrics=[quantile_loss], train_df=data["train"], models=["model", "Naive"])
    r = one(engine, "model = 'utilsforecast.losses.quantile_loss' AND method = 'evaluation.evaluate' AND param = 'level' "
                    "AND value_label = 'None (default)'")
    assert r.status == "error" and r.exception_type == "ValueError"
    assert "require setting `level`" in r.message and r.message.split(":")[0] == str(live.value).split(":")[0]
    assert r.scenario_facts["level"] is None
    ok = one(engine, "model = 'utilsforecast.losses.quantile_loss' AND method = 'evaluation.evaluate' AND param = 'level' "
                     "AND value_label = '[80]'")
    assert ok.status == "ok" and ok.scenario_facts["level"] == [80]
    # a level whose interval columns the frame lacks: the library names them
    miss = one(engine, "model = 'utilsforecast.losses.mae' AND method = 'evaluation.evaluate' AND param = 'level' "
                       "AND value_label = '[120]'")
    assert miss.status == "error" and "model-lo-120" in miss.message
    # with the interval columns there, only winkler_score checks the level; a quantile loss takes q = -0.1 / 1.1
    where = ("method = 'evaluation.evaluate' AND param = 'level' AND scenario = 'interval columns present' "
             "AND value_label LIKE '[120]%' AND model = :m")
    wink = one(engine, where, m="utilsforecast.losses.winkler_score")
    assert wink.status == "error" and "0 < level < 100" in wink.message
    assert one(engine, where, m="utilsforecast.losses.quantile_loss").status == "ok"


def test_fill_gaps_with_a_freq_that_misses_the_data(matrix):
    engine, _, _ = matrix
    where = ("model = 'utilsforecast.preprocessing.fill_gaps' AND param = 'freq' AND scenario = 'baseline' "
             "AND value_label = :v")
    weekly = one(engine, where, v="'W'")
    assert weekly.status == "suspect" and "original (id, ds) rows dropped" in weekly.message
    assert any("Some values were lost" in w for w in weekly.context["warnings"])
    assert weekly.scenario_facts["freq_fits_data"] is False and weekly.scenario_facts["gaps"] is True
    daily = one(engine, where, v="'D'")  # the data's own freq: every gap filled, nothing lost
    assert daily.status == "ok" and daily.scenario_facts["freq_fits_data"] is True
    # an integer freq on datetime data: the library refuses it with its own message
    integer = one(engine, where, v="1")
    assert integer.status == "error" and "frequency is an integer" in integer.message
    # the re-run from the row gives the same outcome
    again = rerun_cell(engine, weekly.result_id)
    assert again["reproduced"], again


def test_coreforecast_scalers_and_lag_transforms(matrix):
    engine, _, _ = matrix
    std = cells(engine, "model = 'coreforecast.scalers.LocalStandardScaler' AND param = 'data'")
    assert {r.value_label: r.status for r in std}['{"dtype": "float32"}'] == "ok"
    diff = cells(engine, "model = 'coreforecast.scalers.Difference' AND param = 'd'")
    by = {r.value_label: r for r in diff}
    assert by["1"].status == by["7"].status == "ok"  # inverse of the next differences = the next values
    assert by["0 (zero)"].status in ("error", "suspect")
    lag0 = one(engine, "model = 'coreforecast.lag_transforms.Lag' AND param = 'lag' AND value_label = '0 (zero)'")
    assert lag0.status == "error" and "lag" in lag0.message
    ok = one(engine, "model = 'coreforecast.lag_transforms.RollingMean' AND param = 'lag' AND value_label = '2'")
    assert ok.status == "ok"  # pandas' rolling mean shifted by 2, NaN only in the first 2 + 3 - 1
    assert ok.scenario_facts["n_series"] == 2 and ok.scenario_facts["dtype"] == "float64"
    wide = one(engine, "model = 'coreforecast.lag_transforms.RollingMean' AND param = 'window_size' "
                       "AND value_label = '30'")
    assert wide.status in ("ok", "error")  # a window longer than the series: all NaN, not a wrong value


def test_postconditions_catch_wrong_outputs():
    """The checks applied to real outputs of the libraries, then to the same outputs made wrong."""
    from utilsforecast.evaluation import evaluate
    from utilsforecast.losses import mae
    from utilsforecast.preprocessing import fill_gaps

    from fcast_assets.compat.function_adapter import _history_needed, build_data, check_evaluate, check_frame, \
        data_spec

    data = build_data(data_spec({"gaps": True}))
    out = evaluate(data["forecasts"], metrics=[mae], models=["model", "Naive"])
    params = {"models": {"type_norm": ["list"]}}
    assert check_evaluate(out, params, {"df": data["forecasts"]}, data) == []
    bad = out.copy()
    bad.loc[0, "model"] = np.nan
    assert any("NaN" in b for b in check_evaluate(bad, params, {"df": data["forecasts"]}, data))
    assert any("rows" in b for b in check_evaluate(pd.concat([out, out]), params, {"df": data["forecasts"]}, data))
    kw = {"df": data["series"], "freq": "D"}
    filled = fill_gaps(**kw)
    assert check_frame(filled, kw, data, "fill_gaps") == []
    assert any("duplicated" in b for b in check_frame(pd.concat([filled, filled.head(2)]), kw, data, "fill_gaps"))
    assert any("dropped" in b for b in check_frame(filled.iloc[2:], kw, data, "fill_gaps"))
    assert _history_needed("RollingMean", {"lag": 2, "window_size": 3}) == 4


def test_only_registry_functions_decode():
    from fcast_assets.compat.function_adapter import FunctionAdapter

    ad = FunctionAdapter.__new__(FunctionAdapter)
    ad.library, ad.functions = "utilsforecast", {"utilsforecast.losses.mae"}
    from utilsforecast.losses import mae

    assert ad.decode({"__fn__": "utilsforecast.losses.mae"}, {}) is mae
    with pytest.raises(ValueError, match="not a function the registry lists"):
        ad.decode({"__fn__": "os.system"}, {})


def test_compat_asset_partition_for_a_function_library(tmp_path, monkeypatch):
    import dagster as dg

    from fcast_assets.defs.compat.assets import compat_matrix
    from fcast_assets.defs.resources import MetadataDB

    _, url = scanned_db(tmp_path, "coreforecast")
    monkeypatch.setenv("FCAST_REPORTS", str(tmp_path / "reports"))
    res = dg.materialize(
        [compat_matrix], partition_key="coreforecast", instance=dg.DagsterInstance.ephemeral(),
        resources={"meta_db": MetadataDB(url=url)},
        run_config={"ops": {"compat_matrix": {"config": {"models": ["Difference", "Lag"], "families": ["d", "lag"]}}}},
    )
    assert res.success
    meta = res.asset_materializations_for_node("compat_matrix")[0].metadata
    assert meta["models"].value == 2 and meta["cells"].value >= 10
    assert meta["cells_ok"].value >= 4 and meta["cells_error"].value >= 2
    report = (tmp_path / "reports" / "compat_coreforecast.md").read_text(encoding="utf-8")
    assert "## Scaler.fit_transform · `d`" in report and "## LagTransform.transform · `lag`" in report
    # the asset page: the legend and every (method, param) table of the run, rows named by model, none wider
    # than 8 value columns
    with make_engine(url).connect() as conn:
        pairs = conn.execute(text("SELECT DISTINCT method, param FROM compat_result")).all()
    assert pairs and "✗ **error**" in meta["legend"].value
    for meth, param in pairs:
        parts = [k for k in meta if k == f"table {meth}.{param}" or k.startswith(f"table {meth}.{param} (")]
        assert parts, f"no table for {meth}.{param} on the asset page"
        for k in parts:
            header = meta[k].value.splitlines()[0]
            assert header.count("|") - 2 <= 8 and "('" not in meta[k].value, k


def test_a_cell_runs_only_registry_targets(matrix):
    engine, _, _ = matrix
    from fcast_assets.compat.probe import adapter_for
    from fcast_assets.registry.view import latest_release
    from fcast_assets.compat.runner import Cell

    rid, _ = latest_release(engine, "utilsforecast")
    ad = adapter_for("utilsforecast", engine, rid, ".")
    row = one(engine, "model = 'utilsforecast.preprocessing.fill_gaps' AND param = 'freq' AND scenario = 'baseline' "
                      "AND value_label = :v", v="'D'")
    spec = row.context["cell"]["spec"]
    assert ad.run(None, Cell(**{**row.context["cell"], "spec": spec})) == []
    with pytest.raises(ValueError, match="not a target"):
        ad.run(None, Cell(**{**row.context["cell"], "spec": {**spec, "target": "os.system"}}))

