"""A stateful simulator of SendGrid's v3 Web API and its signed Event Webhook.

What it speaks (see ../shared/spec/sendgrid-api.md): Bearer API keys with scopes (401 for an
unknown key, 403 for a missing scope), `POST /v3/mail/send` (202, empty body, `X-Message-Id`,
SendGrid's `{"errors": [{"message", "field", "help"}]}` for a bad body), the Email Activity API
(`GET /v3/messages` with a `query` of `field="value"` / `LIKE` / `!=` predicates joined by
AND, and `limit`; `GET /v3/messages/{msg_id}`), templates (list with `page_size`/`page_token`,
get), bounces (list, get, delete), `GET /v3/scopes` for the credential check, and 429 with
`X-RateLimit-*` headers on demand.

A message moves on only when a test says so (`advance`, or `POST /_sim/messages/{id}/events`):
processed → delivered → open, or processed → bounce. Each step records the Email Activity
event and POSTs the webhook events not yet sent to the configured URL, signed with ECDSA P-256
over `timestamp + body` exactly as SendGrid signs them.

    sim = SendGridSimulator(); await sim.start(); ...; await sim.stop()
    shell: hubgate sim sendgrid --port 8091
"""

from __future__ import annotations

import base64
import json
import re
import string
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from sims.common import (
    Control,
    ControlError,
    Delivery,
    JsonObject,
    RouteHandler,
    SimServer,
    control_payload,
    random_text,
    run_forever,
)

__all__ = ["SendGridSimulator", "describe", "main"]

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
ALL_SCOPES = (
    "mail.send",
    "messages.read",
    "templates.read",
    "suppression.read",
    "suppression.delete",
)
RATE_LIMIT = 600
MAX_RECIPIENTS = 1000
MAX_BODY = 30 * 1024 * 1024
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# Activity-API fields SendGrid knows (sendgrid-api.md §3) and the ones the simulator filters on.
KNOWN_FIELDS = frozenset(
    [
        "msg_id",
        "from_email",
        "subject",
        "to_email",
        "status",
        "template_id",
        "template_name",
        "campaign_name",
        "campaign_id",
        "api_key_id",
        "api_key_name",
        "events",
        "originating_ip",
        "categories",
        "unique_args",
        "outbound_ip",
        "last_event_time",
        "clicks",
        "unsubscribe_group_name",
        "unsubscribe_group_id",
        "teammate",
    ]
)
FILTER_FIELDS = ("to_email", "from_email", "subject", "status", "msg_id")
# The webhook's event name → the Email Activity's (the two vocabularies differ, §3).
ACTIVITY_NAMES = {
    "processed": "processed",
    "delivered": "delivered",
    "open": "opened",
    "bounce": "bounced",
}
ALPHANUMERIC = string.ascii_letters + string.digits
ORIGINATING_IP = "127.0.0.1"
OUTBOUND_IP = "192.0.2.25"  # TEST-NET-1: the simulator delivers nothing anywhere


