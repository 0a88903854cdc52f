"""Lake reliability: result-file URLs per shared/LOTTERY_SOURCES.md, a refusing site (403) and network errors as
one clear line with nothing changed, the manual path (`fcast game ingest`), duplicate draw numbers as DQ issues,
`fcast game add --update` changing only the given fields, bounds at `game add`. No network: a fake HTTP layer."""

from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlmodel import Session, select

from fcast_assets.db.dataset_models import DatasetDqIssue, DatasetGameSlot, DatasetSource, DatasetVersion
from fcast_assets.lake import bronze as B
from fcast_assets.lake import deltaio, games, pipeline
from fcast_assets.lake.cli import game as game_cli
from fcast_assets.lake.games import GameSpec, default_games
from fcast_assets.lake.sources import (
    FileSource,
    Scraper,
    SourceError,
    SourceRefusedError,
    SourceUnavailableError,
    embedded_dir,
)

FIX = embedded_dir() / "fixtures"
SPECS = {d["code"]: GameSpec.from_dict(d) for d in default_games()}
BASE = "https://www.mizuhobank.co.jp/retail/takarakuji"
# shared/LOTTERY_SOURCES.md, "Per-draw CSV files": path and file code per game, NNNN = draw number, 4 digits
DOC_URLS = {
    "numbers3": BASE + "/numbers/csv/A100{:04d}.CSV",
    "numbers4": BASE + "/numbers/csv/A100{:04d}.CSV",
    "miniloto": BASE + "/loto/miniloto/csv/A101{:04d}.CSV",
    "loto6": BASE + "/loto/loto6/csv/A102{:04d}.CSV",
    "loto7": BASE + "/loto/loto7/csv/A103{:04d}.CSV",
    "bingo5": BASE + "/bingo/bingo5/csv/A104{:04d}.CSV",
}


class FakeResponse:
    def __init__(self, status, content=b""):
        self.status_code, self.content, self.headers = status, content, {}


class FakeSession:
    def __init__(self, answer):
        self.answer, self.calls = answer, []

    def get(self, url, timeout=None, headers=None):
        self.calls.append(url)
        a = self.answer(url) if callable(self.answer) else self.answer
        if isinstance(a, Exception):
            raise a
        return a


def _scraper(tpl, answer, **kw):
    return Scraper(url_template=tpl, session=FakeSession(answer), sleep=lambda x: None, min_interval_s=0, **kw)


def _one_line(text: str) -> str:
    lines = [x for x in text.strip().splitlines() if x.strip()]
    assert len(lines) == 1, text
    assert "Traceback" not in text
    return lines[0]


# ------------------------------------------------------------------------------------------------ 1. URLs
@pytest.mark.parametrize("code", sorted(DOC_URLS))
@pytest.mark.parametrize("draw_no", [1, 521, 2141])
def test_source_url_matches_the_document(code, draw_no):
    src = next(d["source"] for d in default_games() if d["code"] == code)
    assert src["url"].format(draw_no=draw_no) == DOC_URLS[code].format(draw_no)


def test_scraper_uses_documented_urls_and_stale_seeded_urls_are_repaired(lake_env):
    eng = lake_env["engine"]
    for code, doc in DOC_URLS.items():
        s = pipeline.scraper_for(eng, games.get_game(eng, code))
        assert s.url_template.format(draw_no=12) == doc.format(12)
    # a database seeded by the old games.yaml (A105 under loto/ for bingo5) is repaired on the next seed
    gid = games.get_game(eng, "bingo5").game_id
    with Session(eng) as s:
        src = s.exec(select(DatasetSource).where(DatasetSource.game_id == gid)).one()
        src.url = games.STALE_SOURCE_URLS["bingo5"]
        s.add(src)
        s.commit()
    games.seed_games(eng)
    assert pipeline.scraper_for(eng, games.get_game(eng, "bingo5")).url_template.format(draw_no=7) == \
        DOC_URLS["bingo5"].format(7)


# ------------------------------------------------------------------------------------------------ 2. 403 / network
def test_403_is_a_one_line_refusal_not_retried():
    tpl = DOC_URLS["loto6"].replace("{:04d}", "{draw_no:04d}")
    s = _scraper(tpl, FakeResponse(403), retries=3)
    with pytest.raises(SourceRefusedError) as ei:
        s.fetch_new(SPECS["loto6"], after_draw_no=2139)
    msg = str(ei.value)
    assert "\n" not in msg and "refused" in msg and "nothing changed" in msg
    assert "browser" in msg and "fcast game ingest loto6 FILE" in msg
    assert len(s.session.calls) == 1  # a refusal is not retried


