"""The plan tables, validator and runner on PostgreSQL (JSONB columns, booleans, the quoted "window" column)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from fcast_assets.db.engine import init_db, make_engine
from fcast_assets.plans import loader, runner, validator
from fcast_assets.registry import scan_and_store

from .conftest import _fresh_pg_database

EXAMPLES = Path(__file__).resolve().parents[1] / "plans" / "examples.yaml"


@pytest.mark.postgres
def test_plans_on_postgres(tmp_path):
    engine = make_engine(_fresh_pg_database())
    try:
        init_db(engine)
        scan_and_store("neuralforecast", engine)
        loader.load_file(engine, EXAMPLES)
        loader.load_file(engine, EXAMPLES)  # reloading replaces plans by name
        res = validator.validate_plans(engine)
        for name in loader.plan_names(engine):
            exp = loader.get_plan(engine, name)["expect"]
            if exp == "valid":
                assert not res[name], (name, res[name])
            elif exp != "compat_error":  # no matrix in this database
                assert exp in {v.rule for v in res[name]}, (name, res[name])
        out = runner.run_plans(engine, ["mlp_cross_validation", "mlp_save_load", "bad_range_level"],
                               work_root=tmp_path)
        assert [o["status"] for o in out] == ["success", "success", "invalid"]
        with engine.connect() as conn:
            windows = conn.execute(text('SELECT DISTINCT "window" FROM run_metric')).scalars().all()
            failing = conn.execute(text("SELECT COUNT(*) FROM run_validation WHERE NOT ok")).scalar()
        assert {0, 1, 2, None} <= set(windows) and failing > 0
        assert not loader.list_plans(engine).empty
    finally:
        engine.dispose()
