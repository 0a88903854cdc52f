"""Keep the dynamic ``game`` partitions in step with ``dataset_game`` (games are rows, not code)."""

import dagster as dg

from fcast_assets.defs.lake.assets import game_partitions, lake_game_job
from fcast_assets.defs.partitions import sync_requests
from fcast_assets.defs.resources import MetadataDB
from fcast_assets.lake.games import active_game_codes, list_games, seed_games


@dg.sensor(
    job=lake_game_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Adds a `game` partition for every active row of dataset_game (and materializes bronze -> silver "
    "-> profile for it), removes the partition of a deactivated or deleted game. Seeds the default games into an "
    "empty dataset_game.",
)
def game_partitions_sensor(context: dg.SensorEvaluationContext, meta_db: MetadataDB) -> dg.SensorResult:
    eng = meta_db.engine()
    if not list_games(eng):  # a fresh database: seed the six default games (never re-adds deleted rows later)
        seed_games(eng)
    active = active_game_codes(eng)
    known = list(context.instance.get_dynamic_partitions(game_partitions.name))
    add, remove, requests = sync_requests(game_partitions, active, known)
    return dg.SensorResult(
        run_requests=[dg.RunRequest(partition_key=c, run_key=f"new-game-{c}") for c in add],
        dynamic_partitions_requests=requests,
        skip_reason=None if (add or remove) else dg.SkipReason(f"{len(active)} active games, partitions in sync"),
    )
