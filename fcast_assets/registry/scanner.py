"""Recursive library scanner (plain module, no Dagster).

``scan_library(spec)`` imports the library, walks every subpackage and module, and records every class,
method (own and inherited from classes of the same library), property and function with every parameter:
kind, position, annotation as written, normalised types, default as JSON, required, docstring type and text,
allowed values (``Literal`` annotations and docstrings) and where each fact came from. Model classes get their
declared capability flags; loss classes their category and output type, read from an instance built with its
defaults. Nothing is trained. A module that fails to import is recorded, not raised.
"""

from __future__ import annotations

import ast
import hashlib
import importlib
import importlib.metadata as md
import inspect
import linecache
import logging
import pkgutil
import platform
import re
import sys
import time
import traceback
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any, Callable

import griffe
import yaml

from .libraries import LibrarySpec
from .types import annotation_text, default_json, doc_enum_values, parse_annotation, parse_doc_type

logging.getLogger("griffe").setLevel(logging.ERROR)

_SKIP_MODULE_PARTS = {"tests", "test", "testing", "conftest", "__main__", "_tests"}
_KEEP_DUNDERS = {"__init__", "__call__"}
_PARAM_KINDS = {
    inspect.Parameter.POSITIONAL_ONLY: "positional_only",
    inspect.Parameter.POSITIONAL_OR_KEYWORD: "positional_or_keyword",
    inspect.Parameter.VAR_POSITIONAL: "var_positional",
    inspect.Parameter.KEYWORD_ONLY: "keyword_only",
    inspect.Parameter.VAR_KEYWORD: "var_keyword",
}


class LibraryNotInstalledError(ImportError):
    pass


@dataclass
class ParamRec:
    name: str
    position: int
    kind: str
    annotation: str | None
    type_norm: list[str]
    default: Any
    has_default: bool
    required: bool
    doc_type: str | None = None
    doc_text: str | None = None
    enums: list[tuple[Any, str]] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)


@dataclass
class SymbolRec:
    qualname: str
    module: str
    name: str
    kind: str
    parent: str | None
    is_public: bool
    docstring: str | None = None
    doc_style: str | None = None
    signature: str | None = None
    defined_in: str | None = None
    bases: list[str] | None = None
    source_file: str | None = None
    lineno: int | None = None
    params: list[ParamRec] = field(default_factory=list)
    capabilities: dict[str, tuple[Any, str, dict]] = field(default_factory=dict)  # code -> (value, source, detail)
    loss: dict | None = None
    code_hash: str | None = None  # digest of a function's / method's body (see code_digest)

    @property
    def doc_summary(self) -> str | None:
        if not self.docstring:
            return None
        first = self.docstring.strip().split("\n\n")[0]
        return " ".join(first.split())[:500]


def _code_parts(code: Any, doc: Any, out: list) -> None:
    out += [code.co_code, code.co_names, code.co_argcount, code.co_kwonlyargcount, code.co_flags & 0x0F]
    for c in code.co_consts:
        if hasattr(c, "co_code"):
            _code_parts(c, None, out)
        else:  # a docstring counts as the None a function without one holds there
            out.append(repr(None if doc is not None and c is doc else c))


def _function_of(obj: Any) -> Any:
    try:
        fn = inspect.unwrap(obj)
    except ValueError:
        fn = obj
    return getattr(fn, "__func__", fn)


def _own_digest(fn: Any) -> str | None:
    code = getattr(fn, "__code__", None)
    if code is None:
        return None
    parts: list = []
    _code_parts(code, getattr(fn, "__doc__", None), parts)
    return hashlib.sha1(repr(parts).encode("utf-8", "replace")).hexdigest()[:16]


def _global_names(code: Any) -> set[str]:
    names = set(code.co_names)
    for c in code.co_consts:
        if hasattr(c, "co_code"):
            names |= _global_names(c)
    return names


#: how far the digest follows module-level helpers (a helper of a helper of ...), and how many it reads at most.
HELPER_DEPTH, HELPER_MAX = 4, 64


