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


@plan.command("load")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
def plan_load(file: str) -> None:
    """Load a YAML or CSV plan FILE into run_plan / run_step (plans of the same name are replaced)."""
    from .loader import load_file, read_file

    ids = load_file(_engine(), file)
    click.echo(f"loaded {len(ids)} plan(s) from {file}: " + ", ".join(p["name"] for p in read_file(file)))


@plan.command("list")
def plan_list() -> None:
    """Plans with their steps, last validation and last execution."""
    from .loader import list_plans

    df = list_plans(_engine())
    if df.empty:
        click.echo("no plans: load some with `fcast plan load FILE`")
        return
    click.echo(tabulate(df.fillna("").values.tolist(), headers=list(df.columns)))


def _registry_ready(engine, library: str = "neuralforecast") -> None:  # noqa: ANN001
    from ..compat.registry_view import RegistryMissingError, latest_release

    try:
        latest_release(engine, library)
    except RegistryMissingError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(2)


@plan.command("validate")
@click.argument("file", required=False, type=click.Path(exists=True, dir_okay=False))
@click.option("--plan", "names", multiple=True, help="only these plans (default: all of FILE, or all stored)")
def plan_validate(file: str | None, names: tuple[str, ...]) -> None:
    """Check plans against the registry and the compatibility matrix; print the violations.

    With FILE the plans are loaded (stored) first. Exit code 1 when any plan has a violation."""
    from .loader import load_file, read_file
    from .validator import validate_plans, violations_frame

    engine = _engine()
    _registry_ready(engine)
    if file:
        load_file(engine, file)
        names = names or tuple(p["name"] for p in read_file(file))
    res = validate_plans(engine, list(names) or None)
    df = violations_frame(res)
    ok = [n for n, vs in res.items() if not vs]
    click.echo(f"{len(res)} plan(s): {len(ok)} valid, {len(res) - len(ok)} with violations")
    if not df.empty:
        rows = [[r.plan, r.step, _short(r.method), r.param or "", r.rule, _wrap(r.message, 60), _wrap(r.fix, 36)]
                for r in df.itertuples()]
        click.echo(tabulate(rows, headers=["plan", "step", "callable", "argument", "rule", "message", "fix"],
                            tablefmt="grid"))
        sys.exit(1)


@plan.command("run")
@click.argument("names", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="every plan, enabled or not")
def plan_run(names: tuple[str, ...], all_: bool) -> None:
    """Validate and execute NAMES (default: every enabled plan). Invalid plans are not executed.

    On a terminal a progress bar (plans done / total, current plan) is drawn on stderr."""
    from .loader import plan_names
    from .runner import run_plans

    engine = _engine()
    _registry_ready(engine)
    todo = list(names) or plan_names(engine, enabled_only=not all_)
    with terminal_progress("plan run", unit="plan") as bar:
        if bar is None:
            out = run_plans(engine, todo, enabled_only=not all_)
        else:  # one plan at a time, so the bar moves between plans
            out = []
            for i, n in enumerate(todo):
                bar(i, len(todo), n)
                out += run_plans(engine, [n], enabled_only=not all_)
                bar(i + 1, len(todo), n)
    rows = [[o["plan"], o["status"], o.get("execution_id") or "",
             " ".join(f"{k}:{v}" for k, v in (o.get("steps") or {}).items()) or "; ".join(o.get("violations", []))]
            for o in out]
    click.echo(tabulate(rows, headers=["plan", "status", "execution", "steps / violations"]))
    if any(o["status"] != "success" for o in out):
        sys.exit(1)
