"""Games as data: ``dataset_game`` / ``dataset_game_slot`` seeded from ``games.yaml``.

Everything downstream (bronze columns, rule checks, silver series, the profile's uniform reference) is derived
from a :class:`GameSpec` read from the database, so a seventh game is a row (``fcast game add``), not code.
"""

from __future__ import annotations

import re

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional

import yaml
from sqlalchemy import Engine
from sqlmodel import Session, select

from fcast_assets.db.dataset_models import DatasetGame, DatasetGameSlot, DatasetSource
from fcast_assets.db.models import utcnow

GAMES_FILE = Path(__file__).with_name("games.yaml")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
INT32_MIN, INT32_MAX = -(2 ** 31), 2 ** 31 - 1  # bronze stores numbers as int32
MAX_NUMBERS = 50  # n_main / n_bonus above this are a typo, not a lottery

# Result-file URLs seeded by earlier versions of games.yaml with wrong file codes (A103/A104/A105 for
# miniloto/loto7/bingo5): seed_games replaces them in existing databases with the games.yaml URL.
_BASE = "https://www.mizuhobank.co.jp/retail/takarakuji/"
STALE_SOURCE_URLS = {
    "miniloto": _BASE + "loto/miniloto/csv/A103{draw_no:04d}.CSV",
    "loto7": _BASE + "loto/loto7/csv/A104{draw_no:04d}.CSV",
    "bingo5": _BASE + "loto/bingo5/csv/A105{draw_no:04d}.CSV",
}


class UnknownGameError(KeyError):
    pass


@dataclass(frozen=True)
class GameSpec:
    """The rules of one game, as stored in ``dataset_game`` (plain values, no session attached)."""

    code: str
    name: str
    n_main: int
    n_bonus: int
    number_min: int
    number_max: int
    allow_repeat: bool
    order_matters: bool
    draw_weekdays: tuple[str, ...] = ()
    active: bool = True
    rules: dict[str, Any] = field(default_factory=dict)
    game_id: int | None = None

    @property
    def main_cols(self) -> list[str]:
        return [f"n{i}" for i in range(1, self.n_main + 1)]

    @property
    def bonus_cols(self) -> list[str]:
        return [f"b{i}" for i in range(1, self.n_bonus + 1)]

    @property
    def number_cols(self) -> list[str]:
        return self.main_cols + self.bonus_cols

    @property
    def slot_codes(self) -> list[str]:
        return [c.upper() for c in self.number_cols]

    def slot_range(self, col: str) -> tuple[int, int]:
        """Allowed [min, max] of one number column (per-slot ranges where the rules give them)."""
        ranges = self.rules.get("slot_ranges") or []
        if col.startswith("n") and ranges:
            i = int(col[1:]) - 1
            if i < len(ranges):
                lo, hi = ranges[i]
                return int(lo), int(hi)
        return self.number_min, self.number_max

    @property
    def main_sorted(self) -> bool:
        return bool(self.rules.get("main_sorted", not self.order_matters and not self.allow_repeat))

    @classmethod
    def from_row(cls, g: DatasetGame) -> "GameSpec":
        return cls(code=g.code, name=g.name, n_main=g.n_main, n_bonus=g.n_bonus, number_min=g.number_min,
                   number_max=g.number_max, allow_repeat=g.allow_repeat, order_matters=g.order_matters,
                   draw_weekdays=tuple(g.draw_weekdays or ()), active=g.active, rules=dict(g.rules or {}),
                   game_id=g.game_id)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "GameSpec":
        keys = {f for f in cls.__dataclass_fields__}
        kw = {k: v for k, v in d.items() if k in keys}
        kw["draw_weekdays"] = tuple(kw.get("draw_weekdays") or ())
        kw["rules"] = dict(kw.get("rules") or {})
        return cls(**kw)


def default_games() -> list[dict[str, Any]]:
    return yaml.safe_load(GAMES_FILE.read_text(encoding="utf-8"))["games"]


_CODE = re.compile(r"[a-z][a-z0-9_]{0,31}")


def check_code(code: str) -> None:
    """A game code is a file name, a Delta folder and a Dagster partition key on every OS: ASCII only."""
    if not isinstance(code, str) or not _CODE.fullmatch(code):
        raise ValueError(f"game code must be 1-32 lower-case ASCII letters, digits or '_', starting with a letter: "
                         f"{code!r}")


