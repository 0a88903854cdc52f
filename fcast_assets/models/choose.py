"""Model choice from the registry and the compatibility matrix, never from a hand-written list.

The configured class must be a model class of the installed release (registry); its declared capabilities decide
the series mode (a multivariate model only as ``multivariate_joint``, a univariate one per slot or as
``global_univariate``) and which exogenous groups it may take; the compat matrix must have run the class (a
calibrated baseline) and an exogenous group is kept only when its cell passed (``Model.__init__`` ×
``<group>_exog_list`` with data). What was dropped and why goes into the notes of the model registry row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from ..plans.validator import Context
from .config import ALL
from .selectors import Selector

GROUPS = ("hist", "futr", "stat")


class ModelChoiceError(ValueError):
    pass


@dataclass
class Choice:
    library: str
    qualname: str
    name: str
    release_id: int
    version: str | None
    series_mode: str
    n_series: int
    hyperparams: dict[str, Any]
    exog: dict[str, list[str]]
    notes: list[str] = field(default_factory=list)


def _model(ctx: Context, name: str) -> dict[str, Any]:
    for m in ctx.models.values():
        if m["name"] == name or m["qualname"] == name:
            return m
    known = sorted(m["name"] for m in ctx.models.values())
    raise ModelChoiceError(f"{name!r} is not a model class of {ctx.library} (release id {ctx.release_id}); "
                           f"known: {', '.join(known[:20])}...")


def passed(ctx: Context, qualname: str, family: str) -> tuple[bool | None, str]:
    """(True: a cell of the family passed / False: only errors / None: no cell), with the evidence."""
    rows = ctx.compat(qualname, "Model.__init__", family)
    if not rows:
        return None, "no compat cell"
    ok = [r for r in rows if r["status"] == "ok"]
    if ok:
        return True, f"compat ok: {ok[0]['value_label']}"
    bad = rows[0]
    return False, f"compat {bad['status']}: {bad['exception_type']}: {(bad['message'] or '')[:120]}"


def choose(engine: Engine, selector: Selector, cfg: dict[str, Any], gold_columns: dict[str, list[str]] | None = None,
           ctx: Context | None = None) -> Choice:
    library = cfg["library"]
    ctx = ctx or Context(engine, library)
    mode = "per_slot" if selector.name != ALL else cfg["all_mode"]
    name = cfg["multivariate_model"] if mode == "multivariate_joint" else cfg["model"]
    m = _model(ctx, name)
    caps = m["caps"]
    multivariate = bool(caps.get("multivariate"))
    if mode == "multivariate_joint" and not multivariate:
        raise ModelChoiceError(f"{m['name']} is univariate (registry: multivariate={caps.get('multivariate')}): "
                               "all_mode multivariate_joint needs a multivariate model (multivariate_model)")
    if mode != "multivariate_joint" and multivariate:
        raise ModelChoiceError(f"{m['name']} is multivariate (registry): use it for the ALL selector with "
                               f"all_mode: multivariate_joint, not for {mode}")
    calib = ctx.compat(m["qualname"], "Model.__init__", "input_size")
    if not any(r["status"] == "ok" for r in calib):
        raise ModelChoiceError(
            f"the compatibility matrix has no passing baseline cell for {m['name']} in this release: materialize "
            f"compat_matrix or run `fcast compat --model {m['name']} "
            + " ".join(f"--family {f}" for f in cfg.get("compat_families") or []) + "`")
    notes: list[str] = []
    exog: dict[str, list[str]] = {}
    gold_cols = set((gold_columns or {}).get("features", [])) | set((gold_columns or {}).get("futr", [])) \
        | set((gold_columns or {}).get("static", []))
    for grp in GROUPS:
        want = list((cfg.get("exog") or {}).get(grp) or [])
        if not want:
            exog[grp] = []
            continue
        if not caps.get(f"exog_{grp}"):
            notes.append(f"{grp} exogenous dropped: {m['name']} declares exog_{grp}={caps.get(f'exog_{grp}')}")
            exog[grp] = []
            continue
        ok, why = passed(ctx, m["qualname"], f"{grp}_exog_list")
        if not ok:
            notes.append(f"{grp} exogenous dropped: {why} for {grp}_exog_list")
            exog[grp] = []
            continue
        if gold_columns is not None:
            absent = [c for c in want if c not in gold_cols]
            if absent:
                notes.append(f"{grp} candidates not in the gold tables, left out: {absent}")
            want = [c for c in want if c in gold_cols]
        notes.append(f"{grp} exogenous kept ({why})")
        exog[grp] = want
    hp = dict(cfg.get("hyperparams") or {})
    n = len(selector.unique_ids)
    if mode == "multivariate_joint":
        hp["n_series"] = n
    return Choice(library, m["qualname"], m["name"], ctx.release_id, ctx.version, mode, n, hp, exog, notes)
