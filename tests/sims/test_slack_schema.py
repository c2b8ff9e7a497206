"""The Slack simulator's bodies match Slack's own Swagger 2.0 file (../shared/slack/).

The file is "not strictly valid" (slack-api.md §7, ../shared/slack/README.md): it writes
"A or null" as a tuple-form `items` list, which Swagger 2.0 forbids and JSON Schema reads as
tuple validation (checking nothing on an object). `swagger_to_json_schema` turns each such list
into the `anyOf` it means, so the schemas below have teeth; then every success body is
validated against the method's `200` schema and every error body against its `default` one,
with JSON Schema draft 4 (Swagger 2.0's dialect).

What could not be validated as written, and what is checked instead:
- `conversations.history` 200: the schema requires `channel_actions_ts` and
  `channel_actions_count` and forbids `response_metadata`, which its own example has and cursor
  paging needs. Checked with those two dropped from `required` and `response_metadata` allowed
  (the example's shape); every message is still checked against `objs_message`.
- `chat.update` 200 types `message.blocks` as an object, while blocks are an array (as the
  file's own `blocks` definition says); the update validated here carries text only.
- `objs_message` has no `edited`, which Slack adds to an edited message (slack-api.md §3):
  the check adds it as `{user, ts}`.
- `oauth.v2.access` 200 is a generic `{"ok": true}` with any other properties (and predates
  token rotation), so it proves little; the token fields are checked in test_slack.py.
- Error codes that the file's `default` enums predate or do not list for a method
  (`token_expired`, `invalid_cursor`, `invalid_limit`, `invalid_types`, `ratelimited`,
  `message_not_found`, `cant_update_message`, `cant_delete_message`, ...): only
  `{"ok": false, "error": <string>}` is checked for them, against `defs_ok_false`.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import aiohttp
import jsonschema
import pytest
from jsonschema import Draft4Validator

from sims.receiver import CallbackReceiver
from sims.slack import SlackSimulator
from tests.conftest import shared_file
from tests.sims.test_slack import CALLBACK, api, consent, exchange

JsonObject = dict[str, Any]
# Slack marks an edited message with `edited` (slack-api.md §3); `objs_message` lacks it.
EDITED = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "user": {"$ref": "#/definitions/defs_user_id"},
        "ts": {"$ref": "#/definitions/defs_ts"},
    },
    "required": ["user", "ts"],
}


def swagger_to_json_schema(node: Any) -> Any:
    """Tuple-form `items: [A, B]` (meaning "A or B") → `anyOf`, recursively."""
    if isinstance(node, list):
        return [swagger_to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: swagger_to_json_schema(value) for key, value in node.items()}
    items = converted.get("items")
    if isinstance(items, list):
        if converted.get("type") == "array":
            converted["items"] = {"anyOf": items}
        else:
            del converted["items"]
            converted = {"anyOf": items, **converted}
    return converted


class SlackSpec:
    def __init__(self, document: JsonObject) -> None:
        self.document = document

    def response(self, method: str, status: str) -> JsonObject:
        item = self.document["paths"][f"/{method}"]
        operation = item.get("post") or item["get"]
        schema: JsonObject = operation["responses"][status]["schema"]
        return schema

    def validator(self, schema: JsonObject) -> Draft4Validator:
        return Draft4Validator({**schema, "definitions": self.document["definitions"]})

    def check(self, schema: JsonObject, body: Any) -> None:
        errors = list(self.validator(schema).iter_errors(body))
        assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:10])


@pytest.fixture(scope="module")
def spec() -> SlackSpec:
    path = shared_file("slack/slack_web_openapi_v2.json")
    document = swagger_to_json_schema(json.loads(path.read_text()))
    document["definitions"]["objs_message"]["properties"]["edited"] = EDITED
    return SlackSpec(document)


def history_schema(spec: SlackSpec) -> JsonObject:
    schema = copy.deepcopy(spec.response("conversations.history", "200"))
    schema["required"] = [r for r in schema["required"] if not r.startswith("channel_actions")]
    schema["properties"]["response_metadata"] = {"$ref": "#/definitions/objs_response_metadata"}
    return schema


async def test_success_bodies_match_the_200_schemas(
    spec: SlackSpec,
    slack: SlackSimulator,
    http: aiohttp.ClientSession,
    receiver: CallbackReceiver,
) -> None:
    (code,) = (await consent(http, slack, "Allow", user_scope="search:read"))["code"]
    tokens = await exchange(http, slack, {"code": code, "redirect_uri": CALLBACK})
    spec.check(spec.response("oauth.v2.access", "200"), tokens)
    bot, user = tokens["access_token"], tokens["authed_user"]["access_token"]
    general = slack.channel_named("general")
    slack.add_channel("hidden", private=True)
    slack.request_url = receiver.url
    await slack.send_event(general, text="from a member")

    bodies: list[tuple[str, dict[str, str]]] = [
        ("auth.test", {}),
        ("chat.postMessage", {"channel": general, "text": "one"}),
        ("chat.postMessage", {"channel": general, "text": "two", "thread_ts": "1600000000.000100"}),
    ]
    for method, form in bodies:
        _, body, _ = await api(http, slack, method, bot, form=form)
        assert body["ok"] is True, body
        spec.check(spec.response(method, "200"), body)
    _, body, _ = await api(http, slack, "auth.test", user)
    spec.check(spec.response("auth.test", "200"), body)

    _, posted, _ = await api(
        http, slack, "chat.postMessage", bot, form={"channel": general, "text": "three"}
    )
    form = {"channel": general, "ts": posted["ts"], "text": "3"}
    _, body, _ = await api(http, slack, "chat.update", bot, form=form)
    spec.check(spec.response("chat.update", "200"), body)

    _, body, _ = await api(
        http, slack, "conversations.history", bot, get={"channel": general, "limit": "2"}
    )
    assert body["response_metadata"]["next_cursor"]
    spec.check(history_schema(spec), body)
    _, body, _ = await api(http, slack, "conversations.history", bot, get={"channel": general})
    assert {"user", "bot_id"} <= {k for m in body["messages"] for k in m}
    spec.check(history_schema(spec), body)

    types = {"types": "public_channel,private_channel", "limit": "2"}
    _, body, _ = await api(http, slack, "conversations.list", bot, get=types)
    spec.check(spec.response("conversations.list", "200"), body)
    _, body, _ = await api(http, slack, "users.list", bot, get={"limit": "1"})
    spec.check(spec.response("users.list", "200"), body)
    _, body, _ = await api(http, slack, "users.list", bot, get={})
    assert any(m["is_bot"] for m in body["members"])
    spec.check(spec.response("users.list", "200"), body)

    _, body, _ = await api(
        http, slack, "chat.delete", bot, form={"channel": general, "ts": posted["ts"]}
    )
    spec.check(spec.response("chat.delete", "200"), body)


@pytest.mark.parametrize(
    ("method", "form", "token"),
    [
        ("auth.test", {}, None),
        ("auth.test", {}, "xoxb-wrong"),
        ("chat.postMessage", {"channel": "C00000000X", "text": "x"}, "good"),
        ("chat.postMessage", {"channel": "#general"}, "good"),
        ("conversations.history", {"channel": "C00000000X"}, "good"),
        ("conversations.list", {}, "xoxb-wrong"),
        ("users.list", {}, None),
        ("chat.update", {"channel": "C00000000X", "ts": "1.1", "text": "x"}, "good"),
        ("chat.delete", {"channel": "C00000000X", "ts": "1.1"}, "good"),
    ],
)
async def test_error_bodies_match_the_default_schemas(
    spec: SlackSpec,
    slack: SlackSimulator,
    http: aiohttp.ClientSession,
    method: str,
    form: dict[str, str],
    token: str | None,
) -> None:
    status, body, _ = await api(
        http, slack, method, slack.issue_token() if token == "good" else token, form=form
    )
    assert status == 200
    assert body["ok"] is False
    spec.check(spec.response(method, "default"), body)


async def test_error_codes_the_file_predates_still_have_its_error_shape(
    spec: SlackSpec, slack: SlackSimulator, http: aiohttp.ClientSession
) -> None:
    token = slack.issue_token()
    slack.expire_token(token)
    _, expired, _ = await api(http, slack, "auth.test", token)
    assert (
        expired["error"] not in spec.response("auth.test", "default")["properties"]["error"]["enum"]
    )
    slack.fail_next(429)
    status, limited, _ = await api(http, slack, "auth.test", slack.issue_token())
    assert status == 429
    shape = {
        "type": "object",
        "additionalProperties": False,
        "properties": {"ok": {"$ref": "#/definitions/defs_ok_false"}, "error": {"type": "string"}},
        "required": ["ok", "error"],
    }
    for body in (expired, limited):
        spec.check(shape, body)


def test_the_schema_check_has_teeth(spec: SlackSpec) -> None:
    """The converted tuple lists must reject what the file means to reject."""
    schema = spec.response("chat.postMessage", "200")
    good = {
        "ok": True,
        "channel": "C0123456789",
        "ts": "1600000000.000100",
        "message": {
            "type": "message",
            "text": "x",
            "ts": "1600000000.000100",
            "user": "U0123456789",
            "bot_id": "B0123456789",
        },
    }
    spec.check(schema, good)
    broken = [
        {**good, "ts": 1600000000.0001},
        {**good, "channel": "general"},
        {**good, "message": {**good["message"], "bot_id": 7}},  # a tuple-form list before
        {**good, "message": {**good["message"], "colour": "red"}},
        {**good, "extra": 1},
    ]
    for body in broken:
        with pytest.raises(jsonschema.ValidationError):
            spec.validator(schema).validate(body)
    users = spec.response("users.list", "200")
    member = {"id": "U0123456789", "name": "a", "deleted": "no"}
    with pytest.raises(jsonschema.ValidationError):
        spec.validator(users).validate({"ok": True, "members": [member], "cache_ts": 1})
