"""Plans as rows: load a YAML or CSV plan file into run_plan / run_step, list plans, read a plan back.

YAML::

    plans:
      - name: mlp_basic
        data: synthetic            # a data set of fcast_assets.plans.data
        metrics: [mae, rmse]       # for the evaluate step
        enabled: true
        expect: valid              # or the rule that must stop it (examples and tests)
        steps:
          - {model: MLP, params: {h: 2, input_size: 8, max_steps: 1}}
          - {method: NeuralForecast.__init__, params: {freq: D}}
          - {method: NeuralForecast.fit}
          - {method: NeuralForecast.predict, params: {level: [80]}}
          - {method: evaluate}

CSV: one row per step with columns plan, ord, method, params (JSON) and optionally data, metrics (JSON),
enabled, expect, description (read from the first row of each plan).
Short names are qualified here (``NeuralForecast.fit`` → ``neuralforecast.core.NeuralForecast.fit``,
``MLP`` → ``neuralforecast.models.MLP``, ``evaluate`` → ``utilsforecast.evaluation.evaluate``); the validator
resolves aliases to the registry's canonical qualname.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from sqlalchemy import Engine, delete, insert, select, text, update

from ..db import run_models as rm
from ..db.models import utcnow
from .model import EVALUATE, LIB_PREFIX, Plan, qualify  # noqa: F401 - qualify / LIB_PREFIX: read here by callers


def _step(raw: dict[str, Any], library: str) -> dict[str, Any]:
    if "model" in raw:
        method, name = qualify(raw["model"], library, model=True), raw.get("name") or "model"
    elif "method" in raw or "call" in raw:
        method = qualify(raw.get("method") or raw["call"], library)
        name = raw.get("name") or method.rsplit(".", 1)[-1].replace("__init__", "init")
    else:
        raise ValueError(f"a step needs `model:` or `method:`: {raw}")
    params = raw.get("params") or {}
    if isinstance(params, str):
        params = json.loads(params)
    return {"method": method, "params": params, "name": name}


def _plan(raw: dict[str, Any], source: str | None) -> dict[str, Any]:
    if not raw.get("name"):
        raise ValueError(f"a plan needs a name (name: my_plan; letters, digits, _ . - ~ : +), got {str(raw)[:80]}")
    from .safety import check_name

    check_name(str(raw["name"]))
    library = raw.get("library", "neuralforecast")
    data = raw.get("data", "synthetic")
    if isinstance(data, dict):  # {synthetic: {...}} / {files: {...}}: stored as JSON text, read back as data
        data = json.dumps(data, sort_keys=True)
    out = {
        "name": str(raw["name"]), "library": library, "data": data,
        "metrics": raw.get("metrics"), "enabled": bool(raw.get("enabled", True)), "expect": raw.get("expect"),
        "description": raw.get("description"), "source": source,
        "steps": [_step(s, library) for s in raw.get("steps") or []],
    }
    Plan.check(out)  # the typed plan (plans.model) reads it: one line naming the field otherwise
    return out


class PlanFileError(ValueError):
    """A plan file that cannot be read as plans: one line naming the file, the line / row and what to fix."""


def _csv_plans(path: Path) -> list[dict[str, Any]]:
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    except UnicodeDecodeError as e:
        raise PlanFileError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start}); save the file as UTF-8") from e
    except Exception as e:  # noqa: BLE001 - pandas parser errors name the line themselves
        raise PlanFileError(f"{path}: not a CSV plan file: {' '.join(str(e).split())[:200]}") from e
    missing = [c for c in ("plan", "method") if c not in df.columns]
    if missing:
        raise PlanFileError(f"{path}:1: the header lacks column(s) {missing} (columns: plan, ord, method, params "
                            f"(JSON) and optionally data, metrics, enabled, expect, description; found "
                            f"{list(df.columns)})")
    df["_line"] = range(2, len(df) + 2)  # line of each row in the file (header = line 1)

    def cell(r: Any, col: str, conv: Any = None) -> Any:  # noqa: ANN401
        v = r[col] if col in r and r[col] != "" else None
        if v is None or conv is None:
            return v
        try:
            return conv(v)
        except (ValueError, TypeError) as e:
            what = "not JSON" if isinstance(e, json.JSONDecodeError) else "not an integer"
            example = ' (e.g. {"h": 2})' if col == "params" else ' (e.g. ["mae"])' if col == "metrics" else ""
            raise PlanFileError(f"{path}:{r['_line']}: plan {r['plan']!r}, column {col}: {v[:60]!r} is {what}"
                                f"{example}; fix that row") from e

    plans = []
    for name, part in df.groupby("plan", sort=False):
        if "ord" in part:
            part = part.assign(_ord=[cell(r, "ord", int) for _, r in part.iterrows()]).sort_values("_ord")
        first = part.iloc[0]
        steps = []
        for _, r in part.iterrows():
            if not r["method"]:
                raise PlanFileError(f"{path}:{r['_line']}: plan {name!r}: empty method (a model class such as MLP "
                                    "or a method such as NeuralForecast.fit)")
            steps.append({"method": r["method"], "params": cell(r, "params", json.loads) or {}})
        raw = {"name": name, "data": cell(first, "data"), "metrics": cell(first, "metrics", json.loads),
               "enabled": cell(first, "enabled", lambda v: v.strip().lower() in ("1", "true", "yes")),
               "expect": cell(first, "expect"), "description": cell(first, "description"), "steps": steps}
        try:
            plans.append(_plan({k: v for k, v in raw.items() if v is not None}, str(path)))
        except (ValueError, TypeError) as e:
            raise PlanFileError(f"{path}:{first['_line']}: plan {name!r}: {e}") from e
    return plans


def _yaml_plans(path: Path) -> list[dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise PlanFileError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start}); save the file as UTF-8") from e
    try:
        doc, node = yaml.safe_load(text), yaml.compose(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        what = getattr(e, "problem", None) or " ".join(str(e).split())[:200]
        raise PlanFileError(f"{path}{where}: {type(e).__name__}: {what} (not valid YAML: fix the indentation, "
                            "brackets or quotes there)") from e
    if isinstance(doc, dict) and isinstance(node, yaml.MappingNode):
        items = doc.get("plans", [])
        node = next((v for k, v in node.value if getattr(k, "value", None) == "plans"), None)
    else:
        items = doc
    if not isinstance(items, list):
        raise PlanFileError(f"{path}: expected a list of plans (or a mapping with `plans:` holding one), found "
                            f"{type(items).__name__} {str(items)[:40]!r}; see fcast_assets/plans/loader.py")
    lines = [n.start_mark.line + 1 for n in node.value] if isinstance(node, yaml.SequenceNode) else []
    plans = []
    for i, p in enumerate(items):
        line = f":{lines[i]}" if i < len(lines) else ""
        if not isinstance(p, dict):
            raise PlanFileError(f"{path}{line}: plan #{i + 1} is a {type(p).__name__} ({str(p)[:40]!r}), not a "
                                "mapping with name: and steps:")
        try:
            if not isinstance(p.get("steps") or [], list) or not all(isinstance(x, dict) for x in p.get("steps") or []):
                raise ValueError("steps: must be a list of mappings ({model: MLP, params: {...}} or "
                                 "{method: NeuralForecast.fit})")
            plans.append(_plan(p, str(path)))
        except (ValueError, TypeError, AttributeError) as e:
            who = f"plan {p['name']!r}" if p.get("name") else f"plan #{i + 1}"
            raise PlanFileError(f"{path}{line}: {who}: {e}") from e
    return plans


def read_file(path: str | Path) -> list[dict[str, Any]]:
    """Parse a YAML or CSV plan file into plan dicts (no database). A file that is not plans raises
    :class:`PlanFileError` naming the file, the line (YAML: the plan's first line; CSV: the row) and the fix."""
    path = Path(path)
    if path.suffix.lower() == ".csv":
        return _csv_plans(path)
    return _yaml_plans(path)


def _delete_plan_rows(conn, plan_id: int) -> None:  # noqa: ANN001
    steps = select(rm.RunStep.step_id).where(rm.RunStep.plan_id == plan_id)
    execs = select(rm.RunExecution.execution_id).where(rm.RunExecution.plan_id == plan_id)
    for t in (rm.RunMetric, rm.RunError, rm.RunResource, rm.RunResult, rm.RunValidation):
        conn.execute(delete(t).where(t.step_id.in_(steps)))
    conn.execute(delete(rm.RunArtifact).where(rm.RunArtifact.plan_id == plan_id))
    conn.execute(delete(rm.RunValidation).where(rm.RunValidation.plan_id == plan_id))
    conn.execute(delete(rm.RunResource).where(rm.RunResource.execution_id.in_(execs)))
    conn.execute(delete(rm.RunExecution).where(rm.RunExecution.plan_id == plan_id))
    conn.execute(update(rm.RunStep).where(rm.RunStep.plan_id == plan_id).values(depends_on_step_id=None))
    conn.execute(delete(rm.RunStep).where(rm.RunStep.plan_id == plan_id))


def _same_steps(conn, plan_id: int, steps: list[dict[str, Any]]) -> bool:  # noqa: ANN001
    rows = conn.execute(select(rm.RunStep.method, rm.RunStep.params, rm.RunStep.name)
                        .where(rm.RunStep.plan_id == plan_id).order_by(rm.RunStep.ord)).all()
    canon = lambda v: json.dumps(v or {}, sort_keys=True)  # noqa: E731
    return [(r.method, canon(r.params), r.name) for r in rows] == \
        [(s["method"], canon(s["params"]), s["name"]) for s in steps]


def store_plans(engine: Engine, plans: list[dict[str, Any]]) -> list[int]:
    """Insert or update plans by name. Unchanged steps keep their rows (validations, results); when the steps
    of a plan that has executions change, the old plan is kept, renamed ``name~plan_id`` and disabled, so no
    result is lost; a plan that never ran just gets its new steps."""
    ids = []
    with engine.begin() as conn:
        for p in plans:
            row = {k: p[k] for k in ("name", "library", "data", "metrics", "enabled", "expect", "description",
                                     "source")}
            pid = conn.execute(select(rm.RunPlan.plan_id).where(rm.RunPlan.name == p["name"])).scalar()
            if pid is not None and _same_steps(conn, pid, p["steps"]):
                conn.execute(update(rm.RunPlan).where(rm.RunPlan.plan_id == pid).values(**row))
                ids.append(pid)
                continue
            if pid is not None:
                ran = conn.execute(select(rm.RunExecution.execution_id).where(rm.RunExecution.plan_id == pid)
                                   .limit(1)).first()
                if ran:
                    conn.execute(update(rm.RunPlan).where(rm.RunPlan.plan_id == pid).values(
                        name=f"{p['name']}~{pid}", enabled=False, updated_at=utcnow()))
                    pid = None
                else:
                    _delete_plan_rows(conn, pid)
                    conn.execute(update(rm.RunPlan).where(rm.RunPlan.plan_id == pid)
                                 .values(**row, updated_at=utcnow()))
            if pid is None:
                pid = conn.execute(insert(rm.RunPlan).values(**row)).inserted_primary_key[0]
            prev = None
            for i, s in enumerate(p["steps"]):
                prev = conn.execute(insert(rm.RunStep).values(
                    plan_id=pid, ord=i, method=s["method"], params=s["params"], name=s["name"],
                    depends_on_step_id=prev)).inserted_primary_key[0]
            ids.append(pid)
    return ids


def load_file(engine: Engine, path: str | Path) -> list[int]:
    return store_plans(engine, read_file(path))


def delete_plan(engine: Engine, name: str) -> int:
    """Delete a stored plan with its steps, validations and executions (their rows); a plan that trained a model
    version stays (its rows are that version's record): the error says so. Returns the plan_id."""
    from ..db.model_models import ModelVersion

    with engine.begin() as conn:
        pid = conn.execute(select(rm.RunPlan.plan_id).where(rm.RunPlan.name == name)).scalar()
        if pid is None:
            raise LookupError(f"no plan {name!r} (`fcast plan list` shows the stored plans)")
        used = conn.execute(select(ModelVersion.model_id).where(ModelVersion.plan_id == pid).limit(1)).scalar()
        if used is not None:
            raise ValueError(f"plan {name!r} trained a version of model {used}: it is that version's record "
                             "and stays; retrain the model instead")
        _delete_plan_rows(conn, pid)
        conn.execute(delete(rm.RunPlan).where(rm.RunPlan.plan_id == pid))
    return pid


def get_plan(engine: Engine, plan: int | str) -> dict[str, Any]:
    col = rm.RunPlan.plan_id if isinstance(plan, int) else rm.RunPlan.name
    with engine.connect() as conn:
        p = conn.execute(select(rm.RunPlan).where(col == plan)).first()
        if p is None:
            raise LookupError(f"no plan {plan!r}: load one with `fcast plan load FILE`")
        steps = conn.execute(select(rm.RunStep).where(rm.RunStep.plan_id == p.plan_id)
                             .order_by(rm.RunStep.ord)).all()
    out = dict(p._mapping)
    out["steps"] = [dict(s._mapping) for s in steps]
    return out


def plan_names(engine: Engine, enabled_only: bool = False) -> list[str]:
    q = select(rm.RunPlan.name).order_by(rm.RunPlan.plan_id)
    if enabled_only:
        q = q.where(rm.RunPlan.enabled.is_(True))
    with engine.connect() as conn:
        return list(conn.execute(q).scalars())


def list_plans(engine: Engine) -> pd.DataFrame:
    """One row per plan: steps, last validation (ok / violations) and last execution status."""
    sql = """
        SELECT p.plan_id, p.name, p.data, p.enabled, p.expect,
               (SELECT COUNT(*) FROM run_step s WHERE s.plan_id = p.plan_id) AS steps,
               (SELECT COUNT(*) FROM run_validation v WHERE v.plan_id = p.plan_id) AS validated_steps,
               (SELECT COUNT(*) FROM run_validation v WHERE v.plan_id = p.plan_id AND NOT v.ok) AS failing_steps,
               (SELECT e.status FROM run_execution e WHERE e.plan_id = p.plan_id
                ORDER BY e.execution_id DESC LIMIT 1) AS last_run
        FROM run_plan p ORDER BY p.plan_id"""
    with engine.connect() as conn:
        return pd.read_sql(text(sql), conn)
