"""Write scan results into the registry_ tables: idempotent per (library, version), with release diffs.

Everything happens in one transaction: a failing write leaves what was stored before untouched.
Symbols and parameters keep their ids across re-scans of the same release (upsert by natural key), so rows
that point at them (compat results, probe-learned enum values) survive a re-scan.
"""

from __future__ import annotations

import hashlib
import pickle
import re
import json
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, delete, insert, select, update

from ..db import models as m
from .libraries import LibrarySpec
from .scanner import ScanResult, SymbolRec, capability_descriptions

SCANNER_SOURCES = ("literal", "docstring")  # enum sources the scanner owns (probe rows are kept)
T = {t.name: t for t in m.REGISTRY_TABLES}


def _content_hash(result: ScanResult) -> str:
    """A digest of everything the scan found (symbols in qualname order, aliases, import failures): equal digests
    mean an unchanged release. Pickled, not JSON-encoded: a scan's records are plain dataclasses, lists, dicts and
    JSON-ready values, and encoding their docstrings as JSON was a third of the time spent storing a scan."""
    h = hashlib.sha256()
    h.update(pickle.dumps([result.symbols[q] for q in sorted(result.symbols)], protocol=4))
    h.update(json.dumps(sorted(result.aliases.items())).encode())
    h.update(json.dumps(result.import_failures, sort_keys=True).encode())
    return h.hexdigest()


def upsert_library(conn: Connection, spec: LibrarySpec) -> int:
    t = T["registry_library"]
    values = dict(import_name=spec.import_name, dist_name=spec.dist_name, vendor=spec.vendor,
                  repo_url=spec.repo_url, docs_url=spec.docs_url)
    lid = conn.execute(select(t.c.library_id).where(t.c.name == spec.name)).scalar()
    if lid is None:
        return conn.execute(insert(t).values(name=spec.name, **values)).inserted_primary_key[0]
    conn.execute(update(t).where(t.c.library_id == lid).values(**values))
    return lid


def _upsert_capabilities(conn: Connection, codes: set[str]) -> None:
    t = T["registry_capability"]
    desc = capability_descriptions()
    have = set(conn.execute(select(t.c.capability_code)).scalars())
    new = [{"capability_code": c, "description": desc.get(c, c)} for c in sorted(codes | set(desc)) if c not in have]
    if new:
        conn.execute(insert(t), new)


def _symbol_row(rec: SymbolRec) -> dict[str, Any]:
    return dict(
        module=rec.module, name=rec.name, kind=rec.kind, is_public=rec.is_public, doc_summary=rec.doc_summary,
        docstring=rec.docstring, doc_style=rec.doc_style, signature=rec.signature, defined_in=rec.defined_in,
        bases=rec.bases, source_file=rec.source_file, lineno=rec.lineno,
    )


