"""Every table of the metadata database at a glance: row counts, columns, foreign keys, empty tables; and a
small reader for showing any table (notebooks, asset metadata)."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import Engine, func, inspect, select
from sqlmodel import SQLModel

from . import models  # noqa: F401 - every table module registers on SQLModel.metadata via the package


# tables that are legitimately empty after a full run, and why
EXPECTED_EMPTY = {
    "registry_import_failure": "every module of the scanned libraries imported",
    "registry_release_diff": "one release per library scanned so far: nothing to compare",
    "run_error": "no executed plan step failed (wrong plans are stopped before they run)",
}


def audit(engine: Engine) -> pd.DataFrame:
    """One row per table of the models: rows, columns, foreign keys (to table.column), empty flag, and for an
    empty table whether that is expected after a full run (``expected_empty`` with the reason in ``note``)."""
    present = set(inspect(engine).get_table_names())
    rows = []
    with engine.connect() as conn:
        for t in SQLModel.metadata.sorted_tables:
            n = conn.execute(select(func.count()).select_from(t)).scalar() if t.name in present else None
            rows.append({
                "table": t.name,
                "rows": n,
                "columns": len(t.columns),
                "foreign_keys": ", ".join(sorted(f"{fk.parent.name}→{fk.column.table.name}.{fk.column.name}"
                                                 for fk in t.foreign_keys)),
                "empty": not n,
                "expected_empty": (not n) and t.name in EXPECTED_EMPTY,
                "note": EXPECTED_EMPTY.get(t.name, "") if not n else "",
                "created": t.name in present,
            })
    return pd.DataFrame(rows).astype({"rows": "Int64"})


def read_table(engine: Engine, table: str, limit: int | None = 20, newest_first: bool = True) -> pd.DataFrame:
    """The rows of one table of the models (newest first by primary key), at most ``limit``."""
    t = SQLModel.metadata.tables.get(table)
    if t is None:
        raise KeyError(f"unknown table {table!r}: one of {', '.join(sorted(SQLModel.metadata.tables))}")
    stmt = select(t)
    pk = list(t.primary_key.columns)
    if pk:
        stmt = stmt.order_by(*(c.desc() if newest_first else c for c in pk))
    if limit:
        stmt = stmt.limit(limit)
    with engine.connect() as conn:
        return pd.DataFrame(conn.execute(stmt).mappings().all(), columns=[c.name for c in t.columns])
