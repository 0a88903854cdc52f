"""``fcast`` command line: scan libraries, search the registry, manage the metadata database."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any

import click
from tabulate import tabulate

from .config import mask
from .progress import terminal_progress


class CliResources(Mapping):
    """The CLI's resources: the same typed Dagster resources the assets get (:mod:`fcast_assets.defs.resources`),
    ``meta_db = MetadataDB()`` and ``lake = Lake()``, so the command line and the UI share one configuration
    (FCAST_DB_URL / FCAST_LAKE, else the defaults under FCAST_HOME). Built on first use (Dagster is imported only
    by a command that needs the database or the lake, not by ``--help`` or a usage error). The ``fcast`` group
    keeps one in ``ctx.obj``; the sub-command groups (``fcast game`` ...) read it from there."""

    KEYS = ("meta_db", "lake")

    def __init__(self) -> None:
        self._built: dict[str, Any] | None = None

    def _build(self) -> dict[str, Any]:
        if self._built is None:
            from .defs.resources import Lake, MetadataDB

            self._built = {"meta_db": MetadataDB(), "lake": Lake()}
        return self._built

    def __getitem__(self, key: str) -> Any:
        if key not in self.KEYS:
            raise KeyError(key)
        return self._build()[key]

    def __iter__(self):  # noqa: ANN204
        return iter(self.KEYS)

    def __len__(self) -> int:
        return len(self.KEYS)


def _resources() -> CliResources:
    """The current command's resources (a fresh set outside a command, e.g. in a test calling a helper)."""
    ctx = click.get_current_context(silent=True)
    root = ctx.find_root() if ctx is not None else None
    if root is not None and isinstance(root.obj, CliResources):
        return root.obj
    res = CliResources()
    if root is not None and root.obj is None:
        root.obj = res
    return res


def _engine():
    return _resources()["meta_db"].engine()


def _db_display_url() -> str:
    """The metadata database URL the resource resolves, password masked."""
    return mask(_resources()["meta_db"].resolved_url())




def _usage_line(e: click.UsageError) -> None:
    """A usage error (unknown option, wrong type, missing argument) as one line: what, and where to look."""
    if isinstance(e, click.exceptions.NoArgsIsHelpError):  # `fcast` / `fcast plan` alone: the help text
        e.show()
        sys.exit(e.exit_code)
    where = e.ctx.command_path if e.ctx is not None else "fcast"
    click.echo(f"error: {e.format_message()} (see `{where} --help`)", err=True)
    sys.exit(e.exit_code)


def _db_problem(e: Exception) -> tuple[str, int] | None:
    """One line for a metadata database that cannot be used: a URL SQLAlchemy cannot read, a server that does not
    answer, a SQLite file that cannot be opened. None for other errors."""
    from sqlalchemy.exc import ArgumentError, OperationalError

    url = _db_display_url()
    if isinstance(e, ArgumentError) and ("URL" in str(e) or "plugin" in str(e) or "dialect" in str(e)):
        return (f"FCAST_DB_URL {url!r} is not a database URL fcast can use ({' '.join(str(e).split())[:160]}); "
                "use sqlite:///PATH/forecast_meta.db or postgresql+psycopg://USER:PASSWORD@HOST:PORT/DB", 2)
    if isinstance(e, OperationalError):
        orig = " ".join(str(getattr(e, "orig", None) or e).split())
        if "unable to open database file" in orig:
            return (f"cannot open the SQLite metadata database {url}: {orig}; check that its folder exists and is "
                    "writable, or set FCAST_DB_URL / FCAST_HOME", 1)
        if any(w in orig.lower() for w in ("connection", "could not connect", "connect to server",
                                          "authentication failed", "does not exist", "timeout expired")):
            return (f"cannot connect to the metadata database {url}: {orig[:300]}; check that the server is running "
                    "and FCAST_DB_URL (host, port, user, password, database)", 1)
    return None


