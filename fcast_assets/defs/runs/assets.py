"""Runs stage: table-driven execution. ``run_plans`` loads the plan files into run_plan / run_step and validates
every plan against the registry and the compatibility matrix (run_validation); ``plan_executions`` runs the
enabled plans that passed, step by step (run_result, run_metric, run_error, run_artifact, run_resource)."""


from pathlib import Path

import dagster as dg

from fcast_assets.defs.compat.assets import compat_matrix
from fcast_assets.defs.registry.assets import library_registry
from fcast_assets.defs.resources import MetadataDB

REPO_ROOT = Path(__file__).resolve().parents[3]


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
    return dg.MaterializeResult(metadata={
        "plans": len(res),
        "valid": len(valid),
        "with_violations": len(res) - len(valid),
        "valid_plans": dg.MetadataValue.md("\n".join(f"- {n}" for n in valid) or "none"),
        "violations": dg.MetadataValue.md(df.to_markdown(index=False) if not df.empty else "none"),
        "plan_list": dg.MetadataValue.md(list_plans(engine).to_markdown(index=False)),
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
    from fcast_assets.plans.runner import run_plans as execute

    engine = meta_db.engine()
    out = execute(engine, config.plans or None, work_root=config.work_root or None)
    for o in out:
        context.log.info(f"plan {o['plan']}: {o['status']}")
    counts: dict[str, int] = {}
    for o in out:
        counts[o["status"]] = counts.get(o["status"], 0) + 1
    table = "\n".join(["| plan | status | execution | steps |", "|---|---|---|---|"] + [
        f"| {o['plan']} | {o['status']} | {o.get('execution_id') or ''} | "
        f"{' '.join(f'{k}:{v}' for k, v in (o.get('steps') or {}).items()) or '; '.join(o.get('violations', []))} |"
        for o in out])
    return dg.MaterializeResult(metadata={
        "plans": len(out), **{f"plans_{k}": v for k, v in sorted(counts.items())},
        "executions": dg.MetadataValue.md(table),
    })