def validate_spec(spec: GameSpec) -> None:
    check_code(spec.code)
    if not 1 <= spec.n_main <= MAX_NUMBERS or not 0 <= spec.n_bonus <= MAX_NUMBERS:
        raise ValueError(f"n_main must be 1..{MAX_NUMBERS} and n_bonus 0..{MAX_NUMBERS} "
                         f"(got {spec.n_main} and {spec.n_bonus})")
    for label, v in (("number_min", spec.number_min), ("number_max", spec.number_max)):
        if not INT32_MIN <= v <= INT32_MAX:
            raise ValueError(f"{label} {v} is outside the 32-bit integer range the lake stores")
    if spec.number_min > spec.number_max:
        raise ValueError(f"number_min ({spec.number_min}) must be <= number_max ({spec.number_max})")
    for i, r in enumerate(spec.rules.get("slot_ranges") or [], start=1):
        if len(r) != 2 or not INT32_MIN <= int(r[0]) <= int(r[1]) <= INT32_MAX:
            raise ValueError(f"slot_ranges entry {i} {r} must be [min, max] within 32-bit integers")
    if not spec.allow_repeat and spec.number_max - spec.number_min + 1 < spec.n_main + spec.n_bonus:
        raise ValueError("range too small for distinct numbers")
    bad = [d for d in spec.draw_weekdays if d not in WEEKDAYS]
    if bad:
        raise ValueError(f"unknown weekdays {bad}; use {WEEKDAYS}")


def _slots(spec: GameSpec, game_id: int) -> list[DatasetGameSlot]:
    out = []
    for i, col in enumerate(spec.number_cols, start=1):
        lo, hi = spec.slot_range(col)
        out.append(DatasetGameSlot(game_id=game_id, slot_code=col.upper(), slot_index=i,
                                   role="main" if col.startswith("n") else "bonus", number_min=lo, number_max=hi))
    return out


def upsert_game(engine: Engine, spec: GameSpec, source: dict[str, Any] | None = None,
                overwrite: bool = True) -> int:
    """Insert a game (and its slots, and its source) or, with ``overwrite``, update its rules. Returns game_id."""
    validate_spec(spec)
    with Session(engine) as s:
        g = s.exec(select(DatasetGame).where(DatasetGame.code == spec.code)).first()
        if g is not None and not overwrite:
            return g.game_id  # type: ignore[return-value]
        if g is None:
            g = DatasetGame(code=spec.code, name=spec.name, n_main=spec.n_main, number_min=spec.number_min,
                            number_max=spec.number_max)
        for k in ("name", "n_main", "n_bonus", "number_min", "number_max", "allow_repeat", "order_matters",
                  "active"):
            setattr(g, k, getattr(spec, k))
        g.draw_weekdays = list(spec.draw_weekdays)
        g.rules = dict(spec.rules)
        g.updated_at = utcnow()
        s.add(g)
        s.flush()
        gid = g.game_id
        for old in s.exec(select(DatasetGameSlot).where(DatasetGameSlot.game_id == gid)).all():
            s.delete(old)
        s.flush()
        for slot in _slots(spec, gid):  # type: ignore[arg-type]
            s.add(slot)
        if source:
            src = s.exec(select(DatasetSource).where(DatasetSource.game_id == gid,
                                                     DatasetSource.url == source["url"])).first()
            if src is None:
                s.add(DatasetSource(game_id=gid, url=source["url"], format=source.get("format", "mizuho_csv"),
                                    terms_url=source.get("terms_url")))
        s.commit()
        return gid  # type: ignore[return-value]


def seed_games(engine: Engine, games: Iterable[dict[str, Any]] | None = None) -> list[str]:
    """Insert the default games that are missing (existing rows, e.g. deactivated ones, are left alone)."""
    added = []
    with Session(engine) as s:
        existing = set(s.exec(select(DatasetGame.code)).all())
    games = list(games if games is not None else default_games())
    repair_stale_sources(engine, games)
    for d in games:
        if d["code"] in existing:
            continue
        upsert_game(engine, GameSpec.from_dict(d), source=d.get("source"), overwrite=False)
        added.append(d["code"])
    return added


