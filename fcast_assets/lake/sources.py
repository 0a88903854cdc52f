"""Where draws come from: the embedded history files (default) and a scraper of the primary publication.

Both produce the same *draw records*: ``draw_no, draw_date, n1..nK, b1..bM`` (ints / ``datetime.date``) plus
``source``. :func:`fcast_assets.lake.bronze.to_bronze` turns them into bronze rows; the ``raw_hash`` of a bronze
row is computed from the canonical record (not from the bytes of the page), so a draw read from the files and the
same draw scraped from the official CSV give identical bronze rows (``source`` and ``ingested_at`` aside).

The official result CSVs are Shift-JIS (cp932), the fixtures UTF-8: :func:`decode_bytes` handles both. Dates are
Japanese era dates (令和8年9月28日) or Western ones (2026年9月28日, 2026-09-28, 2026/09/28).
"""

from __future__ import annotations

import csv
import io
import re
import time
import unicodedata
from dataclasses import dataclass
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Optional

from fcast_assets import config

from .games import GameSpec

EMBEDDED_SOURCE = "embedded"
SCRAPER_SOURCE = "mizuho"

# Era name -> Gregorian year of era year 1.
ERAS = {"令和": 2019, "平成": 1989, "昭和": 1926, "R": 2019, "H": 1989, "S": 1926}


class ParseError(ValueError):
    pass


class SourceError(RuntimeError):
    """The official site could not be read; one line that says what happened and what to do instead."""

    def __init__(self, url: str, what: str, code: Optional[str] = None):
        self.url, self.what, self.code = url, what, code
        super().__init__(self._line())

    def _line(self) -> str:
        code = self.code or "CODE"
        return (f"{self.what} (GET {self.url}); nothing changed in the lake; download the result file(s) in a "
                f"browser and run `fcast game ingest {code} FILE...`")


class SourceRefusedError(SourceError):
    """HTTP 401/403: the site (its CDN) refuses non-browser clients. Not a bug of ours, not retried."""


class SourceUnavailableError(SourceError):
    """Network errors / 429 / 5xx that outlived the retries."""


def with_game(err: SourceError, code: str) -> SourceError:
    """The same error with the game code filled into the manual-ingest hint."""
    err.code = code
    err.args = (err._line(),)
    return err


# ------------------------------------------------------------------------------------------------ decoding
def decode_bytes(data: bytes, declared: Optional[str] = None) -> str:
    """Decode a result file: UTF-8 (with or without BOM) first, then the declared charset, then cp932 / Shift-JIS."""
    candidates = ["utf-8-sig"]
    if declared:
        candidates.append(declared)
    candidates += ["cp932", "shift_jis", "euc_jp"]
    for enc in candidates:
        try:
            return data.decode(enc)
        except (UnicodeDecodeError, LookupError):
            continue
    return data.decode("cp932", errors="replace")


def _norm(s: str) -> str:
    """NFKC: full-width digits and letters to ASCII (１等 -> 1等, ナンバーズ３ -> ナンバーズ3)."""
    return unicodedata.normalize("NFKC", s).strip()


_ERA_RE = re.compile(r"(令和|平成|昭和|[RHS])\s*(元|\d{1,2})\s*[年.\-/]\s*(\d{1,2})\s*[月.\-/]\s*(\d{1,2})\s*日?")
_WEST_RE = re.compile(r"(\d{4})\s*[年.\-/]\s*(\d{1,2})\s*[月.\-/]\s*(\d{1,2})\s*日?")


def parse_jp_date(text: str) -> date:
    """``令和8年9月28日`` -> 2026-09-28; also 平成/昭和, ``元年``, R8.9.28, ``2026年9月28日``, ISO dates."""
    t = _norm(text)
    m = _ERA_RE.search(t)
    if m:
        era, y, mo, d = m.groups()
        year = ERAS[era] + (1 if y == "元" else int(y)) - 1
        return date(year, int(mo), int(d))
    m = _WEST_RE.search(t)
    if m:
        return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    raise ParseError(f"no date in {text!r}")


_DRAW_NO_RE = re.compile(r"第\s*(\d+)\s*回")

# Game names in the header row of the official files (after NFKC) -> the codes of the default games they hold.
FILE_GAMES = {"ナンバーズ": ("numbers3", "numbers4"), "ミニロト": ("miniloto",), "ロト6": ("loto6",),
              "ロト7": ("loto7",), "ビンゴ5": ("bingo5",)}


