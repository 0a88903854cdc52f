"""Scanner + store on a real on-disk library: walk, params, enums, capabilities, losses, failures, idempotency,
release diffs and bad input. Runs on SQLite and PostgreSQL (db_url fixture)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, text

from fcast_assets.db import models as m
from fcast_assets.registry import LibraryNotInstalledError, UnknownLibraryError, get_library, scan_and_store
from fcast_assets.registry.libraries import LibrarySpec
from fcast_assets.registry.scanner import scan_library

from .fakelib import V1, new_name, v2_files, write_library

REGISTRY_COUNTED = ["registry_symbol", "registry_param", "registry_param_enum", "registry_symbol_capability",
                    "registry_loss", "registry_symbol_alias", "registry_import_failure", "registry_search_doc",
                    "registry_release", "registry_release_diff"]


def counts(engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {t: conn.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar() for t in REGISTRY_COUNTED}


@pytest.fixture
def fake(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    name = new_name()
    return tmp_path, name, write_library(tmp_path, name, "1.0.0", V1)


def test_scan_walks_everything(fake):
    _, name, spec = fake
    r = scan_library(spec)
    assert r.version == "1.0.0"
    s = r.symbols
    # modules, subpackages, private modules
    for mod in ("", ".core", ".models", ".models._base", ".models.alpha", ".losses"):
        assert s[name + mod].kind == "module"
    assert s[f"{name}.models._base"].is_public is False
    # classes, own and inherited methods, properties, functions
    assert s[f"{name}.core.Forecaster"].kind == "class"
    assert s[f"{name}.core.Forecaster.n_models"].kind == "property"
    assert s[f"{name}.core.helper"].kind == "function"
    inherited = s[f"{name}.models.alpha.Alpha.fit"]
    assert inherited.kind == "method" and inherited.defined_in == f"{name}.models._base.BaseModel"
    assert [p.name for p in inherited.params] == ["dataset", "val_size"]  # self dropped
    # re-exports are aliases of the canonical symbol
    assert r.aliases[f"{name}.models.Alpha"] == f"{name}.models.alpha.Alpha"
    assert r.aliases[f"{name}.Forecaster"] == f"{name}.core.Forecaster"
    # import failures are rows, not crashes
    failures = {f["module"]: f for f in r.import_failures}
    assert failures[f"{name}.broken"]["exception_type"] == "RuntimeError"
    assert "boom on import" in failures[f"{name}.broken"]["message"]
    assert failures[f"{name}.needs_missing"]["exception_type"] == "ModuleNotFoundError"


def test_params_types_defaults_docs_enums(fake):
    _, name, spec = fake
    s = scan_library(spec).symbols
    init = {p.name: p for p in s[f"{name}.core.Forecaster.__init__"].params}
    assert list(init) == ["models", "freq", "scaler_type", "mode", "missing"]
    assert init["models"].required and not init["models"].has_default
    assert init["freq"].type_norm == ["str", "int"] and init["freq"].doc_type == "str or int"
    assert init["scaler_type"].type_norm == ["str", "None"]
    assert init["scaler_type"].default is None and init["scaler_type"].has_default
    assert [v for v, src in init["scaler_type"].enums] == ["standard", "robust", "minmax"]
    assert {src for _, src in init["scaler_type"].enums} == {"docstring"}
    assert init["mode"].enums == [("fast", "literal"), ("slow", "literal")] and init["mode"].default == "fast"
    assert init["missing"].default == {"__repr__": "nan", "__type__": "builtins.float"}
    assert init["scaler_type"].sources["doc"] == "docstring:google"
    # numpy-style docstring on predict, var-keyword kinds
    pred = {p.name: p for p in s[f"{name}.core.Forecaster.predict"].params}
    assert pred["h"].doc_text == "horizon." and pred["h"].sources["doc"] == "docstring:numpy"
    assert pred["kwargs"].kind == "var_keyword" and not pred["kwargs"].required
    helper = {p.name: p for p in s[f"{name}.core.helper"].params}
    assert helper["args"].kind == "var_positional" and helper["y"].kind == "keyword_only"
    # model __init__ documented on the class and on the base class
    alpha = {p.name: p for p in s[f"{name}.models.alpha.Alpha.__init__"].params}
    assert alpha["max_steps"].doc_text == "training steps."
    assert [v for v, _ in alpha["activation"].enums] == ["ReLU", "Tanh"]


def test_capabilities_and_losses(fake):
    _, name, spec = fake
    s = scan_library(spec).symbols
    alpha = s[f"{name}.models.alpha.Alpha"].capabilities
    assert alpha["exog_futr"][0] is True and alpha["exog_stat"][0] is False
    assert alpha["exog_futr"][2]["defined_in"] == f"{name}.models.alpha.Alpha"
    assert alpha["exog_stat"][2]["defined_in"] == f"{name}.models._base.BaseModel"
    assert alpha["univariate"][0] is True and alpha["has_auto"][0] is True
    assert s[f"{name}.models.auto.AutoAlpha"].capabilities["auto_of"][0] == f"{name}.models.alpha.Alpha"
    assert s[f"{name}.models._base.BaseModel"].capabilities["has_auto"][0] is False
    losses = {q.rsplit(".", 1)[1]: r.loss for q, r in s.items() if r.loss}
    assert losses["MAE"]["category"] == "point" and losses["MAE"]["output_type"] == "point"
    assert losses["MQLoss"]["output_type"] == "quantile" and losses["MQLoss"]["supports_level"]
    assert losses["DistributionLoss"]["output_type"] == "distribution"
    assert losses["DistributionLoss"]["category"] == "probabilistic"
    assert losses["DistributionLoss"]["evidence"]["constructed_with"] == {"distribution": "Normal"}


def test_store_is_idempotent_and_complete(fake, engine):
    _, name, spec = fake
    first = scan_and_store(spec, engine)
    assert first["status"] == "created"
    c1 = counts(engine)
    assert c1["registry_symbol"] == first["counts"]["symbols"]
    assert c1["registry_param"] == first["counts"]["parameters"]
    assert c1["registry_import_failure"] == 2 and c1["registry_loss"] == 3
    again = scan_and_store(spec, engine)
    assert again["status"] == "unchanged" and again["release_id"] == first["release_id"]
    assert counts(engine) == c1
    with engine.connect() as conn:
        symbol_ids = sorted(conn.execute(select(m.RegistrySymbol.symbol_id)).scalars())
        # the search index follows the rows (FTS5 triggers / tsvector)
        found = conn.execute(text("SELECT COUNT(*) FROM registry_search_doc WHERE name = 'scaler_type'")).scalar()
    assert found == 1
    # a forced rewrite of the same release keeps ids and does not duplicate
    r = scan_library(spec)
    r.symbols[f"{name}.core.helper"].docstring = "changed doc"
    from fcast_assets.registry.store import write_scan

    assert write_scan(engine, spec, r)["status"] == "updated"
    assert counts(engine) == c1
    with engine.connect() as conn:
        assert sorted(conn.execute(select(m.RegistrySymbol.symbol_id)).scalars()) == symbol_ids
        doc = conn.execute(select(m.RegistrySymbol.docstring).where(
            m.RegistrySymbol.qualname == f"{name}.core.helper")).scalar()
    assert doc == "changed doc"


def test_new_version_writes_release_diff(fake, engine):
    root, name, spec = fake
    scan_and_store(spec, engine)
    spec2 = write_library(root, name, "1.1.0", v2_files())
    out = scan_and_store(spec2, engine)
    assert out["status"] == "created" and out["version"] == "1.1.0"
    with engine.connect() as conn:
        rows = conn.execute(select(m.RegistryReleaseDiff.qualname, m.RegistryReleaseDiff.param_name,
                                   m.RegistryReleaseDiff.change, m.RegistryReleaseDiff.detail)).all()
        versions = sorted(conn.execute(select(m.RegistryRelease.version)).scalars())
    assert versions == ["1.0.0", "1.1.0"]
    diff = {(q, p, c): d for q, p, c, d in rows}
    assert (f"{name}.core.newfunc", None, "added") in diff
    assert (f"{name}.models.auto.AutoAlpha", None, "removed") in diff
    assert (f"{name}.core.Forecaster.predict", "quantiles", "added") in diff
    assert (f"{name}.core.Forecaster.predict", "level", "removed") in diff
    assert diff[(f"{name}.core.Forecaster.fit", "val_size", "changed")] == {"default": [0, 1]}
    # bodies: only the functions whose code changed (a moved or re-documented function keeps its digest)
    bodies = {q for (q, p, c) in diff if p is None and c == "changed"}
    assert f"{name}.core.Forecaster.__init__" in bodies
    assert f"{name}.core.helper" not in bodies and f"{name}.core.Forecaster.fit" not in bodies
    assert out["diff"]["added"] >= 2 and out["diff"]["removed"] >= 2 and out["diff"]["changed"] >= 1


def test_bad_input_is_clear_and_loses_nothing(fake, engine, tmp_path):
    _, name, spec = fake
    scan_and_store(spec, engine)
    before = counts(engine)
    with pytest.raises(UnknownLibraryError, match="unknown library 'prophet'.*neuralforecast"):
        get_library("prophet")
    missing = LibrarySpec(name="ghost", import_name="fcast_ghost_pkg", dist_name="fcast-ghost-dist")
    with pytest.raises(LibraryNotInstalledError, match="'ghost' is not installed"):
        scan_and_store(missing, engine)
    # a top package that raises on import: clear error, nothing written
    broken = new_name()
    bspec = write_library(tmp_path, broken, "0.1", {"__init__.py": "raise ImportError('native extension missing')\n"})
    with pytest.raises(LibraryNotInstalledError, match="fails to import.*native extension missing"):
        scan_and_store(bspec, engine)
    assert counts(engine) == before
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(m.RegistryLibrary)).scalar() == 1


TRICKY = '''"""A module whose text misleads a line finder:
class Fake(object):
    pass
