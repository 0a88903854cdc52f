"""The libraries fcast scans, as data (``libraries.yaml``). Adding a library is one entry there."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import yaml


@dataclass(frozen=True)
class LibrarySpec:
    name: str  # partition key
    import_name: str
    dist_name: str
    vendor: str | None = None
    repo_url: str | None = None
    docs_url: str | None = None
    also_import: tuple[str, ...] = ()  # further top-level packages of the same distribution
    # distributions the library's compat adapter imports beyond the library and its own requirements (installed,
    # at the project's versions, into a release environment: registry/envs.py)
    probe_requires: tuple[str, ...] = ()

    @property
    def roots(self) -> tuple[str, ...]:
        return (self.import_name, *self.also_import)


class UnknownLibraryError(KeyError):
    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0])


@lru_cache(maxsize=1)
def library_specs() -> dict[str, LibrarySpec]:
    raw = yaml.safe_load(resources.files("fcast_assets.registry").joinpath("libraries.yaml").read_text(encoding="utf-8"))
    return {e["name"]: LibrarySpec(**{**e, "also_import": tuple(e.get("also_import", ())),
                                     "probe_requires": tuple(e.get("probe_requires", ()))}) for e in raw["libraries"]}


def library_names() -> list[str]:
    return list(library_specs())


def get_library(name: str) -> LibrarySpec:
    specs = library_specs()
    if name not in specs:
        raise UnknownLibraryError(
            f"unknown library {name!r}: fcast scans {', '.join(specs)} "
            "(add an entry to fcast_assets/registry/libraries.yaml to scan another)"
        )
    return specs[name]