def _bulk_update(conn: Connection, table, key: str, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    cols = [c for c in rows[0] if c != "_id"]
    stmt = update(table).where(table.c[key] == bindparam("_id")).values({c: bindparam(c) for c in cols})
    conn.execute(stmt, rows)


def write_scan(engine: Engine, spec: LibrarySpec, result: ScanResult) -> dict[str, Any]:
    """Store ``result``; returns {release_id, status (created / updated / unchanged), counts, diff}.

    Two writers of the same library at once (another host, or a caller without the scan lock) cannot both insert
    the library / release row: the loser's transaction rolls back on the unique key and is re-run once, re-reading
    what the winner stored (then "unchanged" or "updated")."""
    from sqlalchemy.exc import IntegrityError

    try:
        return _write_scan(engine, spec, result)
    except IntegrityError:
        return _write_scan(engine, spec, result)


def _write_scan(engine: Engine, spec: LibrarySpec, result: ScanResult) -> dict[str, Any]:
    content_hash = _content_hash(result)
    stats = {**result.stats(), "content_hash": content_hash}
    with engine.begin() as conn:
        library_id = upsert_library(conn, spec)
        rel = T["registry_release"]
        row = conn.execute(
            select(rel.c.release_id, rel.c.stats).where(rel.c.library_id == library_id, rel.c.version == result.version)
        ).first()
        code_hashes = {q: r.code_hash for q, r in result.symbols.items() if r.code_hash}
        release_values = dict(
            python_version=result.python_version, environment=result.environment,
            scan_seconds=round(result.seconds, 3), stats={**stats, "code_hashes": code_hashes}, scanned_at=m.utcnow(),
        )
        if row is not None and (row.stats or {}).get("content_hash") == content_hash:
            conn.execute(update(rel).where(rel.c.release_id == row.release_id).values(
                scanned_at=release_values["scanned_at"], scan_seconds=release_values["scan_seconds"]))
            return {"release_id": row.release_id, "status": "unchanged", "counts": stats, "diff": {}}
        if row is None:
            release_id = conn.execute(
                insert(rel).values(library_id=library_id, version=result.version,
                                   version_order=version_order(result.version), **release_values)
            ).inserted_primary_key[0]
            status = "created"
        else:
            release_id = row.release_id
            conn.execute(update(rel).where(rel.c.release_id == release_id).values(**release_values))
            status = "updated"
        _write_symbols(conn, release_id, result)
        diff = _write_diff(conn, library_id, release_id)
    return {"release_id": release_id, "status": status, "counts": stats, "diff": diff}


def _write_symbols(conn: Connection, release_id: int, result: ScanResult) -> None:
    sym, par = T["registry_symbol"], T["registry_param"]
    enum_t, cap_t, loss_t = T["registry_param_enum"], T["registry_symbol_capability"], T["registry_loss"]
    alias_t, fail_t, doc_t = T["registry_symbol_alias"], T["registry_import_failure"], T["registry_search_doc"]

    existing = dict(conn.execute(select(sym.c.qualname, sym.c.symbol_id).where(sym.c.release_id == release_id)).all())
    sym_ids_q = select(sym.c.symbol_id).where(sym.c.release_id == release_id)
    param_ids_q = select(par.c.param_id).where(par.c.symbol_id.in_(sym_ids_q))

    # leaf rows the scanner owns are rewritten
    conn.execute(delete(doc_t).where(doc_t.c.release_id == release_id))
    conn.execute(delete(alias_t).where(alias_t.c.release_id == release_id))
    conn.execute(delete(fail_t).where(fail_t.c.release_id == release_id))
    conn.execute(delete(loss_t).where(loss_t.c.symbol_id.in_(sym_ids_q)))
    conn.execute(delete(cap_t).where(cap_t.c.symbol_id.in_(sym_ids_q), cap_t.c.source == "declared"))
    conn.execute(delete(enum_t).where(enum_t.c.param_id.in_(param_ids_q), enum_t.c.source.in_(SCANNER_SOURCES)))

    # symbols that vanished go, with everything hanging off them
    gone = [sid for q, sid in existing.items() if q not in result.symbols]
    if gone:
        _delete_symbols(conn, gone)

    # upsert symbols (parents in a second pass, once every id is known)
    new_rows = [{"release_id": release_id, "qualname": q, **_symbol_row(r)}
                for q, r in result.symbols.items() if q not in existing]
    if new_rows:
        conn.execute(insert(sym), new_rows)
    _bulk_update(conn, sym, "symbol_id", [
        {"_id": existing[q], **_symbol_row(r)} for q, r in result.symbols.items() if q in existing
    ])
    ids = dict(conn.execute(select(sym.c.qualname, sym.c.symbol_id).where(sym.c.release_id == release_id)).all())
    _bulk_update(conn, sym, "symbol_id", [
        {"_id": ids[q], "parent_symbol_id": ids.get(r.parent) if r.parent else None} for q, r in result.symbols.items()
    ])

    # parameters: upsert by (symbol_id, name), drop vanished
    old_params = {(sid, n): pid for pid, sid, n in conn.execute(
        select(par.c.param_id, par.c.symbol_id, par.c.name).where(par.c.symbol_id.in_(sym_ids_q))).all()}
    want: dict[tuple[int, str], dict[str, Any]] = {}
    for q, r in result.symbols.items():
        for p in r.params:
            want[(ids[q], p.name)] = dict(
                position=p.position, kind=p.kind, annotation=p.annotation, type_norm=p.type_norm,
                default=p.default, has_default=p.has_default, required=p.required, doc_type=p.doc_type,
                doc_text=p.doc_text, sources=p.sources,
            )
    stale = [pid for k, pid in old_params.items() if k not in want]
    if stale:
        _delete_params(conn, stale)
    ins = [{"symbol_id": k[0], "name": k[1], **v} for k, v in want.items() if k not in old_params]
    if ins:
        conn.execute(insert(par), ins)
    _bulk_update(conn, par, "param_id", [{"_id": old_params[k], **v} for k, v in want.items() if k in old_params])
    pids = {(sid, n): pid for pid, sid, n in conn.execute(
        select(par.c.param_id, par.c.symbol_id, par.c.name).where(par.c.symbol_id.in_(sym_ids_q))).all()}

    enums, caps, losses, docs = [], [], [], []
    for q, r in result.symbols.items():
        sid = ids[q]
        for p in r.params:
            pid = pids[(sid, p.name)]
            enums += [{"param_id": pid, "value": v, "source": src} for v, src in p.enums]
            docs.append({"release_id": release_id, "symbol_id": sid, "param_id": pid, "library": result.library,
                         "kind": "parameter", "qualname": f"{q}({p.name})", "name": p.name,
                         "body": " ".join(x for x in (p.annotation, p.doc_type, p.doc_text) if x)})
        caps += [{"symbol_id": sid, "capability_code": code, "value": v, "source": src, "detail": detail}
                 for code, (v, src, detail) in r.capabilities.items()]
        if r.loss:
            losses.append({"symbol_id": sid, **r.loss})
        docs.append({"release_id": release_id, "symbol_id": sid, "param_id": None, "library": result.library,
                     "kind": r.kind, "qualname": q, "name": r.name, "body": (r.docstring or "")[:4000]})
    _upsert_capabilities(conn, {c["capability_code"] for c in caps})
    for table, rows in ((enum_t, enums), (cap_t, caps), (loss_t, losses), (doc_t, docs)):
        if rows:
            conn.execute(insert(table), rows)
    aliases = [{"release_id": release_id, "symbol_id": ids[c], "alias_qualname": a, "module": a.rsplit(".", 1)[0]}
               for a, c in result.aliases.items() if c in ids]
    if aliases:
        conn.execute(insert(alias_t), aliases)
    if result.import_failures:
        conn.execute(insert(fail_t), [{"release_id": release_id, **f} for f in result.import_failures])


def _delete_params(conn: Connection, param_ids: list[int]) -> None:
    for t in ("registry_param_enum", "registry_param_constraint", "registry_search_doc"):
        conn.execute(delete(T[t]).where(T[t].c.param_id.in_(param_ids)))
    conn.execute(delete(T["registry_param"]).where(T["registry_param"].c.param_id.in_(param_ids)))


def _delete_symbols(conn: Connection, symbol_ids: list[int]) -> None:
    par = T["registry_param"]
    _delete_params(conn, list(conn.execute(select(par.c.param_id).where(par.c.symbol_id.in_(symbol_ids))).scalars()))
    for t in ("registry_symbol_capability", "registry_loss", "registry_symbol_alias", "registry_search_doc"):
        conn.execute(delete(T[t]).where(T[t].c.symbol_id.in_(symbol_ids)))
    mlc = m.RegistryModelLossCompat.__table__  # type: ignore[attr-defined]
    conn.execute(delete(mlc).where(mlc.c.model_symbol_id.in_(symbol_ids) | mlc.c.loss_symbol_id.in_(symbol_ids)))
    sym = T["registry_symbol"]
    conn.execute(update(sym).where(sym.c.parent_symbol_id.in_(symbol_ids)).values(parent_symbol_id=None))
    conn.execute(delete(sym).where(sym.c.symbol_id.in_(symbol_ids)))


# ------------------------------------------------------------------------------------------------ diffs
def _snapshot(conn: Connection, release_id: int) -> tuple[set[str], dict[tuple[str, str], dict[str, Any]]]:
    sym, par = T["registry_symbol"], T["registry_param"]
    symbols = set(conn.execute(select(sym.c.qualname).where(sym.c.release_id == release_id)).scalars())
    params = {
        (q, n): {"kind": k, "annotation": a, "default": d, "has_default": hd, "required": r, "position": pos}
        for q, n, k, a, d, hd, r, pos in conn.execute(
            select(sym.c.qualname, par.c.name, par.c.kind, par.c.annotation, par.c.default, par.c.has_default,
                   par.c.required, par.c.position)
            .join(par, par.c.symbol_id == sym.c.symbol_id).where(sym.c.release_id == release_id)
        ).all()
    }
    return symbols, params


def version_key(version: str):
    """Sort key of a release number (PEP 440 order: 3.2.10 after 3.2.9, 3.3.0rc1 before 3.3.0)."""
    from packaging.version import InvalidVersion, Version

    try:
        return (0, Version(version), "")
    except InvalidVersion:
        return (1, Version("0"), version)


def version_order(version: str) -> str:
    """The release number as text whose text order is PEP 440 order, for SQL (``ORDER BY version_order``):
    epoch and six release parts zero-padded, then the phase (dev < a < b < rc < final) and post / dev numbers, so
    3.2.9 < 3.2.10 < 3.3.0.dev1 < 3.3.0a1 < 3.3.0rc1 < 3.3.0 < 3.3.0.post1. A number that is not PEP 440 sorts
    after every valid one, by its text."""
    from packaging.version import InvalidVersion, Version

    try:
        v = Version(version)
    except InvalidVersion:
        return "~" + version
    parts = (list(v.release) + [0] * 6)[:6]
    if v.pre is not None:
        phase, n = {"a": 1, "b": 2, "rc": 3}[v.pre[0]], v.pre[1]
    else:
        phase, n = (0, 0) if v.dev is not None and v.post is None else (4, 0)
    post = 0 if v.post is None else v.post + 1
    dev = 999999 if v.dev is None else v.dev
    return ".".join(f"{x:06d}" for x in (v.epoch, *parts, phase, n, post, dev))


def backfill_version_order(conn: Connection) -> int:
    """Fill ``version_order`` of releases written by an fcast that did not record it; returns how many."""
    rel = T["registry_release"]
    rows = conn.execute(select(rel.c.release_id, rel.c.version).where(rel.c.version_order.is_(None))).all()
    for rid, ver in rows:
        conn.execute(update(rel).where(rel.c.release_id == rid).values(version_order=version_order(ver)))
    return len(rows)


def neighbours(conn: Connection, library_id: int, release_id: int) -> tuple[int | None, int | None]:
    """(the release before, the release after) ``release_id`` in version order, among the library's releases."""
    rel = T["registry_release"]
    rows = sorted(conn.execute(select(rel.c.release_id, rel.c.version).where(rel.c.library_id == library_id)).all(),
                  key=lambda r: version_key(r.version))
    ids = [r.release_id for r in rows]
    i = ids.index(release_id)
    return (ids[i - 1] if i > 0 else None), (ids[i + 1] if i + 1 < len(ids) else None)


def _code_hashes(conn: Connection, release_id: int) -> dict[str, str]:
    """qualname -> body digest of a release's functions and methods (registry_release.stats.code_hashes; empty
    for a release scanned before digests were recorded: then no body change is reported for it)."""
    rel = T["registry_release"]
    stats = conn.execute(select(rel.c.stats).where(rel.c.release_id == release_id)).scalar()
    if isinstance(stats, str):
        stats = json.loads(stats)
    return dict((stats or {}).get("code_hashes") or {})


def _write_diff(conn: Connection, library_id: int, release_id: int) -> dict[str, int]:
    """Diff this release against the library's previous release in version order, and the next release against
    this one (releases are scanned side by side, in any order: an older release scanned last sits between two)."""
    prev, nxt = neighbours(conn, library_id, release_id)
    if nxt is not None:
        _diff_pair(conn, library_id, release_id, nxt)
    return _diff_pair(conn, library_id, prev, release_id)


def diff_releases(conn: Connection, from_release_id: int, to_release_id: int) -> list[dict[str, Any]]:
    """The symbol / parameter changes from one release to another (any two releases of a library)."""
    return _diff_rows(conn, {"from_release_id": from_release_id, "to_release_id": to_release_id},
                      from_release_id, to_release_id)


def _diff_pair(conn: Connection, library_id: int, prev: int | None, release_id: int) -> dict[str, int]:
    diff_t = T["registry_release_diff"]
    conn.execute(delete(diff_t).where(diff_t.c.to_release_id == release_id))
    if prev is None:
        return {}
    rows = _diff_rows(conn, {"library_id": library_id, "from_release_id": prev, "to_release_id": release_id},
                      prev, release_id)
    if rows:
        conn.execute(insert(diff_t), rows)
    out: dict[str, int] = {}
    for r in rows:
        out[r["change"]] = out.get(r["change"], 0) + 1
    return out


_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")
_MODULE_PATH = re.compile(r"\b(?:[A-Za-z_]\w*\.)+([A-Za-z_]\w*)")


def _comparable(field: str, value: Any) -> Any:
    """A parameter field as the diff compares it: object reprs without their memory address (``<X object at
    0x7f…>`` differs in every process), annotations without module paths (``pandas.core.frame.DataFrame`` and
    ``pandas.DataFrame`` are one type, spelled by the pandas release of each environment)."""
    if field == "default":
        return _ADDRESS.sub("", json.dumps(value, sort_keys=True, default=str))
    if field == "annotation" and isinstance(value, str):
        return _MODULE_PATH.sub(r"\1", value)
    return value


def _diff_rows(conn: Connection, base: dict[str, Any], prev: int, release_id: int) -> list[dict[str, Any]]:
    old_s, old_p = _snapshot(conn, prev)
    new_s, new_p = _snapshot(conn, release_id)
    old_c, new_c = _code_hashes(conn, prev), _code_hashes(conn, release_id)
    rows = [{**base, "qualname": q, "param_name": None, "change": "added", "detail": None} for q in sorted(new_s - old_s)]
    rows += [{**base, "qualname": q, "param_name": None, "change": "removed", "detail": None} for q in sorted(old_s - new_s)]
    common = old_s & new_s
    # a body that changed behind an unchanged signature (digests of both sides, same interpreter: registry/envs)
    rows += [{**base, "qualname": q, "param_name": None, "change": "changed", "detail": {"body": [old_c[q], new_c[q]]}}
             for q in sorted(common) if q in old_c and q in new_c and old_c[q] != new_c[q]]
    for (q, n) in sorted(new_p.keys() - old_p.keys()):
        if q in common:
            rows.append({**base, "qualname": q, "param_name": n, "change": "added", "detail": new_p[(q, n)]})
    for (q, n) in sorted(old_p.keys() - new_p.keys()):
        if q in common:
            rows.append({**base, "qualname": q, "param_name": n, "change": "removed", "detail": old_p[(q, n)]})
    for key in sorted(old_p.keys() & new_p.keys()):
        changed = {f: [old_p[key][f], new_p[key][f]] for f in old_p[key]
                   if _comparable(f, old_p[key][f]) != _comparable(f, new_p[key][f])}
        if changed:
            rows.append({**base, "qualname": key[0], "param_name": key[1], "change": "changed", "detail": changed})
    return rows
