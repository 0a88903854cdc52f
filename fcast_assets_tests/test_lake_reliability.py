"""Lake reliability: result-file URLs per shared/LOTTERY_SOURCES.md, a refusing site (403) and network errors as
one clear line with nothing changed, the manual path (`fcast game ingest`), duplicate draw numbers as DQ issues,
`fcast game add --update` changing only the given fields, bounds at `game add`. No network: a fake HTTP layer."""

import os
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


# ------------------------------------------------------------------------------------------------ 6. changed draws
def test_manual_ingest_of_a_changed_or_bad_draw(lake_env, tmp_path):
    """A result file whose draw breaks a rule: exit 1 with what to run; the fixed file replaces it with no flag.
    A good file that differs from a good stored draw: exit 1, kept, until --replace-changed."""
    eng = lake_env["engine"]
    spec = games.get_game(eng, "loto6")
    pipeline.ingest_bronze(eng, spec)
    text = (FIX / "mizuho_loto6_A1022141.csv").read_text(encoding="utf-8")
    bad = tmp_path / "bad_A1022141.csv"
    bad.write_text(text.replace("本数字,14,15,22,32,37,41", "本数字,14,15,22,32,37,44"), encoding="utf-8")
    r = CliRunner().invoke(game_cli, ["ingest", "loto6", str(bad)])
    assert r.exit_code == 1
    line = _one_line(r.stderr)
    assert "loto6 draw 2141" in line and "number_out_of_range" in line and "fcast game ingest loto6 FILE" in line
    uri = pipeline.bronze_uri(spec)
    row = B.read_bronze(uri).set_index("draw_no").loc[2141]
    assert int(row["n6"]) == 44 and not row["dq_ok"]  # kept and marked, never dropped
    # the fixed file: corrected without any flag
    r = CliRunner().invoke(game_cli, ["ingest", "loto6", str(FIX / "mizuho_loto6_A1022141.csv")])
    assert r.exit_code == 0, r.stderr
    assert "corrected [2141]" in r.stdout and "0 rule error" in r.stdout
    row = B.read_bronze(uri).set_index("draw_no").loc[2141]
    assert int(row["n6"]) == 41 and row["dq_ok"]
    # a good file for the same draw with other good numbers: refused (kept), then accepted on request
    other = tmp_path / "other_A1022141.csv"
    other.write_text(text.replace("本数字,14,15,22,32,37,41", "本数字,14,15,22,32,37,40"), encoding="utf-8")
    v = deltaio.current_version(uri)
    r = CliRunner().invoke(game_cli, ["ingest", "loto6", str(other)])
    assert r.exit_code == 1
    line = _one_line(r.stderr)
    assert "loto6 draw 2141: stored 2026-09-28 [14 15 22 32 37 41 + 1]" in line
    assert "incoming 2026-09-28 [14 15 22 32 37 40 + 1] from manual:other_A1022141.csv" in line
    assert "`fcast game ingest loto6 other_A1022141.csv --replace-changed`" in line
    assert deltaio.current_version(uri) == v
    r = CliRunner().invoke(game_cli, ["ingest", "loto6", str(other), "--replace-changed"])
    assert r.exit_code == 0, r.stderr
    assert "replaced [2141]" in r.stdout
    assert int(B.read_bronze(uri).set_index("draw_no").loc[2141, "n6"]) == 40


# ------------------------------------------------------------------------------------------------ 7. history files
# `fcast game add --history FILE` reads the file with the ingest parser and runs the ingest's blocking rules before
# anything is stored: a bad file leaves no game row and no copy; a look-alike (rows of a shipped history) is taken.
HEADER = "draw_no,draw_date,n1,n2,n3,n4,n5,n6,b1"
GOOD_ROWS = (embedded_dir() / "loto6.csv").read_text(encoding="utf-8").splitlines()[1:31]  # draws 1..30
NEW = ["--n-main", "6", "--n-bonus", "1", "--min", "1", "--max", "43"]


def _hist(rows: list[str], header: str = HEADER) -> str:
    return "\n".join([header, *rows]) + "\n"


