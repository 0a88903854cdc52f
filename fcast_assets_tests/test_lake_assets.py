"""The lake assets through Dagster: materialize a game, a seventh game added by the CLI, the blocking DQ check,
the partition sensor, the scrape schedule, and the definitions loading."""

from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from click.testing import CliRunner
from sqlmodel import Session, select

from fcast_assets.cli import main as fcast_cli
from fcast_assets.db.dataset_models import DatasetDqIssue, DatasetProfile, DatasetVersion
from fcast_assets.db.engine import get_engine
from fcast_assets.defs.lake.assets import bronze_draws, dataset_profile, lottery_games, silver_series
from fcast_assets.defs.lake.checks import lottery_games_consistent
from fcast_assets.defs.lake.schedules import scrape_new_draws
from fcast_assets.defs.lake.sensors import game_partitions_sensor
from fcast_assets.lake import deltaio, games, pipeline
from fcast_assets.lake.sources import embedded_dir

from .conftest import resources

LAKE = [bronze_draws, silver_series, dataset_profile]


@pytest.fixture
def env(tmp_path: Path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'meta.db'}"
    monkeypatch.setenv("FCAST_HOME", str(tmp_path))
    monkeypatch.setenv("FCAST_LAKE", str(tmp_path / "lake"))
    monkeypatch.setenv("FCAST_DB_URL", url)
    monkeypatch.delenv("FCAST_ENGINE", raising=False)
    monkeypatch.delenv("FCAST_SCRAPER", raising=False)
    return {"url": url, "tmp": tmp_path, "instance": dg.DagsterInstance.ephemeral(),
            "resources": resources(url, tmp_path / "lake", spark=True)}


def _materialize(env, assets, key=None, **kw):
    return dg.materialize(assets, partition_key=key, instance=env["instance"], resources=env["resources"], **kw)


def test_definitions_load():
    from fcast_assets.definitions import defs

    d = defs()
    keys = {k.to_user_string() for k in d.resolve_asset_graph().get_all_asset_keys()}
    assert {"lottery_games", "bronze_draws", "silver_series", "dataset_profile"} <= keys
    assert d.resolve_job_def("lake_game_job") is not None
    assert d.resolve_sensor_def("game_partitions_sensor") and d.resolve_schedule_def("scrape_new_draws")


def test_materialize_game_partition(env):
    r = _materialize(env, [lottery_games, lottery_games_consistent])
    assert r.success
    assert [c.passed for c in r.get_asset_check_evaluations()] == [True]
    assert set(env["instance"].get_dynamic_partitions("game")) == {"numbers3", "numbers4", "miniloto", "loto6",
                                                                    "loto7", "bingo5"}
    r = _materialize(env, LAKE, "loto7")
    assert r.success
    mats = {m.asset_key.to_user_string(): m for m in r.get_asset_materialization_events()}
    bmeta = mats["bronze_draws"].materialization.metadata
    assert bmeta["dagster/row_count"].value == 696 and bmeta["dq_errors"].value == 0
    checks = {c.check_name: c.passed for c in r.get_asset_check_evaluations()}
    assert checks == {"draw_rules": True, "series_complete": True, "every_series_profiled": True}
    eng = get_engine(env["url"])
    spec = games.get_game(eng, "loto7")
    assert len(deltaio.read(pipeline.bronze_uri(spec))) == 696
    with Session(eng) as s:
        layers = [v.layer for v in s.exec(select(DatasetVersion).where(DatasetVersion.game_id == spec.game_id))]
        assert layers == ["bronze", "silver"]
        prof = s.exec(select(DatasetProfile).where(DatasetProfile.metric == "verdict_random")).all()
        slots = ["N1", "N2", "N3", "N4", "N5", "N6", "N7", "B1", "B2", "SUM"]
        assert {p.unique_id for p in prof} == {"loto7", *(f"loto7_{x}" for x in slots)}
    # idempotent: a second run writes no new bronze Delta version
    v0 = deltaio.current_version(pipeline.bronze_uri(spec))
    assert _materialize(env, [bronze_draws], "loto7").success
    assert deltaio.current_version(pipeline.bronze_uri(spec)) == v0


