"""The registry, read-only and scoped to one release: what the prober, the plan validator and the model choice
read (plain dicts, JSON-able). Nothing here writes: the rule rows the validator reads are written by
``plans.validator.sync_rules``, called where plans are validated, not when a view is built."""

from __future__ import annotations

import json
from typing import Any, Iterable

from sqlalchemy import Engine, text

from ..db.models import JSONType


class RegistryMissingError(LookupError):
    pass


def _rows(conn, sql: str, **params) -> list[Any]:
    cols = {c: JSONType for c in ("value", "type_norm", "default") if c in sql}
    return conn.execute(text(sql).columns(**cols), params).all()


def installed_release(library: str) -> str | None:
    """The release of ``library`` installed in this interpreter, as the scanner records it (None: not installed,
    or not a library of libraries.yaml)."""
    from .libraries import get_library
    from .scanner import installed_version

    try:
        return installed_version(get_library(library))
    except KeyError:
        return None


def preferred_version(library: str, versions: Iterable[str]) -> str | None:
    """Of ``versions`` (releases of ``library`` scanned or probed side by side, in any order), the one a reader
    means by default: the release installed here when it is among them, else the highest version."""
    from .store import version_key

    versions = set(versions)
    if not versions:
        return None
    here = installed_release(library)
    return here if here in versions else max(versions, key=version_key)


def latest_release(engine: Engine, library: str, version: str | None = None) -> tuple[int, str]:
    """The release the caller means: ``version`` when given; else :func:`preferred_version` of the scanned ones
    (releases are scanned side by side, so "the last scanned" may be another one)."""
    sql = """SELECT r.release_id, r.version FROM registry_release r JOIN registry_library l USING (library_id)
             WHERE l.name = :lib"""
    with engine.connect() as conn:
        rows = conn.execute(text(sql), {"lib": library}).all()
    want = version or preferred_version(library, (r.version for r in rows))
    rows = [r for r in rows if r.version == want]
    if not rows:
        raise RegistryMissingError(
            f"no registry release of {library!r}{' ' + version if version else ''}: "
            f"materialize library_registry[{library}] (or `fcast scan {library}`) first")
    return rows[-1].release_id, rows[-1].version


def params_of(engine: Engine, release_id: int, qualname: str) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = _rows(conn, """
            SELECT p.param_id, p.name, p.position, p.kind, p.type_norm, p."default", p.has_default, p.required
            FROM registry_param p JOIN registry_symbol s ON s.symbol_id = p.symbol_id
            WHERE s.release_id = :r AND s.qualname = :q ORDER BY p.position""", r=release_id, q=qualname)
        enums = _rows(conn, """
            SELECT e.param_id, e.value FROM registry_param_enum e JOIN registry_param p ON p.param_id = e.param_id
            JOIN registry_symbol s ON s.symbol_id = p.symbol_id WHERE s.release_id = :r AND s.qualname = :q
            ORDER BY e.enum_id""", r=release_id, q=qualname)
    by_id: dict[int, list[Any]] = {}
    for pid, v in enums:
        by_id.setdefault(pid, []).append(v)
    return [{**dict(r._mapping), "enums": by_id.get(r.param_id, [])} for r in rows]


def model_classes(engine: Engine, release_id: int, module: str,
                  marks: tuple[str, ...] = ("exog_futr", "multivariate")) -> list[dict[str, Any]]:
    """Classes exported by ``module`` that declare one of the ``marks`` capabilities (model classes), with
    their declared capabilities."""
    with engine.connect() as conn:
        rows = _rows(conn, """
            SELECT DISTINCT s.symbol_id, s.qualname, s.name, c.capability_code, c.value
            FROM registry_symbol s
            JOIN registry_symbol_capability c ON c.symbol_id = s.symbol_id AND c.source = 'declared'
            WHERE s.release_id = :r AND s.kind = 'class' AND s.is_public AND (s.module = :m OR s.symbol_id IN
                  (SELECT symbol_id FROM registry_symbol_alias WHERE release_id = :r AND module = :m))
            ORDER BY s.name""", r=release_id, m=module)
    out: dict[str, dict[str, Any]] = {}
    for sid, q, name, code, value in rows:
        out.setdefault(q, {"symbol_id": sid, "qualname": q, "name": name, "caps": {}})["caps"][code] = value
    return [m for m in out.values() if any(k in m["caps"] for k in marks)]


def loss_classes(engine: Engine, release_id: int) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(text("""
            SELECT s.symbol_id, s.qualname, s.name, s.is_public, l.category, l.output_type, l.supports_level,
                   l.supports_quantiles, l.evidence
            FROM registry_loss l JOIN registry_symbol s ON s.symbol_id = l.symbol_id
            WHERE s.release_id = :r ORDER BY s.name"""), {"r": release_id}).all()
    out = []
    for r in rows:
        if not r.is_public or r.name.startswith("Base"):
            continue
        d = dict(r._mapping)
        ev = d.pop("evidence")
        ev = json.loads(ev) if isinstance(ev, str) else (ev or {})
        if "construct_error" in ev:
            continue  # the scanner could not build it with defaults: no loss object to probe with
        d["kwargs"] = ev.get("constructed_with") or {}
        out.append(d)
    return out


