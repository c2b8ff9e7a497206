"""The mapping engine (D36, D37): both directions, options, inheritance, arrays, the script."""

from __future__ import annotations

import copy
import string
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hubgate.kit.sandbox import MIB, Limits
from hubgate.transformations.mapping import (
    Transformation,
    TransformationError,
    effective,
    from_vendor,
    parse_transformation,
    script_step,
    script_step_async,
    to_vendor,
    transform,
    with_level,
)

LIMITS = Limits(seconds=5.0, memory_bytes=32 * MIB)
REMOVE_UNMAPPED = [{"type": "passThrough", "properties": {"fromVendor": False, "toVendor": False}}]

# The background file's Twilio messages transformation, plus the write names (D37).
TWILIO = {
    "vendorName": "messages",
    "fields": [
        {"path": "id", "vendorPath": "sid"},
        {"path": "to", "vendorPath": "to", "vendorWritePath": "To"},
        {"path": "from", "vendorPath": "from", "vendorWritePath": "From"},
        {"path": "text", "vendorPath": "body", "vendorWritePath": "Body"},
        {"path": "status", "vendorPath": "status"},
        {
            "path": "sentAt",
            "type": "date",
            "vendorPath": "date_sent",
            "vendorType": "date",
            "configuration": [
                {"type": "transformDate", "properties": {"pattern": "yyyy-MM-dd'T'HH:mm:ssXXX"}}
            ],
        },
    ],
    "configuration": REMOVE_UNMAPPED,
}
TWILIO_MESSAGE = {
    "sid": "SM123",
    "to": "+15558675310",
    "from": "+15017122661",
    "body": "hi there",
    "status": "sent",
    "date_sent": "Thu, 05 Mar 2026 07:08:09 +0000",
    "num_segments": "1",
}


def transformation(body: dict[str, Any]) -> Transformation:
    return parse_transformation(body)


# ------------------------------------------------------------------------------ directions


def test_twilio_message_to_canonical() -> None:
    assert from_vendor(transformation(TWILIO), TWILIO_MESSAGE) == {
        "id": "SM123",
        "to": "+15558675310",
        "from": "+15017122661",
        "text": "hi there",
        "status": "sent",
        "sentAt": "2026-03-05T07:08:09Z",
    }


def test_canonical_body_to_twilio_uses_the_write_names() -> None:
    body = {"to": "+15558675310", "from": "+15017122661", "text": "hello", "colour": "red"}
    assert to_vendor(transformation(TWILIO), body) == {
        "To": "+15558675310",
        "From": "+15017122661",
        "Body": "hello",
    }


def test_unmapped_fields_pass_through_both_ways_by_default() -> None:
    t = transformation({"fields": [{"path": "name", "vendorPath": "Name"}]})
    assert from_vendor(t, {"Name": "n", "Extra": 1}) == {"name": "n", "Extra": 1}
    assert to_vendor(t, {"name": "n", "extra": 2}) == {"Name": "n", "extra": 2}


def test_pass_through_can_differ_per_direction() -> None:
    t = transformation({
        "fields": [{"path": "name", "vendorPath": "Name"}],
        "configuration": [
            {"type": "passThrough", "properties": {"fromVendor": False, "toVendor": True}}
        ],
    })  # fmt: skip
    assert from_vendor(t, {"Name": "n", "Extra": 1}) == {"name": "n"}
    assert to_vendor(t, {"name": "n", "extra": 2}) == {"Name": "n", "extra": 2}


def test_a_mapped_vendor_field_does_not_also_pass_through_under_its_own_name() -> None:
    t = transformation({"fields": [{"path": "city", "vendorPath": "address.city"}]})
    assert from_vendor(t, {"address": {"city": "Oslo", "zip": "0150"}}) == {
        "city": "Oslo",
        "address": {"zip": "0150"},
    }
    assert from_vendor(t, {"address": {"city": "Oslo"}}) == {"city": "Oslo"}


def test_a_mapped_field_wins_over_a_passed_through_one_of_its_name() -> None:
    t = transformation({"fields": [{"path": "id", "vendorPath": "Id"}]})
    assert from_vendor(t, {"Id": 7, "id": "vendor's own"}) == {"id": 7}


