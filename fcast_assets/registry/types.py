"""Normalise annotations and docstring types into type lists and allowed values.

Both runtime annotation objects and annotation strings (``from __future__ import annotations``, docstring
types such as ``str or int``, ``int, optional``, ``{'a', 'b'}``) go through one path: render to text,
parse with :mod:`ast`, walk the tree.
"""

from __future__ import annotations

import ast
import copy
import inspect
import json
import math
import re
from functools import lru_cache
from typing import Any

# canonical names for the builtin-ish types; anything else keeps its last dotted component
_CANON = {
    "int": "int", "integer": "int", "float": "float", "double": "float", "str": "str", "string": "str",
    "bool": "bool", "boolean": "bool", "none": "None", "nonetype": "None", "list": "list", "List": "list",
    "Sequence": "list", "Iterable": "list", "tuple": "tuple", "Tuple": "tuple", "dict": "dict", "Dict": "dict",
    "Mapping": "dict", "set": "set", "Set": "set", "Callable": "callable", "callable": "callable",
    "function": "callable", "Any": "any", "any": "any", "object": "any", "bytes": "bytes",
    "ndarray": "ndarray", "array": "ndarray", "array-like": "ndarray", "array_like": "ndarray",
}
_UNION_NAMES = {"Union", "Optional"}
_DOC_NOISE = {"optional", "default", "keyword-only", "required"}


def annotation_text(annotation: Any) -> str | None:
    """The annotation as written (strings stay as they are; runtime objects are rendered)."""
    if annotation is inspect.Parameter.empty:
        return None
    if isinstance(annotation, str):
        return annotation
    return inspect.formatannotation(annotation)


def _canon(name: str) -> str:
    last = name.split(".")[-1]
    return _CANON.get(last, _CANON.get(last.lower(), last))


def _literal_value(node: ast.AST) -> Any:
    return ast.literal_eval(node)


def _walk(node: ast.AST, types: list[str], enums: list[Any]) -> None:
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        _walk(node.left, types, enums)
        _walk(node.right, types, enums)
    elif isinstance(node, ast.Constant):
        if node.value is None:
            types.append("None")
        elif isinstance(node.value, str):  # a forward reference such as 'pd.DataFrame'
            try:
                _walk(ast.parse(node.value, mode="eval").body, types, enums)
            except SyntaxError:
                types.append(_canon(node.value))
        else:
            types.append(type(node.value).__name__)
    elif isinstance(node, (ast.Name, ast.Attribute)):
        types.append(_canon(ast.unparse(node)))
    elif isinstance(node, ast.Subscript):
        head = ast.unparse(node.value).split(".")[-1]
        args = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        if head in _UNION_NAMES:
            for a in args:
                _walk(a, types, enums)
            if head == "Optional":
                types.append("None")
        elif head == "Literal":
            for a in args:
                try:
                    v = _literal_value(a)
                except (ValueError, SyntaxError):
                    continue
                enums.append(v)
                types.append("None" if v is None else type(v).__name__)
        elif head == "Annotated":
            _walk(args[0], types, enums)
        else:
            types.append(_canon(head))
    elif isinstance(node, (ast.Set, ast.List, ast.Tuple)):  # numpydoc "{'a', 'b'}" choice sets
        for elt in node.elts:
            try:
                v = _literal_value(elt)
            except (ValueError, SyntaxError):
                _walk(elt, types, enums)
                continue
            enums.append(v)
            types.append("None" if v is None else type(v).__name__)
    else:
        types.append(_canon(ast.unparse(node)))


def _dedupe(items: list[Any]) -> list[Any]:
    out: list[Any] = []
    for i in items:
        if i not in out:
            out.append(i)
    return out


def parse_annotation(text: str | None) -> tuple[list[str], list[Any]]:
    """(normalised type names, literal values) of an annotation string; ([], []) when unparseable."""
    if not text:
        return [], []
    types, enums = _parse_annotation(text)
    return list(types), copy.deepcopy(list(enums))