def _helpers(fn: Any) -> list[Any]:
    """The plain functions of the same top-level package that ``fn`` reaches by global name (``helper(...)``, or
    ``utils.helper(...)`` through a module of the package), directly or through other such helpers (breadth first,
    at most HELPER_DEPTH levels and HELPER_MAX functions). Methods reached through ``self`` are not followed here:
    the re-probe treats a class's private methods as its own."""
    root = (getattr(fn, "__module__", None) or "").split(".")[0]
    seen, out, level = {id(fn)}, [], [fn]
    for _ in range(HELPER_DEPTH):
        nxt = []
        for f in level:
            code, glb = getattr(f, "__code__", None), getattr(f, "__globals__", None)
            if code is None or glb is None:
                continue
            names = sorted(_global_names(code))
            found = [glb.get(n) for n in names]
            # `utils.helper(...)`: a module of the package bound to a global, and a name used as its attribute
            found += [getattr(g, n, None) for g in found if inspect.ismodule(g)
                      and g.__name__.split(".")[0] == root for n in names]
            for g in found:
                if (inspect.isfunction(g) and id(g) not in seen
                        and (getattr(g, "__module__", None) or "").split(".")[0] == root):
                    seen.add(id(g))
                    nxt.append(g)
                    out.append(g)
                    if len(out) >= HELPER_MAX:
                        return out
        level = nxt
    return out


def code_digest(obj: Any) -> str | None:
    """A digest of what a function or method runs: its bytecode, the names it uses and its constants (nested
    functions and comprehensions included), without its docstring, file or line numbers — so a release that only
    moves or re-documents a function keeps its digest, and one that changes the body gets another. The module-level
    functions of the same package it calls by name (and theirs, see :func:`_helpers`) are part of it: a release
    that changes only a private helper (utilsforecast's ``time_features`` through ``_assign_time_features``)
    changes the digest of every function that reaches it. None for objects without Python bytecode (builtins,
    C extensions). Same interpreter only (bytecode is per version)."""
    fn = _function_of(obj)
    own = _own_digest(fn)
    if own is None:
        return None
    helpers = _helpers(fn)
    if not helpers:
        return own
    deep = sorted((f"{h.__module__}.{h.__qualname__}", _own_digest(h) or "") for h in helpers)
    return hashlib.sha1(repr((own, deep)).encode("utf-8", "replace")).hexdigest()[:16]


@dataclass
class ScanResult:
    library: str
    version: str
    python_version: str
    environment: dict[str, str]
    symbols: dict[str, SymbolRec]
    aliases: dict[str, str]  # alias qualname -> canonical qualname
    import_failures: list[dict[str, str]]
    seconds: float = 0.0

    def stats(self) -> dict[str, int]:
        kinds: dict[str, int] = {}
        for s in self.symbols.values():
            kinds[s.kind] = kinds.get(s.kind, 0) + 1
        return {
            "symbols": len(self.symbols),
            "modules": kinds.get("module", 0),
            "classes": kinds.get("class", 0),
            "functions": kinds.get("function", 0),
            "methods": kinds.get("method", 0),
            "properties": kinds.get("property", 0),
            "parameters": sum(len(s.params) for s in self.symbols.values()),
            "enum_values": sum(len(p.enums) for s in self.symbols.values() for p in s.params),
            "capabilities": sum(len(s.capabilities) for s in self.symbols.values()),
            "losses": sum(1 for s in self.symbols.values() if s.loss),
            "aliases": len(self.aliases),
            "import_failures": len(self.import_failures),
        }


@lru_cache(maxsize=1)
def capability_spec() -> dict[str, Any]:
    return yaml.safe_load(resources.files("fcast_assets.registry").joinpath("capabilities.yaml").read_text(encoding="utf-8"))


def capability_descriptions() -> dict[str, str]:
    spec = capability_spec()
    out = {v["code"]: v["description"] for v in spec["attributes"].values()}
    out.update(spec["derived"])
    return out


# ------------------------------------------------------------------------------------------------ versions
def installed_version(spec: LibrarySpec) -> str | None:
    """Installed release of the library's distribution, or None when it is not installed."""
    try:
        return md.version(spec.dist_name)
    except md.PackageNotFoundError:
        pass
    if importlib.util.find_spec(spec.import_name) is None:
        return None
    mod = importlib.import_module(spec.import_name)
    return str(getattr(mod, "__version__", "unknown"))