def test_dotted_canonical_paths_build_nested_objects() -> None:
    t = transformation({
        "fields": [
            {"path": "Address.street", "vendorPath": "street"},
            {"path": "Address.city", "vendorPath": "location.city"},
        ],
        "configuration": REMOVE_UNMAPPED,
    })  # fmt: skip
    canonical = from_vendor(t, {"street": "Main 1", "location": {"city": "Oslo"}})
    assert canonical == {"Address": {"street": "Main 1", "city": "Oslo"}}
    assert to_vendor(t, canonical) == {"street": "Main 1", "location": {"city": "Oslo"}}


def test_a_missing_source_leaves_the_field_out() -> None:
    assert from_vendor(transformation(TWILIO), {"sid": "SM1"}) == {"id": "SM1"}


def test_values_are_copied_not_shared() -> None:
    t = transformation({"fields": [{"path": "tags", "vendorPath": "labels"}]})
    vendor = {"labels": ["a"]}
    canonical = from_vendor(t, vendor)
    canonical["tags"].append("b")
    assert vendor == {"labels": ["a"]}


def test_the_source_object_is_never_changed() -> None:
    t = transformation({
        "fields": [
            {"path": "address.city", "vendorPath": "City"},
            {"path": "zip", "vendorPath": "address.zip"},
        ],
    })  # fmt: skip
    vendor = {"City": "Oslo", "address": {"zip": "0150", "street": "Main 1"}, "tags": ["a"]}
    canonical = from_vendor(t, vendor)
    assert canonical == {
        "zip": "0150",
        "address": {"street": "Main 1", "city": "Oslo"},
        "tags": ["a"],
    }
    assert vendor == {"City": "Oslo", "address": {"zip": "0150", "street": "Main 1"}, "tags": ["a"]}


def test_only_objects_are_mapped() -> None:
    with pytest.raises(TransformationError, match="only objects"):
        from_vendor(transformation(TWILIO), ["not", "an", "object"])  # type: ignore[arg-type]


# ------------------------------------------------------------------------------ path forms


PRODUCTS = {
    "details": {
        "Products": [
            {"id": 2, "name": "phone", "features": {"touchId": True}},
            {"id": 4, "name": "tablet", "features": {"touchId": False}},
        ]
    }
}


@pytest.mark.parametrize(
    ("vendor_path", "expected"),
    [
        ("details.Products[0].id", 2),
        ("details.Products[id=4].name", "tablet"),
        ("details.Products[?(@.id==2)].name", "phone"),
        ("details.Products[?(@.features.touchId==true)].id", 2),
        ("details.Products[*].size()", 2),
        ("details.Products[*].name", ["phone", "tablet"]),
        ("details.Products", PRODUCTS["details"]["Products"]),
    ],
)
def test_each_vendor_path_form_maps(vendor_path: str, expected: Any) -> None:
    t = transformation({
        "fields": [{"path": "value", "vendorPath": vendor_path}], "configuration": REMOVE_UNMAPPED
    })  # fmt: skip
    assert from_vendor(t, PRODUCTS) == {"value": expected}


def test_selecting_paths_are_read_only_towards_the_vendor() -> None:
    t = transformation({
        "fields": [
            {"path": "tablet", "vendorPath": "details.Products[id=4].name"},
            {"path": "count", "vendorPath": "details.Products[*].size()"},
            {"path": "title", "vendorPath": "Title"},
        ],
        "configuration": REMOVE_UNMAPPED,
    })  # fmt: skip
    assert to_vendor(t, {"tablet": "x", "count": 3, "title": "t"}) == {"Title": "t"}


# ------------------------------------------------------------------------------ arrays


ARRAYS = {
    "fields": [
        {"type": "array", "path": "users", "vendorPath": "Users[*]"},
        {"type": "string", "path": "users[*].displayNamez", "vendorPath": "Users[*].DisplayName"},
    ],
}


def test_array_to_array_maps_each_item() -> None:
    vendor = {"Users": [{"DisplayName": "Ann", "Id": 1}, {"DisplayName": "Bo", "Id": 2}], "n": 2}
    canonical = from_vendor(transformation(ARRAYS), vendor)
    assert canonical == {
        "n": 2,
        "users": [{"Id": 1, "displayNamez": "Ann"}, {"Id": 2, "displayNamez": "Bo"}],
    }
    assert to_vendor(transformation(ARRAYS), canonical) == vendor


