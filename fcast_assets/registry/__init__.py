"""Library registry: scan installed forecasting libraries into the registry_ tables."""

from __future__ import annotations

from typing import Any, Callable

from sqlalchemy import Engine

from .libraries import LibrarySpec, UnknownLibraryError, get_library, library_names
from .scanner import LibraryNotInstalledError, ScanResult, installed_version, scan_library
from .store import write_scan

__all__ = [
    "LibraryNotInstalledError", "LibrarySpec", "ScanResult", "UnknownLibraryError", "get_library",
    "installed_version", "library_names", "scan_and_store", "scan_library", "write_scan",
]


def scan_and_store(library: str | LibrarySpec, engine: Engine,
                   progress: Callable[[int, int, str], None] | None = None) -> dict[str, Any]:
    """Scan ``library`` and write it into the registry; returns the write summary plus scan seconds.

    Unknown names raise UnknownLibraryError and missing libraries LibraryNotInstalledError, both before
    anything is written. ``progress(done, total, module)`` follows the module walk (optional). Scans of the same
    library are serialised across processes (:mod:`fcast_assets.locks`, ``scan:<library>``).
    """
    from ..locks import hold

    spec = library if isinstance(library, LibrarySpec) else get_library(library)
    with hold(f"scan:{spec.name}"):  # a second scan of the library waits (then stores "unchanged")
        result = scan_library(spec, progress=progress)
        summary = write_scan(engine, spec, result)
    return {**summary, "library": spec.name, "version": result.version, "scan_seconds": round(result.seconds, 2),
            "import_failures": result.import_failures}
