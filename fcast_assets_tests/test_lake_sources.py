"""Scraper parsing (offline, saved fixtures), encodings, era dates, HTTP behaviour, file source == scraper rows."""

from datetime import date
from pathlib import Path

import pytest

from fcast_assets.lake.bronze import to_bronze
from fcast_assets.lake.games import GameSpec, default_games
from fcast_assets.lake.sources import (
    FileSource,
    ParseError,
    Scraper,
    decode_bytes,
    embedded_dir,
    parse_jp_date,
    parse_result_csv,
    parse_result_html,
)

FIX = embedded_dir() / "fixtures"
SPECS = {d["code"]: GameSpec.from_dict(d) for d in default_games()}


def test_embedded_data_is_packaged():
    for code in SPECS:
        assert (embedded_dir() / f"{code}.csv").exists()
    assert {p.name for p in FIX.iterdir()} >= {"mizuho_loto6_A1022141.csv", "mizuho_numbers_A1007073.csv",
                                               "mizuho_miniloto_A1011403.csv", "mizuho_loto7_A1030697.csv",
                                               "mizuho_bingo5_A1040490.csv",
                                               "mizuho_loto6_result_table_2141.html"}


@pytest.mark.parametrize("text,expected", [
    ("令和8年9月28日", date(2026, 9, 28)),
    ("令和元年5月1日", date(2019, 5, 1)),
    ("平成31年4月30日", date(2019, 4, 30)),
    ("平成12年10月5日", date(2000, 10, 5)),
    ("令和８年９月２８日", date(2026, 9, 28)),  # full-width digits
    ("R8.9.28", date(2026, 9, 28)),
    ("2026年9月28日", date(2026, 9, 28)),
    ("2026-09-28", date(2026, 9, 28)),
])
def test_parse_jp_date(text, expected):
    assert parse_jp_date(text) == expected


def test_parse_jp_date_rejects_garbage():
    with pytest.raises(ParseError):
        parse_jp_date("抽せん日")


def test_loto6_csv_fixture_utf8_and_shift_jis():
    raw = (FIX / "mizuho_loto6_A1022141.csv").read_bytes()
    expected = {"draw_no": 2141, "draw_date": date(2026, 9, 28), "n1": 14, "n2": 15, "n3": 22, "n4": 32, "n5": 37,
                "n6": 41, "b1": 1, "source": "mizuho"}
    assert parse_result_csv(decode_bytes(raw), SPECS["loto6"]) == expected
    sjis = raw.decode("utf-8").encode("cp932")  # the official files are Shift-JIS
    with pytest.raises(UnicodeDecodeError):
        sjis.decode("utf-8")
    assert parse_result_csv(decode_bytes(sjis), SPECS["loto6"]) == expected


def test_numbers_csv_fixture_gives_both_games():
    text = decode_bytes((FIX / "mizuho_numbers_A1007073.csv").read_bytes())
    n3 = parse_result_csv(text, SPECS["numbers3"])
    n4 = parse_result_csv(text, SPECS["numbers4"])
    assert n3 == {"draw_no": 7073, "draw_date": date(2026, 9, 17), "n1": 1, "n2": 8, "n3": 8, "source": "mizuho"}
    assert (n4["n1"], n4["n2"], n4["n3"], n4["n4"]) == (6, 9, 1, 6)


def test_result_table_html_fixture_matches_csv():
    html = decode_bytes((FIX / "mizuho_loto6_result_table_2141.html").read_bytes())
    csv_rec = parse_result_csv(decode_bytes((FIX / "mizuho_loto6_A1022141.csv").read_bytes()), SPECS["loto6"])
    assert parse_result_html(html, SPECS["loto6"]) == csv_rec


def test_wrong_game_layout_is_an_error():
    text = decode_bytes((FIX / "mizuho_loto6_A1022141.csv").read_bytes())
    with pytest.raises(ParseError):
        parse_result_csv(text, SPECS["loto7"])  # 6 main numbers + 1 bonus, loto7 needs 7 + 2


class FakeResponse:
    def __init__(self, status, content=b""):
        self.status_code, self.content, self.headers = status, content, {}


class FakeSession:
    """Serves scripted responses per URL; records calls."""

    def __init__(self, script):
        self.script = {k: list(v) for k, v in script.items()}
        self.calls = []

    def get(self, url, timeout=None, headers=None):
        self.calls.append((url, timeout, headers))
        queue = self.script.get(url) or [FakeResponse(404)]
        item = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(item, Exception):
            raise item
        return item


