"""Where fcast keeps its state: one place that reads the environment.

- ``FCAST_HOME``: project data folder (default ``./data`` under the current directory).
- ``FCAST_DB_URL``: SQLAlchemy URL of the metadata database ``forecast_meta``. Default: the SQLite file
  ``$FCAST_HOME/forecast_meta.db``. Set it to ``postgresql+psycopg://user:pw@host/forecast_meta`` for PostgreSQL.
- ``FCAST_LAKE``: root of the Delta lake (default ``$FCAST_HOME/forecast_lake``).
"""

from __future__ import annotations

import os
from pathlib import Path


def data_home() -> Path:
    return Path(os.environ.get("FCAST_HOME") or Path.cwd() / "data").resolve()


def default_sqlite_url() -> str:
    return f"sqlite:///{data_home() / 'forecast_meta.db'}"


def db_url() -> str:
    return os.environ.get("FCAST_DB_URL") or default_sqlite_url()


def lake_root() -> str:
    return os.environ.get("FCAST_LAKE") or str(data_home() / "forecast_lake")
