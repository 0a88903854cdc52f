"""The neuralforecast partition, materialized through Dagster, answers the questions of the issue in SQL,
checked against ``inspect`` on the live library (never against a hand list)."""

from __future__ import annotations

import inspect

import neuralforecast
import neuralforecast.auto
import neuralforecast.losses.pytorch as nf_losses
import neuralforecast.models as nf_models
from neuralforecast import NeuralForecast
from neuralforecast.common._base_auto import BaseAuto
from sqlalchemy import text

from fcast_assets.db.models import JSONType

CAP_FLAGS = {"EXOGENOUS_FUTR": "exog_futr", "EXOGENOUS_HIST": "exog_hist", "EXOGENOUS_STAT": "exog_stat",
             "MULTIVARIATE": "multivariate", "RECURRENT": "recurrent"}


JSON_COLUMNS = ("value", "type_norm", "default", "environment")


def q(engine, sql, **params):
    """Run SQL; JSON columns come back decoded on both databases."""
    stmt = text(sql).columns(**{c: JSONType for c in JSON_COLUMNS if c in sql})
    with engine.connect() as conn:
        return conn.execute(stmt, params).all()


def test_materialization_metadata(nf_registry):
    _, result = nf_registry
    mats = result.asset_materializations_for_node("library_registry")
    meta = mats[0].metadata
    assert meta["library"].value == "neuralforecast"
    assert meta["version"].value == neuralforecast.__version__
    assert meta["classes"].value > 100 and meta["parameters"].value > 5000
    assert meta["seconds"].value > 0
    assert meta["dagster/row_count"].value == meta["symbols"].value
    assert "qualname" in [c.name for c in meta["dagster/column_schema"].value.columns]
    assert "neuralforecast." in meta["preview"].value and "init_params" in meta["preview"].value


def test_model_classes_with_capabilities(nf_registry):
    engine, _ = nf_registry
    live = {n: o for n, o in vars(nf_models).items()
            if inspect.isclass(o) and not n.startswith("_") and hasattr(o, "EXOGENOUS_FUTR")}
    assert len(live) > 30
    rows = q(engine, """
        SELECT a.alias_qualname, s.qualname, c.capability_code, c.value
        FROM registry_symbol_alias a
        JOIN registry_symbol s ON s.symbol_id = a.symbol_id
        JOIN registry_symbol_capability c ON c.symbol_id = s.symbol_id
        WHERE a.module = 'neuralforecast.models' AND s.kind = 'class'""")
    scanned: dict[str, dict[str, object]] = {}
    for alias, _, code, value in rows:
        scanned.setdefault(alias.rsplit(".", 1)[1], {})[code] = value
    assert set(scanned) >= set(live)
    for name, cls in live.items():
        for attr, code in CAP_FLAGS.items():
            assert scanned[name][code] == getattr(cls, attr), (name, attr)
        assert scanned[name]["has_auto"] == hasattr(neuralforecast.auto, "Auto" + name), name


def _params(engine, qualname):
    return q(engine, """
        SELECT p.name, p.kind, p.annotation, p.type_norm, p."default", p.has_default, p.required, p.doc_text
        FROM registry_param p JOIN registry_symbol s ON s.symbol_id = p.symbol_id
        WHERE s.qualname = :q ORDER BY p.position""", q=qualname)


def test_neuralforecast_methods_parameters_match_inspect(nf_registry):
    engine, _ = nf_registry
    for method in ("__init__", "fit", "predict", "cross_validation", "predict_insample", "save", "load"):
        fn = getattr(NeuralForecast, method)
        sig = inspect.signature(fn)
        live = [p for p in sig.parameters.values()]
        if method != "load":  # load is a classmethod: cls already bound
            live = live[1:]
        rows = _params(engine, f"neuralforecast.core.NeuralForecast.{method}")
        assert [r.name for r in rows] == [p.name for p in live], method
        for r, p in zip(rows, live):
            assert r.required == (p.default is inspect.Parameter.empty and p.kind not in (
                p.VAR_POSITIONAL, p.VAR_KEYWORD)), (method, p.name)
            assert r.has_default == (p.default is not inspect.Parameter.empty)
    init = {r.name: r for r in _params(engine, "neuralforecast.core.NeuralForecast.__init__")}
    assert init["freq"].type_norm == ["str", "int"]
    assert "offset alias" in init["freq"].doc_text
    predict = {r.name: r for r in _params(engine, "neuralforecast.core.NeuralForecast.predict")}
    assert predict["level"].has_default and predict["level"].default is None
    assert "list" in predict["level"].type_norm


