"""``fcast site``: the documentation site's generated pages (correspondence tables, registry) from the metadata
database, then ``mkdocs build --strict``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .. import config


def _engine():
    """The ``fcast`` group's metadata database resource (the same ``MetadataDB`` the assets get) when this group
    runs under it, else FCAST_DB_URL / the SQLite default."""
    from ..db.engine import get_engine

    ctx = click.get_current_context(silent=True)
    obj = ctx.find_root().obj if ctx is not None else None
    try:
        return obj["meta_db"].engine() if obj is not None else get_engine(config.db_url())
    except (KeyError, TypeError):
        return get_engine(config.db_url())


@click.group()
def site() -> None:
    """Documentation site: correspondence tables and registry pages generated from the database."""


@site.command("build")
@click.option("--out", "out", default=None, type=click.Path(file_okay=False),
              help="folder for pages/ (generated Markdown) and html/ (the site)  [default: build/site of the checkout]")
@click.option("--no-strict", "no_strict", is_flag=True, help="build without mkdocs' --strict")
def build_cmd(out: str | None, no_strict: bool) -> None:
    """Generate one page per library and per (library, method, param) table, and the registry pages, from the
    metadata database; then run `mkdocs build --strict` (serve the result with `uv run mkdocs serve`)."""
    from .build import SiteBuildError, build_site, default_out

    target = Path(out) if out else default_out()
    try:
        s = build_site(_engine(), target, strict=not no_strict)
    except SiteBuildError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(1)
    libs = ", ".join(f"{k} {v['version']} ({v['tables']} tables)" for k, v in s["matrix"]["libraries"].items())
    click.echo(f"correspondence tables: {s['matrix']['tables']} tables, {s['matrix']['cells']} cells"
               + (f" — {libs}" if libs else " (no compat results yet: `fcast compat --run`)"))
    reg = ", ".join(f"{k} {v['version']}" for k, v in s["registry"].items())
    click.echo(f"registry: {reg or 'nothing scanned'}")
    click.echo(f"site built in {s['seconds']}s: {Path(s['html']) / 'index.html'} (pages: {s['pages']})")
