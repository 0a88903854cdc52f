"""Plain lake modules: games as data, bronze (row counts, idempotent merge, DQ issues), silver, profile, versions."""

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlmodel import Session, select

from fcast_assets.db.dataset_models import DatasetDqIssue, DatasetGame, DatasetGameSlot, DatasetVersion
from fcast_assets.db.engine import get_engine
from fcast_assets.lake import deltaio, games, pipeline, profile
from fcast_assets.lake.silver import transforms
from fcast_assets.lake.sources import FileSource, embedded_dir

COUNTS = {"numbers3": 7054, "numbers4": 7054, "miniloto": 1402, "loto6": 2139, "loto7": 696, "bingo5": 489}


@pytest.fixture
def eng(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("FCAST_HOME", str(tmp_path))
    monkeypatch.setenv("FCAST_LAKE", str(tmp_path / "lake"))
    monkeypatch.setenv("FCAST_DB_URL", f"sqlite:///{tmp_path / 'meta.db'}")
    monkeypatch.delenv("FCAST_ENGINE", raising=False)
    monkeypatch.delenv("FCAST_SCRAPER", raising=False)
    e = get_engine(f"sqlite:///{tmp_path / 'meta.db'}")
    games.seed_games(e)
    return e


def test_seed_games_rows_and_slots(eng):
    with Session(eng) as s:
        gs = {g.code: g for g in s.exec(select(DatasetGame)).all()}
        assert set(gs) == set(COUNTS)
        loto7 = gs["loto7"]
        assert (loto7.n_main, loto7.n_bonus, loto7.number_min, loto7.number_max) == (7, 2, 1, 37)
        assert gs["numbers3"].allow_repeat and gs["numbers3"].order_matters
        slots = s.exec(select(DatasetGameSlot).where(DatasetGameSlot.game_id == loto7.game_id)
                       .order_by(DatasetGameSlot.slot_index)).all()
        assert [x.slot_code for x in slots] == ["N1", "N2", "N3", "N4", "N5", "N6", "N7", "B1", "B2"]
        assert [x.role for x in slots][-2:] == ["bonus", "bonus"]
        b5 = s.exec(select(DatasetGameSlot).where(DatasetGameSlot.game_id == gs["bingo5"].game_id,
                                                  DatasetGameSlot.slot_code == "N3")).one()
        assert (b5.number_min, b5.number_max) == (11, 15)
    # seeding again adds nothing and keeps a deactivation
    games.set_active(eng, "bingo5", False)
    assert games.seed_games(eng) == []
    assert "bingo5" not in games.active_game_codes(eng)


def test_bronze_all_games_match_csv_and_reingest_is_idempotent(eng):
    for code, n in COUNTS.items():
        spec = games.get_game(eng, code)
        r = pipeline.ingest_bronze(eng, spec)
        assert r["row_count"] == n and r["inserted"] == n and r["errors"] == 0, (code, r["errors"])
        csv = pd.read_csv(embedded_dir() / f"{code}.csv")
        lake = deltaio.read(r["uri"]).sort_values("draw_no").reset_index(drop=True)
        for c in spec.number_cols:
            assert (lake[c].astype(int).to_numpy() == csv[c].to_numpy()).all()
        assert str(lake["draw_date"].iloc[-1]) == csv["draw_date"].iloc[-1]
    spec = games.get_game(eng, "loto7")
    before = deltaio.current_version(pipeline.bronze_uri(spec))
    again = pipeline.ingest_bronze(eng, spec)
    assert again["inserted"] == 0 and again["written"] == 0 and again["row_count"] == COUNTS["loto7"]
    assert deltaio.current_version(pipeline.bronze_uri(spec)) == before  # nothing rewritten
    with Session(eng) as s:
        vs = s.exec(select(DatasetVersion).where(DatasetVersion.game_id == spec.game_id)).all()
    assert len(vs) == 2 and vs[0].source_hash == vs[1].source_hash
    assert vs[1].lake_uri.endswith(f"game=loto7@v{before}")
    assert (vs[1].first_draw_date, vs[1].last_draw_date) == (date(2013, 4, 5), date(2026, 9, 25))


def test_new_draws_merge_and_a_changed_draw_is_a_dq_error(eng):
    spec = games.get_game(eng, "loto7")
    pipeline.ingest_bronze(eng, spec)
    uri = pipeline.bronze_uri(spec)
    new = {"draw_no": 697, "draw_date": date(2026, 10, 2), "n1": 1, "n2": 2, "n3": 3, "n4": 4, "n5": 5, "n6": 6,
           "n7": 7, "b1": 8, "b2": 9, "source": "mizuho"}
    stored = deltaio.read(uri).set_index("draw_no").loc[696]
    dissent = {"draw_no": 696, "draw_date": date(2026, 9, 25), "source": "mizuho",
               **{c: int(stored[c]) for c in spec.number_cols}, "n1": 9}  # a valid draw, one number differs
    assert int(stored["n1"]) == 10 and 9 not in {int(stored[c]) for c in spec.number_cols}
    r = pipeline.ingest_bronze(eng, spec, records=[dissent, new])
    assert r["inserted"] == 1 and r["row_count"] == 697 and r["changed"] == 1
    assert r["errors"] == 1 and r["conflicts"] == [696] and r["replaced"] == [] and r["corrected"] == []
    lake = deltaio.read(r["uri"]).set_index("draw_no")
    assert lake.loc[696, "n1"] == 10 and lake.loc[696, "source"].startswith("embedded")  # kept, not overwritten
    assert lake.loc[697, "source"] == "mizuho"
    err = [i for i in r["issues"] if i["rule"] == "source_disagreement" and "incoming" in i["detail"]]
    assert len(err) == 1 and err[0]["severity"] == "error"
    assert err[0]["detail"]["incoming"]["n1"] == 9 and err[0]["detail"]["stored"]["n1"] == 10
    msg = err[0]["detail"]["message"]
    assert "\n" not in msg and msg.startswith("loto7 draw 696: stored 2026-09-25 [10 ")
    assert "vs incoming 2026-09-25 [9 " in msg and "from mizuho" in msg
    assert "fcast game ingest loto7 FILE --replace-changed" in msg and "overwrite_changed: true" in msg
    with Session(eng) as s:
        row = s.exec(select(DatasetDqIssue).where(DatasetDqIssue.dataset_version_id == r["dataset_version_id"],
                                                  DatasetDqIssue.rule == "source_disagreement",
                                                  DatasetDqIssue.severity == "error")).one()
        assert row.draw_no == 696 and row.detail["message"] == msg
    # accepted on request: replaced, a warning that says so, no error
    r = pipeline.ingest_bronze(eng, spec, records=[dissent], overwrite_changed=True)
    assert r["replaced"] == [696] and r["errors"] == 0
    assert [i["rule"] for i in r["issues"] if i["draw_no"] == 696] == ["replaced_draw"]
    assert deltaio.read(uri).set_index("draw_no").loc[696, "n1"] == 9
    # the replaced version delivered again by a stale source: kept as stored, a warning, not an error
    old = {**dissent, "n1": 10, "source": "embedded:loto7.csv"}
    r = pipeline.ingest_bronze(eng, spec, records=[old])
    assert r["errors"] == 0 and [i["rule"] for i in r["issues"] if i["draw_no"] == 696] == ["superseded_draw"]
    assert deltaio.read(uri).set_index("draw_no").loc[696, "n1"] == 9


def test_identical_redelivery_is_no_issue_and_no_new_version(eng):
    spec = games.get_game(eng, "loto7")
    first = pipeline.ingest_bronze(eng, spec)
    stored = deltaio.read(first["uri"]).set_index("draw_no").loc[696]
    same = {"draw_no": 696, "draw_date": stored["draw_date"], "source": "mizuho",
            **{c: int(stored[c]) for c in spec.number_cols}}
    r = pipeline.ingest_bronze(eng, spec, records=[same])
    assert r["changed"] == 0 and r["written"] == 0 and r["errors"] == 0 and r["conflicts"] == []
    assert not [i for i in r["issues"] if i["draw_no"] == 696]
    assert deltaio.current_version(first["uri"]) == first["delta_version"]


def test_rule_breaking_rows_land_in_dq_issue(eng, tmp_path):
    spec = games.get_game(eng, "loto6")
    recs = FileSource().read(spec)[:50]
    recs[10] = {**recs[10], "n6": 44}  # out of range (1-43)
    recs[20] = {**recs[20], "n2": recs[20]["n1"]}  # repeated number, not ascending
    recs[30] = {**recs[30], "b1": recs[30]["n3"]}  # bonus repeats a main number
    r = pipeline.ingest_bronze(eng, spec, records=recs)
    assert r["row_count"] == 50  # nothing dropped
    rules = sorted((i["draw_no"], i["rule"]) for i in r["issues"] if i["severity"] == "error")
    assert rules == [(11, "number_out_of_range"), (21, "repeated_main_number"), (31, "bonus_repeats_number")]
    with Session(eng) as s:
        rows = s.exec(select(DatasetDqIssue).where(DatasetDqIssue.dataset_version_id == r["dataset_version_id"])).all()
    assert {(x.draw_no, x.rule, x.unique_id) for x in rows} >= {(11, "number_out_of_range", "loto6_N6")}
    lake = deltaio.read(r["uri"]).set_index("draw_no")
    assert not lake.loc[11, "dq_ok"] and lake.loc[12, "dq_ok"]
    silver = pipeline.build_silver_table(eng, spec)
    assert silver["draws"] == 47  # silver only holds rule-conforming draws


def test_silver_long_format_and_transforms(eng):
    spec = games.get_game(eng, "loto7")
    pipeline.ingest_bronze(eng, spec)
    res = pipeline.build_silver_table(eng, spec)
    df = deltaio.read(res["uri"])
    assert list(df.columns) == ["unique_id", "ds", "draw_no", "y", "slot", "transform"]
    assert res["series"] == 9 * len(transforms()) + 1  # every slot with its variants, SUM raw only
    assert pipeline.silver_issues(spec, df, 696) == []
    n1 = df[df.unique_id == "loto7_N1"].sort_values("draw_no")
    csv = pd.read_csv(embedded_dir() / "loto7.csv")
    assert len(n1) == 696 and (n1["y"].to_numpy() == csv["n1"].to_numpy()).all()
    assert str(n1["ds"].iloc[0].date()) == "2013-04-05"
    cs = df[df.unique_id == "loto7_N1_cumsum"].sort_values("draw_no")["y"].to_numpy()
    assert np.allclose(cs, csv["n1"].cumsum().to_numpy())
    r5 = df[df.unique_id == "loto7_B2_rsum5"].sort_values("draw_no")
    assert len(r5) == 692 and r5["y"].iloc[0] == csv["b2"].iloc[:5].sum()
    sm = df[df.unique_id == "loto7_SUM"].sort_values("draw_no")["y"].to_numpy()
    assert (sm == csv[[f"n{i}" for i in range(1, 8)]].sum(axis=1).to_numpy()).all()
    par = df[df.unique_id == "loto7_N3_parity"]["y"]
    assert set(par.unique()) <= {0.0, 1.0}
    with Session(eng) as s:
        v = s.exec(select(DatasetVersion).where(DatasetVersion.dataset_version_id == res["dataset_version_id"])).one()
    assert v.layer == "silver" and v.row_count == len(df) and v.lake_uri.endswith("@v0")


def test_theoretical_distributions():
    spec = games.GameSpec.from_dict(next(d for d in games.default_games() if d["code"] == "loto6"))
    for k in range(1, 7):
        pmf = profile.slot_pmf(spec, f"N{k}")
        assert abs(sum(pmf.values()) - 1) < 1e-12
    assert min(profile.slot_pmf(spec, "N1")) == 1 and max(profile.slot_pmf(spec, "N6")) == 43
    assert profile.slot_pmf(spec, "B1") == {x: 1 / 43 for x in range(1, 44)}
    s = profile.sum_pmf(spec)
    assert abs(sum(s.values()) - 1) < 1e-9 and min(s) == 21 and max(s) == 43 + 42 + 41 + 40 + 39 + 38
    n3 = games.GameSpec.from_dict(next(d for d in games.default_games() if d["code"] == "numbers3"))
    assert profile.sum_pmf(n3)[0] == pytest.approx(1e-3) and max(profile.sum_pmf(n3)) == 27


def test_profile_detects_non_random_series():
    spec = games.GameSpec.from_dict(next(d for d in games.default_games() if d["code"] == "numbers3"))
    rng = np.random.default_rng(0)
    fair = profile.profile_series(spec, "fair", "N1", rng.integers(0, 10, 3000))
    biased = profile.profile_series(spec, "biased", "N1", np.r_[rng.integers(0, 10, 1500), np.full(1500, 7)])
    cyclic = profile.profile_series(spec, "cyclic", "N1", np.tile(np.arange(10), 300))
    v = lambda rows: next(r for r in rows if r["metric"] == "verdict_random")  # noqa: E731
    assert v(fair)["value"] == 1.0
    assert v(biased)["value"] == 0.0 and "chi2" in v(biased)["detail"]["verdict"]
    assert v(cyclic)["value"] == 0.0  # perfectly uniform counts, but serially predictable
    se = next(r["value"] for r in cyclic if r["metric"] == "spectral_entropy")
    wn = next(r["value"] for r in fair if r["metric"] == "spectral_entropy_white_noise")
    assert se < 0.5 < wn


def test_profile_serial_statistics_match_their_formulas():
    """ACF, Ljung-Box and the runs test (statsmodels) against the textbook formulas on a series small enough
    to count by hand: 1, 2, 1, 2, ... (lag-1 correlation -(n-1)/n, every step a run)."""
    from scipy import stats as st

    n = 30
    x = np.array([1.0, 2.0] * (n // 2))
    r = profile.acf(x, 3)
    assert r[0] == 1 and r[1] == pytest.approx(-(n - 1) / n) and r[2] == pytest.approx((n - 2) / n)
    q = n * (n + 2) * sum(r[k] ** 2 / (n - k) for k in (1, 2, 3))
    assert profile.ljung_box(x, 3) == pytest.approx((q, st.chi2.sf(q, 3)))
    n1 = n2 = n // 2  # median 1.5: nothing dropped; 30 runs
    mu, var = 2 * n1 * n2 / n + 1, 2 * n1 * n2 * (2 * n1 * n2 - n) / (n ** 2 * (n - 1))
    z = (n - mu) / np.sqrt(var)
    assert profile.runs_test(x) == pytest.approx((z, 2 * st.norm.sf(z)))
    assert profile.acf(np.ones(8), 20).tolist() == [0.0] * 21  # constant: no correlation, lags past the end padded
    assert profile.ljung_box(np.ones(8), 3) == (0.0, 1.0) and profile.runs_test(np.ones(8)) == (0.0, 1.0)


def test_profile_for_a_game_has_numbers_and_verdict(eng):
    spec = games.get_game(eng, "miniloto")
    pipeline.ingest_bronze(eng, spec)
    pipeline.build_silver_table(eng, spec)
    res = pipeline.build_profile(eng, spec)
    tab = profile.summary_table(res["profile"])
    series = [f"miniloto_{s}" for s in ["N1", "N2", "N3", "N4", "N5", "B1", "SUM"]]
    for uid in series:
        row = tab.loc[uid]
        assert row["length"] == 1402
        for m in ("chi2_pvalue", "entropy_bits", "acf_lag1", "ljung_box_pvalue", "runs_pvalue", "spectral_entropy",
                  "verdict_random"):
            assert np.isfinite(row[m]), (uid, m)
    assert res["verdict_random"] in (0.0, 1.0) and res["series_profiled"] == 7


def test_lake_tables_on_both_databases(engine, tmp_path, monkeypatch):
    """Same stages on SQLite and (marker `postgres`, FCAST_TEST_PG_URL) PostgreSQL: JSON details, versions."""
    monkeypatch.setenv("FCAST_LAKE", str(tmp_path / "lake"))
    games.seed_games(engine)
    spec = games.get_game(engine, "bingo5")
    b = pipeline.ingest_bronze(engine, spec)
    s = pipeline.build_silver_table(engine, spec)
    p = pipeline.build_profile(engine, spec)
    assert b["row_count"] == 489 and s["draws"] == 489 and p["rows"] > 0
    with Session(engine) as sess:
        v = sess.exec(select(DatasetVersion).where(DatasetVersion.layer == "silver")).one()
        assert v.stats["engine"] == "pandas" and v.row_count == s["row_count"]


def test_shipped_source_disagreements_are_warnings_not_errors(eng):
    spec = games.get_game(eng, "loto7")
    r = pipeline.ingest_bronze(eng, spec)
    assert r["errors"] == 0
    dis = sorted(i["draw_no"] for i in r["issues"] if i["rule"] == "source_disagreement")
    assert dis == [2, 595, 629]
    # draw 2 stores its bonus numbers as 32, 12: a storage-order warning
    assert [(i["draw_no"], i["severity"]) for i in r["issues"] if i["rule"] == "bonus_not_ascending"] == [(2, "warn")]
    with Session(eng) as s:
        n = len(s.exec(select(DatasetDqIssue).where(DatasetDqIssue.dataset_version_id == r["dataset_version_id"],
                                                    DatasetDqIssue.severity == "warn")).all())
    assert n == 4


def test_changed_draw_decisions_on_both_databases(engine, tmp_path, monkeypatch):
    """conflict (error) -> replaced on request -> the old version again is a stale copy (warning), on SQLite and
    PostgreSQL (the stale-copy lookup reads the JSON detail of earlier DQ rows)."""
    monkeypatch.setenv("FCAST_LAKE", str(tmp_path / "lake"))
    games.seed_games(engine)
    spec = games.get_game(engine, "bingo5")
    recs = FileSource().read(spec)
    pipeline.ingest_bronze(engine, spec, records=recs)
    old = recs[-1]
    other = {**old, "n1": next(v for v in range(1, 6) if v != old["n1"]), "source": "mizuho"}
    r = pipeline.ingest_bronze(engine, spec, records=[other])
    assert r["conflicts"] == [489] and r["errors"] == 1
    r = pipeline.ingest_bronze(engine, spec, records=[other], overwrite_changed=True)
    assert r["replaced"] == [489] and r["errors"] == 0
    r = pipeline.ingest_bronze(engine, spec, records=recs)
    assert r["errors"] == 0 and [i["rule"] for i in r["issues"] if i["draw_no"] == 489] == ["superseded_draw"]
    assert int(deltaio.read(r["uri"]).set_index("draw_no").loc[489, "n1"]) == other["n1"]


def test_reading_a_missing_table_creates_nothing(tmp_path):
    """A table's URI is a name: reading a missing table gives an empty frame and leaves the lake untouched; the
    first write makes the folders."""
    import pyarrow as pa

    from fcast_assets.lake import deltaio

    uri = deltaio.table_uri("gold", "features", "nogame", root=str(tmp_path / "lake"))
    assert deltaio.read(uri).empty and not deltaio.exists(uri) and deltaio.current_version(uri) is None
    assert not (tmp_path / "lake").exists()
    assert deltaio.overwrite(uri, pa.table({"x": [1, 2]})) == 0
    assert deltaio.read(uri)["x"].tolist() == [1, 2]
