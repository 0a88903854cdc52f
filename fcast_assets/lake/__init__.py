"""The lottery lake as plain modules (no Dagster import): games as data, sources (embedded files + scraper),
bronze / silver Delta tables, predictability profile, dataset versions. ``fcast_assets.defs.lake`` wraps them."""
