"""Run the compatibility matrix of one library and store it (compat_run, compat_result, observed capabilities,
registry_model_loss_compat, per-(method, param) views)."""

from __future__ import annotations

import json
import re
import time
from dataclasses import asdict
from typing import Any, Callable

from sqlalchemy import Engine, insert, select, text, update

from ..db import models as m
from .process import owner, owner_gone, scratch_dir
from ..registry.view import latest_release
from ..vocab import Exog
from .runner import AUTO_TIMEOUT_FACTOR, TIMEOUT_RETRIES, Cell, Group, run_groups

ADAPTERS = {
    "neuralforecast": "fcast_assets.compat.neuralforecast_adapter:NeuralForecastAdapter",
    "statsforecast": "fcast_assets.compat.frame_adapter:StatsForecastAdapter",
    "mlforecast": "fcast_assets.compat.frame_adapter:MLForecastAdapter",
    "utilsforecast": "fcast_assets.compat.function_adapter:UtilsForecastAdapter",
    "coreforecast": "fcast_assets.compat.function_adapter:CoreForecastAdapter",
    "hierarchicalforecast": "fcast_assets.compat.function_adapter:HierarchicalForecastAdapter",
    "chronos": "fcast_assets.compat.foundation_adapter:ChronosAdapter",
    "timesfm": "fcast_assets.compat.foundation_adapter:TimesFMAdapter",
    "datasetsforecast": "fcast_assets.compat.datasets_adapter:DatasetsForecastAdapter",
}

Progress = Callable[[int, int, str], None]