def _record(spec: GameSpec, draw_no: int, draw_date: date, main: list[int], bonus: list[int],
            source: str) -> dict[str, Any]:
    if len(main) != spec.n_main:
        raise ParseError(f"{spec.code} draw {draw_no}: expected {spec.n_main} main numbers, got {main}")
    if len(bonus) != spec.n_bonus:
        raise ParseError(f"{spec.code} draw {draw_no}: expected {spec.n_bonus} bonus numbers, got {bonus}")
    rec: dict[str, Any] = {"draw_no": int(draw_no), "draw_date": draw_date}
    rec.update({c: int(v) for c, v in zip(spec.main_cols, main)})
    rec.update({c: int(v) for c, v in zip(spec.bonus_cols, bonus)})
    rec["source"] = source
    return rec


# ------------------------------------------------------------------------------------------------ parsers
def parse_result_csv(text: str, spec: GameSpec, source: str = SCRAPER_SOURCE) -> dict[str, Any]:
    """Parse one official result CSV (Mizuho layout ``A5x``) into a draw record for ``spec``.

    Loto-type games: a ``本数字,…,ボーナス数字,…`` row. Numbers: ``ナンバーズ3抽せん数字,188`` (one CSV holds both
    Numbers 3 and Numbers 4; the row whose digit count equals ``spec.n_main`` is used).
    """
    rows = [[_norm(c) for c in r] for r in csv.reader(io.StringIO(text)) if any(c.strip() for c in r)]
    draw_no = draw_date = None
    for r in rows:
        m = _DRAW_NO_RE.search(r[0])
        if m:
            draw_no = int(m.group(1))
            name = r[0][m.end():].strip()
            known = FILE_GAMES.get(name)
            default_codes = {c for codes in FILE_GAMES.values() for c in codes}
            if known and spec.code in default_codes and spec.code not in known:
                raise ParseError(f"the file holds {name} draw {draw_no}, not a {spec.code} draw")
            for c in r[1:]:
                try:
                    draw_date = parse_jp_date(c)
                    break
                except ParseError:
                    continue
            break
    if draw_no is None or draw_date is None:
        raise ParseError("no 第N回 header row with a draw date")
    main: list[int] | None = None
    bonus: list[int] = []
    bonus_row: list[int] | None = None
    for r in rows:
        label = r[0]
        if label.startswith("ボーナス数字") and bonus_row is None:  # a layout with the bonus numbers on their own row
            bonus_row = [int(c.strip("()")) for c in r[1:] if re.fullmatch(r"\(?\d+\)?", c)]
            continue
        generic = label.endswith("抽せん数字") and "ナンバーズ" not in label
        if main is None and (label in ("本数字", "抽せん数字", "当せん番号") or generic):
            main, bonus = [], []
            target = main
            for c in r[1:]:
                if not c:
                    continue
                if re.fullmatch(r"\(?\d+\)?", c):
                    target.append(int(c.strip("()")))
                elif "ボーナス" in c:
                    target = bonus
                else:
                    break
            continue
        m = re.fullmatch(r"ナンバーズ(\d)抽せん数字", label)
        if main is None and m and int(m.group(1)) == spec.n_main and len(r) > 1:
            digits = re.sub(r"\D", "", r[1])
            main = [int(ch) for ch in digits]
    if main is None:
        raise ParseError(f"no winning-number row for {spec.code}")
    if not bonus and bonus_row:
        bonus = bonus_row
    return _record(spec, draw_no, draw_date, main, bonus, source)


_TAG_RE = re.compile(r"<[^>]+>")


def _cells(html: str, cls: str) -> list[str]:
    return [_norm(_TAG_RE.sub("", m)) for m in
            re.findall(rf'<[^>]*class="[^"]*\b{re.escape(cls)}\b[^"]*"[^>]*>(.*?)</', html, flags=re.S)]


def parse_result_html(text: str, spec: GameSpec, source: str = SCRAPER_SOURCE) -> dict[str, Any]:
    """Parse the result-table HTML fragment of the official page (``js-lottery-*-pc`` cells)."""
    issue = _cells(text, "js-lottery-issue-pc")
    dates = _cells(text, "js-lottery-date-pc")
    if not issue or not dates:
        raise ParseError("no js-lottery-issue / js-lottery-date cell")
    m = _DRAW_NO_RE.search(issue[0])
    if not m:
        raise ParseError(f"bad issue cell {issue[0]!r}")
    main = [int(re.sub(r"\D", "", c)) for c in _cells(text, "js-lottery-number-pc") if re.search(r"\d", c)]
    bonus = [int(re.sub(r"\D", "", c)) for c in _cells(text, "js-lottery-bonus-pc") if re.search(r"\d", c)]
    if spec.n_main and len(main) == 1 and spec.allow_repeat:  # numbers: one cell holds all digits ("188")
        main = [int(ch) for ch in str(main[0]).zfill(spec.n_main)]
    return _record(spec, int(m.group(1)), parse_jp_date(dates[0]), main, bonus, source)