def _environment(spec: LibrarySpec) -> dict[str, str]:
    """Versions of the library's direct requirements (and the core numeric stack) as installed now."""
    names = {"torch", "pandas", "numpy", "polars", "scikit-learn", "pytorch-lightning", "ray", "optuna"}
    try:
        for req in md.requires(spec.dist_name) or []:
            if "extra ==" in req:
                continue
            names.add(re.split(r"[\s<>=!~;\[(]", req, maxsplit=1)[0])
    except md.PackageNotFoundError:
        pass
    env = {}
    for n in sorted(names):
        try:
            env[n] = md.version(n)
        except md.PackageNotFoundError:
            continue
    return env


# ------------------------------------------------------------------------------------------------ docstrings
@dataclass
class _ParamDoc:
    doc_type: str | None
    text: str | None
    style: str | None


def _parse_doc(doc: str | None) -> tuple[dict[str, _ParamDoc], str | None]:
    if not doc:
        return {}, None
    return _parse_doc_cached(inspect.cleandoc(doc))


@lru_cache(maxsize=4096)
def _parse_doc_cached(doc: str) -> tuple[dict[str, _ParamDoc], str | None]:
    style = griffe.infer_docstring_style(griffe.Docstring(doc))[0]
    style_name = style.value if style is not None else None
    try:
        sections = griffe.Docstring(doc, lineno=1).parse(style or "google")
    except Exception:  # noqa: BLE001 - a malformed docstring is data, not a crash
        return {}, style_name
    out: dict[str, _ParamDoc] = {}
    for sec in sections:
        if sec.kind.value not in ("parameters", "other parameters", "attributes"):
            continue
        for p in sec.value:
            for name in str(p.name).replace("*", "").split(","):
                name = name.strip()
                if name and name not in out:
                    ann = p.annotation
                    out[name] = _ParamDoc(str(ann) if ann else None, (p.description or "").strip() or None, style_name)
    return out, style_name


# ------------------------------------------------------------------------------------------------ params
_ALIASES: dict[int, dict[str, str]] = {}
_OPTIONAL: dict[str, tuple[set[str], set[str]]] = {}  # root -> (modules read, optional names)


def _optional_names(root: str) -> set[str]:
    """Names the modules of package ``root`` bind by an import inside ``try: ... except ImportError:`` — an
    optional dependency with a stand-in (``try: from pyspark.sql import DataFrame as SparkDataFrame except
    ImportError: class SparkDataFrame: ...``). Read from the source of the package's imported modules (each
    module once; modules imported since the last call are read on the next)."""
    read, names = _OPTIONAL.setdefault(root, (set(), set()))
    for name, mod in list(sys.modules.items()):
        if mod is None or name in read or (name != root and not name.startswith(root + ".")):
            continue
        read.add(name)
        try:
            tree = ast.parse(inspect.getsource(mod))
        except (OSError, TypeError, SyntaxError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Try) and any(
                    h.type is None or {"ImportError", "ModuleNotFoundError"} & {
                        n.id for n in ast.walk(h.type) if isinstance(n, ast.Name)} for h in node.handlers):
                for st in node.body:
                    if isinstance(st, (ast.Import, ast.ImportFrom)):
                        names.update(a.asname for a in st.names if a.asname)
    return names


def _class_aliases(func: Any) -> dict[str, str]:
    """``{module.qualname of a class: the name the function's module binds it to}`` for classes of an optional
    dependency imported under another name (:func:`_optional_names`); cached per module namespace."""
    try:
        glb = getattr(inspect.unwrap(func), "__globals__", None)
    except ValueError:
        glb = None
    if not isinstance(glb, dict):
        return {}
    key = id(glb)
    if key not in _ALIASES:
        optional = _optional_names(str(glb.get("__name__") or "").split(".")[0])
        _ALIASES[key] = {f"{o.__module__}.{o.__qualname__}": n for n, o in list(glb.items())
                         if n in optional and inspect.isclass(o) and o.__name__ != n
                         and isinstance(getattr(o, "__module__", None), str)}
    return _ALIASES[key]


def _as_named_here(text: str | None, aliases: dict[str, str]) -> str | None:
    """A rendered annotation with each aliased class under the name the library writes (``SparkDataFrame``, not
    ``pyspark.sql.dataframe.DataFrame``): the same text whether the optional package is installed or the library's
    placeholder class of that name stands in, so two release environments do not differ by what else they hold.
    ``type_norm`` is still read from the resolved text."""
    if not text or not aliases or "." not in text:
        return text
    for path, name in aliases.items():
        if path in text:
            text = re.sub(rf"(?<![\w.]){re.escape(path)}(?!\w)", name, text)
    return text


