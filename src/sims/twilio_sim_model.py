"""In-memory state of the Twilio simulator: accounts and the resources they own.

Resources keep their Twilio JSON fields in a dict so that rendering stays a one-liner; timestamps
are held as aware datetimes (for sorting and the DateSent filters) and only become RFC 2822
strings when rendered. Every mutation happens under `SimState.lock` because test code drives the
state from other threads while the server's event loop reads it.
"""

from __future__ import annotations

import math
import mimetypes
import re
import secrets
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

JsonDict = dict[str, Any]
SortKey = tuple[datetime, str]

API_VERSION = "2010-04-01"
API_ROOT = f"/{API_VERSION}"
ERROR_DOCS = "https://www.twilio.com/docs/errors/"

E164 = re.compile(r"^\+[1-9]\d{1,14}$")
ACCOUNT_SID = re.compile(r"^AC[0-9a-fA-F]{32}$")
MESSAGING_SERVICE_SID = re.compile(r"^MG[0-9a-fA-F]{32}$")

MESSAGE_STATUSES = frozenset(
    {
        "queued",
        "sending",
        "sent",
        "failed",
        "delivered",
        "undelivered",
        "receiving",
        "received",
        "accepted",
        "scheduled",
        "read",
        "partially_delivered",
        "canceled",
    }
)
# Twilio stamps date_sent when the carrier accepts the message; these are the states after that.
SENT_STATUSES = frozenset({"sent", "delivered", "read", "partially_delivered"})
CANCELABLE_MESSAGE_STATUSES = frozenset({"scheduled", "accepted", "queued"})
CALL_STATUSES = frozenset(
    {"queued", "ringing", "in-progress", "completed", "busy", "failed", "no-answer", "canceled"}
)
FINAL_CALL_STATUSES = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})
ACCOUNT_STATUSES = frozenset({"active", "suspended", "closed"})

DELIVERY_ERRORS = {
    30003: "Unreachable destination handset",
    30005: "Unknown destination handset",
    30006: "Landline or unreachable carrier",
    30007: "Message filtered",
    30008: "Unknown error",
}
SMS_SEGMENT_PRICE = 0.0079
CALL_MINUTE_PRICE = 0.014

# GSM 03.38: a body made only of these characters is sent as 7-bit GSM (160 per segment);
# anything else forces UCS-2 (70 per segment). Extension characters take two septets.
_GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXTENSION = frozenset("^{}\\[~]|€\f")


