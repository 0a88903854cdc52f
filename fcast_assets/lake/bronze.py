"""Bronze: one Delta table per game of raw draws, merged on ``draw_no``, plus the game-rule checks.

Columns: ``draw_no, draw_date, n1..nK, b1..bM, source, raw_hash, ingested_at, dq_ok``. Rows breaking a rule of
the game are kept (``dq_ok = false``) and reported as data-quality issues (``dataset_dq_issue``), never dropped.
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime, timezone
from typing import Any, Iterable, Optional

import pandas as pd
import pyarrow as pa

from . import deltaio
from .games import GameSpec

ERROR, WARN = "error", "warn"


def raw_hash(spec: GameSpec, rec: dict[str, Any]) -> str:
    """sha256 of the canonical draw (game, draw_no, date, numbers): the same draw from any source, same hash."""
    d = rec["draw_date"]
    d = d.isoformat() if isinstance(d, (date, datetime)) else str(d)[:10]
    nums = ",".join("" if rec.get(c) is None or pd.isna(rec.get(c)) else str(int(rec[c])) for c in spec.number_cols)
    return hashlib.sha256(f"{spec.code}|{int(rec['draw_no'])}|{d}|{nums}".encode()).hexdigest()


def bronze_schema(spec: GameSpec) -> pa.Schema:
    return pa.schema(
        [pa.field("draw_no", pa.int64(), nullable=False), pa.field("draw_date", pa.date32())]
        + [pa.field(c, pa.int32()) for c in spec.number_cols]
        + [pa.field("source", pa.string()), pa.field("raw_hash", pa.string()),
           pa.field("ingested_at", pa.timestamp("us", tz="UTC")), pa.field("dq_ok", pa.bool_())]
    )


def to_bronze(spec: GameSpec, records: Iterable[dict[str, Any]], ingested_at: Optional[datetime] = None,
              issues: Optional[list[dict[str, Any]]] = None) -> pd.DataFrame:
    """Draw records -> bronze rows, one per draw_no.

    A repeated draw_no is never resolved silently: the first record is kept; an identical repeat (same raw_hash)
    is dropped with a ``duplicate_draw_no`` warning, a repeat with different numbers or date is a
    ``duplicate_draw_no`` error (the kept row then fails ``mark_dq``). Issues are appended to ``issues``.
    """
    ingested_at = ingested_at or datetime.now(timezone.utc)
    rows: dict[int, dict[str, Any]] = {}
    for rec in records:
        r = {"draw_no": int(rec["draw_no"]), "draw_date": rec["draw_date"]}
        for c in spec.number_cols:
            v = rec.get(c)
            r[c] = None if v is None or (isinstance(v, float) and pd.isna(v)) else int(v)
        r["source"] = rec.get("source")
        r["raw_hash"] = raw_hash(spec, r)
        r["ingested_at"] = ingested_at
        first = rows.get(r["draw_no"])
        if first is None:
            rows[r["draw_no"]] = r
        elif issues is not None:
            issues.append(duplicate_issue(spec, first, r))
    df = pd.DataFrame([rows[k] for k in sorted(rows)],
                      columns=["draw_no", "draw_date", *spec.number_cols, "source", "raw_hash", "ingested_at"])
    for c in spec.number_cols:
        df[c] = df[c].astype("Int32")
    df["draw_no"] = df["draw_no"].astype("int64")
    df["draw_date"] = pd.to_datetime(df["draw_date"]).dt.date
    df["dq_ok"] = True
    return df


def duplicate_issue(spec: GameSpec, kept: dict[str, Any], dup: dict[str, Any]) -> dict[str, Any]:
    same = kept["raw_hash"] == dup["raw_hash"]
    show = lambda r: {"draw_date": str(r["draw_date"]), "source": r.get("source"),  # noqa: E731
                      **{c: r.get(c) for c in spec.number_cols}}
    return {"unique_id": spec.code, "ds": kept["draw_date"], "draw_no": int(kept["draw_no"]),
            "rule": "duplicate_draw_no", "severity": WARN if same else ERROR,
            "detail": {"identical": same, "kept": show(kept), "duplicate": show(dup),
                       "action": "identical repeat dropped" if same else
                       "first row kept and marked dq_ok=false; fix the source file (one row per draw_no)"}}


# ------------------------------------------------------------------------------------------------ rules
def check_rules(spec: GameSpec, df: pd.DataFrame) -> list[dict[str, Any]]:
    """Every rule of the game on every row. Returns issues ``{unique_id, ds, draw_no, rule, severity, detail}``.

    unique_id is ``<game>_<SLOT>`` for a slot-level rule and ``<game>`` for a draw-level one.
    """
    issues: list[dict[str, Any]] = []

    def add(uid: str, row: Any, rule: str, severity: str = ERROR, **detail: Any) -> None:
        issues.append({"unique_id": uid, "ds": row.draw_date, "draw_no": int(row.draw_no), "rule": rule,
                       "severity": severity, "detail": detail})

    prev_no: Optional[int] = None
    prev_date = None
    for row in df.itertuples(index=False):
        main = [getattr(row, c) for c in spec.main_cols]
        bonus = [getattr(row, c) for c in spec.bonus_cols]
        for c in spec.number_cols:
            v = getattr(row, c)
            uid = f"{spec.code}_{c.upper()}"
            if v is None or pd.isna(v):
                add(uid, row, "missing_number", column=c)
                continue
            lo, hi = spec.slot_range(c)
            if not lo <= int(v) <= hi:
                add(uid, row, "number_out_of_range", column=c, value=int(v), min=lo, max=hi)
        if any(v is None or pd.isna(v) for v in main + bonus):
            pass
        else:
            main_i = [int(v) for v in main]
            if not spec.allow_repeat and len(set(main_i)) != len(main_i):
                add(spec.code, row, "repeated_main_number", numbers=main_i)
            if spec.main_sorted and main_i != sorted(main_i):
                add(spec.code, row, "main_not_ascending", numbers=main_i)
            if bonus and spec.rules.get("bonus_distinct_from_main", not spec.allow_repeat):
                bonus_i = [int(v) for v in bonus]
                clash = sorted(set(bonus_i) & set(main_i))
                if clash or len(set(bonus_i)) != len(bonus_i):
                    add(spec.code, row, "bonus_repeats_number", main=main_i, bonus=bonus_i)
            if len(bonus) > 1 and spec.rules.get("bonus_sorted"):
                bonus_i = [int(v) for v in bonus]
                if bonus_i != sorted(bonus_i):  # a storage convention, not a rule of the draw: warn only
                    add(spec.code, row, "bonus_not_ascending", WARN, bonus=bonus_i)
        if row.draw_date is None or pd.isna(row.draw_date):
            add(spec.code, row, "missing_draw_date")
        elif prev_date is not None and row.draw_date <= prev_date:
            add(spec.code, row, "draw_date_not_increasing", previous=str(prev_date))
        if prev_no is not None and int(row.draw_no) != prev_no + 1:
            add(spec.code, row, "draw_no_gap", WARN, previous=prev_no)
        prev_no, prev_date = int(row.draw_no), row.draw_date
    return issues


def mark_dq(df: pd.DataFrame, issues: list[dict[str, Any]]) -> pd.DataFrame:
    bad = {i["draw_no"] for i in issues if i["severity"] == ERROR}
    out = df.copy()
    out["dq_ok"] = ~out["draw_no"].isin(bad)
    return out


def to_arrow(spec: GameSpec, df: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(df[bronze_schema(spec).names], schema=bronze_schema(spec), preserve_index=False)


def ingest(spec: GameSpec, df: pd.DataFrame, uri: str, overwrite_changed: bool = False
           ) -> dict[str, Any]:
    """Merge bronze rows into the game's Delta table on draw_no. Idempotent: only new draw_nos (and, with
    ``overwrite_changed``, draws whose raw_hash changed) are written; an unchanged re-ingest writes nothing.

    A draw already in bronze that arrives with a different hash is a *source disagreement*: it is reported
    (``changed`` in the result, a ``source_disagreement`` warn issue downstream) and only overwritten on request.
    """
    existing = deltaio.read(uri, columns=["draw_no", "raw_hash"])
    known = dict(zip(existing["draw_no"].astype(int), existing["raw_hash"])) if len(existing) else {}
    is_new = ~df["draw_no"].isin(list(known))
    changed_mask = df["draw_no"].map(lambda n: n in known) & (df["draw_no"].map(known) != df["raw_hash"])
    changed = df[changed_mask]
    to_write = df[is_new | (changed_mask if overwrite_changed else False)]
    version = deltaio.current_version(uri)
    metrics: dict[str, Any] = {}
    if len(to_write):
        version, metrics = deltaio.merge_on(uri, to_arrow(spec, to_write), "draw_no")
    return {"version": version, "inserted": int(is_new.sum()), "changed": changed, "written": len(to_write),
            "merge_metrics": metrics}


def disagreement_issues(spec: GameSpec, changed: pd.DataFrame, uri: str) -> list[dict[str, Any]]:
    if changed.empty:
        return []
    cur = deltaio.read(uri).set_index("draw_no")
    out = []
    for row in changed.itertuples(index=False):
        old = cur.loc[int(row.draw_no)]
        out.append({"unique_id": spec.code, "ds": row.draw_date, "draw_no": int(row.draw_no),
                    "rule": "source_disagreement", "severity": WARN,
                    "detail": {"kept": {c: None if pd.isna(old[c]) else int(old[c]) for c in spec.number_cols},
                               "kept_source": old["source"],
                               "incoming": {c: None if pd.isna(getattr(row, c)) else int(getattr(row, c))
                                            for c in spec.number_cols},
                               "incoming_source": row.source}})
    return out


def read_bronze(uri: str, only_ok: bool = False) -> pd.DataFrame:
    df = deltaio.read(uri)
    if len(df):
        df = df.sort_values("draw_no").reset_index(drop=True)
        if only_ok:
            df = df[df["dq_ok"]].reset_index(drop=True)
    return df


def content_hash(df: pd.DataFrame, cols: Iterable[str] = ("raw_hash",)) -> str:
    """sha256 over the ordered row hashes (the source hash of a dataset version)."""
    h = hashlib.sha256()
    for vals in df.sort_values("draw_no")[list(cols)].itertuples(index=False):
        h.update("|".join(map(str, vals)).encode())
        h.update(b"\n")
    return h.hexdigest()
