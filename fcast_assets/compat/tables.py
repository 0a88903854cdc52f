"""Correspondence tables for people (model × value → ✓ / ✗ exception), the Markdown report, and re-running a
single cell from its row."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Engine, insert, text

from ..db import models as m
from .probe import _LATEST_RESULTS, MESSAGE_CHARS, _Recorder, adapter_for, finalize, retried_sql
from .runner import Cell, Group, run_groups
from .scenario import describe as describe_facts

MARK = {"ok": "✓", "error": "✗", "timeout": "⏱", "skipped": "–", "suspect": "⚠"}
RETRIED = "↻"

LEGEND = [
    "✓ **ok** — ran, and the output passed the post-conditions;",
    "✗ **error** — the library raised: exception type, then the first line of its message;",
    "⚠ **suspect** — ran, but the output broke a post-condition (dates off the freq grid or not after the last "
    "ds, rows ≠ ids × h, interval / quantile columns missing, NaN forecasts): the breach is the message;",
    "⏱ **timeout** — no result within the cell's timeout (Auto classes have a longer one of their own), twice: "
    "a cell that times out is retried once in a fresh process before it is recorded;",
    "– **skipped** — not run: the message says why (e.g. no baseline configuration runs for the model);",
    f"{RETRIED} — the first try timed out and the mark is the retry's outcome.",
]


def short_message(msg: Any, n: int = MESSAGE_CHARS) -> str:
    """The first line of ``msg``, whitespace collapsed, cut to ``n`` characters ('…' marks a cut)."""
    if not isinstance(msg, str) or not msg.strip():
        return ""
    line = " ".join(msg.strip().splitlines()[0].split())
    return line if len(line) <= n else line[: n - 1] + "…"


def _mark(status: str, exc: str | None, message: Any = None, retried: Any = False) -> str:
    """``✗ ValueError: first line of the message``; ok cells show the mark alone (``✓``, ``✓ ↻`` if retried)."""
    out = MARK.get(status, status) + (f" {RETRIED}" if retried else "")
    msg = "" if status == "ok" else short_message(message)
    if exc and status in ("error", "timeout"):
        return f"{out} {exc}: {msg}" if msg else f"{out} {exc}"
    return f"{out} {msg}" if msg else out


def resolve_methods(engine: Engine, method: str) -> list[str]:
    """'predict' → ['NeuralForecast.predict']; a dotted name is taken as it is."""
    if "." in method:
        return [method]
    with engine.connect() as conn:
        found = conn.execute(text("SELECT DISTINCT method FROM compat_result WHERE method LIKE :m ORDER BY method"),
                             {"m": f"%.{method}"}).scalars().all()
    return list(found)


def latest_results(engine: Engine, method: str | None = None, param: str | None = None,
                   library: str | None = None) -> pd.DataFrame:
    sql = f"""
        SELECT c.result_id, l.name AS library, c.model, c.method, c.param, c.scenario, c.value_label, c.status,
               c.exception_type, c.message, c.seconds, c.scenario_facts,
               {retried_sql(engine.dialect.name, 'c.context')} AS retried
        FROM compat_result c JOIN registry_release r ON r.release_id = c.release_id
        JOIN registry_library l ON l.library_id = r.library_id
        WHERE c.result_id IN {_LATEST_RESULTS}"""
    params: dict[str, Any] = {}
    for col, val in (("c.method", method), ("c.param", param), ("l.name", library)):
        if val:
            key = col.split(".")[1]
            sql += f" AND {col} = :{key}"
            params[key] = val
    with engine.connect() as conn:
        rows = conn.execute(text(sql + " ORDER BY c.result_id").columns(scenario_facts=m.JSONType), params)
        return pd.DataFrame(rows.all(), columns=list(rows.keys()))


def scenario_lines(part: pd.DataFrame) -> list[str]:
    """One line per scenario of a (method, param) table: the facts of the setup its cells ran in."""
    out = []
    for label, grp in part.groupby("scenario", sort=False):
        facts = next((f for f in grp["scenario_facts"] if isinstance(f, dict)), None)
        out.append(f"- scenario `{label}`: {describe_facts(facts)}")
    return out


def pivot(df: pd.DataFrame) -> pd.DataFrame:
    """model (+ scenario) × value_label → mark (with the exception type and the first line of the message),
    columns in first-seen order."""
    if df.empty:
        return df
    msgs = df["message"] if "message" in df else [None] * len(df)
    retried = df["retried"] if "retried" in df else [0] * len(df)
    df = df.assign(model=df["model"].str.rsplit(".", n=1).str[-1],
                   mark=[_mark(s, e, msg, bool(r) if pd.notna(r) else False)
                         for s, e, msg, r in zip(df["status"], df["exception_type"], msgs, retried)])
    index = ["model"] + (["scenario"] if df["scenario"].nunique() > 1 else [])
    out = df.pivot_table(index=index, columns="value_label", values="mark", aggfunc="first", sort=False)
    return out[list(dict.fromkeys(df["value_label"]))].fillna("")


def _markdown(table: pd.DataFrame) -> str:
    """A pivot as a Markdown table: '|' in a message or a value label escaped so it stays in its cell."""
    esc = lambda x: x.replace("|", "\\|") if isinstance(x, str) else x  # noqa: E731
    table = table.map(esc).rename(columns=esc, index=esc) if not table.empty else table
    return table.to_markdown()


def ui_tables(df: pd.DataFrame, max_values: int = 8, max_rows: int = 60) -> dict[str, str]:
    """Every (method, param) correspondence table of ``df`` (latest results) as Markdown for an asset page:
    rows named ``model · scenario`` (not a tuple), at most ``max_values`` value columns per table (a wide table is
    split into parts, so nothing is cut off on the right), the legend first. Keys are the page's labels."""
    out = {"legend": "\n".join(f"- {x}" for x in LEGEND)}
    for (meth, param), part in df.groupby(["method", "param"], sort=False):
        table = pivot(part)
        if table.empty:
            continue
        if isinstance(table.index, pd.MultiIndex):
            table.index = [" · ".join(str(x) for x in t) for t in table.index]
        table.index.name = "model"
        cols = list(table.columns)
        chunks = [cols[i:i + max_values] for i in range(0, len(cols), max_values)]
        for k, chunk in enumerate(chunks):
            label = f"table {meth}.{param}" + (f" ({k + 1}/{len(chunks)})" if len(chunks) > 1 else "")
            body = table[chunk]
            cut = len(body) > max_rows
            text_ = _markdown(body.head(max_rows))
            if cut:
                text_ += f"\n\n{len(body) - max_rows} more rows: `fcast compat --method {meth} --param {param}`"
            out[label] = text_
    return out


