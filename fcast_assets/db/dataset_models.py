"""SQLModel tables of the ``dataset_`` section (contract: shared SCHEMA.md): lottery games and data versions.

Games are data: a row in ``dataset_game`` (plus its ``dataset_game_slot`` rows) is a Dagster ``game`` partition.
Draws themselves live in the Delta lake; these tables hold the rules, the versions (which point at the exact Delta
table version), the data-quality issues and the predictability profile.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Optional

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from .models import _json, _text, utcnow


class DatasetGame(SQLModel, table=True):
    __tablename__ = "dataset_game"
    game_id: Optional[int] = Field(default=None, primary_key=True)
    code: str = Field(unique=True, index=True, description="partition key: numbers3, numbers4, miniloto, ...")
    name: str
    n_main: int
    n_bonus: int = 0
    number_min: int
    number_max: int
    allow_repeat: bool = False
    order_matters: bool = False
    draw_weekdays: Any = _json(description="JSON list of weekday names (mon..sun) of the current calendar")
    active: bool = Field(default=True, index=True)
    rules: Any = _json(description="extra rules: per-slot ranges, sorted main numbers, bonus distinct, ...")
    description: Optional[str] = _text()
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class DatasetGameSlot(SQLModel, table=True):
    __tablename__ = "dataset_game_slot"
    __table_args__ = (UniqueConstraint("game_id", "slot_code"),)
    slot_id: Optional[int] = Field(default=None, primary_key=True)
    game_id: int = Field(foreign_key="dataset_game.game_id", index=True)
    slot_code: str = Field(description="N1..Nk (main), B1.. (bonus)")
    slot_index: int
    role: str = Field(description="main / bonus")
    number_min: Optional[int] = None
    number_max: Optional[int] = None


class DatasetSource(SQLModel, table=True):
    __tablename__ = "dataset_source"
    __table_args__ = (UniqueConstraint("game_id", "url"),)
    source_id: Optional[int] = Field(default=None, primary_key=True)
    game_id: int = Field(foreign_key="dataset_game.game_id", index=True)
    url: str
    format: str = Field(description="embedded_csv / mizuho_csv / mizuho_html")
    terms_url: Optional[str] = None
    checked_at: Optional[datetime] = None
    enabled: bool = True


class DatasetVersion(SQLModel, table=True):
    __tablename__ = "dataset_version"
    dataset_version_id: Optional[int] = Field(default=None, primary_key=True)
    game_id: int = Field(foreign_key="dataset_game.game_id", index=True)
    layer: str = Field(default="bronze", index=True, description="bronze / silver")
    created_at: datetime = Field(default_factory=utcnow)
    source_hash: str = Field(index=True, description="sha256 over the ordered raw rows of the layer")
    row_count: int
    first_draw_date: Optional[date] = None
    last_draw_date: Optional[date] = None
    first_draw_no: Optional[int] = None
    last_draw_no: Optional[int] = None
    lake_uri: str = Field(description="Delta table URI with its version: <uri>@v<n>")
    delta_version: Optional[int] = None
    source: Optional[str] = None
    run_id: Optional[str] = None
    stats: Any = _json()


class DatasetDqIssue(SQLModel, table=True):
    __tablename__ = "dataset_dq_issue"
    dq_issue_id: Optional[int] = Field(default=None, primary_key=True)
    dataset_version_id: Optional[int] = Field(default=None, foreign_key="dataset_version.dataset_version_id",
                                              index=True)
    game_id: Optional[int] = Field(default=None, foreign_key="dataset_game.game_id", index=True)
    unique_id: str = Field(index=True, description="<game>_N1 ... or <game> for a whole-draw rule")
    ds: Optional[date] = None
    draw_no: Optional[int] = None
    rule: str = Field(index=True)
    severity: str = Field(default="error", description="error / warn")
    detail: Any = _json()
    created_at: datetime = Field(default_factory=utcnow)


class DatasetProfile(SQLModel, table=True):
    __tablename__ = "dataset_profile"
    __table_args__ = (UniqueConstraint("dataset_version_id", "unique_id", "metric"),)
    profile_id: Optional[int] = Field(default=None, primary_key=True)
    dataset_version_id: int = Field(foreign_key="dataset_version.dataset_version_id", index=True)
    unique_id: str = Field(index=True)
    metric: str = Field(index=True)
    value: Optional[float] = None
    detail: Any = _json()
    created_at: datetime = Field(default_factory=utcnow)
