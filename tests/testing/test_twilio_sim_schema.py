"""Every simulator route answers with the shape Twilio's OpenAPI file declares for it.

Each case calls the running simulator over real HTTP and validates the body against the response
schema of that operation in ../shared/twilio/twilio_api_v2010.json, after turning OpenAPI 3.0's
`nullable` into JSON Schema type unions. On top of the schema (which allows extra and missing
fields) the field names must equal the schema's properties, so a typo cannot slip through.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
import jsonschema
import pytest
import pytest_asyncio
from jsonschema import Draft202012Validator, FormatChecker

from sims.twilio_sim import TwilioSimulator
from tests.conftest import shared_file

API = "/2010-04-01"
RFC2822 = re.compile(r"^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} \+0000$")

JsonObject = dict[str, Any]


def openapi_to_json_schema(node: Any) -> Any:
    """OpenAPI 3.0 `nullable: true` → a type union with "null" (and None in any enum)."""
    if isinstance(node, list):
        return [openapi_to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: openapi_to_json_schema(value) for key, value in node.items()}
    if converted.pop("nullable", None) is True:
        if "$ref" in converted:
            return {"anyOf": [{"$ref": converted.pop("$ref")}, {"type": "null"}], **converted}
        if isinstance(converted.get("type"), str):
            converted["type"] = [converted["type"], "null"]
        if "enum" in converted and None not in converted["enum"]:
            converted["enum"] = [*converted["enum"], None]
    return converted


FORMATS = FormatChecker(formats=())


def _is_rfc2822(value: object) -> bool:
    if not isinstance(value, str):
        return True
    return parsedate_to_datetime(value).tzinfo is not None and bool(RFC2822.match(value))


def _is_date(value: object) -> bool:
    return not isinstance(value, str) or date.fromisoformat(value).isoformat() == value


def _is_country(value: object) -> bool:
    return not isinstance(value, str) or bool(re.fullmatch(r"[A-Z]{2}", value))


FORMATS.checks("date-time-rfc-2822", raises=(TypeError, ValueError))(_is_rfc2822)
FORMATS.checks("date", raises=ValueError)(_is_date)
FORMATS.checks("iso-country-code")(_is_country)


@dataclass
class Spec:
    document: JsonObject

    def operation(self, operation_id: str) -> tuple[str, str, JsonObject]:
        for path, item in self.document["paths"].items():
            for method, operation in item.items():
                if isinstance(operation, dict) and operation.get("operationId") == operation_id:
                    return path, method.upper(), operation
        raise LookupError(f"operation {operation_id} is not in the spec")

    def resolve(self, schema: JsonObject) -> JsonObject:
        while "$ref" in schema:
            target: Any = self.document
            for part in schema["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            schema = target
        return schema

    def validator(self, schema: JsonObject) -> Draft202012Validator:
        # The components ride along in the root so that "#/components/..." refs resolve.
        root = {**schema, "components": self.document["components"]}
        return Draft202012Validator(root, format_checker=FORMATS)

    def assert_same_fields(self, schema: JsonObject, instance: Any, where: str) -> None:
        """Field names must be exactly the schema's properties, for resources and envelopes."""
        schema = self.resolve(schema)
        properties: Mapping[str, JsonObject] = schema.get("properties", {})
        if not properties or not isinstance(instance, dict):
            return
        missing = sorted(set(properties) - set(instance))
        extra = sorted(set(instance) - set(properties))
        assert not missing, f"{where}: missing {missing}"
        assert not extra, f"{where}: unexpected {extra}"
        for name, member in properties.items():
            member = self.resolve(member)
            if member.get("type") in ("array", ["array", "null"]) and "items" in member:
                for index, item in enumerate(instance[name] or []):
                    self.assert_same_fields(member["items"], item, f"{where}.{name}[{index}]")


@pytest.fixture(scope="module")
def spec() -> Spec:
    path = shared_file("twilio/twilio_api_v2010.json")
    return Spec(openapi_to_json_schema(json.loads(path.read_text(encoding="utf-8"))))