"""
import functools


def deco(*a, **k):
    return (lambda c: c) if not a or not callable(a[0]) else a[0]


@deco(
    1,
    2,
)
# a comment between decorators
@deco
class Decorated:
    class Inner:
        pass

    def method(self):
        return 1


if True:
    class Twice:
        pass
else:
    class Twice:  # noqa: F811
        pass


class Plain(Decorated):
    pass


def outer():
    class Local:
        pass
    return Local


@functools.lru_cache(maxsize=2)
def cached(x):
    return x


class Fake:
    pass
'''


def test_source_lines_match_inspect(tmp_path, monkeypatch):
    """The scanner's line numbers (one parse per file, code objects for functions) equal inspect's own answer,
    on a module built to mislead a text search: a class head inside a docstring, a multi-line decorator with a
    comment, nested, local and duplicated classes, a cached function."""
    import importlib
    import inspect

    from fcast_assets.registry.scanner import _lineno

    name = new_name()
    (tmp_path / f"{name}.py").write_text(TRICKY, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    mod = importlib.import_module(name)
    objs = [mod.Decorated, mod.Decorated.Inner, mod.Decorated.method, mod.Twice, mod.Plain, mod.outer(), mod.cached,
            mod.Fake, mod.deco, mod.outer]
    for obj in objs:
        assert _lineno(obj) == inspect.getsourcelines(obj)[1], obj
    assert _lineno(mod.Decorated) == 12 and _lineno(mod.Fake) == 49  # the decorator's line; not the docstring's


def _module(name: str, src: str):
    import types

    mod = types.ModuleType(name)
    exec(compile(src, f"<{name}>", "exec"), mod.__dict__)  # noqa: S102 - the test's own source text
    return mod


def test_code_digest_follows_helpers_of_the_same_package():
    """A function whose own body is unchanged but whose module-level helper changed gets another digest (what the
    diff-driven re-probe needs to re-run its cells); a helper only re-documented or moved keeps it, a function of
    another package is not followed, and helpers calling each other terminate."""
    from fcast_assets.registry.scanner import _helpers, code_digest

    base = "def _h(x):\n    return _g(x) + 1\n\ndef _g(x):\n    return _h(x) if x < 0 else x\n\n" \
           "def f(x):\n    return _h(x) * 2\n"
    v1 = _module("digpkg.core", base)
    v2 = _module("digpkg.core", base.replace("+ 1", "+ 2"))
    v3 = _module("digpkg.core", "\n\n" + base.replace("def _h(x):\n", "def _h(x):\n    \"\"\"Documented.\"\"\"\n"))
    assert {h.__name__ for h in _helpers(v1.f)} == {"_h", "_g"}
    assert code_digest(v1.f) != code_digest(v2.f), "a changed helper changes the caller's digest"
    assert code_digest(v1.f) == code_digest(v3.f), "a re-documented, moved helper does not"
    other = _module("otherpkg.util", "def _h(x):\n    return x + 99\n")
    v4 = _module("digpkg.core", base)
    v4._h = other._h  # the same name bound to another package's function: not followed
    assert [h.__name__ for h in _helpers(v4.f)] == []
    # through a module of the same package bound to a global name: `core._h(x)`
    caller = _module("digpkg.api", "def g(x):\n    return core._h(x)\n")
    caller.core = v2
    assert {h.__name__ for h in _helpers(caller.g)} == {"_h", "_g"}
    assert code_digest(caller.g) != code_digest(_module("digpkg.api", "def g(x):\n    return core._h(x)\n").g)


OPTIONAL_COMPAT = '''
try:
    from {opt}.frames import Frame as OptFrame
except ImportError:
    class OptFrame:
        """Stands in when the optional package is missing."""
from collections import OrderedDict as ODict
'''
OPTIONAL_CORE = '''
from .compat import ODict, OptFrame


def run(df: OptFrame, table: ODict = None, n: int = 1):
    return n
'''


def test_optional_dependency_alias_is_not_a_diff(tmp_path, monkeypatch, engine):
    """A library that binds an optional package's class under its own name, with a stand-in class when the package
    is missing (neuralforecast's SparkDataFrame), records the annotation by that name, so a release scanned
    without the package and one scanned with it do not differ; an alias outside try / except ImportError (a
    look-alike) is recorded resolved."""
    import sys

    monkeypatch.syspath_prepend(str(tmp_path))
    name, opt = new_name(), new_name()
    files = {"__init__.py": "", "compat.py": OPTIONAL_COMPAT.replace("{opt}", opt), "core.py": OPTIONAL_CORE}
    scan_and_store(write_library(tmp_path, name, "1.0.0", files), engine)  # the optional package missing
    (tmp_path / opt).mkdir()
    (tmp_path / opt / "__init__.py").write_text("")
    (tmp_path / opt / "frames.py").write_text("class Frame:\n    pass\n")
    try:
        r = scan_library(write_library(tmp_path, name, "1.1.0", files))
        params = {p.name: p.annotation for p in r.symbols[f"{name}.core.run"].params}
        assert params["df"] == "OptFrame" and params["table"] == "collections.OrderedDict"
        scan_and_store(write_library(tmp_path, name, "1.1.0", files), engine)
    finally:
        for mod in [m for m in sys.modules if m == opt or m.startswith(opt + ".")]:
            del sys.modules[mod]
    with engine.connect() as conn:
        rows = conn.execute(select(m.RegistryReleaseDiff.qualname, m.RegistryReleaseDiff.param_name)).all()
        anns = conn.execute(select(m.RegistryParam.annotation).where(m.RegistryParam.name == "df")).scalars().all()
    assert (f"{name}.core.run", "df") not in set(rows), rows
    assert sorted(anns) == ["OptFrame", f"{name}.compat.OptFrame"]
