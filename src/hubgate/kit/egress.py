"""The one guarded outbound HTTP client (D32): vendors and callbacks go through here.

Where the check happens matters. Checking a URL's host name and then letting the HTTP library
resolve it again is open to DNS rebinding (public answer for the check, private answer for the
connect). So the check lives inside the connector's resolver: aiohttp connects only to the
addresses our resolver returns, and our resolver returns only addresses the policy allows. The
DNS cache of the connector is off, so each new connection resolves once and connects to exactly
what was checked. IP literals never reach a resolver in aiohttp, so they are checked before the
request, together with the scheme and the numeric host spellings (``2130706433``, ``0x7f.1``)
that C resolvers quietly turn into addresses.

Redirects are never followed (a 3xx comes back as is: a redirect could point anywhere), the
response size and the time spent are capped, no proxy from the environment is used (it would
bypass the address check) and no cookies are kept (one session serves every tenant).
"""

from __future__ import annotations

import ipaddress
import json as _json
import re
import socket
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final, TypeAlias
from urllib.parse import urlencode

import aiohttp
from aiohttp import hdrs
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.helpers import sentinel
from yarl import URL

__all__ = [
    "EgressClient",
    "EgressDenied",
    "EgressError",
    "EgressPolicy",
    "EgressRequest",
    "EgressResponse",
    "EgressTimeout",
    "EgressTimeouts",
    "EgressTooLarge",
    "EgressUnreachable",
    "GuardedResolver",
    "Transport",
]

IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
Params: TypeAlias = Mapping[str, str] | Sequence[tuple[str, str]]
Data: TypeAlias = bytes | str | Sequence[tuple[str, str]]

DEFAULT_MAX_RESPONSE_BYTES: Final = 10 * 1024 * 1024


# --- errors -------------------------------------------------------------------------------------


class EgressError(Exception):
    """Base of every egress failure. Messages name method, host and path, never a query
    string, credentials or headers (they may carry secrets), and the aiohttp exception is not
    chained for the same reason (its text can hold the full URL)."""


class EgressDenied(EgressError):  # noqa: N818 - the names are the contract
    """The policy refused the destination (address, scheme or host spelling)."""


class EgressTimeout(EgressError):  # noqa: N818 - the names are the contract
    """Connecting or reading took longer than allowed."""


class EgressUnreachable(EgressError):  # noqa: N818 - the names are the contract
    """DNS failure, connection refused or reset, TLS failure, truncated response."""


class EgressTooLarge(EgressError):  # noqa: N818 - the names are the contract
    """The response body is larger than the client's cap."""


# --- policy -------------------------------------------------------------------------------------


def _networks(*cidrs: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(c) for c in cidrs)


# Spelled out rather than trusting ``ipaddress.is_global`` alone: its tables differ between
# Python patch releases (3.11.7 calls 224.0.0.1, fec0::1 and 64:ff9b::7f00:1 global).
_DENIED_V4: Final = _networks(
    "0.0.0.0/8",  # "this network"; Linux connects 0.0.0.0 to the local host
    "10.0.0.0/8",
    "100.64.0.0/10",  # shared address space (carrier-grade NAT)
    "127.0.0.0/8",
    "169.254.0.0/16",  # link-local, home of cloud metadata services (169.254.169.254)
    "172.16.0.0/12",
    "192.0.0.0/24",  # IETF protocol assignments
    "192.0.2.0/24",
    "192.88.99.0/24",  # 6to4 relay anycast
    "192.168.0.0/16",
    "198.18.0.0/15",  # benchmarking
    "198.51.100.0/24",
    "203.0.113.0/24",
    "224.0.0.0/4",  # multicast
    "240.0.0.0/4",  # reserved, includes 255.255.255.255
)
# Only 2000::/3 is global unicast today; inside it, these are not public destinations.
_GLOBAL_UNICAST_V6: Final = ipaddress.IPv6Network("2000::/3")
_DENIED_V6: Final = _networks(
    "2001::/23",  # IETF protocol assignments, Teredo (2001::/32) among them
    "2001:db8::/32",  # documentation
    "2002::/16",  # 6to4: embeds an IPv4 address a relay would connect to
    "3fff::/20",  # documentation
)

