"""The lake stages as plain functions (the Dagster assets are thin wrappers around these).

``ingest_bronze`` -> bronze Delta + ``dataset_version`` (layer bronze) + ``dataset_dq_issue``;
``build_silver_table`` -> silver Delta + ``dataset_version`` (layer silver);
``build_profile`` -> ``dataset_profile`` rows for the silver version.
"""

from __future__ import annotations

from typing import Any, Iterable, Optional

import pandas as pd
from sqlalchemy import Engine

from . import bronze as B
from . import deltaio
from . import profile as P
from . import silver as S
from . import versions as V
from .games import GameSpec, game_sources
from .sources import FileSource, Scraper, iter_records, recorded_disagreements
from ..locks import locked


def bronze_uri(spec: GameSpec, root: Optional[str] = None) -> str:
    return deltaio.table_uri("bronze", "draws", spec.code, root)


def silver_uri(spec: GameSpec, root: Optional[str] = None) -> str:
    return deltaio.table_uri("silver", "series", spec.code, root)


def scraper_for(engine: Engine, spec: GameSpec, **kw: Any) -> Optional[Scraper]:
    srcs = [s for s in game_sources(engine, spec.code) if s.enabled and "{draw_no" in s.url]
    return Scraper(url_template=srcs[0].url, **kw) if srcs else None


def mark_source_checked(engine: Engine, spec: GameSpec, url: str) -> None:
    from sqlmodel import Session, select

    from fcast_assets.db.dataset_models import DatasetSource
    from fcast_assets.db.models import utcnow

    with Session(engine) as s:
        for src in s.exec(select(DatasetSource).where(DatasetSource.game_id == spec.game_id,
                                                      DatasetSource.url == url)).all():
            src.checked_at = utcnow()
            s.add(src)
        s.commit()


@locked(lambda engine, spec, *a, **k: f"ingest:{spec.code}")  # one ingest of a game at a time (fcast_assets.locks)
def ingest_bronze(engine: Engine, spec: GameSpec, root: Optional[str] = None,
                  records: Optional[Iterable[dict[str, Any]]] = None, file_source: Optional[FileSource] = None,
                  scraper: Optional[Scraper] = None, overwrite_changed: bool = False,
                  run_id: Optional[str] = None) -> dict[str, Any]:
    """Read the game's draws (given records, else files [+ scraper]), check the rules, merge into bronze."""
    uri = bronze_uri(spec, root)
    existing = B.read_bronze(uri)
    last = V.latest_version(engine, spec, "bronze")
    if last is not None and last.delta_version is not None and \
            deltaio.split_versioned_uri(last.lake_uri)[0] == uri and deltaio.current_version(uri) != last.delta_version:
        # a run killed after its Delta write, before its metadata: compare with what the last recorded run left, so
        # that this run redoes and records its changes (a correction's DQ rows) instead of finding them in place
        existing = B.read_bronze(deltaio.versioned_uri(uri, last.delta_version))
    known_max = int(existing["draw_no"].max()) if len(existing) else None
    if records is None:
        records = iter_records(spec, file_source=file_source, scraper=scraper, known_max_draw_no=known_max)
    dup_issues: list[dict[str, Any]] = []
    incoming = B.to_bronze(spec, records, issues=dup_issues)
    if scraper is not None:
        mark_source_checked(engine, spec, scraper.url_template)
    sources = sorted(incoming["source"].dropna().unique().tolist())
    # a re-delivered draw with other numbers: corrected (stored one broke a rule, incoming passes), replaced on
    # request, a stale copy of a replaced version, or a conflict (DQ error, stored draw kept)
    kinds = B.classify_changes(spec, existing, incoming, dup_issues, overwrite_changed=overwrite_changed,
                               superseded=V.superseded_hashes(engine, spec) if len(existing) else None)
    replace = kinds["corrected"] + kinds["replaced"]
    # rules are checked on what bronze will hold: stored draws not rewritten + the incoming ones written
    written = ~incoming["draw_no"].isin(existing["draw_no"]) if len(existing) else incoming["draw_no"].notna()
    written = written | incoming["draw_no"].isin(replace)
    keep = existing[~existing["draw_no"].isin(incoming.loc[written, "draw_no"])] if len(existing) else existing
    preview = pd.concat([keep[incoming.columns], incoming[written]], ignore_index=True) if len(keep) \
        else incoming[written]
    preview = preview.sort_values("draw_no").reset_index(drop=True)
    incoming = B.mark_dq(incoming, B.check_rules(spec, preview) + dup_issues)
    res = B.ingest(spec, incoming, uri, replace=replace)
    final = B.read_bronze(uri)
    issues = B.check_rules(spec, final) + B.change_issues(spec, existing, incoming, kinds) + dup_issues
    B.explain_errors(spec, issues, final)
    if any(str(x).startswith("embedded") for x in final["source"].dropna().unique()):
        issues += recorded_disagreements(spec.code, set(final["draw_no"].astype(int)))
    vid = V.record_version(
        engine, spec, "bronze", source_hash=B.content_hash(final), row_count=len(final),
        first_draw_date=final["draw_date"].min(), last_draw_date=final["draw_date"].max(),
        first_draw_no=int(final["draw_no"].min()), last_draw_no=int(final["draw_no"].max()),
        lake_uri=uri, delta_version=res["version"], source="+".join(sources), run_id=run_id,
        stats={"inserted": res["inserted"], "written": res["written"], "changed": len(res["changed"]),
               **{k: v for k, v in kinds.items() if v}}, issues=issues)  # version + DQ rows: one transaction
    errors = [i for i in issues if i["severity"] == B.ERROR]
    return {"dataset_version_id": vid, "uri": uri, "delta_version": res["version"], "row_count": len(final),
            "inserted": res["inserted"], "written": res["written"], "changed": len(res["changed"]),
            "corrected": kinds["corrected"], "replaced": kinds["replaced"], "conflicts": kinds["conflicts"],
            "issues": issues, "errors": len(errors), "warnings": len(issues) - len(errors),
            "first_draw_date": final["draw_date"].min(), "last_draw_date": final["draw_date"].max(),
            "sources": sources}


