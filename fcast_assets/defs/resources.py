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


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources={"meta_db": MetadataDB()})
