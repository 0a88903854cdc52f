"""Full-text search (FTS5 / tsvector) over a real neuralforecast scan, through the module and `fcast search`,
on both databases."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from fcast_assets.cli import main
from fcast_assets.registry import scan_and_store
from fcast_assets.registry.search import search


@pytest.fixture
def nf_engine(engine):
    scan_and_store("neuralforecast", engine)
    return engine


def test_search_finds_parameters_and_symbols(nf_engine):
    hits = search(nf_engine, "local_scaler_type")
    quals = [h["qualname"] for h in hits]
    assert "neuralforecast.core.NeuralForecast.__init__(local_scaler_type)" in quals
    assert quals[0] == "neuralforecast.core.NeuralForecast.__init__(local_scaler_type)"  # name match ranks first
    params = search(nf_engine, "predict quantiles", library="neuralforecast", kind="parameter", limit=500)
    assert params and all(h["kind"] == "parameter" and h["library"] == "neuralforecast" for h in params)
    assert any(h["qualname"] == "neuralforecast.core.NeuralForecast.predict(quantiles)" for h in params)
    classes = search(nf_engine, "hierarchical interpolation", kind="class")
    assert any(h["qualname"].endswith(".NHITS") for h in classes)
    assert search(nf_engine, "zzqqxxnotaword") == []
    with pytest.raises(ValueError, match="empty search query"):
        search(nf_engine, "  ")


def test_fcast_search_command_prints_table(nf_engine, db_url, monkeypatch):
    monkeypatch.setenv("FCAST_DB_URL", db_url)
    out = CliRunner().invoke(main, ["search", "local_scaler_type", "--library", "neuralforecast",
                                    "--kind", "parameter"])
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert lines[0].split()[:3] == ["library", "kind", "qualname"]
    assert any("NeuralForecast.__init__(local_scaler_type)" in line for line in lines)
    out = CliRunner().invoke(main, ["search", "nothingmatchesthis"])
    assert out.exit_code == 0 and "no match" in out.output


def test_fcast_scan_command_reports_unknown_library(fcast_env):
    out = CliRunner().invoke(main, ["scan", "utilsforecast", "prophet"])
    assert out.exit_code == 1
    assert "unknown library 'prophet'" in out.output
    assert "utilsforecast" in out.output and "created" in out.output  # the good one still landed
    assert (fcast_env / "forecast_meta.db").exists()
