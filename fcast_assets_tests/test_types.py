"""Annotation / docstring type normalisation and default serialisation."""

import math
from typing import Literal, Optional, Union

import pytest

from fcast_assets.registry.types import (
    annotation_text, default_json, doc_enum_values, parse_annotation, parse_doc_type,
)


@pytest.mark.parametrize(
    "ann, types, enums",
    [
        ("Optional[int]", ["int", "None"], []),
        ("Union[str, int]", ["str", "int"], []),
        ("str | None", ["str", "None"], []),
        ("typing.Union[pandas.core.frame.DataFrame, NoneType]", ["DataFrame", "None"], []),
        ("Literal['a', 'b'] | None", ["str", "None"], ["a", "b"]),
        ("Optional[List[Union[int, float]]]", ["list", "None"], []),
        ("Literal[1, 2, None]", ["int", "None"], [1, 2, None]),
        ("'pd.DataFrame'", ["DataFrame"], []),
        ("not valid ][", [], []),
    ],
)
def test_parse_annotation(ann, types, enums):
    assert parse_annotation(ann) == (types, enums)


def test_runtime_annotations_render_and_parse():
    for ann, expect in ((Optional[int], ["int", "None"]), (Union[str, int], ["str", "int"]),
                        (Literal["x", "y"], ["str"]), (int | None, ["int", "None"])):
        assert parse_annotation(annotation_text(ann))[0] == expect
    assert parse_annotation(annotation_text(Literal["x", "y"]))[1] == ["x", "y"]


@pytest.mark.parametrize(
    "doc, types, enums",
    [
        ("str or int", ["str", "int"], []),
        ("int, optional", ["int"], []),
        ("str list", ["list"], []),
        ("{'standard', 'robust'}", ["str"], ["standard", "robust"]),
        ("bool, default=False", ["bool"], []),
        ("pandas.DataFrame", ["DataFrame"], []),
    ],
)
def test_parse_doc_type(doc, types, enums):
    got_types, got_enums = parse_doc_type(doc)
    assert got_types == types
    assert sorted(got_enums) == sorted(enums)


def test_doc_enum_values_from_prose():
    doc = ("Scaler to apply per-serie to temporal features before fitting.\n"
           "Can be 'standard', 'robust', 'robust-iqr', 'minmax' or 'boxcox'.")
    assert doc_enum_values(doc) == ["standard", "robust", "robust-iqr", "minmax", "boxcox"]
    assert doc_enum_values("embedding size strategy ('fastai', 'sqrt', 'half') or an integer") == \
        ["fastai", "sqrt", "half"]
    # quotes without a choice cue are not values
    assert doc_enum_values("Column 'ds' holds the timestamps and 'y' the target.") == []


def test_default_json_keeps_non_json_as_tagged_repr():
    assert default_json(3) == 3
    assert default_json((1, 2)) == [1, 2]
    assert default_json(None) is None
    tagged = default_json(math.nan)
    assert tagged["__repr__"] == "nan" and tagged["__type__"] == "builtins.float"
    obj = default_json(object())
    assert obj["__type__"] == "builtins.object" and obj["__repr__"].startswith("<object object")
