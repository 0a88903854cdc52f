"""Generated pages of the documentation site, read from the metadata database: the correspondence tables (one
page per library, one per (library, method, param) with a model × value table whose cells show ✓ / ✗ / ⚠ with
the exception and its message, the scenario of each cell and a filter box) and the registry (every public class,
method and function with its parameters, types, defaults, allowed values and capabilities).

Every text that comes from the database is HTML-escaped and written inside HTML blocks whose lines all start
with ``<``: a message never becomes markup, script or a Markdown / snippet directive. The pages are written under
a build folder (never committed); :func:`build_site` then runs ``mkdocs build --strict`` over ``mkdocs.yml``,
whose hook (:mod:`.hooks`) adds them to the site."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterable

from sqlalchemy import Engine, text

from ..compat.scenario import describe as describe_facts
from ..db.models import JSONType

REPO = Path(__file__).resolve().parents[2]
MKDOCS_YML = REPO / "mkdocs.yml"
PAGES_ENV = "FCAST_SITE_PAGES"  # the folder of generated pages the MkDocs hook reads
MATRIX, REGISTRY, RELEASES = "matrix", "registry", "releases"
MESSAGE_CHARS = 100  # the message shown beside a mark; the whole message (up to TITLE_CHARS) is its title
TITLE_CHARS = 2000

MARK = {"ok": "✓", "error": "✗", "suspect": "⚠", "timeout": "⏱", "skipped": "–"}
LEGEND = [("ok", "ran, and the output passed the post-conditions"),
          ("error", "the library raised: the exception type and the first line of its message beside the mark, "
                    "the whole message on hover"),
          ("suspect", "ran, but the output broke a post-condition (the breach is the message)"),
          ("timeout", "no result within the cell's timeout, twice"),
          ("skipped", "not run (the message says why)")]


class SiteBuildError(RuntimeError):
    """``mkdocs build`` failed or could not start: the message names what and how to fix it."""


def default_out() -> Path:
    """``build/site`` of the checkout: ``pages/`` (generated Markdown) and ``html/`` (the built site)."""
    return REPO / "build" / "site"


def default_pages() -> Path:
    return Path(os.environ.get(PAGES_ENV) or default_out() / "pages")


# ----------------------------------------------------------------------------------------------------- escaping

def esc(value: Any) -> str:
    """Any value as text safe inside HTML (element content and quoted attributes), on one line."""
    s = value if isinstance(value, str) else ("" if value is None else json.dumps(value, default=str))
    return html.escape(" ".join(s.split()), quote=True)


_MD = str.maketrans({"_": "&#95;", "*": "&#42;", "`": "&#96;", "[": "&#91;", "]": "&#93;", "\\": "&#92;",
                     "~": "&#126;", "^": "&#94;", "=": "&#61;", "{": "&#123;", "}": "&#125;", "#": "&#35;"})


def esc_md(value: Any) -> str:
    """:func:`esc` with Markdown's own markers as entities too: for text in a Markdown heading."""
    return esc(value).translate(_MD)


def short(msg: Any, n: int = MESSAGE_CHARS) -> str:
    """The first line of ``msg``, whitespace collapsed, cut to ``n`` characters ('…' marks a cut)."""
    if not isinstance(msg, str) or not msg.strip():
        return ""
    line = " ".join(msg.strip().splitlines()[0].split())
    return line if len(line) <= n else line[: n - 1] + "…"


