"""Library registry: scan installed forecasting libraries into the registry_ tables."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from .libraries import LibrarySpec, UnknownLibraryError, get_library, library_names
from .scanner import LibraryNotInstalledError, ScanResult, installed_version, scan_library
from .store import write_scan

__all__ = [
    "LibraryNotInstalledError", "LibrarySpec", "ScanResult", "UnknownLibraryError", "get_library",
    "installed_version", "library_names", "scan_and_store", "scan_library", "write_scan",
]


def scan_and_store(library: str | LibrarySpec, engine: Engine) -> dict[str, Any]:
    """Scan ``library`` and write it into the registry; returns the write summary plus scan seconds.

    Unknown names raise UnknownLibraryError and missing libraries LibraryNotInstalledError, both before
    anything is written.
    """
    spec = library if isinstance(library, LibrarySpec) else get_library(library)
    result = scan_library(spec)
    summary = write_scan(engine, spec, result)
    return {**summary, "library": spec.name, "version": result.version, "scan_seconds": round(result.seconds, 2),
            "import_failures": result.import_failures}
