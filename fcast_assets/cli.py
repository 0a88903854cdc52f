"""``fcast`` command line: scan libraries, search the registry, manage the metadata database."""

from __future__ import annotations

import sys

import click
from tabulate import tabulate

from . import config


def _engine():
    from .db.engine import get_engine

    return get_engine(config.db_url())


@click.group()
def main() -> None:
    """fcast: forecasting-library registry and lottery forecasting driven by SQL tables."""


@main.command()
@click.argument("libraries", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="scan every library of libraries.yaml")
def scan(libraries: tuple[str, ...], all_: bool) -> None:
    """Scan LIBRARIES (installed releases) into the registry tables."""
    from .registry import LibraryNotInstalledError, UnknownLibraryError, library_names, scan_and_store

    names = library_names() if all_ else list(libraries)
    if not names:
        raise click.UsageError(f"name a library ({', '.join(library_names())}) or pass --all")
    rows, failed = [], False
    for name in names:
        try:
            s = scan_and_store(name, _engine())
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
@click.option("--limit", "-n", default=20, show_default=True)
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


@main.group()
def db() -> None:
    """Metadata database: create tables, regenerate sql/."""


@db.command("init")
def db_init() -> None:
    """Create every table (and the full-text index) in FCAST_DB_URL or the SQLite default."""
    _engine()
    click.echo(f"initialised {config.db_url()}")


@db.command("ddl")
def db_ddl() -> None:
    """Rewrite sql/forecast_meta.postgresql.sql and sql/er.mmd from the models."""
    from .db import ddl

    for p in ddl.write():
        click.echo(f"wrote {p}")


if __name__ == "__main__":
    main()
