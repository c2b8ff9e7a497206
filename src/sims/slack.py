"""A stateful simulator of Slack's OAuth v2, its Web API and its Events API.

What it speaks (see ../shared/spec/slack-api.md): the v2 install flow (`GET /oauth/v2/authorize`
serves a consent page whose "Allow" redirects to `redirect_uri?code&state`), `oauth.v2.access`
for codes and refresh tokens with token rotation (access tokens expire after `token_lifetime`
seconds; each refresh token works once), and the Web API conventions: HTTP 200 with
`{"ok": false, "error"}`, Bearer tokens (`not_authed`, `invalid_auth`, `token_expired`),
429 `ratelimited` with `Retry-After` on demand, cursor paging through
`response_metadata.next_cursor`. Methods: auth.test, chat.postMessage, chat.update,
chat.delete, conversations.history, conversations.list, users.list.

Events: a test posts, edits or deletes a message as a workspace member (`send_event`, or
`POST /_sim/events`) and the simulator POSTs the `event_callback` to the Request URL, signed
with the v0 HMAC of the app's signing secret; failed deliveries are retried with
`X-Slack-Retry-Num`, and `verify_url` sends the `url_verification` challenge.

    sim = SlackSimulator(); await sim.start(); ...; await sim.stop()
    shell: hubgate sim slack --port 8092
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import html
import json
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

from aiohttp import web

from sims.common import (
    UPPER_DIGITS,
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

__all__ = ["SlackSimulator", "describe", "main"]

DEFAULT_TOKEN_LIFETIME = 43200.0  # Slack's 12 hours with token rotation on
CODE_LIFETIME = 600.0
RETRY_REASONS = {0: "connection_failed"}


def slack_id(prefix: str) -> str:
    return prefix + random_text(10, UPPER_DIGITS)


class SlackError(Exception):
    """A Web API failure: `{"ok": false, "error": code}`, HTTP 200 unless said otherwise."""

    def __init__(self, code: str, status: int = 200, headers: dict[str, str] | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.status = status
        self.headers = headers or {}

    def response(self) -> web.Response:
        body = {"ok": False, "error": self.code}
        return web.json_response(body, status=self.status, headers=self.headers)


@dataclass
class Token:
    kind: str  # "bot" or "user"
    user_id: str
    scope: str
    expires_at: float | None


@dataclass
class Grant:
    redirect_uri: str
    scope: str
    user_scope: str
    expires_at: float


@dataclass
class Channel:
    id: str
    name: str
    created: int
    creator: str
    is_private: bool = False
    is_archived: bool = False
    is_general: bool = False
    messages: list[JsonObject] = field(default_factory=list)  # oldest first

    def json(self, bot_user: str) -> JsonObject:
        empty = {"value": "", "creator": "", "last_set": 0}
        return {
            "id": self.id,
            "name": self.name,
            "name_normalized": self.name,
            "created": self.created,
            "creator": self.creator,
            "is_channel": not self.is_private,
            "is_group": self.is_private,
            "is_im": False,
            "is_mpim": False,
            "is_private": self.is_private,
            "is_archived": self.is_archived,
            "is_general": self.is_general,
            "is_member": True,
            "is_shared": False,
            "is_ext_shared": False,
            "is_org_shared": False,
            "is_pending_ext_shared": False,
            "unlinked": 0,
            "num_members": 2,
            "topic": dict(empty),
            "purpose": dict(empty),
            "previous_names": [],
        }


@dataclass
class User:
    id: str
    name: str
    real_name: str
    is_bot: bool = False

    def json(self, team_id: str) -> JsonObject:
        return {
            "id": self.id,
            "team_id": team_id,
            "name": self.name,
            "deleted": False,
            "color": "9f69e7",
            "real_name": self.real_name,
            "tz": "Europe/London",
            "tz_label": "Greenwich Mean Time",
            "tz_offset": 0,
            "profile": {
                "real_name": self.real_name,
                "real_name_normalized": self.real_name,
                "display_name": self.name,
                "display_name_normalized": self.name,
                "email": None if self.is_bot else f"{self.name}@sim.slack.invalid",
                "team": team_id,
                "avatar_hash": "g0000000000a",
                "title": "",
                "phone": "",
                "skype": "",
                "status_text": "",
                "status_emoji": "",
                "fields": None,
            },
            "is_admin": False,
            "is_owner": False,
            "is_primary_owner": False,
            "is_restricted": False,
            "is_ultra_restricted": False,
            "is_bot": self.is_bot,
            "is_app_user": False,
            "updated": 1_600_000_000,
        }


def _cursor(value: str) -> str:
    return base64.urlsafe_b64encode(value.encode()).decode().rstrip("=")


def _uncursor(cursor: str) -> str:
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise SlackError("invalid_cursor") from None


def _limit(params: dict[str, str], default: int) -> int:
    try:
        limit = int(params.get("limit", default))
    except ValueError:
        raise SlackError("invalid_limit") from None
    if limit < 1:
        raise SlackError("invalid_limit")
    return min(limit, 1000)


def _flag(value: str | None) -> bool:
    return value in ("1", "true", "True")


Method = Callable[[Token, dict[str, str]], Awaitable[JsonObject]]


class SlackSimulator(SimServer):
    """One Slack app installed into one workspace, with its channels, users and messages."""

    name = "Slack simulator"

    def __init__(
        self,
        *,
        client_id: str | None = None,
        client_secret: str | None = None,
        signing_secret: str | None = None,
        token_lifetime: float | None = DEFAULT_TOKEN_LIFETIME,
        request_url: str | None = None,
        retry_delay: float = 0.0,
    ) -> None:
        super().__init__()
        self.client_id = client_id or f"{secrets.randbelow(10**11)}.{secrets.randbelow(10**12)}"
        self.client_secret = client_secret or secrets.token_hex(16)
        self.signing_secret = signing_secret or secrets.token_hex(16)
        self.token_lifetime = token_lifetime  # None: rotation off, tokens never expire
        self.request_url = request_url
        self.retry_delay = retry_delay  # Slack waits ~1 min and ~5 min; tests wait less
        self.team_id = slack_id("T")
        self.team_name = "Hubgate Simulated Workspace"
        self.app_id = slack_id("A")
        self.bot_id = slack_id("B")
        self.bot_user = User(slack_id("U"), "hubgate", "Hubgate", is_bot=True)
        self.users: dict[str, User] = {self.bot_user.id: self.bot_user}
        self.channels: dict[str, Channel] = {}
        self.grants: dict[str, Grant] = {}
        self.tokens: dict[str, Token] = {}
        self.refresh_tokens: dict[str, Token] = {}
        self.deliveries: list[Delivery] = []
        self._last_ts = 0
        person = self.add_user("ada", "Ada Lovelace")
        self.add_channel("general", creator=person, general=True)
        self.add_channel("random", creator=person)

    # -- workspace helpers for tests ----------------------------------------------------

    def add_user(self, name: str, real_name: str = "") -> str:
        user = User(slack_id("U"), name, real_name or name)
        self.users[user.id] = user
        return user.id

    def add_channel(
        self, name: str, *, creator: str | None = None, private: bool = False, general: bool = False
    ) -> str:
        channel = Channel(
            slack_id("C" if not private else "G"),
            name,
            int(time.time()),
            creator or self.bot_user.id,
            is_private=private,
            is_general=general,
        )
        self.channels[channel.id] = channel
        return channel.id

    def channel_named(self, name: str) -> str:
        return next(c.id for c in self.channels.values() if c.name == name)

    def issue_token(
        self, scope: str = "chat:write,channels:read,channels:history,users:read"
    ) -> str:
        """A bot token as an install would give (without the browser round trip)."""
        return self._new_tokens("bot", self.bot_user.id, scope)[0]

    def expire_token(self, token: str) -> None:
        """Make an access token expire now, as twelve hours would."""
        self.tokens[token].expires_at = time.time() - 1

    def _new_tokens(self, kind: str, user_id: str, scope: str) -> tuple[str, str | None]:
        prefix = "xoxb" if kind == "bot" else "xoxp"
        expires = None if self.token_lifetime is None else time.time() + self.token_lifetime
        token = Token(kind, user_id, scope, expires)
        access = f"{prefix}-{'xoxe-' if expires else ''}{random_text(40)}"
        self.tokens[access] = token
        if expires is None:
            return access, None
        refresh = f"xoxe-1-{random_text(60)}"
        self.refresh_tokens[refresh] = token
        return access, refresh

    def _ts(self) -> str:
        micros = max(int(time.time() * 1_000_000), self._last_ts + 1)
        self._last_ts = micros
        return f"{micros // 1_000_000:010d}.{micros % 1_000_000:06d}"

    # -- signing and events -------------------------------------------------------------

    def signed_headers(self, body: bytes, timestamp: int | None = None) -> dict[str, str]:
        """`X-Slack-Signature` (v0 HMAC-SHA256) and `X-Slack-Request-Timestamp` for `body`."""
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        base = b"v0:" + stamp.encode("ascii") + b":" + body
        digest = hmac.new(self.signing_secret.encode(), base, hashlib.sha256).hexdigest()
        return {
            "Content-Type": "application/json",
            "X-Slack-Signature": f"v0={digest}",
            "X-Slack-Request-Timestamp": stamp,
        }

    async def deliver(
        self,
        payload: JsonObject,
        *,
        duplicates: int = 0,
        timestamp: int | None = None,
        url: str | None = None,
    ) -> list[Delivery]:
        """POST one payload to the Request URL; retry a failure up to 3 times as Slack does.

        `duplicates` resends a delivered payload that many more times with retry headers, as
        Slack does when an answer took longer than 3 s (`http_timeout`).
        """
        target = url or self.request_url
        if target is None:
            raise ControlError("no Request URL: PUT /_sim/request-url first", 409)
        body = json.dumps(payload).encode("utf-8")
        attempts: list[Delivery] = []
        reason = ""
        while len(attempts) <= 3:
            headers = self.signed_headers(body, timestamp)
            if attempts:
                headers["X-Slack-Retry-Num"] = str(len(attempts))
                headers["X-Slack-Retry-Reason"] = reason
                await asyncio.sleep(self.retry_delay)
            delivery = await self.post(target, body, headers)
            attempts.append(delivery)
            self.deliveries.append(delivery)
            ok = 200 <= delivery.status < 300
            if ok and len(attempts) > duplicates:
                break
            if not ok and delivery.headers.get("x-slack-no-retry") == "1":
                break
            reason = "http_timeout" if ok else RETRY_REASONS.get(delivery.status, "http_error")
        return attempts

    async def verify_url(self, url: str | None = None) -> tuple[bool, Delivery]:
        """Send the `url_verification` challenge; True when the answer carries it back."""
        challenge = random_text(48)
        payload = {"token": "simulated", "challenge": challenge, "type": "url_verification"}
        delivery = (await self.deliver(payload, url=url))[-1]
        answered = delivery.body.strip()
        with_json = False
        try:
            parsed = json.loads(answered)
            with_json = isinstance(parsed, dict) and parsed.get("challenge") == challenge
        except ValueError:
            pass
        ok = delivery.status == 200 and (
            with_json or answered in (challenge, f"challenge={challenge}")
        )
        return ok, delivery

    async def send_event(
        self,
        channel_id: str,
        *,
        action: str = "post",
        text: str = "",
        user: str | None = None,
        ts: str | None = None,
        duplicates: int = 0,
        timestamp: int | None = None,
    ) -> tuple[JsonObject, list[Delivery]]:
        """A member posts, edits or deletes a message; Slack tells the app through the event."""
        channel = self._channel(channel_id)
        now = self._ts()
        user_id = user or next(u.id for u in self.users.values() if not u.is_bot)
        if action == "post":
            message = {
                "type": "message",
                "text": text,
                "user": user_id,
                "ts": now,
                "team": self.team_id,
            }
            channel.messages.append(message)
            event: JsonObject = {**message, "channel": channel.id, "event_ts": now}
        elif action in ("edit", "delete"):
            index, previous = self._find(channel, ts or "")
            if action == "edit":
                edited = {**previous, "text": text, "edited": {"user": user_id, "ts": now}}
                channel.messages[index] = edited
                event = {
                    "type": "message",
                    "subtype": "message_changed",
                    "hidden": True,
                    "message": edited,
                    "previous_message": previous,
                }
            else:
                del channel.messages[index]
                event = {
                    "type": "message",
                    "subtype": "message_deleted",
                    "hidden": True,
                    "deleted_ts": previous["ts"],
                    "previous_message": previous,
                }
            event.update({"channel": channel.id, "ts": now, "event_ts": now})
        else:
            raise ControlError("action is post, edit or delete")
        event["channel_type"] = "group" if channel.is_private else "channel"
        envelope: JsonObject = {
            "token": "simulated",
            "team_id": self.team_id,
            "api_app_id": self.app_id,
            "event": event,
            "type": "event_callback",
            "event_id": slack_id("Ev"),
            "event_time": int(time.time()),
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": self.team_id,
                    "user_id": self.bot_user.id,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "authed_users": [self.bot_user.id],
            "event_context": f"EC{random_text(12, UPPER_DIGITS)}",
        }
        deliveries = await self.deliver(envelope, duplicates=duplicates, timestamp=timestamp)
        return envelope, deliveries

    # -- the edge -----------------------------------------------------------------------

    def middlewares(self) -> list[Any]:
        return [self._middleware]

    @web.middleware
    async def _middleware(self, request: web.Request, handler: RouteHandler) -> web.StreamResponse:
        if not request.path.startswith("/api/"):
            return await handler(request)
        failure = self.take_failure()
        if failure is not None:
            headers = {}
            if failure.retry_after is not None and failure.status in (429, 503):
                headers["Retry-After"] = f"{failure.retry_after:g}"
            code = "ratelimited" if failure.status == 429 else "fatal_error"
            return SlackError(code, failure.status, headers).response()
        try:
            return await handler(request)
        except SlackError as error:
            return error.response()

    def add_vendor_routes(self, app: web.Application) -> None:
        app.router.add_get("/oauth/v2/authorize", self._authorize_page)
        app.router.add_post("/oauth/v2/authorize", self._authorize_decision)
        app.router.add_route("*", "/api/{method}", self._api)

    @property
    def authorize_url(self) -> str:
        return f"{self.url}/oauth/v2/authorize"

    @property
    def token_url(self) -> str:
        return f"{self.url}/api/oauth.v2.access"

    @property
    def api_url(self) -> str:
        return f"{self.url}/api"

    # -- OAuth ----------------------------------------------------------------------------

    async def _authorize_page(self, request: web.Request) -> web.Response:
        query = request.query
        problem = self._authorize_problem(query.get("client_id"), query.get("redirect_uri"))
        if problem is None and not (query.get("scope") or query.get("user_scope")):
            problem = "invalid_scope: ask for a scope or a user_scope"
        if problem is not None:
            page = f"<!doctype html><title>Slack</title><h1>Cannot install</h1><p>{problem}</p>"
            return web.Response(text=page, content_type="text/html", status=400)
        hidden = "".join(
            f'<input type="hidden" name="{name}" value="{html.escape(query.get(name, ""))}">'
            for name in ("client_id", "redirect_uri", "state", "scope", "user_scope")
        )
        scopes = html.escape(", ".join(filter(None, [query.get("scope"), query.get("user_scope")])))
        page = (
            "<!doctype html><html><head><meta charset='utf-8'><title>Slack: allow access"
            "</title></head><body>"
            f"<h1>Hubgate Simulated App wants to access {html.escape(self.team_name)}</h1>"
            f"<p>It asks for: <span id='scopes'>{scopes}</span></p>"
            f"<form method='post' action='/oauth/v2/authorize'>{hidden}"
            "<button type='submit' name='decision' value='allow'>Allow</button> "
            "<button type='submit' name='decision' value='deny'>Cancel</button>"
            "</form></body></html>"
        )
        return web.Response(text=page, content_type="text/html")

    def _authorize_problem(self, client_id: str | None, redirect_uri: str | None) -> str | None:
        if client_id != self.client_id:
            return "invalid_client_id"
        if not redirect_uri or urlsplit(redirect_uri).scheme not in ("http", "https"):
            return "bad_redirect_uri: an http(s) redirect_uri is required"
        return None

    async def _authorize_decision(self, request: web.Request) -> web.Response:
        form = await request.post()
        values = {
            k: str(form.get(k, ""))
            for k in ("client_id", "redirect_uri", "state", "scope", "user_scope", "decision")
        }
        problem = self._authorize_problem(values["client_id"], values["redirect_uri"])
        if problem is not None:
            return web.Response(text=problem, status=400)
        if values["decision"] == "allow":
            code = f"{random_text(12, UPPER_DIGITS)}.{random_text(24)}"
            self.grants[code] = Grant(
                values["redirect_uri"],
                values["scope"],
                values["user_scope"],
                time.time() + CODE_LIFETIME,
            )
            answer = {"code": code, "state": values["state"]}
        else:
            answer = {"error": "access_denied", "state": values["state"]}
        separator = "&" if urlsplit(values["redirect_uri"]).query else "?"
        raise web.HTTPFound(values["redirect_uri"] + separator + urlencode(answer))

    async def _oauth_access(self, request: web.Request, params: dict[str, str]) -> JsonObject:
        client_id, client_secret = params.get("client_id"), params.get("client_secret")
        scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(encoded.strip(), validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                raise SlackError("invalid_client_id") from None
            client_id, _, client_secret = decoded.partition(":")
        if client_id != self.client_id:
            raise SlackError("invalid_client_id")
        if client_secret != self.client_secret:
            raise SlackError("bad_client_secret")
        grant_type = params.get("grant_type", "authorization_code")
        if grant_type == "refresh_token":
            old = self.refresh_tokens.pop(params.get("refresh_token", ""), None)
            if old is None:
                raise SlackError("invalid_refresh_token")
            access, refresh = self._new_tokens(old.kind, old.user_id, old.scope)
            return self._token_answer(old.kind, old.scope, access, refresh)
        if grant_type != "authorization_code":
            raise SlackError("invalid_grant_type")
        grant = self.grants.pop(params.get("code", ""), None)
        if grant is None or grant.expires_at < time.time():
            raise SlackError("invalid_code")
        if params.get("redirect_uri", grant.redirect_uri) != grant.redirect_uri:
            raise SlackError("bad_redirect_uri")
        answer = self._token_answer(
            "bot", grant.scope, *self._new_tokens("bot", self.bot_user.id, grant.scope)
        )
        if grant.user_scope:
            installer = next(u.id for u in self.users.values() if not u.is_bot)
            access, refresh = self._new_tokens("user", installer, grant.user_scope)
            user_part: JsonObject = {
                "id": installer,
                "scope": grant.user_scope,
                "access_token": access,
                "token_type": "user",
            }
            if refresh is not None:
                user_part.update({"refresh_token": refresh, "expires_in": self._lifetime()})
            answer["authed_user"] = user_part
        else:
            answer["authed_user"] = {"id": next(u.id for u in self.users.values() if not u.is_bot)}
        return answer

    def _lifetime(self) -> int:
        return int(self.token_lifetime or 0)

    def _token_answer(self, kind: str, scope: str, access: str, refresh: str | None) -> JsonObject:
        answer: JsonObject = {
            "ok": True,
            "access_token": access,
            "token_type": kind,
            "scope": scope,
            "bot_user_id": self.bot_user.id,
            "app_id": self.app_id,
            "team": {"id": self.team_id, "name": self.team_name},
            "enterprise": None,
            "is_enterprise_install": False,
        }
        if refresh is not None:
            answer.update({"refresh_token": refresh, "expires_in": self._lifetime()})
        return answer

    # -- Web API --------------------------------------------------------------------------

    async def _params(self, request: web.Request) -> dict[str, str]:
        params = {k: str(v) for k, v in request.query.items()}
        if request.method != "POST" or not request.can_read_body:
            return params
        if request.content_type == "application/json":
            try:
                body = await request.json()
            except ValueError:
                raise SlackError("invalid_json") from None
            if not isinstance(body, dict):
                raise SlackError("json_not_object")
            params.update({k: v if isinstance(v, str) else json.dumps(v) for k, v in body.items()})
        else:
            form = await request.post()
            params.update({k: str(v) for k, v in form.items()})
        return params

    def _authenticate(self, request: web.Request, params: dict[str, str]) -> Token:
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        # A token in a form body is still allowed; in the query string it is not (§2).
        presented = value.strip() if scheme.lower() == "bearer" else ""
        if not presented and request.method == "POST" and "token" not in request.query:
            presented = params.get("token", "")
        if not presented:
            raise SlackError("not_authed")
        token = self.tokens.get(presented)
        if token is None:
            raise SlackError("invalid_auth")
        if token.expires_at is not None and token.expires_at <= time.time():
            raise SlackError("token_expired")
        return token

    def _methods(self) -> dict[str, Method]:
        return {
            "auth.test": self._auth_test,
            "chat.postMessage": self._post_message,
            "chat.update": self._update_message,
            "chat.delete": self._delete_message,
            "conversations.history": self._history,
            "conversations.list": self._list_channels,
            "users.list": self._list_users,
        }

    async def _api(self, request: web.Request) -> web.Response:
        name = request.match_info["method"]
        if request.method not in ("GET", "POST"):
            raise SlackError("method_not_allowed", 405)
        params = await self._params(request)
        if name == "oauth.v2.access":
            return web.json_response(await self._oauth_access(request, params))
        method = self._methods().get(name)
        if method is None:
            raise SlackError("unknown_method", 404)
        token = self._authenticate(request, params)
        return web.json_response(await method(token, params))

    async def _auth_test(self, token: Token, params: dict[str, str]) -> JsonObject:
        user = self.users[token.user_id]
        answer: JsonObject = {
            "ok": True,
            "url": "https://hubgate-sim.slack.invalid/",
            "team": self.team_name,
            "user": user.name,
            "team_id": self.team_id,
            "user_id": user.id,
            "is_enterprise_install": False,
        }
        if token.kind == "bot":
            answer["bot_id"] = self.bot_id
        return answer

    def _channel(self, channel_id: str) -> Channel:
        channel = self.channels.get(channel_id) or next(
            (c for c in self.channels.values() if f"#{c.name}" == channel_id), None
        )
        if channel is None:
            raise SlackError("channel_not_found")
        return channel

    @staticmethod
    def _find(channel: Channel, ts: str) -> tuple[int, JsonObject]:
        for index, message in enumerate(channel.messages):
            if message["ts"] == ts:
                return index, message
        raise SlackError("message_not_found")

    def _own(self, token: Token, message: JsonObject, refusal: str) -> None:
        if message.get("user") != token.user_id:
            raise SlackError(refusal)

    @staticmethod
    def _content(params: dict[str, str]) -> JsonObject:
        content: JsonObject = {"text": params.get("text", "")}
        for name in ("blocks", "attachments"):
            if name in params:
                try:
                    content[name] = json.loads(params[name])
                except ValueError:
                    raise SlackError(f"invalid_{name}") from None
        return content

    async def _post_message(self, token: Token, params: dict[str, str]) -> JsonObject:
        channel = self._channel(params.get("channel", ""))
        if channel.is_archived:
            raise SlackError("is_archived")
        content = self._content(params)
        if not content["text"] and not content.get("blocks") and not content.get("attachments"):
            raise SlackError("no_text")
        if len(content["text"]) > 40_000:
            raise SlackError("msg_too_long")
        message: JsonObject = {
            "type": "message",
            **content,
            "user": token.user_id,
            "ts": self._ts(),
            "team": self.team_id,
        }
        if token.kind == "bot":
            message["bot_id"] = self.bot_id
        if params.get("thread_ts"):
            message["thread_ts"] = params["thread_ts"]
        channel.messages.append(message)
        return {"ok": True, "channel": channel.id, "ts": message["ts"], "message": dict(message)}

    async def _update_message(self, token: Token, params: dict[str, str]) -> JsonObject:
        channel = self._channel(params.get("channel", ""))
        index, message = self._find(channel, params.get("ts", ""))
        self._own(token, message, "cant_update_message")
        content = self._content(params)
        if not content["text"] and not content.get("blocks") and not content.get("attachments"):
            raise SlackError("no_text")
        updated = {**message, **content, "edited": {"user": token.user_id, "ts": self._ts()}}
        channel.messages[index] = updated
        shown = {k: updated[k] for k in ("text", "blocks", "attachments") if k in updated}
        return {
            "ok": True,
            "channel": channel.id,
            "ts": message["ts"],
            "text": updated["text"],
            "message": shown,
        }

    async def _delete_message(self, token: Token, params: dict[str, str]) -> JsonObject:
        channel = self._channel(params.get("channel", ""))
        index, message = self._find(channel, params.get("ts", ""))
        self._own(token, message, "cant_delete_message")
        del channel.messages[index]
        return {"ok": True, "channel": channel.id, "ts": message["ts"]}

    async def _history(self, token: Token, params: dict[str, str]) -> JsonObject:
        channel = self._channel(params.get("channel", ""))
        limit = _limit(params, 100)
        inclusive = _flag(params.get("inclusive"))
        oldest, latest = params.get("oldest", "0"), params.get("latest")
        before = latest
        if params.get("cursor"):
            kind, _, value = _uncursor(params["cursor"]).partition(":")
            if kind != "before" or not value:
                raise SlackError("invalid_cursor")
            before, inclusive_latest = value, False
        else:
            inclusive_latest = inclusive

        def keep(message: JsonObject) -> bool:
            key = float(message["ts"])  # ordering only: ts strings are kept as they are
            low = key >= float(oldest) if inclusive else key > float(oldest)
            if before is None:
                return low
            high = key <= float(before) if inclusive_latest else key < float(before)
            return low and high

        try:
            chosen = [m for m in reversed(channel.messages) if keep(m)]
        except ValueError:
            raise SlackError("invalid_ts_latest") from None
        page, more = chosen[:limit], len(chosen) > limit
        next_cursor = _cursor(f"before:{page[-1]['ts']}") if more else ""
        return {
            "ok": True,
            "messages": [dict(m) for m in page],
            "has_more": more,
            "pin_count": 0,
            "response_metadata": {"next_cursor": next_cursor},
        }

    @staticmethod
    def _page(
        items: list[Any], params: dict[str, str], key: Callable[[Any], str]
    ) -> tuple[list[Any], str]:
        limit = _limit(params, 100)
        if params.get("cursor"):
            kind, _, after = _uncursor(params["cursor"]).partition(":")
            if kind != "after":
                raise SlackError("invalid_cursor")
            items = [i for i in items if key(i) > after]
        page = items[:limit]
        more = len(items) > limit
        return page, _cursor(f"after:{key(page[-1])}") if more else ""

    async def _list_channels(self, token: Token, params: dict[str, str]) -> JsonObject:
        types = set(params.get("types", "public_channel").split(","))
        unknown = types - {"public_channel", "private_channel", "mpim", "im"}
        if unknown:
            raise SlackError("invalid_types")
        chosen = sorted(
            (
                c
                for c in self.channels.values()
                if ("private_channel" if c.is_private else "public_channel") in types
                and not (c.is_archived and _flag(params.get("exclude_archived")))
            ),
            key=lambda c: c.id,
        )
        page, next_cursor = self._page(chosen, params, lambda c: c.id)
        return {
            "ok": True,
            "channels": [c.json(self.bot_user.id) for c in page],
            "response_metadata": {"next_cursor": next_cursor},
        }

    async def _list_users(self, token: Token, params: dict[str, str]) -> JsonObject:
        chosen = sorted(self.users.values(), key=lambda u: u.id)
        page, next_cursor = self._page(chosen, params, lambda u: u.id)
        return {
            "ok": True,
            "members": [u.json(self.team_id) for u in page],
            "cache_ts": int(time.time()),
            "response_metadata": {"next_cursor": next_cursor},
        }

    # -- /_sim/ controls ----------------------------------------------------------------

    def controls(self) -> list[Control]:
        return [
            ("GET", "/_sim/health", self._health, "Liveness, the app's credentials and URLs."),
            ("PUT", "/_sim/request-url", self._set_request_url, 'The Events API URL: {"url"}.'),
            (
                "POST",
                "/_sim/url-verification",
                self._url_verification,
                'Send the url_verification challenge to the Request URL (or {"url"}).',
            ),
            (
                "POST",
                "/_sim/events",
                self._event,
                'A member acts and the app hears of it: {"channel", "action"?: "post"|"edit"|'
                '"delete", "text"?, "ts"? (edit, delete), "user"?, "duplicates"?, "timestamp"?}.',
            ),
            ("POST", "/_sim/tokens", self._issue, 'A bot token without the browser: {"scope"?}.'),
            (
                "POST",
                "/_sim/tokens/expire",
                self._expire,
                'Expire an access token now: {"token"}.',
            ),
            (
                "PUT",
                "/_sim/token-lifetime",
                self._set_lifetime,
                'Seconds new access tokens live: {"seconds": n|null (rotation off)}.',
            ),
            ("GET", "/_sim/deliveries", self._deliveries, "The Events API POSTs and answers."),
            ("POST", "/_sim/channels", self._add_channel, 'A channel: {"name", "private"?}.'),
            ("POST", "/_sim/users", self._add_user, 'A member: {"name", "realName"?}.'),
        ]

    def credentials(self) -> JsonObject:
        return {
            "clientId": self.client_id,
            "clientSecret": self.client_secret,
            "signingSecret": self.signing_secret,
            "authorizationUrl": self.authorize_url,
            "tokenUrl": self.token_url,
            "baseUrl": self.api_url,
            "teamId": self.team_id,
            "requestUrl": self.request_url,
        }

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", **self.credentials()})

    async def _set_request_url(self, request: web.Request) -> web.Response:
        url = (await control_payload(request)).get("url")
        if url is not None and not isinstance(url, str):
            raise ControlError("url is a string or null")
        self.request_url = url
        return web.json_response({"url": url})

    async def _url_verification(self, request: web.Request) -> web.Response:
        url = (await control_payload(request)).get("url")
        verified, delivery = await self.verify_url(url if isinstance(url, str) else None)
        return web.json_response({"verified": verified, "delivery": delivery.as_json()})

    async def _event(self, request: web.Request) -> web.Response:
        payload = await control_payload(request)
        timestamp = payload.get("timestamp")
        if timestamp is not None and not isinstance(timestamp, int):
            raise ControlError("timestamp is UNIX seconds")
        try:
            envelope, deliveries = await self.send_event(
                str(payload.get("channel", "")),
                action=str(payload.get("action", "post")),
                text=str(payload.get("text", "")),
                user=payload.get("user"),
                ts=payload.get("ts"),
                duplicates=int(payload.get("duplicates", 0)),
                timestamp=timestamp,
            )
        except SlackError as error:
            raise ControlError(error.code, 404) from None
        return web.json_response(
            {"envelope": envelope, "deliveries": [d.as_json() for d in deliveries]}
        )

    async def _issue(self, request: web.Request) -> web.Response:
        scope = (await control_payload(request)).get("scope")
        token = self.issue_token(*([scope] if isinstance(scope, str) else []))
        return web.json_response({"token": token}, status=201)

    async def _expire(self, request: web.Request) -> web.Response:
        token = str((await control_payload(request)).get("token", ""))
        self.expire_token(token)
        return web.json_response({"expired": True})

    async def _set_lifetime(self, request: web.Request) -> web.Response:
        seconds = (await control_payload(request)).get("seconds")
        if seconds is not None and (not isinstance(seconds, int | float) or seconds <= 0):
            raise ControlError("seconds is a positive number or null")
        self.token_lifetime = None if seconds is None else float(seconds)
        return web.json_response({"seconds": self.token_lifetime})

    async def _deliveries(self, request: web.Request) -> web.Response:
        return web.json_response({"deliveries": [d.as_json() for d in self.deliveries]})

    async def _add_channel(self, request: web.Request) -> web.Response:
        payload = await control_payload(request)
        if not isinstance(payload.get("name"), str):
            raise ControlError("name is required")
        channel_id = self.add_channel(payload["name"], private=bool(payload.get("private")))
        return web.json_response(self.channels[channel_id].json(self.bot_user.id), status=201)

    async def _add_user(self, request: web.Request) -> web.Response:
        payload = await control_payload(request)
        if not isinstance(payload.get("name"), str):
            raise ControlError("name is required")
        user_id = self.add_user(payload["name"], str(payload.get("realName", "")))
        return web.json_response(self.users[user_id].json(self.team_id), status=201)


def describe(sim: SlackSimulator) -> str:
    """The banner `main` prints: the app's credentials and the URLs to use as overrides."""
    return "\n".join(
        [
            f"Slack simulator listening on {sim.url}",
            "",
            f"export SLACK_CLIENT_ID={sim.client_id}",
            f"export SLACK_CLIENT_SECRET={sim.client_secret}",
            f"export SLACK_SIGNING_SECRET={sim.signing_secret}",
            f"export SLACK_AUTHORIZATION_URL={sim.authorize_url}",
            f"export SLACK_TOKEN_URL={sim.token_url}",
            f"export SLACK_BASE_URL={sim.api_url}",
            "",
            "Instance configuration (slack): oauth.api.key, oauth.api.secret,",
            "slack.signing.secret, and the overrides oauth.authorization.url, oauth.token.url",
            "and base.url from the lines above. Set the Events API URL: PUT /_sim/request-url.",
            "Hubgate calls loopback vendors only when allowed: HUBGATE_EGRESS_ALLOW=127.0.0.0/8",
            f"Test controls under {sim.url}/_sim/ ; Ctrl-C stops the simulator.",
        ]
    )


def main(
    host: str = "127.0.0.1",
    port: int = 8092,
    token_lifetime: float | None = None,
    request_url: str | None = None,
) -> None:
    """Run the simulator in the foreground until Ctrl-C (tokens live 12 h unless told)."""
    sim = SlackSimulator(
        token_lifetime=token_lifetime or DEFAULT_TOKEN_LIFETIME, request_url=request_url
    )
    run_forever(sim, host, port, lambda: describe(sim))