def parse_history_csv(text: str, spec: GameSpec, source: str = EMBEDDED_SOURCE) -> list[dict[str, Any]]:
    """The embedded history layout: ``draw_no,draw_date,n1..nK,b1..`` (UTF-8, one draw per row)."""
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in ["draw_no", "draw_date", *spec.number_cols] if c not in (reader.fieldnames or [])]
    if missing:
        raise ParseError(f"{spec.code}: history CSV lacks columns {missing}")
    out = []
    for row in reader:
        if not row.get("draw_no"):
            continue
        rec: dict[str, Any] = {"draw_no": int(row["draw_no"]), "draw_date": date.fromisoformat(row["draw_date"])}
        for c in spec.number_cols:
            v = (row.get(c) or "").strip()
            rec[c] = int(v) if v not in ("", "NA", "nan") else None
        rec["source"] = source
        out.append(rec)
    return out


def parse_result_bytes(body: bytes, spec: GameSpec, source: str = SCRAPER_SOURCE) -> dict[str, Any]:
    """One official result file (CSV, or the result-table HTML) as bytes -> a draw record: the scraper's parser,
    also used by ``fcast game ingest`` for files downloaded in a browser."""
    text = decode_bytes(body)
    if "<table" in text.lower():
        return parse_result_html(text, spec, source=source)
    return parse_result_csv(text, spec, source=source)


# ------------------------------------------------------------------------------------------------ file source
def embedded_dir() -> Path:
    return Path(str(resources.files("fcast_assets") / "data" / "lottery"))


def user_dir() -> Path:
    """Draw histories of games added by users (``fcast game add --history FILE`` copies the file here)."""
    return config.data_home() / "lottery"


@dataclass
class FileSource:
    """The draw history shipped with the package (and user-added histories): the default, offline source."""

    dirs: tuple[Path, ...] = ()

    def search_path(self) -> list[Path]:
        return list(self.dirs) or [user_dir(), embedded_dir()]

    def path_for(self, code: str) -> Path:
        for d in self.search_path():
            p = Path(d) / f"{code}.csv"
            if p.exists():
                return p
        raise FileNotFoundError(f"no history file {code}.csv in {[str(d) for d in self.search_path()]}")

    def read(self, spec: GameSpec) -> list[dict[str, Any]]:
        path = self.path_for(spec.code)
        return parse_history_csv(decode_bytes(path.read_bytes()), spec, source=f"{EMBEDDED_SOURCE}:{path.name}")


# ------------------------------------------------------------------------------------------------ scraper
class _Response:  # the subset of requests.Response the scraper uses (tests pass their own objects)
    status_code: int
    content: bytes
    headers: dict


