"""The model configuration (``models.yaml``): defaults deep-merged with the game's overrides."""

from __future__ import annotations

import copy
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

ALL = "ALL"
SERIES_MODES = ("per_slot", "multivariate_joint", "global_univariate")


@lru_cache(maxsize=1)
def _file() -> dict[str, Any]:
    return yaml.safe_load(resources.files("fcast_assets.models").joinpath("models.yaml").read_text(encoding="utf-8"))


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in (over or {}).items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


def _grouped(game: str, overrides: dict[str, Any], default: dict[str, Any]) -> dict[str, Any]:
    """``overrides`` with the shorthand of the Dagster config and the CLI (``max_steps``, ``n_windows``: a key of
    ``hyperparams`` or ``cv`` given at the top) moved into its group; any other unknown key is an error (merged in
    as it was, ``{"max_steps": 5}`` used to change nothing, silently)."""
    out: dict[str, Any] = {}
    for k, v in overrides.items():
        group = next((g for g in ("hyperparams", "cv") if k not in default and k in default[g]), None)
        if group:
            out.setdefault(group, {})[k] = v
        elif k in default:
            out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
        else:
            raise ValueError(f"unknown model configuration key {k!r} for {game}: known keys are "
                             f"{', '.join(default)} (and the keys of hyperparams and cv at the top)")
    return out


def game_config(game: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The configuration of one game: defaults <- games.<game> <- ``overrides`` (e.g. small test settings)."""
    doc = _file()
    overrides = _grouped(game, overrides or {}, doc["default"])
    cfg = merge(merge(doc["default"], (doc.get("games") or {}).get(game) or {}), overrides or {})
    if cfg["all_mode"] not in ("multivariate_joint", "global_univariate"):
        raise ValueError(f"all_mode must be multivariate_joint or global_univariate, not {cfg['all_mode']!r}")
    return cfg
