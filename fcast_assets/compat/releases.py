"""Releases side by side: scan and probe any release of a library in its own environment
(:mod:`fcast_assets.registry.envs`), re-probe only what the registry diff touches, and read the outcome as version
ranges and upgrade reports.

A release that is the one installed here runs in this process; any other runs ``python -m
fcast_assets.compat.inenv`` with its environment's interpreter — the same scan and compat code — writing into the
same tables with that release.
"""

from __future__ import annotations

import json
import time
from typing import Any, Callable

import pandas as pd
from sqlalchemy import Engine, text

from ..db import models as m
from ..registry.envs import ReleaseEnv, ReleaseSpec, ensure_env, is_installed_release, parse_spec, run_in_env
from ..registry.store import diff_releases, version_key
from ..registry.view import installed_release, latest_release
from .inenv import PREFIX

Log = Callable[[str], None]
KEY = ["model", "method", "param", "value_label", "scenario"]
STATUS_MARK = {"ok": "✓", "error": "✗", "suspect": "⚠", "timeout": "⏱", "skipped": "–"}


class ReleaseRunError(RuntimeError):
    """The scan or the matrix failed inside a release environment (its one-line reason)."""


def _inenv(env: ReleaseEnv, args: list[str], timeout: float | None = None) -> dict[str, Any]:
    p = run_in_env(env, "fcast_assets.compat.inenv", args, timeout=timeout)
    for line in reversed((p.stdout or "").splitlines()):
        if line.startswith(PREFIX):
            return json.loads(line[len(PREFIX):])
    lines = [x for x in (p.stderr or "").splitlines() if x.strip()]
    raise ReleaseRunError(f"{env.spec}: {lines[-1] if lines else f'exit {p.returncode}'}")


def _env_for(spec: ReleaseSpec, rebuild: bool, log: Log | None) -> tuple[ReleaseEnv | None, dict[str, Any]]:
    """None when ``spec`` is the release installed here; else its environment, built or reused."""
    if is_installed_release(spec) and not rebuild:
        return None, {"env": "this interpreter"}
    env = ensure_env(spec, rebuild=rebuild, log=log)
    return env, {"env": str(env.folder), "env_cached": env.cached, "env_seconds": round(env.seconds, 2)}


def scan_release(engine: Engine, spec: str | ReleaseSpec, rebuild: bool = False, log: Log | None = None
                 ) -> dict[str, Any]:
    """Scan ``library==version`` into the registry (its environment built on first use)."""
    spec = parse_spec(spec) if isinstance(spec, str) else spec
    env, info = _env_for(spec, rebuild, log)
    if env is None:
        from ..registry import scan_and_store

        out = scan_and_store(spec.library, engine)
    else:
        out = _inenv(env, ["scan", spec.library])
    return {**out, **info}


def probe_release(engine: Engine, spec: str | ReleaseSpec, *, models: list[str] | None = None,
                  families: list[str] | None = None, workers: int = 2, cell_timeout: float = 60.0,
                  carry_from: str | None = None, rebuild: bool = False, log: Log | None = None) -> dict[str, Any]:
    """Run the compatibility matrix of ``library==version`` in its environment (scanning it first when the
    registry lacks it). ``carry_from``: re-run only the cells the registry diff from that release touches."""
    spec = parse_spec(spec) if isinstance(spec, str) else spec
    if spec.version is None:  # the release installed here, by its number (so it is scanned when missing)
        spec = ReleaseSpec(spec.library, installed_release(spec.library))
    env, info = _env_for(spec, rebuild, log)
    if spec.version is not None:
        try:
            latest_release(engine, spec.library, spec.version)
        except LookupError:
            scan_release(engine, spec, log=log)
    t0 = time.perf_counter()
    if env is None:
        from .probe import run_matrix

        out = run_matrix(engine, spec.library, models=models, families=families, workers=workers,
                         cell_timeout=cell_timeout, carry_from=carry_from)
        out = {k: out[k] for k in ("compat_run_id", "cells", "counts", "library", "version", "carried", "ran",
                                   "wall_seconds")}
    else:
        args = ["compat", spec.library, "--workers", str(workers), "--timeout", str(cell_timeout)]
        for x in models or []:
            args += ["--model", x]
        for x in families or []:
            args += ["--family", x]
        if carry_from:
            args += ["--carry-from", carry_from]
        out = _inenv(env, args)
    return {**out, **info, "seconds": round(time.perf_counter() - t0, 2)}