def loss_kinds(engine: Engine, release_id: int) -> dict[str, str]:
    """Loss class name -> output type (point / quantile / distribution) from registry_loss."""
    with engine.connect() as conn:
        rows = conn.execute(text("""SELECT s.name, l.output_type FROM registry_loss l
            JOIN registry_symbol s ON s.symbol_id = l.symbol_id WHERE s.release_id = :r"""), {"r": release_id}).all()
    return {r.name: r.output_type for r in rows}


def auto_classes(engine: Engine, release_id: int, module: str) -> list[dict[str, Any]]:
    """Auto classes exported by ``module`` with the model class each one tunes (capability auto_of)."""
    with engine.connect() as conn:
        rows = _rows(conn, """
            SELECT DISTINCT s.qualname, s.name, c.value FROM registry_symbol s
            JOIN registry_symbol_capability c ON c.symbol_id = s.symbol_id AND c.capability_code = 'auto_of'
            WHERE s.release_id = :r AND s.kind = 'class' AND s.is_public AND (s.module = :m OR s.symbol_id IN
                  (SELECT symbol_id FROM registry_symbol_alias WHERE release_id = :r AND module = :m))
            ORDER BY s.name""", r=release_id, m=module)
    return [{"qualname": q, "name": n, "auto_of": v} for q, n, v in rows]


class RegistryView:
    """One release of a library as the plan validator and the model choice read it: its model classes, loss
    kinds, symbols, parameters (with enum values and constraint rows) and the latest compat cells. Read once per
    release, cached per qualname; nothing written."""

    def __init__(self, engine: Engine, library: str = "neuralforecast", release_id: int | None = None):
        self.engine = engine
        self.library = library
        self.release_id, self.version = latest_release(engine, library) if release_id is None else (release_id, None)
        self.models = {m["qualname"]: m for m in model_classes(engine, self.release_id, f"{library}.models")}
        self.loss_kinds = loss_kinds(engine, self.release_id)
        self._symbols: dict[str, Any] = {}
        self._params: dict[str, list[dict[str, Any]]] = {}
        self._compat = self._load_compat()

    def symbol(self, qualname: str) -> dict[str, Any] | None:
        if qualname not in self._symbols:
            with self.engine.connect() as conn:
                row = conn.execute(text("""
                    SELECT symbol_id, qualname, kind FROM registry_symbol WHERE release_id = :r AND qualname = :q
                    UNION ALL
                    SELECT s.symbol_id, s.qualname, s.kind FROM registry_symbol_alias a
                    JOIN registry_symbol s ON s.symbol_id = a.symbol_id
                    WHERE a.release_id = :r AND a.alias_qualname = :q"""), {"r": self.release_id, "q": qualname}).first()
            self._symbols[qualname] = dict(row._mapping) if row else None
        return self._symbols[qualname]

    def params(self, qualname: str) -> list[dict[str, Any]]:
        """Parameters of a callable with their enum values and constraint rows."""
        if qualname not in self._params:
            with self.engine.connect() as conn:
                rows = conn.execute(text("""
                    SELECT p.param_id, p.name, p.position, p.kind, p.type_norm, p."default", p.has_default, p.required
                    FROM registry_param p JOIN registry_symbol s ON s.symbol_id = p.symbol_id
                    WHERE s.release_id = :r AND s.qualname = :q ORDER BY p.position""")
                    .columns(type_norm=JSONType, default=JSONType), {"r": self.release_id, "q": qualname}).all()
                ids = [r.param_id for r in rows] or [-1]
                enums = conn.execute(text(f"""SELECT param_id, value, source FROM registry_param_enum
                    WHERE param_id IN ({",".join(map(str, ids))}) ORDER BY enum_id""")
                    .columns(value=JSONType)).all()
                cons = conn.execute(text(f"""SELECT param_id, constraint_type, spec, message, source
                    FROM registry_param_constraint WHERE param_id IN ({",".join(map(str, ids))})
                    ORDER BY constraint_id""").columns(spec=JSONType)).all()
            out = []
            for r in rows:
                d = dict(r._mapping)
                d["enums"] = [e.value for e in enums if e.param_id == r.param_id]
                d["constraints"] = [dict(c._mapping) for c in cons if c.param_id == r.param_id]
                out.append(d)
            self._params[qualname] = out
        return self._params[qualname]

    def _load_compat(self) -> dict[tuple[str, str, str], list[dict[str, Any]]]:
        with self.engine.connect() as conn:
            rows = conn.execute(text("""
                SELECT model, method, param, value, value_label, status, exception_type, message, result_id,
                       scenario, scenario_facts AS facts
                FROM compat_result WHERE release_id = :r AND result_id IN
                  (SELECT MAX(result_id) FROM compat_result WHERE release_id = :r
                   GROUP BY model, method, param, scenario, value_label)""").columns(value=JSONType,
                                                                                     facts=JSONType),
                {"r": self.release_id}).all()
        out: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
        for r in rows:
            out.setdefault((r.model, r.method, r.param), []).append(dict(r._mapping))
        return out

    def compat(self, model: str, method: str, param: str) -> list[dict[str, Any]]:
        """The latest matrix cells of (model, method, param), each with its scenario facts (``facts``)."""
        return self._compat.get((model, method, param), [])

    def default_loss(self, qualname: str) -> Any:
        return next((p["default"] for p in self.params(qualname + ".__init__") if p["name"] == "loss"), None)