@dataclass
class World:
    """A simulator seeded so that lists hold both null and non-null variants of each field."""

    sim: TwilioSimulator
    session: aiohttp.ClientSession
    ids: dict[str, str] = field(default_factory=dict)

    async def call(
        self,
        method: str,
        path: str,
        form: Mapping[str, str | list[str]] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> tuple[int, Any, str]:
        pairs = [
            (key, item)
            for key, value in (form or {}).items()
            for item in ([value] if isinstance(value, str) else value)
        ]
        headers = {
            "Authorization": aiohttp.encode_basic_auth(self.sim.account_sid, self.sim.auth_token)
        }
        async with self.session.request(
            method,
            f"{self.sim.url}{API}{path.format(**self.ids)}",
            data=pairs if form is not None else None,
            params=params,
            headers=headers,
        ) as response:
            text = await response.text()
            return response.status, json.loads(text) if text else None, response.url.path

    async def create(self, name: str, path: str, form: Mapping[str, str | list[str]]) -> JsonObject:
        status, body, _ = await self.call("POST", path, form)
        assert status == 201, body
        self.ids[name] = body["sid"]
        return dict(body)


@pytest_asyncio.fixture
async def world(sim: TwilioSimulator) -> AsyncIterator[World]:
    async with aiohttp.ClientSession() as session:
        w = World(sim, session, {"account": sim.account_sid})
        messages = "/Accounts/{account}/Messages.json"
        await w.create(
            "queued", messages, {"To": "+15558675310", "From": "+15017122661", "Body": "q"}
        )
        await w.create(
            "delivered", messages, {"To": "+15558675310", "From": "+15017122661", "Body": "d"}
        )
        sim.set_message_status(w.ids["delivered"], "delivered")
        await w.create(
            "failed", messages, {"To": "+15558675310", "From": "+15017122661", "Body": "f"}
        )
        sim.set_message_status(w.ids["failed"], "undelivered", error_code=30005)
        mms = await w.create(
            "mms",
            messages,
            {"To": "+15558675310", "From": "+15017122661", "MediaUrl": ["https://e.com/a.jpg"]},
        )
        _, media, _ = await w.call("GET", f"/Accounts/{{account}}/Messages/{mms['sid']}/Media.json")
        w.ids["media"] = media["media_list"][0]["sid"]
        sim.add_inbound_message("+15550001111", "+15017122661", "inbound")
        await w.create(
            "service",
            messages,
            {"To": "+15558675310", "MessagingServiceSid": "MG" + "b" * 32, "Body": "s"},
        )

        calls = "/Accounts/{account}/Calls.json"
        call_form = {"To": "+15558675310", "From": "+15017122661", "Url": "https://e.com/t"}
        await w.create("call", calls, call_form)
        await w.create("done_call", calls, call_form)
        sim.set_call_status(w.ids["done_call"], "in-progress")
        sim.set_call_status(w.ids["done_call"], "completed")

        await w.create(
            "address",
            "/Accounts/{account}/Addresses.json",
            {
                "CustomerName": "Ada",
                "Street": "1 Main St",
                "City": "San Francisco",
                "Region": "CA",
                "PostalCode": "94103",
                "IsoCountry": "US",
            },
        )
        await w.create(
            "number", "/Accounts/{account}/IncomingPhoneNumbers.json", {"AreaCode": "212"}
        )
        yield w


@dataclass(frozen=True)
class Case:
    operation: str
    path: str
    status: int = 200
    form: Mapping[str, str | list[str]] | None = None
    params: Mapping[str, str] | None = None
    label: str = ""

    @property
    def id(self) -> str:
        return self.operation + (f"-{self.label}" if self.label else "")


A = "/Accounts/{account}"
NEW_MESSAGE: dict[str, str | list[str]] = {
    "To": "+15558675310",
    "From": "+15017122661",
    "Body": "hello",
    "MediaUrl": ["https://e.com/a.png", "https://e.com/b.png"],
}
NEW_CALL = {"To": "client:bob", "From": "+15017122661", "Twiml": "<Response/>"}
NEW_ADDRESS = {
    "CustomerName": "Grace",
    "Street": "2 Side St",
    "City": "London",
    "Region": "London",
    "PostalCode": "W1",
    "IsoCountry": "GB",
    "FriendlyName": "Office",
}

CASES = [
    Case("FetchAccount", f"{A}.json"),
    Case("UpdateAccount", f"{A}.json", form={"FriendlyName": "Renamed"}),
    Case("ListAccount", "/Accounts.json"),
    Case("ListAccount", "/Accounts.json", params={"Status": "active"}, label="filtered"),
    Case("CreateMessage", f"{A}/Messages.json", 201, form=NEW_MESSAGE),
    Case("ListMessage", f"{A}/Messages.json"),
    Case("ListMessage", f"{A}/Messages.json", params={"PageSize": "2"}, label="paged"),
    Case("ListMessage", f"{A}/Messages.json", params={"DateSent>": "2020-01-01"}, label="sent"),
    Case("FetchMessage", f"{A}/Messages/{{delivered}}.json", label="delivered"),
    Case("FetchMessage", f"{A}/Messages/{{failed}}.json", label="failed"),
    Case("FetchMessage", f"{A}/Messages/{{service}}.json", label="service"),
    Case("UpdateMessage", f"{A}/Messages/{{queued}}.json", form={"Body": ""}),
    Case("DeleteMessage", f"{A}/Messages/{{queued}}.json", 204),
    Case("ListMedia", f"{A}/Messages/{{mms}}/Media.json"),
    Case("FetchMedia", f"{A}/Messages/{{mms}}/Media/{{media}}.json"),
    Case("DeleteMedia", f"{A}/Messages/{{mms}}/Media/{{media}}.json", 204),
    Case("CreateCall", f"{A}/Calls.json", 201, form=NEW_CALL),
    Case("ListCall", f"{A}/Calls.json"),
    Case("FetchCall", f"{A}/Calls/{{done_call}}.json"),
    Case("UpdateCall", f"{A}/Calls/{{call}}.json", form={"Status": "canceled"}),
    Case("DeleteCall", f"{A}/Calls/{{call}}.json", 204),
    Case("CreateAddress", f"{A}/Addresses.json", 201, form=NEW_ADDRESS),
    Case("ListAddress", f"{A}/Addresses.json"),
    Case("FetchAddress", f"{A}/Addresses/{{address}}.json"),
    Case("UpdateAddress", f"{A}/Addresses/{{address}}.json", form={"FriendlyName": "HQ"}),
    Case("DeleteAddress", f"{A}/Addresses/{{address}}.json", 204),
    Case("ListAvailablePhoneNumberCountry", f"{A}/AvailablePhoneNumbers.json"),
    Case("FetchAvailablePhoneNumberCountry", f"{A}/AvailablePhoneNumbers/GB.json"),
    Case("ListAvailablePhoneNumberLocal", f"{A}/AvailablePhoneNumbers/US/Local.json"),
    Case("ListAvailablePhoneNumberLocal", f"{A}/AvailablePhoneNumbers/GB/Local.json", label="GB"),
    Case("ListAvailablePhoneNumberMobile", f"{A}/AvailablePhoneNumbers/GB/Mobile.json"),
    Case("ListAvailablePhoneNumberTollFree", f"{A}/AvailablePhoneNumbers/US/TollFree.json"),
    # Twilio's magic test number: outside the catalogue, so it exercises the fallback fields.
    Case(
        "CreateIncomingPhoneNumber",
        f"{A}/IncomingPhoneNumbers.json",
        201,
        form={"PhoneNumber": "+15005550006"},
        label="any",
    ),
    Case(
        "CreateIncomingPhoneNumber",
        f"{A}/IncomingPhoneNumbers.json",
        201,
        form={"AreaCode": "415"},
        label="catalogue",
    ),
    Case("ListIncomingPhoneNumber", f"{A}/IncomingPhoneNumbers.json"),
    Case("FetchIncomingPhoneNumber", f"{A}/IncomingPhoneNumbers/{{number}}.json"),
    Case("DeleteIncomingPhoneNumber", f"{A}/IncomingPhoneNumbers/{{number}}.json", 204),
    Case("ListUsageRecord", f"{A}/Usage/Records.json"),
    Case("ListUsageRecord", f"{A}/Usage/Records.json", params={"Category": "calls"}, label="calls"),
]


def _template_regex(template: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[^}]+\})", template)
    return re.compile("".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts))


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_response_matches_the_openapi_schema(spec: Spec, world: World, case: Case) -> None:
    template, method, operation = spec.operation(case.operation)
    expected_method = "GET" if case.form is None else "POST"
    if case.status == 204:
        expected_method = "DELETE"
    assert method == expected_method, f"{case.operation} is {method} {template}"

    status, body, path = await world.call(method, case.path, case.form, case.params)

    assert _template_regex(template).fullmatch(path), f"{path} is not {template}"
    assert status == case.status, body
    assert str(case.status) in operation["responses"]
    declared = operation["responses"][str(case.status)].get("content")
    if declared is None:
        assert body is None  # 204: no body, as the spec declares none
        return
    schema = declared["application/json"]["schema"]
    errors = sorted(spec.validator(schema).iter_errors(body), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:10])
    spec.assert_same_fields(schema, body, case.id)