def _params(
    func: Any, drop_first: bool, docs: list[dict[str, _ParamDoc]]
) -> tuple[list[ParamRec], str | None, str | None]:
    """Parameters of a callable; returns (params, signature text, error)."""
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError) as e:
        return [], None, f"{type(e).__name__}: {e}"
    params = list(sig.parameters.values())
    if drop_first and params and params[0].kind in (
        inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD
    ):
        params = params[1:]
    out = []
    aliases = _class_aliases(func)
    for pos, p in enumerate(params):
        resolved = annotation_text(p.annotation)
        types, enums = parse_annotation(resolved)
        ann = _as_named_here(resolved, aliases)
        sources: dict[str, str] = {}
        if ann:
            sources["annotation"] = "signature"
        doc = next((d[p.name] for d in docs if p.name in d), None)
        doc_types: list[str] = []
        doc_enums: list[Any] = []
        if doc is not None:
            sources["doc"] = f"docstring:{doc.style or 'unknown'}"
            doc_types, doc_enums = parse_doc_type(doc.doc_type)
        if not types and doc_types:
            types = doc_types
            sources["type_norm"] = "docstring"
        elif types:
            sources["type_norm"] = "annotation"
        has_default = p.default is not inspect.Parameter.empty
        rec = ParamRec(
            name=p.name,
            position=pos,
            kind=_PARAM_KINDS[p.kind],
            annotation=ann,
            type_norm=types,
            default=default_json(p.default) if has_default else None,
            has_default=has_default,
            required=not has_default and p.kind not in (
                inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD
            ),
            doc_type=doc.doc_type if doc else None,
            doc_text=doc.text if doc else None,
            sources=sources,
        )
        seen: list[Any] = []
        for v in enums:
            seen.append(v)
            rec.enums.append((v, "literal"))
        prose = doc_enum_values(rec.doc_text) if ("str" in types or not types) else []
        for v in doc_enums + prose:
            if v not in seen:
                seen.append(v)
                rec.enums.append((v, "docstring"))
        out.append(rec)
    names = {r.name for r in out}
    for rec in out:  # "(from hist_exog_list / futr_exog_list)" names other arguments, not values
        rec.enums = [(v, src) for v, src in rec.enums if src != "docstring" or v not in names]
    return out, str(sig), None


# ------------------------------------------------------------------------------------------------ walking
Progress = Callable[[int, int, str], None]
"""``progress(done, total, module)``: modules scanned, modules known so far (grows while subpackages are found)."""


