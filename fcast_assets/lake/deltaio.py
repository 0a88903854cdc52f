"""Delta Lake I/O with delta-rs (``deltalake``): no Spark/Delta jars needed.

Layout under the lake root (``FCAST_LAKE``): ``<root>/<layer>/<table>/game=<code>`` is one Delta table per game
and layer (``bronze/draws/game=loto6``, ``silver/series/game=loto6``). A version is addressed as ``<uri>@v<n>``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import pandas as pd
import pyarrow as pa
from deltalake import DeltaTable, write_deltalake
from deltalake.exceptions import TableNotFoundError

from fcast_assets import config


def table_uri(layer: str, table: str, game: str, root: Optional[str] = None) -> str:
    root = root or config.lake_root()
    if "://" in root:
        return f"{root.rstrip('/')}/{layer}/{table}/game={game}"
    return str(Path(root) / layer / table / f"game={game}")  # a name only: reading creates nothing


def _for_writing(uri: str) -> str:
    """A local table's parent folder made before the first write (delta-rs makes the table's own folder)."""
    if "://" not in uri:
        Path(uri).parent.mkdir(parents=True, exist_ok=True)
    return uri


def versioned_uri(uri: str, version: Optional[int]) -> str:
    return f"{uri}@v{version}" if version is not None else uri


def split_versioned_uri(uri: str) -> tuple[str, Optional[int]]:
    base, sep, v = uri.rpartition("@v")
    if sep and v.isdigit():
        return base, int(v)
    return uri, None


def open_table(uri: str, version: Optional[int] = None) -> Optional[DeltaTable]:
    try:
        return DeltaTable(uri, version=version)
    except (TableNotFoundError, FileNotFoundError, OSError):
        return None


def exists(uri: str) -> bool:
    return open_table(uri) is not None


def read(uri: str, columns: Optional[list[str]] = None, version: Optional[int] = None) -> pd.DataFrame:
    """Read a Delta table (``uri`` may carry ``@v<n>``) into pandas; empty frame when it does not exist."""
    base, v = split_versioned_uri(uri)
    dt = open_table(base, version if version is not None else v)
    if dt is None:
        return pd.DataFrame(columns=columns or [])
    return dt.to_pyarrow_table(columns=columns).to_pandas()


def current_version(uri: str) -> Optional[int]:
    dt = open_table(uri)
    return None if dt is None else dt.version()


def overwrite(uri: str, table: pa.Table) -> int:
    write_deltalake(_for_writing(uri), table, mode="overwrite", schema_mode="overwrite")
    return DeltaTable(uri).version()


def merge_on(uri: str, table: pa.Table, key: str) -> tuple[int, dict]:
    """Upsert ``table`` into the Delta table at ``uri`` on ``key`` (creates it when missing).

    Returns (version, metrics). The caller passes only new or changed rows, so re-ingesting is a no-op.
    """
    dt = open_table(uri)
    if dt is None:
        write_deltalake(_for_writing(uri), table, mode="error")
        return DeltaTable(uri).version(), {"num_target_rows_inserted": table.num_rows, "created": True}
    metrics = (
        dt.merge(source=table, predicate=f"t.{key} = s.{key}", source_alias="s", target_alias="t")
        .when_matched_update_all()
        .when_not_matched_insert_all()
        .execute()
    )
    return DeltaTable(uri).version(), dict(metrics)
