"""One Python environment per library release, built by uv, so several releases are scanned and probed side by side.

``neuralforecast==3.2.2`` gets its own virtual environment under ``$FCAST_HOME/envs`` with that release and the
dependencies it asks for, resolved by uv from the package registry (nothing else is fetched). The project's own code
runs inside it unchanged: the same ``fcast scan`` / ``fcast compat`` commands, started with that interpreter and the
project's source on ``PYTHONPATH``, write into the same tables, tagged with that release.

- **Cached**: a built environment carries ``fcast-env.json`` (spec, interpreter, packages); the next call reuses it.
  ``rebuild=True`` builds it again.
- **Kill-safe**: an environment is built in a temporary sibling folder and renamed into place once complete, under a
  cross-process file lock; a build killed midway leaves a temporary folder the next build removes, never a
  half-built environment that looks usable.
- **Pinned where it matters**: torch is constrained to the release the project runs with (a CPU build from
  ``PIP_FIND_LINKS`` when it lies there; the registry's default build is CUDA, several GB); the scanner's own
  dependencies (griffe, SQLAlchemy, SQLModel, …) are pinned to the project's versions so that two releases are
  scanned by the same scanner; every other package the release pulls in is kept at the project's version when
  the release allows it (so a flipped cell comes from the library, not from a newer pandas). When the release
  cannot hold one of them (neuralforecast 3.1.9 caps pytorch-lightning below the project's 2.6), only the pins
  uv's resolver names in the conflict are released, one round at a time; the release's own resolution is the
  last resort. ``fcast-constraints.txt`` in the environment lists the pins kept and the ones released.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from fcast_assets import config
from fcast_assets.registry.libraries import get_library

#: a release as `pip` spells a plain version: digits and dots, with an optional pre / post / dev / local part.
_VERSION = re.compile(r"^[0-9]+(\.[0-9]+)*([._-]?(a|b|rc|post|dev)[0-9]*)*(\+[A-Za-z0-9.]+)?$")
#: packages the scanner and the compat runner import (pinned to the project's own versions when installed here).
SCANNER_DEPS = ("griffe", "sqlalchemy", "sqlmodel", "pydantic", "pyyaml", "psutil", "click", "tabulate", "filelock",
                "colorama", "psycopg", "psycopg-binary", "packaging")
#: packages whose release the environment keeps equal to the project's (constraints: installed only if needed).
CONSTRAINED = ("torch",)
MARKER = "fcast-env.json"
#: how environments are built; one built by an earlier scheme is rebuilt on next use (scheme 2: conflicting pins
#: are released one by one instead of dropping all of the project's versions at once)
ENV_SCHEME = 2
#: how many rounds of releasing the pins uv names in a conflict before the release's own resolution is used.
MAX_RELAX = 6


class ReleaseSpecError(ValueError):
    """A release spec that is not ``<library>`` or ``<library>==<version>``."""


class EnvBuildError(RuntimeError):
    """uv could not build the environment (the release does not exist, no wheel for this Python, …)."""


@dataclass(frozen=True)
class ReleaseSpec:
    """``library==version`` (version None: the release installed in the project's own environment)."""

    library: str
    version: str | None = None

    def __str__(self) -> str:
        return f"{self.library}=={self.version}" if self.version else self.library

    @property
    def dist_name(self) -> str:
        return get_library(self.library).dist_name


def parse_spec(text: str) -> ReleaseSpec:
    """``neuralforecast`` or ``neuralforecast==3.2.2``; the library must be one of libraries.yaml (data never
    becomes a package name outside that closed table), the version a plain release number."""
    name, sep, version = text.strip().partition("==")
    name, version = name.strip(), version.strip()
    if any(c in name for c in "<>=!~ ,;@/\\"):
        raise ReleaseSpecError(f"a release is <library> or <library>==<version>, not {text!r}")
    get_library(name)  # UnknownLibraryError names the known ones
    if not sep:
        return ReleaseSpec(name)
    if not _VERSION.match(version):
        raise ReleaseSpecError(f"{text!r}: {version!r} is not a release number (e.g. {name}==3.2.2)")
    return ReleaseSpec(name, version)


def _dist_version(dist: str) -> str | None:
    """The installed version of a distribution of the project's environment (the scanner's dependencies, torch)."""
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def is_installed_release(spec: ReleaseSpec) -> bool:
    """True when ``spec`` is the release in the project's own environment (no separate environment needed)."""
    from .view import installed_release

    return spec.version is None or installed_release(spec.library) == spec.version


def envs_root() -> Path:
    return Path(os.environ.get("FCAST_ENVS_DIR") or (config.data_home() / "envs"))


def env_dir(spec: ReleaseSpec) -> Path:
    py = f"py{sys.version_info.major}{sys.version_info.minor}"
    return envs_root() / f"{spec.library}-{spec.version}-{py}"


def env_python(folder: Path) -> Path:
    return folder / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _uv() -> list[str]:
    exe = shutil.which("uv")
    if exe:
        return [exe]
    try:
        from uv import find_uv_bin  # the `uv` wheel from PyPI

        return [find_uv_bin()]
    except ImportError:
        raise EnvBuildError("uv is needed to build a release environment: `pip install uv` "
                            "(https://docs.astral.sh/uv/)") from None


def _requirements(spec: ReleaseSpec) -> tuple[list[str], list[str], list[str]]:
    """(requirements, constraints preferred, constraints required) for the environment of ``spec``.

    Preferred: every distribution of the project's environment at its version (constraints install nothing;
    they only pin what the release pulls in), so two releases are compared on the same pandas, numpy, ...;
    dropped when the release cannot run with them (an old release capping pandas, say). Required: torch."""
    reqs = [f"{spec.dist_name}=={spec.version}"]
    for dep in (*SCANNER_DEPS, *get_library(spec.library).probe_requires):
        v = _dist_version(dep)
        if v is not None:
            reqs.append(f"{dep}=={v.split('+')[0]}")
    own = {spec.dist_name.lower(), "fcast"}
    prefer = sorted({f"{d.metadata['Name'].lower()}=={d.version}" for d in metadata.distributions()
                     if d.metadata["Name"] and d.metadata["Name"].lower() not in own})
    required = [f"{d}=={_dist_version(d)}" for d in CONSTRAINED if _dist_version(d)]
    return reqs, prefer, required


@dataclass(frozen=True)
class ReleaseEnv:
    spec: ReleaseSpec
    folder: Path
    python: Path
    cached: bool
    seconds: float
    packages: dict[str, str]

    @property
    def unpinned(self) -> list[str]:
        """The project's versions this environment could not keep (``fcast-constraints.txt``'s comments): the
        pins released for the release, or the note that its own resolution was used."""
        try:
            lines = (self.folder / "fcast-constraints.txt").read_text(encoding="utf-8").splitlines()
        except OSError:
            return []
        return [x.split(": ", 1)[-1] if x.startswith("# released") else x.lstrip("# ") for x in lines
                if x.startswith("#")]


def _read_marker(folder: Path) -> dict | None:
    try:
        return json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _packages(python: Path) -> dict[str, str]:
    out = subprocess.run([str(python), "-c", "import json, importlib.metadata as m; print(json.dumps("
                          "{d.metadata['Name'].lower(): d.version for d in m.distributions()}))"],
                         capture_output=True, text=True, encoding="utf-8", timeout=120)
    return json.loads(out.stdout) if out.returncode == 0 else {}


def ensure_env(spec: ReleaseSpec, rebuild: bool = False, log=None) -> ReleaseEnv:
    """The environment of ``spec``, built on first use (or when ``rebuild``), reused afterwards."""
    from filelock import FileLock

    if spec.version is None:
        raise ReleaseSpecError(f"{spec}: name the release, e.g. {spec.library}==3.2.2")
    t0 = time.perf_counter()
    folder = env_dir(spec)
    folder.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder) + ".lock"):
        marker = _read_marker(folder)
        if (marker and not rebuild and marker.get("spec") == str(spec) and marker.get("scheme") == ENV_SCHEME
                and env_python(folder).exists()):
            return ReleaseEnv(spec, folder, env_python(folder), True, time.perf_counter() - t0, marker["packages"])
        for stale in folder.parent.glob(folder.name + ".tmp-*"):  # a build killed midway (folder, constraints)
            if stale.is_dir():
                shutil.rmtree(stale, ignore_errors=True)
            else:
                stale.unlink(missing_ok=True)
        tmp = folder.parent / f"{folder.name}.tmp-{os.getpid()}"
        _build(spec, tmp, log)
        packages = _packages(env_python(tmp))
        (tmp / MARKER).write_text(json.dumps({"spec": str(spec), "scheme": ENV_SCHEME,
                                              "python": sys.version.split()[0],
                                              "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                              "packages": packages}, indent=1), encoding="utf-8")
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
        # a venv records its own path in its scripts; the interpreter itself runs from anywhere (python -m ...)
        return ReleaseEnv(spec, folder, env_python(folder), False, time.perf_counter() - t0, packages)


def _build(spec: ReleaseSpec, tmp: Path, log) -> None:
    uv = _uv()
    # hard links from uv's cache: a release environment is never modified, and torch is not copied again
    env = {**os.environ, "UV_LINK_MODE": "hardlink"}
    env.pop("VIRTUAL_ENV", None)
    reqs, prefer, required = _requirements(spec)
    links = os.environ.get("PIP_FIND_LINKS") or os.environ.get("UV_FIND_LINKS")
    cfile = tmp.parent / f"{tmp.name}.constraints.txt"

    def run(cmd: list[str]) -> subprocess.CompletedProcess:
        if log:
            log(" ".join(cmd))
        return subprocess.run(cmd, capture_output=True, text=True, encoding="utf-8", env=env, timeout=1800)

    try:
        p = run([*uv, "venv", "-q", "--python", sys.executable, str(tmp)])
        if p.returncode == 0:
            # the project's versions first; a pin uv names in a conflict is released (that one only), for up to
            # MAX_RELAX rounds; the release's own resolution last
            kept, released, rounds = list(prefer), [], 0
            while True:
                cons = kept + required
                cfile.write_text("\n".join(cons) + "\n", encoding="utf-8")
                p = run([*uv, "pip", "install", "-q", "--python", str(env_python(tmp)), *reqs,
                         *(["--find-links", links] if links else []), "--constraint", str(cfile)])
                if p.returncode == 0:
                    note = [f"# released (the release needs another version): {r}" for r in released]
                    if prefer and not kept:
                        note = ["# the project's versions could not be kept: the release's own resolution"]
                    (tmp / "fcast-constraints.txt").write_text("\n".join([*note, *cons]) + "\n", encoding="utf-8")
                    break
                if not kept:
                    break  # the release's own resolution failed too: the error is the release's
                named = conflicting_pins(p.stderr or p.stdout, kept)
                rounds += 1
                if named and rounds <= MAX_RELAX:
                    released += named
                    kept = [c for c in kept if c not in named]
                else:
                    kept = []
        if p.returncode != 0:
            lines = [x for x in (p.stderr or p.stdout).splitlines() if x.strip()]
            why = " / ".join(x.strip() for x in lines[-3:]) if lines else f"exit {p.returncode}"
            raise EnvBuildError(f"cannot build the environment of {spec}: {why}")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        cfile.unlink(missing_ok=True)


def conflicting_pins(uv_error: str, pins: list[str]) -> list[str]:
    """The pins of ``pins`` (``name==version``) that uv's resolver error names as part of the conflict.

    uv spells a pinned requirement ``name==version`` in its explanation ("... depends on pytorch-lightning<2.6.0
    and pytorch-lightning==2.6.6, we can conclude ..."); a pin is named when that exact text appears, with names
    compared the way PEP 503 normalises them."""
    def norm(name: str) -> str:
        return re.sub(r"[-_.]+", "-", name).lower()

    pinned = r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s,;]+?)[,.;]?(?=\s|$)"
    said = {(norm(m.group(1)), m.group(2)) for m in re.finditer(pinned, uv_error)}
    out = []
    for pin in pins:
        name, _, version = pin.partition("==")
        if (norm(name), version) in said:
            out.append(pin)
    return out


def source_path() -> Path:
    """The folder that holds the ``fcast_assets`` package, put on the release environment's ``PYTHONPATH``.

    From a source checkout (the README's ``uv sync`` installs it editable) this is the repository; from a wheel
    installed in site-packages, the package is copied to ``$FCAST_HOME/envs/src`` so that the project's other
    packages do not leak into the release environment."""
    import fcast_assets

    pkg = Path(fcast_assets.__file__).resolve().parent
    if pkg.parent.name not in ("site-packages", "dist-packages"):
        return pkg.parent
    dest = envs_root() / "src"
    shutil.rmtree(dest / "fcast_assets", ignore_errors=True)
    shutil.copytree(pkg, dest / "fcast_assets", ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def run_in_env(env: ReleaseEnv, module: str, args: list[str], timeout: float | None = None
               ) -> subprocess.CompletedProcess:
    """``python -m MODULE ARGS`` with the release environment's interpreter, against the same database and home
    as this process (stdout / stderr captured)."""
    child_env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONHOME")}
    child_env["PYTHONPATH"] = str(source_path())
    child_env["FCAST_DB_URL"] = config.db_url()
    child_env["FCAST_HOME"] = str(config.data_home())
    child_env["PYTHONNOUSERSITE"] = "1"
    child_env["FCAST_WATCH_PARENT"] = "1"  # a parent killed mid-matrix takes the child (and its probes) with it
    cmd = [str(env.python), "-m", module, *args]
    return subprocess.run(cmd, env=child_env, capture_output=True, text=True, encoding="utf-8", timeout=timeout)