def test_auto_base_class_parameters(nf_registry):
    engine, _ = nf_registry
    qual = f"{BaseAuto.__module__}.BaseAuto.__init__"
    rows = _params(engine, qual)
    live = list(inspect.signature(BaseAuto.__init__).parameters)[1:]
    assert [r.name for r in rows] == live
    by = {r.name: r for r in rows}
    assert by["backend"].has_default and by["num_samples"].has_default
    documented = [r.name for r in rows if r.doc_text]
    assert len(documented) >= len(rows) // 2


def test_local_scaler_type_allowed_values(nf_registry):
    engine, _ = nf_registry
    rows = q(engine, """
        SELECT e.value, e.source FROM registry_param_enum e
        JOIN registry_param p ON p.param_id = e.param_id JOIN registry_symbol s ON s.symbol_id = p.symbol_id
        WHERE s.qualname = 'neuralforecast.core.NeuralForecast.__init__' AND p.name = 'local_scaler_type'""")
    values = {v for v, _ in rows}
    assert values == {"standard", "robust", "robust-iqr", "minmax", "boxcox"}
    assert {s for _, s in rows} == {"docstring"}


def test_every_loss_class_has_a_category(nf_registry):
    engine, _ = nf_registry
    rows = {qn.rsplit(".", 1)[1]: (cat, out) for qn, cat, out in q(engine, """
        SELECT s.qualname, l.category, l.output_type FROM registry_loss l
        JOIN registry_symbol s ON s.symbol_id = l.symbol_id""")}
    live = {n for n, o in vars(nf_losses).items() if inspect.isclass(o) and issubclass(o, nf_losses._BaseLoss)}
    assert live <= set(rows), live - set(rows)
    # distributions and layers living in the losses module are not losses
    not_losses = {n for n, o in vars(nf_losses).items() if inspect.isclass(o) and o.__module__ == nf_losses.__name__
                  and not issubclass(o, nf_losses._BaseLoss)}
    assert not_losses and not (not_losses & set(rows)), not_losses & set(rows)
    assert rows["MAE"] == ("point", "point")
    assert rows["MQLoss"] == ("probabilistic", "quantile")
    assert rows["DistributionLoss"] == ("probabilistic", "distribution")
    assert rows["GMM"][1] == "distribution"
    # categories agree with what an instance says about itself
    for name in ("MAE", "MSE", "MQLoss", "HuberMQLoss", "IQLoss"):
        obj = getattr(nf_losses, name)()
        probabilistic = obj.is_distribution_output or len(obj.output_names) > 1 or hasattr(obj, "q") \
            or hasattr(obj, "quantiles")
        assert (rows[name][0] == "probabilistic") == probabilistic, name


def test_release_recorded_with_environment(nf_registry):
    engine, _ = nf_registry
    (version, env, py), = q(engine, """
        SELECT r.version, r.environment, r.python_version FROM registry_release r
        JOIN registry_library l ON l.library_id = r.library_id WHERE l.name = 'neuralforecast'""")
    assert version == neuralforecast.__version__
    import torch

    assert env["torch"] == torch.__version__.split("+")[0] or env["torch"] == torch.__version__


def test_tables_for_people(nf_registry):
    from fcast_assets.registry import tables

    engine, _ = nf_registry
    libs = tables.libraries(engine)
    row = libs[libs["library"] == "neuralforecast"].iloc[0]
    assert row["version"] == neuralforecast.__version__ and row["parameters"] > 5000
    caps = tables.capabilities(engine).set_index("model")
    assert bool(caps.loc["NHITS", "exog_futr"]) is nf_models.NHITS.EXOGENOUS_FUTR
    assert bool(caps.loc["TSMixer", "multivariate"]) is nf_models.TSMixer.MULTIVARIATE
    params = tables.parameters(engine, "neuralforecast.core.NeuralForecast.__init__").set_index("name")
    assert list(params.index) == list(inspect.signature(NeuralForecast.__init__).parameters)[1:]
    assert sorted(params.loc["local_scaler_type", "allowed_values"]) == sorted(
        ["standard", "robust", "robust-iqr", "minmax", "boxcox"])
    loss = tables.losses(engine).set_index("loss")
    assert loss.loc["MQLoss", "category"] == "probabilistic" and loss.loc["MAE", "output_type"] == "point"