def test_array_items_keep_only_mapped_parts_when_unmapped_fields_are_removed() -> None:
    t = transformation({**ARRAYS, "configuration": REMOVE_UNMAPPED})
    vendor = {"Users": [{"DisplayName": "Ann", "Id": 1}], "n": 2}
    assert from_vendor(t, vendor) == {"users": [{"displayNamez": "Ann"}]}


def test_star_on_both_sides_maps_index_for_index() -> None:
    t = transformation({
        "fields": [{"path": "names[*]", "vendorPath": "Users[*].DisplayName"}],
        "configuration": REMOVE_UNMAPPED,
    })  # fmt: skip
    canonical = from_vendor(t, {"Users": [{"DisplayName": "Ann"}, {"DisplayName": "Bo"}]})
    assert canonical == {"names": ["Ann", "Bo"]}
    assert to_vendor(t, canonical) == {"Users": [{"DisplayName": "Ann"}, {"DisplayName": "Bo"}]}


# ------------------------------------------------------------------------------ field options


def _options(*configuration: dict[str, Any]) -> Transformation:
    return transformation({
        "fields": [
            {"path": "churrosId", "vendorPath": "Id"},
            {"path": "churrosMod", "vendorPath": "LastModifiedDate",
             "configuration": list(configuration)},
        ],
        "configuration": REMOVE_UNMAPPED,
    })  # fmt: skip


@pytest.mark.parametrize(
    "option",
    [
        {"type": "remove", "properties": {"fromVendor": True, "toVendor": True}},
        {"type": "passThrough", "properties": {"fromVendor": False, "toVendor": False}},
    ],
)
def test_remove_and_field_pass_through_false_empty_the_field_both_ways(
    option: dict[str, Any],
) -> None:
    t = _options(option)
    assert from_vendor(t, {"Id": 1, "LastModifiedDate": "x"}) == {"churrosId": 1}
    assert to_vendor(t, {"churrosId": 1, "churrosMod": "x"}) == {"Id": 1}


def test_remove_can_be_one_direction_only() -> None:
    t = _options({"type": "remove", "properties": {"fromVendor": True, "toVendor": False}})
    assert from_vendor(t, {"Id": 1, "LastModifiedDate": "x"}) == {"churrosId": 1}
    assert to_vendor(t, {"churrosId": 1, "churrosMod": "x"}) == {"Id": 1, "LastModifiedDate": "x"}


def test_a_removed_vendor_field_does_not_pass_through_either() -> None:
    t = transformation({
        "fields": [{"path": "secret", "vendorPath": "Secret", "configuration": [
            {"type": "remove", "properties": {"fromVendor": True, "toVendor": True}}]}],
    })  # fmt: skip
    assert from_vendor(t, {"Secret": "s", "Other": 1}) == {"Other": 1}


def test_transform_date_formats_the_canonical_side() -> None:
    t = _options({"type": "transformDate", "properties": {"pattern": "yyyy-MM-dd"}})
    assert from_vendor(t, {"Id": 1, "LastModifiedDate": "2026-03-05T23:30:00-02:00"}) == {
        "churrosId": 1,
        "churrosMod": "2026-03-06",
    }
    # Towards the vendor: ISO 8601 unless a vendorPattern says otherwise.
    assert to_vendor(t, {"churrosMod": "2026-03-06"}) == {
        "LastModifiedDate": "2026-03-06T00:00:00Z"
    }
    twilio_style = _options({
        "type": "transformDate",
        "properties": {"pattern": "yyyy-MM-dd", "vendorPattern": "EEE, dd MMM yyyy HH:mm:ss Z"},
    })  # fmt: skip
    assert to_vendor(twilio_style, {"churrosMod": "2026-03-06"}) == {
        "LastModifiedDate": "Fri, 06 Mar 2026 00:00:00 +0000"
    }


def test_transform_date_leaves_a_value_that_is_not_a_date() -> None:
    t = _options({"type": "transformDate", "properties": {"pattern": "yyyy-MM-dd"}})
    assert from_vendor(t, {"LastModifiedDate": "soon"}) == {"churrosMod": "soon"}


