"""Model partitions follow the games; models retrain when new draws reach gold or the library changes."""

import dagster as dg

from fcast_assets.defs.models.assets import model_partitions, model_refresh_job
from fcast_assets.defs.partitions import sync_requests
from fcast_assets.defs.resources import MetadataDB


@dg.sensor(
    minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING,
    description="Adds a `model` partition `<game>.<selector>` for every selector of an active game (seeding the "
    "selectors of new games), removes those of deactivated games.",
)
def model_partitions_sensor(context: dg.SensorEvaluationContext, meta_db: MetadataDB) -> dg.SensorResult:
    from fcast_assets.lake import games as G
    from fcast_assets.models.selectors import all_partition_keys, seed_selectors

    eng = meta_db.engine()
    for spec in G.list_games(eng, active_only=True):
        seed_selectors(eng, spec)
    want = all_partition_keys(eng)
    known = list(context.instance.get_dynamic_partitions(model_partitions.name))
    _, _, reqs = sync_requests(model_partitions, want, known)
    return dg.SensorResult(dynamic_partitions_requests=reqs,
                           skip_reason=None if reqs else dg.SkipReason(f"{len(want)} model partitions in sync"))


@dg.sensor(
    job=model_refresh_job, minimum_interval_seconds=300, default_status=dg.DefaultSensorStatus.RUNNING,
    description="Scrape-and-retrain: after the scrape schedule (scrape_new_draws) brings new draws into silver and "
    "the gold features are rebuilt, retrains every trained model of that game (a new model_version from its "
    "registry row), then predicts, evaluates and explains; also when the library has a newer scanned release.",
)
def retrain_models_sensor(context: dg.SensorEvaluationContext, meta_db: MetadataDB):
    from fcast_assets.models.evaluation import stale_models

    stale = stale_models(meta_db.engine())
    if not stale:
        return dg.SkipReason("every trained model is current (draws and library release)")
    return [dg.RunRequest(partition_key=s["key"], run_key=f"retrain-{s['key']}-{s['token']}",
                          tags={"fcast/reason": s["reason"]}) for s in stale]