def test_scraper_retries_rate_limits_and_stops_at_404():
    sjis = (FIX / "mizuho_loto6_A1022141.csv").read_bytes().decode("utf-8").encode("cp932")
    tpl = "https://example.invalid/loto6/A102{draw_no:04d}.CSV"
    sess = FakeSession({tpl.format(draw_no=2141): [FakeResponse(503), ConnectionError("reset"),
                                                  FakeResponse(200, sjis)]})
    sleeps = []
    now = [0.0]
    s = Scraper(url_template=tpl, session=sess, sleep=lambda x: (sleeps.append(x), now.__setitem__(0, now[0] + x)),
                clock=lambda: now[0], min_interval_s=2.0, backoff_s=0.5, retries=3, timeout_s=7)
    recs = s.fetch_new(SPECS["loto6"], after_draw_no=2140)
    assert [r["draw_no"] for r in recs] == [2141]
    assert recs[0]["n6"] == 41 and recs[0]["b1"] == 1
    urls = [c[0] for c in sess.calls]
    assert urls.count(tpl.format(draw_no=2141)) == 3 and urls[-1] == tpl.format(draw_no=2142)  # 404 stops
    assert all(c[1] == 7 for c in sess.calls) and "fcast" in sess.calls[0][2]["User-Agent"]
    assert sum(1 for x in sleeps if x >= 0.5) >= 2  # backoff after the 503 and the connection error
    # polite: consecutive requests are at least min_interval_s apart on the (fake) clock
    assert now[0] >= 2.0 * (len(sess.calls) - 1)


def test_scraper_gives_up_after_retries():
    tpl = "https://example.invalid/x/{draw_no}"
    s = Scraper(url_template=tpl, session=FakeSession({tpl.format(draw_no=1): [FakeResponse(500)]}),
                sleep=lambda x: None, retries=2, min_interval_s=0)
    with pytest.raises(RuntimeError, match="failed after 3 attempts"):
        s.get(tpl.format(draw_no=1))


def test_scraper_and_file_source_produce_identical_bronze_rows(tmp_path: Path):
    spec = SPECS["loto6"]
    (tmp_path / "loto6.csv").write_text("draw_no,draw_date,n1,n2,n3,n4,n5,n6,b1\n"
                                        "2141,2026-09-28,14,15,22,32,37,41,1\n", encoding="utf-8")
    file_rows = FileSource(dirs=(tmp_path,)).read(spec)
    tpl = "https://example.invalid/A102{draw_no:04d}.CSV"
    sess = FakeSession({tpl.format(draw_no=2141): [FakeResponse(200, (FIX / "mizuho_loto6_A1022141.csv")
                                                                 .read_bytes().decode().encode("cp932"))]})
    scraped = Scraper(url_template=tpl, session=sess, sleep=lambda x: None, min_interval_s=0).fetch_new(spec, 2140)
    a = to_bronze(spec, file_rows).drop(columns=["source", "ingested_at"])
    b = to_bronze(spec, scraped).drop(columns=["source", "ingested_at"])
    assert a.equals(b)
    assert a.loc[0, "raw_hash"] == b.loc[0, "raw_hash"]


def test_file_source_reads_every_embedded_game():
    expected = {"numbers3": 7054, "numbers4": 7054, "miniloto": 1402, "loto6": 2139, "loto7": 696, "bingo5": 489}
    for code, n in expected.items():
        rows = FileSource().read(SPECS[code])
        assert len(rows) == n
        assert [r["draw_no"] for r in rows[:3]] == [1, 2, 3]


