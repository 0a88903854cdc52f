"""run_ tables: table-driven execution (contract: shared SCHEMA.md).

A plan is an ordered list of steps; each step names its callable by qualname and carries its arguments as JSON.
``run_validation`` holds the pre-flight check of each step; one execution of a plan is a ``run_execution`` row
(an addition) that the results, metrics, errors, artifacts and resources of that execution point at.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Optional

from sqlmodel import Field, SQLModel

from .models import _json, _text, utcnow


class RunPlan(SQLModel, table=True):
    __tablename__ = "run_plan"
    plan_id: Optional[int] = Field(default=None, primary_key=True)
    name: str = Field(unique=True, index=True)
    model_id: Optional[int] = Field(default=None, foreign_key="model_registry.model_id",
                                    description="model_registry.model_id when the plan trains or retrains one")
    selector_id: Optional[int] = Field(default=None, foreign_key="model_series_selector.selector_id")
    dataset_version_id: Optional[int] = Field(default=None, foreign_key="dataset_version.dataset_version_id")
    enabled: bool = True
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    library: str = "neuralforecast"
    data: Optional[str] = Field(default=None, description="data set name: synthetic, synthetic_futr, ... or "
                                "gold:<game>:<selector> (a game's gold features)")
    metrics: Any = _json(description="metric names for the evaluate step: mae, rmse, smape, mase, scaled_crps")
    description: Optional[str] = _text()
    expect: Any = _json(description="expected outcome for examples/tests: 'valid' or the rule that must stop it")
    source: Optional[str] = Field(default=None, description="the file the plan was loaded from")


class RunStep(SQLModel, table=True):
    __tablename__ = "run_step"
    step_id: Optional[int] = Field(default=None, primary_key=True)
    plan_id: int = Field(foreign_key="run_plan.plan_id", index=True)
    ord: int
    method: str = Field(description="qualname of the callable, e.g. neuralforecast.core.NeuralForecast.fit")
    params: Any = _json()
    depends_on_step_id: Optional[int] = Field(default=None, foreign_key="run_step.step_id")
    name: Optional[str] = Field(default=None, description="short label: model, init, fit, predict, ...")


class RunValidation(SQLModel, table=True):
    __tablename__ = "run_validation"
    validation_id: Optional[int] = Field(default=None, primary_key=True)
    step_id: int = Field(foreign_key="run_step.step_id", index=True)
    plan_id: int = Field(foreign_key="run_plan.plan_id", index=True)
    release_id: Optional[int] = Field(default=None, foreign_key="registry_release.release_id")
    ok: bool
    violations: Any = _json(description="list of {param, rule, message, fix}")
    checked_at: datetime = Field(default_factory=utcnow)


class RunExecution(SQLModel, table=True):
    """One execution of a plan (an addition: groups the per-step rows of one run)."""

    __tablename__ = "run_execution"
    execution_id: Optional[int] = Field(default=None, primary_key=True)
    plan_id: int = Field(foreign_key="run_plan.plan_id", index=True)
    release_id: Optional[int] = Field(default=None, foreign_key="registry_release.release_id")
    status: str = Field(default="running", description="running / success / suspect (a step's output broke a "
                        "post-condition) / failed")
    started_at: datetime = Field(default_factory=utcnow)
    ended_at: Optional[datetime] = None
    work_dir: Optional[str] = None


class RunResult(SQLModel, table=True):
    __tablename__ = "run_result"
    result_id: Optional[int] = Field(default=None, primary_key=True)
    step_id: int = Field(foreign_key="run_step.step_id", index=True)
    execution_id: Optional[int] = Field(default=None, foreign_key="run_execution.execution_id", index=True)
    status: str = Field(description="success / suspect (ran; the output breaks a post-condition, listed in "
                        "summary.breaches) / failed / skipped")
    started_at: Optional[datetime] = None
    ended_at: Optional[datetime] = None
    summary: Any = _json()


class RunMetric(SQLModel, table=True):
    __tablename__ = "run_metric"
    metric_id: Optional[int] = Field(default=None, primary_key=True)
    step_id: int = Field(foreign_key="run_step.step_id", index=True)
    execution_id: Optional[int] = Field(default=None, foreign_key="run_execution.execution_id", index=True)
    metric: str
    value: Optional[float] = None
    unique_id: Optional[str] = Field(default=None, description="null = overall (mean over series)")
    split: str = Field(default="test", description="test / cv")
    window: Optional[int] = Field(default=None, description="cross-validation window (cutoff order); null = all")
    model: Optional[str] = Field(default=None, description="forecast column (model alias)")


class RunError(SQLModel, table=True):
    __tablename__ = "run_error"
    error_id: Optional[int] = Field(default=None, primary_key=True)
    step_id: int = Field(foreign_key="run_step.step_id", index=True)
    execution_id: Optional[int] = Field(default=None, foreign_key="run_execution.execution_id", index=True)
    exception_type: str
    message: Optional[str] = _text()
    traceback: Optional[str] = _text()


class RunArtifact(SQLModel, table=True):
    __tablename__ = "run_artifact"
    artifact_id: Optional[int] = Field(default=None, primary_key=True)
    plan_id: int = Field(foreign_key="run_plan.plan_id", index=True)
    step_id: Optional[int] = Field(default=None, foreign_key="run_step.step_id")
    execution_id: Optional[int] = Field(default=None, foreign_key="run_execution.execution_id", index=True)
    kind: str = Field(description="model_dir / predictions / cv_predictions / insample / metrics")
    uri: str
    created_at: datetime = Field(default_factory=utcnow)


class RunResource(SQLModel, table=True):
    __tablename__ = "run_resource"
    resource_id: Optional[int] = Field(default=None, primary_key=True)
    step_id: Optional[int] = Field(default=None, foreign_key="run_step.step_id", index=True)
    model_id: Optional[int] = Field(default=None, foreign_key="model_registry.model_id", index=True,
                                    description="the trained model this training / prediction step belongs to")
    execution_id: Optional[int] = Field(default=None, foreign_key="run_execution.execution_id", index=True)
    wall_s: float
    cpu_user_s: Optional[float] = None
    cpu_sys_s: Optional[float] = None
    max_rss_mb: Optional[float] = None
    max_vram_mb: Optional[float] = Field(default=None, description="null without a GPU (never a made-up 0)")
    io_read_mb: Optional[float] = None
    io_write_mb: Optional[float] = None
    device: Optional[str] = None