class UnknownAdapterError(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


def adapter_for(library: str, engine: Engine, release_id: int, work_dir: str):
    if library not in ADAPTERS:
        raise UnknownAdapterError(
            f"no compat adapter for {library!r}: adapters exist for {', '.join(ADAPTERS)} "
            "(one module per library under fcast_assets/compat/)")
    import importlib

    mod, _, cls = ADAPTERS[library].partition(":")
    return getattr(importlib.import_module(mod), cls)(engine, release_id, work_dir)


class _Recorder:
    def __init__(self, engine: Engine, run_id: int, release_id: int, total: int, progress: Progress | None):
        self.engine, self.run_id, self.release_id = engine, run_id, release_id
        self.total, self.done, self.progress = total, 0, progress
        self.buffer: list[dict[str, Any]] = []
        self.results: list[tuple[Cell, dict[str, Any]]] = []

    def __call__(self, group: Group, cell: Cell, res: dict[str, Any]) -> None:
        context = {"group": {"key": group.key, "setup": group.setup}, "cell": asdict(cell),
                   "warnings": res.get("warnings", []), "setup_seconds": res.get("setup_seconds"),
                   "stage": res.get("stage", "cell")}
        if res.get("traceback"):
            context["traceback"] = res["traceback"]
        if res.get("retry"):  # the first try timed out; this row is the retry's outcome (runner.after_retry)
            context["retry"] = res["retry"]
        if res.get("carried_from"):  # not run: the same cell's outcome in an earlier release the diff leaves alone
            context["carried_from"] = res["carried_from"]
        self.buffer.append(dict(
            compat_run_id=self.run_id, release_id=self.release_id, model=cell.model, method=cell.method,
            param=cell.param, value=cell.value, value_label=cell.value_label[:500], scenario=cell.scenario,
            scenario_facts=cell.facts,
            status=res["status"], exception_type=res.get("exception_type"), message=res.get("message"),
            seconds=None if res.get("seconds") is None else round(res["seconds"], 4), context=context,
        ))
        self.results.append((cell, res))
        self.done += 1
        if len(self.buffer) >= 200:
            self.flush()
        if self.progress:
            self.progress(self.done, self.total, cell.model.rsplit(".", 1)[-1])

    def flush(self) -> None:
        if self.buffer:
            with self.engine.begin() as conn:
                conn.execute(insert(m.CompatResult.__table__), self.buffer)  # type: ignore[attr-defined]
            self.buffer = []


def run_matrix(
    engine: Engine,
    library: str = "neuralforecast",
    *,
    models: list[str] | None = None,
    families: list[str] | None = None,
    workers: int = 2,
    cell_timeout: float = 60.0,
    auto_cell_timeout: float | None = None,
    progress: Progress | None = None,
    carry_from: str | None = None,
) -> dict[str, Any]:
    """Probe ``models`` (default: every model the registry lists) and store every cell. Returns a summary.

    ``carry_from`` (a release of the same library, probed before): diff-driven re-probe. Only the cells the
    registry diff between that release and this one touches (:func:`touched_by_diff`), and the cells it has no
    outcome for, are run; every other cell gets that release's outcome, marked ``context.carried_from``.

    ``cell_timeout``: seconds one try of a cell may take; ``auto_cell_timeout``: the same for Auto cells (a
    hyper-parameter search; default ``runner.AUTO_TIMEOUT_FACTOR`` × ``cell_timeout``). A cell that times out is
    run once more in a fresh process before ``timeout`` is recorded."""
    t0 = time.perf_counter()
    if auto_cell_timeout is None:
        auto_cell_timeout = AUTO_TIMEOUT_FACTOR * cell_timeout
    release_id, version = latest_release(engine, library)
    with scratch_dir("fcast-compat-") as work:
        adapter = adapter_for(library, engine, release_id, work)
        chosen = adapter.select_models(models)
        adapter.prepare()
        close_abandoned_runs(engine)
        config = {"models": models, "families": families, "cell_timeout": cell_timeout,
                  "auto_cell_timeout": auto_cell_timeout, "timeout_retries": TIMEOUT_RETRIES, "owner": owner()}
        with engine.begin() as conn:
            run_id = conn.execute(insert(m.CompatRun.__table__).values(  # type: ignore[attr-defined]
                release_id=release_id, library=library, workers=workers, config=config,
                started_at=m.utcnow())).inserted_primary_key[0]
        # phase 1: calibrate a baseline per model (first input_size whose fit + predict runs)
        calib = adapter.calibration_groups(chosen)
        rec = _Recorder(engine, run_id, release_id, sum(len(g.cells) for g in calib), progress)
        run_groups(adapter, calib, workers=workers, cell_timeout=cell_timeout, auto_cell_timeout=auto_cell_timeout,
                   on_result=rec)
        sizes: dict[str, Any] = {}  # model -> the first calibration value (in the adapter's order) that ran
        reasons: dict[str, str] = {}
        outcome = {(c.model, json.dumps(c.value)): r for c, r in rec.results}
        for g in calib:
            for c in g.cells:
                r = outcome.get((c.model, json.dumps(c.value)), {})
                if r.get("status") == "ok":
                    sizes.setdefault(c.model, c.value)
                else:
                    reasons.setdefault(c.model, f"{r.get('exception_type')}: {r.get('message')}")
        # phase 2: every cell, on the calibrated baselines; models without one are skipped with the reason
        calibrated = {g.model for g in calib}
        runnable = [q for q in chosen if q in sizes or q not in calibrated]
        groups = adapter.plan(runnable, sizes, set(families) if families else None)
        unrunnable = adapter.plan([q for q in chosen if q not in runnable],
                                  {q: 0 for q in chosen}, set(families) if families else None)
        rec.total += sum(len(g.cells) for g in groups) + sum(len(g.cells) for g in unrunnable)
        carried = 0
        if carry_from is not None:
            groups, carry = split_by_diff(engine, library, carry_from, release_id, groups)
            for g, cell, old in carry:
                rec(g, cell, old)
            carried = len(carry)
        for g in unrunnable:
            for cell in g.cells:
                rec(g, cell, {"status": "skipped", "exception_type": None, "seconds": 0.0,
                              "message": f"no baseline configuration runs: {reasons.get(cell.model, '?')}"})
        run_groups(adapter, groups, workers=workers, cell_timeout=cell_timeout, auto_cell_timeout=auto_cell_timeout,
                   on_result=rec)
        rec.flush()
    summary = finalize(engine, run_id, wall=time.perf_counter() - t0)
    return {**summary, "library": library, "version": version, "models": [q.rsplit(".", 1)[1] for q in chosen],
            "carried": carried, "ran": summary["cells"] - carried}


_CLASS_WORD = re.compile(r"\b[A-Z][A-Za-z0-9_]*\b")


def touched_by_diff(engine: Engine, from_release_id: int, to_release_id: int) -> dict[str, set[str]]:
    """What the registry diff between two releases touches: ``changed`` (qualnames whose parameters or body
    changed), ``added`` / ``removed`` (symbols), ``classes`` (class names added, removed or whose constructor
    changed)."""
    from ..registry.store import diff_releases

    with engine.connect() as conn:
        rows = diff_releases(conn, from_release_id, to_release_id)
    out: dict[str, set[str]] = {"changed": set(), "added": set(), "removed": set(), "classes": set()}
    for r in rows:
        q = r["qualname"]
        if r["param_name"] is None and r["change"] in ("added", "removed"):
            out[r["change"]].add(q)
        else:
            out["changed"].add(q)
        parts = q.split(".")
        if parts[-1] == "__init__" and len(parts) > 1:
            out["classes"].add(parts[-2])  # a class whose constructor changed
        elif parts[-1][:1].isupper() and r["param_name"] is None and r["change"] != "changed":
            out["classes"].add(parts[-1])  # a class added or removed
    return out


def _ops(cell: Cell, group: Group) -> set[str]:
    """The method names a cell calls: its own, and the ``op`` of every step of its spec and its group's warm-up."""
    ops = {cell.method.rsplit(".", 1)[-1]}
    for steps in ((cell.spec or {}).get("steps"), (group.setup or {}).get("warmup")):
        for st in steps if isinstance(steps, list) else []:
            if isinstance(st, dict) and isinstance(st.get("op"), str):
                ops.add(st["op"])
    return ops


def _cell_touched(cell: Cell, group: Group, diff: DiffIndex, drivers: set[str]) -> bool:
    """A cell is re-run when the diff touches
    - its model: the class (or function, for function libraries) added / removed / changed, or a changed
      constructor, private method or method it calls (``forecast``
      of ``StatsForecast.forecast`` runs ``Model.forecast``; inherited methods count, the scanner lists them per
      class);
    - what it calls: its method (``NeuralForecast.fit`` ↔ ``neuralforecast.core.NeuralForecast.fit``) and the
      driver class's methods its steps call (``drivers``: the classes of the run's methods, e.g. StatsForecast);
    - a class its value or setup names (a loss, a scaler...) whose constructor changed, or that was added / removed.

    Changed means a signature or a body (:func:`fcast_assets.registry.scanner.code_digest`, which includes the
    module-level helpers of the same package a function calls by name). A behaviour change reached another way (a
    method of another object, a C extension, a dependency) is caught only by a full re-run (``carry_from=None``),
    which stays available; ``compat.releases.carry_misses`` measures what a diff-driven run missed."""
    ops = _ops(cell, group)
    own = cell.method.rsplit(".", 1)[0] if "." in cell.method else ""
    if cell.model in diff.all or "." + cell.method in diff.tails:
        return True
    if any(f".{d}.{op}" in diff.tails for d in drivers | {own} for op in ops):
        return True
    for name in diff.changed_members.get(cell.model, ()):
        if name == "__init__" or name in ops or (name.startswith("_") and not name.endswith("__")):
            return True
    named = set(_CLASS_WORD.findall(json.dumps([cell.value, cell.spec, group.setup], default=str)))
    return bool(named & diff.classes)


class DiffIndex:
    """:func:`touched_by_diff`'s sets, indexed once for every cell of a re-probe: ``all`` (qualnames changed, added
    or removed), ``tails`` (each of their dotted suffixes, ``.fit``, ``.NeuralForecast.fit``, …: a cell's method or
    a driver's method is one lookup), ``changed_members`` (class qualname → names of its changed members) and
    ``classes``. Looking a cell up costs its own few keys, not the length of the diff."""

    def __init__(self, diff: dict[str, set[str]]):
        self.all = diff["changed"] | diff["added"] | diff["removed"]
        self.classes = diff["classes"]
        self.tails: set[str] = set()
        for q in self.all:
            parts = q.split(".")
            self.tails.update("." + ".".join(parts[i:]) for i in range(1, len(parts)))
        self.changed_members: dict[str, set[str]] = {}
        for q in diff["changed"]:
            parent, _, name = q.rpartition(".")
            if parent:
                self.changed_members.setdefault(parent, set()).add(name)


def split_by_diff(engine: Engine, library: str, from_version: str, release_id: int, groups: list[Group]
                  ) -> tuple[list[Group], list[tuple[Group, Cell, dict[str, Any]]]]:
    """(groups of the cells to run, [(group, cell, outcome carried over)]) for a re-probe against ``from_version``.
    Carried: ok / error / suspect outcomes of the same (model, method, param, value, scenario) in that release (its
    outcome as ``compat_version_status`` gives it: the newest row, a row that ran winning over one carried into
    that release, so a carry always points at a run); timeouts and skips are run again (they say nothing about the
    library)."""
    from_id, _ = latest_release(engine, library, from_version)
    diff = DiffIndex(touched_by_diff(engine, from_id, release_id))
    drivers = {c.method.rsplit(".", 1)[0] for g in groups for c in g.cells if "." in c.method} - {"Model"}
    with engine.connect() as conn:
        old = {}
        for r in conn.execute(text(
                "SELECT result_id, model, method, param, value_label, scenario, status, exception_type, message, "
                f"seconds FROM compat_result c WHERE release_id = :r "
                f"ORDER BY CASE WHEN {carried_from_sql(engine.dialect.name)} IS NULL THEN 1 ELSE 0 END, result_id"),
                {"r": from_id}).all():
            old[(r.model, r.method, r.param, r.value_label, r.scenario)] = r
    keep: list[Group] = []
    carry: list[tuple[Group, Cell, dict[str, Any]]] = []
    for g in groups:
        run = []
        for c in g.cells:
            prev = old.get((c.model, c.method, c.param, c.value_label[:500], c.scenario))
            if prev is None or prev.status not in ("ok", "error", "suspect") or _cell_touched(c, g, diff, drivers):
                run.append(c)
            else:
                carry.append((g, c, {"status": prev.status, "exception_type": prev.exception_type,
                                     "message": prev.message, "seconds": 0.0,
                                     "carried_from": {"version": from_version, "release_id": from_id,
                                                      "result_id": prev.result_id}}))
        if run:
            keep.append(Group(g.key, g.model, g.setup, run))
    return keep, carry


def close_abandoned_runs(engine: Engine) -> list[int]:
    """Close the compat runs left unfinished by a process that is gone (killed mid-matrix): finished_at and the
    counts of the cells it did store are set, ``config.abandoned`` says why. Capabilities are not derived from
    such a partial run; the next run probes every cell again. Runs of live processes are left alone."""
    t = m.CompatRun.__table__  # type: ignore[attr-defined]
    with engine.connect() as conn:
        rows = conn.execute(select(t.c.compat_run_id, t.c.config).where(t.c.finished_at.is_(None))).all()
    closed = []
    for r in rows:
        who = (r.config or {}).get("owner") if isinstance(r.config, dict) else None
        if not who or not owner_gone(who):
            continue
        why = (f"process {who['pid']} is gone (host {who['host']}): the run was killed before it ended; "
               "closed by the next run")
        with engine.begin() as conn:
            counts = dict(conn.execute(text("SELECT status, COUNT(*) FROM compat_result WHERE compat_run_id = :r "
                                            "GROUP BY status"), {"r": r.compat_run_id}).all())
            conn.execute(update(t).where(t.c.compat_run_id == r.compat_run_id, t.c.finished_at.is_(None)).values(
                finished_at=m.utcnow(), config={**r.config, "abandoned": why}, cells_total=sum(counts.values()),
                cells_ok=counts.get("ok", 0), cells_error=counts.get("error", 0),
                cells_timeout=counts.get("timeout", 0), cells_skipped=counts.get("skipped", 0),
                cells_suspect=counts.get("suspect", 0)))
        closed.append(r.compat_run_id)
    return closed


def finalize(engine: Engine, run_id: int, wall: float | None = None) -> dict[str, Any]:
    """Counts on compat_run, observed capabilities, model × loss table, correspondence views."""
    r = m.CompatResult.__table__  # type: ignore[attr-defined]
    with engine.begin() as conn:
        counts = dict(conn.execute(text(
            "SELECT status, COUNT(*) FROM compat_result WHERE compat_run_id = :r GROUP BY status"), {"r": run_id}).all())
        conn.execute(update(m.CompatRun.__table__).where(  # type: ignore[attr-defined]
            m.CompatRun.compat_run_id == run_id).values(
            finished_at=m.utcnow(), cells_total=sum(counts.values()), cells_ok=counts.get("ok", 0),
            cells_error=counts.get("error", 0), cells_timeout=counts.get("timeout", 0),
            cells_skipped=counts.get("skipped", 0), cells_suspect=counts.get("suspect", 0),
            **({"wall_seconds": round(wall, 2)} if wall is not None else {})))
        release_id = conn.execute(select(m.CompatRun.release_id).where(m.CompatRun.compat_run_id == run_id)).scalar()
        mismatches = _observed_capabilities(conn, run_id, release_id)
        _model_loss(conn, run_id, release_id)
    create_views(engine)
    slowest = []
    with engine.connect() as conn:
        slowest = [dict(x._mapping) for x in conn.execute(select(r.c.model, r.c.method, r.c.param, r.c.value_label,
                                                                 r.c.seconds).where(r.c.compat_run_id == run_id)
                                                          .order_by(r.c.seconds.desc().nulls_last()).limit(5))]
    return {"compat_run_id": run_id, "counts": counts, "cells": sum(counts.values()),
            "capability_mismatches": mismatches, "slowest": slowest,
            "wall_seconds": None if wall is None else round(wall, 2)}


_EXOG = {e.list_param: e.capability for e in Exog}


def _observed_capabilities(conn, run_id: int, release_id: int) -> list[dict[str, Any]]:
    """Exogenous support observed by execution (the 'with data' cells), written as source='observed' and
    compared with the declared flags; returns the disagreements."""
    sym, cap = m.RegistrySymbol.__table__, m.RegistrySymbolCapability.__table__  # type: ignore[attr-defined]
    rows = conn.execute(text("""
        SELECT result_id, model, param, status, exception_type, message FROM compat_result
        WHERE compat_run_id = :r AND method = 'Model.__init__' AND scenario = 'with_data'
          AND param IN ('futr_exog_list', 'hist_exog_list', 'stat_exog_list')"""), {"r": run_id}).all()
    mismatches = []
    for rid, model, param, status, exc, msg in rows:
        if status in ("skipped", "timeout"):
            continue
        sid = conn.execute(select(sym.c.symbol_id).where(sym.c.release_id == release_id,
                                                         sym.c.qualname == model)).scalar()
        if sid is None:
            continue
        code = _EXOG[param]
        observed = status in ("ok", "suspect")
        detail = {"compat_run_id": run_id, "result_id": rid, "status": status, "exception_type": exc,
                  "message": msg}
        conn.execute(cap.delete().where(cap.c.symbol_id == sid, cap.c.capability_code == code,
                                        cap.c.source == "observed"))
        conn.execute(insert(cap).values(symbol_id=sid, capability_code=code, value=observed, source="observed",
                                        detail=detail))
        declared = conn.execute(select(cap.c.value).where(cap.c.symbol_id == sid, cap.c.capability_code == code,
                                                          cap.c.source == "declared")).scalar()
        if declared is not None and bool(declared) != observed:
            mismatches.append({"model": model.rsplit(".", 1)[1], "capability": code, "declared": declared,
                               "observed": observed, "result_id": rid, "exception_type": exc, "message": msg})
    return mismatches


def _model_loss(conn, run_id: int, release_id: int) -> None:
    sym = m.RegistrySymbol.__table__  # type: ignore[attr-defined]
    ids = dict(conn.execute(select(sym.c.qualname, sym.c.symbol_id).where(sym.c.release_id == release_id)).all())
    rows = conn.execute(select(m.CompatResult.result_id, m.CompatResult.model, m.CompatResult.value,
                               m.CompatResult.status, m.CompatResult.exception_type, m.CompatResult.message)
                        .where(m.CompatResult.compat_run_id == run_id, m.CompatResult.method == "Model.__init__",
                               m.CompatResult.param == "loss")).all()
    out = []
    for rid, model, value, status, exc, msg in rows:
        loss_q = value.get("__obj__") if isinstance(value, dict) else None
        if model in ids and loss_q in ids and status in ("ok", "error", "suspect"):
            out.append(dict(model_symbol_id=ids[model], loss_symbol_id=ids[loss_q],
                            status="ok" if status == "ok" else "error", exception_type=exc or
                            ("Suspect" if status == "suspect" else None), message=msg, compat_run_id=run_id,
                            result_id=rid))
    if out:
        conn.execute(insert(m.RegistryModelLossCompat.__table__), out)  # type: ignore[attr-defined]


# ------------------------------------------------------------------------------------------------ views
_VIEW_PREFIX = {"NeuralForecast.__init__": "init", "NeuralForecast.fit": "fit", "NeuralForecast.predict": "predict",
                "NeuralForecast.cross_validation": "cv", "NeuralForecast.predict_insample": "insample",
                "NeuralForecast.save": "save", "NeuralForecast.load": "load", "Model.__init__": "model",
                "Auto.__init__": "auto"}


def view_name(method: str, param: str) -> str:
    prefix = _VIEW_PREFIX.get(method, re.sub(r"\W+", "_", method.lower()))
    return "compat_" + re.sub(r"\W+", "_", f"{prefix}_{param}".lower()).strip("_")


MESSAGE_CHARS = 100  # the message a pivot view / report table shows beside the exception type (first line)


def _short_message_sql(col: str = "message", n: int = MESSAGE_CHARS) -> str:
    """SQL (SQLite and PostgreSQL): ``col`` cut to ``n`` characters, '…' marking a cut."""
    return f"CASE WHEN LENGTH({col}) > {n} THEN SUBSTR({col}, 1, {n - 1}) || '…' ELSE {col} END"


def retried_sql(dialect: str, col: str = "context") -> str:
    """SQL: 1 when the row's context holds ``retry`` (the first try timed out, the row is the retry), else 0."""
    test = (f"({col} -> 'retry') IS NOT NULL" if dialect == "postgresql"
            else f"json_extract({col}, '$.retry') IS NOT NULL")
    return f"CASE WHEN {test} THEN 1 ELSE 0 END"


# the newest result of each cell: re-running one model or one cell replaces just those cells in the views
_LATEST_RESULTS = """(SELECT MAX(result_id) FROM compat_result
                      GROUP BY release_id, model, method, param, scenario, value_label)"""


def carried_from_sql(dialect: str, col: str = "c.context") -> str:
    """SQL: the release a carried row was carried from (``context.carried_from.version``), NULL for a row that ran."""
    if dialect == "postgresql":
        return f"(({col})::jsonb -> 'carried_from' ->> 'version')"
    return f"json_extract({col}, '$.carried_from.version')"


def _list_sql(dialect: str, col: str, order: str) -> str:
    """SQL aggregate: the values of ``col`` joined with ', ' in the order of ``order`` (SQLite: the order of the
    rows fed in, sorted there by the same column)."""
    return f"string_agg({col}, ', ' ORDER BY {order})" if dialect == "postgresql" else f"group_concat({col}, ', ')"


def create_release_views(engine: Engine) -> None:
    """Version ranges in SQL, for every library probed in several releases (#20):

    - ``compat_version_status``: one row per (library, version, model, method, param, value, scenario) for every
      release of the library that has a matrix, with that release's outcome (``absent`` when its matrix has no such
      cell), the result_id, and ``carried_from`` for a cell carried over by a diff-driven re-probe. The outcome is
      the newest row of the release, a row that ran winning over one carried into it.
    - ``compat_version_ranges``: per (library, model, method, param, value, scenario), the releases where it ran
      (``ran_in``), errored or was suspect (``errored_in``), and was absent (``absent_in``).

    Releases are listed in release (PEP 440) order, by ``registry_release.version_order``;
    ``compat.releases.version_ranges`` gives contiguous ranges from the same rows."""
    from ..registry.store import backfill_version_order

    d = engine.dialect.name
    carried = carried_from_sql(d)
    key = "model, method, param, value_label, scenario"
    with engine.begin() as conn:
        backfill_version_order(conn)  # releases written before the column existed
        conn.execute(text("DROP VIEW IF EXISTS compat_version_ranges"))
        conn.execute(text("DROP VIEW IF EXISTS compat_version_status"))
        conn.execute(text(f"""
            CREATE VIEW compat_version_status AS
            WITH ranked AS (
                SELECT c.result_id, c.release_id, c.model, c.method, c.param, c.value_label, c.scenario, c.status,
                       c.exception_type, c.message, {carried} AS carried_from,
                       ROW_NUMBER() OVER (PARTITION BY c.release_id, c.model, c.method, c.param, c.value_label,
                                                       c.scenario
                                          ORDER BY CASE WHEN {carried} IS NULL THEN 1 ELSE 0 END DESC,
                                                   c.result_id DESC) AS rn
                FROM compat_result c),
            latest AS (SELECT * FROM ranked WHERE rn = 1),
            probed AS (SELECT r.library_id, r.release_id, r.version, r.version_order FROM registry_release r
                       WHERE EXISTS (SELECT 1 FROM compat_result c WHERE c.release_id = r.release_id)),
            cells AS (SELECT DISTINCT p.library_id, l.model, l.method, l.param, l.value_label, l.scenario
                      FROM latest l JOIN probed p ON p.release_id = l.release_id)
            SELECT lib.name AS library, p.version, p.version_order, k.model, k.method, k.param, k.value_label, k.scenario,
                   COALESCE(l.status, 'absent') AS status, l.exception_type, l.message, l.result_id, l.carried_from
            FROM cells k JOIN probed p ON p.library_id = k.library_id
            JOIN registry_library lib ON lib.library_id = k.library_id
            LEFT JOIN latest l ON l.release_id = p.release_id AND l.model = k.model AND l.method = k.method
                 AND l.param = k.param AND l.value_label = k.value_label AND l.scenario = k.scenario"""))
        conn.execute(text(f"""
            CREATE VIEW compat_version_ranges AS
            SELECT library, {key},
                   {_list_sql(d, "CASE WHEN status = 'ok' THEN version END", "version_order")} AS ran_in,
                   {_list_sql(d, "CASE WHEN status IN ('error', 'suspect') THEN version END", "version_order")}
                       AS errored_in,
                   {_list_sql(d, "CASE WHEN status = 'absent' THEN version END", "version_order")} AS absent_in
            FROM (SELECT * FROM compat_version_status ORDER BY version_order) s
            GROUP BY library, {key}"""))


def create_views(engine: Engine) -> list[str]:
    """One pivot view per (method, param) in the latest run of each release: model × value → status, exception
    type and the first ``MESSAGE_CHARS`` characters of the message (``error ValueError: level must be …``); and
    ``compat_cells``: every latest cell with its message, scenario facts (why, and under which setup) and
    ``retried`` (1: the first try timed out, the row is the retry's outcome)."""
    with engine.begin() as conn:
        conn.execute(text("DROP VIEW IF EXISTS compat_cells"))
        conn.execute(text(f"""
            CREATE VIEW compat_cells AS
            SELECT result_id, release_id, model, method, param, value_label, status, exception_type, message,
                   scenario, scenario_facts, seconds, {retried_sql(engine.dialect.name)} AS retried
            FROM compat_result WHERE result_id IN {_LATEST_RESULTS}"""))
        pairs = conn.execute(text(f"""
            SELECT method, param, value_label FROM compat_result WHERE result_id IN {_LATEST_RESULTS}
            GROUP BY method, param, value_label ORDER BY method, param, MIN(result_id)""")).all()
        by_pair: dict[tuple[str, str], list[str]] = {}
        for method, param, lab in pairs:
            by_pair.setdefault((method, param), []).append(lab)
        names = []
        for (method, param), labels in by_pair.items():
            name = view_name(method, param)
            cols = ",\n".join(
                "MAX(CASE WHEN value_label = '{0}' THEN status || COALESCE(' ' || exception_type, '') "
                "|| COALESCE(': ' || {2}, '') END) AS \"{1}\"".format(
                    lab.replace("'", "''"), lab.replace('"', "'")[:60], _short_message_sql()) for lab in labels[:60])
            conn.execute(text(f"DROP VIEW IF EXISTS {name}"))
            conn.execute(text(f"""
                CREATE VIEW {name} AS
                SELECT release_id, model, scenario,
                {cols}
                FROM compat_result
                WHERE result_id IN {_LATEST_RESULTS} AND method = '{method}' AND param = '{param}'
                GROUP BY release_id, model, scenario"""))
            names.append(name)
    create_release_views(engine)
    return names
