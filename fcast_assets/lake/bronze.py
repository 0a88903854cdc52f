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


def ingest(spec: GameSpec, df: pd.DataFrame, uri: str, overwrite_changed: bool = False,
           replace: Iterable[int] = ()) -> dict[str, Any]:
    """Merge bronze rows into the game's Delta table on draw_no. Idempotent: only new draw_nos (and the changed
    draws listed in ``replace``, or every changed draw with ``overwrite_changed``) are written; an unchanged
    re-ingest writes nothing.

    A draw already in bronze that arrives with a different hash is *changed*: it is returned in ``changed`` and
    kept as stored unless it is to be replaced (the caller decides, see :func:`classify_changes`).
    """
    existing = deltaio.read(uri, columns=["draw_no", "raw_hash"])
    known = dict(zip(existing["draw_no"].astype(int), existing["raw_hash"])) if len(existing) else {}
    is_new = ~df["draw_no"].isin(list(known))
    changed_mask = df["draw_no"].map(lambda n: n in known) & (df["draw_no"].map(known) != df["raw_hash"])
    changed = df[changed_mask]
    rep = changed_mask if overwrite_changed else (changed_mask & df["draw_no"].isin([int(n) for n in replace]))
    to_write = df[is_new | rep]
    version = deltaio.current_version(uri)
    metrics: dict[str, Any] = {}
    if len(to_write):
        version, metrics = deltaio.merge_on(uri, to_arrow(spec, to_write), "draw_no")
    return {"version": version, "inserted": int(is_new.sum()), "changed": changed, "written": len(to_write),
            "replaced": sorted(int(n) for n in df.loc[rep, "draw_no"]), "merge_metrics": metrics}


# ------------------------------------------------------------------------------------------------ changed draws
def changed_draw_nos(existing: pd.DataFrame, incoming: pd.DataFrame) -> list[int]:
    """Draw numbers delivered again with a different canonical draw (date or numbers) than the stored one."""
    if existing.empty or incoming.empty:
        return []
    known = dict(zip(existing["draw_no"].astype(int), existing["raw_hash"]))
    return sorted(int(n) for n, h in zip(incoming["draw_no"], incoming["raw_hash"])
                  if int(n) in known and known[int(n)] != h)


def error_draws(issues: Iterable[dict[str, Any]]) -> set[int]:
    return {int(i["draw_no"]) for i in issues if i["severity"] == ERROR and i.get("draw_no") is not None}


def classify_changes(spec: GameSpec, existing: pd.DataFrame, incoming: pd.DataFrame,
                     dup_issues: list[dict[str, Any]], overwrite_changed: bool = False,
                     superseded: Optional[dict[int, set[str]]] = None) -> dict[str, list[int]]:
    """Sort the changed draws (same draw_no, other numbers or date) into

    - ``corrected``: the stored draw fails a blocking rule and the incoming one passes every rule: replaced
      without any flag (a fixed source un-blocks the game on the next run);
    - ``replaced``: replaced because the run asked for it (``overwrite_changed`` / ``--replace-changed``);
    - ``superseded``: the incoming draw is a version that was replaced earlier (a stale copy in a source):
      the stored draw stays, a warning;
    - ``conflicts``: anything else: the stored draw stays, a DQ error (nothing replaced silently).
    """
    changed = changed_draw_nos(existing, incoming)
    out: dict[str, list[int]] = {"corrected": [], "replaced": [], "superseded": [], "conflicts": []}
    if not changed:
        return out
    cand = pd.concat([existing[~existing["draw_no"].isin(incoming["draw_no"])][incoming.columns], incoming],
                     ignore_index=True).sort_values("draw_no").reset_index(drop=True)
    incoming_bad = error_draws(check_rules(spec, cand)) | error_draws(dup_issues)
    stored_bad = error_draws(check_rules(spec, existing)) | {int(n) for n in existing.loc[~existing["dq_ok"].astype(bool),
                                                                                           "draw_no"]}
    inc_hash = dict(zip(incoming["draw_no"].astype(int), incoming["raw_hash"]))
    for n in changed:
        if n in stored_bad and n not in incoming_bad:
            out["corrected"].append(n)
        elif overwrite_changed:
            out["replaced"].append(n)
        elif superseded and inc_hash[n] in superseded.get(n, set()):
            out["superseded"].append(n)
        else:
            out["conflicts"].append(n)
    return out


def _numbers(spec: GameSpec, row: Any) -> dict[str, Any]:
    get = row.get if isinstance(row, (dict, pd.Series)) else lambda c: getattr(row, c)
    return {c: None if get(c) is None or pd.isna(get(c)) else int(get(c)) for c in spec.number_cols}


