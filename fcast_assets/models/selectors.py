"""``model_series_selector`` rows: one per main slot (N1..Nk) and one ALL over every main slot, per game. Each
selector is a Dagster ``model`` partition ``<game>.<selector>``. The (game, selector) pair is a
:class:`~fcast_assets.plans.model.GoldRef` (``Selector.ref``): it alone parses and writes its spellings
(``loto6.N1`` partition keys, ``gold:loto6:N1`` plan data, ``train:loto6/N1`` lock names)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine
from sqlmodel import Session, select

from ..db.dataset_models import DatasetGame
from ..db.model_models import ModelSeriesSelector
from ..lake.games import GameSpec
from ..plans.gold_data import find_selector
from ..plans.model import GoldRef
from .config import ALL


@dataclass(frozen=True)
class Selector:
    selector_id: int
    game: str
    game_id: int
    name: str
    unique_ids: tuple[str, ...]

    @property
    def ref(self) -> GoldRef:
        return GoldRef(game=self.game, selector=self.name)

    @property
    def key(self) -> str:
        return self.ref.key


def partition_key(game: str, name: str) -> str:
    return GoldRef(game=game, selector=name).key


def split_key(key: str) -> tuple[str, str]:
    """(game, selector) of ``<game>.<selector>`` (any GoldRef spelling is read; ValueError otherwise)."""
    ref = GoldRef.parse(key)
    return ref.game, ref.selector


def wanted(spec: GameSpec) -> dict[str, list[str]]:
    """Selector name -> unique_ids: one per main slot, plus ALL (bonus numbers are not modelled)."""
    ids = [f"{spec.code}_N{i}" for i in range(1, spec.n_main + 1)]
    return {**{f"N{i + 1}": [u] for i, u in enumerate(ids)}, ALL: ids}


def _to(sel: ModelSeriesSelector, code: str) -> Selector:
    return Selector(sel.selector_id, code, sel.game_id, sel.name, tuple(sel.unique_ids or ()))  # type: ignore[arg-type]


def seed_selectors(engine: Engine, spec: GameSpec) -> list[Selector]:
    """Create the game's selectors (idempotent; a selector whose slots changed is updated)."""
    out = []
    with Session(engine) as s:
        have = {x.name: x for x in s.exec(select(ModelSeriesSelector)
                                          .where(ModelSeriesSelector.game_id == spec.game_id))}
        for name, ids in wanted(spec).items():
            row = have.get(name)
            if row is None:
                row = ModelSeriesSelector(game_id=spec.game_id, name=name, unique_ids=ids,
                                          partition_key=partition_key(spec.code, name))
                s.add(row)
            elif list(row.unique_ids or []) != ids:
                row.unique_ids = ids
                s.add(row)
        s.commit()
        rows = s.exec(select(ModelSeriesSelector).where(ModelSeriesSelector.game_id == spec.game_id)
                      .order_by(ModelSeriesSelector.selector_id)).all()
        out = [_to(r, spec.code) for r in rows if r.name in wanted(spec)]
    return out


def get_selector(engine: Engine, game: str | GoldRef, name: str | None = None) -> Selector:
    """The selector of (game, name), or of a GoldRef / any of its spellings (``get_selector(engine, "loto6.N1")``)."""
    if name is None:
        ref = GoldRef.parse(game)
        game, name = ref.game, ref.selector
    return _to(find_selector(engine, str(game), name), str(game))


def selector_by_id(engine: Engine, selector_id: int) -> Selector:
    with Session(engine) as s:
        row = s.exec(select(ModelSeriesSelector, DatasetGame.code)
                     .join(DatasetGame, DatasetGame.game_id == ModelSeriesSelector.game_id)
                     .where(ModelSeriesSelector.selector_id == selector_id)).first()
    if row is None:
        raise LookupError(f"no selector with id {selector_id}")
    return _to(row[0], row[1])


def all_partition_keys(engine: Engine, active_only: bool = True) -> list[str]:
    with Session(engine) as s:
        q = select(ModelSeriesSelector.partition_key).join(
            DatasetGame, DatasetGame.game_id == ModelSeriesSelector.game_id)
        if active_only:
            q = q.where(DatasetGame.active.is_(True))  # type: ignore[attr-defined]
        return list(s.exec(q.order_by(ModelSeriesSelector.selector_id)))