class _Walker:
    def __init__(self, spec: LibrarySpec, progress: Progress | None = None):
        self.spec = spec
        self.progress = progress
        self.root = spec.import_name
        self.roots = spec.roots
        self.symbols: dict[str, SymbolRec] = {}
        self.aliases: dict[str, str] = {}
        self.failures: list[dict[str, str]] = []
        self._class_done: set[int] = set()

    def in_library(self, modname: str | None) -> bool:
        return bool(modname) and any(modname == r or modname.startswith(r + ".") for r in self.roots)

    # modules ----------------------------------------------------------------------------------------
    def walk(self) -> None:
        stack = [importlib.import_module(self.root)]  # the primary top package itself must import
        for extra in self.roots[1:]:
            try:
                stack.append(importlib.import_module(extra))
            except Exception as e:  # noqa: BLE001
                self.failures.append({"module": extra, "exception_type": type(e).__name__, "message": str(e)[:1000]})
        seen = {m.__name__ for m in stack}
        done = 0
        while stack:
            mod = stack.pop()
            self.scan_module(mod)
            for info in sorted(pkgutil.iter_modules(getattr(mod, "__path__", None) or []), key=lambda i: i.name,
                               reverse=True):
                name = f"{mod.__name__}.{info.name}"
                if name in seen or _SKIP_MODULE_PARTS & set(info.name.split(".")) or info.name.startswith("test_"):
                    continue
                seen.add(name)
                try:
                    sub = importlib.import_module(name)
                except BaseException as e:  # noqa: BLE001 - optional deps, SystemExit in scripts, ...
                    if isinstance(e, KeyboardInterrupt):
                        raise
                    self.failures.append({
                        "module": name, "exception_type": type(e).__name__,
                        "message": (str(e).strip().splitlines() or [""])[0][:1000],
                    })
                    continue
                stack.append(sub)
            done += 1
            if self.progress:
                self.progress(done, done + len(stack), mod.__name__)

    def scan_module(self, mod: Any) -> None:
        name = mod.__name__
        parts = name.split(".")
        self.symbols[name] = SymbolRec(
            qualname=name, module=name, name=parts[-1], kind="module",
            parent=".".join(parts[:-1]) or None, is_public=not any(p.startswith("_") for p in parts),
            docstring=inspect.getdoc(mod), source_file=_relfile(getattr(mod, "__file__", None), self.roots),
        )
        exported = getattr(mod, "__all__", None)
        for attr, obj in list(vars(mod).items()):
            if attr.startswith("__"):
                continue
            if not (inspect.isclass(obj) or callable(obj)):
                continue
            owner = getattr(obj, "__module__", None)
            if not isinstance(owner, str) or not self.in_library(owner):
                continue
            objq = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None)
            if not isinstance(objq, str) or "<" in objq:
                continue
            canonical = f"{owner}.{objq}"
            here = f"{name}.{attr}"
            if canonical != here and not attr.startswith("_") and (exported is None or attr in exported):
                self.aliases[here] = canonical  # a public re-export; the symbol lives at its canonical path
            if canonical in self.symbols:
                continue
            parent = canonical.rsplit(".", 1)[0]
            if inspect.isclass(obj):
                self.scan_class(obj, canonical, owner, parent)
            else:
                self.scan_function(obj, canonical, owner, parent)

    def _fill_source(self, rec: SymbolRec, obj: Any) -> None:
        rec.code_hash = rec.code_hash or code_digest(obj)
        try:
            rec.source_file = _relfile(inspect.getsourcefile(inspect.unwrap(obj)), self.roots)
            rec.lineno = _lineno(obj)
        except (TypeError, OSError, ValueError):
            pass

    def scan_function(self, obj: Any, qualname: str, module: str, parent: str) -> None:
        doc = inspect.getdoc(obj)
        docs, style = _parse_doc(doc)
        rec = SymbolRec(qualname=qualname, module=module, name=qualname.rsplit(".", 1)[1], kind="function",
                        parent=parent, is_public=_public(qualname), docstring=doc, doc_style=style)
        rec.params, rec.signature, err = _params(obj, False, [docs])
        if err:
            rec.capabilities["signature_error"] = (err, "observed", {})
        self._fill_source(rec, obj)
        self.symbols[qualname] = rec

    # classes ----------------------------------------------------------------------------------------
    def scan_class(self, cls: type, qualname: str, module: str, parent: str) -> None:
        if id(cls) in self._class_done:
            return
        self._class_done.add(id(cls))
        doc = inspect.getdoc(cls)
        class_docs, style = _parse_doc(doc)
        rec = SymbolRec(
            qualname=qualname, module=module, name=cls.__name__, kind="class", parent=parent,
            is_public=_public(qualname), docstring=doc, doc_style=style,
            bases=[f"{b.__module__}.{b.__qualname__}" for b in cls.__bases__],
        )
        self._fill_source(rec, cls)
        self.symbols[qualname] = rec
        self._declared_capabilities(cls, rec)

        # base-class docstrings, for parameters documented only on a base (neuralforecast's BaseModel)
        mro_docs = [class_docs] + [_parse_doc(b.__doc__)[0] for b in cls.__mro__[1:] if self.in_library(b.__module__)]
        try:
            attrs = inspect.classify_class_attrs(cls)
        except Exception:  # noqa: BLE001
            attrs = []
        for a in attrs:
            if a.name.startswith("__") and a.name not in _KEEP_DUNDERS:
                continue
            definer = a.defining_class
            if definer is object or not self.in_library(getattr(definer, "__module__", None)):
                continue  # methods of torch / lightning bases are theirs, not this library's
            if a.kind == "property":
                self._scan_property(cls, qualname, a, definer)
            elif a.kind in ("method", "class method", "static method"):
                self._scan_method(cls, qualname, a, definer, mro_docs)

    def _scan_property(self, cls: type, cls_q: str, a: Any, definer: type) -> None:
        fget = getattr(a.object, "fget", None)
        q = f"{cls_q}.{a.name}"
        rec = SymbolRec(qualname=q, module=cls.__module__, name=a.name, kind="property", parent=cls_q,
                        is_public=_public(q), docstring=inspect.getdoc(fget) if fget else None,
                        defined_in=_defined_in(definer, cls))
        self.symbols[q] = rec

    def _scan_method(self, cls: type, cls_q: str, a: Any, definer: type, mro_docs: list) -> None:
        q = f"{cls_q}.{a.name}"
        func = getattr(cls, a.name, None)
        if func is None:
            return
        raw = a.object.__func__ if isinstance(a.object, (classmethod, staticmethod)) else a.object
        doc = inspect.getdoc(raw) if raw is not None else None
        if not doc:
            doc = inspect.getdoc(func)
        own_docs, style = _parse_doc(doc)
        docs = [own_docs] + (mro_docs if a.name == "__init__" else [])
        if a.name == "__init__":
            # parameters are documented on the method, the class, or a base class of the same library
            docs += [_parse_doc(getattr(b, "__init__", None).__doc__)[0] for b in cls.__mro__[1:]
                     if self.in_library(b.__module__) and getattr(b, "__init__", None) is not None]
        rec = SymbolRec(qualname=q, module=cls.__module__, name=a.name, kind="method", parent=cls_q,
                        is_public=_public(q) or a.name in _KEEP_DUNDERS,
                        docstring=doc, doc_style=style, defined_in=_defined_in(definer, cls))
        rec.params, rec.signature, err = _params(func, a.kind == "method", docs)
        if err:
            rec.capabilities["signature_error"] = (err, "observed", {})
        if a.name == "__init__":
            _available_lists(inspect.getdoc(cls), rec.params)
        rec.code_hash = code_digest(raw)  # inherited ones too: a base's changed body changes what the class runs
        if rec.defined_in is None:
            self._fill_source(rec, raw)
        self.symbols[q] = rec

    def _declared_capabilities(self, cls: type, rec: SymbolRec) -> None:
        for attr, meta in capability_spec()["attributes"].items():
            if not hasattr(cls, attr):
                continue
            value = getattr(cls, attr)
            if not isinstance(value, (bool, int, str, float)) or isinstance(value, property):
                continue
            definer = next((b for b in cls.__mro__ if attr in vars(b)), cls)
            rec.capabilities[meta["code"]] = (
                default_json(value), "declared", {"attribute": attr, "defined_in": f"{definer.__module__}.{definer.__qualname__}"}
            )
        if "multivariate" in rec.capabilities:
            mv = rec.capabilities["multivariate"]
            rec.capabilities["univariate"] = (not bool(mv[0]), "declared", {"derived_from": "MULTIVARIATE"})

    # derived facts -------------------------------------------------------------------------------------
    def derive(self) -> None:
        by_name: dict[str, list[SymbolRec]] = {}
        for rec in self.symbols.values():
            if rec.kind == "class":
                by_name.setdefault(rec.name, []).append(rec)

        def is_model(r: SymbolRec) -> bool:
            return "exog_futr" in r.capabilities or "multivariate" in r.capabilities

        for name, recs in by_name.items():
            # several classes may share a simple name (an MLP layer beside the MLP model): prefer a model class
            targets = sorted(by_name.get(name[4:], []), key=lambda r: (not is_model(r), not r.is_public))
            if not name.startswith("Auto") or not targets:
                continue
            model = targets[0]
            for rec in recs:
                rec.capabilities["auto_of"] = (model.qualname, "declared", {"rule": "class name Auto<Model>"})
            model.capabilities["has_auto"] = (True, "declared", {"auto_class": recs[0].qualname})
        for rec in self.symbols.values():
            if rec.kind == "class" and is_model(rec):
                rec.capabilities.setdefault("has_auto", (False, "declared", {"rule": f"no class named Auto{rec.name}"}))
        for rec in self.symbols.values():
            if rec.kind == "class" and "loss" in rec.module.lower():
                loss = _classify_loss(rec, self.symbols)
                if loss is not None:
                    rec.loss = loss
                    rec.capabilities["is_loss"] = (True, "declared", {"module": rec.module})


