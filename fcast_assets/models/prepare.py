"""What training needs, made ready in one call (CLI, notebooks, benchmarks): the library scanned into the
registry, the compat cells the model choice reads, the game's lake and gold tables. Each part is skipped when it
is already there."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, text

from .config import game_config


def compat_needs(game: str) -> tuple[list[str], list[str]]:
    """The model classes the game's configuration may train (``model``, and ``multivariate_model`` for the ALL
    selector in multivariate_joint mode) and the compat families they must have passed (models.yaml)."""
    cfg = game_config(game)
    models = list(dict.fromkeys(m for m in (cfg.get("model"), cfg.get("multivariate_model")) if m))
    return models, list(cfg.get("compat_families") or [])


def _count(engine: Engine, sql: str, **params: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(sql), params).scalar() or 0)


def prepare(engine: Engine, game: str, library: str = "neuralforecast", models: list[str] | None = None
            ) -> dict[str, Any]:
    from ..compat.probe import run_matrix
    from ..features import gold
    from ..lake import deltaio, games, pipeline
    from ..registry import scan_and_store
    from .selectors import seed_selectors

    done: dict[str, Any] = {}
    if not _count(engine, "SELECT COUNT(*) FROM registry_release r JOIN registry_library l "
                          "ON l.library_id = r.library_id WHERE l.name = :n", n=library):
        scan_and_store(library, engine)
        done["scanned"] = library
    needed, families = compat_needs(game)
    models = models or needed
    have = _count(engine, "SELECT COUNT(DISTINCT model) FROM compat_result WHERE param = 'hist_exog_list' "
                          "AND status = 'ok'")
    if have < len(models):
        run_matrix(engine, library, models=models, families=families, workers=2)
        done["compat"] = models
    games.seed_games(engine)
    spec = games.get_game(engine, game)
    if not deltaio.exists(pipeline.silver_uri(spec)):
        pipeline.ingest_bronze(engine, spec)
        pipeline.build_silver_table(engine, spec, engine_name="pandas")
        done["lake"] = game
    if not all(deltaio.exists(gold.gold_uri(spec, t)) for t in ("features", "static", "futr")):
        gold.build_gold(engine, spec)
        done["gold"] = game
    done["selectors"] = [s.key for s in seed_selectors(engine, spec)]
    return done
