"""The SendGrid simulator's bodies match SendGrid's own OpenAPI files (../shared/sendgrid/).

Each case calls the running simulator over real HTTP and validates the body against the schema
of that operation and status, the way tests/testing/test_twilio_sim_schema.py does for Twilio
(same `Spec` helper, same `nullable` conversion). Where the files and real SendGrid disagree,
the simulator follows real SendGrid and the relaxation is named here, nowhere else:

- `help` in an error is JSON null in real bodies (sendgrid-api.md §1); the files type it
  `object` without `nullable`, so `help` may also be null.
- GetMessage marks fields required that a plain API send does not have (sendgrid-api.md §3):
  `asm_group_id` only comes with an unsubscribe group, and each event carries `bounce_type`,
  `mx_server` or `http_user_agent` only when they apply. Field names are still checked exactly.

Templates and bounces are not in the files the project keeps (../shared/sendgrid/README.md),
so their bodies are checked by tests/sims/test_sendgrid.py only.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import aiohttp
import jsonschema
import pytest

from sims.sendgrid import SendGridSimulator
from tests.conftest import shared_file
from tests.sims.test_sendgrid import call, mail, send
from tests.testing.test_twilio_sim_schema import Spec, openapi_to_json_schema

JsonObject = dict[str, Any]
OPTIONAL_IN_DETAIL = {"asm_group_id"}
OPTIONAL_IN_EVENT = {"bounce_type", "mx_server", "http_user_agent"}


def _allow_null_help(node: Any) -> Iterator[None]:
    if isinstance(node, dict):
        help_schema = node.get("properties", {}).get("help")
        if isinstance(help_schema, dict) and help_schema.get("type") == "object":
            help_schema["type"] = ["object", "null"]
        for value in node.values():
            yield from _allow_null_help(value)
    elif isinstance(node, list):
        for value in node:
            yield from _allow_null_help(value)


def load(name: str) -> Spec:
    document = openapi_to_json_schema(json.loads(shared_file(f"sendgrid/{name}").read_text()))
    for _ in _allow_null_help(document):
        pass
    return Spec(document)


@pytest.fixture(scope="module")
def specs() -> dict[str, Spec]:
    return {
        "mail": load("tsg_mail_v3.json"),
        "activity": load("tsg_email_activity_v3.json"),
        "scopes": load("tsg_scopes_v3.json"),
    }


def response_schema(spec: Spec, operation_id: str, status: int) -> JsonObject:
    _, _, operation = spec.operation(operation_id)
    response = spec.resolve(operation["responses"][str(status)])
    schema: JsonObject = response["content"]["application/json"]["schema"]
    return schema


def check(spec: Spec, operation_id: str, status: int, body: Any) -> None:
    schema = response_schema(spec, operation_id, status)
    errors = list(spec.validator(schema).iter_errors(body))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:10])


async def test_the_credential_check_and_its_401(
    specs: dict[str, Spec], sendgrid: SendGridSimulator, http: aiohttp.ClientSession
) -> None:
    status, body, _ = await call(http, sendgrid, "GET", "/v3/scopes")
    assert status == 200
    check(specs["scopes"], "ListScope", 200, body)
    specs["scopes"].assert_same_fields(response_schema(specs["scopes"], "ListScope", 200), body, "")
    status, body, _ = await call(http, sendgrid, "GET", "/v3/scopes", key=None)
    assert status == 401
    check(specs["scopes"], "ListScope", 401, body)


@pytest.mark.parametrize(
    ("status", "body", "key"),
    [
        (400, {"personalizations": []}, "default"),
        (401, {}, "SG.bad.key"),
        (403, None, "reader"),
        (413, b'{"a": "' + b"x" * (30 * 1024 * 1024) + b'"}', "default"),
    ],
)
async def test_send_errors_are_sendgrids_error_response(
    specs: dict[str, Spec],
    sendgrid: SendGridSimulator,
    http: aiohttp.ClientSession,
    status: int,
    body: Any,
    key: str,
) -> None:
    if key == "reader":
        key = sendgrid.add_key(scopes=["templates.read"])
    raw = body if isinstance(body, bytes) else json.dumps(body or mail("a@example.com")).encode()
    got, answer, _ = await call(http, sendgrid, "POST", "/v3/mail/send", raw=raw, key=key)
    assert got == status
    check(specs["mail"], "SendMail", status, answer)
    schema = specs["mail"].resolve(response_schema(specs["mail"], "SendMail", status))
    item_schema = specs["mail"].resolve(schema["properties"]["errors"]["items"])
    assert set(answer["errors"][0]) == set(item_schema["properties"])


async def test_a_send_is_a_202_without_a_body_as_declared(
    specs: dict[str, Spec], sendgrid: SendGridSimulator, http: aiohttp.ClientSession
) -> None:
    _, _, operation = specs["mail"].operation("SendMail")
    assert "content" not in operation["responses"]["202"]
    status, body, headers = await call(
        http, sendgrid, "POST", "/v3/mail/send", body=mail("a@example.com")
    )
    assert (status, body) == (202, None)
    assert headers["X-Message-Id"]


async def test_activity_list_and_detail_match_the_schemas(
    specs: dict[str, Spec], sendgrid: SendGridSimulator, http: aiohttp.ClientSession
) -> None:
    spec = specs["activity"]
    plain = await send(http, sendgrid, mail("a@example.com", custom_args={"k": "v"}))
    grouped = await send(http, sendgrid, mail("b@example.com", asm={"group_id": 4}))
    bounced = await send(http, sendgrid, mail("c@example.com", categories=["x"]))
    (first,) = sendgrid.sent(plain)
    await sendgrid.advance(first["msg_id"], "delivered")
    await sendgrid.advance(first["msg_id"], "open")
    (third,) = sendgrid.sent(bounced)
    await sendgrid.advance(third["msg_id"], "bounce")

    status, listing, _ = await call(http, sendgrid, "GET", "/v3/messages", params={"limit": "5"})
    assert status == 200
    assert {m["status"] for m in listing["messages"]} == {"delivered", "processed", "not_delivered"}
    check(spec, "ListMessage", 200, listing)
    spec.assert_same_fields(response_schema(spec, "ListMessage", 200), listing, "ListMessage")

    strict = response_schema(spec, "GetMessage", 200)
    relaxed = copy.deepcopy(strict)
    relaxed["required"] = [r for r in strict["required"] if r not in OPTIONAL_IN_DETAIL]
    event_schema = relaxed["properties"]["events"]["items"]
    event_schema["required"] = [r for r in event_schema["required"] if r not in OPTIONAL_IN_EVENT]
    for x_message_id in (plain, grouped, bounced):
        (message,) = sendgrid.sent(x_message_id)
        status, detail, _ = await call(http, sendgrid, "GET", f"/v3/messages/{message['msg_id']}")
        assert status == 200
        errors = list(spec.validator(relaxed).iter_errors(detail))
        assert not errors, [e.message for e in errors]
        assert set(detail) <= set(strict["properties"])
        assert set(strict["properties"]) - set(detail) <= OPTIONAL_IN_DETAIL
        for event in detail["events"]:
            assert set(event) <= set(event_schema["properties"])
    # The one with an unsubscribe group passes the file's own, strict schema too.
    (with_group,) = sendgrid.sent(grouped)
    _, detail, _ = await call(http, sendgrid, "GET", f"/v3/messages/{with_group['msg_id']}")
    spec.validator(strict).validate(detail)


@pytest.mark.parametrize(
    ("operation_id", "path", "params", "status", "fail"),
    [
        ("ListMessage", "/v3/messages", {"query": 'bad_field="x"'}, 400, False),
        ("ListMessage", "/v3/messages", {}, 429, True),
        ("GetMessage", "/v3/messages/missing", {}, 404, False),
        ("GetMessage", "/v3/messages/missing", {}, 429, True),
    ],
)
async def test_activity_errors_match_the_schemas(
    specs: dict[str, Spec],
    sendgrid: SendGridSimulator,
    http: aiohttp.ClientSession,
    operation_id: str,
    path: str,
    params: dict[str, str],
    status: int,
    fail: bool,
) -> None:
    if fail:
        sendgrid.fail_next(status)
    got, body, _ = await call(http, sendgrid, "GET", path, params=params)
    assert got == status
    check(specs["activity"], operation_id, status, body)


def test_the_schema_check_has_teeth(specs: dict[str, Spec]) -> None:
    """Guards the checks above against passing vacuously (say, if refs stopped resolving)."""
    spec = specs["activity"]
    item = {
        "from_email": "a@b.co",
        "msg_id": "m",
        "subject": "s",
        "to_email": "c@d.co",
        "status": "processed",
        "opens_count": 0,
        "clicks_count": 0,
        "last_event_time": "2026-01-01T00:00:00Z",
    }
    validator = spec.validator(response_schema(spec, "ListMessage", 200))
    validator.validate({"messages": [item]})
    for broken in ({**item, "status": "opened"}, {**item, "opens_count": "1"}):
        with pytest.raises(jsonschema.ValidationError):
            validator.validate({"messages": [broken]})
    error_validator = specs["mail"].validator(response_schema(specs["mail"], "SendMail", 400))
    with pytest.raises(jsonschema.ValidationError):
        error_validator.validate({"errors": [{"message": 1}]})
