"""Objects built from data: ``{__obj__: QUALNAME, kwargs: {...}}`` only for the closed table in objects.yaml.

Plan rows and compat cells describe losses, PredictionIntervals, DistributedConfig, samplers as data; this module
is the one place such a row becomes an object, and it refuses anything outside the table (no import of an
arbitrary module, no call of an arbitrary function).
"""

from __future__ import annotations

import fnmatch
import importlib
import inspect
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml


class ObjectNotAllowedError(ValueError):
    """A data row names an object outside the closed table."""


@lru_cache(maxsize=1)
def allowed_patterns() -> tuple[str, ...]:
    doc = yaml.safe_load(resources.files("fcast_assets.compat").joinpath("objects.yaml").read_text(encoding="utf-8"))
    return tuple(doc["allowed"])


def allowed(qualname: Any) -> bool:
    return isinstance(qualname, str) and ".." not in qualname and not qualname.startswith(".") and any(
        fnmatch.fnmatchcase(qualname, p) for p in allowed_patterns())


def resolve(qualname: Any) -> type:
    """The class a closed-table qualname names; ObjectNotAllowedError for anything else."""
    if not allowed(qualname):
        raise ObjectNotAllowedError(
            f"{{__obj__: {qualname!r}}} is not in the table of objects a plan may build "
            f"({', '.join(allowed_patterns())})")
    mod, _, attr = qualname.rpartition(".")
    try:
        obj = getattr(importlib.import_module(mod), attr)
    except (ImportError, AttributeError) as e:
        raise ObjectNotAllowedError(f"{{__obj__: {qualname!r}}} does not exist: {e}") from None
    root = qualname.split(".", 1)[0]
    if not inspect.isclass(obj) or not str(getattr(obj, "__module__", "")).startswith(root):
        raise ObjectNotAllowedError(f"{{__obj__: {qualname!r}}} is not a class of {root}")
    return obj


def problems(value: Any, path: str = "") -> list[str]:
    """Every ``__obj__`` in a JSON value that the table refuses (nothing is imported for a refused name)."""
    out: list[str] = []
    if isinstance(value, dict):
        if "__obj__" in value:
            if not allowed(value["__obj__"]):
                out.append(f"{path or 'value'}: {{__obj__: {value['__obj__']!r}}} is not an allowed object")
            extra = set(value) - {"__obj__", "kwargs", "label"}
            if extra:
                out.append(f"{path or 'value'}: an object row takes __obj__ and kwargs, not {sorted(extra)}")
            kwargs = value.get("kwargs") or {}
            if not isinstance(kwargs, dict):
                out.append(f"{path or 'value'}: kwargs must be a mapping")
            else:
                for k, v in kwargs.items():
                    out += problems(v, f"{path}.{k}" if path else str(k))
        else:
            for k, v in value.items():
                out += problems(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += problems(v, f"{path}[{i}]")
    return out


def build(value: dict[str, Any], decode: Any) -> Any:
    """Construct an ``{__obj__, kwargs}`` row; ``decode`` turns the kwargs' values into arguments."""
    cls = resolve(value["__obj__"])
    return cls(**{k: decode(v) for k, v in (value.get("kwargs") or {}).items()})
