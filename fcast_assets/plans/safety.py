"""Plan data without code: names, paths and files a plan may use.

- A plan name is a plain label (letters, digits, ``_ . - ~ : +``), never a path: the runner's work folder
  ``<root>/<name>/exec<id>`` stays inside its root.
- save / load paths: a relative path lives in the execution's work folder and may not climb out of it; an absolute
  path must lie inside an allowed root: ``FCAST_HOME``, the model artifact root, or a root the user passes
  explicitly (``FCAST_PLAN_ROOTS``, ``os.pathsep``-separated, or ``roots=`` / ``fcast plan ... --root``).
- ``data: {files: {df: PATH, ...}}`` reads Parquet / CSV files as data from inside the allowed roots or the plan
  file's own folder.
- Objects come only from the closed table of :mod:`fcast_assets.compat.objects`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from .. import config
from ..compat import objects

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.~:+-]{0,199}$")
VALUE_KEYS = {"__obj__", "__data__", "__space__"}
FILE_SUFFIXES = {".parquet", ".csv"}
FRAME_FILES = ("df", "futr_df", "static_df", "test")


class UnsafePlanError(ValueError):
    """A plan names something outside what plans may touch (one line: the rule and the value)."""


def name_problem(name: Any) -> str | None:
    if not isinstance(name, str) or not NAME_RE.match(name) or ".." in name:
        return (f"plan name {name!r} is not a plain label (letters, digits and _ . - ~ : +, no '..', no '/'): "
                "names become folder names")
    return None


def check_name(name: Any) -> str:
    problem = name_problem(name)
    if problem:
        raise UnsafePlanError(problem)
    return name


def roots(extra: Iterable[str | Path] | None = None) -> list[Path]:
    out = [config.data_home(), config.artifact_root()]
    env = os.environ.get("FCAST_PLAN_ROOTS")
    if env:
        out += [Path(p) for p in env.split(os.pathsep) if p]
    out += [Path(p) for p in extra or []]
    return [p.resolve() for p in out]


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
        return True
    except ValueError:
        return False


def path_problem(path: Any, extra_roots: Iterable[str | Path] | None = None) -> str | None:
    """Why a save / load path is refused (None when it is fine)."""
    if not isinstance(path, str) or not path or "\x00" in path:
        return f"path {path!r} is not a non-empty string"
    p = Path(path)
    if not p.is_absolute():
        if ".." in p.parts:
            return f"relative path {path!r} climbs out of the execution's work folder"
        return None
    allowed = roots(extra_roots)
    if not any(_inside(p, r) for r in allowed):
        return (f"path {path!r} is outside the allowed roots ({', '.join(str(r) for r in allowed)}); pass the "
                "folder explicitly with --root / FCAST_PLAN_ROOTS to allow it")
    return None


def resolve_in(path: str, work_dir: Path, extra_roots: Iterable[str | Path] | None = None) -> str:
    problem = path_problem(path, extra_roots)
    if problem:
        raise UnsafePlanError(problem)
    return path if os.path.isabs(path) else str(work_dir / path)


def _file_roots(plan: dict[str, Any] | None) -> list[Path]:
    extra = []
    src = (plan or {}).get("source")
    if src and os.path.isfile(src):
        extra.append(Path(src).resolve().parent)
    return roots(extra)


def read_frames(spec: Any, plan: dict[str, Any] | None = None) -> dict[str, Any]:
    """``{files: {df: PATH, futr_df: PATH, static_df: PATH, test: PATH}}`` → frames (Parquet or CSV)."""
    from .data import PlanDataError

    if not isinstance(spec, dict) or "df" not in spec or set(spec) - set(FRAME_FILES):
        raise PlanDataError(f"data.files maps {list(FRAME_FILES)} (df required) to file paths, not {spec!r}")
    allowed = _file_roots(plan)
    base = allowed[-1] if (plan or {}).get("source") and os.path.isfile(str(plan.get("source"))) else allowed[0]
    frames: dict[str, Any] = {}
    for key, raw in spec.items():
        if not isinstance(raw, str) or not raw:
            raise PlanDataError(f"data.files.{key} is a file path, not {raw!r}")
        path = Path(raw) if os.path.isabs(raw) else base / raw
        if not any(_inside(path, r) for r in allowed):
            raise PlanDataError(f"data.files.{key} {raw!r} is outside the allowed roots "
                                f"({', '.join(str(r) for r in allowed)})")
        if path.suffix.lower() not in FILE_SUFFIXES:
            raise PlanDataError(f"data.files.{key} {raw!r}: only {sorted(FILE_SUFFIXES)} files are read")
        if not path.is_file():
            raise PlanDataError(f"data.files.{key}: no file {str(path)!r}")
        try:
            df = pd.read_parquet(path) if path.suffix.lower() == ".parquet" else pd.read_csv(path, encoding="utf-8")
        except Exception as e:  # noqa: BLE001 - a broken file is bad input, one line
            raise PlanDataError(f"data.files.{key} {str(path)!r} cannot be read: {type(e).__name__}: "
                                f"{str(e).splitlines()[0] if str(e) else ''}") from None
        need = ["unique_id"] + (["ds"] if key != "static_df" else []) + (["y"] if key in ("df", "test") else [])
        missing = [c for c in need if c not in df.columns]
        if missing:
            raise PlanDataError(f"data.files.{key} {str(path)!r} lacks the columns {missing}")
        if "ds" in df.columns and not pd.api.types.is_integer_dtype(df["ds"]):
            try:
                df["ds"] = pd.to_datetime(df["ds"])
            except (ValueError, TypeError):
                raise PlanDataError(f"data.files.{key} {str(path)!r}: ds is neither integer nor dates") from None
        frames[key] = df
    frames.setdefault("test", frames["df"].iloc[0:0])
    from ..compat.scenario import spacing

    frames["freq"] = spacing(frames["df"])
    return frames


def value_problems(params: dict[str, Any]) -> list[tuple[str, str]]:
    """(param, message) for objects outside the closed table and unknown ``__x__`` markers in step params."""
    out = []
    for name, v in (params or {}).items():
        out += [(name, m) for m in objects.problems(v, name)]
        out += [(name, m) for m in _markers(v, name)]
    return out


def _markers(value: Any, path: str) -> list[str]:
    out = []
    if isinstance(value, dict):
        bad = [k for k in value if isinstance(k, str) and k.startswith("__") and k.endswith("__")
               and k not in VALUE_KEYS and k != "__path__"]
        if bad:
            out.append(f"{path}: unknown markers {bad} (plans use {sorted(VALUE_KEYS)})")
        for k, v in value.items():
            if k != "__space__":
                out += _markers(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _markers(v, f"{path}[{i}]")
    return out
