"""What the standard connector suite needs of each element's vendor: a :class:`StandardCase`.

An element is tested through its stand-in vendor. Hubgate's own elements have their cases here
(``BUILT_IN``; the Slack engineer adds Slack's); an element of another package brings its case
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
from hubgate.testing.twilio_sim import TwilioSimulator
from sims.sendgrid import SendGridSimulator


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


class CaseFactory(Protocol):
    def __call__(self) -> StandardCase: ...


BUILT_IN: dict[str, CaseFactory] = {"twiliov2": TwilioCase, "sendgrid": SendGridCase}