class TwilioError(Exception):
    """A failure answered with Twilio's error body (`code`, `message`, `more_info`, `status`)."""

    def __init__(
        self, status: int, code: int, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers: dict[str, str] = dict(headers or {})

    def body(self) -> JsonDict:
        return {
            "code": self.code,
            "message": self.message,
            "more_info": f"{ERROR_DOCS}{self.code}",
            "status": self.status,
        }


def not_found(path: str) -> TwilioError:
    return TwilioError(404, 20404, f"The requested resource {path} was not found")


def missing_parameter(name: str) -> TwilioError:
    return TwilioError(400, 20001, f"Missing required parameter {name} in the post body")


def invalid_parameter(message: str) -> TwilioError:
    # Twilio uses 20001 for most malformed-parameter cases; the exact code matters less to
    # clients than the 400 status, which decides "caller error, do not retry".
    return TwilioError(400, 20001, message)


def new_sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


def now() -> datetime:
    return datetime.now(UTC)


def rfc2822(value: datetime) -> str:
    return format_datetime(value.astimezone(UTC))


def render(value: Any) -> Any:
    """Turn stored values into their wire form; copies containers so callers cannot alias state."""
    if isinstance(value, datetime):
        return rfc2822(value)
    if isinstance(value, dict):
        return {key: render(item) for key, item in value.items()}
    if isinstance(value, list):
        return [render(item) for item in value]
    return value


def money(amount: float) -> str:
    # Twilio reports charges as negative strings with five decimals ("-0.00790").
    return f"{-abs(amount):.5f}"


def count_segments(body: str) -> int:
    if not body:
        return 1
    if all(ch in _GSM_BASIC or ch in _GSM_EXTENSION for ch in body):
        units = sum(2 if ch in _GSM_EXTENSION else 1 for ch in body)
        single, multi = 160, 153
    else:
        units = len(body.encode("utf-16-le")) // 2
        single, multi = 70, 67
    return 1 if units <= single else math.ceil(units / multi)


def format_nanp(number: str) -> str:
    """`+14155550100` → `(415) 555-0100`, which is how Twilio formats North American numbers."""
    digits = number[2:]
    if number.startswith("+1") and len(digits) == 10 and digits.isdigit():
        return f"({digits[:3]}) {digits[3:6]}-{digits[6:]}"
    return number


def is_address(value: str) -> bool:
    """An E.164 number or a `whatsapp:` channel address, the two kinds of `To` we accept."""
    return bool(E164.match(value.removeprefix("whatsapp:")))


@dataclass
class Resource:
    """One Twilio object; `fields` are its JSON members, `private` what Twilio never echoes."""

    sid: str
    fields: JsonDict
    private: JsonDict = field(default_factory=dict)

    @property
    def sort_key(self) -> SortKey:
        created: datetime = self.fields["date_created"]
        return (created, self.sid)

    def json(self) -> JsonDict:
        rendered: JsonDict = render(self.fields)
        return rendered

    def touch(self, when: datetime | None = None) -> None:
        self.fields["date_updated"] = when or now()


@dataclass
class Account:
    sid: str
    auth_token: str
    resource: Resource
    messages: dict[str, Resource] = field(default_factory=dict)
    media: dict[str, Resource] = field(default_factory=dict)
    calls: dict[str, Resource] = field(default_factory=dict)
    addresses: dict[str, Resource] = field(default_factory=dict)
    numbers: dict[str, Resource] = field(default_factory=dict)
    # Sort keys of deleted resources: a PageToken naming a deleted row must still resume paging
    # at the right place, otherwise a client deleting while it pages would skip or repeat rows.
    tombstones: dict[str, SortKey] = field(default_factory=dict)
    # Messages created with Twilio's I-Twilio-Idempotency-Token, by token: a repeated create
    # answers the first one's message instead of sending another.
    idempotent: dict[str, str] = field(default_factory=dict)

    @property
    def uri(self) -> str:
        return f"{API_ROOT}/Accounts/{self.sid}"


class Form:
    """Read-only view of a form body, keeping repeated keys (`MediaUrl=a&MediaUrl=b`)."""

    def __init__(self, pairs: Iterable[tuple[str, str]] = ()) -> None:
        self._values: dict[str, list[str]] = {}
        for key, value in pairs:
            self._values.setdefault(key, []).append(value)

    def get(self, name: str) -> str | None:
        values = self._values.get(name)
        return values[0] if values else None

    def getall(self, name: str) -> list[str]:
        return list(self._values.get(name, []))

    def __contains__(self, name: object) -> bool:
        return name in self._values

    def as_dict(self) -> dict[str, str | list[str]]:
        return {k: v[0] if len(v) == 1 else list(v) for k, v in self._values.items()}


def _flag(value: str | None, default: bool) -> bool:
    if value is None:
        return default
    return value.strip().lower() in {"true", "1", "yes"}


class SimState:
    """All accounts and their resources, plus the operations the HTTP layer performs on them."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.accounts: dict[str, Account] = {}

    # -- accounts ---------------------------------------------------------------------------

    def add_account(self, sid: str | None = None, token: str | None = None) -> Account:
        sid = sid or new_sid("AC")
        token = token or secrets.token_hex(16)
        if not ACCOUNT_SID.match(sid):
            raise ValueError(f"account SID must be AC followed by 32 hex digits, got {sid!r}")
        with self.lock:
            if sid in self.accounts:
                raise ValueError(f"account {sid} already exists")
            created = now()
            uri = f"{API_ROOT}/Accounts/{sid}"
            subresources = {
                name: f"{uri}/{path}.json"
                for name, path in (
                    ("available_phone_numbers", "AvailablePhoneNumbers"),
                    ("calls", "Calls"),
                    ("incoming_phone_numbers", "IncomingPhoneNumbers"),
                    ("addresses", "Addresses"),
                    ("usage", "Usage"),
                    ("messages", "Messages"),
                    ("balance", "Balance"),
                )
            }
            resource = Resource(
                sid,
                {
                    "auth_token": token,
                    "date_created": created,
                    "date_updated": created,
                    "friendly_name": f"Simulated account {sid[-6:]}",
                    "owner_account_sid": sid,
                    "sid": sid,
                    "status": "active",
                    "subresource_uris": subresources,
                    "type": "Full",
                    "uri": f"{uri}.json",
                },
            )
            account = Account(sid, token, resource)
            self.accounts[sid] = account
            return account

    def authenticate(self, user: str, password: str) -> Account | None:
        with self.lock:
            account = self.accounts.get(user)
        if account is None or not secrets.compare_digest(
            account.auth_token.encode(), password.encode()
        ):
            return None
        return account

    def update_account(self, account: Account, form: Form) -> Resource:
        status = form.get("Status")
        if status is not None and status not in ACCOUNT_STATUSES:
            raise invalid_parameter(f"Invalid Status {status!r}")
        fields = account.resource.fields
        if form.get("FriendlyName") is not None:
            fields["friendly_name"] = form.get("FriendlyName")
        if status is not None:
            fields["status"] = status
        account.resource.touch()
        return account.resource

    # -- messages ---------------------------------------------------------------------------

    def find_message(self, sid: str) -> tuple[Account, Resource]:
        with self.lock:
            for account in self.accounts.values():
                if sid in account.messages:
                    return account, account.messages[sid]
        raise KeyError(sid)

    def _new_message(
        self,
        account: Account,
        *,
        to: str,
        from_: str | None,
        body: str,
        media_urls: list[str],
        direction: str,
        status: str,
        messaging_service_sid: str | None = None,
        created: datetime | None = None,
    ) -> Resource:
        created = created or now()
        sid = new_sid("MM" if media_urls else "SM")
        uri = f"{account.uri}/Messages/{sid}"
        message = Resource(
            sid,
            {
                "account_sid": account.sid,
                "api_version": API_VERSION,
                "body": body,
                "date_created": created,
                "date_sent": None,
                "date_updated": created,
                "direction": direction,
                "error_code": None,
                "error_message": None,
                "from": from_,
                "messaging_service_sid": messaging_service_sid,
                "num_media": str(len(media_urls)),
                "num_segments": str(count_segments(body)),
                "price": None,
                "price_unit": "USD",
                "sid": sid,
                "status": status,
                "subresource_uris": {
                    "media": f"{uri}/Media.json",
                    "feedback": f"{uri}/Feedback.json",
                },
                "to": to,
                "uri": f"{uri}.json",
            },
        )
        for url in media_urls:
            media_sid = new_sid("ME")
            content_type = mimetypes.guess_type(url.split("?", 1)[0])[0] or "image/jpeg"
            account.media[media_sid] = Resource(
                media_sid,
                {
                    "account_sid": account.sid,
                    "content_type": content_type,
                    "date_created": created,
                    "date_updated": created,
                    "parent_sid": sid,
                    "sid": media_sid,
                    "uri": f"{uri}/Media/{media_sid}.json",
                },
                {"url": url},
            )
        account.messages[sid] = message
        return message

    def create_message(self, account: Account, form: Form) -> Resource:
        # Checked in the order Twilio reports them, so a request missing several fields gets the
        # same first error as from the real API.
        to = form.get("To")
        if not to:
            raise TwilioError(400, 21604, "A 'To' phone number is required.")
        if not is_address(to):
            raise TwilioError(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        from_ = form.get("From") or None
        service = form.get("MessagingServiceSid") or None
        if from_ is None and service is None:
            raise TwilioError(400, 21603, "A 'From' phone number is required.")
        if service is not None and not MESSAGING_SERVICE_SID.match(service):
            raise invalid_parameter(f"Invalid MessagingServiceSid {service!r}")
        body = form.get("Body") or ""
        media_urls = [url for url in form.getall("MediaUrl") if url]
        if not body and not media_urls and not form.get("ContentSid"):
            raise TwilioError(400, 21602, "Message body is required.")
        if len(body) > 1600:
            raise TwilioError(
                400, 21617, "The concatenated message body exceeds the 1600 character limit."
            )
        # A Messaging Service picks the sender later, so Twilio first reports it as accepted.
        status = "queued" if from_ else "accepted"
        if form.get("ScheduleType") == "fixed" and form.get("SendAt"):
            status = "scheduled"
        with self.lock:
            message = self._new_message(
                account,
                to=to,
                from_=from_,
                body=body,
                media_urls=media_urls,
                direction="outbound-api",
                status=status,
                messaging_service_sid=service,
            )
            message.private["status_callback"] = form.get("StatusCallback")
            return message

    def update_message(self, message: Resource, form: Form) -> Resource:
        body = form.get("Body")
        status = form.get("Status")
        if body is not None and body != "":
            raise invalid_parameter("Body can only be updated to an empty string (redaction)")
        if status is not None and status != "canceled":
            raise invalid_parameter(f"Invalid Status {status!r}: only 'canceled' is allowed")
        with self.lock:
            if status == "canceled":
                current = message.fields["status"]
                if current not in CANCELABLE_MESSAGE_STATUSES:
                    raise invalid_parameter(
                        f"Message {message.sid} cannot be canceled in status {current!r}"
                    )
                message.fields["status"] = "canceled"
            if body == "":
                message.fields["body"] = ""
            message.touch()
            return message

    def delete_message(self, account: Account, sid: str) -> None:
        with self.lock:
            message = account.messages.pop(sid)
            account.tombstones[sid] = message.sort_key
            for media_sid in [
                m.sid for m in account.media.values() if m.fields["parent_sid"] == sid
            ]:
                del account.media[media_sid]

    def add_inbound_message(
        self,
        account: Account,
        from_: str,
        to: str,
        body: str,
        *,
        media_urls: list[str] | None = None,
        at: datetime | None = None,
    ) -> Resource:
        when = (at or now()).astimezone(UTC)
        with self.lock:
            message = self._new_message(
                account,
                to=to,
                from_=from_,
                body=body,
                media_urls=list(media_urls or []),
                direction="inbound",
                status="received",
                created=when,
            )
            segments = int(message.fields["num_segments"])
            message.fields["date_sent"] = when
            message.fields["price"] = money(SMS_SEGMENT_PRICE * segments)
            return message

    def set_message_status(
        self,
        sid: str,
        status: str,
        *,
        error_code: int | None = None,
        date_sent: datetime | None = None,
    ) -> Resource:
        if status not in MESSAGE_STATUSES:
            raise ValueError(f"unknown message status {status!r}")
        with self.lock:
            _, message = self.find_message(sid)
            fields = message.fields
            when = now()
            fields["status"] = status
            if date_sent is not None:
                fields["date_sent"] = date_sent.astimezone(UTC)
            elif status in SENT_STATUSES and fields["date_sent"] is None:
                fields["date_sent"] = when
            if status in SENT_STATUSES and fields["price"] is None:
                fields["price"] = money(SMS_SEGMENT_PRICE * int(fields["num_segments"]))
            if error_code is not None:
                fields["error_code"] = error_code
                fields["error_message"] = DELIVERY_ERRORS.get(error_code, "Simulated error")
            message.touch(when)
            return message

    # -- calls ------------------------------------------------------------------------------

    def create_call(self, account: Account, form: Form) -> Resource:
        to = form.get("To")
        if not to:
            raise TwilioError(400, 21201, "No 'To' number is specified")
        from_ = form.get("From")
        if not from_:
            raise TwilioError(400, 21213, "No 'From' number is specified")
        if not (is_address(to) or to.startswith(("client:", "sip:"))):
            raise TwilioError(400, 21211, f"Invalid 'To' Phone Number: {to}")
        if not any(form.get(name) for name in ("Url", "Twiml", "ApplicationSid")):
            raise TwilioError(
                400,
                21205,
                "Url parameter is required. For more information, see "
                "http://www.twilio.com/docs/api/twiml",
            )
        created = now()
        sid = new_sid("CA")
        uri = f"{account.uri}/Calls/{sid}"
        with self.lock:
            number = next(
                (n for n in account.numbers.values() if n.fields["phone_number"] == from_), None
            )
            call = Resource(
                sid,
                {
                    "account_sid": account.sid,
                    "answered_by": None,
                    "api_version": API_VERSION,
                    "caller_name": None,
                    "date_created": created,
                    "date_updated": created,
                    "direction": "outbound-api",
                    "duration": None,
                    "end_time": None,
                    "forwarded_from": None,
                    "from": from_,
                    "from_formatted": format_nanp(from_),
                    "group_sid": None,
                    "parent_call_sid": None,
                    "phone_number_sid": number.sid if number else None,
                    "price": None,
                    "price_unit": "USD",
                    "queue_time": "0",
                    "sid": sid,
                    "start_time": None,
                    "status": "queued",
                    "subresource_uris": {
                        name: f"{uri}/{path}.json"
                        for name, path in (
                            ("notifications", "Notifications"),
                            ("recordings", "Recordings"),
                            ("payments", "Payments"),
                            ("events", "Events"),
                            ("siprec", "Siprec"),
                            ("streams", "Streams"),
                            ("transcriptions", "Transcriptions"),
                            (
                                "user_defined_message_subscriptions",
                                "UserDefinedMessageSubscriptions",
                            ),
                            ("user_defined_messages", "UserDefinedMessages"),
                        )
                    },
                    "to": to,
                    "to_formatted": format_nanp(to),
                    "trunk_sid": None,
                    "uri": f"{uri}.json",
                },
                {
                    name: form.get(name)
                    for name in ("Url", "Twiml", "ApplicationSid", "Method", "StatusCallback")
                },
            )
            account.calls[sid] = call
            return call

    def update_call(self, call: Resource, form: Form) -> Resource:
        status = form.get("Status")
        if status is not None and status not in {"canceled", "completed"}:
            raise invalid_parameter(f"Invalid Status {status!r}: use 'canceled' or 'completed'")
        with self.lock:
            current = call.fields["status"]
            redirect = {n: form.get(n) for n in ("Url", "Twiml") if form.get(n)}
            if redirect and current in FINAL_CALL_STATUSES:
                raise TwilioError(400, 21220, "Call is not in-progress. Cannot redirect.")
            call.private.update(redirect)
            # Like Twilio, ending a call that already ended leaves it as it was, and `canceled`
            # only affects calls that have not been answered yet.
            if status == "canceled" and current in {"queued", "ringing"}:
                self._finish_call(call, "canceled")
            elif status == "completed" and current not in FINAL_CALL_STATUSES:
                self._finish_call(call, "completed" if current == "in-progress" else "canceled")
            call.touch()
            return call

    def _finish_call(self, call: Resource, status: str) -> None:
        fields = call.fields
        end = now()
        fields["status"] = status
        fields["end_time"] = end
        start: datetime | None = fields["start_time"]
        seconds = int((end - start).total_seconds()) if start else 0
        fields["duration"] = str(seconds)
        if status == "completed":
            fields["price"] = money(CALL_MINUTE_PRICE * max(1, math.ceil(seconds / 60)))

    def set_call_status(self, sid: str, status: str) -> Resource:
        if status not in CALL_STATUSES:
            raise ValueError(f"unknown call status {status!r}")
        with self.lock:
            call = next((a.calls[sid] for a in self.accounts.values() if sid in a.calls), None)
            if call is None:
                raise KeyError(sid)
            if status == "in-progress" and call.fields["start_time"] is None:
                call.fields["start_time"] = now()
            if status in FINAL_CALL_STATUSES:
                self._finish_call(call, status)
            else:
                call.fields["status"] = status
            call.touch()
            return call

    # -- addresses --------------------------------------------------------------------------

    ADDRESS_REQUIRED = ("CustomerName", "Street", "City", "Region", "PostalCode", "IsoCountry")
    ADDRESS_FIELDS = {
        "CustomerName": "customer_name",
        "Street": "street",
        "StreetSecondary": "street_secondary",
        "City": "city",
        "Region": "region",
        "PostalCode": "postal_code",
        "FriendlyName": "friendly_name",
    }

    def create_address(self, account: Account, form: Form) -> Resource:
        for name in self.ADDRESS_REQUIRED:
            if not form.get(name):
                raise missing_parameter(name)
        iso = (form.get("IsoCountry") or "").upper()
        if not re.fullmatch(r"[A-Z]{2}", iso):
            raise invalid_parameter(f"Invalid IsoCountry {iso!r}: use an ISO 3166-1 alpha-2 code")
        created = now()
        sid = new_sid("AD")
        fields: JsonDict = {
            "account_sid": account.sid,
            "city": None,
            "customer_name": None,
            "date_created": created,
            "date_updated": created,
            "emergency_enabled": _flag(form.get("EmergencyEnabled"), False),
            "friendly_name": None,
            "iso_country": iso,
            "postal_code": None,
            "region": None,
            "sid": sid,
            "street": None,
            "street_secondary": None,
            "uri": f"{account.uri}/Addresses/{sid}.json",
            "validated": False,
            "verified": False,
        }
        for param, key in self.ADDRESS_FIELDS.items():
            if form.get(param) is not None:
                fields[key] = form.get(param)
        address = Resource(sid, fields)
        with self.lock:
            account.addresses[sid] = address
        return address

    def update_address(self, address: Resource, form: Form) -> Resource:
        with self.lock:
            for param, key in self.ADDRESS_FIELDS.items():
                value = form.get(param)
                if value is None:
                    continue
                if param in self.ADDRESS_REQUIRED and not value:
                    raise invalid_parameter(f"{param} cannot be empty")
                address.fields[key] = value
            if "EmergencyEnabled" in form:
                address.fields["emergency_enabled"] = _flag(form.get("EmergencyEnabled"), False)
            address.touch()
            return address

    # -- common -----------------------------------------------------------------------------

    def forget(self, account: Account, collection: dict[str, Resource], sid: str) -> None:
        with self.lock:
            resource = collection.pop(sid)
            account.tombstones[sid] = resource.sort_key

    def reset(self) -> None:
        """Drop every resource but keep the accounts, so credentials handed out stay valid."""
        with self.lock:
            for account in self.accounts.values():
                for collection in (
                    account.messages,
                    account.media,
                    account.calls,
                    account.addresses,
                    account.numbers,
                    account.tombstones,
                ):
                    collection.clear()


def newest_first(resources: Iterable[Resource]) -> list[Resource]:
    return sorted(resources, key=lambda r: r.sort_key, reverse=True)