# What inet_aton() accepts besides a canonical dotted quad: one to four parts, each decimal,
# octal (leading 0) or hex (0x). getaddrinfo() treats such a "name" as an address.
_NUMERIC_HOST: Final = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)(?:\.(?:0x[0-9a-f]*|[0-9]+)){0,3}", re.I)
_HOST_NAME: Final = re.compile(
    r"(?=.{1,253}$)[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
    r"(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*"
)
_VERDICT_CACHE_SIZE: Final = 4096
_TARGET_CACHE_SIZE: Final = 1024


def _normalize_host_name(host: str) -> str:
    return host.rstrip(".").lower()


class EgressPolicy:
    """Which destinations outbound requests may reach.

    Public (globally routable) addresses are allowed. Everything else - private, loopback,
    link-local, unspecified, multicast, reserved, shared, documentation, IPv6 site-local and
    unique-local, and IPv6 forms that embed an IPv4 address - is refused unless an ``allow``
    CIDR contains it. An ``allow`` host name opens that name whatever it resolves to.
    """

    __slots__ = ("_allow_v4", "_allow_v6", "_hosts", "_verdicts")

    def __init__(self, allow: Sequence[str] = ()) -> None:
        v4: list[ipaddress.IPv4Network] = []
        v6: list[ipaddress.IPv6Network] = []
        hosts: set[str] = set()
        for raw in allow:
            entry = raw.strip()
            if not entry:
                continue
            try:
                net = ipaddress.ip_network(entry, strict=False)
            except ValueError:
                net = None
            if net is None:
                name = _normalize_host_name(entry)
                if _NUMERIC_HOST.fullmatch(name) or not _HOST_NAME.fullmatch(name):
                    # Includes "*": wildcards are not supported, and silently treating one as
                    # a literal name would leave an operator believing everything is open.
                    raise ValueError(f"egress allow entry {entry!r} is not a CIDR or host name")
                hosts.add(name)
                continue
            if isinstance(net, ipaddress.IPv4Network):
                v4.append(net)
            else:
                v6.append(net)
        self._allow_v4: tuple[ipaddress.IPv4Network, ...] = tuple(v4)
        self._allow_v6: tuple[ipaddress.IPv6Network, ...] = tuple(v6)
        self._hosts: frozenset[str] = frozenset(hosts)
        # Literal-host verdicts by raw host; the policy is immutable so they never go stale.
        self._verdicts: dict[str, str | None] = {}

    @classmethod
    def from_string(cls, value: str | None) -> EgressPolicy:
        """Parse ``HUBGATE_EGRESS_ALLOW``: comma-separated CIDRs and host names."""
        return cls((value or "").split(","))

    @property
    def allowed_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        return (*self._allow_v4, *self._allow_v6)

    @property
    def allowed_hosts(self) -> frozenset[str]:
        return self._hosts

    def __repr__(self) -> str:
        opened = [str(n) for n in self.allowed_networks] + sorted(self._hosts)
        return f"EgressPolicy(allow={opened!r})"

    def is_allowed_host_name(self, host: str) -> bool:
        """True when ``host`` is opened by name (its addresses are then not checked)."""
        return bool(self._hosts) and _normalize_host_name(host) in self._hosts

    def is_allowed_address(self, ip: IPAddress) -> bool:
        if isinstance(ip, ipaddress.IPv4Address):
            if any(ip in net for net in self._allow_v4):
                return True
            return not any(ip in net for net in _DENIED_V4) and ip.is_global
        if any(ip in net for net in self._allow_v6):
            return True
        mapped = ip.ipv4_mapped
        if mapped is not None:
            # A dual-stack socket connecting to ::ffff:a.b.c.d talks IPv4 to a.b.c.d.
            return self.is_allowed_address(mapped)
        # Outside 2000::/3 lie ::, ::1, IPv4-compatible and translated forms, NAT64
        # (64:ff9b::/96, 64:ff9b:1::/48), discard, unique-local, link-local, site-local and
        # multicast: all refused here unless a CIDR above opened them.
        if ip not in _GLOBAL_UNICAST_V6:
            return False
        return not any(ip in net for net in _DENIED_V6) and ip.is_global

    def check_url(self, url: str | URL) -> URL:
        """Refuse what can be refused before connecting; return the parsed URL.

        Host names pass here: their addresses are checked at connect time by the resolver.
        Also usable to validate a configured ``base.url`` or callback URL up front.
        """
        try:
            parsed = url if isinstance(url, URL) else URL(url)
        except (ValueError, TypeError):
            raise EgressDenied("refused: malformed URL") from None
        if parsed.scheme not in ("http", "https"):
            raise EgressDenied(f"refused: scheme {parsed.scheme!r} is not allowed")
        host = parsed.raw_host
        if not host:
            raise EgressDenied("refused: URL has no host")
        try:
            reason = self._verdicts[host]
        except KeyError:
            reason = self._literal_host_verdict(host)
            if len(self._verdicts) >= _VERDICT_CACHE_SIZE:
                self._verdicts.clear()
            self._verdicts[host] = reason
        if reason is not None:
            raise EgressDenied(f"refused: {reason}: {_safe_target(parsed)}")
        return parsed

    def _literal_host_verdict(self, host: str) -> str | None:
        """Why a literal host is refused, or None when allowed or when it is a name."""
        # The same test aiohttp uses to skip DNS: whatever it treats as an address must be a
        # canonical one we can judge. ``ipaddress`` is strict (no leading zeros, no short forms,
        # ASCII digits only), so anything it rejects here is refused outright.
        if ":" in host or host.replace(".", "").isdigit():
            try:
                ip = ipaddress.ip_address(host)
            except ValueError:
                return "host is not a canonical IP address"
            return None if self.is_allowed_address(ip) else "address is not public"
        if _NUMERIC_HOST.fullmatch(host.rstrip(".")):
            return "host is a numeric address spelling"
        return None