_AVAILABLE = re.compile(r"(?:Available|Supported|Valid) (\w+?)s?:\s*\n((?:[ \t]*[-*] [^\n]+\n?)+)", re.IGNORECASE)


def _available_lists(doc: str | None, params: list[ParamRec]) -> None:
    """Class docstrings that list a parameter's values ("Available distributions:" + bullets)."""
    if not doc:
        return
    by_name = {p.name: p for p in params}
    for m in _AVAILABLE.finditer(doc):
        p = by_name.get(m.group(1).lower())
        if p is None:
            continue
        known = [v for v, _ in p.enums]
        for line in m.group(2).splitlines():
            word = line.strip().lstrip("-* ").split(" ")[0].strip()
            if word and word not in known:
                known.append(word)
                p.enums.append((word, "docstring"))
        p.sources["enums"] = "docstring:class"


_DEF_LINE = re.compile(r"^(\s*def\s)|(\s*async\s+def\s)|(.*(?<!\w)lambda(:|\s))|^(\s*@)")


class _ClassLines(ast.NodeVisitor):
    """Every class of one source file by qualname -> first line (its first decorator's, as ``inspect`` says)."""

    def __init__(self) -> None:
        self.stack: list[str] = []
        self.lines: dict[str, int] = {}

    def _scope(self, node: Any, name: str) -> None:
        self.stack.append(name)
        self.generic_visit(node)
        self.stack.pop()

    def visit_FunctionDef(self, node: Any) -> None:
        self.stack.append(node.name)
        self._scope(node, "<locals>")
        self.stack.pop()

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node: Any) -> None:
        q = ".".join([*self.stack, node.name])
        first = node.decorator_list[0].lineno if node.decorator_list else node.lineno
        self.lines.setdefault(q, first)
        self._scope(node, node.name)


