"""Dagster entry point: everything under ``fcast_assets/defs`` is autoloaded (one folder per stage)."""

from pathlib import Path

import dagster as dg


@dg.definitions
def defs() -> dg.Definitions:
    return dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
