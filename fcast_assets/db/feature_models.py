"""SQLModel tables of the ``feature_`` section (contract: shared SCHEMA.md): feature definitions as data.

A generator is (kind, library, symbol, params, output schema), seeded from ``fcast_assets/features/generators.yaml``;
a feature is one named output (prefix ``hist_`` / ``fut_`` / ``stat_``) with its group. Values live in the lake
(gold Delta tables per game); ``feature_materialization`` points at them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Optional

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from .models import _json, _text, utcnow


class FeatureGenerator(SQLModel, table=True):
    __tablename__ = "feature_generator"
    generator_id: Optional[int] = Field(default=None, primary_key=True)
    name: str = Field(unique=True, index=True, description="registration name in generators.yaml")
    kind: str = Field(index=True, description="transform / embedding / anomaly / calendar / static")
    library: str = Field(description="fcast, pandas, scikit-learn, chronos-forecasting, timesfm, ...")
    symbol: str = Field(description="qualname of the callable that computes the features")
    params: Any = _json()
    output_schema: Any = _json(description="list of {name, group, dtype} the generator writes")
    description: Optional[str] = _text()
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class FeatureDef(SQLModel, table=True):
    __tablename__ = "feature_def"
    feature_id: Optional[int] = Field(default=None, primary_key=True)
    name: str = Field(unique=True, index=True, description="hist_* / fut_* / stat_*")
    group: str = Field(index=True, description="hist / fut / stat")
    dtype: str = Field(default="float64")
    generator_id: Optional[int] = Field(default=None, foreign_key="feature_generator.generator_id", index=True)
    definition: Any = _json(description="params of this one output (window, lag, stat, ...)")
    covers_horizon: bool = Field(default=False, description="values exist for every step of the forecast horizon")
    available: Optional[str] = Field(default=None, description="past_only / known_future / static")
    created_at: datetime = Field(default_factory=utcnow)


class FeatureSet(SQLModel, table=True):
    __tablename__ = "feature_set"
    feature_set_id: Optional[int] = Field(default=None, primary_key=True)
    name: str = Field(unique=True, index=True)
    description: Optional[str] = _text()
    created_at: datetime = Field(default_factory=utcnow)


class FeatureSetItem(SQLModel, table=True):
    __tablename__ = "feature_set_item"
    __table_args__ = (UniqueConstraint("feature_set_id", "feature_id"),)
    item_id: Optional[int] = Field(default=None, primary_key=True)
    feature_set_id: int = Field(foreign_key="feature_set.feature_set_id", index=True)
    feature_id: int = Field(foreign_key="feature_def.feature_id", index=True)
    required: bool = True
    ord: int = 0


class FeatureMaterialization(SQLModel, table=True):
    __tablename__ = "feature_materialization"
    materialization_id: Optional[int] = Field(default=None, primary_key=True)
    dataset_version_id: Optional[int] = Field(default=None, foreign_key="dataset_version.dataset_version_id",
                                              index=True)
    feature_set_id: Optional[int] = Field(default=None, foreign_key="feature_set.feature_set_id", index=True)
    game_id: Optional[int] = Field(default=None, foreign_key="dataset_game.game_id", index=True)
    table_name: str = Field(default="gold_features", description="gold_features / gold_static / gold_futr / "
                            "gold_embeddings")
    lake_uri: str = Field(description="Delta table URI with its version: <uri>@v<n>")
    schema_hash: str
    row_count: int = 0
    horizon: Optional[int] = None
    availability: Any = _json(description="{feature name: covers the horizon (bool)}")
    stats: Any = _json(description="feature counts per group, null rates, ...")
    created_at: datetime = Field(default_factory=utcnow)