async def test_the_schema_check_has_teeth(spec: Spec, world: World) -> None:
    """Guards the checks above against passing vacuously (say, if refs stopped resolving)."""
    _, _, operation = spec.operation("FetchMessage")
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    validator = spec.validator(schema)
    _, message, _ = await world.call("GET", f"{A}/Messages/{{delivered}}.json")
    validator.validate(message)

    corruptions: dict[str, Any] = {
        "num_segments": 1,  # counts are strings
        "status": "lost",  # not in message_enum_status
        "date_created": "2024-01-01T00:00:00Z",  # not RFC 2822
        "sid": "XX" + "0" * 32,
        "direction": None,  # the enum is not nullable
    }
    for key, bad in corruptions.items():
        with pytest.raises(jsonschema.ValidationError):
            validator.validate({**message, key: bad})
    with pytest.raises(AssertionError, match="unexpected"):
        spec.assert_same_fields(schema, {**message, "extra": 1}, "message")
    with pytest.raises(AssertionError, match="missing"):
        spec.assert_same_fields(schema, {k: v for k, v in message.items() if k != "uri"}, "m")

    _, _, listing = spec.operation("ListMessage")
    list_schema = listing["responses"]["200"]["content"]["application/json"]["schema"]
    _, page, _ = await world.call("GET", f"{A}/Messages.json")
    spec.validator(list_schema).validate(page)
    broken_item = {**page, "messages": [{**page["messages"][0], "num_media": 0}]}
    with pytest.raises(jsonschema.ValidationError):
        spec.validator(list_schema).validate(broken_item)
    renamed = {**page, "messages": [page["messages"][0], {**page["messages"][1], "From": "x"}]}
    with pytest.raises(AssertionError, match=r"messages\[1\]: unexpected"):
        spec.assert_same_fields(list_schema, renamed, "page")