@lru_cache(maxsize=8192)
def _parse_annotation(text: str) -> tuple[tuple[str, ...], tuple[Any, ...]]:
    """Annotations repeat across a library (``int``, ``Optional[str]``): parsed once per text."""
    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except SyntaxError:
        return (), ()
    types: list[str] = []
    enums: list[Any] = []
    _walk(tree, types, enums)
    return tuple(_dedupe(types)), tuple(_dedupe(enums))


_DOC_SPLIT = re.compile(r"\s*(?:,|\bor\b|\||/)\s*")


def parse_doc_type(text: str | None) -> tuple[list[str], list[Any]]:
    """Docstring types are prose-ish: ``str or int``, ``int, optional``, ``str list``, ``{'a', 'b'}``."""
    if not text:
        return [], []
    t = text.strip()
    if t.startswith("{") or t.startswith("Literal") or "[" in t:
        types, enums = parse_annotation(t)
        if types or enums:
            return types, enums
    types: list[str] = []
    for part in _DOC_SPLIT.split(t):
        part = part.strip().strip("`")
        if not part or part.lower() in _DOC_NOISE or part.lower().startswith("default"):
            continue
        words = part.split()
        if len(words) == 2 and words[1].lower() in ("list", "tuple", "dict", "array"):
            types.append(_canon(words[1]))  # "str list" -> list
            continue
        if len(words) > 2:
            continue
        parsed, _ = parse_annotation(part) if re.fullmatch(r"[\w.\[\], ]+", part) else ([], [])
        types.extend(parsed or [_canon(part)])
    return _dedupe(types), []


_QUOTED = re.compile(r"""(?:'([^'\n]{1,40})'|"([^"\n]{1,40})"|`([^`\n]{1,40})`)""")
_CHOICE_CUE = re.compile(
    r"\b(can be|one of|options?|choices?|choose|either|supported|valid values|possible values|allowed|"
    r"available|must be|accepts?)\b",
    re.IGNORECASE,
)
_PAREN_GROUP = re.compile(r"\(([^()]*)\)")


def _quoted(s: str) -> list[str]:
    return [next(g for g in m.groups() if g is not None) for m in _QUOTED.finditer(s)]


def doc_enum_values(doc_text: str | None) -> list[str]:
    """Allowed values a parameter's docstring lists (``Can be 'standard', 'robust' or 'minmax'``)."""
    if not doc_text:
        return []
    values: list[str] = []
    for sentence in re.split(r"(?<=[.;])\s+|\n\s*\n", doc_text):
        if _CHOICE_CUE.search(sentence):
            found = [q for q in _quoted(sentence) if _looks_like_value(q)]
            if len(found) >= 2:
                values.extend(found)
        if re.search(r"\bone of\b", sentence, re.IGNORECASE) and ":" in sentence and len(values) < 2:
            # "One of the supported methods: conformal_error or conformal_distribution"
            tail = sentence.split(":", 1)[1]
            found = [w for w in re.findall(r"\b[a-z]+(?:_[a-z0-9]+)+\b", tail)]
            if len(found) >= 2:
                values.extend(found)
    for group in _PAREN_GROUP.findall(doc_text):  # "('fastai', 'sqrt', 'half')"
        found = [q for q in _quoted(group) if _looks_like_value(q)]
        if len(found) >= 2:
            values.extend(found)
    return _dedupe(values)


def _looks_like_value(s: str) -> bool:
    # identifiers and short tokens such as robust-iqr; not code snippets, paths or sentences
    return bool(re.fullmatch(r"[A-Za-z0-9_\-+]{1,30}", s)) and not s.startswith("neuralforecast")


def default_json(value: Any) -> Any:
    """A default value as JSON; anything JSON cannot hold becomes a tagged repr (never dropped)."""
    try:
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError
        text = json.dumps(value, allow_nan=False)
        return json.loads(text)
    except (TypeError, ValueError, OverflowError):
        t = type(value)
        return {"__repr__": repr(value)[:500], "__type__": f"{t.__module__}.{t.__qualname__}"}
