"""Issue 9, items 6-10, 12 and 14: secrets stay out of sight, every refusal is clear and exact,
valid names and page numbers are taken (over HTTP against the test server)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from hubgate.hub.paging import MAX_PAGE
from hubgate.settings import Settings
from sims.twilio_sim import TwilioSimulator
from tests.conftest import Api, RunningHubgate, TenantCredentials, twilio_instance_body
from tests.e2e.test_errors import assert_d9

HUB = "/elements/api-v2/hubs/messaging"
MESSAGE = {"To": "+15558675310", "From": "+15017122661"}


async def own_instance(api: Api, sim: TwilioSimulator, **body: Any) -> tuple[dict[str, Any], Api]:
    """An instance of a Twilio account of its own, and a client holding its Element token."""
    sid, token = sim.add_account()
    request = twilio_instance_body(sim, username=sid, password=token)
    request.update(body)
    created = await api.post("instances", json=request)
    assert created.status == 200, created.text
    return created.body, api.with_auth(f"Element {created.body['token']}")


# --- 6. Settings -------------------------------------------------------------------------------


def test_settings_never_print_a_secret(hubgate: RunningHubgate, keyring_json: str) -> None:
    password = "pw-s3cret-for-the-repr"
    settings = Settings(
        keyring=keyring_json, database_url=f"postgresql://hub:{password}@127.0.0.1:5432/hub"
    )
    for shown in (repr(settings), str(settings), settings.model_dump_json(), f"{settings!r}"):
        assert password not in shown
        assert keyring_json not in shown
    assert settings.keyring is not None
    assert settings.keyring.get_secret_value() == keyring_json
    # The server under test reads both through the one accessor, and prints neither.
    running = hubgate.runtime.settings
    assert keyring_json not in repr(running)
    assert running.database_url is not None
    assert running.database_url.get_secret_value() not in repr(running)


# --- 7. Trace logs ----------------------------------------------------------------------------


async def test_trace_logs_mask_secrets_inside_longer_texts_and_urls(
    api: Api, sim: TwilioSimulator
) -> None:
    created, hub = await own_instance(api, sim, traceLoggingEnabled=True)
    token = sim.accounts()[created["configuration"]["username"]]
    sent = await hub.post(f"{HUB}/messages", json={**MESSAGE, "Body": f"my token is {token}!"})
    assert sent.status == 200, sent.text
    listed = await hub.get(f"{HUB}/messages", params={"where": f"to='+1{token}'"})
    assert listed.status == 200, listed.text
    logs = await api.get(f"instances/{created['id']}/logs")
    assert logs.status == 200, logs.text
    stored = json.dumps(logs.body)
    assert token not in stored
    post = next(e for e in logs.body if e["method"] == "POST")
    assert ["Body", "my token is ********!"] in post["requestBody"]
    assert post["responseBody"]["body"] == "my token is ********!"
    listing = next(e for e in logs.body if e["method"] == "GET")
    assert "********" in listing["vendorUrl"] + listing["path"]


# --- 8. Paging tokens ---------------------------------------------------------------------------


async def test_a_paging_token_only_pages_the_resource_it_came_from(
    api: Api, sim: TwilioSimulator
) -> None:
    created, hub = await own_instance(api, sim)
    for i in range(3):
        sim.add_inbound_message(
            "+15017122661",
            "+15558675310",
            f"p{i}",
            account_sid=created["configuration"]["username"],
        )
    first = await hub.get(f"{HUB}/messages", params={"pageSize": "1"})
    assert first.status == 200, first.text
    next_page = first.headers["Elements-Next-Page-Token"]
    same = await hub.get(f"{HUB}/messages", params={"pageSize": "1", "nextPage": next_page})
    assert same.status == 200, same.text
    assert [m["sid"] for m in same.body] != [m["sid"] for m in first.body]
    elsewhere = await hub.get(f"{HUB}/calls", params={"pageSize": "1", "nextPage": next_page})
    assert elsewhere.status == 400, elsewhere.text
    assert_d9(elsewhere.body, elsewhere.headers)
    assert "it pages messages, not calls" in elsewhere.body["message"]
    assert "providerMessage" not in elsewhere.body
    # Another instance of the same organization and element: still refused.
    _, other = await own_instance(api, sim)
    foreign = await other.get(f"{HUB}/messages", params={"nextPage": next_page})
    assert foreign.status == 400, foreign.text


# --- 9. Vendor webhooks -------------------------------------------------------------------------


def webhook_path(instance_id: int) -> str:
    encoded = base64.urlsafe_b64encode(str(instance_id).encode()).decode().rstrip("=")
    return f"/elements/api-v2/events/twiliov2/{encoded}"


async def test_the_webhook_route_answers_every_instance_it_does_not_serve_alike(
    api: Api, other_tenant: TenantCredentials, sim: TwilioSimulator
) -> None:
    theirs, _ = await own_instance(api.with_auth(other_tenant.authorization), sim)
    anonymous = api.with_auth(None)
    form = {"MessageSid": "SM" + "0" * 32, "MessageStatus": "delivered"}
    answers = [
        await anonymous.post(webhook_path(instance_id), data=form)
        for instance_id in (theirs["id"], theirs["id"] + 10_000_000, 2**62)
    ]
    for answer in answers:
        assert answer.status == 404, answer.text
        assert_d9(answer.body, answer.headers)
    assert len({a.body["message"] for a in answers}) == 1
    assert str(theirs["id"]) not in answers[0].body["message"]


# --- 10. Updates refuse what they cannot write ------------------------------------------------


@pytest.mark.parametrize("method", ["PATCH", "PUT"])
async def test_updates_refuse_read_only_and_unknown_fields(
    api: Api, sim: TwilioSimulator, method: str
) -> None:
    created, hub = await own_instance(api, sim, name="before")
    for target, client in ((f"instances/{created['id']}", api), ("instances", hub)):
        for field, value in [
            ("id", created["id"]),
            ("token", "x"),
            ("element", {"key": "twiliov2"}),
            ("createdDate", created["createdDate"]),
            ("frobnicate", 1),
        ]:
            refused = await client.call(method, target, json={"name": "after", field: value})
            assert refused.status == 400, (target, field, refused.text)
            assert_d9(refused.body, refused.headers)
            assert repr(field) in refused.body["message"]
        disabled = await client.call(method, target, json={"name": "after", "disabled": True})
        assert disabled.status == 400, disabled.text
        assert "'disabled'" in disabled.body["message"]
        assert "PUT or DELETE /instances/{id}/enabled" in disabled.body["message"]
    unchanged = await api.get(f"instances/{created['id']}")
    assert (unchanged.body["name"], unchanged.body["disabled"]) == ("before", False)
    # What may be written still is.
    writable = {"name": "after", "configuration": created["configuration"], "tags": ["t"]}
    renamed = await api.call(method, f"instances/{created['id']}", json=writable)
    assert renamed.status == 200, renamed.text
    assert renamed.body["name"] == "after"


# --- 12. Names and tags -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "text", ["山田\u3000太郎", "👩\u200d💻 dev", "🏳\ufe0f\u200d🌈", "no\u00a0break", "a < b > c"]
)
async def test_names_and_tags_take_printable_unicode(
    api: Api, sim: TwilioSimulator, text: str
) -> None:
    created, _ = await own_instance(api, sim, name=text, tags=[text, "plain"])
    assert created["name"] == text
    assert created["tags"] == [text, "plain"]
    patched = await api.patch(f"instances/{created['id']}", json={"tags": [f"{text} 2"]})
    assert patched.status == 200, patched.text
    assert patched.body["tags"] == [f"{text} 2"]


async def test_html_tags_go_and_text_stays(api: Api, sim: TwilioSimulator) -> None:
    created, _ = await own_instance(api, sim, name="<b>bold</b> & 1 < 2", tags=["<i>x</i>"])
    assert created["name"] == "bold & 1 < 2"
    assert created["tags"] == ["x"]


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("a\u0007b", "U+0007"),
        ("a\u0085b", "U+0085"),
        ("a\u202eb", "U+202E"),
        ("a\u2066b", "U+2066"),
    ],
)
async def test_names_and_tags_refuse_controls_and_bidi_overrides(
    api: Api, sim: TwilioSimulator, text: str, code: str
) -> None:
    for body in ({"name": text}, {"tags": [text]}):
        request = twilio_instance_body(sim)
        request.update(body)
        refused = await api.post("instances", json=request)
        assert refused.status == 400, refused.text
        assert_d9(refused.body, refused.headers)
        assert code in refused.body["message"]


# --- 14. page and pageSize ----------------------------------------------------------------------


async def test_hub_lists_cap_any_page_and_page_size(api: Api, sim: TwilioSimulator) -> None:
    created, hub = await own_instance(api, sim)
    sid = created["configuration"]["username"]
    for size in ("2147483647", "9" * 400):
        listed = await hub.get(f"{HUB}/messages", params={"pageSize": size})
        assert listed.status == 200, listed.text
        assert sim.requests[-1].query["PageSize"] == "100"  # the instance's pagination.max
        assert sim.requests[-1].user == sid
    far = await hub.get(f"{HUB}/messages", params={"page": "2147483647"})
    assert far.status == 200, far.text
    assert far.body == []
    assert sim.requests[-1].query["Page"] == str(MAX_PAGE - 1)
    for bad in ("0", "-1", "x", "1.5"):
        refused = await hub.get(f"{HUB}/messages", params={"pageSize": bad})
        assert refused.status == 400, refused.text
        assert "pageSize must be a whole number from 1" in refused.body["message"]


async def test_event_lists_cap_like_the_hub(api: Api, sim: TwilioSimulator) -> None:
    created, hub = await own_instance(api, sim)
    for client, path in (
        (api, "instances/events"),
        (api, f"instances/{created['id']}/events"),
        (hub, "instances/events"),
    ):
        for params in ({"pageSize": "2147483647"}, {"page": "2147483647"}, {"pageSize": "9" * 400}):
            listed = await client.get(path, params=params)
            assert listed.status == 200, (path, params, listed.text)
            assert isinstance(listed.body, list)
        for name in ("page", "pageSize"):
            refused = await client.get(path, params={name: "x"})
            assert refused.status == 400, refused.text
            assert_d9(refused.body, refused.headers)
            assert f"{name} must be a whole number from 1" in refused.body["message"]
