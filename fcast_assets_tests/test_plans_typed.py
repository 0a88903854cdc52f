"""Typed plans (issue 19): one (game, selector) type for every spelling, pydantic plans with one-line errors, the
validator returning the resolved plan the runner executes, frames and baselines injected by the caller, and a
retrain / prediction that reads the gold tables once (a real read, counted)."""

from __future__ import annotations

import pandas as pd
import pytest
from sqlalchemy import text

from fcast_assets.lake import deltaio
from fcast_assets.plans import data as plan_data
from fcast_assets.plans import loader, runner, validator
from fcast_assets.plans.model import DataRef, GoldRef, GoldRefError, Plan, PlanFormatError, PlanRun, Validation

PLAN = {"name": "typed_mlp", "data": "synthetic", "steps": [
    {"model": "MLP", "params": {"h": 2, "input_size": 8, "max_steps": 1}},
    {"method": "NeuralForecast.__init__", "params": {"freq": "D"}},
    {"method": "NeuralForecast.fit"},
    {"method": "NeuralForecast.cross_validation", "params": {"n_windows": 2, "step_size": 2}},
    {"method": "evaluate", "params": {"metrics": ["mae"], "baselines": ["Naive"]}}]}


# ----------------------------------------------------------------------------------------------- (game, selector)
def test_one_game_selector_type_reads_every_spelling():
    ref = GoldRef(game="loto6", selector="N1")
    for spelling in ("gold:loto6:N1", "loto6.N1", "loto6:N1", " gold:loto6:N1 ", ref):
        assert GoldRef.parse(spelling) == ref
    assert str(ref) == "gold:loto6:N1" and ref.key == "loto6.N1" and ref.lock == "train:loto6/N1"
    assert GoldRef.parse(str(ref)) == GoldRef.parse(ref.key) == ref  # round trips
    assert hash(ref) == hash(GoldRef.parse("loto6.N1"))  # frozen: usable as a key
    for bad, words in (("gold:loto6", "gold:<game>:<selector>"), ("loto6", "<game>.<selector>"),
                       ("gold::N1", "gold:<game>:<selector>"), ("loto6.", "<game>.<selector>"), (7, "not 7")):
        with pytest.raises(GoldRefError, match="e.g."):
            GoldRef.parse(bad)
        with pytest.raises(ValueError) as e:
            GoldRef.parse(bad)
        assert words in str(e.value) and "\n" not in str(e.value)


def test_selectors_and_gold_data_use_the_one_type():
    from fcast_assets.models.selectors import Selector, partition_key, split_key
    from fcast_assets.plans import gold_data

    sel = Selector(1, "loto6", 1, "ALL", ("loto6_N1",))
    assert sel.ref == GoldRef(game="loto6", selector="ALL") and sel.key == "loto6.ALL"
    assert partition_key("loto6", "N2") == "loto6.N2" and split_key("loto6.N2") == ("loto6", "N2")
    assert gold_data.parse("gold:loto6:N2") == ("loto6", "N2") and gold_data.ref("loto6.N2").key == "loto6.N2"
    with pytest.raises(ValueError, match="model partition key"):
        split_key("loto6")
    with pytest.raises(gold_data.GoldDataError, match="gold data set"):
        gold_data.parse("gold:loto6")
    assert DataRef.parse("gold:loto6:N1").gold == sel.ref.model_copy(update={"selector": "N1"})


# ----------------------------------------------------------------------------------------------- typed plans
def test_plans_parse_from_the_dict_form_with_one_line_errors(tmp_path):
    p = Plan.parse(loader._plan(PLAN, "f.yaml"))
    assert p.name == "typed_mlp" and p.data == DataRef(kind="named", name="synthetic")
    assert p.model_class == "neuralforecast.models.MLP" and p.model_kwargs["h"] == 2
    assert [s.ord for s in p.steps] == list(range(5)) and not p.resolved
    assert Plan.parse({**PLAN, "data": {"synthetic": {"n_series": 3}}}).data.raw() == '{"synthetic": {"n_series": 3}}'
    # the same plan with a malformed part: one line naming where, the field and the rule
    with pytest.raises(PlanFormatError) as e:
        Plan.parse({**loader._plan(PLAN, "f.yaml"), "steps": [{"method": "x", "params": [1]}]})
    assert str(e.value).startswith("f.yaml: plan 'typed_mlp': steps.0.params: ") and "\n" not in str(e.value)
    with pytest.raises(PlanFormatError, match="gold:<game>:<selector>"):
        Plan.parse({**PLAN, "data": "gold:loto6"}, where="row 3")
    # a plan file: the loader names the file and the plan's line; its valid look-alike loads
    good = tmp_path / "ok.yaml"
    good.write_text("plans:\n  - name: a\n    metrics: [mae]\n    steps:\n      - {model: MLP, params: {h: 2}}\n",
                    encoding="utf-8")
    assert loader.read_file(good)[0]["metrics"] == ["mae"]
    bad = tmp_path / "bad.yaml"
    bad.write_text(good.read_text(encoding="utf-8").replace("[mae]", "5"), encoding="utf-8")
    with pytest.raises(loader.PlanFileError) as e:
        loader.read_file(bad)
    assert str(e.value).startswith(f"{bad}:2: plan 'a': metrics: ") and "\n" not in str(e.value)