def test_seventh_game_via_cli_no_code_change(env):
    hist = env["tmp"] / "lucky5.csv"
    rows = ["draw_no,draw_date,n1,n2,n3,n4,n5,b1"]
    import numpy as np

    rng = np.random.default_rng(7)
    for i, d in enumerate(pd.date_range("2024-01-03", periods=120, freq="7D"), start=1):
        nums = sorted(rng.choice(np.arange(1, 26), 6, replace=False).tolist())
        main, bonus = sorted(nums[:5]), nums[5]
        rows.append(f"{i},{d.date()},{','.join(map(str, main))},{bonus}")
    hist.write_text("\n".join(rows) + "\n", encoding="utf-8")
    runner = CliRunner()
    out = runner.invoke(fcast_cli, ["game", "add", "lucky5", "--name", "Lucky 5", "--n-main", "5", "--n-bonus", "1",
                                    "--min", "1", "--max", "25", "--weekdays", "wed", "--history", str(hist)])
    assert out.exit_code == 0, out.output
    assert "lucky5" in runner.invoke(fcast_cli, ["game", "list"]).output
    # the sensor registers the partition (and requests a run for it)
    ctx = dg.build_sensor_context(instance=env["instance"], resources=env["resources"])
    res = game_partitions_sensor(ctx)
    added = [k for req in res.dynamic_partitions_requests for k in req.partition_keys]
    assert "lucky5" in added and any(rr.partition_key == "lucky5" for rr in res.run_requests)
    env["instance"].add_dynamic_partitions("game", added)
    r = _materialize(env, LAKE, "lucky5")
    assert r.success
    eng = get_engine(env["url"])
    spec = games.get_game(eng, "lucky5")
    assert len(deltaio.read(pipeline.bronze_uri(spec))) == 120
    silver = deltaio.read(pipeline.silver_uri(spec))
    assert set(silver[silver["transform"] == "raw"].unique_id) == {f"lucky5_{x}" for x in
                                                                 ["N1", "N2", "N3", "N4", "N5", "B1", "SUM"]}
    with Session(eng) as s:
        assert s.exec(select(DatasetProfile).where(DatasetProfile.unique_id == "lucky5_B1",
                                                   DatasetProfile.metric == "chi2_pvalue")).one().value is not None
    # deactivating removes the partition on the next sensor tick
    assert runner.invoke(fcast_cli, ["game", "deactivate", "lucky5"]).exit_code == 0
    res = game_partitions_sensor(dg.build_sensor_context(instance=env["instance"], resources=env["resources"]))
    removed = [k for req in res.dynamic_partitions_requests
               if isinstance(req, dg.DeleteDynamicPartitionsRequest) for k in req.partition_keys]
    assert "lucky5" in removed


def test_broken_row_fails_blocking_check_and_stops_silver(env):
    bad_dir = env["tmp"] / "lottery"
    bad_dir.mkdir()
    src = (embedded_dir() / "bingo5.csv").read_text(encoding="utf-8").splitlines()
    parts = src[5].split(",")
    parts[3] = "99"  # n2 of draw 5 (line 0 is the header): out of its column range 6-10
    src[5] = ",".join(parts)
    (bad_dir / "bingo5.csv").write_text("\n".join(src) + "\n", encoding="utf-8")  # user dir wins over embedded
    assert _materialize(env, [lottery_games]).success
    r = _materialize(env, LAKE, "bingo5", raise_on_error=False)
    checks = {c.check_name: c for c in r.get_asset_check_evaluations()}
    assert checks["draw_rules"].passed is False
    assert checks["draw_rules"].metadata["errors"].value >= 1
    mats = {m.asset_key.to_user_string() for m in r.get_asset_materialization_events()}
    assert "bronze_draws" in mats and "silver_series" not in mats and "dataset_profile" not in mats
    with Session(get_engine(env["url"])) as s:
        issues = s.exec(select(DatasetDqIssue).where(DatasetDqIssue.rule == "number_out_of_range")).all()
    assert [(i.draw_no, i.unique_id, i.detail["value"]) for i in issues] == [(5, "bingo5_N2", 99)]


def test_scrape_schedule_is_off_unless_enabled(env, monkeypatch):
    assert _materialize(env, [lottery_games]).success
    ctx = dg.build_schedule_context(instance=env["instance"], resources=env["resources"])
    assert isinstance(scrape_new_draws(ctx), dg.SkipReason)
    monkeypatch.setenv("FCAST_SCRAPER", "1")
    reqs = scrape_new_draws(dg.build_schedule_context(instance=env["instance"], resources=env["resources"]))
    assert len(reqs) == 6
    assert reqs[0].run_config == {"ops": {"bronze_draws": {"config": {"scrape": True}}}}


