"""The registry as DataFrames for people (notebooks, asset metadata): libraries, model capabilities,
parameters of a callable, losses. Latest release per library unless a release is named."""

from __future__ import annotations

import json

import pandas as pd
from sqlalchemy import Engine, text

from .search import LATEST_RELEASES as _LATEST



def _df(engine: Engine, sql: str, **params) -> pd.DataFrame:
    with engine.connect() as conn:
        return pd.read_sql(text(sql), conn, params=params)


def _json(v):
    return json.loads(v) if isinstance(v, str) else v


def libraries(engine: Engine) -> pd.DataFrame:
    """One row per scanned release: counts of what the scanner found."""
    df = _df(engine, """
        SELECT l.name AS library, r.version, r.scanned_at, r.scan_seconds, r.stats, r.release_id
        FROM registry_release r JOIN registry_library l ON l.library_id = r.library_id ORDER BY l.name, r.release_id""")
    stats = pd.json_normalize([{k: v for k, v in (_json(s) or {}).items() if k != "code_hashes"}  # per symbol
                               for s in df.pop("stats")])
    keep = ["modules", "classes", "functions", "methods", "properties", "parameters", "enum_values",
            "capabilities", "losses", "import_failures"]
    return pd.concat([df, stats[[c for c in keep if c in stats]]], axis=1)


def capabilities(engine: Engine, library: str = "neuralforecast", module: str | None = "neuralforecast.models",
                 source: str = "declared") -> pd.DataFrame:
    """Model class × capability (declared flags, or observed by the compat matrix)."""
    df = _df(engine, f"""
        SELECT DISTINCT s.name AS model, c.capability_code, c.value
        FROM registry_symbol s JOIN registry_symbol_capability c ON c.symbol_id = s.symbol_id
        JOIN registry_release r ON r.release_id = s.release_id JOIN registry_library l ON l.library_id = r.library_id
        WHERE l.name = :lib AND s.release_id IN {_LATEST} AND c.source = :src AND s.kind = 'class'
          {"AND (s.module = :mod OR s.symbol_id IN (SELECT symbol_id FROM registry_symbol_alias WHERE module = :mod))"
           if module else ""}""", lib=library, src=source, **({"mod": module} if module else {}))
    if df.empty:
        return df
    df["value"] = df["value"].map(_json)
    return df.pivot_table(index="model", columns="capability_code", values="value", aggfunc="first").reset_index()


def parameters(engine: Engine, qualname: str) -> pd.DataFrame:
    """Every parameter of a callable (latest release), with type, default, required, doc and allowed values."""
    df = _df(engine, f"""
        SELECT p.param_id, p.position, p.name, p.kind, p.annotation, p.type_norm, p."default", p.has_default,
               p.required, p.doc_type, p.doc_text
        FROM registry_param p JOIN registry_symbol s ON s.symbol_id = p.symbol_id
        WHERE s.qualname = :q AND s.release_id IN {_LATEST} ORDER BY p.position""", q=qualname)
    enums = _df(engine, f"""
        SELECT e.param_id, e.value, e.source FROM registry_param_enum e JOIN registry_param p ON p.param_id = e.param_id
        JOIN registry_symbol s ON s.symbol_id = p.symbol_id WHERE s.qualname = :q AND s.release_id IN {_LATEST}
        ORDER BY e.enum_id""", q=qualname)
    allowed = enums.assign(value=enums["value"].map(_json)).groupby("param_id")["value"].agg(list)
    df["type_norm"] = df["type_norm"].map(_json)
    df["default"] = df["default"].map(_json)
    df["allowed_values"] = df["param_id"].map(allowed)
    return df.drop(columns="param_id")


def losses(engine: Engine, library: str = "neuralforecast") -> pd.DataFrame:
    return _df(engine, f"""
        SELECT s.name AS loss, lo.category, lo.output_type, lo.supports_level, lo.supports_quantiles, s.qualname
        FROM registry_loss lo JOIN registry_symbol s ON s.symbol_id = lo.symbol_id
        JOIN registry_release r ON r.release_id = s.release_id JOIN registry_library l ON l.library_id = r.library_id
        WHERE l.name = :lib AND s.release_id IN {_LATEST} AND s.is_public ORDER BY lo.category, s.name""", lib=library)


def classes_preview(engine: Engine, release_id: int, limit: int = 10) -> pd.DataFrame:
    """Public classes of a release with the number of constructor parameters (a preview for people)."""
    return _df(engine, """
        SELECT s.qualname, COUNT(p.param_id) AS init_params, s.doc_summary
        FROM registry_symbol s LEFT JOIN registry_symbol i ON i.parent_symbol_id = s.symbol_id AND i.name = '__init__'
        LEFT JOIN registry_param p ON p.symbol_id = i.symbol_id
        WHERE s.release_id = :r AND s.kind = 'class' AND s.is_public
        GROUP BY s.symbol_id, s.qualname, s.doc_summary ORDER BY s.qualname LIMIT :n""", r=release_id, n=limit)
