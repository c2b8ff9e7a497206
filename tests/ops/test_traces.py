"""Traces (D63): a real `hubgate serve` exporting over OTLP/HTTP to a receiver on loopback that
decodes the protobuf with opentelemetry-proto. The trace id is answered and logged; spans
carry the element and resource, never a credential; a caller's `traceparent` is continued;
database statements are spans of the request, with their SQL and never a parameter value."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from sims.twilio_sim import TwilioSimulator
from tests.conftest import API, free_port, twilio_instance_body
from tests.logwatch import remember_secret
from tests.ops.processes import (
    bootstrap_authorization,
    fresh_env,
    hubgate,
    provisioned,
    start,
    wait_serving,
)

pytestmark = pytest.mark.slow


@dataclass
class ReceivedSpan:
    trace_id: str
    name: str
    attributes: dict[str, Any]
    span_id: str
    parent_span_id: str


@dataclass
class Receiver:
    url: str
    spans: list[ReceivedSpan] = field(default_factory=list)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    port = free_port()
    found = Receiver(f"http://127.0.0.1:{port}")

    async def export(request: web.Request) -> web.Response:
        assert request.content_type == "application/x-protobuf"
        sent = ExportTraceServiceRequest.FromString(await request.read())
        for resource_spans in sent.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    attributes = {
                        a.key: getattr(a.value, a.value.WhichOneof("value"))
                        for a in span.attributes
                    }
                    found.spans.append(
                        ReceivedSpan(
                            span.trace_id.hex(),
                            span.name,
                            attributes,
                            span.span_id.hex(),
                            span.parent_span_id.hex(),
                        )
                    )
        return web.Response(
            body=ExportTraceServiceResponse().SerializeToString(),
            content_type="application/x-protobuf",
        )

    app = web.Application()
    app.router.add_post("/v1/traces", export)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield found
    await runner.cleanup()


@pytest.fixture
async def vendor() -> AsyncIterator[TwilioSimulator]:
    simulator = TwilioSimulator()
    await simulator.start()
    remember_secret(simulator.auth_token)
    yield simulator
    await simulator.stop()


async def test_a_hub_call_is_traced_end_to_end(
    tmp_path: Path, receiver: Receiver, vendor: TwilioSimulator
) -> None:
    env = fresh_env(
        tmp_path,
        HUBGATE_OTEL_ENDPOINT=receiver.url,
        HUBGATE_LOG_FORMAT="json",
        OTEL_BSP_SCHEDULE_DELAY="100",
    )
    base = f"http://127.0.0.1:{env['HUBGATE_PORT']}"
    serve = start(hubgate("serve"), env, tmp_path / "serve.log")
    async with aiohttp.ClientSession() as http:
        try:
            await asyncio.to_thread(wait_serving, serve, f"{base}/healthz")
            user = {"Authorization": bootstrap_authorization(env)}
            instance = await provisioned(http, base, user, vendor)
            element = {"Authorization": f"{user['Authorization']}, Element {instance['token']}"}
            async with http.get(
                f"{base}{API}/hubs/messaging/messages", headers=element
            ) as response:
                assert response.status == 200
                trace_id = response.headers["Elements-Trace-Id"]
            assert len(trace_id) == 32
            int(trace_id, 16)
            # The server span ends after the answer is sent, so it may be exported in a later
            # batch than its children: wait for each span the test reads.
            wanted = {f"GET {API}/hubs/{{hub}}/{{rest:path}}", "hub pipeline", "vendor call"}
            for _ in range(600):
                if wanted <= {s.name for s in receiver.spans if s.trace_id == trace_id}:
                    break
                await asyncio.sleep(0.1)
        finally:
            serve.stop()

    spans = {s.name: s for s in receiver.spans if s.trace_id == trace_id}
    request = spans[f"GET {API}/hubs/{{hub}}/{{rest:path}}"]
    assert request.attributes["http.response.status_code"] == 200
    assert request.attributes["hubgate.element"] == "twiliov2"
    assert spans["hub pipeline"].attributes == {
        "hubgate.element": "twiliov2",
        "hubgate.resource": "messages",
    }
    assert spans["vendor call"].attributes == {
        "hubgate.element": "twiliov2",
        "hubgate.resource": "messages",
        "http.request.method": "GET",
        "http.response.status_code": 200,
    }
    # Nothing secret in any span of the run.
    secrets = {instance["token"], vendor.auth_token, vendor.account_sid}
    for span in receiver.spans:
        for value in span.attributes.values():
            assert not any(secret in str(value) for secret in secrets), span

    logged = [json.loads(line) for line in serve.output().splitlines() if line.startswith("{")]
    access = [line for line in logged if line.get("traceId") == trace_id]
    assert any(line["logger"] == "uvicorn.access" for line in access), logged[-5:]


@asynccontextmanager
async def traced_serve(
    tmp_path: Path, receiver: Receiver
) -> AsyncIterator[tuple[aiohttp.ClientSession, str, dict[str, str]]]:
    """A `hubgate serve` exporting to ``receiver``: a client, its base URL, a User/Org header."""
    env = fresh_env(tmp_path, HUBGATE_OTEL_ENDPOINT=receiver.url, OTEL_BSP_SCHEDULE_DELAY="100")
    base = f"http://127.0.0.1:{env['HUBGATE_PORT']}"
    serve = start(hubgate("serve"), env, tmp_path / "serve.log")
    async with aiohttp.ClientSession() as http:
        try:
            await asyncio.to_thread(wait_serving, serve, f"{base}/healthz")
            yield http, base, {"Authorization": bootstrap_authorization(env)}
        finally:
            serve.stop()


async def spans_of(receiver: Receiver, trace_id: str, wanted: Any) -> dict[str, list[ReceivedSpan]]:
    """The spans of ``trace_id`` by name, once ``wanted(names)`` holds (the exporter batches)."""
    for _ in range(600):
        found: dict[str, list[ReceivedSpan]] = {}
        for received in receiver.spans:
            if received.trace_id == trace_id:
                found.setdefault(received.name, []).append(received)
        if wanted(found):
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"spans of {trace_id} never arrived: {sorted(found)}")


async def test_an_incoming_traceparent_is_continued(
    tmp_path: Path, receiver: Receiver, vendor: TwilioSimulator
) -> None:
    caller_trace, caller_span = secrets.token_hex(16), secrets.token_hex(8)
    traceparent = f"00-{caller_trace}-{caller_span}-01"
    async with traced_serve(tmp_path, receiver) as (http, base, user):
        async with http.get(
            f"{base}{API}/instances", headers={**user, "traceparent": traceparent}
        ) as continued:
            assert continued.status == 200
            assert continued.headers["Elements-Trace-Id"] == caller_trace
        # Without one, or with a malformed one, the request starts a trace of its own.
        async with http.get(
            f"{base}{API}/instances", headers={**user, "traceparent": "00-nonsense-01"}
        ) as fresh:
            assert fresh.status == 200
            own_trace = fresh.headers["Elements-Trace-Id"]
        assert own_trace != caller_trace
        assert len(own_trace) == 32
        int(own_trace, 16)

        route = f"GET {API}/instances"
        spans = await spans_of(receiver, caller_trace, lambda found: route in found)
        (request,) = spans[route]
        assert request.parent_span_id == caller_span
        assert request.attributes["http.response.status_code"] == 200
        (own,) = (await spans_of(receiver, own_trace, lambda found: route in found))[route]
        assert own.parent_span_id == ""


async def test_database_statements_are_spans_of_the_request(
    tmp_path: Path, receiver: Receiver, vendor: TwilioSimulator
) -> None:
    # A name nobody else writes: it is bound as a parameter, so no span may show it.
    name = f"traced-{secrets.token_hex(6)}"
    async with traced_serve(tmp_path, receiver) as (http, base, user):
        body = {**twilio_instance_body(vendor), "name": name}
        async with http.post(f"{base}{API}/instances", json=body, headers=user) as created:
            assert created.status == 200, await created.text()
            trace_id = created.headers["Elements-Trace-Id"]
            instance: dict[str, Any] = await created.json()
        remember_secret(instance["token"])

        route = f"POST {API}/instances"
        spans = await spans_of(
            receiver, trace_id, lambda found: route in found and "INSERT" in found
        )

    (request,) = spans[route]
    by_id = {s.span_id: s for named in spans.values() for s in named}
    inserts = [s.attributes["db.query.text"] for s in spans["INSERT"]]
    assert any("INSERT INTO instances" in text for text in inserts), inserts
    statements = [s for s in by_id.values() if "db.query.text" in s.attributes]
    assert {s.name for s in statements} >= {"SELECT", "INSERT"}
    for statement in statements:
        assert statement.attributes["db.system.name"] == "postgresql"
        assert statement.attributes["db.operation.name"] == statement.name
        # Under the request's span, through the pipeline's spans if any.
        ancestor = statement
        while ancestor.parent_span_id in by_id:
            ancestor = by_id[ancestor.parent_span_id]
        assert ancestor is request, statement
    # The statements carry placeholders; the values bound to them appear nowhere.
    assert any("%(" in s.attributes["db.query.text"] for s in statements)
    leaked = {instance["token"], vendor.auth_token, name}
    for received in receiver.spans:
        for value in received.attributes.values():
            assert not any(secret in str(value) for secret in leaked), received
