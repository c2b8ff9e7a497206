"""Nulls go at every depth (D24); list items stay where they are."""

from __future__ import annotations

from hubgate.hub.normalize import SecretMask, drop_nulls, form_fields, redact


def test_drop_nulls_at_every_depth() -> None:
    value = {"a": None, "b": {"c": None, "d": [{"e": None, "f": 1}, None, [None, {"g": None}]]}}
    assert drop_nulls(value) == {"b": {"d": [{"f": 1}, None, [None, {}]]}}


def test_form_fields_and_redaction() -> None:
    pairs = form_fields(
        {"To": "+1", "MediaUrl": ["a", None, "b"], "N": 2, "V": {"1": "x"}, "X": None}
    )
    assert pairs == [
        ("To", "+1"),
        ("MediaUrl", "a"),
        ("MediaUrl", "b"),
        ("N", "2"),
        ("V", '{"1":"x"}'),
    ]
    logged = redact(
        {"auth_token": "t", "nested": ["s3cret", {"k": "my s3cret!"}], "u": "/a?p=s3%2Fcret"},
        SecretMask.of({"s3cret", "s3/cret", "ab"}),
        {"auth_token"},
    )
    assert logged == {
        "auth_token": "********",
        "nested": ["********", {"k": "my ********!"}],
        "u": "/a?p=********",
    }
    # A secret too short to mask inside text is still masked where it is the whole value.
    assert redact(["ab", "abc"], SecretMask.of({"ab"}), ()) == ["********", "abc"]
