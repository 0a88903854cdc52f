"""Registry stage: installed library releases (observed) and the registry scan (one partition per library)."""


import dagster as dg

from fcast_assets.db.models import RegistrySymbol
from fcast_assets.defs.metadata import preview, sql_table_schema
from fcast_assets.defs.resources import MetadataDB
from fcast_assets.registry import get_library, installed_version, library_names, scan_and_store
from fcast_assets.registry.tables import classes_preview

library_partitions = dg.StaticPartitionsDefinition(library_names())

NOT_INSTALLED = "not-installed"


@dg.observable_source_asset(
    partitions_def=library_partitions,
    group_name="registry",
    description="Installed release of each scanned library, observed as its data version: a new release "
    "marks that library's registry partition stale.",
    automation_condition=dg.AutomationCondition.cron_tick_passed("0 * * * *"),
)
def library_release() -> dg.DataVersionsByPartition:
    return dg.DataVersionsByPartition(
        {name: installed_version(get_library(name)) or NOT_INSTALLED for name in library_names()}
    )


@dg.asset(
    partitions_def=library_partitions,
    deps=[library_release],
    group_name="registry",
    kinds={"python", "sqlite", "postgres"},
    owners=["team:fcast"],
    description="Recursive scan of one installed library into the registry_ tables: modules, classes, "
    "methods, functions, parameters (types, defaults, docs, allowed values), capabilities, losses, "
    "release diffs and the full-text index.",
    automation_condition=dg.AutomationCondition.eager(),
)
def library_registry(context: dg.AssetExecutionContext, meta_db: MetadataDB) -> dg.MaterializeResult:
    spec = get_library(context.partition_key)
    engine = meta_db.engine()
    summary = scan_and_store(spec, engine)
    c = summary["counts"]
    context.log.info(f"{spec.name} {summary['version']}: {summary['status']}, {c['symbols']} symbols, "
                     f"{c['parameters']} parameters, {c['import_failures']} import failures")
    failures = summary["import_failures"]
    return dg.MaterializeResult(
        data_version=dg.DataVersion(summary["version"]),
        metadata={
            "library": spec.name,
            "version": summary["version"],
            "dagster/row_count": c["symbols"],
            "dagster/column_schema": sql_table_schema(RegistrySymbol.__table__),
            "preview": preview(classes_preview(engine, summary["release_id"])),
            "status": summary["status"],
            "release_id": summary["release_id"],
            "symbols": c["symbols"],
            "modules": c["modules"],
            "classes": c["classes"],
            "functions": c["functions"],
            "methods": c["methods"],
            "properties": c["properties"],
            "parameters": c["parameters"],
            "enum_values": c["enum_values"],
            "capabilities": c["capabilities"],
            "losses": c["losses"],
            "import_failures": c["import_failures"],
            "import_failure_modules": dg.MetadataValue.md(
                "\n".join(f"- `{f['module']}`: {f['exception_type']}: {f['message'][:120]}" for f in failures)
                or "none"
            ),
            "diff": summary["diff"] or "first scanned release (or unchanged)",
            "seconds": summary["scan_seconds"],
            "database": meta_db.display_url(),
        },
    )


observe_library_releases = dg.define_asset_job(
    "observe_library_releases", selection=[library_release],
    description="Observe installed library versions (new releases make registry partitions stale).",
)