@lru_cache(maxsize=512)
def _class_lines(file: str) -> dict[str, int]:
    lines = linecache.getlines(file)
    if not lines:
        return {}
    finder = _ClassLines()
    finder.visit(ast.parse("".join(lines)))
    return finder.lines


def _top_class_line(file: str, qualname: str) -> int | None:
    """A top-level class's first line by text alone (one ``class Name`` at column 0, then back over its
    decorators); None when that is not certain, and the caller parses the file."""
    if "." in qualname:
        return None
    lines = linecache.getlines(file)
    hits = _class_heads(file).get(qualname, [])
    if len(hits) != 1:
        return None
    first = hits[0]
    for j in range(hits[0] - 1, -1, -1):
        line = lines[j]
        if not line.strip() or line[0] in " \t)]}#":
            continue  # blank, indented (a decorator's arguments or an earlier body), a closing bracket, a comment
        if line.startswith("@"):
            first = j
            continue
        break
    return first + 1


@lru_cache(maxsize=512)
def _class_heads(file: str) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for i, line in enumerate(linecache.getlines(file)):
        if line.startswith("class "):
            m = _CLASS_HEAD.match(line)
            if m:
                out.setdefault(m.group(1), []).append(i)
    return out


_CLASS_HEAD = re.compile(r"class\s+(\w+)\s*[(:]")


def _lineno(obj: Any) -> int | None:
    """The line ``inspect.getsourcelines(obj)[1]`` gives, without its cost: ``inspect`` parses the whole module
    once per class (most of a scan's time); this parses each file once and reads functions' code objects."""
    obj = inspect.unwrap(obj)
    file = inspect.getsourcefile(obj)
    if not file:
        return None
    if inspect.isclass(obj):
        return _top_class_line(file, obj.__qualname__) or _class_lines(file).get(obj.__qualname__)
    if inspect.ismethod(obj):
        obj = obj.__func__
    code = getattr(obj, "__code__", None) if inspect.isfunction(obj) else None
    if code is None:
        return inspect.getsourcelines(obj)[1]  # anything else: inspect's own way
    lines = linecache.getlines(file)
    lnum = code.co_firstlineno - 1
    while 0 < lnum < len(lines) and not _DEF_LINE.match(lines[lnum]):
        lnum -= 1
    return lnum + 1


def _defined_in(definer: type, cls: type) -> str | None:
    return None if definer is cls else f"{definer.__module__}.{definer.__qualname__}"