def test_network_errors_after_retries_are_one_line():
    tpl = "https://example.invalid/A102{draw_no:04d}.CSV"
    s = _scraper(tpl, ConnectionError("connection reset\nby peer"), retries=2)
    with pytest.raises(SourceUnavailableError) as ei:
        s.fetch_new(SPECS["loto6"], after_draw_no=2139)
    msg = str(ei.value)
    assert "\n" not in msg and "failed after 3 attempts" in msg and "fcast game ingest loto6" in msg
    assert isinstance(ei.value, RuntimeError) and isinstance(ei.value, SourceError)


def test_404_is_no_new_draw():
    s = _scraper("https://example.invalid/{draw_no}", FakeResponse(404))
    assert s.fetch_new(SPECS["loto7"], after_draw_no=696) == []


def test_refused_scrape_changes_nothing_in_the_lake(lake_env):
    eng = lake_env["engine"]
    spec = games.get_game(eng, "loto6")
    first = pipeline.ingest_bronze(eng, spec)
    with Session(eng) as s:
        n_versions = len(s.exec(select(DatasetVersion)).all())
    scraper = _scraper(pipeline.scraper_for(eng, spec).url_template, FakeResponse(403))
    with pytest.raises(SourceRefusedError):
        pipeline.ingest_bronze(eng, spec, scraper=scraper)
    assert deltaio.current_version(first["uri"]) == first["delta_version"]
    with Session(eng) as s:
        assert len(s.exec(select(DatasetVersion)).all()) == n_versions


def test_manual_ingest_uses_the_scraper_parser(lake_env):
    eng = lake_env["engine"]
    pipeline.ingest_bronze(eng, games.get_game(eng, "loto6"))  # the shipped history (draws 1..2139)
    r = CliRunner().invoke(game_cli, ["ingest", "loto6", str(FIX / "mizuho_loto6_A1022141.csv")])
    assert r.exit_code == 0, r.output + r.stderr
    assert "1 new draw(s)" in r.stdout and "0 rule error" in r.stdout
    final = B.read_bronze(pipeline.bronze_uri(games.get_game(eng, "loto6")))
    row = final[final["draw_no"] == 2141].iloc[0]
    assert (int(row["n6"]), int(row["b1"]), row["source"]) == (41, 1, "manual:mizuho_loto6_A1022141.csv")
    # the same file again changes nothing; a loto6 file is not a loto7 file: one line, exit 1, nothing written
    r = CliRunner().invoke(game_cli, ["ingest", "loto6", str(FIX / "mizuho_loto6_A1022141.csv")])
    assert r.exit_code == 0 and "0 new draw(s)" in r.stdout
    r = CliRunner().invoke(game_cli, ["ingest", "loto7", str(FIX / "mizuho_loto6_A1022141.csv")])
    assert r.exit_code == 1
    line = _one_line(r.stderr)
    assert "mizuho_loto6_A1022141.csv" in line and "not a loto7 result file" in line
    assert not Path(pipeline.bronze_uri(games.get_game(eng, "loto7"))).joinpath("_delta_log").exists()
    r = CliRunner().invoke(game_cli, ["ingest", "nosuch", str(FIX / "mizuho_loto6_A1022141.csv")])
    assert r.exit_code == 1 and "unknown game" in _one_line(r.stderr)


# ------------------------------------------------------------------------------------------------ 3. duplicates
def _rec(no, date_, nums):
    from datetime import date

    r = {"draw_no": no, "draw_date": date.fromisoformat(date_), "source": "t"}
    r.update({f"n{i}": v for i, v in enumerate(nums[:6], 1)})
    r["b1"] = nums[6]
    return r


def test_to_bronze_duplicates_are_issues_not_silent():
    spec = SPECS["loto6"]
    a = _rec(1, "2000-10-05", [2, 8, 10, 13, 27, 30, 39])
    conflict = _rec(1, "2000-10-05", [1, 8, 10, 13, 27, 30, 39])
    issues: list = []
    df = B.to_bronze(spec, [a, dict(a), conflict], issues=issues)
    assert len(df) == 1 and int(df.loc[0, "n1"]) == 2  # the first row is kept, not the last
    assert [(i["rule"], i["severity"]) for i in issues] == [("duplicate_draw_no", "warn"),
                                                            ("duplicate_draw_no", "error")]
    assert issues[1]["detail"]["duplicate"]["n1"] == 1
    assert not B.mark_dq(df, issues)["dq_ok"].iloc[0]


