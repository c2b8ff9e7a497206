"""What the standard connector suite needs of each element's vendor: a :class:`StandardCase`.

An element is tested through its stand-in vendor. Hubgate's own elements have their cases here
(``BUILT_IN``); an element of another package brings its case
as the ``STANDARD_CASE`` factory of the module its entry point names, so adding one touches
nothing outside its folder.
"""

from __future__ import annotations

import json
import time
from itertools import count
from typing import Any, Protocol
from urllib.parse import urlencode

import aiohttp
from twilio.request_validator import RequestValidator

from hubgate.elements.sdk import Element, ResolvedInstance
from sims.sendgrid import SendGridSimulator
from sims.slack import Grant, SlackSimulator
from sims.twilio_sim import TwilioSimulator


def resolved(element: Element, **config: str) -> ResolvedInstance:
    """An instance as the pipeline sees it, made without a database: the element's defaults
    overlaid by ``config``."""
    return ResolvedInstance(
        id=7,
        organization_id=1,
        account_id=1,
        token_hash="x",
        version=1,
        disabled=False,
        element=element,
        config={**element.manifest.defaults(), **config},
        caching_enabled=False,
        cache_time_to_live=0,
        max_cache_size=0,
        trace_logging_enabled=False,
    )


SLACK_CALLBACK = "http://127.0.0.1:9/slack/callback"
# A vendor's webhook call as it would arrive: body and headers.
Signed = tuple[bytes, dict[str, str]]
_serial = count(1)


class StandardCase(Protocol):
    # The hub resource whose list is read through paging, and the field of its objects' ids.
    list_path: str
    id_field: str
    # The hub resource a write goes to.
    write_path: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def configuration(self) -> dict[str, Any]:
        """A configuration the vendor accepts (events off)."""
        ...

    def provider_data(self) -> dict[str, Any] | None:
        """What an OAuth element's create carries (a fresh code each time); None: nothing."""
        ...

    def refused_configuration(self) -> dict[str, Any]:
        """One whose credentials the vendor refuses (its 401, or what stands for it)."""
        ...

    def rate_limit_next(self) -> None:
        """The vendor's next answer says "too many requests" (its 429)."""
        ...

    async def make_records(self, number: int) -> set[str]:
        """That many new objects of ``list_path`` at the vendor; their ids."""
        ...

    def write_body(self) -> dict[str, Any]: ...

    def written(self, answer: dict[str, Any]) -> bool:
        """The vendor holds what the write answered."""
        ...

    def webhook(self, url: str) -> Signed:
        """A signed webhook call to ``url`` that reports one change."""
        ...

    def tampered(self, url: str) -> Signed:
        """The same call with its body changed after signing."""
        ...

    def replayed(self, url: str) -> Signed:
        """The same call as an attacker who kept it would send it again later."""
        ...


class TwilioCase:
    list_path = "messages"
    id_field = "sid"
    write_path = "messages"

    def __init__(self) -> None:
        self.sim = TwilioSimulator()
        self.sid = ""
        self.token = ""
        self._message = ""

    async def start(self) -> None:
        await self.sim.start()
        self.sid, self.token = self.sim.add_account()

    async def stop(self) -> None:
        await self.sim.stop()

    def configuration(self) -> dict[str, Any]:
        return {"username": self.sid, "password": self.token, "base.url": self.sim.base_url}

    def provider_data(self) -> dict[str, Any] | None:
        return None

    def refused_configuration(self) -> dict[str, Any]:
        return {**self.configuration(), "password": "not-the-auth-token-0123456789"}

    def rate_limit_next(self) -> None:
        self.sim.fail_next(429)

    async def make_records(self, number: int) -> set[str]:
        return {
            self.sim.add_inbound_message(
                "+15005550006", "+15005550001", f"standard {i}", account_sid=self.sid
            )["sid"]
            for i in range(number)
        }

    def write_body(self) -> dict[str, Any]:
        return {"To": "+15558675310", "From": "+15005550006", "Body": "standard write"}

    def written(self, answer: dict[str, Any]) -> bool:
        return answer.get("sid") in {m["sid"] for m in self.sim.messages(self.sid)}

    def _params(self, body: str) -> dict[str, str]:
        if not self._message:
            self._message = f"SM{next(_serial):032d}"
        return {
            "MessageSid": self._message,
            "AccountSid": self.sid,
            "From": "+15005550006",
            "To": "+15005550001",
            "Body": body,
            "SmsStatus": "received",
        }

    def _signed(self, url: str, signed: dict[str, str], sent: dict[str, str]) -> Signed:
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": RequestValidator(self.token).compute_signature(url, signed),
        }
        return urlencode(sent).encode(), headers

    def webhook(self, url: str) -> Signed:
        params = self._params("hello")
        return self._signed(url, params, params)

    def tampered(self, url: str) -> Signed:
        return self._signed(url, self._params("hello"), self._params("changed"))

    def replayed(self, url: str) -> Signed:
        # Twilio signs no time: a replay is the same call, and the seen-set must drop it.
        return self.webhook(url)


