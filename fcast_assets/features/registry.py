"""The generator registry: ``generators.yaml`` -> ``feature_generator`` rows; each generator's output columns ->
``feature_def`` rows (name, group, dtype, availability). The output schema is found by running the generator on a
small synthetic series, so it always matches what the generator really writes."""

from __future__ import annotations

import importlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import pandas as pd
import yaml
from sqlalchemy import Engine
from sqlmodel import Session, select

from fcast_assets.db.feature_models import FeatureDef, FeatureGenerator, FeatureSet, FeatureSetItem
from fcast_assets.db.models import utcnow
from fcast_assets.lake.games import GameSpec
from fcast_assets.vocab import Exog

GENERATORS_FILE = Path(__file__).with_name("generators.yaml")
PREFIXES = {e.feature_group: e.feature_prefix for e in Exog}
AVAILABILITY = {"hist": "past_only", "fut": "known_future", "stat": "static"}
DEFAULT_SET = "default"


@dataclass(frozen=True)
class Generator:
    name: str
    kind: str
    group: str
    library: str
    symbol: str
    params: dict[str, Any] = field(default_factory=dict)
    table: Optional[str] = None
    description: Optional[str] = None

    @property
    def target(self) -> str:
        return self.table or {"stat": "gold_static"}.get(self.group, "gold_features")

    def func(self) -> Callable[..., pd.DataFrame]:
        mod, _, attr = self.symbol.rpartition(".")
        return getattr(importlib.import_module(mod), attr)

    def __call__(self, frame: pd.DataFrame, spec: GameSpec, **extra: Any) -> pd.DataFrame:
        out = self.func()(frame, spec, **{**self.params, **extra})
        bad = [c for c in out.columns if not c.startswith(PREFIXES[self.group])]
        if bad:
            raise ValueError(f"generator {self.name} ({self.group}) writes columns without the "
                             f"{PREFIXES[self.group]} prefix: {bad}")
        return out


def load_generators(path: Optional[Path] = None) -> list[Generator]:
    data = yaml.safe_load((path or GENERATORS_FILE).read_text(encoding="utf-8"))
    out = []
    for g in data["generators"]:
        if g["group"] not in PREFIXES:
            raise ValueError(f"generator {g['name']}: group must be one of {sorted(PREFIXES)}")
        out.append(Generator(name=g["name"], kind=g["kind"], group=g["group"], library=g.get("library", "fcast"),
                             symbol=g["symbol"], params=dict(g.get("params") or {}), table=g.get("table"),
                             description=g.get("description")))
    return out


def _probe_spec() -> GameSpec:
    return GameSpec(code="probe", name="probe", n_main=2, n_bonus=1, number_min=1, number_max=9,
                    allow_repeat=False, order_matters=False, draw_weekdays=("mon", "thu"))


def _probe_frame(n: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    parts = []
    for slot in ("N1", "N2", "B1"):
        parts.append(pd.DataFrame({"unique_id": f"probe_{slot}", "draw_no": np.arange(1, n + 1),
                                   "ds": pd.date_range("2020-01-06", periods=n, freq="3D"),
                                   "y": rng.integers(1, 10, n).astype(float)}))
    return pd.concat(parts, ignore_index=True)


def output_schema(gen: Generator) -> list[dict[str, str]]:
    out = gen(_probe_frame(), _probe_spec())
    return [{"name": c, "group": gen.group, "dtype": str(out[c].dtype)} for c in out.columns]


def sync_registry(engine: Engine, generators: Optional[list[Generator]] = None,
                  set_name: str = DEFAULT_SET, retries: int = 3) -> dict[str, Any]:
    """Upsert generators and their feature_def rows; the default feature_set holds every registered feature.

    Several feature assets run it at once (multiprocess executor): a unique-key race is retried."""
    from sqlalchemy.exc import IntegrityError, OperationalError

    generators = generators or load_generators()
    for attempt in range(retries):
        try:
            return _sync(engine, generators, set_name)
        except (IntegrityError, OperationalError):
            if attempt == retries - 1:
                raise
            time.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")


def _sync(engine: Engine, generators: list[Generator], set_name: str) -> dict[str, Any]:
    names: dict[str, Generator] = {}
    with Session(engine) as s:
        fset = s.exec(select(FeatureSet).where(FeatureSet.name == set_name)).first()
        if fset is None:
            fset = FeatureSet(name=set_name, description="every registered hist_/fut_/stat_ feature")
            s.add(fset)
            s.flush()
        ord_ = 0
        for gen in generators:
            schema = output_schema(gen)
            row = s.exec(select(FeatureGenerator).where(FeatureGenerator.name == gen.name)).first()
            if row is None:
                row = FeatureGenerator(name=gen.name, kind=gen.kind, library=gen.library, symbol=gen.symbol)
            row.kind, row.library, row.symbol = gen.kind, gen.library, gen.symbol
            row.params, row.output_schema, row.description = gen.params, schema, gen.description
            row.updated_at = utcnow()
            s.add(row)
            s.flush()
            for col in schema:
                if col["name"] in names:
                    raise ValueError(f"feature {col['name']} written by {names[col['name']].name} and {gen.name}")
                names[col["name"]] = gen
                fd = s.exec(select(FeatureDef).where(FeatureDef.name == col["name"])).first()
                if fd is None:
                    fd = FeatureDef(name=col["name"], group=gen.group)
                fd.group, fd.dtype, fd.generator_id = gen.group, col["dtype"], row.generator_id
                fd.definition = {"generator": gen.name, "params": gen.params, "table": gen.target}
                fd.available = AVAILABILITY[gen.group]
                fd.covers_horizon = gen.group in ("fut", "stat")
                s.add(fd)
                s.flush()
                item = s.exec(select(FeatureSetItem).where(FeatureSetItem.feature_set_id == fset.feature_set_id,
                                                           FeatureSetItem.feature_id == fd.feature_id)).first()
                if item is None:
                    item = FeatureSetItem(feature_set_id=fset.feature_set_id, feature_id=fd.feature_id)  # type: ignore[arg-type]
                item.ord, item.required = ord_, gen.group != "hist" or gen.kind == "transform"
                ord_ += 1
                s.add(item)
        s.commit()
        return {"generators": len(generators), "features": len(names), "feature_set_id": fset.feature_set_id}


def register_features(engine: Engine, names: dict[str, str], generator: str, kind: str, library: str, symbol: str,
                      params: dict[str, Any]) -> None:
    """Register features produced outside generators.yaml (e.g. hist_emb_* from an embedding model)."""
    with Session(engine) as s:
        row = s.exec(select(FeatureGenerator).where(FeatureGenerator.name == generator)).first()
        if row is None:
            row = FeatureGenerator(name=generator, kind=kind, library=library, symbol=symbol)
        row.params = params
        row.output_schema = [{"name": n, "group": n.split("_", 1)[0], "dtype": d} for n, d in names.items()]
        s.add(row)
        s.flush()
        for n, d in names.items():
            grp = n.split("_", 1)[0]
            fd = s.exec(select(FeatureDef).where(FeatureDef.name == n)).first() or FeatureDef(name=n, group=grp)
            fd.dtype, fd.generator_id, fd.available = d, row.generator_id, AVAILABILITY[grp]
            fd.covers_horizon = grp in ("fut", "stat")
            fd.definition = {"generator": generator, "params": params}
            s.add(fd)
        s.commit()
