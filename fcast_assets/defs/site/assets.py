"""Site stage: the documentation site's generated pages (correspondence tables of every probed library, the
registry) written from the metadata database, then ``mkdocs build --strict`` (fcast_assets.site.build)."""


from pathlib import Path

import dagster as dg

from fcast_assets.defs.compat.assets import compat_matrix
from fcast_assets.defs.registry.assets import library_registry
from fcast_assets.defs.resources import MetadataDB
from fcast_assets.site.build import build_site, default_out


class SiteConfig(dg.Config):
    out: str = ""  # folder for pages/ and html/; empty = build/site of the checkout
    strict: bool = True  # mkdocs build --strict: a broken link or nav entry fails the build


@dg.asset(
    deps=[compat_matrix, library_registry],
    group_name="site",
    kinds={"python", "sqlite", "postgres"},
    owners=["team:fcast"],
    description="The documentation site: one page per library and per (library, method, param) correspondence "
    "table (✓ / ✗ / ⚠ with the exception and its message, the scenario of each cell, a filter box), the registry "
    "pages (parameters, types, defaults, allowed values, capabilities), the README, design, API reference and "
    "notebooks; built with mkdocs build --strict.",
)
def site_pages(context: dg.AssetExecutionContext, config: SiteConfig, meta_db: MetadataDB) -> dg.MaterializeResult:
    out = Path(config.out) if config.out else default_out()
    s = build_site(meta_db.engine(), out, strict=config.strict)
    libs = s["matrix"]["libraries"]
    context.log.info(f"site: {s['matrix']['tables']} correspondence tables of {len(libs)} libraries, built in "
                     f"{s['seconds']}s into {s['html']}")
    return dg.MaterializeResult(metadata={
        "html": dg.MetadataValue.path(str(Path(s["html"]) / "index.html")),
        "pages": dg.MetadataValue.path(s["pages"]),
        "tables": s["matrix"]["tables"],
        "cells": s["matrix"]["cells"],
        "libraries": dg.MetadataValue.md("\n".join(
            f"- {k} {v['version']}: {v['tables']} tables, {v['cells']} cells" for k, v in libs.items()) or "none"),
        "registry_libraries": len(s["registry"]),
        "mkdocs_seconds": s["mkdocs_seconds"],
        "seconds": s["seconds"],
        "database": meta_db.display_url(),
    })
