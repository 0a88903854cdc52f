"""The audit view of the metadata database: every model table, counted, with its foreign keys."""

import pytest
from sqlmodel import SQLModel

from fcast_assets.db.audit import audit, read_table
from fcast_assets.registry import scan_and_store

from .fakelib import V1, new_name, write_library


def test_audit_counts_every_table(engine, tmp_path, monkeypatch):
    before = audit(engine).set_index("table")
    assert set(before.index) == set(SQLModel.metadata.tables)
    assert before["created"].all() and before.loc["registry_symbol", "empty"]
    assert not before.loc["registry_symbol", "expected_empty"]  # an empty registry is a stage that did not run
    assert before.loc["run_error", "expected_empty"] and "failed" in before.loc["run_error", "note"]
    assert {"model_registry", "model_xai", "model_series_selector"} <= set(before.index)
    assert "symbol_id→registry_symbol.symbol_id" in before.loc["registry_param", "foreign_keys"]
    monkeypatch.syspath_prepend(str(tmp_path))
    out = scan_and_store(write_library(tmp_path, new_name(), "1.0.0", V1), engine)
    after = audit(engine).set_index("table")
    assert after.loc["registry_symbol", "rows"] == out["counts"]["symbols"]
    assert not after.loc["registry_param", "empty"] and after.loc["registry_param", "note"] == ""
    rows = read_table(engine, "registry_symbol", limit=3)
    assert len(rows) == 3 and list(rows["symbol_id"]) == sorted(rows["symbol_id"], reverse=True)
    with pytest.raises(KeyError, match="unknown table 'nope'"):
        read_table(engine, "nope")