def test_validation_returns_the_resolved_plan_and_run_executes_it_on_injected_frames(nf_registry, tmp_path,
                                                                                  monkeypatch):
    engine, _ = nf_registry
    loader.store_plans(engine, [loader._plan(PLAN, "test")])
    verdict = validator.validate_plan(engine, "typed_mlp", record=False, miniature=False)
    assert isinstance(verdict, Validation) and verdict == [] and verdict.ok
    plan = verdict.plan
    assert plan.resolved and [s.kind for s in plan.steps] == ["model", "core", "core", "core", "evaluate"]
    assert [s.short for s in plan.steps] == ["model", "__init__", "fit", "cross_validation", "evaluate"]
    assert plan.steps[0].qualname.endswith(".MLP") and plan.plan_id is not None
    assert verdict.frames["df"]["unique_id"].nunique() == plan_data.N_SERIES
    # a plan that breaks a rule: the verdict lists it (as before), the resolved plan is still there to read
    bad = loader._plan({**PLAN, "name": "typed_bad", "steps": [
        {"model": "MLP", "params": {"h": 2, "input_size": 8, "max_stepz": 1}}] + PLAN["steps"][1:]}, "test")
    v2 = validator.validate_plan(engine, bad, record=False, miniature=False)
    assert [v.rule for v in v2] == ["unknown_argument"] and v2.plan.steps[0].kind == "model"

    # injected frames (3 series instead of the named set's 2) and an injected Naive baseline: nothing is loaded
    frames = plan_data.synthetic(n_series=3)
    loads = []
    real_load = plan_data.load
    monkeypatch.setattr(plan_data, "load", lambda *a, **k: loads.append(a) or real_load(*a, **k))
    out = runner.run_plan(engine, plan, work_root=tmp_path, miniature=False, frames=frames,
                          baselines=_naive_frame(frames, n_windows=2, h=2))
    assert isinstance(out, PlanRun) and out.status == "success" and out["status"] == "success", out
    assert loads == []
    with engine.connect() as conn:
        uris = dict(conn.execute(text("SELECT kind, uri FROM run_artifact WHERE execution_id = :e"),
                                 {"e": out.execution_id}).all())
        naive_mae = conn.execute(text("""SELECT value FROM run_metric WHERE execution_id = :e AND model = 'Naive'
            AND metric = 'mae' AND unique_id IS NULL AND "window" IS NULL"""), {"e": out.execution_id}).scalar()
    fc = pd.read_parquet(uris["forecasts_with_baselines"])
    assert fc["unique_id"].nunique() == 3  # the injected frames were used
    assert (fc["Naive"] == 1e6).all()  # the injected baseline, not a computed one
    assert naive_mae > 1e5
    # the look-alike: without injection the named data set is loaded (and Naive is computed from it)
    out2 = runner.run_plan(engine, "typed_mlp", work_root=tmp_path, miniature=False)
    assert out2.status == "success" and len(loads) == 1
    with engine.connect() as conn:
        uri2 = conn.execute(text("SELECT uri FROM run_artifact WHERE execution_id = :e AND kind = "
                                 "'forecasts_with_baselines'"), {"e": out2.execution_id}).scalar()
    fc2 = pd.read_parquet(uri2)
    assert fc2["unique_id"].nunique() == plan_data.N_SERIES and (fc2["Naive"] != 1e6).all()
    # a stored plan is required to record an execution
    with pytest.raises(ValueError, match="store it first"):
        runner.run_plan(engine, Plan.parse(PLAN), work_root=tmp_path)


def _naive_frame(frames, n_windows: int, h: int) -> pd.DataFrame:
    """A constant 'Naive' baseline on every (unique_id, ds, cutoff) a cross_validation of the frames produces."""
    rows = []
    for uid, part in frames["df"].groupby("unique_id"):
        ds = list(part["ds"])
        for w in range(n_windows):
            cut = len(ds) - h * (n_windows - w)
            rows += [{"unique_id": uid, "ds": ds[cut + i], "cutoff": ds[cut - 1], "Naive": 1e6} for i in range(h)]
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------------- one read
def test_a_retrain_and_a_prediction_read_the_gold_tables_once(loto6_trained, monkeypatch):
    from fcast_assets.features import gold
    from fcast_assets.lake import games
    from fcast_assets.models import train as T

    for k, v in loto6_trained["env"].items():
        monkeypatch.setenv(k, v)
    eng = loto6_trained["engine"]
    features = gold.gold_uri(games.get_game(eng, "loto6"), "features")
    reads: list[str] = []
    real_read = deltaio.read

    def counting(uri, *a, **k):  # the real reader, counted
        reads.append(str(uri))
        return real_read(uri, *a, **k)

    monkeypatch.setattr(deltaio, "read", counting)
    row = T.find_model(eng, "loto6", "N1")
    out = T.retrain(eng, row.model_id, reason="read once")
    assert out["version"] == int(row.version) + 1
    assert reads.count(features) == 1, reads
    reads.clear()
    pred = T.predict(eng, row.model_id)
    assert pred["rows"] >= 1 and reads.count(features) == 1, reads
    # the look-alike: validating the stored training plan without injected frames reads the table again
    reads.clear()
    verdict = validator.validate_plan(eng, out["plan"], record=False, miniature=False)
    assert reads.count(features) == 1 and verdict.plan.data.gold == GoldRef.parse("loto6.N1")