# ------------------------------------------------------------------------------ parsing


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"fields": "x"}, "fields must be a list"),
        ({"fields": [{"path": "a"}]}, r"fields\[0\].vendorPath must be a string"),
        ({"fields": [{"path": "a", "vendorPath": "b[?(@.x==1)"}]}, "unclosed filter"),
        ({"fields": [{"path": "a[id=1]", "vendorPath": "b"}]}, "canonical path takes only"),
        (
            {"fields": [{"path": "a", "vendorPath": "b", "vendorWritePath": "B[?(@.x==1)]"}]},
            "only names, \\[n\\] and \\[\\*\\] are writable",
        ),
        (
            {"fields": [{"path": "a", "vendorPath": "b"}, {"path": "a", "vendorPath": "c"}]},
            "mapped twice",
        ),
        ({"configuration": [{"type": "sideways"}]}, "'sideways' is not one of passThrough"),
        (
            {"fields": [{"path": "a", "vendorPath": "b", "configuration": [{"type": "inherit"}]}]},
            "'inherit' is not one of remove",
        ),
        (
            {"configuration": [{"type": "passThrough", "properties": {"fromVendor": "no"}}]},
            "'fromVendor' must be true or false",
        ),
        (
            {"fields": [{"path": "a", "vendorPath": "b",
                         "configuration": [{"type": "transformDate", "properties": {}}]}]},
            "transformDate needs a 'pattern'",
        ),
        (
            {"fields": [{"path": "a", "vendorPath": "b",
                         "configuration": [{"type": "transformDate",
                                            "properties": {"pattern": "YYYY"}}]}]},
            "week-based year",
        ),
        ({"vendorName": ""}, "vendorName"),
        ({"script": "done(1)"}, "script must be an object"),
    ],
)  # fmt: skip
def test_bad_bodies_name_what_is_wrong(body: dict[str, Any], message: str) -> None:
    with pytest.raises(TransformationError, match=message):
        parse_transformation(body)


def test_a_js_only_transformation_has_no_fields() -> None:
    t = parse_transformation(
        {"vendorName": "contacts", "fields": [], "script": {"body": "done(1)"}}
    )
    assert t.fields == ()
    assert t.script == "done(1)"


# ------------------------------------------------------------------------------ inheritance


def _level(level: str, fields: list[dict[str, Any]], inherit: bool) -> Transformation:
    body: dict[str, Any] = {"vendorName": "Account", "fields": fields}
    if inherit:
        body["configuration"] = [{"type": "inherit"}]
    return with_level(parse_transformation(body), level)  # type: ignore[arg-type]


ORG = _level("organization", [{"path": "churrosId", "vendorPath": "Id"}], inherit=False)
ACCOUNT = _level("account", [{"path": "churrosName", "vendorPath": "Name"}], inherit=True)
INSTANCE = _level(
    "instance", [{"path": "churrosMod", "vendorPath": "LastModifiedDate"}], inherit=True
)


def test_inherit_merges_the_three_levels_and_each_field_keeps_its_level() -> None:
    merged = effective([ORG, ACCOUNT, INSTANCE])
    assert merged is not None
    assert [(f.path.text, f.level) for f in merged.fields] == [
        ("churrosId", "organization"),
        ("churrosName", "account"),
        ("churrosMod", "instance"),
    ]
    assert from_vendor(merged, {"Id": 1, "Name": "n", "LastModifiedDate": "d"}) == {
        "churrosId": 1,
        "churrosName": "n",
        "churrosMod": "d",
    }


def test_without_inherit_the_most_specific_level_wins() -> None:
    alone = _level("instance", [{"path": "churrosMod", "vendorPath": "X"}], inherit=False)
    merged = effective([ORG, ACCOUNT, alone])
    assert merged is not None
    assert [f.path.text for f in merged.fields] == ["churrosMod"]


def test_inherit_stops_at_a_level_that_does_not_inherit() -> None:
    account = _level("account", [{"path": "churrosName", "vendorPath": "Name"}], inherit=False)
    merged = effective([ORG, account, INSTANCE])
    assert merged is not None
    assert [f.path.text for f in merged.fields] == ["churrosName", "churrosMod"]


def test_a_lower_level_wins_on_the_same_path() -> None:
    override = _level("instance", [{"path": "churrosId", "vendorPath": "ExternalId"}], inherit=True)
    merged = effective([ORG, override])
    assert merged is not None
    assert [(f.path.text, f.vendor_path.text, f.level) for f in merged.fields] == [
        ("churrosId", "ExternalId", "instance")
    ]


