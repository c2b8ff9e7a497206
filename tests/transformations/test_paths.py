"""``vendorPath`` syntax (D37): every form, read, write and delete."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hubgate.transformations.paths import PathError, delete, parse_path, write

_documents = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.text("ab0", max_size=3),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from("ab"), inner),
    max_leaves=8,
)

PRODUCTS: dict[str, Any] = {
    "details": {"Products": [
        {"id": 1, "name": "phone", "features": {"touchId": True}},
        {"id": "2", "name": "tablet", "features": {"touchId": False}},
        {"id": 4, "name": "watch", "active": True},
    ]},
    "Users": [{"DisplayName": "Ann", "Id": 1}, {"DisplayName": "Bo"}],
    "title": "list",
}  # fmt: skip


def values(path: str, document: Any = PRODUCTS) -> list[Any]:
    return [m.value for m in parse_path(path).find(document)]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("title", ["list"]),
        ("details.Products[0].name", ["phone"]),
        ("details.Products[-1].name", ["watch"]),
        ("details.Products[7].name", []),
        ("Users[*].DisplayName", ["Ann", "Bo"]),
        ("Users[*].Id", [1]),
        ("details.Products[id=4].name", ["watch"]),
        ("details.Products[id=2].name", ["tablet"]),  # a number finds a string id too
        ("details.Products[id='2'].name", ["tablet"]),
        ("details.Products[name=watch].id", [4]),
        ("details.Products[active=true].name", ["watch"]),
        ("details.Products[?(@.id==1)].name", ["phone"]),
        ("details.Products[?(@.features.touchId==true)].id", [1]),
        ("details.Products[?(@.id > 1 && @.name == 'watch')].id", [4]),
        ("details.Products[*].size()", [3]),
        ("details.Products.size()", [3]),
        ("title.size()", [4]),
        ("missing.size()", []),
        ("missing.deeper", []),
        ("title.deeper", []),
    ],
)
def test_every_form_reads(path: str, expected: list[Any]) -> None:
    assert values(path) == expected


def test_matches_say_where_they_were_and_their_star_indexes() -> None:
    found = parse_path("Users[*].DisplayName").find(PRODUCTS)
    assert [(m.parts, m.indexes) for m in found] == [
        (("Users", 0, "DisplayName"), (0,)),
        (("Users", 1, "DisplayName"), (1,)),
    ]
    (product,) = parse_path("details.Products[id=4]").find(PRODUCTS)
    assert product.parts == ("details", "Products", 2)


@pytest.mark.parametrize(
    ("path", "plain", "many"),
    [
        ("a.b", True, False),
        ("a[0].b", True, False),
        ("a[*].b", True, True),
        ("a[id=1].b", False, False),
        ("a[?(@.x==1)].b", False, False),
        ("a[*].size()", False, True),
    ],
)
def test_plain_paths_are_the_writable_ones(path: str, plain: bool, many: bool) -> None:
    parsed = parse_path(path)
    assert (parsed.plain, parsed.many) == (plain, many)


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("", "non-empty"),
        ("a..b", "misplaced '.' at position 1"),
        (".a", "misplaced '.' at position 0"),
        ("a.", "misplaced '.' at position 1"),
        ("a[", "bracket at position 1"),
        ("a[x]", "bracket at position 1"),
        ("a[?(@.x==1)", "unclosed filter at position 1"),
        ("a[?(@.x===1)]", "cannot read the filter"),
        ("a]b", "position 1"),
        (".size()", "needs a path"),
    ],
)
def test_bad_paths_say_where(path: str, message: str) -> None:
    with pytest.raises(PathError, match=message.replace("[", r"\[").replace("(", r"\(")):
        parse_path(path)


def test_write_makes_objects_and_lists_on_the_way() -> None:
    target: dict[str, Any] = {"keep": 1}
    write(target, parse_path("a.b[1].c").segments or (), (), "x")
    write(target, parse_path("users[*].name").segments or (), (2,), "n")
    write(target, parse_path("tags[*]").segments or (), (), "appended")
    write(target, parse_path("tags[*]").segments or (), (), "again")
    assert target == {
        "keep": 1,
        "a": {"b": [None, {"c": "x"}]},
        "users": [None, None, {"name": "n"}],
        "tags": ["appended", "again"],
    }


def test_write_replaces_a_scalar_in_the_way() -> None:
    target: dict[str, Any] = {"a": 5}
    write(target, parse_path("a.b").segments or (), (), 1)
    assert target == {"a": {"b": 1}}


def test_delete_removes_values_and_what_it_empties() -> None:
    document: dict[str, Any] = {
        "a": {"b": 1},
        "c": {"d": 2, "e": 3},
        "list": [{"x": 1}, {"x": 2, "y": 3}],
        "whole": [1, 2],
    }
    delete(
        document,
        [("a", "b"), ("c", "d"), ("list", 0, "x"), ("list", 1, "x"), ("whole", 0), ("whole", 1),
         ("whole", 1, "inside")],
    )  # fmt: skip
    assert document == {"c": {"e": 3}, "list": [{"y": 3}]}


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("a[10001]", "above 10000"),
        ("a[-10001]", "above 10000"),
        ("a[" + "9" * 900 + "]", "above 10000"),
        (".".join(["a"] * 65), "more than 64 parts"),
        ("a" * 1001, "at most 1000 characters"),
    ],
)
def test_paths_are_bounded(path: str, message: str) -> None:
    with pytest.raises(PathError, match=message):
        parse_path(path)


_PATH_ALPHABET = "ab.[]*?()@=<>!'\"0123456789-&|$ "


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=_PATH_ALPHABET, max_size=40), _documents)
def test_any_text_parses_or_is_refused_and_reading_never_fails(text: str, document: Any) -> None:
    try:
        path = parse_path(text)
    except PathError:
        return
    for match in path.find(document):
        assert isinstance(match.parts, tuple)
