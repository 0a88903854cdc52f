"""Where fcast keeps its state: one place that reads the environment.

- ``FCAST_HOME``: project data folder (default: ``data/`` of the checkout the package runs from, so the CLI,
  Dagster and the notebooks share one database; ``./data`` when installed outside a checkout).
- ``FCAST_DB_URL``: SQLAlchemy URL of the metadata database ``forecast_meta``. Default: the SQLite file
  ``$FCAST_HOME/forecast_meta.db``. Set it to ``postgresql+psycopg://user:pw@host/forecast_meta`` for PostgreSQL.
- ``FCAST_LAKE``: root of the Delta lake (default ``$FCAST_HOME/forecast_lake``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

_SECRET = re.compile(r"(://[^:/@\s]+:)[^@\s]+@")


def data_home() -> Path:
    if os.environ.get("FCAST_HOME"):
        return Path(os.environ["FCAST_HOME"]).resolve()
    checkout = Path(__file__).resolve().parents[1]
    if (checkout / "pyproject.toml").exists():
        return checkout / "data"
    return (Path.cwd() / "data").resolve()


def default_sqlite_url() -> str:
    return f"sqlite:///{data_home() / 'forecast_meta.db'}"


def db_url() -> str:
    return os.environ.get("FCAST_DB_URL") or default_sqlite_url()


def lake_root() -> str:
    return os.environ.get("FCAST_LAKE") or str(data_home() / "forecast_lake")


def reports_dir() -> Path:
    """Generated reports (compat Markdown, benchmark figures): ``FCAST_REPORTS`` or ``reports/`` beside the data."""
    return Path(os.environ.get("FCAST_REPORTS") or data_home().parent / "reports").resolve()


def artifact_root() -> Path:
    """Trained model folders (``NeuralForecast.save``): ``FCAST_ARTIFACTS`` or ``$FCAST_HOME/artifacts``; one
    versioned folder per model version: ``<root>/models/<game>/<selector>/v<version>``."""
    return Path(os.environ.get("FCAST_ARTIFACTS") or data_home() / "artifacts").resolve()


def mask(text: str) -> str:
    """Passwords in URLs (postgresql+psycopg://user:secret@host/db) replaced by ***."""
    return _SECRET.sub(r"\1***@", str(text))
