"""SQLModel tables of the metadata database ``forecast_meta`` (contract: shared SCHEMA.md).

Table and column names follow the contract; extra columns are additions, never renames.
JSON columns are JSON on SQLite and JSONB on PostgreSQL.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Optional

from sqlalchemy import JSON, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

JSONType = JSON(none_as_null=False).with_variant(JSONB(none_as_null=False), "postgresql")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _json(**kw: Any) -> Any:
    return Field(default=None, sa_type=JSONType, nullable=True, **kw)


def _text(**kw: Any) -> Any:
    return Field(default=None, sa_type=Text, **kw)


# --------------------------------------------------------------------------------------------- registry_
class RegistryLibrary(SQLModel, table=True):
    __tablename__ = "registry_library"
    library_id: Optional[int] = Field(default=None, primary_key=True)
    name: str = Field(unique=True, index=True, description="partition key: neuralforecast, chronos, ...")
    import_name: str
    dist_name: str
    vendor: Optional[str] = None
    repo_url: Optional[str] = None
    docs_url: Optional[str] = None


class RegistryRelease(SQLModel, table=True):
    __tablename__ = "registry_release"
    __table_args__ = (UniqueConstraint("library_id", "version"),)
    release_id: Optional[int] = Field(default=None, primary_key=True)
    library_id: int = Field(foreign_key="registry_library.library_id", index=True)
    version: str
    # the release number as text that sorts in PEP 440 order (registry.store.version_order): SQL orders by it
    version_order: Optional[str] = None
    scanned_at: datetime = Field(default_factory=utcnow)
    python_version: str
    environment: Any = _json()
    scan_seconds: Optional[float] = None
    stats: Any = _json()


class RegistrySymbol(SQLModel, table=True):
    __tablename__ = "registry_symbol"
    __table_args__ = (UniqueConstraint("release_id", "qualname"),)
    symbol_id: Optional[int] = Field(default=None, primary_key=True)
    release_id: int = Field(foreign_key="registry_release.release_id", index=True)
    qualname: str = Field(index=True)
    module: str
    name: str
    kind: str = Field(index=True, description="module / class / function / method / property")
    parent_symbol_id: Optional[int] = Field(default=None, foreign_key="registry_symbol.symbol_id", index=True)
    is_public: bool = True
    doc_summary: Optional[str] = _text()
    docstring: Optional[str] = _text()
    doc_style: Optional[str] = None
    signature: Optional[str] = _text()
    defined_in: Optional[str] = Field(default=None, description="qualname of the class that defines an inherited member")
    bases: Any = _json()
    source_file: Optional[str] = None
    lineno: Optional[int] = None


class RegistrySymbolAlias(SQLModel, table=True):
    __tablename__ = "registry_symbol_alias"
    __table_args__ = (UniqueConstraint("release_id", "alias_qualname"),)
    alias_id: Optional[int] = Field(default=None, primary_key=True)
    release_id: int = Field(foreign_key="registry_release.release_id", index=True)
    symbol_id: int = Field(foreign_key="registry_symbol.symbol_id", index=True)
    alias_qualname: str = Field(index=True)
    module: str


class RegistryImportFailure(SQLModel, table=True):
    __tablename__ = "registry_import_failure"
    failure_id: Optional[int] = Field(default=None, primary_key=True)
    release_id: int = Field(foreign_key="registry_release.release_id", index=True)
    module: str
    exception_type: str
    message: Optional[str] = _text()


class RegistryParam(SQLModel, table=True):
    __tablename__ = "registry_param"
    __table_args__ = (UniqueConstraint("symbol_id", "name"),)
    param_id: Optional[int] = Field(default=None, primary_key=True)
    symbol_id: int = Field(foreign_key="registry_symbol.symbol_id", index=True)
    name: str = Field(index=True)
    position: int
    kind: str
    annotation: Optional[str] = _text()
    type_norm: Any = _json()
    default: Any = _json()
    has_default: bool = False
    required: bool = False
    doc_type: Optional[str] = _text()
    doc_text: Optional[str] = _text()
    sources: Any = _json(description="where each fact came from: signature / docstring:google / ...")


class RegistryParamEnum(SQLModel, table=True):
    __tablename__ = "registry_param_enum"
    enum_id: Optional[int] = Field(default=None, primary_key=True)
    param_id: int = Field(foreign_key="registry_param.param_id", index=True)
    value: Any = _json()
    source: str = Field(description="literal / docstring / probe")


class RegistryParamConstraint(SQLModel, table=True):
    __tablename__ = "registry_param_constraint"
    constraint_id: Optional[int] = Field(default=None, primary_key=True)
    param_id: int = Field(foreign_key="registry_param.param_id", index=True)
    constraint_type: str = Field(description="range / one_of / requires / excludes / custom")
    spec: Any = _json()
    message: Optional[str] = _text()
    source: str


class RegistryCapability(SQLModel, table=True):
    __tablename__ = "registry_capability"
    capability_code: str = Field(primary_key=True)
    description: str


class RegistrySymbolCapability(SQLModel, table=True):
    __tablename__ = "registry_symbol_capability"
    __table_args__ = (UniqueConstraint("symbol_id", "capability_code", "source"),)
    id: Optional[int] = Field(default=None, primary_key=True)
    symbol_id: int = Field(foreign_key="registry_symbol.symbol_id", index=True)
    capability_code: str = Field(foreign_key="registry_capability.capability_code", index=True)
    value: Any = _json()
    source: str = Field(description="declared / observed")
    detail: Any = _json()


class RegistryLoss(SQLModel, table=True):
    __tablename__ = "registry_loss"
    loss_id: Optional[int] = Field(default=None, primary_key=True)
    symbol_id: int = Field(foreign_key="registry_symbol.symbol_id", unique=True)
    category: str = Field(description="point / probabilistic")
    output_type: str = Field(description="point / quantile / distribution")
    supports_level: bool
    supports_quantiles: bool
    output_names: Any = _json()
    evidence: Any = _json(description="the attributes the classification was read from")


class RegistryReleaseDiff(SQLModel, table=True):
    __tablename__ = "registry_release_diff"
    diff_id: Optional[int] = Field(default=None, primary_key=True)
    library_id: int = Field(foreign_key="registry_library.library_id", index=True)
    from_release_id: int = Field(foreign_key="registry_release.release_id")
    to_release_id: int = Field(foreign_key="registry_release.release_id", index=True)
    qualname: str
    param_name: Optional[str] = None
    change: str = Field(description="added / removed / changed")
    detail: Any = _json()


class RegistrySearchDoc(SQLModel, table=True):
    """One searchable document per symbol and per parameter; indexed by FTS5 (SQLite) or tsvector (PostgreSQL)."""

    __tablename__ = "registry_search_doc"
    doc_id: Optional[int] = Field(default=None, primary_key=True)
    release_id: int = Field(foreign_key="registry_release.release_id", index=True)
    symbol_id: int = Field(foreign_key="registry_symbol.symbol_id", index=True)
    param_id: Optional[int] = Field(default=None, foreign_key="registry_param.param_id")
    library: str
    kind: str
    qualname: str
    name: str
    body: Optional[str] = _text()


# ----------------------------------------------------------------------------------------------- compat_
class CompatRun(SQLModel, table=True):
    __tablename__ = "compat_run"
    compat_run_id: Optional[int] = Field(default=None, primary_key=True)
    release_id: int = Field(foreign_key="registry_release.release_id", index=True)
    library: str
    started_at: datetime = Field(default_factory=utcnow)
    finished_at: Optional[datetime] = None
    workers: int = 1
    cells_total: int = 0
    cells_ok: int = 0
    cells_error: int = 0
    cells_timeout: int = 0
    cells_skipped: int = 0
    cells_suspect: int = 0
    wall_seconds: Optional[float] = None
    config: Any = _json(description="models, families, timeouts; rerun_of for a single re-run cell")


class CompatResult(SQLModel, table=True):
    __tablename__ = "compat_result"
    result_id: Optional[int] = Field(default=None, primary_key=True)
    compat_run_id: int = Field(foreign_key="compat_run.compat_run_id", index=True)
    release_id: int = Field(foreign_key="registry_release.release_id", index=True)
    model: str = Field(index=True, description="model class qualname")
    method: str = Field(index=True, description="NeuralForecast.fit, NeuralForecast.predict, Model.__init__, ...")
    param: str = Field(index=True)
    value: Any = _json()
    value_label: str
    scenario: str = Field(default="baseline", description="the fitted context a cell ran in, e.g. loss=MQLoss")
    scenario_facts: Any = _json(description="canonical facts of the setup (ds_dtype, freq, loss, loss_kind, exog "
                                "lists and whether the data held them, futr_df, state, n_windows, ...): the cell "
                                "is evidence only for plan steps whose derived facts match")
    status: str = Field(index=True, description="ok / error / timeout / skipped / suspect")
    exception_type: Optional[str] = None
    message: Optional[str] = _text()
    seconds: Optional[float] = None
    context: Any = _json(description="group setup + cell spec (enough to re-run), data shape, warnings")


class RegistryModelLossCompat(SQLModel, table=True):
    __tablename__ = "registry_model_loss_compat"
    __table_args__ = (UniqueConstraint("compat_run_id", "model_symbol_id", "loss_symbol_id"),)
    id: Optional[int] = Field(default=None, primary_key=True)
    model_symbol_id: int = Field(foreign_key="registry_symbol.symbol_id", index=True)
    loss_symbol_id: int = Field(foreign_key="registry_symbol.symbol_id", index=True)
    status: str = Field(description="ok / error")
    exception_type: Optional[str] = None
    message: Optional[str] = _text()
    compat_run_id: int = Field(foreign_key="compat_run.compat_run_id", index=True)
    result_id: Optional[int] = Field(default=None, foreign_key="compat_result.result_id")


REGISTRY_TABLES = [
    m.__table__  # type: ignore[attr-defined]
    for m in (
        RegistryLibrary, RegistryRelease, RegistrySymbol, RegistrySymbolAlias, RegistryImportFailure,
        RegistryParam, RegistryParamEnum, RegistryParamConstraint, RegistryCapability,
        RegistrySymbolCapability, RegistryLoss, RegistryReleaseDiff, RegistrySearchDoc,
    )
]
