"""Generate ``sql/forecast_meta.postgresql.sql`` (DDL) and ``sql/er.mmd`` (mermaid ER) from the models.

Both files are committed; a test regenerates them and fails when they are stale (`fcast db ddl` rewrites them).
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import CreateIndex, CreateTable
from sqlmodel import SQLModel

from . import models  # noqa: F401
from .engine import SEARCH_DDL

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"
DDL_FILE = "forecast_meta.postgresql.sql"
ER_FILE = "er.mmd"


def _tables():
    return SQLModel.metadata.sorted_tables


def postgres_ddl() -> str:
    dialect = postgresql.dialect()
    out = ["-- forecast_meta: PostgreSQL DDL generated from fcast_assets.db.models by `fcast db ddl`. Do not edit.", ""]
    for t in _tables():
        out.append(str(CreateTable(t).compile(dialect=dialect)).strip() + ";")
        for ix in sorted(t.indexes, key=lambda i: i.name or ""):
            out.append(str(CreateIndex(ix).compile(dialect=dialect)).strip() + ";")
        out.append("")
    out.append("-- full-text search (also run by fcast_assets.db.engine.init_db)")
    out += [s + ";" for s in SEARCH_DDL["postgresql"]]
    return "\n".join(out) + "\n"


def _mmd_type(col) -> str:  # noqa: ANN001
    try:
        name = col.type.compile(dialect=postgresql.dialect())
    except Exception:  # noqa: BLE001
        name = type(col.type).__name__
    return name.split("(")[0].replace(" ", "_").lower()


def er_mermaid() -> str:
    out = ["erDiagram"]
    for t in _tables():
        out.append(f"    {t.name} {{")
        for c in t.columns:
            keys = ",".join(k for k, flag in (("PK", c.primary_key), ("FK", bool(c.foreign_keys))) if flag)
            out.append(f"        {_mmd_type(c)} {c.name}{(' ' + keys) if keys else ''}")
        out.append("    }")
    for t in _tables():
        for fk in sorted(t.foreign_keys, key=lambda f: (f.parent.name, f.column.table.name)):
            out.append(f'    {fk.column.table.name} ||--o{{ {t.name} : "{fk.parent.name}"')
    return "\n".join(out) + "\n"


def generated() -> dict[str, str]:
    return {DDL_FILE: postgres_ddl(), ER_FILE: er_mermaid()}


def write(sql_dir: Path = SQL_DIR) -> list[Path]:
    sql_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, content in generated().items():
        p = sql_dir / name
        p.write_text(content, encoding="utf-8")
        paths.append(p)
    return paths
