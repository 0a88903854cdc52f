"""Games as data: ``dataset_game`` / ``dataset_game_slot`` seeded from ``games.yaml``.

Everything downstream (bronze columns, rule checks, silver series, the profile's uniform reference) is derived
from a :class:`GameSpec` read from the database, so a seventh game is a row (``fcast game add``), not code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

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


def validate_spec(spec: GameSpec) -> None:
    if not spec.code or not spec.code.replace("_", "").isalnum() or spec.code != spec.code.lower():
        raise ValueError(f"game code must be lower-case alphanumeric/underscore: {spec.code!r}")
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