class SendGridCase:
    list_path = "messages"
    id_field = "msg_id"
    write_path = "messages"

    def __init__(self) -> None:
        self.sim = SendGridSimulator()
        self._body = b""

    async def start(self) -> None:
        await self.sim.start()

    async def stop(self) -> None:
        await self.sim.stop()

    def configuration(self) -> dict[str, Any]:
        return {
            "sendgrid.api.key": self.sim.api_key,
            "sendgrid.sender": "standard@shop.example",
            "event.webhook.public.key": self.sim.public_key,
            "base.url": self.sim.url,
        }

    def provider_data(self) -> dict[str, Any] | None:
        return None

    def refused_configuration(self) -> dict[str, Any]:
        return {**self.configuration(), "sendgrid.api.key": "SG.wrongwrongwrong.notakey0123456789"}

    def rate_limit_next(self) -> None:
        self.sim.fail_next(429)

    async def make_records(self, number: int) -> set[str]:
        ids: set[str] = set()
        headers = {"Authorization": f"Bearer {self.sim.api_key}"}
        async with aiohttp.ClientSession() as http:
            for i in range(number):
                mail = {
                    "personalizations": [{"to": [{"email": f"r{i}@mail.example"}]}],
                    "from": {"email": "standard@shop.example"},
                    "subject": f"standard {i}",
                    "content": [{"type": "text/plain", "value": "x"}],
                }
                async with http.post(
                    f"{self.sim.url}/v3/mail/send", json=mail, headers=headers
                ) as sent:
                    assert sent.status == 202, await sent.text()
                    ids.update(m["msg_id"] for m in self.sim.sent(sent.headers["X-Message-Id"]))
        return ids

    def write_body(self) -> dict[str, Any]:
        return {"to": "written@mail.example", "subject": "standard", "message": "write"}

    def written(self, answer: dict[str, Any]) -> bool:
        return bool(self.sim.sent(str(answer.get("id"))))

    def _events(self) -> bytes:
        if not self._body:
            event = {
                "event": "processed",
                "email": "a@mail.example",
                "sg_message_id": f"standard{next(_serial)}.filterdrecv-sim-0.0",
                "sg_event_id": f"ev{next(_serial)}",
                "timestamp": int(time.time()),
            }
            self._body = json.dumps([event]).encode() + b"\r\n"
        return self._body

    def webhook(self, url: str) -> Signed:
        body = self._events()
        return body, self.sim.signed_headers(body)

    def tampered(self, url: str) -> Signed:
        body = self._events()
        return body.replace(b"processed", b"delivered"), self.sim.signed_headers(body)

    def replayed(self, url: str) -> Signed:
        body = self._events()
        return body, self.sim.signed_headers(body, int(time.time()) - 3600)


class SlackCase:
    """Slack through its simulator: each create exchanges a code the simulator granted, as
    its consent page's "Allow" would (tests/elements/test_slack.py goes through the page)."""

    list_path = "channels"
    id_field = "id"

    def __init__(self) -> None:
        self.sim = SlackSimulator()
        self.write_path = ""
        self._event_id = f"EvSTANDARD{next(_serial)}"

    async def start(self) -> None:
        await self.sim.start()
        self.write_path = f"channels/{self.sim.channel_named('general')}/messages"

    async def stop(self) -> None:
        await self.sim.stop()

    def configuration(self) -> dict[str, Any]:
        return {
            "oauth.api.key": self.sim.client_id,
            "oauth.api.secret": self.sim.client_secret,
            "oauth.callback.url": SLACK_CALLBACK,
            "slack.signing.secret": self.sim.signing_secret,
            "base.url": self.sim.api_url,
            "oauth.authorization.url": self.sim.authorize_url,
            "oauth.token.url": self.sim.token_url,
        }

    def provider_data(self) -> dict[str, Any] | None:
        code = f"STANDARD{next(_serial)}"
        scope = "chat:write,channels:read,channels:history,users:read"
        self.sim.grants[code] = Grant(SLACK_CALLBACK, scope, "", time.time() + 600)
        return {"code": code}

    def refused_configuration(self) -> dict[str, Any]:
        return {**self.configuration(), "oauth.api.secret": "not-the-client-secret-0123"}

    def rate_limit_next(self) -> None:
        self.sim.fail_next(429)

    async def make_records(self, number: int) -> set[str]:
        return {self.sim.add_channel(f"standard-{next(_serial)}") for _ in range(number)}

    def write_body(self) -> dict[str, Any]:
        return {"text": "standard write"}

    def written(self, answer: dict[str, Any]) -> bool:
        channel = self.sim.channels[self.sim.channel_named("general")]
        return answer.get("id") in {m["ts"] for m in channel.messages}

    def _body(self, text: str) -> bytes:
        event = {"type": "message", "channel": "C1", "user": "U1", "text": text, "ts": "1.000001"}
        envelope = {
            "type": "event_callback",
            "team_id": self.sim.team_id,
            "event_id": self._event_id,
            "event_time": int(time.time()),
            "event": event,
        }
        return json.dumps(envelope).encode()

    def webhook(self, url: str) -> Signed:
        body = self._body("hello")
        return body, self.sim.signed_headers(body)

    def tampered(self, url: str) -> Signed:
        return self._body("changed"), self.sim.signed_headers(self._body("hello"))

    def replayed(self, url: str) -> Signed:
        # Slack signs the time: a request kept ten minutes is out of its five-minute window.
        body = self._body("hello")
        return body, self.sim.signed_headers(body, int(time.time()) - 600)


class CaseFactory(Protocol):
    def __call__(self) -> StandardCase: ...


BUILT_IN: dict[str, CaseFactory] = {
    "twiliov2": TwilioCase,
    "sendgrid": SendGridCase,
    "slack": SlackCase,
}
