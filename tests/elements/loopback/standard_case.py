"""The loopback element's vendor, as the standard connector suite drives it."""

from __future__ import annotations

from typing import Any

from tests.elements.loopback.vendor import LoopbackVendor, sign

Signed = tuple[bytes, dict[str, str]]


class LoopbackCase:
    list_path = "notes"
    id_field = "id"
    write_path = "notes"

    def __init__(self) -> None:
        self.vendor = LoopbackVendor()
        self._signed: Signed | None = None

    async def start(self) -> None:
        await self.vendor.start()

    async def stop(self) -> None:
        await self.vendor.stop()

    def configuration(self) -> dict[str, Any]:
        return {
            "loopback.api.key": self.vendor.api_key,
            "loopback.signing.secret": self.vendor.signing_secret,
            "base.url": self.vendor.base_url,
        }

    def provider_data(self) -> dict[str, Any] | None:
        return None

    def refused_configuration(self) -> dict[str, Any]:
        return {**self.configuration(), "loopback.api.key": "not-the-key-0123456789"}

    def rate_limit_next(self) -> None:
        self.vendor.failures.append(429)

    async def make_records(self, number: int) -> set[str]:
        return {self.vendor.add_note(f"standard {i}")["id"] for i in range(number)}

    def write_body(self) -> dict[str, Any]:
        return {"text": "standard write"}

    def written(self, answer: dict[str, Any]) -> bool:
        return answer.get("id") in self.vendor.notes

    def webhook(self, url: str) -> Signed:
        if self._signed is None:
            self._signed = self.vendor.webhook("note.created", self.vendor.add_note("hooked"))
        return self._signed

    def tampered(self, url: str) -> Signed:
        body, headers = self.webhook(url)
        return body.replace(b"hooked", b"forged"), headers

    def replayed(self, url: str) -> Signed:
        body, headers = self.webhook(url)
        stamp = int(headers["X-Loopback-Timestamp"]) - 3600
        return body, {
            **headers,
            "X-Loopback-Timestamp": str(stamp),
            "X-Loopback-Signature": sign(self.vendor.signing_secret, stamp, body),
        }