def test_only_some_levels_may_exist() -> None:
    assert effective([]) is None
    merged = effective([ACCOUNT])
    assert merged is not None
    assert [f.level for f in merged.fields] == ["account"]


# ------------------------------------------------------------------------------ the script


SCRIPTED = {
    "vendorName": "contacts",
    "fields": [{"path": "id", "vendorPath": "id"}],
    "script": {"body": "transformedObject.foo='bar'; done(transformedObject);"},
}


def _script(body: str) -> Transformation:
    return parse_transformation({**SCRIPTED, "script": {"body": body}})


def test_a_script_that_adds_a_field() -> None:
    t = parse_transformation(SCRIPTED)
    originals = [{"id": 1, "x": 1}, {"id": 2}]
    mapped = [from_vendor(t, o) for o in originals]
    objects, error = script_step(t, originals, mapped, from_vendor=True, limits=LIMITS)
    assert objects == [{"id": 1, "x": 1, "foo": "bar"}, {"id": 2, "foo": "bar"}]
    assert error is None


def test_the_script_sees_the_original_and_the_direction() -> None:
    t = _script("done({was: originalObject.Name, now: transformedObject.id, fromVendor})")
    objects, error = script_step(t, [{"Name": "n"}], [{"id": 1}], from_vendor=False, limits=LIMITS)
    assert objects == [{"was": "n", "now": 1, "fromVendor": False}]
    assert error is None


def test_a_throwing_script_leaves_the_mapped_object_and_says_why() -> None:
    t = _script("if (originalObject.bad) throw new Error('no good'); done({ok: true})")
    objects, error = script_step(
        t, [{"bad": True}, {}], [{"id": 1}, {"id": 2}], from_vendor=True, limits=LIMITS
    )
    assert objects == [{"id": 1}, {"ok": True}]
    assert error == "transformation script failed: error: Error: no good"


def test_a_runaway_script_is_stopped_and_the_answer_is_still_the_mapped_list() -> None:
    t = _script("while (true) {}")
    objects, error = script_step(
        t,
        [{}, {}],
        [{"id": 1}, {"id": 2}],
        from_vendor=True,
        limits=Limits(seconds=0.5, memory_bytes=16 * MIB),
    )
    assert objects == [{"id": 1}, {"id": 2}]
    assert error == "transformation script failed: time limit: the script ran longer than 0.5 s"


async def test_a_memory_bomb_is_stopped_and_the_answer_is_still_the_mapped_object() -> None:
    t = _script("const a = []; while (true) a.push(new Array(1000).fill(originalObject))")
    objects, error = await script_step_async(
        t, [{}], [{"id": 1}], from_vendor=True, limits=Limits(seconds=30, memory_bytes=16 * MIB)
    )
    assert objects == [{"id": 1}]
    assert error is not None
    assert error.startswith("transformation script failed: memory limit")


def test_one_context_serves_the_whole_list() -> None:
    t = _script("globalThis.n = (globalThis.n || 0) + 1; done({id: transformedObject.id, n})")
    objects, _ = script_step(
        t, [{}, {}, {}], [{"id": 1}, {"id": 2}, {"id": 3}], from_vendor=True, limits=LIMITS
    )
    assert [o["n"] for o in objects] == [1, 2, 3]


def test_without_a_script_the_mapped_objects_are_the_answer() -> None:
    t = transformation(TWILIO)
    objects, error = script_step(t, [{}], [{"id": 1}], from_vendor=True, limits=LIMITS)
    assert (objects, error) == ([{"id": 1}], None)


# ------------------------------------------------------------------------------ properties

_names = st.text(string.ascii_letters, min_size=1, max_size=6)
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_names, inner, max_size=3),
    max_leaves=6,
)