def rerun_in_release(engine: Engine, result_id: int) -> dict[str, Any]:
    """Re-run one compat_result row in its own release's environment (this interpreter when that release is the
    one installed here)."""
    with engine.connect() as conn:
        row = conn.execute(text("""
            SELECT l.name AS library, r.version FROM compat_result c
            JOIN registry_release r ON r.release_id = c.release_id
            JOIN registry_library l ON l.library_id = r.library_id WHERE c.result_id = :id"""),
            {"id": result_id}).first()
    if row is None:
        raise LookupError(f"no compat_result row with result_id {result_id}")
    spec = ReleaseSpec(row.library, row.version)
    if is_installed_release(spec):
        from .tables import rerun_cell

        return rerun_cell(engine, result_id)
    return _inenv(ensure_env(spec), ["rerun", str(result_id)])


# ------------------------------------------------------------------------------------------------ config
def release_config() -> dict[str, Any]:
    """releases.yaml: {releases: {library: [versions]}, probe: {library: {models, families}}, carry_over}.
    ``FCAST_RELEASES`` (``lib==v,lib==v``) replaces the list of releases. Every entry is checked (known library,
    plain release number): a bad one is one line naming the file or the variable."""
    import os
    from importlib import resources

    import yaml

    from ..registry.envs import ReleaseSpecError
    from ..registry.libraries import UnknownLibraryError

    raw = yaml.safe_load(resources.files("fcast_assets.compat").joinpath("releases.yaml").read_text(encoding="utf-8"))
    where = "fcast_assets/compat/releases.yaml"
    texts = [f"{lib}=={v}" for lib, vs in (raw.get("releases") or {}).items() for v in vs]
    env = os.environ.get("FCAST_RELEASES", "").strip()
    if env:
        where, texts = "FCAST_RELEASES", [t for t in env.split(",") if t.strip()]
    specs = []
    for t in texts:
        try:
            s = parse_spec(t)
        except (ReleaseSpecError, UnknownLibraryError) as e:
            raise ReleaseSpecError(f"{where}: {e}") from None
        if s.version is None:
            raise ReleaseSpecError(f"{where}: {t!r} names no release (write {t}==<version>)")
        specs.append(s)
    return {"releases": specs, "probe": raw.get("probe") or {}, "carry_over": bool(raw.get("carry_over"))}


def previous_listed(spec: ReleaseSpec, specs: list[ReleaseSpec]) -> ReleaseSpec | None:
    """The listed release of the same library just below ``spec`` in version order."""
    same = sorted((s for s in specs if s.library == spec.library), key=lambda s: version_key(s.version))
    i = same.index(spec)
    return same[i - 1] if i > 0 else None


# ------------------------------------------------------------------------------------------------ reading
def _latest_results(engine: Engine, library: str) -> pd.DataFrame:
    """The latest outcome of every cell in every release of ``library`` (one row per release × cell that ran or was
    carried there): the rows of the SQL view ``compat_version_status`` (a row that ran wins over one carried into the
    release), model by class name so that a class moved between modules stays one cell."""
    from sqlalchemy import inspect

    from .probe import create_release_views

    if "compat_version_status" not in inspect(engine).get_view_names():  # a database probed before the view
        create_release_views(engine)
    with engine.connect() as conn:
        rows = conn.execute(text("""
            SELECT result_id, version, model, method, param, value_label, scenario, status, exception_type, message,
                   carried_from
            FROM compat_version_status WHERE library = :lib AND status <> 'absent' ORDER BY result_id"""),
            {"lib": library}).all()
    df = pd.DataFrame([dict(r._mapping) for r in rows])
    if df.empty:
        return df
    df["model"] = df["model"].str.rsplit(".", n=1).str[-1]
    return df.drop_duplicates(["version", *KEY], keep="last")


def versions_of(engine: Engine, library: str) -> list[str]:
    with engine.connect() as conn:
        vs = conn.execute(text("SELECT r.version FROM registry_release r JOIN registry_library l "
                               "USING (library_id) WHERE l.name = :lib"), {"lib": library}).scalars().all()
    return sorted(vs, key=version_key)


