"""Engines for the metadata database: SQLite file by default, PostgreSQL by ``FCAST_DB_URL``.

``init_db`` creates every table of the SQLModel metadata plus the full-text index of the dialect
(SQLite FTS5 virtual table with sync triggers; PostgreSQL generated tsvector column with a GIN index).
"""

from __future__ import annotations

import os
import time
from functools import lru_cache
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.engine import make_url
from sqlmodel import SQLModel

from .. import config
from . import models  # noqa: F401 - registers the tables on SQLModel.metadata
from . import dataset_models  # noqa: F401 - dataset_ tables (lottery lake)
from . import feature_models  # noqa: F401 - feature_ tables (feature definitions)
from . import run_models  # noqa: F401 - run_ tables (table-driven execution)
from . import model_models  # noqa: F401 - model_ tables (trained models per game)

# Extra DDL per dialect, run after the tables exist; also written into sql/ by ``fcast db ddl``.
SEARCH_DDL: dict[str, list[str]] = {
    "sqlite": [
        "CREATE VIRTUAL TABLE IF NOT EXISTS registry_search_fts USING fts5("
        "qualname, name, body, content='registry_search_doc', content_rowid='doc_id')",
        "CREATE TRIGGER IF NOT EXISTS registry_search_doc_ai AFTER INSERT ON registry_search_doc BEGIN "
        "INSERT INTO registry_search_fts(rowid, qualname, name, body) "
        "VALUES (new.doc_id, new.qualname, new.name, new.body); END",
        "CREATE TRIGGER IF NOT EXISTS registry_search_doc_ad AFTER DELETE ON registry_search_doc BEGIN "
        "INSERT INTO registry_search_fts(registry_search_fts, rowid, qualname, name, body) "
        "VALUES ('delete', old.doc_id, old.qualname, old.name, old.body); END",
    ],
    "postgresql": [
        "ALTER TABLE registry_search_doc ADD COLUMN IF NOT EXISTS tsv tsvector GENERATED ALWAYS AS ("
        "setweight(to_tsvector('simple', translate(coalesce(qualname, ''), '._', '  ')), 'A') || "
        "setweight(to_tsvector('simple', translate(coalesce(name, ''), '._', '  ')), 'A') || "
        "setweight(to_tsvector('simple', translate(coalesce(body, ''), '._', '  ')), 'B')) STORED",
        "CREATE INDEX IF NOT EXISTS ix_registry_search_doc_tsv ON registry_search_doc USING GIN (tsv)",
    ],
}


def _busy_ms() -> int:
    """How long a SQLite writer waits for another one (one writer at a time; Windows locks the file):
    ``FCAST_SQLITE_BUSY_MS``, default 30 s; then the command ends with one clear line (cli._Main)."""
    try:
        return max(0, int(os.environ.get("FCAST_SQLITE_BUSY_MS", "30000")))
    except ValueError:
        return 30000


def _sqlite_pragmas(dbapi_conn, _record) -> None:  # noqa: ANN001
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute(f"PRAGMA busy_timeout={_busy_ms()}")
    cur.close()


def make_engine(url: str | None = None) -> Engine:
    url = url or config.db_url()
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        if u.database and u.database != ":memory:":
            Path(u.database).parent.mkdir(parents=True, exist_ok=True)
        eng = create_engine(url, connect_args={"timeout": _busy_ms() / 1000})
        event.listen(eng, "connect", _sqlite_pragmas)
    else:
        eng = create_engine(url, pool_pre_ping=True)
    return eng


@lru_cache(maxsize=8)
def get_engine(url: str | None = None) -> Engine:
    """A cached, initialised engine for ``url`` (default: ``FCAST_DB_URL`` or the SQLite file)."""
    eng = make_engine(url)
    init_db(eng)
    return eng


def add_missing_columns(engine: Engine | Connection) -> list[str]:
    """Columns added to a table by a newer fcast (all nullable) are added to a database made by an older one, so
    an existing metadata database keeps working after an upgrade; returns ``table.column`` of what was added."""
    if isinstance(engine, Connection):
        return _add_missing_columns(engine)
    with engine.begin() as conn:
        return _add_missing_columns(conn)


def _add_missing_columns(conn: Connection) -> list[str]:
    added = []
    insp = inspect(conn)
    existing_tables = set(insp.get_table_names())
    for table in SQLModel.metadata.sorted_tables:
        if table.name not in existing_tables:
            continue
        have = {c["name"] for c in insp.get_columns(table.name)}
        for col in table.columns:
            if col.name in have or not col.nullable or col.primary_key:
                continue
            ddl = col.type.compile(dialect=conn.dialect)
            conn.execute(text(f'ALTER TABLE {table.name} ADD COLUMN "{col.name}" {ddl}'))
            added.append(f"{table.name}.{col.name}")
    return added


PG_INIT_LOCK = 0x66636173  # pg_advisory_xact_lock key of init_db ("fcas")


def _init(conn: Connection) -> None:
    SQLModel.metadata.create_all(conn)
    _add_missing_columns(conn)
    for stmt in SEARCH_DDL.get(conn.dialect.name, []):
        conn.execute(text(stmt))


def init_db(engine: Engine) -> None:
    """Create the tables, columns and full-text index that are missing. Safe when several processes start at once
    on an empty database: on PostgreSQL the work runs in one transaction under an advisory lock (the others wait,
    then find everything there); on SQLite a CREATE that lost the race (or found the file busy) is retried (the
    next try sees the table)."""
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": PG_INIT_LOCK})
            _init(conn)
        return
    for attempt in range(5):
        try:
            with engine.begin() as conn:
                _init(conn)
            return
        except (OperationalError, ProgrammingError, IntegrityError) as e:
            # lost the race: a CREATE of a table another process just made, or SQLite's immediate "database is
            # locked" when a deferred transaction cannot upgrade to a write after another process wrote
            if ("already exists" not in str(e) and "database is locked" not in str(e)) or attempt == 4:
                raise
            time.sleep(0.05 * (attempt + 1))
