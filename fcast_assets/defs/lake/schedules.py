"""Scrape new draws: one run per active game, only when scraping is enabled (``FCAST_SCRAPER=1``)."""

from datetime import datetime, timezone

import dagster as dg

from fcast_assets.defs.lake.assets import lake_game_job
from fcast_assets.defs.resources import MetadataDB
from fcast_assets.lake.games import active_game_codes
from fcast_assets.lake.sources import scraper_enabled


@dg.schedule(
    job=lake_game_job,
    cron_schedule="30 21 * * 1-5",  # after the evening draws (JST 20:00 + publication), in the instance's tz
    execution_timezone="Asia/Tokyo",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Fetch draws published since the last ingest for every active game (scraper; off unless "
    "FCAST_SCRAPER=1), then rebuild silver and the profile.",
)
def scrape_new_draws(context: dg.ScheduleEvaluationContext, meta_db: MetadataDB):
    if not scraper_enabled():
        return dg.SkipReason("scraper disabled: set FCAST_SCRAPER=1 (the embedded history is the default source)")
    try:
        when = context.scheduled_execution_time
    except Exception:  # noqa: BLE001 - a context built outside a tick (tests, manual evaluation) has none
        when = None
    tick = (when or datetime.now(timezone.utc)).strftime("%Y%m%d%H%M")
    return [
        dg.RunRequest(partition_key=code, run_key=f"scrape-{code}-{tick}",
                      run_config={"ops": {"bronze_draws": {"config": {"scrape": True}}}})
        for code in active_game_codes(meta_db.engine())
    ]