def version_ranges(engine: Engine, library: str) -> pd.DataFrame:
    """Per (model, method, param, value, scenario): the status in every probed release of the library (``absent``
    where that release's matrix has no such cell), and the ranges of releases where it ran / errored."""
    df = _latest_results(engine, library)
    if df.empty:
        return df
    versions = [v for v in versions_of(engine, library) if v in set(df["version"])]
    wide = df.pivot_table(index=KEY, columns="version", values="status", aggfunc="last").reindex(columns=versions)
    wide = wide.fillna("absent")

    def ranges(row: pd.Series, want: tuple[str, ...]) -> str:
        out, start, prev = [], None, None
        for v in versions:
            if row[v] in want:
                start = start or v
                prev = v
            elif start:
                out.append(start if start == prev else f"{start}–{prev}")
                start = None
        if start:
            out.append(start if start == prev else f"{start}–{prev}")
        return ", ".join(out)

    wide["runs_in"] = wide.apply(ranges, axis=1, want=("ok",))
    wide["errors_in"] = wide.apply(ranges, axis=1, want=("error", "suspect"))
    wide.columns.name = None
    return wide.reset_index()


def _release_results(engine: Engine, library: str, version: str) -> pd.DataFrame:
    """Every compat_result row of one release (every run, oldest first), ``carried`` True for a row carried over
    by a diff-driven re-probe; model by qualname."""
    with engine.connect() as conn:
        rows = conn.execute(text("""
            SELECT c.result_id, c.compat_run_id, c.model, c.method, c.param, c.value_label, c.scenario, c.status,
                   c.exception_type, c.context FROM compat_result c JOIN registry_release r ON r.release_id = c.release_id
            JOIN registry_library l ON l.library_id = r.library_id WHERE l.name = :lib AND r.version = :v
            ORDER BY c.result_id""").columns(context=m.JSONType), {"lib": library, "v": version}).all()
    df = pd.DataFrame([dict(r._mapping) for r in rows])
    if not df.empty:
        df["carried"] = [bool((c or {}).get("carried_from")) for c in df.pop("context")]
    return df


def carry_misses(engine: Engine, library: str, version: str, compat_run_id: int | None = None) -> pd.DataFrame:
    """Cells a diff-driven re-probe of ``version`` (``compat_run_id``, default: the latest run that carried cells)
    carried over whose outcome differs from a full run of the same release (another compat run): what the diff
    missed (a change reached only through a helper). A cell that timed out or was skipped in the full run is no
    answer to compare with, and is left out."""
    df = _release_results(engine, library, version)
    if df.empty:
        return df
    if not df["carried"].any():
        return df.iloc[0:0]
    last = compat_run_id if compat_run_id is not None else df.loc[df["carried"], "compat_run_id"].max()
    ran = df[~df["carried"] & (df["compat_run_id"] != last)].drop_duplicates(KEY, keep="last")
    ran = ran[~ran["status"].isin(["timeout", "skipped"])].set_index(KEY)
    car = df[df["carried"] & (df["compat_run_id"] == last)].drop_duplicates(KEY, keep="last").set_index(KEY)
    both = car.join(ran, how="inner", lsuffix="_carried", rsuffix="_ran")
    return both[(both["status_carried"] != both["status_ran"])
                | (both["exception_type_carried"].fillna("") != both["exception_type_ran"].fillna(""))].reset_index()


def flipped_cells(engine: Engine, library: str, from_version: str, to_version: str) -> pd.DataFrame:
    """Cells whose status differs between two releases (absent on one side included), with both outcomes and the
    result_id of each row (re-runnable in its own release's environment)."""
    df = _latest_results(engine, library)
    if df.empty:
        return df
    a = df[df["version"] == from_version].set_index(KEY)
    b = df[df["version"] == to_version].set_index(KEY)
    both = a.join(b, how="outer", lsuffix="_from", rsuffix="_to")
    both["status_from"] = both["status_from"].fillna("absent")
    both["status_to"] = both["status_to"].fillna("absent")
    flipped = both[(both["status_from"] != both["status_to"])
                   | (both["exception_type_from"].fillna("") != both["exception_type_to"].fillna(""))]
    return flipped.reset_index()