@st.composite
def plain_mappings(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    """A plain-path transformation and a vendor object that has some of its fields."""
    count = draw(st.integers(min_value=1, max_value=5))
    fields = []
    vendor: dict[str, Any] = {}
    for n in range(count):
        nested = draw(st.booleans())
        vendor_path = f"v{n}.inner" if nested else f"v{n}"
        path = f"c{n}.sub" if draw(st.booleans()) else f"c{n}"
        fields.append({"path": path, "vendorPath": vendor_path})
        if draw(st.booleans()):
            value = draw(_json)
            if nested:
                extra = draw(st.dictionaries(st.sampled_from(["x", "y"]), _json, max_size=2))
                vendor[f"v{n}"] = {**extra, "inner": value}
            else:
                vendor[f"v{n}"] = value
    unmapped = draw(st.dictionaries(_names.map(lambda s: "u" + s), _json, max_size=3))
    return {"fields": fields}, {**unmapped, **vendor}


@settings(max_examples=200, deadline=None)
@given(plain_mappings())
def test_mapping_then_unmapping_a_plain_transformation_round_trips(
    case: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    body, vendor = case
    t = parse_transformation(body)
    before = copy.deepcopy(vendor)
    canonical = from_vendor(t, vendor)
    assert vendor == before
    assert to_vendor(t, canonical) == vendor


@settings(max_examples=100, deadline=None)
@given(plain_mappings())
def test_removing_unmapped_fields_keeps_exactly_the_mapped_paths(
    case: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    body, vendor = case
    t = parse_transformation({**body, "configuration": REMOVE_UNMAPPED})
    canonical = from_vendor(t, vendor)
    expected_roots = set()
    for mapped in t.fields:
        if mapped.vendor_path.find(vendor):
            expected_roots.add(mapped.path.text.split(".")[0])
    assert set(canonical) == expected_roots


_segments = st.sampled_from(["a", "b", "[0]", "[1]", "[*]", "[a=1]", "[?(@.b==true)]"])


@st.composite
def any_path(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(["a", "b"]))
    for segment in draw(st.lists(_segments, max_size=3)):
        text += segment if segment.startswith("[") else "." + segment
    return text + (".size()" if draw(st.booleans()) and draw(st.booleans()) else "")


_documents = st.recursive(
    st.none() | st.booleans() | st.integers(0, 2) | st.text("ab", max_size=2),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from("ab"), inner),
    max_leaves=10,
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(any_path(), any_path(), st.booleans()), min_size=1, max_size=4),
    st.dictionaries(st.sampled_from("ab"), _documents),
    st.booleans(),
)
def test_any_transformation_maps_any_object_both_ways_without_failing(
    pairs: list[tuple[str, str, bool]], document: dict[str, Any], keep: bool
) -> None:
    fields = [{"path": p, "vendorPath": v} for p, v, _ in pairs]
    configuration = [] if keep else REMOVE_UNMAPPED
    try:
        t = parse_transformation({"fields": fields, "configuration": configuration})
    except TransformationError:
        return
    before = copy.deepcopy(document)
    assert isinstance(from_vendor(t, document), dict)
    assert isinstance(to_vendor(t, document), dict)
    assert document == before


async def test_transform_maps_then_scripts_a_whole_answer() -> None:
    script = "done({...transformedObject, segments: Number(originalObject.num_segments)})"
    t = parse_transformation({**TWILIO, "script": {"body": script}})
    objects, error = await transform(
        t, [TWILIO_MESSAGE, TWILIO_MESSAGE], from_vendor=True, limits=LIMITS
    )
    assert error is None
    assert objects == [{**from_vendor(t, TWILIO_MESSAGE), "segments": 1}] * 2


async def test_transform_builds_a_request_body_with_the_script_told_so() -> None:
    t = parse_transformation({
        **TWILIO,
        "script": {"body": "done(fromVendor ? null : {...transformedObject, StatusCallback: 'x'})"},
    })  # fmt: skip
    objects, error = await transform(
        t, [{"to": "+1", "from": "+2", "text": "hi"}], from_vendor=False, limits=LIMITS
    )
    assert error is None
    assert objects == [{"To": "+1", "From": "+2", "Body": "hi", "StatusCallback": "x"}]


async def test_transform_with_a_failing_script_answers_the_mapped_objects() -> None:
    t = parse_transformation({**TWILIO, "script": {"body": "done("}})
    objects, error = await transform(t, [TWILIO_MESSAGE], from_vendor=True, limits=LIMITS)
    assert objects == [from_vendor(t, TWILIO_MESSAGE)]
    assert error is not None
    assert error.startswith("transformation script failed: syntax error: SyntaxError")
