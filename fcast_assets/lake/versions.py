"""Dataset versions, data-quality issues and profile rows in the metadata database.

Every materialization of a lake layer writes one ``dataset_version`` (source hash, row count, date range and the
Delta URI *with* its table version, ``…/game=loto6@v3``) so that a model or run can point at the exact data.
"""

from __future__ import annotations

import math
from datetime import date, datetime
from typing import Any, Iterable, Optional

import numpy as np
import pandas as pd
from sqlalchemy import Engine, delete
from sqlmodel import Session, select

from fcast_assets.db.dataset_models import DatasetDqIssue, DatasetProfile, DatasetVersion

from .deltaio import versioned_uri
from .games import GameSpec


def json_safe(v: Any) -> Any:
    """JSON-storable on SQLite and PostgreSQL: numpy scalars to Python, NaN/inf to None, dates to ISO strings."""
    if isinstance(v, dict):
        return {str(k): json_safe(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [json_safe(x) for x in v]
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, (date, datetime)):
        return v.isoformat()
    return v


def _d(v: Any) -> Optional[date]:
    if v is None or (not isinstance(v, date) and pd.isna(v)):
        return None
    return pd.Timestamp(v).date()


def record_version(engine: Engine, spec: GameSpec, layer: str, *, source_hash: str, row_count: int,
                   first_draw_date: Any, last_draw_date: Any, lake_uri: str, delta_version: Optional[int],
                   first_draw_no: Optional[int] = None, last_draw_no: Optional[int] = None,
                   source: Optional[str] = None, run_id: Optional[str] = None,
                   stats: Optional[dict] = None, issues: Iterable[dict[str, Any]] = ()) -> int:
    """One dataset_version row and its DQ rows in one transaction: a process killed in between leaves neither."""
    with Session(engine) as s:
        v = DatasetVersion(game_id=spec.game_id, layer=layer, source_hash=source_hash, row_count=int(row_count),
                           first_draw_date=_d(first_draw_date), last_draw_date=_d(last_draw_date),
                           first_draw_no=first_draw_no, last_draw_no=last_draw_no,
                           lake_uri=versioned_uri(lake_uri, delta_version), delta_version=delta_version,
                           source=source, run_id=run_id, stats=json_safe(stats))
        s.add(v)
        s.flush()
        _add_dq_issues(s, spec, v.dataset_version_id, issues)  # type: ignore[arg-type]
        s.commit()
        return v.dataset_version_id  # type: ignore[return-value]


def latest_version(engine: Engine, spec: GameSpec, layer: str) -> Optional[DatasetVersion]:
    with Session(engine) as s:
        v = s.exec(select(DatasetVersion).where(DatasetVersion.game_id == spec.game_id, DatasetVersion.layer == layer)
                   .order_by(DatasetVersion.dataset_version_id.desc())).first()  # type: ignore[union-attr]
        if v is not None:
            s.expunge(v)
        return v


def record_dq_issues(engine: Engine, spec: GameSpec, dataset_version_id: int,
                     issues: Iterable[dict[str, Any]]) -> int:
    with Session(engine) as s:
        n = _add_dq_issues(s, spec, dataset_version_id, issues)
        s.commit()
    return n


def _add_dq_issues(s: Session, spec: GameSpec, dataset_version_id: int, issues: Iterable[dict[str, Any]]) -> int:
    n = 0
    for i in issues:
        s.add(DatasetDqIssue(dataset_version_id=dataset_version_id, game_id=spec.game_id,
                             unique_id=i["unique_id"], ds=_d(i.get("ds")), draw_no=i.get("draw_no"),
                             rule=i["rule"], severity=i.get("severity", "error"),
                             detail=json_safe(i.get("detail"))))
        n += 1
    return n


def superseded_hashes(engine: Engine, spec: GameSpec) -> dict[int, set[str]]:
    """Per draw_no, the raw_hash of stored versions that a later run replaced (``corrected_draw`` /
    ``replaced_draw`` DQ rows): a source still delivering one of them is stale, not a new disagreement."""
    out: dict[int, set[str]] = {}
    with Session(engine) as s:
        rows = s.exec(select(DatasetDqIssue).where(DatasetDqIssue.game_id == spec.game_id,
                                                   DatasetDqIssue.rule.in_(("corrected_draw", "replaced_draw")))  # type: ignore[attr-defined]
                      ).all()
        for r in rows:
            h = (r.detail or {}).get("stored_hash") if isinstance(r.detail, dict) else None
            if h and r.draw_no is not None:
                out.setdefault(int(r.draw_no), set()).add(h)
    return out


def dq_issues(engine: Engine, dataset_version_id: int) -> list[DatasetDqIssue]:
    with Session(engine) as s:
        rows = s.exec(select(DatasetDqIssue).where(DatasetDqIssue.dataset_version_id == dataset_version_id)
                      .order_by(DatasetDqIssue.draw_no)).all()
        for r in rows:
            s.expunge(r)
        return list(rows)


def write_profile(engine: Engine, dataset_version_id: int, rows: Iterable[dict[str, Any]]) -> int:
    """Replace the profile of a dataset version with ``rows`` ``{unique_id, metric, value, detail}``."""
    n = 0
    with Session(engine) as s:
        s.exec(delete(DatasetProfile).where(DatasetProfile.dataset_version_id == dataset_version_id))  # type: ignore[call-overload]
        for r in rows:
            v = r.get("value")
            s.add(DatasetProfile(dataset_version_id=dataset_version_id, unique_id=r["unique_id"], metric=r["metric"],
                                 value=None if v is None or pd.isna(v) else float(v),
                                 detail=json_safe(r.get("detail"))))
            n += 1
        s.commit()
    return n


def profile_frame(engine: Engine, dataset_version_id: int) -> pd.DataFrame:
    with Session(engine) as s:
        rows = s.exec(select(DatasetProfile).where(DatasetProfile.dataset_version_id == dataset_version_id)).all()
        return pd.DataFrame([{"unique_id": r.unique_id, "metric": r.metric, "value": r.value, "detail": r.detail}
                             for r in rows])