def repair_stale_sources(engine: Engine, games: Iterable[dict[str, Any]]) -> list[str]:
    """Point sources still holding a known-wrong seeded URL (:data:`STALE_SOURCE_URLS`) at the games.yaml URL."""
    fixed = []
    with Session(engine) as s:
        for d in games:
            stale, new = STALE_SOURCE_URLS.get(d["code"]), (d.get("source") or {}).get("url")
            if not stale or not new or new == stale:
                continue
            g = s.exec(select(DatasetGame).where(DatasetGame.code == d["code"])).first()
            if g is None:
                continue
            has_new = s.exec(select(DatasetSource).where(DatasetSource.game_id == g.game_id,
                                                         DatasetSource.url == new)).first() is not None
            for src in s.exec(select(DatasetSource).where(DatasetSource.game_id == g.game_id,
                                                          DatasetSource.url == stale)).all():
                if has_new:
                    s.delete(src)  # (game_id, url) is unique: the right row exists already
                else:
                    src.url = new
                    s.add(src)
                fixed.append(d["code"])
        s.commit()
    return fixed


def list_games(engine: Engine, active_only: bool = False) -> list[GameSpec]:
    with Session(engine) as s:
        q = select(DatasetGame).order_by(DatasetGame.game_id)
        if active_only:
            q = q.where(DatasetGame.active == True)  # noqa: E712
        return [GameSpec.from_row(g) for g in s.exec(q).all()]


def active_game_codes(engine: Engine) -> list[str]:
    return [g.code for g in list_games(engine, active_only=True)]


def get_game(engine: Engine, code: str) -> GameSpec:
    with Session(engine) as s:
        g = s.exec(select(DatasetGame).where(DatasetGame.code == code)).first()
        if g is None:
            raise UnknownGameError(code)
        return GameSpec.from_row(g)


def set_active(engine: Engine, code: str, active: bool) -> None:
    with Session(engine) as s:
        g = s.exec(select(DatasetGame).where(DatasetGame.code == code)).first()
        if g is None:
            raise UnknownGameError(code)
        g.active = active
        g.updated_at = utcnow()
        s.add(g)
        s.commit()


def game_sources(engine: Engine, code: str) -> list[DatasetSource]:
    spec = get_game(engine, code)
    with Session(engine) as s:
        rows = s.exec(select(DatasetSource).where(DatasetSource.game_id == spec.game_id)).all()
        for r in rows:
            s.expunge(r)
        return list(rows)


# ------------------------------------------------------------------------------------------------ history files
MAX_HISTORY_BYTES = 64 * 1024 * 1024  # the shipped histories are < 200 KB; anything this large is the wrong file


class HistoryFileError(ValueError):
    """A draw-history file that ``fcast game add --history`` refuses: one line (what, where, how to fix)."""


def _history_fix(spec: GameSpec) -> str:
    cols = ",".join(["draw_no", "draw_date", *spec.number_cols])
    return (f"a history file is a CSV with the header {cols} and one draw per line (draw_date as YYYY-MM-DD), "
            "UTF-8 or Shift-JIS (cp932)")


def _locate_bad_row(text: str, spec: GameSpec) -> Optional[str]:
    """Where :func:`~fcast_assets.lake.sources.parse_history_csv` fails (or ``to_bronze`` would): ``line N: …``."""
    import csv
    import io
    from datetime import date

    reader = csv.DictReader(io.StringIO(text))
    for row in reader:
        ln = reader.line_num
        extra = [v for v in row.get(None) or [] if str(v).strip()]  # type: ignore[call-overload]
        if extra:
            return f"line {ln}: {len(extra)} value(s) more than the header has columns ({extra[:3]})"
        raw_no = row.get("draw_no")
        if not raw_no:
            continue
        try:
            no = int(raw_no)
        except ValueError:
            return f"line {ln}: draw_no {raw_no!r} is not an integer"
        if not 1 <= no <= 2 ** 63 - 1:
            return f"line {ln}: draw_no {no} must be a positive 64-bit integer"
        try:
            date.fromisoformat(row.get("draw_date") or "")
        except (TypeError, ValueError):
            return f"line {ln} (draw {no}): draw_date {row.get('draw_date')!r} is not a date YYYY-MM-DD"
        for c in spec.number_cols:
            v = (row.get(c) or "").strip()
            if v in ("", "NA", "nan"):
                continue
            try:
                n = int(v)
            except ValueError:
                return f"line {ln} (draw {no}): column {c} {v!r} is not an integer"
            if not INT32_MIN <= n <= INT32_MAX:
                lo, hi = spec.slot_range(c)
                return (f"line {ln} (draw {no}): breaks number_out_of_range (column {c} value {n} is outside "
                        f"{lo}..{hi})")
    return None


