"""Runs stage: table-driven execution. ``run_plans`` loads the plan files into run_plan / run_step and validates
every plan against the registry and the compatibility matrix (run_validation); ``plan_executions`` runs the
enabled plans that passed, step by step (run_result, run_metric, run_error, run_artifact, run_resource)."""


from pathlib import Path

import dagster as dg
import pandas as pd
from sqlalchemy import text

from fcast_assets.db.run_models import RunPlan, RunResult
from fcast_assets.defs.compat.assets import compat_matrix
from fcast_assets.defs.metadata import sql_table_schema, table_metadata
from fcast_assets.defs.registry.assets import library_registry
from fcast_assets.defs.resources import MetadataDB

REPO_ROOT = Path(__file__).resolve().parents[3]


def _count(engine, table: str, where: str = "", params: dict | None = None) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(f"SELECT COUNT(*) FROM {table} {where}"), params or {}).scalar())


def _in(ids: list[int]) -> str:
    return ", ".join(str(int(i)) for i in ids) or "NULL"


class RunPlansConfig(dg.Config):
    plan_files: list[str] = ["plans/examples.yaml"]  # relative to the repository root, or absolute


class PlanExecutionsConfig(dg.Config):
    plans: list[str] = []  # plan names; empty = every enabled plan
    work_root: str = ""  # empty = FCAST_HOME/runs


@dg.asset(
    deps=[library_registry, compat_matrix],
    group_name="runs",
    kinds={"python", "yaml", "sqlite", "postgres"},
    owners=["team:fcast"],
    description="Run plans (run_plan / run_step) loaded from the plan files and validated before anything runs: "
    "unknown / missing arguments, types, enums, ranges, cross-argument rules, matrix errors (run_validation).",
)
def run_plans(context: dg.AssetExecutionContext, config: RunPlansConfig, meta_db: MetadataDB) -> dg.MaterializeResult:
    from fcast_assets.plans.loader import list_plans, load_file
    from fcast_assets.plans.validator import validate_plans, violations_frame

    engine = meta_db.engine()
    for f in config.plan_files:
        path = Path(f) if Path(f).is_absolute() else REPO_ROOT / f
        load_file(engine, path)
        context.log.info(f"loaded plans from {path}")
    res = validate_plans(engine)
    df = violations_frame(res)
    valid = sorted(n for n, vs in res.items() if not vs)
    plans = list_plans(engine)
    return dg.MaterializeResult(metadata={
        **table_metadata(len(plans), sql_table_schema(RunPlan.__table__),
                         plans[["plan_id", "name", "data", "enabled", "steps", "failing_steps", "last_run"]]),
        "run_step_rows": _count(engine, "run_step"),
        "run_validation_rows": _count(engine, "run_validation"),
        "plans": len(res),
        "valid": len(valid),
        "with_violations": len(res) - len(valid),
        "valid_plans": dg.MetadataValue.md("\n".join(f"- {n}" for n in valid) or "none"),
        "violations": dg.MetadataValue.md(df.to_markdown(index=False) if not df.empty else "none"),
        "plan_list": dg.MetadataValue.md(plans.to_markdown(index=False)),
    })


@dg.asset(
    deps=[run_plans],
    group_name="runs",
    kinds={"python", "pytorch", "sqlite", "postgres"},
    owners=["team:fcast"],
    description="Executions of the enabled, validated plans: per step status, timings, metrics, errors with "
    "traceback, artifacts and resources. A failed step is recorded and does not lose the results of the others.",
)
def plan_executions(context: dg.AssetExecutionContext, config: PlanExecutionsConfig,
                    meta_db: MetadataDB) -> dg.MaterializeResult:
    from fcast_assets.plans.loader import plan_names
    from fcast_assets.plans.runner import run_plans as execute

    engine = meta_db.engine()
    names = config.plans or plan_names(engine, enabled_only=True)
    out = []
    for i, name in enumerate(names):  # one plan at a time: progress in the run's log
        context.log.info(f"plans: {i}/{len(names)} done (current {name})")
        out += execute(engine, [name], work_root=config.work_root or None)
        context.log.info(f"plan {name}: {out[-1]['status']}")
    context.log.info(f"plans: {len(names)}/{len(names)} done")
    counts: dict[str, int] = {}
    for o in out:
        counts[o["status"]] = counts.get(o["status"], 0) + 1
    table = "\n".join(["| plan | status | execution | steps |", "|---|---|---|---|"] + [
        f"| {o['plan']} | {o['status']} | {o.get('execution_id') or ''} | "
        f"{' '.join(f'{k}:{v}' for k, v in (o.get('steps') or {}).items()) or '; '.join(o.get('violations', []))} |"
        for o in out])
    eids = [o["execution_id"] for o in out if o.get("execution_id")]
    with engine.connect() as conn:
        results = pd.read_sql(text(f"""
            SELECT p.name AS plan, r.execution_id, s.ord AS step, s.name AS step_name, r.status, r.started_at,
                   r.ended_at
            FROM run_result r JOIN run_step s ON s.step_id = r.step_id JOIN run_plan p ON p.plan_id = s.plan_id
            WHERE r.execution_id IN ({_in(eids)}) ORDER BY r.execution_id, s.ord"""), conn)
    where = f"WHERE execution_id IN ({_in(eids)})"
    return dg.MaterializeResult(metadata={
        **table_metadata(len(results), sql_table_schema(RunResult.__table__), results, rows=20),
        **{f"{t}_rows": _count(engine, t, where) for t in ("run_metric", "run_error", "run_artifact",
                                                           "run_resource")},
        "plans": len(out), **{f"plans_{k}": v for k, v in sorted(counts.items())},
        "executions": dg.MetadataValue.md(table),
    })