def _edit(line_no: int, col: int, value: str) -> str:
    """The good rows with one cell changed (line_no counts the header as line 1, col 0 = draw_no)."""
    rows = [r.split(",") for r in GOOD_ROWS]
    rows[line_no - 2][col] = value
    return _hist([",".join(r) for r in rows])


def _swap_rows(a: int, b: int) -> list[str]:
    rows = list(GOOD_ROWS)
    rows[a], rows[b] = rows[b], rows[a]
    return rows


def _other_bonus(row: str) -> str:
    """The same draw with another (valid) bonus number."""
    parts = row.split(",")
    taken = {int(x) for x in parts[2:]}
    parts[-1] = str(min(set(range(1, 44)) - taken))
    return ",".join(parts)


BAD_HISTORIES = [
    ("a passwd file", "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1::/usr/sbin:/usr/sbin/nologin\n",
     ("line 1 (header)", "lacks columns", "draw_no,draw_date,n1,n2,n3,n4,n5,n6,b1")),
    ("a number out of range", _edit(4, 8, "99"),
     ("line 4 (draw 3)", "number_out_of_range", "value=99", "max=43")),
    ("a number beyond int32", _edit(5, 2, str(2 ** 40)), ("line 5 (draw 4)", "number_out_of_range")),
    ("a repeated main number", _edit(3, 3, GOOD_ROWS[1].split(",")[2]), ("line 3 (draw 2)", "repeated_main_number")),
    ("main numbers not ascending", _edit(6, 2, "42"), ("line 6 (draw 5)", "main_not_ascending")),
    ("a missing number", _edit(7, 4, ""), ("line 7 (draw 6)", "missing_number", "column=n3")),
    ("dates going back", _edit(8, 1, "1999-01-01"), ("line 8 (draw 7)", "draw_date_not_increasing")),
    ("a conflicting duplicate draw", _hist([*GOOD_ROWS, _other_bonus(GOOD_ROWS[2])]),
     (f"line {len(GOOD_ROWS) + 2} (draw 3)", "duplicate_draw_no")),
    ("a date that is no date", _edit(3, 1, "2000-13-45"), ("line 3 (draw 2)", "draw_date '2000-13-45'")),
    ("a number that is no number", _edit(9, 5, "x7"), ("line 9 (draw 8)", "column n4 'x7' is not an integer")),
    ("a draw_no that is no number", _edit(10, 0, "nine"), ("line 10:", "draw_no 'nine' is not an integer")),
    ("cells beyond the header", _hist([GOOD_ROWS[0] + ",7,8"]), ("line 2:", "more than the header")),
    ("a header without rows", HEADER + "\n", ("has a header but no draw rows",)),
    ("an empty file", "", ("is empty",)),
    ("a binary file", b"\x7fELF\x02\x01\x01\x00\x00\x00garbage\n", ("is a binary file",)),
    ("neither UTF-8 nor cp932", (HEADER + ",note\n1,2000-10-05,2,8,10,13,27,30,39,café\n").encode("latin-1"),
     ("is neither UTF-8 nor Shift-JIS (cp932)",)),
]


def _nothing_stored(eng, code: str) -> None:
    from fcast_assets.lake.sources import user_dir

    with pytest.raises(games.UnknownGameError):
        games.get_game(eng, code)
    leftovers = sorted(p.name for p in user_dir().glob(f"*{code}*")) if user_dir().exists() else []
    assert leftovers == [], leftovers  # no copy, no temporary file


@pytest.mark.parametrize("case,body,needles", BAD_HISTORIES, ids=[c for c, _, _ in BAD_HISTORIES])
def test_game_add_checks_the_history_file_like_ingest(lake_env, tmp_path_factory, case, body, needles):
    src = tmp_path_factory.mktemp("downloads") / "hist7.csv"  # outside FCAST_HOME: a user's download
    if isinstance(body, bytes):
        src.write_bytes(body)
    else:
        src.write_text(body, encoding="utf-8")
    r = _add("hist7", *NEW, "--history", str(src))
    assert r.exit_code == 1, (r.stdout, r.stderr)
    line = _one_line(r.stderr)
    assert line.startswith("error: game 'hist7': history file ") and str(src) in line, line
    for n in needles:
        assert n in line, (n, line)
    assert "nothing was stored" in line and "fcast game add hist7" in line and "Traceback" not in r.output
    _nothing_stored(lake_env["engine"], "hist7")