class _Main(click.Group):
    """The fcast group: every failure ends with one line (what happened, and what to do where known) and a
    non-zero exit; ``fcast --debug ...`` (or FCAST_DEBUG=1) shows the traceback instead. Passwords in URLs are
    never printed. Usage errors are one line too (exit 2). A SQLite database that another process is writing (one
    writer at a time; Windows locks the file), or a lock held by another fcast process (:mod:`.locks`), gets its
    own message and exit code 3."""

    def make_context(self, info_name, args, parent=None, **extra):  # noqa: ANN001, ANN201
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as e:
            _usage_line(e)

    def invoke(self, ctx: click.Context):  # noqa: ANN201
        from sqlalchemy.exc import OperationalError

        from .locks import LockBusyError

        try:
            return super().invoke(ctx)
        except click.UsageError as e:
            if ctx.params.get("debug") or os.environ.get("FCAST_DEBUG") == "1":
                raise
            _usage_line(e)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException, SystemExit):
            raise
        except Exception as e:  # noqa: BLE001 - one line unless --debug
            if ctx.params.get("debug") or os.environ.get("FCAST_DEBUG") == "1":
                raise
            if isinstance(e, LockBusyError):
                click.echo(f"error: {mask(str(e))}", err=True)
                sys.exit(3)
            if isinstance(e, OperationalError) and "database is locked" in str(e):
                click.echo(f"error: the metadata database ({_db_display_url()}) is being written by another "
                           "process; SQLite allows one writer at a time: wait for it to finish, or use PostgreSQL "
                           "(FCAST_DB_URL)", err=True)
                sys.exit(3)
            db = _db_problem(e)
            if db is not None:
                click.echo(f"error: {mask(db[0])}", err=True)
                sys.exit(db[1])
            text = " ".join(str(e).split())[:500]
            click.echo(f"error: {type(e).__name__}: {mask(text)} (run `fcast --debug ...` for the traceback)",
                       err=True)
            sys.exit(2 if isinstance(e, (LookupError, ValueError, TypeError)) else 1)


@click.group(cls=_Main)
@click.option("--debug", is_flag=True, help="show the traceback of a failure instead of one line")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """fcast: forecasting-library registry and lottery forecasting driven by SQL tables."""
    if not isinstance(ctx.obj, CliResources):
        ctx.obj = CliResources()


@main.command()
@click.argument("libraries", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="scan every library of libraries.yaml")
def scan(libraries: tuple[str, ...], all_: bool) -> None:
    """Scan LIBRARIES (installed releases) into the registry tables.

    On a terminal a progress bar (modules walked) is drawn on stderr; nothing when stderr is redirected."""
    from .registry import LibraryNotInstalledError, UnknownLibraryError, library_names, scan_and_store

    names = library_names() if all_ else list(libraries)
    if not names:
        raise click.UsageError(f"name a library ({', '.join(library_names())}) or pass --all")
    rows, failed = [], False
    for name in names:
        try:
            if "==" in name:  # another release: scanned in its own environment (fcast releases scan)
                from .compat.releases import scan_release
                from .registry.envs import EnvBuildError, ReleaseSpecError, is_installed_release, parse_spec

                try:
                    spec = parse_spec(name)
                    if not is_installed_release(spec):
                        s = scan_release(_engine(), spec)
                        c = s["counts"]
                        rows.append([spec.library, s["version"], s["status"], c.get("modules"), c.get("classes"),
                                     c.get("functions"), c.get("methods"), c.get("parameters"),
                                     c.get("import_failures"), s["scan_seconds"]])
                        continue
                    name = spec.library
                except (ReleaseSpecError, EnvBuildError) as e:
                    click.echo(f"error: {e}", err=True)
                    failed = True
                    continue
            with terminal_progress(f"scan {name}", unit="module") as bar:
                s = scan_and_store(name, _engine(), progress=bar)
        except (UnknownLibraryError, LibraryNotInstalledError) as e:
            click.echo(f"error: {e}", err=True)
            failed = True
            continue
        c = s["counts"]
        rows.append([name, s["version"], s["status"], c["modules"], c["classes"], c["functions"], c["methods"],
                     c["parameters"], c["import_failures"], s["scan_seconds"]])
    if rows:
        click.echo(tabulate(rows, headers=["library", "version", "status", "modules", "classes", "functions",
                                           "methods", "params", "import fails", "seconds"]))
    if failed:
        sys.exit(1)


@main.command()
@click.argument("query")
@click.option("--library", "-l", default=None, help="only this library")
@click.option("--kind", "-k", default=None,
              type=click.Choice(["module", "class", "function", "method", "property", "parameter"]))
@click.option("--limit", "-n", default=20, show_default=True, type=click.IntRange(1, 10000))
def search(query: str, library: str | None, kind: str | None, limit: int) -> None:
    """Full-text search over qualnames, parameter names and docstrings."""
    from .registry.search import search as do_search

    try:
        rows = do_search(_engine(), query, library=library, kind=kind, limit=limit)
    except ValueError as e:
        raise click.UsageError(str(e)) from e
    if not rows:
        click.echo(f"no match for {query!r}")
        return
    click.echo(tabulate([[r["library"], r["kind"], r["qualname"], " ".join(r["snippet"].split())[:70]] for r in rows],
                        headers=["library", "kind", "qualname", "doc"]))


@main.command()
@click.option("--run", "run_", is_flag=True, help="execute the matrix (all models unless --model)")
@click.option("--library", "-l", default="neuralforecast", show_default=True)
@click.option("--model", "-m", "models", multiple=True, help="model class name (repeatable)")
@click.option("--family", "-f", "families", multiple=True, help="method short name or param (repeatable)")
@click.option("--workers", "-w", default=2, show_default=True)
@click.option("--timeout", "cell_timeout", default=60.0, show_default=True, help="seconds per cell")
@click.option("--auto-timeout", "auto_cell_timeout", default=None, type=click.FloatRange(min=0, min_open=True),
              help="seconds per Auto cell (a hyper-parameter search)  [default: 3 x --timeout]")