def slug(s: str) -> str:
    """A file-name part: letters, digits, '_', '.', '-' kept, anything else one '-'."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", s).strip("-.") or "x"


def _unique(name: str, taken: set[str]) -> str:
    out, k = name, 2
    while out.lower() in taken:
        out, k = f"{name}-{k}", k + 1
    taken.add(out.lower())
    return out


def _filter_box(target: str, hint: str) -> str:
    return (f'<p class="fc-filter-box"><input type="search" class="fc-filter" data-target="{esc(target)}" '
            f'placeholder="{esc(hint)}" aria-label="filter"> <span class="fc-count"></span></p>')


def _legend() -> list[str]:
    return ["<ul class=\"fc-legend\">",
            *[f'<li><span class="fc-{s}">{MARK[s]}</span> <b>{s}</b> — {esc(d)}</li>' for s, d in LEGEND],
            "</ul>"]


# -------------------------------------------------------------------------------------------------- the matrix

def matrix_rows(engine: Engine) -> list[dict[str, Any]]:
    """The latest result of every cell of one release per library: the installed one when it was probed, else the
    highest version probed."""
    from ..compat.probe import _LATEST_RESULTS

    with engine.connect() as conn:
        rows = conn.execute(text(f"""
            SELECT c.result_id, l.name AS library, r.version, c.release_id, c.model, c.method, c.param,
                   c.scenario, c.scenario_facts, c.value_label, c.status, c.exception_type, c.message, c.seconds
            FROM compat_result c JOIN registry_release r ON r.release_id = c.release_id
            JOIN registry_library l ON l.library_id = r.library_id
            WHERE c.result_id IN {_LATEST_RESULTS} ORDER BY c.result_id""").columns(scenario_facts=JSONType)).all()
    from ..registry.view import preferred_version

    versions: dict[str, set[str]] = {}
    for r in rows:
        versions.setdefault(r.library, set()).add(r.version)
    shown = {lib: preferred_version(lib, vs) for lib, vs in versions.items()}
    return [dict(r._mapping) for r in rows if r.version == shown[r.library]]


def _cell(r: dict[str, Any]) -> str:
    status = r["status"]
    mark = MARK.get(status, esc(status))
    exc, msg = r["exception_type"], r["message"]
    full = " ".join(str(msg).split())[:TITLE_CHARS] if isinstance(msg, str) else ""
    title = f"{status}" + (f" · {exc}" if exc else "") + (f": {full}" if full else "") + \
        f" · scenario {r['scenario']}" + (f" · {r['seconds']:.2f}s" if isinstance(r["seconds"], (int, float)) else "")
    body = mark
    if exc and status in ("error", "timeout"):
        body += f' <code class="fc-exc">{esc(exc)}</code>'
    if status != "ok" and short(msg):
        body += f' <span class="fc-msg">{esc(short(msg))}</span>'
    return (f'<td class="fc-cell fc-{esc(status)}" data-status="{esc(status)}" data-result="{int(r["result_id"])}" '
            f'title="{esc(title)}">{body}</td>')


def table_html(rows: list[dict[str, Any]], table_id: str) -> list[str]:
    """model × value table (one row per model and scenario), every line starting with '<'."""
    values = list(dict.fromkeys(r["value_label"] for r in rows))
    keys = list(dict.fromkeys((r["model"], r["scenario"]) for r in rows))
    by = {(r["model"], r["scenario"], r["value_label"]): r for r in rows}
    out = [f'<div class="fc-scroll"><table class="fc-matrix" id="{esc(table_id)}">',
           "<thead><tr><th>model</th><th>scenario</th>"
           + "".join(f'<th class="fc-value">{esc(v)}</th>' for v in values) + "</tr></thead>", "<tbody>"]
    for model, scenario in keys:
        cells = "".join(_cell(by[(model, scenario, v)]) if (model, scenario, v) in by else '<td class="fc-none"></td>'
                        for v in values)
        out.append(f'<tr><th class="fc-model" title="{esc(model)}">{esc(model.rsplit(".", 1)[-1])}</th>'
                   f'<td class="fc-scenario">{esc(scenario)}</td>{cells}</tr>')
    out += ["</tbody></table></div>"]
    return out


def _counts(rows: Iterable[dict[str, Any]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in rows:
        out[r["status"]] = out.get(r["status"], 0) + 1
    return out


def _counts_html(c: dict[str, int]) -> str:
    return " ".join(f'<span class="fc-{esc(k)}">{MARK.get(k, "")} {esc(k)} {v}</span>' for k, v in sorted(c.items()))


def write_matrix_pages(rows: list[dict[str, Any]], folder: Path) -> dict[str, Any]:
    """matrix/index.md, matrix/<library>/index.md and matrix/<library>/<method>.<param>.md."""
    by_lib: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_lib.setdefault(r["library"], []).append(r)
    folder.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {"libraries": {}, "tables": 0, "cells": len(rows)}
    index = ["# Correspondence tables", "",
             "Which argument values run and which raise, per model: every cell was executed against the installed "
             "library on tiny synthetic data (`fcast compat --run` or the `compat_matrix` asset); these pages are "
             "generated from the metadata database by `fcast site build` (the `site_pages` asset).", "",
             *_legend(), ""]
    lib_lines = ['<table class="fc-list"><thead><tr><th>library</th><th>release</th><th>tables</th><th>cells</th>'
                 "<th>statuses</th></tr></thead><tbody>"]
    for lib in sorted(by_lib):
        lrows = by_lib[lib]
        lslug = slug(lib)
        tables: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for r in lrows:
            tables.setdefault((r["method"], r["param"]), []).append(r)
        taken: set[str] = {"index"}
        listing = []
        for (method, param), trows in tables.items():
            name = _unique(slug(f"{method}.{param}"), taken)
            models = sorted({r["model"].rsplit(".", 1)[-1] for r in trows})
            page = ["---", "hide:", "  - navigation", "  - toc", "---", "",  # the table gets the page's width
                    f"# {esc_md(method)} · <code>{esc_md(param)}</code>", "",
                    f'<p class="fc-crumbs"><a href="../">{esc(lib)} {esc(lrows[0]["version"])}</a> · '
                    f"{len(trows)} cells · {_counts_html(_counts(trows))}</p>", "",
                    _filter_box(f"t-{name}", "filter models, values, statuses (e.g. MLP error [80])"), "",
                    *table_html(trows, f"t-{name}"), "", "## Scenarios", "",
                    '<ul class="fc-scenarios">']
            for scen in dict.fromkeys(r["scenario"] for r in trows):
                facts = next((r["scenario_facts"] for r in trows if r["scenario"] == scen
                              and isinstance(r["scenario_facts"], dict)), None)
                page.append(f"<li><code>{esc(scen)}</code>: {esc(describe_facts(facts))}</li>")
            page += ["</ul>", "", "## Legend", "", *_legend(), ""]
            (folder / lslug).mkdir(parents=True, exist_ok=True)
            (folder / lslug / f"{name}.md").write_text("\n".join(page), encoding="utf-8")
            listing.append(f'<tr><td><a href="{esc(name)}/">{esc(method)}</a></td><td><code>{esc(param)}</code></td>'
                           f'<td>{len({r["value_label"] for r in trows})}</td><td>{esc(" ".join(models))}</td>'
                           f"<td>{_counts_html(_counts(trows))}</td></tr>")
        lpage = [f"# {esc_md(lib)} {esc_md(lrows[0]['version'])}", "",
                 f"<p>{len(tables)} correspondence tables, {len(lrows)} cells: {_counts_html(_counts(lrows))}. "
                 "One page per (method, parameter): models down, values across.</p>", "",
                 _filter_box("t-tables", "filter methods, parameters, models (e.g. level)"), "",
                 '<table class="fc-list" id="t-tables"><thead><tr><th>method</th><th>parameter</th><th>values</th>'
                 "<th>models</th><th>statuses</th></tr></thead><tbody>", *listing, "</tbody></table>", ""]
        (folder / lslug).mkdir(parents=True, exist_ok=True)
        (folder / lslug / "index.md").write_text("\n".join(lpage), encoding="utf-8")
        summary["libraries"][lib] = {"version": lrows[0]["version"], "tables": len(tables), "cells": len(lrows),
                                     "pages": sorted(taken - {"index"})}
        summary["tables"] += len(tables)
        lib_lines.append(f'<tr><td><a href="{esc(lslug)}/">{esc(lib)}</a></td><td>{esc(lrows[0]["version"])}</td>'
                         f"<td>{len(tables)}</td><td>{len(lrows)}</td><td>{_counts_html(_counts(lrows))}</td></tr>")
    lib_lines.append("</tbody></table>")
    if not by_lib:
        lib_lines = ["<p>No compatibility results in the database yet: run <code>fcast compat --run</code> "
                     "(or materialize <code>compat_matrix</code>), then <code>fcast site build</code>.</p>"]
    (folder / "index.md").write_text("\n".join(index + lib_lines + [""]), encoding="utf-8")
    return summary


# ------------------------------------------------------------------------------------------------ the registry

def _registry_release_ids(engine: Engine) -> dict[str, tuple[int, str]]:
    """library -> (release_id, version) of the release the pages show: the one installed here when scanned, else
    the highest version (releases are scanned side by side, in any order: registry.view.latest_release)."""
    from ..registry.view import latest_release

    with engine.connect() as conn:
        names = conn.execute(text("""SELECT DISTINCT l.name FROM registry_release r
                                     JOIN registry_library l ON l.library_id = r.library_id""")).scalars().all()
    return {name: latest_release(engine, name) for name in sorted(names)}


def _fmt_default(p: dict[str, Any]) -> str:
    if not p["has_default"]:
        return "required" if p["required"] else ""
    return json.dumps(p["default"], default=str)


def _fmt_type(p: dict[str, Any]) -> str:
    if p["annotation"]:
        return p["annotation"]
    t = p["type_norm"]
    return " | ".join(map(str, t)) if isinstance(t, list) else ("" if t is None else str(t))


def registry_data(engine: Engine, release_id: int) -> dict[str, Any]:
    """Public classes (with their public methods) and functions of one release, their parameters, allowed
    values and capabilities."""
    with engine.connect() as conn:
        syms = [dict(r._mapping) for r in conn.execute(text("""
            SELECT symbol_id, qualname, module, name, kind, parent_symbol_id, doc_summary, signature
            FROM registry_symbol WHERE release_id = :r AND is_public AND kind IN ('class', 'function', 'method')
            ORDER BY module, qualname"""), {"r": release_id}).all()]
        params = conn.execute(text("""
            SELECT p.param_id, p.symbol_id, p.name, p.position, p.kind, p.annotation, p.type_norm, p."default",
                   p.has_default, p.required, p.doc_text
            FROM registry_param p JOIN registry_symbol s ON s.symbol_id = p.symbol_id
            WHERE s.release_id = :r ORDER BY p.symbol_id, p.position""")
            .columns(type_norm=JSONType, default=JSONType), {"r": release_id}).all()
        enums = conn.execute(text("""
            SELECT e.param_id, e.value FROM registry_param_enum e JOIN registry_param p ON p.param_id = e.param_id
            JOIN registry_symbol s ON s.symbol_id = p.symbol_id WHERE s.release_id = :r ORDER BY e.enum_id""")
            .columns(value=JSONType), {"r": release_id}).all()
        caps = conn.execute(text("""
            SELECT c.symbol_id, c.capability_code, c.value, c.source FROM registry_symbol_capability c
            JOIN registry_symbol s ON s.symbol_id = c.symbol_id WHERE s.release_id = :r
            ORDER BY c.capability_code, c.source""").columns(value=JSONType), {"r": release_id}).all()
    en: dict[int, list[Any]] = {}
    for pid, v in enums:
        en.setdefault(pid, []).append(v)
    ps: dict[int, list[dict[str, Any]]] = {}
    for p in params:
        d = dict(p._mapping)
        d["enums"] = en.get(p.param_id, [])
        ps.setdefault(p.symbol_id, []).append(d)
    cs: dict[int, list[tuple[str, Any, str]]] = {}
    for sid, code, value, source in caps:
        cs.setdefault(sid, []).append((code, value, source))
    return {"symbols": syms, "params": ps, "caps": cs}


def _params_html(plist: list[dict[str, Any]]) -> list[str]:
    plist = [p for p in plist if p["name"] not in ("self", "cls")]
    if not plist:
        return ["<p><i>no parameters</i></p>"]
    out = ['<div class="fc-scroll"><table class="fc-params"><thead><tr><th>parameter</th><th>kind</th><th>type</th>'
           "<th>default</th>"
           "<th>allowed values</th><th>description</th></tr></thead><tbody>"]
    for p in plist:
        allowed = ", ".join(json.dumps(v, default=str) for v in p["enums"])
        out.append(f"<tr><td><code>{esc(p['name'])}</code></td><td>{esc(p['kind'])}</td><td>{esc(_fmt_type(p))}</td>"
                   f"<td>{esc(_fmt_default(p))}</td><td>{esc(allowed)}</td><td>{esc(short(p['doc_text'], 200))}</td>"
                   "</tr>")
    return out + ["</tbody></table></div>"]


def _caps_html(caps: list[tuple[str, Any, str]]) -> list[str]:
    if not caps:
        return []
    return ['<p class="fc-caps">capabilities: ' + ", ".join(
        f"<code>{esc(code)}</code> = {esc(json.dumps(v, default=str))} <i>({esc(src)})</i>" for code, v, src in caps)
        + "</p>"]


def write_registry_pages(engine: Engine, folder: Path) -> dict[str, Any]:
    """registry/index.md, registry/<library>/index.md and one page per module with public classes / functions."""
    folder.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {}
    releases = _registry_release_ids(engine)
    top = ["# Registry", "", "Every public class (with its public methods) and function of each scanned library: "
           "parameters, types, defaults, allowed values and capabilities, as `fcast scan` recorded them.", ""]
    top += ['<table class="fc-list"><thead><tr><th>library</th><th>release</th><th>modules</th><th>classes</th>'
            "<th>functions</th></tr></thead><tbody>"]
    for lib, (rid, version) in sorted(releases.items()):
        data = registry_data(engine, rid)
        syms = data["symbols"]
        children: dict[int, list[dict[str, Any]]] = {}
        for s in syms:
            if s["kind"] == "method" and s["parent_symbol_id"] is not None:
                children.setdefault(s["parent_symbol_id"], []).append(s)
        by_mod: dict[str, list[dict[str, Any]]] = {}
        for s in syms:
            if s["kind"] in ("class", "function"):
                by_mod.setdefault(s["module"], []).append(s)
        lslug = slug(lib)
        (folder / lslug).mkdir(parents=True, exist_ok=True)
        taken: set[str] = {"index"}
        listing = []
        n_cls = n_fn = 0
        for mod, members in sorted(by_mod.items()):
            name = _unique(slug(mod), taken)
            page = [f"# <code>{esc_md(mod)}</code>", "",
                    f'<p class="fc-crumbs"><a href="../">{esc(lib)} {esc(version)}</a></p>', ""]
            for s in members:
                n_cls += s["kind"] == "class"
                n_fn += s["kind"] == "function"
                page += [f"## <code>{esc_md(s['name'])}</code>", "",
                         f'<p class="fc-sym"><i>{esc(s["kind"])}</i> <code>{esc(s["qualname"])}</code>'
                         + (f" — {esc(short(s['doc_summary'], 300))}" if s["doc_summary"] else "") + "</p>",
                         *_caps_html(data["caps"].get(s["symbol_id"], [])),
                         *_params_html(data["params"].get(s["symbol_id"], [])), ""]
                for meth in children.get(s["symbol_id"], []):
                    page += [f"### <code>{esc_md(s['name'])}.{esc_md(meth['name'])}</code>", "",
                             *([f"<p>{esc(short(meth['doc_summary'], 300))}</p>"] if meth["doc_summary"] else []),
                             *_caps_html(data["caps"].get(meth["symbol_id"], [])),
                             *_params_html(data["params"].get(meth["symbol_id"], [])), ""]
            (folder / lslug / f"{name}.md").write_text("\n".join(page), encoding="utf-8")
            listing.append(f'<tr><td><a href="{esc(name)}/"><code>{esc(mod)}</code></a></td>'
                           f"<td>{esc(' '.join(s['name'] for s in members))}</td></tr>")
        (folder / lslug / "index.md").write_text("\n".join([
            f"# {esc_md(lib)} {esc_md(version)} — registry", "",
            _filter_box("t-modules", "filter modules, classes, functions"), "",
            '<table class="fc-list" id="t-modules"><thead><tr><th>module</th><th>public classes and functions</th>'
            "</tr></thead><tbody>", *listing, "</tbody></table>", ""]), encoding="utf-8")
        summary[lib] = {"version": version, "modules": len(by_mod), "classes": n_cls, "functions": n_fn}
        top.append(f'<tr><td><a href="{esc(lslug)}/">{esc(lib)}</a></td><td>{esc(version)}</td><td>{len(by_mod)}</td>'
                   f"<td>{n_cls}</td><td>{n_fn}</td></tr>")
    top.append("</tbody></table>")
    if not releases:
        top = top[:4] + ["<p>No library scanned yet: run <code>fcast scan --all</code>, then "
                         "<code>fcast site build</code>.</p>"]
    (folder / "index.md").write_text("\n".join(top + [""]), encoding="utf-8")
    return summary


# -------------------------------------------------------------------------------------------------- the site

# -------------------------------------------------------------------------------------------------- releases

def write_release_pages(engine: Engine, folder: Path) -> dict[str, Any]:
    """Per library probed in two releases or more: every cell's status in each release with the release ranges
    where it runs / errors, and per consecutive pair the cells that flipped (both outcomes, the message, the
    result_id to re-run in its own release's environment: ``fcast releases rerun ID``)."""
    from ..compat.releases import classified_flips, version_ranges

    folder.mkdir(parents=True, exist_ok=True)
    with engine.connect() as conn:
        libs = conn.execute(text("""SELECT l.name FROM compat_result c
            JOIN registry_release r ON r.release_id = c.release_id JOIN registry_library l USING (library_id)
            GROUP BY l.name HAVING COUNT(DISTINCT r.version) > 1 ORDER BY l.name""")).scalars().all()
    index = ["# Releases side by side", "",
             "Each library probed in several releases (`fcast releases probe <library>==<version>`, each in its own "
             "environment): the status of every cell in every release, and what flipped between consecutive ones.",
             ""]
    if not libs:
        index.append("No library has been probed in two releases yet.")
    done = {}
    for lib in libs:
        ranges = version_ranges(engine, lib)
        versions = [c for c in ranges.columns if c not in ("model", "method", "param", "value_label", "scenario",
                                                            "runs_in", "errors_in")]
        lslug = slug(lib)
        page = [f"# {esc_md(lib)}: {len(versions)} releases", "", _filter_box(f"rel-{lslug}", "filter: model, "
                "param, value, status…"), "", f'<div class="fc-scroll"><table class="fc-matrix" id="rel-{lslug}">',
                "<thead><tr>" + "".join(f"<th>{esc(h)}</th>" for h in ("model", "method", "param", "value",
                                                                      "scenario", *versions, "runs in",
                                                                      "errors in")) + "</tr></thead>", "<tbody>"]
        for r in ranges.itertuples(index=False):
            row = dict(zip(ranges.columns, r))
            cells = "".join(f'<td class="fc-cell fc-{esc(row[v])}" data-status="{esc(row[v])}">'
                            f'{MARK.get(row[v], "")} {esc(row[v])}</td>' for v in versions)
            page.append(f"<tr><td>{esc(row['model'])}</td><td>{esc(row['method'])}</td><td>{esc(row['param'])}</td>"
                        f"<td><code>{esc(row['value_label'])}</code></td><td>{esc(row['scenario'])}</td>{cells}"
                        f"<td>{esc(row['runs_in'])}</td><td>{esc(row['errors_in'])}</td></tr>")
        page += ["</tbody></table></div>", ""]
        for a, b in zip(versions, versions[1:]):
            flips = classified_flips(engine, lib, a, b)
            n = flips["kind"].value_counts().to_dict() if not flips.empty else {}
            apart = ", ".join(x for x in (f"{n['timeout']} timed out in one release" if n.get("timeout") else "",
                                          f"{n['varies']} varied between runs" if n.get("varies") else "") if x)
            page += [f"## {esc_md(a)} → {esc_md(b)}: {n.get('flipped', 0)} cells flipped"
                     + (f" ({esc_md(apart)}: not counted, marked in the table)" if apart else ""), ""]
            if flips.empty:
                continue
            page += ['<div class="fc-scroll"><table class="fc-matrix">',
                     "<thead><tr>" + "".join(f"<th>{esc(h)}</th>" for h in (
                         "model", "method", "param", "value", "scenario", a, b, "message", "result_id", "kind")) +
                     "</tr></thead>", "<tbody>"]
            for f in flips.to_dict("records"):
                msg = f["message_to"] if f["status_to"] not in ("ok", "absent") else f["message_from"]
                ids = " / ".join("–" if x is None or x != x else str(int(x)) for x in (f["result_id_from"],
                                                                                       f["result_id_to"]))
                page.append(
                    f"<tr><td>{esc(f['model'])}</td><td>{esc(f['method'])}</td><td>{esc(f['param'])}</td>"
                    f"<td><code>{esc(f['value_label'])}</code></td><td>{esc(f['scenario'])}</td>"
                    + "".join(f'<td class="fc-cell fc-{esc(f[k])}">{MARK.get(f[k], "")} {esc(f[k])} '
                              f'{esc(f[e] if isinstance(f[e], str) else "")}</td>'
                              for k, e in (("status_from", "exception_type_from"),
                                           ("status_to", "exception_type_to")))
                    + f"<td>{esc(short(msg if isinstance(msg, str) else ''))}</td><td>{esc(ids)}</td>"
                    f"<td>{esc(f['kind'])}</td></tr>")
            page += ["</tbody></table></div>", ""]
        (folder / f"{lslug}.md").write_text("\n".join(page), encoding="utf-8")
        index.append(f"- [{esc_md(lib)}]({lslug}.md): {', '.join(esc_md(v) for v in versions)}")
        done[lib] = versions
    (folder / "index.md").write_text("\n".join(index + [""]), encoding="utf-8")
    return {"libraries": done}


def write_pages(engine: Engine, pages: Path) -> dict[str, Any]:
    """Regenerate ``pages/matrix``, ``pages/registry`` and ``pages/releases`` (nothing else under ``pages`` is
    touched)."""
    pages = Path(pages)
    for part in (MATRIX, REGISTRY, RELEASES):
        shutil.rmtree(pages / part, ignore_errors=True)
    matrix = write_matrix_pages(matrix_rows(engine), pages / MATRIX)
    registry = write_registry_pages(engine, pages / REGISTRY)
    releases = write_release_pages(engine, pages / RELEASES)
    return {"pages": str(pages), "matrix": matrix, "registry": registry, "releases": releases}


def mkdocs_build(pages: Path, html_dir: Path, strict: bool = True, timeout: float = 900) -> float:
    """``python -m mkdocs build [--strict]`` of the checkout's mkdocs.yml with the generated ``pages`` into
    ``html_dir``; seconds taken. A failure raises :class:`SiteBuildError` with mkdocs' warnings."""
    if not MKDOCS_YML.exists():
        raise SiteBuildError(f"{MKDOCS_YML} not found: build the site from the fcast checkout (git clone), where "
                             "mkdocs.yml sits next to pyproject.toml")
    import importlib.util

    missing = [m for m in ("mkdocs", "material", "mkdocstrings", "mkdocs_jupyter") if importlib.util.find_spec(m) is None]
    if missing:
        raise SiteBuildError(f"{', '.join(missing)} not installed in {sys.executable}: install the dev extra "
                             "(uv pip install -e \".[dev]\"), which holds the site's MkDocs packages")
    cmd = [sys.executable, "-m", "mkdocs", "build", "-q", "-f", str(MKDOCS_YML), "-d", str(Path(html_dir).resolve())]
    if strict:
        cmd.insert(4, "--strict")
    env = {**os.environ, PAGES_ENV: str(Path(pages).resolve()), "NO_MKDOCS_2_WARNING": "1"}
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, encoding="utf-8",
                              errors="replace", timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise SiteBuildError(f"mkdocs build took more than {timeout:.0f}s and was stopped") from e
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip()]
        bad = [ln for ln in lines if "WARNING" in ln or "ERROR" in ln or "Error" in ln] or lines[-5:]
        raise SiteBuildError(f"mkdocs build{' --strict' if strict else ''} failed (exit {proc.returncode}): "
                             + " | ".join(" ".join(b.split()) for b in bad[:8])
                             + " (run `python -m mkdocs build --strict` in the checkout for the full output)")
    return round(time.perf_counter() - t0, 2)


def build_site(engine: Engine, out: Path | None = None, strict: bool = True) -> dict[str, Any]:
    """Generate the pages from the database into ``out/pages`` and build the site into ``out/html``."""
    out = Path(out) if out is not None else default_out()
    t0 = time.perf_counter()
    summary = write_pages(engine, out / "pages")
    summary["mkdocs_seconds"] = mkdocs_build(out / "pages", out / "html", strict=strict)
    summary["html"] = str(out / "html")
    summary["seconds"] = round(time.perf_counter() - t0, 2)
    return summary