def _public(qualname: str) -> bool:
    return not any(p.startswith("_") and not (p.startswith("__") and p.endswith("__")) for p in qualname.split("."))


def _relfile(path: str | None, roots: tuple[str, ...]) -> str | None:
    if not path:
        return None
    parts = path.replace("\\", "/").split("/")
    idx = [i for i, p in enumerate(parts) if p in roots]
    return "/".join(parts[idx[-1]:]) if idx else parts[-1]


# ------------------------------------------------------------------------------------------------ losses
def _stub_value(p: ParamRec) -> Any:
    if p.enums:
        return p.enums[0][0]
    for t, v in (("int", 1), ("float", 0.5), ("bool", False), ("list", [80]), ("str", "")):
        if t in p.type_norm:
            return v
    return 1


def _classify_loss(rec: SymbolRec, symbols: dict[str, SymbolRec]) -> dict | None:
    """Category and output type of a loss class, read from an instance built with its defaults."""
    module = sys.modules.get(rec.module)
    cls = getattr(module, rec.name, None) if module else None
    if not inspect.isclass(cls) or inspect.isabstract(cls) or issubclass(cls, BaseException):
        return None
    init = symbols.get(f"{rec.qualname}.__init__")
    params = init.params if init else []
    kwargs = {p.name: _stub_value(p) for p in params if p.required and p.kind != "positional_only"}
    evidence: dict[str, Any] = {"constructed_with": default_json(kwargs)}
    try:
        obj = cls(**kwargs)
    except Exception as e:  # noqa: BLE001
        evidence["construct_error"] = f"{type(e).__name__}: {str(e)[:200]}"
        obj = cls  # fall back to what the class itself declares
    attrs = {}
    for a in ("outputsize_multiplier", "output_names", "is_distribution_output", "quantiles", "q", "distribution"):
        if hasattr(obj, a):
            v = getattr(obj, a)
            if hasattr(v, "tolist"):
                v = v.tolist()
            attrs[a] = default_json(v)
    core = {"outputsize_multiplier", "output_names", "is_distribution_output"}
    if not (core & attrs.keys()) and "loss" not in rec.name.lower():
        return None  # a helper layer or function object living in a losses module
    evidence.update(attrs)
    names = attrs.get("output_names") if isinstance(attrs.get("output_names"), list) else None
    if attrs.get("is_distribution_output") is True:
        output_type = "distribution"
    elif "quantiles" in attrs or "q" in attrs or (names and len(names) > 1):
        output_type = "quantile"
    else:
        output_type = "point"
    init_names = {p.name for p in params}
    return {
        "category": "point" if output_type == "point" else "probabilistic",
        "output_type": output_type,
        "supports_level": "level" in init_names,
        "supports_quantiles": "quantiles" in init_names,
        "output_names": names,
        "evidence": evidence,
    }


# ------------------------------------------------------------------------------------------------ entry
def scan_library(spec: LibrarySpec, progress: Progress | None = None) -> ScanResult:
    """Scan one installed library. Raises LibraryNotInstalledError when it is not installed.

    ``progress(done, total, module)`` is called after each module (optional; for progress bars and logs)."""
    t0 = time.perf_counter()
    _ALIASES.clear()  # keyed by namespace id: a namespace of an earlier scan may have been freed and its id reused
    _OPTIONAL.clear()
    version = installed_version(spec)
    if version is None:
        raise LibraryNotInstalledError(
            f"library {spec.name!r} is not installed (no distribution {spec.dist_name!r}, no module "
            f"{spec.import_name!r}); install it, e.g. `uv pip install {spec.dist_name}`"
        )
    try:
        walker = _Walker(spec, progress)
        walker.walk()
        walker.derive()
    except ImportError as e:
        raise LibraryNotInstalledError(
            f"library {spec.name!r} {version} is installed but its top package {spec.import_name!r} "
            f"fails to import: {type(e).__name__}: {e}\n{traceback.format_exc(limit=3)}"
        ) from e
    return ScanResult(
        library=spec.name, version=version, python_version=platform.python_version(),
        environment=_environment(spec), symbols=walker.symbols, aliases=walker.aliases,
        import_failures=walker.failures, seconds=time.perf_counter() - t0,
    )