def test_game_add_history_not_a_file_is_one_line(lake_env, tmp_path):
    from fcast_assets.cli import main

    r = CliRunner().invoke(main, ["game", "add", "hist7", *NEW, "--history", str(tmp_path)])
    assert r.exit_code == 2 and _one_line(r.stderr).startswith("error: ") and "is a directory" in r.stderr
    with pytest.raises(games.HistoryFileError, match="is a directory"):
        games.check_history_file(GameSpec.from_dict({**default_games()[0], "code": "hist7"}), tmp_path)
    if Path(os.devnull).exists() and not Path(os.devnull).is_file():  # a character device (not on Windows)
        r = _add("hist7", *NEW, "--history", os.devnull)
        assert r.exit_code == 1 and "is not a regular file" in _one_line(r.stderr)
    _nothing_stored(lake_env["engine"], "hist7")


def test_game_add_takes_a_valid_history_and_ingest_reads_it(lake_env, tmp_path_factory):
    """The look-alikes: the shipped rows (with a draw_no gap, a warning only) as UTF-8 with BOM and CRLF, and as
    Shift-JIS; stored byte for byte and ingested with no rule error."""
    from fcast_assets.lake.sources import user_dir

    eng = lake_env["engine"]
    d = tmp_path_factory.mktemp("downloads")
    rows = [r for r in GOOD_ROWS if not r.startswith("12,")]  # a gap: warn, not blocking
    (d / "a.csv").write_bytes(b"\xef\xbb\xbf" + _hist(rows).replace("\n", "\r\n").encode("utf-8"))
    r = _add("hist7", "--name", "History Seven", *NEW, "--history", str(d / "a.csv"))
    assert r.exit_code == 0, r.stderr
    assert "history checked" in r.stdout and not r.stderr.strip()
    stored = user_dir() / "hist7.csv"
    assert stored.read_bytes() == (d / "a.csv").read_bytes()
    spec = games.get_game(eng, "hist7")
    res = pipeline.ingest_bronze(eng, spec)
    assert res["row_count"] == len(rows) and res["errors"] == 0 and res["warnings"] >= 1
    sj = _hist([f"{r},第{r.split(',')[0]}回" for r in GOOD_ROWS], header=HEADER + ",備考")  # an extra column
    (d / "sj.csv").write_bytes(sj.encode("cp932"))
    r = _add("hist8", *NEW, "--history", str(d / "sj.csv"))
    assert r.exit_code == 0, r.stderr
    assert (user_dir() / "hist8.csv").exists()


def test_game_add_update_with_a_bad_history_changes_nothing(lake_env, tmp_path):
    from fcast_assets.lake.sources import user_dir

    eng = lake_env["engine"]
    good = tmp_path / "good.csv"
    good.write_text(_hist(GOOD_ROWS[:10]), encoding="utf-8")
    assert _add("hist7", *NEW, "--history", str(good)).exit_code == 0
    before_row, before_file = games.get_game(eng, "hist7"), (user_dir() / "hist7.csv").read_bytes()
    bad = tmp_path / "bad.csv"
    bad.write_text(_edit(4, 8, "99"), encoding="utf-8")
    r = _add("hist7", "--update", "--name", "Renamed", "--history", str(bad))
    assert r.exit_code == 1
    line = _one_line(r.stderr)
    assert "line 4 (draw 3)" in line and "number_out_of_range" in line and "nothing was changed" in line
    assert "`fcast game add hist7 --update --history FILE`" in line
    assert games.get_game(eng, "hist7") == before_row  # the name was not changed either
    assert (user_dir() / "hist7.csv").read_bytes() == before_file
    assert [p.name for p in user_dir().iterdir()] == ["hist7.csv"]
    # the fixed file replaces the history
    good2 = tmp_path / "good2.csv"
    good2.write_text(_hist(GOOD_ROWS), encoding="utf-8")
    r = _add("hist7", "--update", "--history", str(good2))
    assert r.exit_code == 0, r.stderr
    assert (user_dir() / "hist7.csv").read_bytes() == good2.read_bytes()
    # per-slot ranges of a default game are the same rules: bingo5's n2 is 6..10
    b5 = (embedded_dir() / "bingo5.csv").read_text(encoding="utf-8").splitlines()[:6]
    parts = b5[3].split(",")
    parts[3] = "12"
    b5[3] = ",".join(parts)
    (tmp_path / "b5.csv").write_text("\n".join(b5) + "\n", encoding="utf-8")
    r = _add("bingo5", "--update", "--history", str(tmp_path / "b5.csv"))
    assert r.exit_code == 1
    line = _one_line(r.stderr)
    assert "line 4 (draw 3)" in line and "number_out_of_range" in line and "min=6, max=10" in line
    assert not (user_dir() / "bingo5.csv").exists()