def check_history_file(spec: GameSpec, path: Path) -> bytes:
    """Read and check a draw-history file for ``spec`` the way ingest does (same decoding, same parser
    :func:`~fcast_assets.lake.sources.parse_history_csv`, same rows :func:`~fcast_assets.lake.bronze.to_bronze`
    and blocking rules :func:`~fcast_assets.lake.bronze.check_rules` + conflicting duplicate draw numbers).

    Returns the file's bytes (what is to be stored: the checked content, not a second read). Raises
    :class:`HistoryFileError` with one line naming the file, the line / draw and the rule, and how to fix it.
    """
    from . import bronze as B
    from .sources import ParseError, decode_bytes, parse_history_csv

    p = Path(path)
    if not p.exists():
        raise HistoryFileError(f"{p} does not exist; give the path of the draw-history CSV")
    if p.is_dir():
        raise HistoryFileError(f"{p} is a directory; give the draw-history CSV file inside it")
    if not p.is_file():
        raise HistoryFileError(f"{p} is not a regular file (a device, pipe or socket); give a draw-history CSV file")
    size = p.stat().st_size
    if size > MAX_HISTORY_BYTES:
        raise HistoryFileError(f"{p} is {size // (1024 * 1024)} MiB, more than a draw history can be "
                               f"({MAX_HISTORY_BYTES // (1024 * 1024)} MiB at most); give the right file")
    try:
        data = p.read_bytes()
    except OSError as e:
        raise HistoryFileError(f"{p} cannot be read ({type(e).__name__}: {e.strerror or e}); check its "
                               "permissions") from None
    if not data.strip():
        raise HistoryFileError(f"{p} is empty; {_history_fix(spec)}")
    if b"\x00" in data:
        raise HistoryFileError(f"{p} is a binary file, not CSV text; {_history_fix(spec)}")
    for enc in ("utf-8-sig", "cp932"):
        try:
            data.decode(enc)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise HistoryFileError(f"{p} is neither UTF-8 nor Shift-JIS (cp932) text; save it as a UTF-8 CSV")
    text = decode_bytes(data)  # what FileSource.read does with the stored copy
    try:
        records = parse_history_csv(text, spec, source=f"embedded:{spec.code}.csv")
    except ParseError as e:
        raise HistoryFileError(f"{p}: line 1 (header): {str(e).split(': ', 1)[-1]}; {_history_fix(spec)}") from None
    except (ValueError, TypeError) as e:
        where = _locate_bad_row(text, spec) or f"{type(e).__name__}: {e}"
        raise HistoryFileError(f"{p}: {where}; {_history_fix(spec)}") from None
    where = _locate_bad_row(text, spec)  # values ingest would choke on (beyond 32-bit, extra cells)
    if where:
        raise HistoryFileError(f"{p}: {where}; correct that line")
    if not records:
        raise HistoryFileError(f"{p} has a header but no draw rows; {_history_fix(spec)}")
    dup_issues: list[dict[str, Any]] = []
    df = B.to_bronze(spec, records, issues=dup_issues)
    errors = [i for i in B.check_rules(spec, df) + dup_issues if i["severity"] == B.ERROR]
    if errors:
        lines = _draw_lines(text)

        def line_of(i: dict[str, Any]) -> int:  # a conflicting duplicate: the repeat's line
            seen = lines.get(int(i["draw_no"])) or [0]
            return seen[-1] if i["rule"] == "duplicate_draw_no" else seen[0]

        first = min(errors, key=line_of)
        no, ln = int(first["draw_no"]), line_of(first)
        d = first.get("detail") or {}
        if first["rule"] == "duplicate_draw_no":
            facts = "the same draw_no given again with other numbers or date"
        else:
            facts = ", ".join(f"{k}={v}" for k, v in d.items() if k != "action")
        more = f" (+{len(errors) - 1} more error(s))" if len(errors) > 1 else ""
        raise HistoryFileError(f"{p}: line {ln} (draw {no}): breaks {first['rule']}"
                               f"{' (' + facts + ')' if facts else ''}{more}; correct that line (one row per "
                               f"draw_no, numbers within the game's range{', ascending' if spec.main_sorted else ''}"
                               f"{'' if spec.allow_repeat else ', no repeats'}, dates increasing)")
    return data


def _draw_lines(text: str) -> dict[int, list[int]]:
    """draw_no -> the line numbers (1 = header) it appears on."""
    import csv
    import io

    out: dict[int, list[int]] = {}
    reader = csv.DictReader(io.StringIO(text))
    for row in reader:
        try:
            out.setdefault(int(row.get("draw_no") or ""), []).append(reader.line_num)
        except ValueError:
            continue
    return out
