"""``fcast plan``: load plan files into run_plan / run_step, list them, validate them, run them."""

from __future__ import annotations

import sys
import textwrap

import click
from tabulate import tabulate

from .. import config
from ..progress import terminal_progress


def _engine():
    from ..db.engine import get_engine

    return get_engine(config.db_url())


def _wrap(v, width: int) -> str:  # noqa: ANN001
    return "\n".join(textwrap.wrap(str(v), width)) if v is not None else ""


def _short(qualname: str) -> str:
    """neuralforecast.core.NeuralForecast.fit -> NeuralForecast.fit; neuralforecast.models.mlp.MLP -> MLP."""
    parts = qualname.split(".")
    if len(parts) >= 2 and parts[-2][:1].isupper():
        return ".".join(parts[-2:])
    return parts[-1]


@click.group()
def plan() -> None:
    """Table-driven execution: run plans, pre-flight validation, runner."""


def _read(file: str) -> list:
    """The plans of FILE, or one clear line naming the file, the line / row and the problem (exit 2). A plan that
    is no plan (a library plans cannot run, params that are not a mapping) or names an object outside the closed
    table (``__obj__``) is refused here, before anything is stored."""
    from .loader import PlanFileError, read_file
    from .safety import value_problems
    from .validator import plan_shape_problems

    try:
        plans = read_file(file)
    except PlanFileError as e:
        click.echo(f"error: {e}; nothing was loaded", err=True)
        sys.exit(2)
    except (ValueError, KeyError, TypeError, AttributeError, OSError) as e:
        click.echo(f"error: {file}: {type(e).__name__}: {e}; nothing was loaded", err=True)
        sys.exit(2)
    for p in plans:
        problems = [msg for _, msg in plan_shape_problems(p)]
        for i, st in enumerate(p["steps"]):
            if isinstance(st.get("params"), dict):
                problems += [f"step {i} {name}: {msg}" for name, msg in value_problems(st["params"])]
        if problems:
            click.echo(f"error: {file}: plan {p['name']!r}: {'; '.join(problems)}; fix the file (objects come only "
                       "from fcast_assets/compat/objects.yaml); nothing was loaded", err=True)
            sys.exit(2)
    return plans


ROOT_HELP = "a folder save / load paths and data files may use besides FCAST_HOME (repeatable)"


@plan.command("load")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
def plan_load(file: str) -> None:
    """Load a YAML or CSV plan FILE into run_plan / run_step (plans of the same name are replaced)."""
    from .loader import store_plans

    plans = _read(file)
    ids = store_plans(_engine(), plans)
    click.echo(f"loaded {len(ids)} plan(s) from {file}: " + ", ".join(p["name"] for p in plans))


@plan.command("delete")
@click.argument("names", nargs=-1, required=True)
def plan_delete(names: tuple[str, ...]) -> None:
    """Delete stored plans NAMES (steps, validations, executions); plans that trained a model version stay."""
    from .loader import delete_plan

    engine, failed = _engine(), False
    for n in names:
        try:
            delete_plan(engine, n)
            click.echo(f"deleted plan {n}")
        except (LookupError, ValueError) as e:
            click.echo(f"error: {e.args[0]}", err=True)
            failed = True
    if failed:
        sys.exit(1)


@plan.command("list")
def plan_list() -> None:
    """Plans with their steps, last validation and last execution."""
    from .loader import list_plans

    df = list_plans(_engine())
    if df.empty:
        click.echo("no plans: load some with `fcast plan load FILE`")
        return
    click.echo(tabulate(df.fillna("").values.tolist(), headers=list(df.columns)))


def _known(engine, names) -> None:  # noqa: ANN001
    """Unknown plan names: one line listing them and where the stored plans are shown (exit 2)."""
    from .loader import plan_names

    missing = [n for n in names if n not in set(plan_names(engine))]
    if missing:
        click.echo(f"error: no plan {', '.join(repr(n) for n in missing)}: `fcast plan list` shows the stored plans; "
                   "load one with `fcast plan load FILE`", err=True)
        sys.exit(2)


