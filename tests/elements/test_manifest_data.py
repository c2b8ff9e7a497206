"""Vendor facts are manifest data, not the core's defaults (D273, D274)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

import hubgate.elements.twiliov2
from hubgate.elements.manifest import Manifest
from hubgate.elements.twiliov2 import element as twilio
from hubgate.instances.configuration import secret_keys

TWILIO_JSON = json.loads(
    Path(hubgate.elements.twiliov2.__file__).with_name("manifest.json").read_text("utf-8")
)


def _without(*path: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(json.dumps(TWILIO_JSON))
    holder = data
    for key in path[:-1]:
        holder = holder[key]
    del holder[path[-1]]
    return data


@pytest.mark.parametrize(
    "path",
    [
        ("auth",),
        ("auth", "username"),
        ("auth", "password"),
        ("errors",),
        ("errors", "message"),
        ("pagination",),
        ("pagination", "pageParam"),
        ("pagination", "sizeParam"),
        ("pagination", "defaultSize"),
    ],
    ids=lambda p: ".".join(p),
)
def test_a_manifest_must_state_its_vendors_auth_errors_and_paging(path: tuple[str, ...]) -> None:
    with pytest.raises(ValidationError, match=path[-1]):
        Manifest.model_validate(_without(*path))


def test_twilio_states_its_own_names() -> None:
    manifest = twilio.manifest
    assert (manifest.auth.username, manifest.auth.password) == ("username", "password")
    assert (manifest.errors.code, manifest.errors.message) == ("code", "message")
    paging = manifest.pagination
    assert (paging.page_param, paging.size_param, paging.next_field) == (
        "Page",
        "PageSize",
        "next_page_uri",
    )


def test_secrets_come_from_the_manifests_flags() -> None:
    # Hubgate's own: the notification signature key and the tokens an OAuth element obtains.
    own = {"event.notification.signature.key", "oauth.user.token", "oauth.user.refresh_token"}
    assert secret_keys(twilio.manifest) == {"password", *own}
    # An element whose vendor secret has another name: that name is masked, "password" is not.
    data = json.loads(json.dumps(TWILIO_JSON))
    for entry in data["configuration"]:
        if entry["key"] == "password":
            entry["key"] = "api.key"
    data["auth"]["password"] = "api.key"
    other = Manifest.model_validate(data)
    assert secret_keys(other) == {"api.key", *own}


def test_poller_defaults_are_per_resource() -> None:
    by_path = {r.path: r.poller for r in twilio.manifest.resources}
    for path in ("messages", "calls"):
        assert by_path[path].created_field == "date_created"
        assert by_path[path].vendor_filters_final is True
    assert by_path["accounts"].created_field is None
    assert by_path["accounts"].vendor_filters_final is False
