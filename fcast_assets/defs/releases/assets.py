"""Releases side by side: one partition per release listed in compat/releases.yaml (config, not code); the scan
and the matrix subset run in that release's own uv environment; an upgrade report per consecutive pair."""

import dagster as dg

from fcast_assets import config
from fcast_assets.compat.releases import (carry_misses, previous_listed, probe_release, release_config,
                                          scan_release, upgrade_report)
from fcast_assets.defs.resources import MetadataDB

release_partitions = dg.StaticPartitionsDefinition([str(s) for s in release_config()["releases"]])


def _spec(context: dg.AssetExecutionContext):
    return next(s for s in release_config()["releases"] if str(s) == context.partition_key)


@dg.asset(partitions_def=release_partitions, group_name="releases", kinds={"python", "uv"}, owners=["team:fcast"],
          description="Registry scan of one listed release (`library==version`), run in that release's own uv "
          "environment (built on first use under `$FCAST_HOME/envs`, then reused).")
def release_registry(context: dg.AssetExecutionContext, meta_db: MetadataDB) -> dg.MaterializeResult:
    s = scan_release(meta_db.engine(), _spec(context), log=context.log.info)
    return dg.MaterializeResult(data_version=dg.DataVersion(s["version"]), metadata={
        "version": s["version"], "status": s["status"], "release_id": s["release_id"],
        "environment": s.get("env", "-"), "env_seconds": s.get("env_seconds", 0.0),
        "env_cached": bool(s.get("env_cached", True)), "scan_seconds": s["scan_seconds"],
        "diff_vs_previous": dg.MetadataValue.json(s.get("diff") or {})})


@dg.asset(partitions_def=release_partitions, deps=[release_registry], group_name="releases", kinds={"python", "uv"},
          owners=["team:fcast"],
          description="The compatibility matrix subset of releases.yaml `probe` for one release, run in its own "
          "environment. With `carry_over: true`, only the cells the registry diff from the previous listed release "
          "touches run; the rest are carried over (marked in compat_result.context.carried_from).")
def release_matrix(context: dg.AssetExecutionContext, meta_db: MetadataDB) -> dg.MaterializeResult:
    cfg = release_config()
    spec = _spec(context)
    probe = cfg["probe"].get(spec.library) or {}
    prev = previous_listed(spec, cfg["releases"]) if cfg["carry_over"] else None
    engine = meta_db.engine()
    s = probe_release(engine, spec, models=probe.get("models"), families=probe.get("families"),
                      carry_from=prev.version if prev else None, log=context.log.info)
    misses = carry_misses(engine, spec.library, spec.version)
    return dg.MaterializeResult(metadata={
        "compat_run_id": s["compat_run_id"], "cells": s["cells"], "ran": s["ran"], "carried": s["carried"],
        "carried_from": prev.version if prev else "-", "counts": dg.MetadataValue.json(s["counts"]),
        "seconds": s["seconds"], "carry_misses": len(misses)})


@dg.asset(deps=[release_matrix], group_name="releases", kinds={"python", "markdown"}, owners=["team:fcast"],
          description="What changes if you upgrade: for each consecutive pair of listed releases of a library, the "
          "parameters added / removed / renamed, defaults changed and matrix cells that flipped, with messages "
          "(Markdown under `$FCAST_HOME/reports/upgrades/`).")
def upgrade_reports(context: dg.AssetExecutionContext, meta_db: MetadataDB) -> dg.MaterializeResult:
    engine = meta_db.engine()
    specs = release_config()["releases"]
    out = config.reports_dir() / "upgrades"
    out.mkdir(parents=True, exist_ok=True)
    written, pages = [], {}
    for spec in specs:
        prev = previous_listed(spec, specs)
        if prev is None:
            continue
        try:
            md = upgrade_report(engine, spec.library, prev.version, spec.version)
        except LookupError as e:  # a release not scanned yet: say so, keep the others
            context.log.warning(str(e))
            continue
        path = out / f"{spec.library}-{prev.version}-to-{spec.version}.md"
        path.write_text(md, encoding="utf-8")
        written.append(str(path))
        pages[f"{spec.library} {prev.version} → {spec.version}"] = md
    meta = {"reports": dg.MetadataValue.json(written)}
    for title, md in pages.items():
        meta[title] = dg.MetadataValue.md(md[:20000])
    return dg.MaterializeResult(metadata=meta)