def _registry_ready(engine, library: str = "neuralforecast") -> None:  # noqa: ANN001
    from ..registry.view import RegistryMissingError, latest_release

    try:
        latest_release(engine, library)
    except RegistryMissingError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(2)


@plan.command("validate")
@click.argument("file", required=False, type=click.Path(exists=True, dir_okay=False))
@click.option("--plan", "names", multiple=True, help="only these plans (default: all of FILE, or all stored)")
@click.option("--root", "roots", multiple=True, type=click.Path(file_okay=False), help=ROOT_HELP)
@click.option("--no-miniature", is_flag=True, help="skip the miniature run of each plan on its own data")
def plan_validate(file: str | None, names: tuple[str, ...], roots: tuple[str, ...], no_miniature: bool) -> None:
    """Check plans against the registry rules, the compatibility matrix cells whose scenario matches, and a
    miniature run of each plan on its own data; print the violations with the layer that found them.

    With FILE the plans are loaded (stored) first. Exit code 1 when any plan has a violation."""
    from .loader import store_plans
    from .validator import validate_plans, violations_frame

    engine = _engine()
    _registry_ready(engine)
    if file:
        plans = _read(file)
        store_plans(engine, plans)
        names = names or tuple(p["name"] for p in plans)
    _known(engine, names)
    res = validate_plans(engine, list(names) or None, miniature=False if no_miniature else None,
                         roots=list(roots) or None)
    df = violations_frame(res)
    ok = [n for n, vs in res.items() if not vs]
    click.echo(f"{len(res)} plan(s): {len(ok)} valid, {len(res) - len(ok)} with violations")
    if not df.empty:
        rows = [[r.plan, r.step, _short(r.method), r.param or "", r.rule, r.layer, _wrap(r.message, 60),
                 _wrap(r.fix, 36)] for r in df.itertuples()]
        click.echo(tabulate(rows, headers=["plan", "step", "callable", "argument", "rule", "layer", "message",
                                           "fix"], tablefmt="grid"))
        sys.exit(1)


@plan.command("run")
@click.argument("names", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="every plan, enabled or not")
@click.option("--root", "roots", multiple=True, type=click.Path(file_okay=False), help=ROOT_HELP)
@click.option("--no-miniature", is_flag=True, help="skip the miniature run before each real run")
def plan_run(names: tuple[str, ...], all_: bool, roots: tuple[str, ...], no_miniature: bool) -> None:
    """Validate and execute NAMES (default: every enabled plan). Invalid plans are not executed.

    On a terminal a progress bar (plans done / total, current plan) is drawn on stderr."""
    from .loader import plan_names
    from .runner import run_plans

    engine = _engine()
    _registry_ready(engine)
    _known(engine, names)
    todo = list(names) or plan_names(engine, enabled_only=not all_)
    kw = {"roots": list(roots) or None, "miniature": False if no_miniature else None}
    with terminal_progress("plan run", unit="plan") as bar:
        if bar is None:
            out = run_plans(engine, todo, enabled_only=not all_, **kw)
        else:  # one plan at a time, so the bar moves between plans
            out = []
            for i, n in enumerate(todo):
                bar(i, len(todo), n)
                out += run_plans(engine, [n], enabled_only=not all_, **kw)
                bar(i + 1, len(todo), n)
    rows = [[o["plan"], o["status"], o.get("execution_id") or "",
             " ".join(f"{k}:{v}" for k, v in (o.get("steps") or {}).items()) or "; ".join(o.get("violations", []))]
            for o in out]
    click.echo(tabulate(rows, headers=["plan", "status", "execution", "steps / violations"]))
    if any(o["status"] != "success" for o in out):
        sys.exit(1)