def test_game_add_history_on_sqlite_and_postgresql(db_url, tmp_path, monkeypatch):
    from fcast_assets.db.dataset_models import DatasetGame
    from fcast_assets.db.engine import init_db, make_engine
    from fcast_assets.lake.sources import user_dir

    for k, v in (("FCAST_HOME", str(tmp_path / "home")), ("FCAST_LAKE", str(tmp_path / "home" / "lake")),
                 ("FCAST_DB_URL", db_url)):
        monkeypatch.setenv(k, v)
    for v in ("FCAST_ENGINE", "FCAST_SCRAPER", "FCAST_CHRONOS_MODEL", "FCAST_TIMESFM_MODEL"):
        monkeypatch.delenv(v, raising=False)
    eng = make_engine(db_url)
    init_db(eng)
    games.seed_games(eng)
    with Session(eng) as s:
        n_games = len(s.exec(select(DatasetGame)).all())
    bad = tmp_path / "bad.csv"
    bad.write_text(_edit(3, 3, GOOD_ROWS[1].split(",")[2]), encoding="utf-8")
    r = _add("hist7", *NEW, "--history", str(bad))
    assert r.exit_code == 1 and "repeated_main_number" in _one_line(r.stderr)
    with Session(eng) as s:
        assert len(s.exec(select(DatasetGame)).all()) == n_games
    assert not (user_dir() / "hist7.csv").exists()
    good = tmp_path / "good.csv"
    good.write_text(_hist(GOOD_ROWS), encoding="utf-8")
    r = _add("hist7", *NEW, "--history", str(good))
    assert r.exit_code == 0, r.stderr
    res = pipeline.ingest_bronze(eng, games.get_game(eng, "hist7"))
    assert res["row_count"] == len(GOOD_ROWS) and res["errors"] == 0
    eng.dispose()


# ------------------------------------------------------------------------------------------------ 8. train lock
HOLD = """
import sys, time
from fcast_assets import locks
with locks.hold(sys.argv[1]):
    print("held", flush=True)
    time.sleep(300)
"""


def test_model_train_refused_by_a_lock_is_one_line_exit_3(lake_env):
    import subprocess
    import sys

    import psutil

    from fcast_assets.cli import main

    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(repo) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    holder = subprocess.Popen([sys.executable, "-c", HOLD, "train:loto6/N1"], env=env, cwd=repo,
                              stdout=subprocess.PIPE, text=True, encoding="utf-8")
    try:
        assert holder.stdout.readline().strip() == "held"
        r = CliRunner().invoke(main, ["model", "train", "--game", "loto6", "--selector", "N1"],
                               env={"FCAST_LOCK_TIMEOUT": "0", "FCAST_DEBUG": None})
        assert r.exit_code == 3, (r.stdout, r.stderr)
        line = _one_line(r.stderr)
        assert line.startswith("error: train:loto6/N1 is in use by process") and str(holder.pid) in line
        assert "Nothing was changed" in line and "FCAST_LOCK_TIMEOUT" in line
        assert "LockBusyError" not in r.output and "Traceback" not in r.output and "model_id" not in r.stdout
    finally:
        psutil.Process(holder.pid).kill()
        holder.wait(timeout=30)
