"""The guarded client against real HTTP servers on loopback.

Loopback is private, so every test that expects a request to get through opens it explicitly
in the policy; everything else proves the request never left (the server saw no hit).
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import ipaddress
import socket
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.typedefs import Handler

from hubgate.kit.egress import (
    EgressClient,
    EgressDenied,
    EgressError,
    EgressPolicy,
    EgressTimeout,
    EgressTimeouts,
    EgressTooLarge,
    EgressUnreachable,
    GuardedResolver,
)

LOOPBACK = EgressPolicy(["127.0.0.0/8"])
PUBLIC_IP = "93.184.216.34"


# --- test servers -------------------------------------------------------------------------


@dataclass
class Server:
    runner: web.AppRunner
    port: int
    hits: Counter[str] = field(default_factory=Counter)
    peers: set[tuple[str, int]] = field(default_factory=set)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"


async def _start_server(host: str = "127.0.0.1", port: int = 0, *, close: bool = False) -> Server:
    app = web.Application()
    server_box: list[Server] = []

    @web.middleware
    async def count(request: web.Request, handler: Handler) -> web.StreamResponse:
        srv = server_box[0]
        srv.hits[request.path] += 1
        peer = request.transport.get_extra_info("peername") if request.transport else None
        if peer:
            srv.peers.add((peer[0], peer[1]))
        response = await handler(request)
        if close:
            response.force_close()
        return response

    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="hello", headers={"X-Served-By": host})

    async def echo(request: web.Request) -> web.Response:
        return web.json_response(
            {
                "method": request.method,
                "query": sorted(request.query.items()),
                "authorization": request.headers.get("Authorization"),
                "cookie": request.headers.get("Cookie"),
                "x_custom": request.headers.get("X-Custom"),
                "content_type": request.content_type,
                "body": (await request.read()).decode(),
            }
        )

    async def redirect(request: web.Request) -> web.Response:
        target = request.query.get("to", "http://169.254.169.254/latest/meta-data/")
        return web.Response(status=302, headers={"Location": target})

    async def big(request: web.Request) -> web.Response:
        return web.Response(body=b"x" * int(request.query["n"]))

    async def stream(request: web.Request) -> web.StreamResponse:
        n = int(request.query["n"])
        resp = web.StreamResponse()
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        while n > 0:
            part = min(n, 700)
            await resp.write(b"y" * part)
            n -= part
        await resp.write_eof()
        return resp

    async def gzipped(request: web.Request) -> web.Response:
        body = gzip.compress(b"\0" * int(request.query["n"]))
        return web.Response(body=body, headers={"Content-Encoding": "gzip"})

    async def slow(request: web.Request) -> web.Response:
        srv = server_box[0]
        with contextlib.suppress(TimeoutError):  # released at teardown, at the latest 5 s
            await asyncio.wait_for(srv.release.wait(), timeout=5)
        return web.Response(text="late")

    async def set_cookie(request: web.Request) -> web.Response:
        resp = web.Response(text="cookie set")
        resp.set_cookie("session", "tenant-a-secret")
        return resp

    app.middlewares.append(count)
    app.router.add_get("/ok", ok)
    app.router.add_route("*", "/echo", echo)
    app.router.add_get("/redirect", redirect)
    app.router.add_get("/big", big)
    app.router.add_get("/stream", stream)
    app.router.add_get("/gzip", gzipped)
    app.router.add_get("/slow", slow)
    app.router.add_get("/set-cookie", set_cookie)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    srv = Server(runner=runner, port=runner.addresses[0][1])
    server_box.append(srv)
    return srv


async def _stop_server(srv: Server) -> None:
    srv.release.set()
    await srv.runner.cleanup()


@pytest_asyncio.fixture(scope="module")
async def server() -> AsyncIterator[Server]:
    srv = await _start_server()
    yield srv
    await _stop_server(srv)


@pytest.fixture
def hits(server: Server) -> Counter[str]:
    server.hits.clear()
    return server.hits


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


# --- a resolver that answers from a script ------------------------------------------------


class ScriptedResolver(AbstractResolver):
    """Answers each name with the next list from its script (the last one repeats)."""

    def __init__(self, script: dict[str, list[list[str]]]) -> None:
        self.script = {name: list(answers) for name, answers in script.items()}
        self.calls: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.calls.append(host)
        answers = self.script.get(host.rstrip(".").lower())
        if answers is None:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        ips = answers.pop(0) if len(answers) > 1 else answers[0]
        return [
            ResolveResult(
                hostname=host,
                host=ip,
                port=port,
                family=socket.AF_INET6 if ":" in ip else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for ip in ips
        ]

    async def close(self) -> None:
        pass


# --- policy: addresses ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "10.0.0.1",
        "172.16.0.1",
        "172.31.255.255",
        "192.168.1.1",
        "127.0.0.1",
        "127.255.255.254",
        "169.254.169.254",
        "0.0.0.0",  # noqa: S104 - an address under test, not a bind
        "0.1.2.3",
        "100.64.0.1",
        "100.127.255.255",
        "192.0.0.1",
        "192.0.2.1",
        "198.18.0.1",
        "198.51.100.7",
        "203.0.113.9",
        "224.0.0.1",
        "239.255.255.250",
        "240.0.0.1",
        "255.255.255.255",
        "::",
        "::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "::ffff:169.254.169.254",
        "::ffff:0.0.0.0",
        "::127.0.0.1",  # IPv4-compatible (deprecated)
        "::ffff:0:7f00:1",  # IPv4-translated
        "64:ff9b::7f00:1",  # NAT64 well-known prefix
        "64:ff9b::808:808",  # NAT64 to a public address: still a translator in the way
        "64:ff9b:1::a00:1",  # NAT64 local-use prefix
        "100::1",  # discard-only
        "2001::1",  # Teredo
        "2001:db8::1",
        "2002:7f00:1::1",  # 6to4 of 127.0.0.1
        "fc00::1",
        "fd12:3456::1",
        "fe80::1",
        "fe80::1%1",
        "fec0::1",  # site-local
        "ff02::1",
        "ff0e::1",
        "4000::1",  # not allocated
    ],
)
def test_private_and_special_addresses_refused_by_default(address: str) -> None:
    assert not EgressPolicy([]).is_allowed_address(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "address", ["8.8.8.8", "1.1.1.1", PUBLIC_IP, "2606:4700:4700::1111", "::ffff:8.8.8.8"]
)
def test_public_addresses_allowed(address: str) -> None:
    assert EgressPolicy([]).is_allowed_address(ipaddress.ip_address(address))


def test_allow_cidrs_open_exactly_what_they_name() -> None:
    policy = EgressPolicy.from_string("127.0.0.1/32, fd00::/8")
    allowed = policy.is_allowed_address
    assert allowed(ipaddress.ip_address("127.0.0.1"))
    assert allowed(ipaddress.ip_address("::ffff:127.0.0.1"))  # the same IPv4 destination
    assert not allowed(ipaddress.ip_address("127.0.0.2"))
    assert allowed(ipaddress.ip_address("fd00::1"))
    assert not allowed(ipaddress.ip_address("fc00::1"))
    assert not allowed(ipaddress.ip_address("::1"))
    assert not allowed(ipaddress.ip_address("10.0.0.1"))


def test_from_string_parsing() -> None:
    policy = EgressPolicy.from_string(" 10.0.0.0/8 , Twilio.TEST. ,, ::1/128,192.168.1.5 ")
    assert [str(n) for n in policy.allowed_networks] == [
        "10.0.0.0/8",
        "192.168.1.5/32",
        "::1/128",
    ]
    assert policy.allowed_hosts == frozenset({"twilio.test"})
    assert policy.is_allowed_host_name("TWILIO.test.")
    assert not policy.is_allowed_host_name("api.twilio.test")
    assert EgressPolicy.from_string("").allowed_networks == ()
    assert EgressPolicy.from_string(None).allowed_hosts == frozenset()


@pytest.mark.parametrize(
    "entry", ["*", "*.twilio.test", "http://twilio.test", "10.0.0.0/33", "0177.0.0.1", "a b"]
)
def test_from_string_refuses_what_it_cannot_mean(entry: str) -> None:
    with pytest.raises(ValueError, match="not a CIDR or host name"):
        EgressPolicy.from_string(f"127.0.0.1/32,{entry}")


# --- the client: loopback, literals, schemes --------------------------------------------------


async def test_loopback_refused_by_default(server: Server, hits: Counter[str]) -> None:
    async with EgressClient(EgressPolicy([])) as client:
        with pytest.raises(EgressDenied, match="not public"):
            await client.request("GET", server.url("/ok"))
    assert hits["/ok"] == 0


async def test_localhost_name_refused_by_default_with_the_real_resolver(
    server: Server, hits: Counter[str]
) -> None:
    async with EgressClient(EgressPolicy([])) as client:
        with pytest.raises(EgressDenied, match="no public address"):
            await client.request("GET", server.url("/ok", host="localhost"))
    assert hits["/ok"] == 0


async def test_loopback_allowed_when_policy_allows(server: Server, hits: Counter[str]) -> None:
    async with EgressClient(LOOPBACK) as client:
        resp = await client.request("GET", server.url("/ok"))
        by_name = await client.request("GET", server.url("/ok", host="localhost"))
    assert resp.status == 200
    assert resp.body == b"hello"
    assert resp.headers["x-served-by"] == "127.0.0.1"  # case-insensitive lookup
    assert resp.url == server.url("/ok")
    assert resp.elapsed_ms > 0
    assert by_name.status == 200
    assert hits["/ok"] == 2


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:127.0.0.1]:{port}/ok",
        "http://[::ffff:a9fe:a9fe]/latest/meta-data/",
        "http://0.0.0.0:{port}/ok",
        "http://[::]:{port}/ok",
        "http://[::1]:{port}/ok",
        "http://[fe80::1%25lo]:{port}/ok",
        "http://[64:ff9b::7f00:1]:{port}/ok",
        "http://10.0.0.1/",
        "http://2130706433:{port}/ok",
        "http://0177.0.0.1:{port}/ok",
        "http://0x7f.0.0.1:{port}/ok",
        "http://0x7f.1:{port}/ok",
        "http://0x7f000001:{port}/ok",
        "http://127.1:{port}/ok",
        "http://127.0.0.1.:{port}/ok",
        "http://017700000001:{port}/ok",
        "https://2852039166/latest/meta-data/",  # 169.254.169.254
    ],
)
async def test_literal_and_numeric_hosts_refused(
    server: Server, hits: Counter[str], url: str
) -> None:
    resolver = ScriptedResolver({})
    async with EgressClient(EgressPolicy([]), resolver=resolver) as client:
        with pytest.raises(EgressDenied):
            await client.request("GET", url.format(port=server.port))
    assert resolver.calls == []
    assert sum(hits.values()) == 0


@pytest.mark.parametrize(
    "url",
    [
        "http://2130706433:{port}/ok",
        "http://0177.0.0.1:{port}/ok",
        "http://0x7f.0.0.1:{port}/ok",
        "http://127.1:{port}/ok",
        "http://0.0.0.0:{port}/ok",
    ],
)
async def test_numeric_spellings_refused_even_when_loopback_is_open(
    server: Server, hits: Counter[str], url: str
) -> None:
    # Only the canonical spelling of an allowed address gets through.
    resolver = ScriptedResolver({})
    async with EgressClient(LOOPBACK, resolver=resolver) as client:
        with pytest.raises(EgressDenied):
            await client.request("GET", url.format(port=server.port))
        assert (await client.request("GET", server.url("/ok"))).status == 200
    assert resolver.calls == []
    assert hits["/ok"] == 1


@pytest.mark.parametrize(
    "url",
    [
        "ftp://127.0.0.1/file",
        "file:///etc/passwd",
        "ws://127.0.0.1/socket",
        "gopher://127.0.0.1:70/",
        "/relative/path",
        "127.0.0.1:8080/ok",
        "http:///no-host",
        "http://[::1/",
    ],
)
async def test_non_http_schemes_and_malformed_urls_refused(url: str) -> None:
    async with EgressClient(LOOPBACK) as client:
        with pytest.raises(EgressDenied):
            await client.request("GET", url)


# --- DNS: checked at connect time -----------------------------------------------------------


async def test_dns_rebinding_private_answer_is_refused_at_connect_time() -> None:
    # 127.0.0.2 plays the public vendor (the only address the policy opens); 127.0.0.1 plays
    # the internal service the attacker wants, on the same port.
    internal = await _start_server("127.0.0.1")
    vendor = await _start_server("127.0.0.2", internal.port, close=True)
    try:
        resolver = ScriptedResolver({"rebind.test": [["127.0.0.2"], ["127.0.0.1"]]})
        policy = EgressPolicy(["127.0.0.2/32"])
        url = f"http://rebind.test:{internal.port}/ok"
        async with EgressClient(policy, resolver=resolver) as client:
            first = await client.request("GET", url)
            assert first.status == 200
            assert first.headers["X-Served-By"] == "127.0.0.2"
            with pytest.raises(EgressDenied, match="no public address"):
                await client.request("GET", url)
        # One lookup per connection, and it is the one the connection used.
        assert resolver.calls == ["rebind.test", "rebind.test"]
        assert vendor.hits["/ok"] == 1
        assert sum(internal.hits.values()) == 0
    finally:
        await _stop_server(vendor)
        await _stop_server(internal)


async def test_resolver_returns_only_checked_addresses() -> None:
    inner = ScriptedResolver(
        {
            "rebind.test": [[PUBLIC_IP], ["127.0.0.1"]],
            "mixed.test": [["10.0.0.1", PUBLIC_IP, "127.0.0.1", "::1", "2606:4700::1"]],
            "weird.test": [["not-an-address", "127.0.0.1"]],
        }
    )
    guard = GuardedResolver(EgressPolicy([]), inner)
    # A check that resolved first would see the public answer...
    assert [r["host"] for r in await guard.resolve("rebind.test", 443)] == [PUBLIC_IP]
    # ...but what a connection gets is its own lookup, filtered.
    with pytest.raises(EgressDenied):
        await guard.resolve("rebind.test", 443)
    mixed = await guard.resolve("mixed.test", 443, socket.AF_UNSPEC)
    assert [r["host"] for r in mixed] == [PUBLIC_IP, "2606:4700::1"]
    assert all(r["port"] == 443 for r in mixed)
    with pytest.raises(EgressDenied):
        await guard.resolve("weird.test", 443)
    await guard.close()


async def test_mixed_answer_connects_only_to_the_allowed_address(server: Server) -> None:
    resolver = ScriptedResolver({"mixed.test": [["169.254.169.254", "10.1.2.3", "127.0.0.1"]]})
    async with EgressClient(LOOPBACK, resolver=resolver) as client:
        resp = await client.request("GET", f"http://mixed.test:{server.port}/ok")
    assert resp.status == 200


async def test_allow_by_host_name(server: Server, hits: Counter[str]) -> None:
    resolver = ScriptedResolver(
        {
            "twilio.test": [["127.0.0.1"]],
            "other.test": [["127.0.0.1"]],
            "api.twilio.test": [["127.0.0.1"]],
        }
    )
    policy = EgressPolicy.from_string("twilio.test")
    async with EgressClient(policy, resolver=resolver) as client:
        resp = await client.request("GET", f"http://twilio.test:{server.port}/ok")
        assert resp.status == 200
        resp = await client.request("GET", f"http://TWILIO.test.:{server.port}/ok")
        assert resp.status == 200
        for name in ("other.test", "api.twilio.test"):
            with pytest.raises(EgressDenied):
                await client.request("GET", f"http://{name}:{server.port}/ok")
        # The name opens the name, not its address.
        with pytest.raises(EgressDenied):
            await client.request("GET", server.url("/ok"))
    assert hits["/ok"] == 2


async def test_dns_failure_is_unreachable() -> None:
    async with EgressClient(EgressPolicy([]), resolver=ScriptedResolver({})) as client:
        with pytest.raises(EgressUnreachable, match="DNS"):
            await client.request("GET", "https://nx.test/path?token=secret")


# --- HUBGATE_EGRESS_ALLOW end to end ----------------------------------------------------------


async def test_allow_string_opens_exactly_what_it_names(server: Server, hits: Counter[str]) -> None:
    async with EgressClient(EgressPolicy.from_string("127.0.0.1/32")) as client:
        assert (await client.request("GET", server.url("/ok"))).status == 200
        with pytest.raises(EgressDenied):
            await client.request("GET", server.url("/ok", host="127.0.0.2"))
        with pytest.raises(EgressDenied):
            await client.request("GET", server.url("/ok", host="[::1]"))
    assert hits["/ok"] == 1


# --- redirects, size, time --------------------------------------------------------------------


@pytest.mark.parametrize("to", ["http://169.254.169.254/latest/meta-data/", "/ok"])
async def test_redirect_is_returned_not_followed(
    server: Server, hits: Counter[str], to: str
) -> None:
    async with EgressClient(LOOPBACK) as client:
        resp = await client.request("GET", server.url("/redirect"), params={"to": to})
    assert resp.status == 302
    assert resp.headers["Location"] == to
    assert hits["/redirect"] == 1
    assert hits["/ok"] == 0


async def test_size_cap(server: Server) -> None:
    async with EgressClient(LOOPBACK, max_response_bytes=1000) as client:
        # declared length
        assert len((await client.request("GET", server.url("/big?n=1000"))).body) == 1000
        with pytest.raises(EgressTooLarge, match="1001 bytes"):
            await client.request("GET", server.url("/big?n=1001"))
        # chunked, no length up front
        assert (await client.request("GET", server.url("/stream?n=1000"))).body == b"y" * 1000
        with pytest.raises(EgressTooLarge):
            await client.request("GET", server.url("/stream?n=5000"))
        # compressed: small on the wire, large once decoded
        assert (await client.request("GET", server.url("/gzip?n=900"))).body == b"\0" * 900
        with pytest.raises(EgressTooLarge):
            await client.request("GET", server.url("/gzip?n=200000"))
        # the client is still healthy afterwards
        assert (await client.request("GET", server.url("/ok"))).body == b"hello"


async def test_read_timeout(server: Server) -> None:
    # /slow answers only when released (at teardown, or after 5 s): an EgressTimeout at all
    # means the read timeout cut it short; how fast is not this test's business.
    timeouts = EgressTimeouts(connect=1, read=0.2)
    async with EgressClient(LOOPBACK, timeouts=timeouts) as client:
        with pytest.raises(EgressTimeout, match="timed out"):
            await client.request("GET", server.url("/slow?token=secret"))
    async with EgressClient(LOOPBACK) as client:  # per-request override
        with pytest.raises(EgressTimeout) as info:
            await client.request("GET", server.url("/slow?token=secret"), timeout=timeouts)
    assert "secret" not in str(info.value)
    assert "/slow" in str(info.value)


async def test_connection_refused_is_unreachable() -> None:
    port = _free_port()
    async with EgressClient(LOOPBACK) as client:
        with pytest.raises(EgressUnreachable, match="cannot connect") as info:
            await client.request(
                "POST", f"http://127.0.0.1:{port}/x?api_key=secret", auth=("AC1", "pw-secret")
            )
    message = str(info.value)
    assert "secret" not in message
    assert f"127.0.0.1:{port}/x" in message
    assert info.value.__cause__ is None


# --- requests and responses -------------------------------------------------------------------


async def test_request_options_reach_the_server(server: Server) -> None:
    async with EgressClient(LOOPBACK) as client:
        form = await client.request(
            "POST",
            server.url("/echo"),
            params=[("PageSize", "2"), ("To", "+15005550006")],
            headers={"X-Custom": "1"},
            data=[("Body", "hi there"), ("From", "+15005550001")],
            auth=("ACabc", "token"),
        )
        as_json = await client.request("PUT", server.url("/echo"), json={"a": [1, 2]})
        raw = await client.request("PATCH", server.url("/echo"), data=b"\x00raw")
    seen = form.json()
    assert seen["method"] == "POST"
    assert seen["query"] == [["PageSize", "2"], ["To", "+15005550006"]]
    assert seen["x_custom"] == "1"
    assert seen["authorization"] == "Basic QUNhYmM6dG9rZW4="
    assert seen["content_type"] == "application/x-www-form-urlencoded"
    assert seen["body"] == "Body=hi+there&From=%2B15005550001"
    assert as_json.json()["content_type"] == "application/json"
    assert as_json.json()["body"] == '{"a": [1, 2]}'
    assert raw.json()["method"] == "PATCH"


async def test_each_request_sends_its_own_query_when_targets_are_kept(server: Server) -> None:
    # The client keeps each checked target with its query: the same URL with other
    # parameters, or the same parameters again, must still leave with exactly what was given.
    url = server.url("/echo")
    async with EgressClient(LOOPBACK) as client:
        first = await client.request("GET", url, params=[("Page", "0"), ("To", "+1 5")])
        second = await client.request("GET", url, params={"Page": "1"})
        again = await client.request("GET", url, params=[("Page", "0"), ("To", "+1 5")])
        bare = await client.request("GET", url)
    assert first.json()["query"] == [["Page", "0"], ["To", "+1 5"]]
    assert second.json()["query"] == [["Page", "1"]]
    assert again.json()["query"] == first.json()["query"]
    assert bare.json()["query"] == []
    assert first.url == again.url == f"{url}?Page=0&To=%2B1+5"
    assert bare.url == url


async def test_connections_are_reused(server: Server) -> None:
    server.peers.clear()
    async with EgressClient(LOOPBACK) as client:
        for _ in range(5):
            assert (await client.request("GET", server.url("/ok"))).status == 200
        results = await asyncio.gather(
            *(client.request("GET", server.url("/ok")) for _ in range(10))
        )
    assert all(r.status == 200 for r in results)
    assert len(server.peers) <= 10  # the sequential five shared one connection


async def test_no_cookies_are_kept_between_requests(server: Server) -> None:
    async with EgressClient(LOOPBACK) as client:
        await client.request("GET", server.url("/set-cookie"))
        seen = (await client.request("GET", server.url("/echo"))).json()
    assert seen["cookie"] is None


async def test_proxy_environment_is_ignored(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    dead = f"http://127.0.0.1:{_free_port()}"
    monkeypatch.setenv("HTTP_PROXY", dead)
    monkeypatch.setenv("http_proxy", dead)
    async with EgressClient(LOOPBACK) as client:
        assert (await client.request("GET", server.url("/ok"))).status == 200


async def test_lifecycle() -> None:
    client = EgressClient(LOOPBACK)
    with pytest.raises(RuntimeError, match="not started"):
        await client.request("GET", "http://127.0.0.1/")
    await client.start()
    await client.start()  # idempotent
    await client.close()
    await client.close()
    with pytest.raises(RuntimeError):
        await client.request("GET", "http://127.0.0.1/")


async def test_denied_message_has_no_credentials_or_query(server: Server) -> None:
    async with EgressClient(EgressPolicy([])) as client:
        with pytest.raises(EgressDenied) as info:
            await client.request(
                "GET", f"http://user:hunter2@127.0.0.1:{server.port}/ok?token=s3cr3t#frag"
            )
    message = str(info.value)
    assert "hunter2" not in message
    assert "s3cr3t" not in message
    assert "frag" not in message
    assert f"127.0.0.1:{server.port}/ok" in message
    assert isinstance(info.value, EgressError)
