"""SQLModel tables of the ``model_`` section (contract: shared SCHEMA.md): trained models per game.

Per game there is one ``model_series_selector`` per main slot (N1..Nk) and one ``ALL`` selector over every slot;
``model_registry`` holds the current model of each selector (class, hyperparameters, the exogenous lists it was
trained with, artifact path, timestamps); every training writes a ``model_version`` row (an addition: retraining
keeps the old artifact and row); ``model_xai`` holds feature importances.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Optional

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from .models import _json, _text, utcnow


class ModelSeriesSelector(SQLModel, table=True):
    __tablename__ = "model_series_selector"
    __table_args__ = (UniqueConstraint("game_id", "name"),)
    selector_id: Optional[int] = Field(default=None, primary_key=True)
    game_id: int = Field(foreign_key="dataset_game.game_id", index=True)
    name: str = Field(description="N1..Nk (one slot) or ALL (every main slot)")
    unique_ids: Any = _json(description="JSON list of the silver/gold unique_ids the selector covers")
    partition_key: str = Field(unique=True, index=True, description="Dagster `model` partition: <game>.<name>")
    created_at: datetime = Field(default_factory=utcnow)


class ModelRegistry(SQLModel, table=True):
    __tablename__ = "model_registry"
    __table_args__ = (UniqueConstraint("game_id", "selector_id"),)
    model_id: Optional[int] = Field(default=None, primary_key=True)
    game_id: int = Field(foreign_key="dataset_game.game_id", index=True)
    selector_id: int = Field(foreign_key="model_series_selector.selector_id", index=True)
    library: str = "neuralforecast"
    model_class: str = Field(description="qualname of the model class, e.g. neuralforecast.models.nhits.NHITS")
    release_id: Optional[int] = Field(default=None, foreign_key="registry_release.release_id",
                                      description="library release the current version was trained with")
    series_mode: str = Field(description="per_slot / multivariate_joint / global_univariate")
    n_series: int
    freq: Any = _json(description="time index step: 1 = one draw (ds is draw_no)")
    hyperparams: Any = _json(description="constructor arguments other than the exogenous lists")
    hist_exog: Any = _json()
    stat_exog: Any = _json()
    futr_exog: Any = _json()
    cv: Any = _json(description="cross-validation settings: n_windows, step_size")
    metrics: Any = _json(description="metric names and baselines the evaluation uses")
    feature_set_id: Optional[int] = Field(default=None, foreign_key="feature_set.feature_set_id")
    dataset_version_id: Optional[int] = Field(default=None, foreign_key="dataset_version.dataset_version_id")
    version: int = Field(default=0, description="current version (model_version.version)")
    artifact_uri: Optional[str] = Field(default=None, description="NeuralForecast.save folder of the current version")
    status: str = Field(default="registered", description="registered / trained / failed")
    notes: Any = _json(description="model choice notes: capability and compat checks, dropped exogenous groups")
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class ModelVersion(SQLModel, table=True):
    """One training of a model (an addition): retraining adds a row and keeps the old artifact."""

    __tablename__ = "model_version"
    __table_args__ = (UniqueConstraint("model_id", "version"),)
    version_id: Optional[int] = Field(default=None, primary_key=True)
    model_id: int = Field(foreign_key="model_registry.model_id", index=True)
    version: int
    artifact_uri: str
    release_id: Optional[int] = Field(default=None, foreign_key="registry_release.release_id")
    library_version: Optional[str] = None
    dataset_version_id: Optional[int] = Field(default=None, foreign_key="dataset_version.dataset_version_id")
    feature_materialization_id: Optional[int] = Field(
        default=None, foreign_key="feature_materialization.materialization_id")
    plan_id: Optional[int] = Field(default=None, foreign_key="run_plan.plan_id")
    execution_id: Optional[int] = Field(default=None, foreign_key="run_execution.execution_id")
    hyperparams: Any = _json()
    hist_exog: Any = _json()
    stat_exog: Any = _json()
    futr_exog: Any = _json()
    train_rows: Optional[int] = None
    last_draw_no: Optional[int] = None
    cv_metrics: Any = _json(description="{model or baseline: {metric: value}} over the CV windows")
    beats_baselines: Optional[bool] = Field(default=None, description="lower error than every baseline on every "
                                            "metric")
    reason: Optional[str] = _text(description="why it was trained: initial / new draws / library version / manual")
    created_at: datetime = Field(default_factory=utcnow)


class ModelXai(SQLModel, table=True):
    __tablename__ = "model_xai"
    xai_id: Optional[int] = Field(default=None, primary_key=True)
    model_id: int = Field(foreign_key="model_registry.model_id", index=True)
    version: int
    feature_name: str
    importance: float = Field(description="increase of the CV-window MAE when the feature is permuted")
    importance_std: Optional[float] = None
    method: str = Field(description="permutation (on the CV windows) / neuralforecast.explain")
    detail: Any = _json()
    created_at: datetime = Field(default_factory=utcnow)