def build_silver_table(engine: Engine, spec: GameSpec, root: Optional[str] = None, engine_name: Optional[str] = None,
                       spark: Any = None, run_id: Optional[str] = None) -> dict[str, Any]:
    """Silver from the rule-conforming bronze rows (dq_ok), overwritten as a new Delta version."""
    b_uri = bronze_uri(spec, root)
    bronze = B.read_bronze(b_uri, only_ok=True)
    if bronze.empty:
        raise ValueError(f"bronze for {spec.code} is empty: materialize bronze_draws first")
    eng = (engine_name or S.engine_name()).lower()
    df = S.build_silver(spec, bronze, engine=eng, spark=spark)
    uri = silver_uri(spec, root)
    version = deltaio.overwrite(uri, S.to_arrow(df))
    b_ver = V.latest_version(engine, spec, "bronze")
    vid = V.record_version(
        engine, spec, "silver", source_hash=B.content_hash(bronze), row_count=len(df),
        first_draw_date=bronze["draw_date"].min(), last_draw_date=bronze["draw_date"].max(),
        first_draw_no=int(bronze["draw_no"].min()), last_draw_no=int(bronze["draw_no"].max()),
        lake_uri=uri, delta_version=version, source=f"bronze:{b_ver.lake_uri if b_ver else b_uri}", run_id=run_id,
        stats={"engine": eng, "series": int(df["unique_id"].nunique()), "draws": len(bronze),
               "bronze_dataset_version_id": b_ver.dataset_version_id if b_ver else None})
    return {"dataset_version_id": vid, "uri": uri, "delta_version": version, "row_count": len(df),
            "series": int(df["unique_id"].nunique()), "draws": len(bronze), "engine": eng, "frame": df}


def silver_issues(spec: GameSpec, df: pd.DataFrame, draws: int) -> list[str]:
    """Contract of silver: every raw slot series is complete (one value per draw), no NaN, unique keys."""
    problems = []
    if df["y"].isna().any():
        problems.append("NaN in y")
    if df.duplicated(["unique_id", "draw_no"]).any():
        problems.append("duplicate (unique_id, draw_no)")
    raw = df[df["transform"] == "raw"].groupby("unique_id").size()
    expected = {f"{spec.code}_{s}" for s in spec.slot_codes} | {f"{spec.code}_SUM"}
    missing = expected - set(raw.index)
    if missing:
        problems.append(f"missing series {sorted(missing)}")
    short = raw[raw != draws]
    if len(short):
        problems.append(f"incomplete series {short.to_dict()}")
    return problems


def build_profile(engine: Engine, spec: GameSpec, root: Optional[str] = None) -> dict[str, Any]:
    """Profile the raw slot series of the rule-conforming draws; rows keyed by the latest silver version."""
    bronze = B.read_bronze(bronze_uri(spec, root), only_ok=True)
    s_ver = V.latest_version(engine, spec, "silver")
    if s_ver is None:
        raise ValueError(f"no silver version for {spec.code}: materialize silver_series first")
    rows = P.profile_game(spec, bronze)
    n = V.write_profile(engine, s_ver.dataset_version_id, rows)  # type: ignore[arg-type]
    game_rows = {r["metric"]: r for r in rows if r["unique_id"] == spec.code}
    return {"dataset_version_id": s_ver.dataset_version_id, "rows": n, "profile": rows,
            "verdict_random": game_rows["verdict_random"]["value"],
            "verdict": game_rows["verdict_random"]["detail"]["verdict"],
            "pooled_chi2_pvalue": game_rows["pooled_chi2_pvalue"]["value"],
            "series_flagged": game_rows["series_flagged"]["value"],
            "series_profiled": game_rows["series_profiled"]["value"]}