class SendGridError(Exception):
    """An answer in SendGrid's error shape."""

    def __init__(
        self,
        status: int,
        message: str,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.headers = headers or {}

    def response(self) -> web.Response:
        # Real bodies carry `field` and `help` as JSON null (sendgrid-api.md §1, §4).
        error = {"message": self.message, "field": self.field, "help": None}
        return web.json_response({"errors": [error]}, status=self.status, headers=self.headers)


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class ApiKey:
    key: str
    key_id: str
    scopes: tuple[str, ...]


API_KEY = web.RequestKey("api_key", ApiKey)


@dataclass
class Message:
    """One recipient's copy of a send, as the Email Activity API and the webhook know it."""

    msg_id: str
    x_message_id: str
    from_email: str
    to_email: str
    subject: str
    template_id: str
    categories: list[str]
    custom_args: dict[str, str]
    asm_group_id: int | None
    api_key_id: str
    status: str = "processed"
    opens: int = 0
    clicks: int = 0
    last_event: float = field(default_factory=time.time)
    events: list[JsonObject] = field(default_factory=list)  # Email Activity events
    webhook_steps: list[str] = field(default_factory=list)  # webhook event names so far
    unsent: list[JsonObject] = field(default_factory=list)  # webhook events not yet posted

    def summary(self) -> JsonObject:
        return {
            "from_email": self.from_email,
            "msg_id": self.msg_id,
            "subject": self.subject,
            "to_email": self.to_email,
            "status": self.status,
            "opens_count": self.opens,
            "clicks_count": self.clicks,
            "last_event_time": _iso(self.last_event),
        }

    def detail(self) -> JsonObject:
        body: JsonObject = {
            "from_email": self.from_email,
            "msg_id": self.msg_id,
            "subject": self.subject,
            "to_email": self.to_email,
            "status": self.status,
            "template_id": self.template_id,
            "teammate": "",
            "api_key_id": self.api_key_id,
            "events": list(self.events),
            "originating_ip": ORIGINATING_IP,
            "categories": list(self.categories),
            "unique_args": json.dumps(self.custom_args) if self.custom_args else "Null",
            "outbound_ip": OUTBOUND_IP,
            "outbound_ip_type": "shared",
        }
        if self.asm_group_id is not None:
            body["asm_group_id"] = self.asm_group_id
        return body


@dataclass
class Template:
    id: str
    name: str
    generation: str
    subject: str
    html: str
    updated: float = field(default_factory=time.time)
    version_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def json(self, *, full: bool) -> JsonObject:
        version: JsonObject = {
            "id": self.version_id,
            "template_id": self.id,
            "active": 1,
            "name": self.name,
            "subject": self.subject,
            "updated_at": datetime.fromtimestamp(self.updated, UTC).strftime("%Y-%m-%d %H:%M:%S"),
            "editor": "code",
        }
        if full:
            version["html_content"] = self.html
            version["plain_content"] = re.sub(r"<[^>]+>", "", self.html)
        return {
            "id": self.id,
            "name": self.name,
            "generation": self.generation,
            "updated_at": version["updated_at"],
            "versions": [version],
        }


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


class _MailCheck:
    """SendGrid's checks on a mail-send body, in its order; the first failure is the answer."""

    def __init__(self, body: object, templates: dict[str, Template]) -> None:
        self.body = body
        self.templates = templates

    def fail(self, field: str | None, message: str) -> SendGridError:
        return SendGridError(400, message, field)

    def address(self, value: object, where: str) -> tuple[str, str | None]:
        if not isinstance(value, dict) or not isinstance(value.get("email"), str):
            raise self.fail(f"{where}.email", "The email parameter is required.")
        email = value["email"]
        if not _EMAIL.match(email):
            raise self.fail(f"{where}.email", "Does not contain a valid address.")
        return email, _text(value.get("name"))

    def run(self) -> JsonObject:
        body = self.body
        if not isinstance(body, dict):
            raise self.fail(None, "Bad Request")
        personalizations = body.get("personalizations")
        if not isinstance(personalizations, list) or not personalizations:
            raise self.fail(
                "personalizations",
                "The personalizations field is required and must have at least one"
                " personalization.",
            )
        if len(personalizations) > 1000:
            raise self.fail("personalizations", "You may not have more than 1000 personalizations.")
        self.address(body.get("from"), "from")
        template_id = body.get("template_id")
        if template_id is not None and (
            not isinstance(template_id, str) or template_id not in self.templates
        ):
            raise self.fail("template_id", "The template_id must be a valid GUID.")
        seen: set[str] = set()
        all_have_subject = True
        for index, item in enumerate(personalizations):
            where = f"personalizations.{index}"
            if not isinstance(item, dict):
                raise self.fail(where, "Each personalization must be an object.")
            to = item.get("to")
            if not isinstance(to, list) or not to:
                raise self.fail(
                    f"{where}.to",
                    "The to array is required for all personalization objects, and must have"
                    " at least one email object with a valid email address.",
                )
            for kind in ("to", "cc", "bcc"):
                entries = item.get(kind, [])
                if not isinstance(entries, list):
                    raise self.fail(f"{where}.{kind}", f"The {kind} field must be an array.")
                for position, entry in enumerate(entries):
                    email, _ = self.address(entry, f"{where}.{kind}.{position}")
                    if email.lower() in seen:
                        raise self.fail(
                            f"{where}.{kind}",
                            "Each email address in the personalization block should be unique"
                            " between to, cc, and bcc. We found the first duplicate instance of"
                            f" [{email}] in the personalizations.{index}.{kind} field.",
                        )
                    seen.add(email.lower())
            if len(seen) > MAX_RECIPIENTS:
                raise self.fail(
                    "personalizations", "The total number of recipients must be less than 1000."
                )
            all_have_subject = all_have_subject and isinstance(item.get("subject"), str)
        self._subject_and_content(body, template_id, all_have_subject)
        return body

    def _subject_and_content(
        self, body: JsonObject, template_id: object, all_have_subject: bool
    ) -> None:
        subject = body.get("subject")
        if subject is not None and not isinstance(subject, str):
            raise self.fail("subject", "The subject must be a string.")
        if template_id is None and not all_have_subject and not subject:
            raise self.fail(
                "subject",
                "The subject is required. You can get around this requirement if you use a"
                " template with a subject defined or if every personalization has a subject"
                " defined.",
            )
        content = body.get("content")
        if content is None and template_id is None:
            raise self.fail(
                "content",
                "Unless a valid template_id is provided, the content parameter is required."
                " There must be at least one defined content block.",
            )
        if content is None:
            return
        if not isinstance(content, list) or not content:
            raise self.fail("content", "The content field must be an array of content blocks.")
        for index, block in enumerate(content):
            if not isinstance(block, dict) or not isinstance(block.get("type"), str):
                raise self.fail(f"content.{index}.type", "The content type is required.")
            value = block.get("value")
            if not isinstance(value, str) or not value:
                raise self.fail(
                    f"content.{index}.value",
                    "The content value must be a string at least one character in length.",
                )


_CLAUSE = re.compile(
    r'\s*(?P<field>[A-Za-z_]+)\s*(?P<op>!=|=|NOT\s+LIKE\b|LIKE\b)\s*"(?P<value>(?:[^"\\]|\\.)*)"\s*',
    re.IGNORECASE,
)
_JOIN = re.compile(r"(AND|OR)\b", re.IGNORECASE)


def _like(pattern: str) -> re.Pattern[str]:
    return re.compile(
        "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern),
        re.IGNORECASE | re.DOTALL,
    )


def parse_query(query: str) -> list[tuple[str, str, str]]:
    """`to_email="a@b.c" AND msg_id LIKE "x%"` → [(field, operator, value), ...].

    The simulator reads the subset of SendGrid's query language a connector pushes CEQL into;
    anything else is a 400 that says what it could not read.
    """
    clauses: list[tuple[str, str, str]] = []
    position = 0
    while True:
        match = _CLAUSE.match(query, position)
        if match is None:
            raise SendGridError(
                400, f"invalid syntax: cannot read the query at {query[position:]!r}"
            )
        name = match["field"].lower()
        if name not in KNOWN_FIELDS:
            raise SendGridError(400, f"invalid syntax: '{name}' is not a known field")
        if name not in FILTER_FIELDS:
            raise SendGridError(
                400, f"the simulator does not filter on '{name}'; it filters on {FILTER_FIELDS}"
            )
        operator = " ".join(match["op"].upper().split())
        clauses.append((name, operator, re.sub(r"\\(.)", r"\1", match["value"])))
        position = match.end()
        if position == len(query):
            return clauses
        joined = _JOIN.match(query, position)
        if joined is None:
            raise SendGridError(400, f"invalid syntax: expected AND at {query[position:]!r}")
        if joined[1].upper() == "OR":
            raise SendGridError(400, "the simulator joins predicates with AND only")
        position = joined.end()


def _matches(message: Message, clauses: Iterable[tuple[str, str, str]]) -> bool:
    row = message.summary()
    for name, operator, value in clauses:
        actual = str(row[name])
        if operator == "=":
            ok = actual == value
        elif operator == "!=":
            ok = actual != value
        else:
            ok = bool(_like(value).fullmatch(actual)) == (operator == "LIKE")
        if not ok:
            return False
    return True


class SendGridSimulator(SimServer):
    """The simulator: keys, messages, templates, bounces and the signed Event Webhook."""

    name = "SendGrid simulator"

    def __init__(self, api_key: str | None = None, webhook_url: str | None = None) -> None:
        super().__init__()
        self.keys: dict[str, ApiKey] = {}
        self.api_key = self.add_key(api_key)
        self.messages: dict[str, Message] = {}
        self.templates: dict[str, Template] = {}
        self.bounces: dict[str, JsonObject] = {}
        # Every mail body a send accepted, as it arrived: what a test compares with its request.
        self.mail_bodies: list[JsonObject] = []
        self.webhook_url = webhook_url
        self.deliveries: list[Delivery] = []
        self._private_key = ec.generate_private_key(ec.SECP256R1())

    # -- keys and signing ---------------------------------------------------------------

    def add_key(self, key: str | None = None, scopes: Iterable[str] = ALL_SCOPES) -> str:
        """Another API key (`SG.<id>.<secret>`) with these scopes; returns the key."""
        # The key id is alphanumeric: Email Activity's `api_key_id` pattern requires it.
        key = key or f"SG.{random_text(22, ALPHANUMERIC)}.{random_text(43)}"
        parts = key.split(".")
        if len(parts) != 3 or parts[0] != "SG":
            raise ValueError("a SendGrid API key looks like SG.<id>.<secret>")
        self.keys[key] = ApiKey(key, parts[1], tuple(scopes))
        return key

    @property
    def public_key(self) -> str:
        """The verification key as SendGrid shows it: base64 DER SubjectPublicKeyInfo."""
        der = self._private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return base64.b64encode(der).decode("ascii")

    def signed_headers(self, body: bytes, timestamp: int | None = None) -> dict[str, str]:
        """The headers SendGrid sends with `body` (a test may sign an old timestamp)."""
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        signature = self._private_key.sign(stamp.encode("ascii") + body, ec.ECDSA(hashes.SHA256()))
        return {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: base64.b64encode(signature).decode("ascii"),
            TIMESTAMP_HEADER: stamp,
        }

    # -- state helpers for tests --------------------------------------------------------

    def add_template(
        self,
        name: str,
        *,
        subject: str = "",
        html: str = "<p>Hello</p>",
        generation: str = "dynamic",
    ) -> JsonObject:
        if generation not in ("legacy", "dynamic"):
            raise ValueError("generation is legacy or dynamic")
        template_id = f"d-{uuid.uuid4().hex}" if generation == "dynamic" else str(uuid.uuid4())
        template = Template(template_id, name, generation, subject, html)
        self.templates[template_id] = template
        return template.json(full=True)

    def add_bounce(
        self, email: str, reason: str = "550 5.1.1 The email account does not exist."
    ) -> JsonObject:
        bounce = {"created": int(time.time()), "email": email, "reason": reason, "status": "5.1.1"}
        self.bounces[email.lower()] = bounce
        return bounce

    def sent(self, x_message_id: str) -> list[JsonObject]:
        """The Email Activity details of every recipient of one send."""
        return [m.detail() for m in self.messages.values() if m.x_message_id == x_message_id]

    async def advance(
        self, msg_id: str, event: str, *, timestamp: int | None = None
    ) -> tuple[list[JsonObject], Delivery | None]:
        """Move a message on (`processed`, `delivered`, `open` or `bounce`) and post its events.

        Returns the webhook events posted and the delivery (None when no URL is configured;
        the events are then dropped, as SendGrid drops them for an account without a webhook).
        """
        message = self.messages[msg_id]
        steps = message.webhook_steps
        allowed = {
            "processed": not steps,
            "delivered": "delivered" not in steps and "bounce" not in steps,
            "open": "delivered" in steps,
            "bounce": "delivered" not in steps and "bounce" not in steps,
        }
        if event not in allowed:
            raise ControlError(f"event must be one of {sorted(allowed)}")
        if not allowed[event]:
            raise ControlError(f"a message that has had {steps} cannot have {event!r}", 409)
        if not steps:
            self._record(message, "processed")
        if event != "processed":
            self._record(message, event)
        posted, message.unsent = message.unsent, []
        if self.webhook_url is None:
            return posted, None
        body = json.dumps(posted, separators=(",", ":")).encode("utf-8") + b"\r\n"
        delivery = await self.post(self.webhook_url, body, self.signed_headers(body, timestamp))
        self.deliveries.append(delivery)
        return posted, delivery

    def _record(self, message: Message, event: str) -> None:
        now = time.time()
        message.webhook_steps.append(event)
        message.last_event = now
        activity: JsonObject = {"event_name": ACTIVITY_NAMES[event], "processed": _iso(now)}
        hook: JsonObject = dict(message.custom_args)  # reserved keys below win over custom ones
        hook.update(
            {
                "email": message.to_email,
                "timestamp": int(now),
                "smtp-id": f"<{message.x_message_id}@sim.sendgrid.invalid>",
                "event": event,
                "sg_event_id": base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="),
                "sg_message_id": message.msg_id,
            }
        )
        if message.categories:
            hook["category"] = list(message.categories)
        if event == "delivered":
            message.status = "delivered"
            activity["mx_server"] = "mx.sim.sendgrid.invalid"
            hook["response"] = "250 OK"
        elif event == "open":
            message.opens += 1
            activity["http_user_agent"] = "Mozilla/5.0 (simulated)"
            hook.update({"useragent": "Mozilla/5.0 (simulated)", "ip": OUTBOUND_IP})
        elif event == "bounce":
            message.status = "not_delivered"
            reason = "550 5.1.1 The email account that you tried to reach does not exist."
            activity.update(
                {"reason": reason, "bounce_type": "hard", "mx_server": "mx.sim.invalid"}
            )
            hook.update({"reason": reason, "status": "5.1.1", "type": "bounce"})
            self.add_bounce(message.to_email, reason)
        message.events.append(activity)
        message.unsent.append(hook)

    # -- the API edge -------------------------------------------------------------------

    def middlewares(self) -> list[Any]:
        return [self._middleware]

    @web.middleware
    async def _middleware(self, request: web.Request, handler: RouteHandler) -> web.StreamResponse:
        if request.path.startswith("/_sim/"):
            return await handler(request)
        reset = str(int(time.time()) + 60)
        try:
            failure = self.take_failure()
            if failure is not None:
                message = "too many requests" if failure.status == 429 else "simulated failure"
                raise SendGridError(failure.status, message)
            request[API_KEY] = self._authenticate(request)
            response = await handler(request)
        except SendGridError as error:
            response = error.response()
        except web.HTTPMethodNotAllowed:
            response = SendGridError(405, "method not allowed").response()
        except web.HTTPNotFound:
            response = SendGridError(404, "not found").response()
        limited = response.status == 429
        response.headers.update(
            {
                "X-RateLimit-Limit": str(RATE_LIMIT),
                "X-RateLimit-Remaining": "0" if limited else str(RATE_LIMIT - 1),
                "X-RateLimit-Reset": reset,
            }
        )
        return response

    def _authenticate(self, request: web.Request) -> ApiKey:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if not token:
            raise SendGridError(401, "authorization required")
        key = self.keys.get(token.strip()) if scheme.lower() == "bearer" else None
        if key is None:
            raise SendGridError(
                401, "The provided authorization grant is invalid, expired, or revoked"
            )
        return key

    @staticmethod
    def _need(request: web.Request, scope: str) -> ApiKey:
        key = request[API_KEY]
        if scope not in key.scopes:
            raise SendGridError(403, "access forbidden")
        return key

    def add_vendor_routes(self, app: web.Application) -> None:
        app.router.add_get("/v3/scopes", self._scopes)
        app.router.add_post("/v3/mail/send", self._send)
        app.router.add_get("/v3/messages", self._list_messages)
        app.router.add_get("/v3/messages/{msg_id}", self._get_message)
        app.router.add_get("/v3/templates", self._list_templates)
        app.router.add_get("/v3/templates/{template_id}", self._get_template)
        app.router.add_get("/v3/suppression/bounces", self._list_bounces)
        app.router.add_get("/v3/suppression/bounces/{email}", self._get_bounce)
        app.router.add_delete("/v3/suppression/bounces/{email}", self._delete_bounce)

    async def _scopes(self, request: web.Request) -> web.Response:
        return web.json_response({"scopes": list(request[API_KEY].scopes)})

    async def _send(self, request: web.Request) -> web.Response:
        key = self._need(request, "mail.send")
        raw = await request.read()
        if len(raw) > MAX_BODY:
            raise SendGridError(413, "content too large")
        try:
            parsed = json.loads(raw)
        except ValueError:
            raise SendGridError(400, "Bad Request") from None
        body = _MailCheck(parsed, self.templates).run()
        self.mail_bodies.append(parsed)
        x_message_id = random_text(22)
        template_id = body.get("template_id") or ""
        custom = body.get("custom_args") if isinstance(body.get("custom_args"), dict) else {}
        categories = [c for c in body.get("categories") or [] if isinstance(c, str)]
        asm = body.get("asm")
        group = asm.get("group_id") if isinstance(asm, dict) else None
        index = 0
        for item in body["personalizations"]:
            subject = item.get("subject") or body.get("subject")
            if not subject and template_id:
                subject = self.templates[template_id].subject
            for kind in ("to", "cc", "bcc"):
                for entry in item.get(kind, []):
                    msg_id = f"{x_message_id}.filterdrecv-sim-{index}.0"
                    index += 1
                    self.messages[msg_id] = Message(
                        msg_id=msg_id,
                        x_message_id=x_message_id,
                        from_email=body["from"]["email"],
                        to_email=entry["email"],
                        subject=str(subject or ""),
                        template_id=template_id,
                        categories=categories,
                        custom_args={str(k): str(v) for k, v in (custom or {}).items()},
                        asm_group_id=group if isinstance(group, int) and group > 0 else None,
                        api_key_id=key.key_id,
                        events=[],
                    )
        return web.Response(status=202, headers={"X-Message-Id": x_message_id})

    async def _list_messages(self, request: web.Request) -> web.Response:
        self._need(request, "messages.read")
        raw_limit = request.query.get("limit", "10")
        try:
            limit = int(raw_limit)
        except ValueError:
            limit = 0
        if not 1 <= limit <= 1000:
            raise SendGridError(400, "limit must be an integer from 1 to 1000")
        query = request.query.get("query", "").strip()
        clauses = parse_query(query) if query else []
        found = [m for m in self.messages.values() if _matches(m, clauses)]
        found.sort(key=lambda m: m.last_event, reverse=True)
        return web.json_response({"messages": [m.summary() for m in found[:limit]]})

    async def _get_message(self, request: web.Request) -> web.Response:
        self._need(request, "messages.read")
        message = self.messages.get(request.match_info["msg_id"])
        if message is None:
            raise SendGridError(404, "not found", "message_id")
        return web.json_response(message.detail())

    async def _list_templates(self, request: web.Request) -> web.Response:
        self._need(request, "templates.read")
        generations = request.query.get("generations", "legacy").split(",")
        if not set(generations) <= {"legacy", "dynamic"}:
            raise SendGridError(400, "generations must be legacy, dynamic or both", "generations")
        try:
            size = int(request.query.get("page_size", "10"))
            start = int(base64.urlsafe_b64decode(request.query.get("page_token", "") + "==") or 0)
        except ValueError:
            raise SendGridError(400, "page_size and page_token must be what a page gave") from None
        if not 1 <= size <= 200:
            raise SendGridError(400, "page_size should be between 1 and 200", "page_size")
        chosen = [t for t in self.templates.values() if t.generation in generations]
        page = chosen[start : start + size]
        metadata: JsonObject = {"self": str(request.url), "count": len(chosen)}
        if start + size < len(chosen):
            token = base64.urlsafe_b64encode(str(start + size).encode()).decode().rstrip("=")
            metadata["next"] = str(request.url.update_query(page_token=token))
        return web.json_response(
            {"result": [t.json(full=False) for t in page], "_metadata": metadata}
        )

    async def _get_template(self, request: web.Request) -> web.Response:
        self._need(request, "templates.read")
        template = self.templates.get(request.match_info["template_id"])
        if template is None:
            raise SendGridError(404, "resource not found", "template_id")
        return web.json_response(template.json(full=True))

    async def _list_bounces(self, request: web.Request) -> web.Response:
        self._need(request, "suppression.read")
        try:
            start = int(request.query.get("start_time", "0"))
            end = int(request.query.get("end_time", str(2**62)))
            limit = int(request.query.get("limit", "500"))
            offset = int(request.query.get("offset", "0"))
        except ValueError:
            raise SendGridError(
                400, "start_time, end_time, limit and offset are integers"
            ) from None
        chosen = [b for b in self.bounces.values() if start <= b["created"] <= end]
        chosen.sort(key=lambda b: b["created"], reverse=True)
        return web.json_response(chosen[offset : offset + limit])

    async def _get_bounce(self, request: web.Request) -> web.Response:
        self._need(request, "suppression.read")
        bounce = self.bounces.get(request.match_info["email"].lower())
        return web.json_response([bounce] if bounce else [])

    async def _delete_bounce(self, request: web.Request) -> web.Response:
        self._need(request, "suppression.delete")
        if self.bounces.pop(request.match_info["email"].lower(), None) is None:
            raise SendGridError(404, "not found", "email")
        return web.Response(status=204)

    # -- /_sim/ controls ----------------------------------------------------------------

    def controls(self) -> list[Control]:
        return [
            ("GET", "/_sim/health", self._health, "Liveness, the API key and the public key."),
            ("POST", "/_sim/keys", self._add_key, 'Another API key: {"key"?, "scopes"?}.'),
            ("PUT", "/_sim/webhook", self._set_webhook, 'Where events go: {"url": ...|null}.'),
            (
                "POST",
                "/_sim/messages/{msg_id}/events",
                self._advance,
                'Move a message on and post its signed events: {"event": "processed"|'
                '"delivered"|"open"|"bounce", "timestamp"?: unix seconds to sign with}.',
            ),
            ("GET", "/_sim/deliveries", self._deliveries, "The webhook POSTs made and answers."),
            (
                "POST",
                "/_sim/templates",
                self._add_template,
                'A template: {"name", "subject"?, "html"?, "generation"?: "dynamic"}.',
            ),
            ("POST", "/_sim/bounces", self._add_bounce, 'A bounce: {"email", "reason"?}.'),
        ]

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "status": "ok",
                "apiKey": self.api_key,
                "publicKey": self.public_key,
                "webhookUrl": self.webhook_url,
            }
        )

    async def _add_key(self, request: web.Request) -> web.Response:
        payload = await control_payload(request)
        scopes = payload.get("scopes", ALL_SCOPES)
        if not isinstance(scopes, list | tuple) or not all(isinstance(s, str) for s in scopes):
            raise ControlError("scopes is a list of strings")
        key = self.add_key(payload.get("key"), scopes)
        return web.json_response({"key": key, "scopes": list(scopes)}, status=201)

    async def _set_webhook(self, request: web.Request) -> web.Response:
        url = (await control_payload(request)).get("url")
        if url is not None and not isinstance(url, str):
            raise ControlError("url is a string or null")
        self.webhook_url = url
        return web.json_response({"url": url, "publicKey": self.public_key})

    async def _advance(self, request: web.Request) -> web.Response:
        payload = await control_payload(request)
        timestamp = payload.get("timestamp")
        if timestamp is not None and not isinstance(timestamp, int):
            raise ControlError("timestamp is UNIX seconds")
        events, delivery = await self.advance(
            request.match_info["msg_id"], str(payload.get("event", "")), timestamp=timestamp
        )
        return web.json_response(
            {"events": events, "delivery": delivery.as_json() if delivery else None}
        )

    async def _deliveries(self, request: web.Request) -> web.Response:
        return web.json_response({"deliveries": [d.as_json() for d in self.deliveries]})

    async def _add_template(self, request: web.Request) -> web.Response:
        payload = await control_payload(request)
        if not isinstance(payload.get("name"), str):
            raise ControlError("name is required")
        template = self.add_template(
            payload["name"],
            subject=str(payload.get("subject", "")),
            html=str(payload.get("html", "<p>Hello</p>")),
            generation=str(payload.get("generation", "dynamic")),
        )
        return web.json_response(template, status=201)

    async def _add_bounce(self, request: web.Request) -> web.Response:
        payload = await control_payload(request)
        if not isinstance(payload.get("email"), str):
            raise ControlError("email is required")
        reason = payload.get("reason")
        bounce = self.add_bounce(payload["email"], *([reason] if isinstance(reason, str) else []))
        return web.json_response(bounce, status=201)


def describe(sim: SendGridSimulator) -> str:
    """The banner `main` prints: what a Hubgate `sendgrid` instance needs to use this simulator."""
    return "\n".join(
        [
            f"SendGrid simulator listening on {sim.url}",
            "",
            f"export SENDGRID_API_KEY={sim.api_key}",
            f"export SENDGRID_EVENT_WEBHOOK_PUBLIC_KEY={sim.public_key}",
            f"export SENDGRID_BASE_URL={sim.url}",
            "",
            "Instance configuration (sendgrid): sendgrid.api.key, event.webhook.public.key and",
            'base.url from the lines above. Events go where PUT /_sim/webhook {"url"} says.',
            "Hubgate calls loopback vendors only when allowed: HUBGATE_EGRESS_ALLOW=127.0.0.0/8",
            f"Test controls under {sim.url}/_sim/ ; Ctrl-C stops the simulator.",
        ]
    )


def main(
    host: str = "127.0.0.1",
    port: int = 8091,
    api_key: str | None = None,
    webhook_url: str | None = None,
) -> None:
    """Run the simulator in the foreground until Ctrl-C."""
    sim = SendGridSimulator(api_key, webhook_url)
    run_forever(sim, host, port, lambda: describe(sim))
