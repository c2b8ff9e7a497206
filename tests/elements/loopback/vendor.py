"""A tiny notes service on loopback: the vendor behind the ``loopback`` test element.

It is shaped unlike Twilio on purpose: an ``X-Api-Key`` header, failures answered as 200 with
``{"ok": false, "error": …}``, cursor paging with the cursor deep in the envelope, JSON bodies,
the new note's id only in a response header, and HMAC-signed webhooks with a timestamp.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

SIGNATURE_HEADER = "X-Loopback-Signature"
TIMESTAMP_HEADER = "X-Loopback-Timestamp"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


@dataclass
class LoopbackVendor:
    api_key: str = "lb-key-0123456789"
    signing_secret: str = "lb-signing-secret-42"
    notes: dict[str, dict[str, Any]] = field(default_factory=dict)
    # What each request carried: method, path, query, the auth header, the body.
    requests: list[dict[str, Any]] = field(default_factory=list)
    # Statuses to answer the next requests with, whatever they ask (429, 500, …).
    failures: list[int] = field(default_factory=list)
    _runner: web.AppRunner | None = None
    base_url: str = ""
    _counter: int = 0

    async def start(self) -> None:
        app = web.Application(middlewares=[self._middleware])
        app.router.add_get("/v1/me", self._me)
        app.router.add_get("/v1/notes", self._list)
        app.router.add_post("/v1/notes", self._create)
        app.router.add_get("/v1/notes/{id}", self._get)
        app.router.add_delete("/v1/notes/{id}", self._delete)
        app.router.add_get("/v2/archive", self._archive)
        app.router.add_get("/v3/pages", self._pages)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def add_note(self, text: str, author: str = "ada") -> dict[str, Any]:
        self._counter += 1
        note = {"id": f"n{self._counter:05d}", "text": text, "author": author, "rev": 1}
        self.notes[note["id"]] = note
        return note

    def webhook(
        self, event: str, note: dict[str, Any], *, age: int = 0
    ) -> tuple[bytes, dict[str, str]]:
        """A webhook body and its signed headers, as the vendor would post them."""
        body = json.dumps({"event": event, "note": note}).encode()
        stamp = int(time.time()) - age
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: str(stamp),
            SIGNATURE_HEADER: sign(self.signing_secret, stamp, body),
        }
        return body, headers

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        body = await request.read()
        self.requests.append(
            {
                "method": request.method,
                "path": request.path,
                "query": list(request.query.items()),
                "auth": request.headers.get("X-Api-Key"),
                "authorization": request.headers.get("Authorization"),
                "body": body,
            }
        )
        if self.failures:
            status = self.failures.pop(0)
            if status == 429:
                return web.json_response({"ok": False, "error": "ratelimited"}, status=200)
            return web.json_response({"ok": False, "error": "internal"}, status=status)
        if request.headers.get("X-Api-Key") != self.api_key:
            return web.json_response({"ok": False, "error": "invalid_auth", "detail": "bad key"})
        return await handler(request)

    @staticmethod
    def _page(items: list[dict[str, Any]], request: web.Request, default: int) -> tuple[int, int]:
        try:
            limit = int(request.query.get("limit", request.query.get("count", str(default))))
        except ValueError:
            limit = default
        return max(1, min(limit, 100)), len(items)

    def _sorted(self, request: web.Request) -> list[dict[str, Any]]:
        author = request.query.get("author")
        notes = sorted(self.notes.values(), key=lambda n: n["id"])
        return [n for n in notes if author is None or n["author"] == author]

    async def _me(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "user": "loopback"})

    async def _list(self, request: web.Request) -> web.Response:
        notes = self._sorted(request)
        limit, _ = self._page(notes, request, 10)
        after = request.query.get("cursor", "")
        start = next((i for i, n in enumerate(notes) if n["id"] > after), len(notes))
        page = notes[start : start + limit]
        more = start + limit < len(notes)
        meta = {"next_cursor": page[-1]["id"] if more else ""}
        return web.json_response({"ok": True, "data": {"items": page}, "meta": meta})

    async def _archive(self, request: web.Request) -> web.Response:
        notes = self._sorted(request)
        limit, total = self._page(notes, request, 10)
        offset = int(request.query.get("offset", "0"))
        return web.json_response(
            {"ok": True, "records": notes[offset : offset + limit], "total": total}
        )

    async def _pages(self, request: web.Request) -> web.Response:
        notes = self._sorted(request)
        size = int(request.query.get("per_page", "10"))
        number = int(request.query.get("page", "1"))
        return web.json_response(notes[(number - 1) * size : number * size])

    async def _create(self, request: web.Request) -> web.Response:
        try:
            given = await request.json()
        except json.JSONDecodeError:
            given = None
        if not isinstance(given, dict) or not isinstance(given.get("text"), str):
            return web.json_response({"ok": False, "error": "invalid_body", "detail": "no text"})
        note = self.add_note(given["text"], str(given.get("author", "ada")))
        return web.Response(status=202, headers={"X-Note-Id": note["id"]})

    async def _get(self, request: web.Request) -> web.Response:
        note = self.notes.get(request.match_info["id"])
        if note is None:
            return web.json_response({"ok": False, "error": "note_not_found", "detail": "none"})
        return web.json_response({"ok": True, "note": note})

    async def _delete(self, request: web.Request) -> web.Response:
        if self.notes.pop(request.match_info["id"], None) is None:
            return web.json_response({"ok": False, "error": "note_not_found", "detail": "none"})
        return web.Response(status=204)


async def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    async with aiohttp.ClientSession() as http, http.post(url, data=body, headers=headers) as r:
        return r.status, await r.read()