def test_all_six_games_fill_bronze_silver_and_profile(env):
    """The 'done' criterion: from a clean state, offline, every game gets bronze, silver and a profile verdict."""
    counts = {"numbers3": 7054, "numbers4": 7054, "miniloto": 1402, "loto6": 2139, "loto7": 696, "bingo5": 489}
    assert _materialize(env, [lottery_games]).success
    for code in env["instance"].get_dynamic_partitions("game"):
        assert _materialize(env, LAKE, code).success, code
    eng = get_engine(env["url"])
    for code, n in counts.items():
        spec = games.get_game(eng, code)
        assert len(deltaio.read(pipeline.bronze_uri(spec), columns=["draw_no"])) == n
        silver = deltaio.read(pipeline.silver_uri(spec), columns=["unique_id", "transform"])
        raw = set(silver.loc[silver["transform"] == "raw", "unique_id"])
        assert raw == {f"{code}_{s}" for s in spec.slot_codes} | {f"{code}_SUM"}
        with Session(eng) as s:
            verdicts = s.exec(select(DatasetProfile).where(DatasetProfile.metric == "verdict_random",
                                                           DatasetProfile.unique_id.startswith(code))).all()
        assert {v.unique_id for v in verdicts} == raw | {code} and all(v.value in (0.0, 1.0) for v in verdicts)


def test_sensor_on_fresh_database_seeds_and_adds_all_games(env):
    res = game_partitions_sensor(dg.build_sensor_context(instance=env["instance"], resources=env["resources"]))
    added = {k for req in res.dynamic_partitions_requests for k in req.partition_keys}
    assert added == {"numbers3", "numbers4", "miniloto", "loto6", "loto7", "bingo5"}
    assert {rr.partition_key for rr in res.run_requests} == added
    env["instance"].add_dynamic_partitions("game", sorted(added))
    again = game_partitions_sensor(dg.build_sensor_context(instance=env["instance"], resources=env["resources"]))
    assert not again.dynamic_partitions_requests and not again.run_requests


def _bingo5_history(env, draw5_n2: str):
    """A user copy of the bingo5 history (it wins over the packaged one) with draw 5's n2 set to ``draw5_n2``."""
    d = env["tmp"] / "lottery"
    d.mkdir(exist_ok=True)
    src = (embedded_dir() / "bingo5.csv").read_text(encoding="utf-8").splitlines()
    parts = src[5].split(",")
    parts[3] = draw5_n2  # n2 of draw 5 (line 0 is the header), column range 6-10
    src[5] = ",".join(parts)
    (d / "bingo5.csv").write_text("\n".join(src) + "\n", encoding="utf-8")


def _checks_and_mats(r):
    checks = {c.check_name: c for c in r.get_asset_check_evaluations()}
    return checks, {m.asset_key.to_user_string() for m in r.get_asset_materialization_events()}


def test_fixed_source_unblocks_the_game_on_the_next_run(env):
    """A draw breaking a rule blocks silver; the fixed file un-blocks it on the next run without any flag."""
    two = [bronze_draws, silver_series]
    orig_n2 = (embedded_dir() / "bingo5.csv").read_text(encoding="utf-8").splitlines()[5].split(",")[3]
    _bingo5_history(env, "99")
    assert _materialize(env, [lottery_games]).success
    r = _materialize(env, two, "bingo5", raise_on_error=False)
    checks, mats = _checks_and_mats(r)
    assert checks["draw_rules"].passed is False and "silver_series" not in mats
    what = checks["draw_rules"].metadata["what_to_run"].value
    assert "bingo5 draw 5" in what and "number_out_of_range" in what and "no overwrite flag needed" in what
    assert "materialize bronze_draws for partition bingo5" in what
    eng = get_engine(env["url"])
    spec = games.get_game(eng, "bingo5")
    assert not deltaio.exists(pipeline.silver_uri(spec))  # silver not built from a blocked bronze
    # the file is fixed (same draw_no, good numbers): replaced without overwrite_changed, silver advances
    _bingo5_history(env, orig_n2)
    r = _materialize(env, two, "bingo5")
    checks, mats = _checks_and_mats(r)
    assert checks["draw_rules"].passed is True and checks["series_complete"].passed is True
    assert "silver_series" in mats
    bronze = deltaio.read(pipeline.bronze_uri(spec)).set_index("draw_no")
    assert int(bronze.loc[5, "n2"]) == int(orig_n2) and bool(bronze.loc[5, "dq_ok"])
    assert len(deltaio.read(pipeline.silver_uri(spec)).query("unique_id == 'bingo5_N2'")) == 489
    with Session(eng) as s:
        fixed = s.exec(select(DatasetDqIssue).where(DatasetDqIssue.rule == "corrected_draw")).all()
    assert [(i.draw_no, i.severity) for i in fixed] == [(5, "warn")]
    assert fixed[0].detail["message"].startswith("corrected draw 5: bingo5 draw 5: stored ")