def unstable_cells(engine: Engine, library: str, version: str) -> set[tuple]:
    """Cells (KEY, model by class name) that ran more than once in ``version`` (a full run and a diff-driven re-run,
    say) with different outcomes: status or exception type. Carried rows do not count (they copy a run)."""
    df = _release_results(engine, library, version)
    if df.empty:
        return set()
    ran = df[~df["carried"]].assign(model=lambda d: d["model"].str.rsplit(".", n=1).str[-1],
                                    exception_type=lambda d: d["exception_type"].fillna(""))
    outcomes = ran.drop_duplicates([*KEY, "status", "exception_type"]).groupby(KEY).size()
    return set(outcomes[outcomes > 1].index)


def classified_flips(engine: Engine, library: str, from_version: str, to_version: str) -> pd.DataFrame:
    """:func:`flipped_cells` with ``kind``: ``flipped`` (a change of the library's answer), ``timeout`` (no answer
    in time in one release: the machine's time, not evidence) or ``varies`` (the cell ran more than once in one of
    the releases with different outcomes: its difference is not evidence either)."""
    flips = flipped_cells(engine, library, from_version, to_version)
    if flips.empty:
        return flips.assign(kind=pd.Series(dtype=str))
    unstable = unstable_cells(engine, library, from_version) | unstable_cells(engine, library, to_version)
    timed = (flips["status_from"] == "timeout") | (flips["status_to"] == "timeout")
    varies = flips.apply(lambda r: tuple(r[k] for k in KEY) in unstable, axis=1)
    return flips.assign(kind=["timeout" if t else "varies" if v else "flipped" for t, v in zip(timed, varies)])


