"""Layering checks anyone can run: the packages of fcast_assets import each other without a cycle (every import,
function-local ones included, read from the source with ``ast``), and the lower layers never reach up."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest

import fcast_assets

ROOT = Path(fcast_assets.__file__).resolve().parent


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> list[tuple[str, int, bool]]:
    """(absolute module imported, line, inside a function) for every import statement of one file."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    local = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
             for n in ast.walk(f) if n is not f}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = importlib.util.resolve_name("." * node.level + (node.module or ""), package) if node.level \
                else node.module or ""
            # `from . import x` / `from .. import x`: x may be a module of that package
            targets = [f"{base}.{a.name}" for a in node.names] if not node.module else [base]
            out += [(t, node.lineno, id(node) in local) for t in targets]
        elif isinstance(node, ast.Import):
            out += [(a.name, node.lineno, id(node) in local) for a in node.names]
    return out


def package_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "fcast_assets" or len(parts) < 2:
        return None
    return parts[1].removesuffix(".py")


def package_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in ROOT.rglob("*.py"):
        src = package_of(_module_name(path))
        if src is None:
            continue
        for mod, _, _ in imports(path):
            dst = package_of(mod)
            if dst is not None and dst != src:
                graph.setdefault(src, set()).add(dst)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state and (c := visit(m)):
                return c
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state and (c := visit(n)):
            return c
    return None


def test_no_import_cycle_between_packages():
    graph = package_graph()
    assert {"plans", "models", "compat", "lake", "features", "registry", "defs", "db"} <= set(graph)
    assert find_cycle(graph) is None, f"import cycle between packages: {' -> '.join(find_cycle(graph))}"
    # the look-alike the check must catch: one edge back from plans to models closes a cycle
    assert find_cycle({**graph, "plans": graph["plans"] | {"models"}}) is not None


def test_lower_layers_do_not_reach_up():
    """plans is below models (models builds plans and runs them); nothing below defs/ imports Dagster."""
    graph = package_graph()
    assert "models" not in graph["plans"] and "cli" not in graph["models"]
    for path in ROOT.rglob("*.py"):
        name = _module_name(path)
        found = imports(path)
        if package_of(name) == "plans":
            bad = [(m, line) for m, line, _ in found if package_of(m) == "models"]
            assert not bad, f"{path.relative_to(ROOT)} imports fcast_assets.models: {bad}"
        if package_of(name) not in ("defs", "definitions"):
            dag = [(m, line) for m, line, _ in found if m.split(".")[0] in ("dagster", "dagster_deltalake")]
            assert not dag, f"{path.relative_to(ROOT)} imports Dagster below defs/: {dag}"


def test_imports_reader_sees_function_local_imports(tmp_path):
    """The reader itself: a function-local relative import is found and resolved (else the checks above pass
    on nothing)."""
    pkg = ROOT / "plans"
    found = {m for p in pkg.rglob("*.py") for m, _, _ in imports(p)}
    assert "fcast_assets.plans.baselines" in found and "fcast_assets.compat.spec" in found
    local = [(m, line) for p in (ROOT / "models").rglob("*.py") for m, line, inside in imports(p) if inside]
    assert local, "models/ has function-local imports; the reader must see them"


# the README's layers, bottom up (Layout section): a package imports only packages of lower layers
LAYERS = [{"config", "progress", "vocab"}, {"db", "locks"}, {"registry", "lake"}, {"features"}, {"compat"}, {"plans"},
          {"models"}, {"site"}, {"defs", "definitions"}, {"cli"}]  # the CLI builds defs' resources


def test_packages_follow_the_readme_layers():
    level = {p: i for i, layer in enumerate(LAYERS) for p in layer}
    graph = package_graph()
    assert set(graph) <= set(level), f"packages missing from LAYERS: {set(graph) - set(level)}"
    up = [(src, dst) for src, dsts in graph.items() for dst in dsts if level[dst] >= level[src]]
    assert not up, f"imports that reach up or sideways: {up}"


def test_every_internal_import_resolves():
    """Every ``fcast_assets`` import, function-local ones included, names a module or a name that exists: a
    module moved between packages leaves no import behind that only fails when its function runs."""
    import importlib

    missing = []
    for path in ROOT.rglob("*.py"):
        for mod, line, _ in imports(path):
            if package_of(mod) is None:
                continue
            if importlib.util.find_spec(mod) is not None:
                continue
            parent, _, attr = mod.rpartition(".")  # `from .x import name` is recorded as x.name only for `from .`
            if not (importlib.util.find_spec(parent) and hasattr(importlib.import_module(parent), attr)):
                missing.append(f"{path.relative_to(ROOT)}:{line} {mod}")
    assert not missing, missing


def test_one_exog_vocabulary():
    """Every spelling of the three exogenous kinds comes from fcast_assets.vocab.Exog and agrees with what the
    library, the registry's capability table, the feature generators and the model registry use."""
    import neuralforecast.models as nfm
    import yaml

    from fcast_assets.db.model_models import ModelRegistry
    from fcast_assets.features.registry import GENERATORS_FILE
    from fcast_assets.registry.scanner import capability_spec
    from fcast_assets.vocab import Exog

    caps = capability_spec()["attributes"]
    groups = {g["group"] for g in yaml.safe_load(GENERATORS_FILE.read_text(encoding="utf-8"))["generators"]}
    for e in Exog:
        assert caps[e.class_attribute]["code"] == e.capability
        assert hasattr(nfm.NHITS, e.class_attribute) and e.list_param in nfm.NHITS.__init__.__code__.co_varnames
        assert e.registry_column in ModelRegistry.model_fields
    assert groups <= {e.feature_group for e in Exog}
    assert Exog.of_list_param("futr_exog_list") is Exog.FUTR and Exog.FUTR.feature_prefix == "fut_"
    with pytest.raises(ValueError, match="not an exogenous list"):
        Exog.of_list_param("fut_exog_list")  # the look-alike spelling is refused