def _show(spec: GameSpec, row: Any) -> str:
    get = row.get if isinstance(row, (dict, pd.Series)) else lambda c: getattr(row, c)
    nums = _numbers(spec, row)
    main = " ".join("?" if nums[c] is None else str(nums[c]) for c in spec.main_cols)
    bonus = " ".join("?" if nums[c] is None else str(nums[c]) for c in spec.bonus_cols)
    return f"{get('draw_date')} [{main}{' + ' + bonus if bonus else ''}] from {get('source')}"


def manual_file(source: Any) -> str:
    s = str(source or "")
    return s.split(":", 1)[1] if s.startswith("manual:") else "FILE"


def accept_hint(spec: GameSpec, draw_no: int, incoming_source: Any = None) -> str:
    """What to run to accept an incoming version of a stored draw."""
    return (f"to accept the incoming draw run `fcast game ingest {spec.code} {manual_file(incoming_source)} "
            f"--replace-changed` (the result file of draw {draw_no}) or materialize bronze_draws for partition "
            f"{spec.code} with run config `ops: {{bronze_draws: {{config: {{overwrite_changed: true}}}}}}`; "
            f"if the stored draw is right, correct the source instead")


def fix_hint(spec: GameSpec, source: Any) -> str:
    """What to run to un-block a game whose stored draw breaks a rule."""
    s = str(source or "")
    if s.startswith("embedded:"):
        where = (f"correct the row in the history file {s.split(':', 1)[1]} (a user copy goes to "
                 f"$FCAST_HOME/lottery/{spec.code}.csv: `fcast game add {spec.code} --update --history FILE`) "
                 f"and materialize bronze_draws for partition {spec.code} again")
    else:
        where = f"download the draw's result file again and run `fcast game ingest {spec.code} FILE`"
    return (f"silver stays at its last good version; {where}; a corrected draw that passes every rule replaces "
            f"the bad one automatically (no overwrite flag needed)")


def change_issues(spec: GameSpec, existing: pd.DataFrame, incoming: pd.DataFrame, kinds: dict[str, list[int]]
                  ) -> list[dict[str, Any]]:
    """One DQ row per changed draw: conflicts are errors (what differs and what to run), the rest warnings."""
    if not any(kinds.values()):
        return []
    cur = existing.set_index("draw_no")
    inc = incoming.set_index("draw_no")
    rule_sev = {"conflicts": ("source_disagreement", ERROR), "corrected": ("corrected_draw", WARN),
                "replaced": ("replaced_draw", WARN), "superseded": ("superseded_draw", WARN)}
    out = []
    for kind, nos in kinds.items():
        rule, sev = rule_sev[kind]
        for n in nos:
            old, new = cur.loc[n], inc.loc[n]
            old_r = {"draw_date": old["draw_date"], "source": old["source"], **_numbers(spec, old)}
            new_r = {"draw_date": new["draw_date"], "source": new["source"], **_numbers(spec, new)}
            head = f"{spec.code} draw {n}: stored {_show(spec, old_r)} vs incoming {_show(spec, new_r)}"
            msg = {
                "conflicts": f"{head}; the stored draw is kept, nothing replaced, silver is held back; "
                             + accept_hint(spec, n, new["source"]),
                "corrected": f"corrected draw {n}: {head}; the stored draw broke a rule, the incoming one passes "
                             "every rule and replaced it",
                "replaced": f"{head}; replaced on request (overwrite_changed)",
                "superseded": f"{head}; the incoming draw is a version replaced earlier (a stale source); the "
                              "stored draw is kept",
            }[kind]
            out.append({"unique_id": spec.code, "ds": new["draw_date"], "draw_no": int(n), "rule": rule,
                        "severity": sev,
                        "detail": {"stored": _numbers(spec, old), "stored_date": str(old["draw_date"]),
                                   "stored_source": old["source"], "stored_hash": old["raw_hash"],
                                   "incoming": _numbers(spec, new), "incoming_date": str(new["draw_date"]),
                                   "incoming_source": new["source"], "incoming_hash": new["raw_hash"],
                                   "message": msg}})
    return out


def explain_errors(spec: GameSpec, issues: list[dict[str, Any]], bronze: pd.DataFrame) -> list[dict[str, Any]]:
    """Add a ``message`` (what, where, what to run) to every blocking issue that has none."""
    src = dict(zip(bronze["draw_no"].astype(int), bronze["source"])) if len(bronze) else {}
    for i in issues:
        d = i.setdefault("detail", {})
        if i["severity"] != ERROR or not isinstance(d, dict) or d.get("message"):
            continue
        facts = ", ".join(f"{k}={v}" for k, v in d.items() if k != "action")
        source = src.get(int(i["draw_no"])) if i.get("draw_no") is not None else None
        d["message"] = (f"{spec.code} draw {i.get('draw_no')} ({i['unique_id']}) breaks {i['rule']}"
                        f"{' (' + facts + ')' if facts else ''} in {source or 'the source'}; "
                        + fix_hint(spec, source))
    return issues


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