def upgrade_report(engine: Engine, library: str, from_version: str, to_version: str) -> str:
    """Markdown: what changes if you upgrade ``library`` from one release to another — symbols and parameters added
    / removed / renamed, defaults changed, and the matrix cells that flipped, with their messages."""
    a, _ = latest_release(engine, library, from_version)
    b, _ = latest_release(engine, library, to_version)
    with engine.connect() as conn:
        diff = diff_releases(conn, a, b)
    latest = _latest_results(engine, library)
    counts = latest["version"].value_counts().to_dict() if not latest.empty else {}
    out = [f"# Upgrading {library} {from_version} → {to_version}", "",
           f"From the registry scans of both releases and their compatibility matrices ({counts.get(from_version, 0)} "
           f"and {counts.get(to_version, 0)} cells), each run in its own release environment. Generated by "
           f"`fcast releases report {library} {from_version} {to_version}`.", ""]
    sym_add = sorted(d["qualname"] for d in diff if d["param_name"] is None and d["change"] == "added")
    sym_rm = sorted(d["qualname"] for d in diff if d["param_name"] is None and d["change"] == "removed")
    p_add = [d for d in diff if d["param_name"] and d["change"] == "added"]
    p_rm = [d for d in diff if d["param_name"] and d["change"] == "removed"]
    p_ch = [d for d in diff if d["param_name"] and d["change"] == "changed"]
    bodies = sorted(d["qualname"] for d in diff if d["param_name"] is None and d["change"] == "changed")
    renamed = []
    for r in p_rm:  # a parameter removed and another added at the same position of the same callable: renamed?
        for ad in p_add:
            if ad["qualname"] == r["qualname"] and (ad["detail"] or {}).get("position") == (r["detail"] or {}).get(
                    "position"):
                renamed.append((r["qualname"], r["param_name"], ad["param_name"]))
    defaults = [d for d in p_ch if "default" in (d["detail"] or {})]
    moved = [d for d in p_ch if set(d["detail"] or {}) == {"position"}]
    out += ["## Summary", "", "| change | count |", "|---|---:|",
            f"| symbols added | {len(sym_add)} |", f"| symbols removed | {len(sym_rm)} |",
            f"| parameters added | {len(p_add)} |", f"| parameters removed | {len(p_rm)} |",
            f"| parameters renamed (same position) | {len(renamed)} |",
            f"| defaults changed | {len(defaults)} |",
            f"| parameters moved (position only: another one was inserted before) | {len(moved)} |",
            f"| parameters changed otherwise (kind, annotation) | {len(p_ch) - len(defaults) - len(moved)} |",
            f"| functions / methods whose code changed (body, or a helper it calls) | {len(bodies)} |"]
    every = classified_flips(engine, library, from_version, to_version)
    flips, timed_out, varied = (every[every["kind"] == k] for k in ("flipped", "timeout", "varies"))
    out += [f"| matrix cells that flipped | {len(flips)} |",
            f"| cells that timed out in one of the releases (not counted as flipped) | {len(timed_out)} |",
            f"| cells whose outcome varied between runs of one release (not counted as flipped) | {len(varied)} |",
            ""]

    def esc(x: Any) -> str:  # text from the database: never markup in a table cell (HTML entities, no pipes)
        if x is None or x != x:
            return ""
        t = " ".join(str(x).split())[:160]
        return t.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")

    def code(x: Any) -> str:  # a code span that holds any text (backticks included)
        return "`` " + " ".join(str(x).split())[:160].replace("|", "\\|") + " ``"

    def table(rows: pd.DataFrame) -> list[str]:
        lines = ["| model | method | param | value | scenario | " + from_version + " | " + to_version +
                 " | message | result_id (from / to) |", "|---|---|---|---|---|---|---|---|---|"]
        for r in rows.itertuples():
            msg = r.message_to if r.status_to not in ("ok", "absent") else r.message_from
            ids = " / ".join("–" if x != x or x is None else str(int(x)) for x in (r.result_id_from, r.result_id_to))
            lines.append(f"| {esc(r.model)} | {esc(r.method)} | {esc(r.param)} | {code(r.value_label)} | "
                         f"{esc(r.scenario)} | {STATUS_MARK.get(r.status_from, '')} {r.status_from} "
                         f"{esc(r.exception_type_from)} | {STATUS_MARK.get(r.status_to, '')} {r.status_to} "
                         f"{esc(r.exception_type_to)} | {esc(msg)} | {ids} |")
        return [*lines, ""]

    out += ["## Cells that flipped", ""]
    if flips.empty:
        out += ["No cell changed status.", ""]
    else:
        out += ["Each row can be re-run in its own release's environment: `fcast releases rerun <result_id>`.", "",
                *table(flips)]
    if not timed_out.empty:
        out += ["## Cells that timed out in one release", "",
                "No answer within the cell's time limit in one release and an answer in the other: the machine's "
                "time, not evidence that the library changed. Re-run them (`fcast releases rerun <result_id>`) "
                "before reading them as a change.", "", *table(timed_out)]
    if not varied.empty:
        out += ["## Cells whose outcome varies between runs", "",
                "These ran more than once in one of the releases with different outcomes (the data or the search "
                "is not the same every run): their difference between the releases is not a change either.", "",
                *table(varied)]
    out += ["## Parameters renamed (removed and added at the same position)", ""]
    out += [f"- `{q}`: `{old}` → `{new}`" for q, old, new in renamed] or ["None."]
    out += ["", "## Defaults changed", ""]
    out += [f"- `{d['qualname']}({d['param_name']})`: {code(repr(d['detail']['default'][0]))} → "
            f"{code(repr(d['detail']['default'][1]))}" for d in defaults] or ["None."]
    out += ["", "## Parameters added", ""]
    out += [f"- `{d['qualname']}({d['param_name']})`" for d in p_add] or ["None."]
    out += ["", "## Parameters removed", ""]
    out += [f"- `{d['qualname']}({d['param_name']})`" for d in p_rm] or ["None."]
    out += ["", "## Parameters changed (kind, annotation)", ""]
    out += [f"- `{d['qualname']}({d['param_name']})`: " + "; ".join(
        f"{k} {code(v[0])} → {code(v[1])}" for k, v in (d["detail"] or {}).items() if k in ("kind", "annotation"))
        for d in p_ch if d not in defaults and d not in moved] or ["None."]
    out += ["", "## Bodies changed (same name; the code it runs differs: its body or a module-level helper it calls)", ""]
    out += [f"- `{q}`" for q in bodies[:300]] or ["None."]
    if len(bodies) > 300:
        out.append(f"- … and {len(bodies) - 300} more")
    out += ["", "## Symbols added", ""]
    out += [f"- `{q}`" for q in sym_add] or ["None."]
    out += ["", "## Symbols removed", ""]
    out += [f"- `{q}`" for q in sym_rm] or ["None."]
    return "\n".join(out) + "\n"