# --- resolver -----------------------------------------------------------------------------------


class GuardedResolver(AbstractResolver):
    """Wraps a resolver and keeps only the addresses the policy allows.

    aiohttp connects to what this returns, so the address checked is the address connected.
    """

    def __init__(self, policy: EgressPolicy, inner: AbstractResolver | None = None) -> None:
        self._policy = policy
        # ThreadedResolver needs a running loop, so the default is made on first use.
        self._inner = inner

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if self._inner is None:
            self._inner = aiohttp.ThreadedResolver()
        results = await self._inner.resolve(host, port, family)
        if self._policy.is_allowed_host_name(host):
            return results
        allowed: list[ResolveResult] = []
        for result in results:
            try:
                ip = ipaddress.ip_address(result["host"])
            except ValueError:
                continue  # not an address we can judge: fail closed
            if self._policy.is_allowed_address(ip):
                allowed.append(result)
        if not allowed:
            raise EgressDenied(f"refused: {host} resolves to no public address")
        return allowed

    async def close(self) -> None:
        if self._inner is not None:
            await self._inner.close()


# --- client -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EgressTimeouts:
    """``connect``: seconds to establish a TCP (and TLS) connection. ``read``: the longest
    silence while waiting for or reading the response. ``total``: a cap on the whole request
    including waiting for a pooled connection; None means ``connect + read``, so a server that
    drips a byte just often enough still ends."""

    connect: float = 5.0
    read: float = 30.0
    total: float | None = None

    def client_timeout(self) -> aiohttp.ClientTimeout:
        total = self.total if self.total is not None else self.connect + self.read
        return aiohttp.ClientTimeout(total=total, sock_connect=self.connect, sock_read=self.read)


@dataclass(frozen=True, slots=True)
class EgressResponse:
    status: int
    headers: Mapping[str, str]  # case-insensitive (aiohttp's CIMultiDictProxy)
    body: bytes
    url: str
    elapsed_ms: float

    def json(self) -> Any:
        return _json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


@dataclass(frozen=True, slots=True)
class EgressRequest:
    """A request as it would leave: the policy-checked URL with its query, the headers, the
    encoded body. What a :data:`Transport` gets."""

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes | None


# The seam tests replace (httpx's transport, in spirit): given, the client sends nothing over
# the network and asks this instead; the policy check and the encoding stay the client's.
Transport: TypeAlias = Callable[[EgressRequest], Awaitable[EgressResponse]]


def _safe_target(url: URL) -> str:
    """scheme://host:port/path for messages: no user info, no query, no fragment."""
    host = url.raw_host or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{url.explicit_port}" if url.explicit_port is not None else ""
    return f"{url.scheme}://{host}{port}{url.raw_path}"