@dataclass
class Scraper:
    """HTTP client for the official result CSVs (one file per draw): retries with backoff on 429/5xx and
    connection errors, a timeout per request, a polite minimum interval between requests, Shift-JIS decoding.

    ``url_template`` has a ``{draw_no}`` field (``…/A102{draw_no:04d}.CSV``). ``session`` is anything with
    ``get(url, timeout=..., headers=...)``; by default a ``requests.Session`` with urllib3 ``Retry``.
    """

    url_template: str
    timeout_s: float = 20.0
    min_interval_s: float = 2.0
    retries: int = 3
    backoff_s: float = 1.0
    user_agent: str = "fcast-lottery-lake/0.1 (+offline-first; polite)"
    session: Any = None
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    _last: float = -1e9

    def _session(self):  # noqa: ANN202
        if self.session is None:
            import requests
            from requests.adapters import HTTPAdapter
            from urllib3.util.retry import Retry

            s = requests.Session()
            retry = Retry(total=self.retries, connect=self.retries, read=self.retries, backoff_factor=self.backoff_s,
                          status_forcelist=(429, 500, 502, 503, 504), allowed_methods=("GET",),
                          respect_retry_after_header=True, raise_on_status=False)
            s.mount("https://", HTTPAdapter(max_retries=retry))
            s.mount("http://", HTTPAdapter(max_retries=retry))
            self.session = s
        return self.session

    def _polite_wait(self) -> None:
        wait = self.min_interval_s - (self.clock() - self._last)
        if wait > 0:
            self.sleep(wait)
        self._last = self.clock()

    def get(self, url: str) -> Optional[bytes]:
        """Body of ``url``; ``None`` on 404 (draw not published yet). Transient failures are retried here too
        (on top of the adapter's retries) so a custom session gets the same behaviour."""
        last_exc: Exception | None = None
        for attempt in range(self.retries + 1):
            self._polite_wait()
            try:
                r = self._session().get(url, timeout=self.timeout_s, headers={"User-Agent": self.user_agent})
            except Exception as e:  # noqa: BLE001 - connection errors, timeouts
                last_exc = e
            else:
                if r.status_code == 404:
                    return None
                if r.status_code == 200:
                    return r.content
                if r.status_code in (401, 403):
                    raise SourceRefusedError(url, f"the site refused the client (HTTP {r.status_code}; its CDN "
                                                  "blocks non-browser clients)")
                if r.status_code not in (429, 500, 502, 503, 504):
                    raise SourceUnavailableError(url, f"unexpected answer HTTP {r.status_code} from the site")
                last_exc = RuntimeError(f"GET {url}: HTTP {r.status_code}")
            self.sleep(self.backoff_s * (2 ** attempt))
        why = f"{type(last_exc).__name__}: {last_exc}" if last_exc is not None else "no answer"
        why = " ".join(why.split())[:200]
        raise SourceUnavailableError(url, f"the site could not be read: failed after {self.retries + 1} attempts "
                                          f"({why})") from last_exc

    def fetch_draw(self, spec: GameSpec, draw_no: int) -> Optional[dict[str, Any]]:
        url = self.url_template.format(draw_no=draw_no)
        try:
            body = self.get(url)
        except SourceError as e:
            raise with_game(e, spec.code) from e.__cause__
        if body is None:
            return None
        rec = parse_result_bytes(body, spec, source=SCRAPER_SOURCE)
        if rec["draw_no"] != draw_no:
            raise ParseError(f"{url}: the file holds draw {rec['draw_no']}, not draw {draw_no}")
        return rec

    def fetch_new(self, spec: GameSpec, after_draw_no: int, max_draws: int = 20) -> list[dict[str, Any]]:
        """Draws ``after_draw_no+1, …`` until the first unpublished one (404) or ``max_draws``."""
        out = []
        for n in range(after_draw_no + 1, after_draw_no + 1 + max_draws):
            rec = self.fetch_draw(spec, n)
            if rec is None:
                break
            out.append(rec)
        return out


def iter_records(spec: GameSpec, file_source: FileSource | None = None, scraper: Scraper | None = None,
                 known_max_draw_no: int | None = None, max_new: int = 20) -> Iterator[dict[str, Any]]:
    """File history first, then (when a scraper is given) the draws published after the newest one known."""
    recs = (file_source or FileSource()).read(spec)
    yield from recs
    if scraper is not None:
        last = max([r["draw_no"] for r in recs] + [known_max_draw_no or 0])
        yield from scraper.fetch_new(spec, last, max_draws=max_new)


def scraper_enabled() -> bool:
    import os

    return os.environ.get("FCAST_SCRAPER", "").lower() in ("1", "true", "yes", "on")


def records_equal_ignoring(a: Iterable[dict[str, Any]], b: Iterable[dict[str, Any]],
                           ignore: tuple[str, ...] = ("source", "ingested_at")) -> bool:
    strip = lambda r: {k: v for k, v in r.items() if k not in ignore}  # noqa: E731
    return [strip(r) for r in a] == [strip(r) for r in b]


def recorded_disagreements(code: str, draw_nos: Optional[set[int]] = None) -> list[dict[str, Any]]:
    """The cross-source disagreements shipped with the history (``source_disagreements.csv``) as warn issues:
    the kept (majority) values and the dissenting source's values, for the draws present in bronze."""
    path = embedded_dir() / "source_disagreements.csv"
    if not path.exists():
        return []
    out = []
    for row in csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))):
        if row["game"] != code or (draw_nos is not None and int(row["draw_no"]) not in draw_nos):
            continue
        out.append({"unique_id": code, "ds": date.fromisoformat(row["kept_date"]) if row["kept_date"] else None,
                    "draw_no": int(row["draw_no"]), "rule": "source_disagreement", "severity": "warn",
                    "detail": {"kept_main": row["kept_main"], "kept_bonus": row["kept_bonus"],
                               "kept_by": row["kept_by"], "dissenting_source": row["dissenting_source"],
                               "dissent_date": row["dissent_date"], "dissent_main": row["dissent_main"],
                               "dissent_bonus": row["dissent_bonus"], "note": row.get("note") or None}})
    return out
