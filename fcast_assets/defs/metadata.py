"""Metadata helpers shared by the assets: a table's schema (SQL or Arrow / Delta), a DataFrame preview, inline
PNG images and progress logging for the UI."""

import base64
from pathlib import Path
from typing import Any, Callable, Optional

import dagster as dg
import pandas as pd
import pyarrow as pa
from sqlalchemy import Table

INLINE_IMAGE_MAX_BYTES = 1_000_000  # larger images are linked by path only


def _field_descriptions(table: Table) -> dict[str, str]:
    """The SQLModel field descriptions of ``table``'s model class (SQLModel keeps them on the pydantic field, not
    as a column comment)."""
    from sqlmodel import SQLModel

    stack, found = list(SQLModel.__subclasses__()), None
    while stack and found is None:
        cls = stack.pop()
        if getattr(cls, "__table__", None) is table:
            found = cls
        stack.extend(cls.__subclasses__())
    if found is None:
        return {}
    return {name: f.description for name, f in found.model_fields.items() if f.description}


def sql_table_schema(table: Table) -> dg.TableSchema:
    """The columns of a metadata table as Dagster's TableSchema (shown on the asset page), each with the
    description its model gives it."""
    docs = _field_descriptions(table)
    return dg.TableSchema(columns=[
        dg.TableColumn(c.name, str(c.type).lower(), description=c.comment or docs.get(c.name)) for c in table.columns])


def arrow_schema(schema: Any) -> dg.TableSchema:
    """An Arrow schema (``pa.Schema`` or anything exporting ``__arrow_c_schema__``, e.g. a Delta table's
    ``schema().to_arrow()``) as Dagster's TableSchema."""
    schema = schema if isinstance(schema, pa.Schema) else pa.schema(schema)
    return dg.TableSchema(columns=[
        dg.TableColumn(f.name, str(f.type), constraints=None if f.nullable else dg.TableColumnConstraints(
            nullable=False)) for f in schema])


def delta_schema(uri: str) -> dg.TableSchema:
    """The schema of the Delta table at ``uri`` as it is stored."""
    from deltalake import DeltaTable

    return arrow_schema(DeltaTable(uri).schema().to_arrow())


def preview(df: pd.DataFrame, rows: int = 10) -> dg.MetadataValue:
    """A small Markdown table of the first rows."""
    return dg.MetadataValue.md(df.head(rows).to_markdown(index=False) if not df.empty else "(no rows)")


def table_metadata(row_count: int, schema: dg.TableSchema, sample: pd.DataFrame, rows: int = 10
                   ) -> dict[str, Any]:
    """The three entries every asset reports: ``dagster/row_count``, ``dagster/column_schema`` and ``preview``."""
    return {"dagster/row_count": int(row_count), "dagster/column_schema": schema, "preview": preview(sample, rows)}


def image_metadata(key: str, path: str | Path, title: Optional[str] = None) -> dict[str, dg.MetadataValue]:
    """``{key: Markdown image (inline base64 PNG, so the UI shows it), key_path: the file}``."""
    path = Path(path)
    data = path.read_bytes()
    title = title or key
    if len(data) <= INLINE_IMAGE_MAX_BYTES:
        md = f"![{title}](data:image/png;base64,{base64.b64encode(data).decode('ascii')})"
    else:
        md = f"{title}: {len(data) // 1024} KB, too large to inline; see `{key}_path`"
    return {key: dg.MetadataValue.md(md), f"{key}_path": dg.MetadataValue.path(str(path))}


def log_progress(context: dg.AssetExecutionContext, what: str, steps: int = 20
                 ) -> Callable[[int, int, str], None]:
    """A ``progress(done, total, current)`` callback logging ``what: done/total (current ...)`` about ``steps``
    times over the run (and always the last one) in the run's log."""
    state = {"next": 0}

    def progress(done: int, total: int, current: str) -> None:
        if done >= state["next"] or done == total:
            context.log.info(f"{what}: {done}/{total} (current {current})")
            state["next"] = done + max(1, total // steps)

    return progress
