"""Metadata helpers shared by the assets: a SQL table's schema and a DataFrame preview for the UI."""

import dagster as dg
import pandas as pd
from sqlalchemy import Table


def sql_table_schema(table: Table) -> dg.TableSchema:
    """The columns of a metadata table as Dagster's TableSchema (shown on the asset page)."""
    return dg.TableSchema(columns=[
        dg.TableColumn(c.name, str(c.type).lower(), description=c.comment or None) for c in table.columns])


def preview(df: pd.DataFrame, rows: int = 10) -> dg.MetadataValue:
    """A small Markdown table of the first rows."""
    return dg.MetadataValue.md(df.head(rows).to_markdown(index=False) if not df.empty else "(no rows)")