class EgressClient:
    """One aiohttp session behind the egress policy; start once, share, close at shutdown.

    ``resolver`` is the inner resolver (default: aiohttp's ThreadedResolver); whatever it
    answers still goes through the policy.
    """

    def __init__(
        self,
        policy: EgressPolicy,
        *,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        timeouts: EgressTimeouts = EgressTimeouts(5, 30),  # frozen: one shared default is safe
        resolver: AbstractResolver | None = None,
        limit: int = 100,
        transport: Transport | None = None,
    ) -> None:
        if max_response_bytes < 0:
            raise ValueError("max_response_bytes must be >= 0")
        self._policy = policy
        self._max = max_response_bytes
        self._timeouts = timeouts
        self._default_timeout = timeouts.client_timeout()
        self._timeout_cache: dict[EgressTimeouts, aiohttp.ClientTimeout] = {}
        self._resolver = GuardedResolver(policy, resolver)
        self._limit = limit
        self._session: aiohttp.ClientSession | None = None
        self._transport = transport
        # Checked targets with their query, by URL and parameters: a hub call sends the same
        # ones again and again, and parsing the URL, adding the query and printing the result
        # again cost yarl more than anything else of this client's own (bench/README.md,
        # session 21). The policy is immutable and the addresses are still checked at every
        # connect (the resolver), so a kept target is as safe as a fresh one.
        self._targets: dict[tuple[str, tuple[tuple[str, str], ...]], tuple[URL, str]] = {}

    @property
    def policy(self) -> EgressPolicy:
        return self._policy

    @property
    def timeouts(self) -> EgressTimeouts:
        return self._timeouts

    @property
    def max_response_bytes(self) -> int:
        return self._max

    async def start(self) -> None:
        if self._session is not None or self._transport is not None:
            return
        connector = aiohttp.TCPConnector(
            resolver=self._resolver,
            limit=self._limit,
            # Off: a cached answer would be reused for new connections, and the guarantee we
            # want is "each connection connects to what was just checked". Keep-alive makes
            # new connections (and so lookups) rare on the hot path anyway.
            use_dns_cache=False,
            keepalive_timeout=15,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=self._default_timeout,
            cookie_jar=aiohttp.DummyCookieJar(),  # one session, many tenants: keep nothing
            trust_env=False,  # HTTP(S)_PROXY would route around the address check
            raise_for_status=False,
        )

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()
        await self._resolver.close()

    async def __aenter__(self) -> EgressClient:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def request(
        self,
        method: str,
        url: str,
        *,
        params: Params | None = None,
        headers: Mapping[str, str] | None = None,
        data: Data | None = None,
        json: object = None,
        auth: tuple[str, str] | None = None,
        timeout: EgressTimeouts | None = None,  # noqa: ASYNC109 - a policy object, not a deadline
    ) -> EgressResponse:
        session = self._session
        if session is None and self._transport is None:
            raise RuntimeError("EgressClient is not started")
        target, target_text = self._target(url, params)
        if data is not None and not isinstance(data, bytes | str):
            # Encoded here: aiohttp's FormData checks field names as if they were headers and
            # raises on control characters, which a form body may carry percent-encoded.
            data = urlencode(list(data)).encode()
            headers = {**(headers or {}), "Content-Type": "application/x-www-form-urlencoded"}
        if auth is not None:
            # aiohttp deprecates BasicAuth objects; a ready header is also cheaper.
            basic = aiohttp.encode_basic_auth(auth[0], auth[1])
            headers = {**headers, "Authorization": basic} if headers else {"Authorization": basic}
        if self._transport is not None:
            return await self._through_transport(method, target, headers, data, json)
        assert session is not None
        started = time.perf_counter()
        try:
            async with session.request(
                method,
                target,
                headers=headers,
                data=data,
                json=json,
                # The session's own when not given: aiohttp then takes it as it is.
                timeout=sentinel if timeout is None else self._timeout_for(timeout),
                allow_redirects=False,
            ) as resp:
                body = await self._read_body(resp, method, target)
                return EgressResponse(
                    status=resp.status,
                    headers=resp.headers,
                    body=body,
                    url=target_text,  # redirects are not followed: the answer is the target's
                    elapsed_ms=(time.perf_counter() - started) * 1000.0,
                )
        except EgressError:
            raise
        # TimeoutError first: aiohttp's timeout errors are also connection errors and OSErrors.
        except TimeoutError:
            raise EgressTimeout(f"{method} {_safe_target(target)}: timed out") from None
        except aiohttp.ClientConnectorDNSError:
            raise EgressUnreachable(f"{method} {_safe_target(target)}: DNS lookup failed") from None
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc, aiohttp.ClientSSLError):
                reason = f"TLS: {type(exc.os_error).__name__}"
            else:
                reason = exc.os_error.strerror or type(exc.os_error).__name__
            raise EgressUnreachable(
                f"{method} {_safe_target(target)}: cannot connect ({reason})"
            ) from None
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
            raise EgressUnreachable(
                f"{method} {_safe_target(target)}: connection failed ({type(exc).__name__})"
            ) from None
        except aiohttp.InvalidURL:
            raise EgressDenied(f"refused: malformed URL: {_safe_target(target)}") from None
        except aiohttp.ClientError as exc:
            raise EgressError(
                f"{method} {_safe_target(target)}: request failed ({type(exc).__name__})"
            ) from None

    async def _through_transport(
        self,
        method: str,
        target: URL,
        headers: Mapping[str, str] | None,
        data: Data | None,
        json: object,
    ) -> EgressResponse:
        assert self._transport is not None
        sent = dict(headers or {})
        body: bytes | None
        if json is not None:
            body = _json.dumps(json).encode()
            sent.setdefault("Content-Type", "application/json")
        elif isinstance(data, str):
            body = data.encode()
        elif data is None or isinstance(data, bytes):
            body = data
        else:
            body = urlencode(list(data)).encode()
        response = await self._transport(EgressRequest(method, str(target), sent, body))
        if len(response.body) > self._max:
            raise EgressTooLarge(
                f"{method} {_safe_target(target)}: response exceeds the {self._max}-byte cap"
            )
        return response

    def _target(self, url: str, params: Params | None) -> tuple[URL, str]:
        """The checked URL with ``params`` added as aiohttp would add them, and its text."""
        pairs: tuple[tuple[str, str], ...] = ()
        if params:
            pairs = tuple(params.items() if isinstance(params, Mapping) else params)
        key = (url, pairs)
        found = self._targets.get(key)
        if found is None:
            target = self._policy.check_url(url)
            if pairs:
                target = target.extend_query(pairs)
            if len(self._targets) >= _TARGET_CACHE_SIZE:
                self._targets.clear()
            found = self._targets[key] = (target, str(target))
        return found

    def _timeout_for(self, timeouts: EgressTimeouts) -> aiohttp.ClientTimeout:
        cached = self._timeout_cache.get(timeouts)
        if cached is None:
            if len(self._timeout_cache) >= 64:
                self._timeout_cache.clear()
            cached = self._timeout_cache[timeouts] = timeouts.client_timeout()
        return cached

    async def _read_body(self, resp: aiohttp.ClientResponse, method: str, target: URL) -> bytes:
        if resp.method == hdrs.METH_HEAD:
            return b""  # a HEAD reply's Content-Length describes a body that never comes
        cap = self._max
        length = resp.content_length
        if length is not None:
            if length > cap:
                resp.close()  # do not drain megabytes we will not use; drop the connection
                raise EgressTooLarge(
                    f"{method} {_safe_target(target)}: response of {length} bytes exceeds "
                    f"the {cap}-byte cap"
                )
            # Without a content coding the parser stops at Content-Length, so one read is
            # safe. With gzip & co the declared length says nothing about the decoded size.
            if hdrs.CONTENT_ENCODING not in resp.headers:
                return await resp.read()
        chunks: list[bytes] = []
        size = 0
        stream = resp.content
        while chunk := await stream.readany():
            size += len(chunk)
            if size > cap:
                resp.close()
                raise EgressTooLarge(
                    f"{method} {_safe_target(target)}: response exceeds the {cap}-byte cap"
                )
            chunks.append(chunk)
        if len(chunks) == 1:
            return chunks[0]
        return b"".join(chunks)
