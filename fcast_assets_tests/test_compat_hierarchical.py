"""hierarchicalforecast through the function adapter: every reconciler class of hierarchicalforecast.methods the
registry lists, its methods (enums from the registry) × intervals_method × level, run for real through
HierarchicalReconciliation.reconcile on a small hierarchy built with the library's own ``aggregate``; stored in the
compat tables with post-conditions (rows per id × h, columns, no NaN, coherence, nonnegativity)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sqlalchemy import text

from fcast_assets.compat.function_adapter import build_hier_data, check_reconcile
from fcast_assets.compat.probe import run_matrix
from fcast_assets.compat.tables import rerun_cell

from .conftest import compat_cells_of_runs as cells, one_compat_cell as one, scanned_db

MODELS = ["BottomUp", "TopDown", "MinTrace", "MinTraceSparse"]
M = "hierarchicalforecast.methods."


@pytest.fixture(scope="module")
def matrix(tmp_path_factory):
    engine, _ = scanned_db(tmp_path_factory.mktemp("compathf"), "hierarchicalforecast")
    res = run_matrix(engine, "hierarchicalforecast", models=MODELS, workers=2, cell_timeout=60)
    yield engine, res
    engine.dispose()




def test_counts_statuses_and_facts(matrix):
    engine, res = matrix
    rows = cells(engine, "1 = 1")
    assert res["cells"] == len(rows) > 150
    assert {r.model for r in rows} == {M + m for m in MODELS}
    assert res["counts"].get("ok", 0) > 80 and res["counts"].get("error", 0) > 50
    assert set(res["counts"]) <= {"ok", "error", "suspect"}
    for r in rows:
        f = r.scenario_facts
        assert {"n_bottom", "levels", "h", "intervals_method", "level", "n_series", "hierarchy"} <= set(f), f
    base = one(engine, "model = :m AND param = 'level' AND value_label = '[80, 95]' AND scenario = 'baseline'",
               m=M + "BottomUp")
    assert base.scenario_facts["n_bottom"] == 4 and base.scenario_facts["n_series"] == 7
    assert base.scenario_facts["h"] == 3 and base.scenario_facts["level"] == [80, 95]
    assert base.scenario_facts["levels"] == ["Country", "Country/State", "Country/State/City"]


def test_methods_come_from_the_registry(matrix):
    engine, _ = matrix
    with engine.connect() as conn:
        enums = set(conn.execute(text("""
            SELECT e.value FROM registry_param_enum e JOIN registry_param p USING (param_id)
            JOIN registry_symbol s USING (symbol_id) WHERE s.qualname = :q AND p.name = 'method'"""),
            {"q": M + "MinTrace.__init__"}).scalars())
    enums = {json.loads(e) if isinstance(e, str) and e.startswith('"') else e for e in enums}
    assert {"ols", "wls_struct", "mint_shrink", "emint"} <= enums
    probed = {r.value for r in cells(engine, "model = :m AND param = 'method' AND scenario = 'baseline'",
                                     m=M + "MinTrace")}
    assert enums < probed  # every registry value, plus one outside the enum
    bad = one(engine, "model = :m AND param = 'method' AND scenario = 'baseline' AND value_label LIKE '%outside%'",
              m=M + "TopDown")
    assert bad.status == "error" and "Unknown method" in bad.message and "forecast_proportions" in bad.message
    ims = {r.value: r.status for r in cells(engine, "model = :m AND param = 'intervals_method'", m=M + "BottomUp")}
    assert {"normality": "ok", "bootstrap": "ok", "permbu": "ok"}.items() <= ims.items()


def test_coherent_ok_cell_and_rerun(matrix):
    engine, _ = matrix
    ok = one(engine, "model = :m AND param = 'method' AND value_label LIKE '''ols'' |%' AND scenario = :s",
             m=M + "MinTrace", s="normality level=[80, 95]")
    assert ok.status == "ok", ok.message
    assert ok.scenario_facts["intervals_method"] == "normality"
    # the same call outside the matrix: the bottom series sum to the total
    from hierarchicalforecast.core import HierarchicalReconciliation
    from hierarchicalforecast.methods import MinTrace

    hd = build_hier_data({})
    out = HierarchicalReconciliation([MinTrace(method="ols")]).reconcile(
        Y_hat_df=hd["Y_hat_df"], Y_df=hd["Y_df"], S_df=hd["S_df"], tags=hd["tags"], level=[80, 95])
    col = "Naive/MinTrace_method-ols"
    wide = out.pivot(index="unique_id", columns="ds", values=col)
    bottom = hd["tags"]["Country/State/City"]
    assert np.allclose(wide.loc[bottom].sum().to_numpy(), wide.loc["C"].to_numpy())
    assert check_reconcile(out, hd, "MinTrace", {"method": "ols"}, {"level": [80, 95]}) == []
    again = rerun_cell(engine, ok.result_id)
    assert again["reproduced"], again


def test_postconditions_catch_a_broken_output():
    """The checks can fail: an incoherent bottom value, a missing interval column, a missing row, a negative value
    under nonnegative=True — each named; the untouched output passes (above)."""
    from hierarchicalforecast.core import HierarchicalReconciliation
    from hierarchicalforecast.methods import BottomUp

    hd = build_hier_data({})
    out = HierarchicalReconciliation([BottomUp()]).reconcile(
        Y_hat_df=hd["Y_hat_df"], Y_df=hd["Y_df"], S_df=hd["S_df"], tags=hd["tags"], level=[80])
    assert check_reconcile(out, hd, "BottomUp", {}, {"level": [80]}) == []
    broken = out.copy()
    broken.loc[broken["unique_id"] == "C/S1/c1", "Naive/BottomUp"] += 5.0
    assert any("not coherent" in b for b in check_reconcile(broken, hd, "BottomUp", {}, {"level": [80]}))
    assert any("no interval column" in b
               for b in check_reconcile(out.drop(columns="Naive/BottomUp-hi-80"), hd, "BottomUp", {}, {"level": [80]}))
    assert any("rows" in b for b in check_reconcile(out.iloc[1:], hd, "BottomUp", {}, {"level": [80]}))
    neg = out.copy()
    neg["Naive/BottomUp"] *= -1.0  # S is linear: still coherent
    assert any("nonnegative" in b for b in check_reconcile(neg, hd, "BottomUp", {"nonnegative": True}, {}))
    assert check_reconcile(neg, hd, "BottomUp", {}, {}) == []  # negative is allowed without nonnegative


def test_observed_errors_with_the_library_message(matrix):
    engine, _ = matrix
    td = M + "TopDown"
    # TopDown(forecast_proportions) has only bootstrap intervals; the look-alike with bootstrap runs
    normal = one(engine, "model = :m AND param = 'method' AND value_label LIKE '''forecast_proportions'' |%' "
                 "AND scenario = :s", m=td, s="normality level=[80, 95]")
    assert normal.status == "error" and "Only `bootstrap` intervals_method is implemented" in normal.message
    boot = one(engine, "model = :m AND param = 'method' AND value_label LIKE '''forecast_proportions'' |%' "
               "AND scenario = :s", m=td, s="bootstrap level=[80, 95]")
    assert boot.status == "ok", boot.message
    # a hierarchy that is not strict (State × Purpose): TopDown refuses it, BottomUp reconciles it
    grouped = "param = 'data' AND value_label = '{\"hier\": \"grouped\"}' AND scenario = 'baseline' AND model = :m"
    g_td = one(engine, grouped, m=td)
    assert g_td.status == "error" and "require a strictly hierarchical structure" in g_td.message
    assert g_td.scenario_facts["hierarchy"] == "grouped"
    assert one(engine, grouped, m=M + "BottomUp").status == "ok"
    # permbu without Y_df / on a grouped hierarchy; with fitted values on the strict hierarchy it runs
    permbu = "param = 'data' AND model = :m AND scenario = 'permbu level=[80]' AND value_label LIKE :v || ' |%'"
    no_y = one(engine, permbu, m=M + "BottomUp", v='{"y_df": false}')
    assert no_y.status == "error" and "You need to provide `Y_df` when using intervals_method=`permbu`" in no_y.message
    assert no_y.scenario_facts["y_df"] is False
    g_p = one(engine, permbu, m=M + "MinTrace", v='{"hier": "grouped"}')
    assert g_p.status == "error" and "PERMBU probabilistic reconciliation requires strictly hierarchical" in g_p.message
    no_fit = one(engine, permbu, m=M + "BottomUp", v='{"fitted": false}')
    assert no_fit.status == "error" and "must be in `Y_df` columns" in no_fit.message
    assert one(engine, "model = :m AND param = 'level' AND value_label LIKE '[80] |%' AND scenario = 'permbu'",
               m=M + "BottomUp").status == "ok"
    # level outside [0, 100)
    lv = one(engine, "model = :m AND param = 'level' AND value_label = '[100]'", m=M + "MinTrace")
    assert lv.status == "error" and "interval [0, 100)" in lv.message
    # MinTraceSparse with bootstrap intervals: the library's own TypeError; normality runs
    sp = "model = :m AND param = 'intervals_method' AND value_label LIKE :v"
    assert one(engine, sp, m=M + "MinTraceSparse", v="'bootstrap'%").exception_type == "TypeError"
    assert one(engine, sp, m=M + "MinTraceSparse", v="'normality'%").status == "ok"


def test_nonnegative_on_negative_base_forecasts(matrix):
    engine, _ = matrix
    where = ("model = :m AND param = 'nonnegative' AND scenario = 'negative base forecasts' "
             "AND value_label LIKE :v || ' |%'")
    assert one(engine, where, m=M + "MinTrace", v="true").status == "ok"
    assert one(engine, where, m=M + "MinTrace", v="false").status == "ok"
    hd = build_hier_data({"negative": True})
    assert (hd["Y_hat_df"]["Naive"] < 0).any()  # the scenario does put negative base forecasts in
