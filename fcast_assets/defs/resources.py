"""Typed, swappable resources shared by every stage and by the ``fcast`` command line.

Three resources, registered under these keys (every asset, check, sensor and schedule names them as typed
parameters, never as ``required_resource_keys`` strings):

- ``meta_db``: :class:`MetadataDB`, the application metadata database ``forecast_meta``.
- ``lake``: :class:`Lake`, the root folder (or ``s3://`` / ``abfss://`` URI) of the Delta lake.
- ``pyspark``: dagster-pyspark's lazily created SparkSession (:func:`spark_resource`).

Configuration is one place for both paths: ``MetadataDB()`` and ``Lake()`` with no arguments resolve the
environment exactly as :mod:`fcast_assets.config` does (``FCAST_DB_URL`` / ``FCAST_LAKE``, else the defaults under
``FCAST_HOME``), and the CLI builds the same two objects. A deployment that wants the value shown as an environment
variable in the UI can pass ``MetadataDB(url=dg.EnvVar("FCAST_DB_URL"))`` or ``Lake(root=dg.EnvVar("FCAST_LAKE"))``,
but only where that variable is set (an unset EnvVar is an error when the run starts); :func:`default_resources`
does so automatically, so the default keeps working with neither variable set.

Why the lake is written by delta-rs in ``fcast_assets.lake`` / ``fcast_assets.features`` and not by
dagster-deltalake-pandas' ``DeltaLakePandasIOManager``: that IO manager stores an asset at
``<root_uri>/<schema>/<asset name>`` as ONE Delta table and a partitioned asset as a ``partition_by`` column of that
table (``partition_expr="game"``, one ``_delta_log`` at ``<root>/gold/gold_features``). The lake's contract
(``fcast_assets/lake/deltaio.py``, shared/SCHEMA.md) is one Delta table per game, ``<root>/<layer>/<table>/game=<code>``
with its own ``_delta_log`` and its own versions: ``dataset_version`` / ``feature_materialization`` rows record
``<uri>@v<n>`` of that per-game table, the plan runner, the notebooks and the CLI read those paths directly, and the
table names (``gold/features``) differ from the asset names (``gold_features``). Under the IO manager a per-game
path would no longer be a Delta table (its log would sit one folder up), so using it means changing the lake's
layout and every reader; bronze additionally needs a merge on ``draw_no`` (the IO manager only appends or overwrites
a partition) and silver runs in Spark as well as pandas. The assets therefore keep writing through the plain
modules with ``root=lake.root_uri()`` and return metadata, not the frame.
"""

import os
from pathlib import Path
from typing import Optional

import dagster as dg
from sqlalchemy import Engine

from fcast_assets import config


class MetadataDB(dg.ConfigurableResource):
    """The application metadata database ``forecast_meta`` (not Dagster's own instance storage).

    ``url`` empty means ``FCAST_DB_URL`` when set, else the SQLite file under ``FCAST_HOME``;
    ``MetadataDB(url=dg.EnvVar("FCAST_DB_URL"))`` names the variable explicitly (only where it is set).
    """

    url: Optional[str] = None

    def resolved_url(self) -> str:
        return self.url or config.db_url()

    def engine(self) -> Engine:
        from fcast_assets.db.engine import get_engine

        return get_engine(self.resolved_url())

    def display_url(self) -> str:
        return config.mask(self.resolved_url())


class Lake(dg.ConfigurableResource):
    """Root of the Delta lake: ``<root>/<layer>/<table>/game=<code>`` tables and ``<root>/plots``.

    ``root`` empty means ``FCAST_LAKE`` when set, else ``$FCAST_HOME/forecast_lake``; a local folder or a URI
    (``s3://bucket/lake``). ``Lake(root=dg.EnvVar("FCAST_LAKE"))`` names the variable explicitly (only where it is
    set). Assets pass :meth:`root_uri` as ``root=`` to the plain modules.
    """

    root: Optional[str] = None

    def root_uri(self) -> str:
        """The resolved root as the plain modules take it (``root=``): a local path or a URI."""
        root = self.root or config.lake_root()
        return root if "://" in root else str(Path(root).expanduser().resolve())

    def root_path(self) -> Path:
        """The resolved root as a local Path (a remote lake has none: ValueError)."""
        root = self.root_uri()
        if "://" in root:
            raise ValueError(f"the lake root {config.mask(root)} is a URI, not a local folder")
        return Path(root)


def spark_resource() -> dg.ConfigurableResource:
    """dagster-pyspark's lazily created SparkSession (only built when an asset runs with FCAST_ENGINE=spark).

    Local by default (``FCAST_SPARK_MASTER``, e.g. ``spark://host:7077`` for a cluster); Delta is read and
    written with delta-rs around Spark, so no Delta jars are needed.
    """
    from dagster_pyspark import LazyPySparkResource

    from fcast_assets.lake.silver import spark_config

    return LazyPySparkResource(spark_config=spark_config())


def default_resources() -> dict[str, dg.ConfigurableResource]:
    """The resources of the code location: the environment variables as ``EnvVar`` where set, else the defaults
    (so a fresh checkout with neither variable set works)."""
    return {
        "meta_db": MetadataDB(url=dg.EnvVar("FCAST_DB_URL")) if os.environ.get("FCAST_DB_URL") else MetadataDB(),
        "lake": Lake(root=dg.EnvVar("FCAST_LAKE")) if os.environ.get("FCAST_LAKE") else Lake(),
        "pyspark": spark_resource(),
    }


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources=default_resources())