def test_good_stored_draw_vs_other_good_draw_is_an_error_and_silver_stays(env):
    """Look-alike of the fix above: both versions pass the rules, so nothing is replaced without the flag."""
    two = [bronze_draws, silver_series]
    assert _materialize(env, [lottery_games]).success
    assert _materialize(env, two, "bingo5").success
    eng = get_engine(env["url"])
    spec = games.get_game(eng, "bingo5")
    s_ver = deltaio.current_version(pipeline.silver_uri(spec))
    row = (embedded_dir() / "bingo5.csv").read_text(encoding="utf-8").splitlines()[5].split(",")
    other = next(str(v) for v in range(6, 11) if str(v) != row[3])  # another valid n2 (range 6-10)
    _bingo5_history(env, other)
    r = _materialize(env, two, "bingo5", raise_on_error=False)
    checks, mats = _checks_and_mats(r)
    assert checks["draw_rules"].passed is False and "silver_series" not in mats
    what = checks["draw_rules"].metadata["what_to_run"].value
    assert what.startswith("bingo5 draw 5: stored ") and "--replace-changed" in what
    assert "overwrite_changed: true" in what
    assert deltaio.current_version(pipeline.silver_uri(spec)) == s_ver  # stored silver as it was
    assert int(deltaio.read(pipeline.bronze_uri(spec)).set_index("draw_no").loc[5, "n2"]) == int(row[3])
    # accepting it with the run config the message names
    cfg = dg.RunConfig(ops={"bronze_draws": {"config": {"overwrite_changed": True}}})
    r = _materialize(env, two, "bingo5", run_config=cfg)
    checks, mats = _checks_and_mats(r)
    assert checks["draw_rules"].passed is True and "silver_series" in mats
    assert int(deltaio.read(pipeline.bronze_uri(spec)).set_index("draw_no").loc[5, "n2"]) == int(other)


def test_refused_site_is_a_clear_dagster_failure(env, monkeypatch):
    """bronze_draws with scraping on and a site answering 403: a Failure whose description is the one line."""
    from fcast_assets.lake import sources as SRC
    from fcast_assets_tests.test_lake_reliability import FakeResponse, FakeSession

    assert _materialize(env, [lottery_games]).success
    assert _materialize(env, [bronze_draws], "bingo5").success
    spec = games.get_game(get_engine(env["url"]), "bingo5")
    v0 = deltaio.current_version(pipeline.bronze_uri(spec))
    real = pipeline.scraper_for

    def refusing(engine, spec, **kw):
        s = real(engine, spec, **kw)
        s.session, s.sleep, s.min_interval_s = FakeSession(FakeResponse(403)), (lambda x: None), 0
        return s

    monkeypatch.setattr(pipeline, "scraper_for", refusing)
    cfg = dg.RunConfig(ops={"bronze_draws": {"config": {"scrape": True}}})
    r = _materialize(env, [bronze_draws], "bingo5", run_config=cfg, raise_on_error=False)
    assert not r.success
    failure = next(e for e in r.all_events if e.event_type_value == "STEP_FAILURE")
    err = failure.step_failure_data.user_failure_data
    assert err is not None
    line = err.description
    assert "\n" not in line and "refused the client" in line and "nothing changed" in line
    assert "fcast game ingest bingo5 FILE" in line and "A104" in line
    assert deltaio.current_version(pipeline.bronze_uri(spec)) == v0
    assert isinstance(SRC.SourceRefusedError("u", "w"), SRC.SourceError)
