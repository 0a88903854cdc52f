"""``fcast releases``: several releases of a library side by side — environments, scans, matrices, version ranges
and upgrade reports (:mod:`fcast_assets.compat.releases`)."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from tabulate import tabulate

from .. import config


def _engine():
    from ..db.engine import get_engine

    return get_engine(config.db_url())


def _spec(text: str):
    from ..registry.envs import ReleaseSpecError, parse_spec
    from ..registry.libraries import UnknownLibraryError

    try:
        return parse_spec(text)
    except (ReleaseSpecError, UnknownLibraryError) as e:
        raise click.UsageError(str(e)) from e


def _fail(e: Exception) -> None:
    click.echo(f"error: {e}", err=True)
    sys.exit(1)


@click.group()
def releases() -> None:
    """Releases side by side: one uv environment per release, the same scan and matrix run inside it."""


@releases.command("env")
@click.argument("spec")
@click.option("--rebuild", is_flag=True, help="build the environment again even if one is cached")
def env_cmd(spec: str, rebuild: bool) -> None:
    """Build (or reuse) the environment of SPEC (library==version)."""
    from ..registry.envs import EnvBuildError, ReleaseSpecError, ensure_env

    try:
        e = ensure_env(_spec(spec), rebuild=rebuild)
    except (EnvBuildError, ReleaseSpecError) as err:
        _fail(err)
    click.echo(f"{e.spec}: {e.folder} ({'cached' if e.cached else 'built'} in {e.seconds:.1f}s, "
               f"{len(e.packages)} packages)")
    if e.unpinned:
        said = [f"{n} {e.packages.get(n.lower(), '?')} (the project has {v})" if v else n
                for n, _, v in (x.partition("==") for x in e.unpinned)]
        click.echo(f"not at the project's versions (the release needs others): {'; '.join(said)}")


@releases.command("scan")
@click.argument("specs", nargs=-1, required=True)
@click.option("--rebuild", is_flag=True, help="rebuild the environments first")
def scan_cmd(specs: tuple[str, ...], rebuild: bool) -> None:
    """Scan each SPEC (library==version, or library for the release installed here) into the registry."""
    from ..registry.envs import EnvBuildError
    from .releases import ReleaseRunError, scan_release

    rows = []
    for text in specs:
        try:
            s = scan_release(_engine(), _spec(text), rebuild=rebuild)
        except (EnvBuildError, ReleaseRunError) as e:
            _fail(e)
        rows.append([s["library"], s["version"], s["status"], s.get("env_seconds", "-"), s["scan_seconds"],
                     ", ".join(f"{k} {v}" for k, v in sorted((s.get("diff") or {}).items())) or "-"])
    click.echo(tabulate(rows, headers=["library", "version", "status", "env s", "scan s", "diff vs previous"]))


@releases.command("probe")
@click.argument("spec")
@click.option("--model", "-m", "models", multiple=True, help="model class name (repeatable)")
@click.option("--family", "-f", "families", multiple=True, help="method short name or param (repeatable)")
@click.option("--carry-from", default=None, help="re-run only the cells the registry diff from this release "
              "touches; carry the others over")
@click.option("--workers", "-w", default=2, show_default=True)
@click.option("--timeout", "cell_timeout", default=60.0, show_default=True, help="seconds per cell")
def probe_cmd(spec, models, families, carry_from, workers, cell_timeout) -> None:
    """Run the compatibility matrix of SPEC in its own environment."""
    from ..registry.envs import EnvBuildError
    from .releases import ReleaseRunError, probe_release

    try:
        s = probe_release(_engine(), _spec(spec), models=list(models) or None, families=list(families) or None,
                          workers=workers, cell_timeout=cell_timeout, carry_from=carry_from)
    except (EnvBuildError, ReleaseRunError, LookupError) as e:
        _fail(e)
    click.echo(f"{s['library']} {s['version']}: compat run {s['compat_run_id']}, {s['cells']} cells "
               f"({', '.join(f'{k} {v}' for k, v in sorted(s['counts'].items()))}); ran {s['ran']}, "
               f"carried {s['carried']}" + (f" from {carry_from}" if carry_from else "") + f"; {s['seconds']}s")


@releases.command("ranges")
@click.argument("library")
@click.option("--model", "-m", default=None)
@click.option("--param", "-p", default=None)
def ranges_cmd(library: str, model: str | None, param: str | None) -> None:
    """Per cell, the status in every probed release and the release ranges where it runs / errors."""
    from .releases import version_ranges

    df = version_ranges(_engine(), library)
    if df.empty:
        _fail(LookupError(f"no compat results for {library}: `fcast releases probe {library}==<version>` first"))
    if model:
        df = df[df["model"] == model]
    if param:
        df = df[df["param"] == param]
    click.echo(tabulate(df, headers="keys", showindex=False))


@releases.command("report")
@click.argument("library")
@click.argument("from_version")
@click.argument("to_version")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="write the Markdown here")
def report_cmd(library: str, from_version: str, to_version: str, out: Path | None) -> None:
    """What changes if you upgrade LIBRARY from FROM_VERSION to TO_VERSION (Markdown)."""
    from .releases import upgrade_report

    try:
        md = upgrade_report(_engine(), library, from_version, to_version)
    except LookupError as e:
        _fail(e)
    if out:
        out.write_text(md, encoding="utf-8")
        click.echo(f"wrote {out}")
    else:
        click.echo(md)


@releases.command("rerun")
@click.argument("result_id", type=int)
def rerun_cmd(result_id: int) -> None:
    """Re-run one compat_result row in its own release's environment."""
    from .releases import ReleaseRunError, rerun_in_release

    try:
        r = rerun_in_release(_engine(), result_id)
    except (LookupError, ReleaseRunError) as e:
        _fail(e)
    click.echo(f"cell {result_id}: before {r['before']['status']} {r['before']['exception_type'] or ''} -> "
               f"now {r['after']['status']} {r['after']['exception_type'] or ''} "
               f"({'reproduced' if r['reproduced'] else 'DIFFERENT'}; compat run {r['compat_run_id']})")