def test_history_with_conflicting_duplicate_is_a_dq_error(lake_env, tmp_path):
    eng = lake_env["engine"]
    spec = games.get_game(eng, "loto6")
    d = tmp_path / "hist"
    d.mkdir()
    (d / "loto6.csv").write_text("draw_no,draw_date,n1,n2,n3,n4,n5,n6,b1\n"
                                 "1,2000-10-05,2,8,10,13,27,30,39\n"
                                 "2,2000-10-12,1,9,16,20,21,43,5\n"
                                 "2,2000-10-12,1,9,16,20,21,43,5\n"  # identical: dropped, warning
                                 "3,2000-10-19,1,2,3,4,5,6,7\n"
                                 "3,2000-10-19,9,10,11,12,13,14,15\n", encoding="utf-8")  # conflict: error
    r = pipeline.ingest_bronze(eng, spec, file_source=FileSource(dirs=(d,)))
    assert r["row_count"] == 3 and r["errors"] == 1
    with Session(eng) as s:
        rows = s.exec(select(DatasetDqIssue).where(DatasetDqIssue.dataset_version_id == r["dataset_version_id"],
                                                   DatasetDqIssue.rule == "duplicate_draw_no")).all()
        assert sorted((x.draw_no, x.severity) for x in rows) == [(2, "warn"), (3, "error")]
    final = B.read_bronze(r["uri"]).set_index("draw_no")
    assert int(final.loc[3, "n1"]) == 1 and not final.loc[3, "dq_ok"] and final.loc[2, "dq_ok"]


# ------------------------------------------------------------------------------------------------ 4./5. game add
def _add(*args):
    return CliRunner().invoke(game_cli, ["add", *args])


def test_update_changes_only_the_given_fields(lake_env):
    eng = lake_env["engine"]
    r = _add("pick3x", "--name", "Pick Three", "--n-main", "3", "--min", "1", "--max", "20", "--weekdays", "mon,thu")
    assert r.exit_code == 0, r.stderr
    r = _add("pick3x", "--update", "--max", "30")
    assert r.exit_code == 0, r.stderr
    g = games.get_game(eng, "pick3x")
    assert (g.name, g.draw_weekdays, g.n_main, g.number_min, g.number_max) == ("Pick Three", ("mon", "thu"), 3, 1, 30)
    # bingo5: a new name keeps the weekdays and the per-slot ranges
    r = _add("bingo5", "--update", "--name", "Bingo Five")
    assert r.exit_code == 0, r.stderr
    b5 = games.get_game(eng, "bingo5")
    assert (b5.name, b5.draw_weekdays, b5.n_main, b5.order_matters) == ("Bingo Five", ("wed",), 8, True)
    assert b5.rules["slot_ranges"][2] == [11, 15]
    with Session(eng) as s:
        slot = s.exec(select(DatasetGameSlot).where(DatasetGameSlot.game_id == b5.game_id,
                                                    DatasetGameSlot.slot_code == "N3")).one()
        assert (slot.number_min, slot.number_max) == (11, 15)
    # the source URL is kept too
    assert pipeline.scraper_for(eng, b5).url_template.format(draw_no=1) == DOC_URLS["bingo5"].format(1)


@pytest.mark.parametrize("args,needle", [
    (["newg", "--n-main", "51", "--min", "1", "--max", "99"], "n_main must be 1..50"),
    (["newg", "--n-main", "3", "--n-bonus", "60", "--min", "1", "--max", "99"], "n_bonus 0..50"),
    (["newg", "--n-main", "3", "--min", "1", "--max", str(2 ** 31)], "32-bit"),
    (["newg", "--n-main", "3", "--min", str(-(2 ** 31) - 1), "--max", "5"], "32-bit"),
    (["newg", "--n-main", "3", "--min", "9", "--max", "5"], "number_min (9) must be <= number_max (5)"),
    (["newg", "--n-main", "3", "--min", "1", "--max", "9", "--weekdays", "mon,funday"], "unknown day"),
    (["newg", "--n-main", "3"], "needs --min, --max"),
    (["loto6", "--name", "x"], "exists; add --update"),
    (["nosuch", "--update", "--name", "x"], "does not exist"),
    (["loto6", "--update", "--n-main", "0"], "n_main must be 1..50"),
    (["newg", "--n-main", "3", "--min", "1", "--max", "9", "--source-url", "https://x/A.CSV"], "{draw_no}"),
])
def test_bad_game_add_is_one_line_and_nonzero(lake_env, args, needle):
    r = _add(*args)
    assert r.exit_code == 1
    line = _one_line(r.stderr)
    assert line.startswith("error: ") and needle in line, line
    assert games.get_game(lake_env["engine"], "loto6").n_main == 6
