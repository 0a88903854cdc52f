"""Typed, swappable resources shared by every stage."""


from typing import Optional

import dagster as dg
from sqlalchemy import Engine

from fcast_assets import config


class MetadataDB(dg.ConfigurableResource):
    """The application metadata database ``forecast_meta`` (not Dagster's own instance storage).

    ``url`` empty means ``FCAST_DB_URL`` when set, else the SQLite file under ``FCAST_HOME``.
    """

    url: Optional[str] = None

    def engine(self) -> Engine:
        from fcast_assets.db.engine import get_engine

        return get_engine(self.url or config.db_url())

    def display_url(self) -> str:
        from sqlalchemy.engine import make_url

        return make_url(self.url or config.db_url()).render_as_string(hide_password=True)


def spark_resource() -> dg.ConfigurableResource:
    """dagster-pyspark's lazily created SparkSession (only built when an asset runs with FCAST_ENGINE=spark).

    Local by default (``FCAST_SPARK_MASTER``, e.g. ``spark://host:7077`` for a cluster); Delta is read and
    written with delta-rs around Spark, so no Delta jars are needed.
    """
    from dagster_pyspark import LazyPySparkResource

    from fcast_assets.lake.silver import spark_config

    return LazyPySparkResource(spark_config=spark_config())


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources={"meta_db": MetadataDB(), "pyspark": spark_resource()})
