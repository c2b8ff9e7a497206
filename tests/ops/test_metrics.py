"""/metrics (D62): a real `hubgate serve --workers 2` with its worker, known traffic, a scrape
parsed with prometheus-client's own parser, exact counts summed over the processes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from sims.twilio_sim import TwilioSimulator
from tests.conftest import API
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

METRICS_TOKEN = "scrape-me-3b9f0c"
HUB_ROUTE = f"{API}/hubs/{{hub}}/{{rest:path}}"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
async def vendor() -> AsyncIterator[TwilioSimulator]:
    simulator = TwilioSimulator()
    await simulator.start()
    yield simulator
    await simulator.stop()


def parse(text: str) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_a_scrape_counts_exactly_what_was_sent(
    tmp_path: Path, vendor: TwilioSimulator
) -> None:
    remember_secret(METRICS_TOKEN)
    env = fresh_env(tmp_path, HUBGATE_METRICS_TOKEN=METRICS_TOKEN)
    base = f"http://127.0.0.1:{env['HUBGATE_PORT']}"
    serve = start(hubgate("serve", "--workers", "2"), env, tmp_path / "serve.log")
    # A new connection per request, so that both API processes take some.
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http:
        try:
            await asyncio.to_thread(wait_serving, serve, f"{base}/healthz")
            user = {"Authorization": bootstrap_authorization(env)}
            instance = await provisioned(http, base, user, vendor)
            element = {"Authorization": f"{user['Authorization']}, Element {instance['token']}"}

            async def get(path: str, headers: dict[str, str]) -> int:
                async with http.get(f"{base}{path}", headers=headers) as response:
                    await response.read()
                    return response.status

            vendor.clear_requests()
            for _ in range(7):
                assert await get(f"{API}/hubs/messaging/messages", element) == 200
            vendor.fail_next(503, retry_after=0)  # one failure, then the retry succeeds (D25)
            assert await get(f"{API}/hubs/messaging/messages", element) == 200
            assert len(vendor.requests) == 9
            for _ in range(3):
                assert await get(f"{API}/hubs", user) == 200
            for number in range(2):
                assert await get(f"{API}/no-such-route/{number}", user) == 404

            assert await get("/metrics", {}) == 401
            assert await get("/metrics", {"Authorization": "Bearer wrong"}) == 401
            async with http.get(
                f"{base}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
            ) as scraped:
                assert scraped.status == 200
                assert scraped.headers["Content-Type"].startswith("text/plain")
                text = await scraped.text()
        finally:
            serve.stop()

    samples = parse(text)
    http_requests = "hubgate_http_requests_total"
    twilio = {"element": "twiliov2", "resource": "messages"}
    assert (
        value(
            samples, http_requests, route=HUB_ROUTE, method="GET", status="200", element="twiliov2"
        )
        == 8
    )
    assert (
        value(samples, http_requests, route=f"{API}/hubs", method="GET", status="200", element="")
        == 3
    )
    assert (
        value(samples, http_requests, route="unmatched", method="GET", status="404", element="")
        == 2
    )
    assert value(samples, "hubgate_hub_call_seconds_count", **twilio) == 8
    assert value(samples, "hubgate_vendor_call_seconds_count", **twilio) == 9
    assert value(samples, "hubgate_vendor_errors_total", kind="5xx", **twilio) == 1
    assert value(samples, "hubgate_vendor_retries_total", **twilio) == 1
    lookups = value(samples, "hubgate_token_cache_lookups_total", result="hit") + value(
        samples, "hubgate_token_cache_lookups_total", result="miss"
    )
    assert lookups == 8
    # Summed over processes: both API processes wrote samples of their own.
    counter_files = list((tmp_path / "var" / "metrics").glob("counter_*.db"))
    assert len(counter_files) >= 2, counter_files

    # No label carries an id, a token or tenant text.
    secrets = {instance["token"], str(instance["id"]), instance["name"], METRICS_TOKEN}
    for (_name, labels), _value in samples.items():
        for label, label_value in labels:
            assert label not in {"id", "instance", "organization", "token", "user"}
            assert label_value not in secrets, (label, label_value)


async def test_metrics_off_records_nothing_and_metrics_is_not_found(
    tmp_path: Path, vendor: TwilioSimulator
) -> None:
    # D300: HUBGATE_METRICS_ENABLED=false, for an operator who does not scrape.
    env = fresh_env(tmp_path, HUBGATE_METRICS_ENABLED="false")
    base = f"http://127.0.0.1:{env['HUBGATE_PORT']}"
    serve = start(hubgate("serve", "--workers", "2"), env, tmp_path / "serve.log")
    async with aiohttp.ClientSession() as http:
        try:
            await asyncio.to_thread(wait_serving, serve, f"{base}/healthz")
            user = {"Authorization": bootstrap_authorization(env)}
            token = (await provisioned(http, base, user, vendor))["token"]
            async with http.get(
                f"{base}{API}/hubs/messaging/messages",
                headers={"Authorization": f"Element {token}"},
            ) as listed:
                assert listed.status == 200
                assert listed.headers["Elements-Returned-Count"] == str(len(await listed.json()))
            answers = []
            for path in ("/metrics", "/no-such-page"):
                async with http.get(f"{base}{path}") as response:
                    answers.append((response.status, response.headers["Content-Type"]))
        finally:
            serve.stop()

    # The same answer as any path Hubgate does not serve.
    assert answers[0] == answers[1]
    assert answers[0][0] == 404
    # No process wrote a sample file: nothing was recorded to be scraped.
    assert not (tmp_path / "var" / "metrics").exists()


async def test_calls_answered_while_others_wait_show_in_a_scrape_within_the_bound(
    tmp_path: Path, vendor: TwilioSimulator
) -> None:
    # D424: a process keeps what it records in memory and writes it every FLUSH_SECONDS, or
    # when its last request in flight ends. Slow sends keep requests in flight in the API
    # processes, so that the calls answered meanwhile are written by the timer.
    slow = TwilioSimulator()
    await slow.start()
    slow.set_latency(20)
    env = fresh_env(tmp_path)
    base = f"http://127.0.0.1:{env['HUBGATE_PORT']}"
    serve = start(hubgate("serve", "--workers", "2"), env, tmp_path / "serve.log")
    calls = 12
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http:
        try:
            await asyncio.to_thread(wait_serving, serve, f"{base}/healthz")
            user = {"Authorization": bootstrap_authorization(env)}
            elements: list[dict[str, str]] = []
            for simulator in (vendor, slow):
                token = (await provisioned(http, base, user, simulator))["token"]
                elements.append({"Authorization": f"{user['Authorization']}, Element {token}"})
            fast_element, slow_element = elements

            async def send_slowly() -> int:
                message = {"To": "+15005550006", "From": "+15005550001", "Body": "hi"}
                async with http.post(
                    f"{base}{API}/hubs/messaging/messages", json=message, headers=slow_element
                ) as sent:
                    await sent.read()
                    return sent.status

            # The slow simulator has seen the credential check of its instance already.
            checked = len(slow.requests)
            held = [asyncio.create_task(send_slowly()) for _ in range(6)]
            for _ in range(1000):
                if len(slow.requests) - checked >= len(held):
                    break
                await asyncio.sleep(0.05)
            assert len(slow.requests) - checked == len(held)
            for _ in range(calls):
                async with http.get(
                    f"{base}{API}/hubs/messaging/messages", headers=fast_element
                ) as listed:
                    await listed.read()
                    assert listed.status == 200

            listed_count = 0.0
            for _ in range(600):  # a generous bound: 60 s against FLUSH_SECONDS
                async with http.get(f"{base}/metrics") as scraped:
                    assert scraped.status == 200
                    samples = parse(await scraped.text())
                listed_count = value(
                    samples,
                    "hubgate_http_requests_total",
                    route=HUB_ROUTE,
                    method="GET",
                    status="200",
                    element="twiliov2",
                )
                if listed_count >= calls:
                    break
                await asyncio.sleep(0.1)
            assert listed_count == calls
            assert await asyncio.gather(*held) == [200] * len(held)
        finally:
            serve.stop()
            await slow.stop()
