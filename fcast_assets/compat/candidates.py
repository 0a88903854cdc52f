"""Candidate values for a parameter, derived from its registry row (never a hand list per model)."""

from __future__ import annotations

import json
from typing import Any

INVALID_ENUM = "not-a-valid-value"


def label(value: Any, note: str | None = None) -> str:
    if isinstance(value, dict) and "label" in value:
        text = value["label"]
    elif isinstance(value, dict) and "__obj__" in value:
        kw = ", ".join(f"{k}={v!r}" for k, v in value.get("kwargs", {}).items())
        text = f"{value['__obj__'].rsplit('.', 1)[1]}({kw})"
    elif isinstance(value, dict) and "__config__" in value:
        text = f"{value['__config__']} config" + (f" (num_samples={value['num_samples']})" if "num_samples" in value else "")
    elif isinstance(value, dict) and "__data__" in value:
        text = value["__data__"]
    elif isinstance(value, dict) and "__path__" in value:
        text = f"path: {value['__path__']}"
    elif value is None:
        text = "None"
    else:
        text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return f"{text} ({note})" if note else text


def candidates(param: dict[str, Any], series_len: int, invalid_enum: bool = True) -> list[tuple[Any, str]]:
    """(value, value_label) pairs: enum values, None, the default, type-based boundaries, wrong types."""
    out: list[tuple[Any, str]] = []

    def add(v: Any, note: str | None = None) -> None:
        if all(json.dumps(v, sort_keys=True) != json.dumps(x, sort_keys=True) for x, _ in out):
            out.append((v, label(v, note)))

    types = set(param.get("type_norm") or [])
    enums = [e for e in param.get("enums") or [] if e is not None]
    default = param.get("default") if param.get("has_default") else None
    json_default = not (isinstance(default, dict) and "__repr__" in default)
    if "float" in types and "int" not in types and isinstance(default, int) and not isinstance(default, bool):
        default = float(default)  # SQLite's JSON gives 2.0 back as 2: the annotation says what it is
    if param.get("has_default") and json_default:
        add(default, "default")
    for e in enums:
        add(e)
    if enums and invalid_enum:
        add(INVALID_ENUM, "outside enum")
    if "None" in types or (param.get("has_default") and default is None):
        add(None)
    if "bool" in types or isinstance(default, bool):
        add(True)
        add(False)
    elif "int" in types or ("float" not in types and isinstance(default, int) and not isinstance(default, bool)):
        add(0, "zero")
        add(-1, "negative")
        add(series_len * 2, "larger than the series")
        add(1.5, "float where int expected")
        add("x", "wrong type")
    elif "float" in types or isinstance(default, float):
        add(0.0, "zero")
        add(-1.0, "negative")
        add("x", "wrong type")
    return out
