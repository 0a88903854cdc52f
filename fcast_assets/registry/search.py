"""Full-text search over the registry: SQLite FTS5 or PostgreSQL tsvector, latest release per library."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Engine, text

# the newest scanned release of each library (shared by the search and the registry tables)
LATEST_RELEASES = "(SELECT MAX(release_id) FROM registry_release GROUP BY library_id)"


def _tokens(query: str) -> list[str]:
    return re.findall(r"\w+", query)


def search(engine: Engine, query: str, library: str | None = None, kind: str | None = None,
           limit: int = 20) -> list[dict[str, Any]]:
    """Symbols and parameters whose qualname, name or docstring match every word of ``query``.

    ``kind`` filters on module / class / function / method / property / parameter.
    """
    tokens = _tokens(query)
    if not tokens:
        raise ValueError(f"empty search query {query!r}: give at least one word")
    params: dict[str, Any] = {"limit": limit}
    filters = ""
    if library:
        filters += " AND d.library = :library"
        params["library"] = library
    if kind:
        filters += " AND d.kind = :kind"
        params["kind"] = kind
    if engine.dialect.name == "sqlite":
        params["q"] = " ".join('"' + t.replace('"', "") + '"' for t in tokens)
        sql = f"""
            SELECT d.library, d.kind, d.qualname, d.name, substr(coalesce(d.body, ''), 1, 160) AS snippet,
                   bm25(registry_search_fts, 10.0, 10.0, 1.0) AS score
            FROM registry_search_fts f JOIN registry_search_doc d ON d.doc_id = f.rowid
            WHERE registry_search_fts MATCH :q AND d.release_id IN {LATEST_RELEASES} {filters}
            ORDER BY score LIMIT :limit"""
    else:
        params["q"] = " ".join(t.replace("_", " ") for t in tokens)
        sql = f"""
            SELECT d.library, d.kind, d.qualname, d.name, substr(coalesce(d.body, ''), 1, 160) AS snippet,
                   -ts_rank(d.tsv, qq.q) AS score
            FROM registry_search_doc d, (SELECT plainto_tsquery('simple', :q) AS q) qq
            WHERE d.tsv @@ qq.q AND d.release_id IN {LATEST_RELEASES} {filters}
            ORDER BY score LIMIT :limit"""
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(text(sql), params)]