def correspondence(engine: Engine, method: str, param: str, library: str | None = None) -> list[tuple[str, pd.DataFrame]]:
    methods = resolve_methods(engine, method)
    if not methods:
        raise LookupError(f"no compat results for method {method!r}: run `fcast compat --run` first")
    out = []
    for meth in methods:
        table = pivot(latest_results(engine, meth, param, library))
        if not table.empty:
            out.append((meth, table))
    if not out:
        raise LookupError(f"no compat results for {method}.{param}")
    return out


def write_report(engine: Engine, path: Path, library: str | None = None) -> Path:
    """Markdown report: one correspondence table per (method, param), then the declared vs observed list."""
    df = latest_results(engine, library=library)
    lines = [f"# Compatibility matrix{' — ' + library if library else ''}", "",
             "Every cell was executed against the installed library on tiny synthetic data. Legend:", "",
             *[f"- {x}" for x in LEGEND], ""]
    counts = df["status"].value_counts().to_dict() if not df.empty else {}
    lines += [f"Cells: {len(df)} — " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())), ""]
    for (meth, param), part in df.groupby(["method", "param"], sort=False):
        lines += [f"## {meth} · `{param}`", "", _markdown(pivot(part)), "", *scenario_lines(part), ""]
    with engine.connect() as conn:
        mism = conn.execute(text("""
            SELECT s.name, o.capability_code, d.value AS declared, o.value AS observed, o.detail
            FROM registry_symbol_capability o
            JOIN registry_symbol_capability d ON d.symbol_id = o.symbol_id AND d.capability_code = o.capability_code
                 AND d.source = 'declared'
            JOIN registry_symbol s ON s.symbol_id = o.symbol_id
            WHERE o.source = 'observed' ORDER BY s.name""")).all()
    lines += ["## Declared vs observed capabilities", ""]
    diffs = [r for r in mism if str(r.declared).lower() != str(r.observed).lower()]
    lines += [f"- {r.name} `{r.capability_code}`: declared {r.declared}, observed {r.observed} ({r.detail})"
              for r in diffs] or [f"All {len(mism)} observed exogenous capabilities agree with the declared flags."]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def rerun_cell(engine: Engine, result_id: int, cell_timeout: float = 120.0) -> dict[str, Any]:
    """Re-run one recorded cell from its row (same setup, same spec, same isolation) as a new compat run."""
    with engine.connect() as conn:
        row = conn.execute(text("""
            SELECT c.result_id, c.release_id, c.status, c.exception_type, c.context, l.name AS library
            FROM compat_result c JOIN registry_release r ON r.release_id = c.release_id
            JOIN registry_library l ON l.library_id = r.library_id WHERE c.result_id = :id""")
            .columns(context=m.JSONType), {"id": result_id}).first()
    if row is None:
        raise LookupError(f"no compat_result row with result_id {result_id}")
    ctx = row.context
    cell = Cell(**ctx["cell"])
    group = Group(ctx["group"]["key"], cell.model, ctx["group"]["setup"], [cell])
    from .process import scratch_dir

    t0 = time.perf_counter()
    with scratch_dir("fcast-rerun-") as work:
        adapter = adapter_for(row.library, engine, row.release_id, work)
        adapter.prepare()
        with engine.begin() as conn:
            run_id = conn.execute(insert(m.CompatRun.__table__).values(  # type: ignore[attr-defined]
                release_id=row.release_id, library=row.library, workers=1, config={"rerun_of": result_id},
                started_at=m.utcnow())).inserted_primary_key[0]
        rec = _Recorder(engine, run_id, row.release_id, 1, None)
        run_groups(adapter, [group], workers=1, cell_timeout=cell_timeout, on_result=rec)
        rec.flush()
    finalize(engine, run_id, wall=time.perf_counter() - t0)
    _, res = rec.results[0]
    return {"result_id": result_id, "compat_run_id": run_id, "before": {"status": row.status,
            "exception_type": row.exception_type}, "after": {"status": res["status"],
            "exception_type": res.get("exception_type"), "message": res.get("message")},
            "reproduced": (row.status, row.exception_type) == (res["status"], res.get("exception_type"))}