def test_scraper_appends_new_draws_to_bronze(tmp_path: Path, monkeypatch):
    from sqlmodel import Session, select

    from fcast_assets.db.dataset_models import DatasetSource
    from fcast_assets.db.engine import get_engine
    from fcast_assets.lake import games, pipeline

    monkeypatch.setenv("FCAST_HOME", str(tmp_path))
    monkeypatch.setenv("FCAST_LAKE", str(tmp_path / "lake"))
    eng = get_engine(f"sqlite:///{tmp_path / 'meta.db'}")
    games.seed_games(eng)
    spec = games.get_game(eng, "loto6")
    assert pipeline.ingest_bronze(eng, spec)["row_count"] == 2139
    fixture = (FIX / "mizuho_loto6_A1022141.csv").read_text(encoding="utf-8")
    d2140 = fixture.replace("第2141回", "第2140回").replace("令和8年9月28日", "令和8年9月24日", 1)
    scraper = pipeline.scraper_for(eng, spec, session=None, sleep=lambda x: None, min_interval_s=0)
    tpl = scraper.url_template
    scraper.session = FakeSession({tpl.format(draw_no=2140): [FakeResponse(200, d2140.encode("cp932"))],
                                   tpl.format(draw_no=2141): [FakeResponse(200, fixture.encode("cp932"))]})
    r = pipeline.ingest_bronze(eng, spec, scraper=scraper)
    assert r["row_count"] == 2141 and r["inserted"] == 2 and r["errors"] == 0
    assert "mizuho" in r["sources"]
    with Session(eng) as s:
        assert s.exec(select(DatasetSource).where(DatasetSource.game_id == spec.game_id)).one().checked_at
    # scraping again finds nothing new (2142 is 404) and writes nothing
    assert pipeline.ingest_bronze(eng, spec, scraper=scraper)["written"] == 0


# One official result file per game, in the layout of shared/LOTTERY_SOURCES.md (marker, 第N回 header with the
# game name and an era date, 支払期間, the number row(s), prize rows, 販売実績額).
SIX_FILES = {
    "numbers3": ("mizuho_numbers_A1007073.csv", 7073, date(2026, 9, 17), [1, 8, 8], []),
    "numbers4": ("mizuho_numbers_A1007073.csv", 7073, date(2026, 9, 17), [6, 9, 1, 6], []),
    "miniloto": ("mizuho_miniloto_A1011403.csv", 1403, date(2026, 9, 8), [4, 11, 17, 23, 30], [9]),
    "loto6": ("mizuho_loto6_A1022141.csv", 2141, date(2026, 9, 28), [14, 15, 22, 32, 37, 41], [1]),
    "loto7": ("mizuho_loto7_A1030697.csv", 697, date(2026, 10, 2), [2, 9, 14, 21, 28, 33, 36], [6, 17]),
    "bingo5": ("mizuho_bingo5_A1040490.csv", 490, date(2026, 9, 30), [3, 7, 12, 19, 22, 28, 33, 40], []),
}


@pytest.mark.parametrize("code", sorted(SIX_FILES))
@pytest.mark.parametrize("encoding", ["utf-8", "cp932"])
def test_result_file_of_each_game(code, encoding):
    from fcast_assets.lake.bronze import check_rules
    from fcast_assets.lake.sources import parse_result_bytes

    name, no, day, main, bonus = SIX_FILES[code]
    spec = SPECS[code]
    body = (FIX / name).read_bytes().decode("utf-8").encode(encoding)
    rec = parse_result_bytes(body, spec)
    assert rec == {"draw_no": no, "draw_date": day, **dict(zip(spec.main_cols, main)),
                   **dict(zip(spec.bonus_cols, bonus)), "source": "mizuho"}
    assert check_rules(spec, to_bronze(spec, [rec])) == []  # a valid draw of the game
    # keyed on the labels: extra lines before the numbers and reordered prize rows change nothing
    lines = (FIX / name).read_text(encoding="utf-8").splitlines()
    shifted = lines[:3] + ["お知らせ,この行は追加の行です", ""] + lines[3:][::-1]
    assert parse_result_csv("\n".join(shifted), spec) == rec


@pytest.mark.parametrize("code,other", [("loto7", "bingo5"), ("bingo5", "loto7"), ("miniloto", "loto6"),
                                        ("loto6", "miniloto"), ("numbers3", "miniloto")])
def test_result_file_of_another_game_is_refused(code, other):
    """The 第N回<name> header names the game: a file of another game is one clear ParseError."""
    text = decode_bytes((FIX / SIX_FILES[other][0]).read_bytes())
    with pytest.raises(ParseError, match=f"holds .* draw {SIX_FILES[other][1]}, not a {code} draw"):
        parse_result_csv(text, SPECS[code])


def test_bonus_numbers_on_their_own_row():
    text = decode_bytes((FIX / "mizuho_loto7_A1030697.csv").read_bytes())
    split = text.replace("本数字,02,09,14,21,28,33,36,ボーナス数字,06,17",
                         "本数字,02,09,14,21,28,33,36\nボーナス数字,06,17")
    assert split != text
    assert parse_result_csv(split, SPECS["loto7"]) == parse_result_csv(text, SPECS["loto7"])