@click.option("--method", default=None, help="show the correspondence table of this method (e.g. predict)")
@click.option("--param", default=None, help="... and this parameter (e.g. level)")
@click.option("--rerun", type=int, default=None, help="re-run one cell from its compat_result row (result_id)")
@click.option("--report", "report", default=None, type=click.Path(), help="write the Markdown report here")
def compat(run_, library, models, families, workers, cell_timeout, auto_cell_timeout, method, param, rerun,
           report) -> None:
    """Compatibility matrix: run it, show a (method, param) table, re-run a cell, write the report.

    With --run on a terminal a progress bar (cells done / total, current model) is drawn on stderr. A cell that
    times out is retried once in a fresh process before it is recorded as a timeout."""
    from pathlib import Path

    from .compat.probe import run_matrix
    from .compat.tables import LEGEND, correspondence, rerun_cell, write_report

    engine = _engine()
    if not (run_ or rerun or report or (method and param)):
        raise click.UsageError("give --run, --method and --param, --rerun ID or --report FILE")
    if "==" in library:  # another release: its matrix runs in its own environment (fcast releases probe)
        from .compat.releases import ReleaseRunError, probe_release
        from .registry.envs import EnvBuildError, ReleaseSpecError, parse_spec

        try:
            spec = parse_spec(library)
        except ReleaseSpecError as e:
            raise click.UsageError(str(e)) from e
        library = spec.library
        if run_:
            try:
                s = probe_release(engine, spec, models=list(models) or None, families=list(families) or None,
                                  workers=workers, cell_timeout=cell_timeout)
            except (EnvBuildError, ReleaseRunError) as e:
                click.echo(f"error: {e}", err=True)
                sys.exit(1)
            click.echo(f"compat run {s['compat_run_id']} ({spec}, {s['env']}): {s['cells']} cells in "
                       f"{s['seconds']}s ({', '.join(f'{k} {v}' for k, v in sorted(s['counts'].items()))})")
            run_ = False
    if run_:
        with terminal_progress(f"compat {library}", unit="cell") as bar:
            s = run_matrix(engine, library, models=list(models) or None, families=list(families) or None,
                           workers=workers, cell_timeout=cell_timeout, auto_cell_timeout=auto_cell_timeout,
                           progress=bar)
        click.echo(f"compat run {s['compat_run_id']}: {s['cells']} cells in {s['wall_seconds']}s "
                   f"({', '.join(f'{k} {v}' for k, v in sorted(s['counts'].items()))}); "
                   f"capability mismatches: {len(s['capability_mismatches'])}")
    if rerun is not None:
        try:
            r = rerun_cell(engine, rerun)
        except LookupError as e:
            raise click.UsageError(str(e)) from e
        click.echo(f"cell {rerun}: before {r['before']['status']} {r['before']['exception_type'] or ''} -> "
                   f"now {r['after']['status']} {r['after']['exception_type'] or ''} "
                   f"({'reproduced' if r['reproduced'] else 'DIFFERENT'}; compat run {r['compat_run_id']})")
    if method and param:
        try:
            tables = correspondence(engine, method, param, library)
        except LookupError as e:
            raise click.UsageError(str(e)) from e
        for meth, table in tables:
            click.echo(f"{meth} · {param}")
            click.echo(tabulate(table.reset_index(), headers="keys", showindex=False))
        click.echo("\n".join(x.replace("**", "") for x in LEGEND))
    if report:
        click.echo(f"wrote {write_report(engine, Path(report), library)}")


@main.group()
def db() -> None:
    """Metadata database: create tables, regenerate sql/."""


@db.command("init")
def db_init() -> None:
    """Create every table (and the full-text index) in FCAST_DB_URL or the SQLite default."""
    _engine()
    click.echo(f"initialised {_db_display_url()}")


@db.command("ddl")
def db_ddl() -> None:
    """Rewrite sql/forecast_meta.postgresql.sql and sql/er.mmd from the models."""
    from .db import ddl

    for p in ddl.write():
        click.echo(f"wrote {p}")


from .lake.cli import game as _game_group  # noqa: E402

main.add_command(_game_group)

from .plans.cli import plan as _plan_group  # noqa: E402

main.add_command(_plan_group)

from .models.cli import model as _model_group  # noqa: E402

main.add_command(_model_group)

from .site.cli import site as _site_group  # noqa: E402

main.add_command(_site_group)

from .compat.cli import releases as _releases_group  # noqa: E402

main.add_command(_releases_group)


if __name__ == "__main__":
    main()
