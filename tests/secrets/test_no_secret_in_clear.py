"""No Auth Token, instance token, user or organization secret, or signature key in clear:
not in the database (pg_dump) and not in anything the whole test run logged (issue 6).

The flows here are chosen to tempt a leak (secrets in malformed bodies, in refused headers,
in vendor refusals, in traced hub calls); the two ``last`` tests then read every log line the
run wrote and a dump of the database after everything, against every secret the run made.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import traceback
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import select

from hubgate.app import create_app
from hubgate.instances.configuration import secret_keys
from hubgate.instances.models import Instance
from hubgate.instances.service import decrypt_configuration, decrypt_token
from hubgate.kit.crypto import Keyring, KeyringError
from hubgate.settings import Settings
from sims.twilio_sim import TwilioSimulator
from tests.conftest import API, Api, RunningHubgate, free_port, serve_in_loop, twilio_instance_body
from tests.instances.test_secrets_at_rest import pg_dump
from tests.logwatch import LOG_FILES, SECRETS, remember_secret
from tests.results import publish

HUB = f"{API}/hubs/messaging"


async def test_an_unexpected_error_logs_its_class_and_line_not_its_text(
    settings: Settings, pg_url: str, http: Any, caplog: pytest.LogCaptureFixture
) -> None:
    app: FastAPI = create_app(settings, database_url=pg_url)
    # An error raised inside Hubgate's own code whose text quotes its input, as a driver's
    # message quotes SQL; where it was raised is found here from its own traceback.
    bad_keys = {"SELECT secret-in-a-message FROM somewhere": bytes(32)}
    with pytest.raises(KeyringError) as raised:
        Keyring(bad_keys, "x", bytes(32))
    origin = traceback.extract_tb(raised.value.__traceback__)[-1]
    assert origin.filename.endswith("hubgate/kit/crypto.py")

    @app.get(f"{API}/_boom")
    async def boom() -> None:
        Keyring(bad_keys, "x", bytes(32))

    port = free_port()
    server, task = await serve_in_loop(app, port)
    # uvicorn's own error log does not reach the root logger: listen to it too, where a
    # re-raised exception would leave its traceback.
    uvicorn_errors = logging.getLogger("uvicorn.error")
    uvicorn_errors.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.ERROR, logger="hubgate.errors"):
            response = await Api(http, f"http://127.0.0.1:{port}", None).get(f"{API}/_boom")
    finally:
        uvicorn_errors.removeHandler(caplog.handler)
        server.should_exit = True
        await task
    assert response.status == 500
    assert response.headers["Elements-Request-Id"] == response.body["requestId"]
    assert len(caplog.records) == 1, caplog.text
    assert "secret-in-a-message" not in response.text
    line = caplog.text
    # The class, and the line of Hubgate's code it came from (D173).
    assert "unhandled hubgate.kit.crypto.KeyringError at " in line
    assert f" at hubgate.kit.crypto:{origin.lineno} in GET {API}/_boom " in line
    assert response.body["requestId"] in line
    assert "secret-in-a-message" not in line
    assert "Traceback" not in line


async def test_flows_that_tempt_a_leak(api: Api, sim: TwilioSimulator, tenant: Any) -> None:
    signature_key = "sig-" + base64.b64encode(b"signature key of the test").decode()
    remember_secret(signature_key, sim.auth_token)
    body = twilio_instance_body(
        sim,
        **{
            "event.notification.signature.key": signature_key,
            "event.notification.callback.url": "https://hooks.example.test/in",
        },
    )
    body["traceLoggingEnabled"] = True
    created = await api.post("instances", json=body)
    assert created.status == 200, created.text
    token = created.body["token"]
    remember_secret(token)
    # Secrets inside bodies that are refused.
    raw = f'{{"configuration": {{"password": "{sim.auth_token}"'.encode()
    bad_json = await api.post("instances", data=raw, headers={"Content-Type": "application/json"})
    assert bad_json.status == 400
    wrong_type = await api.post(
        "instances", data=sim.auth_token.encode(), headers={"Content-Type": "text/plain"}
    )
    assert wrong_type.status == 415
    # A real secret next to a wrong one; a token as a user secret.
    wrong_org = api.with_auth(f"User {tenant.user_secret}, Organization {token}")
    assert (await wrong_org.get("instances")).status == 401
    # The vendor refusing a real-looking Auth Token.
    refused_token = "f" * 32
    remember_secret(refused_token)
    refused = await api.post("instances", json=twilio_instance_body(sim, password=refused_token))
    assert refused.status == 400
    assert refused_token not in refused.text
    # A traced hub call whose body carries the Auth Token: the trace must mask it.
    hub = api.with_auth(f"Element {token}")
    sent = await hub.post(
        f"{HUB}/messages",
        json={"To": "+15005550006", "From": "+15005550001", "Body": sim.auth_token},
    )
    assert sent.status == 200, sent.text
    logs = await api.get(f"instances/{created.body['id']}/logs")
    assert logs.status == 200
    assert sim.auth_token not in logs.text
    assert signature_key not in (await api.get(f"instances/{created.body['id']}")).text


def every_secret(hubgate: RunningHubgate, sim: TwilioSimulator) -> set[str]:
    """What the run made: tenants' secrets, every Auth Token, and the instances' secrets."""
    return set(SECRETS) | set(sim.accounts().values())


async def instance_secrets(hubgate: RunningHubgate, keyring_json: str) -> set[str]:
    """Every instance's token and secret configuration, decrypted.

    Two keyrings: the shared server's rotated its key in memory (test_secrets_at_rest) and
    retired the first, while the other apps of the run kept writing under the first.
    """
    runtime = hubgate.runtime
    keyrings = (runtime.keyring, Keyring.from_json(keyring_json))
    found: set[str] = set()
    async with runtime.sessions() as session:
        for instance in (await session.execute(select(Instance))).scalars():
            manifest = runtime.registry.get(instance.element_key).manifest
            key_id = instance.token_ciphertext.split(".")[1]
            keyring = next(k for k in keyrings if key_id in k.key_ids)
            found.add(decrypt_token(keyring, instance))
            config = decrypt_configuration(keyring, instance)
            found.update(v for k, v in config.items() if k in secret_keys(manifest) and v)
    return found


def strong(secrets: set[str]) -> Iterator[str]:
    # A secret of a few characters ("pw") would match anywhere and prove nothing.
    return (s for s in secrets if len(s) >= 16)


@pytest.mark.last
async def test_the_whole_run_logged_no_secret(
    hubgate: RunningHubgate, sim: TwilioSimulator, keyring_json: str
) -> None:
    secrets = set(
        strong(every_secret(hubgate, sim) | await instance_secrets(hubgate, keyring_json))
    )
    lines = 0
    leaked: dict[str, list[str]] = {}
    for path in LOG_FILES:
        if not path.exists():
            continue
        text = path.read_text(errors="replace")
        lines += text.count("\n")
        found = sorted(s[:6] + "…" for s in secrets if s in text)
        if found:
            leaked[str(path)] = found
    publish(
        "secrets_logs",
        {
            "secrets": len(secrets),
            "log_files": len(LOG_FILES),
            "lines": lines,
            "found": sum(len(found) for found in leaked.values()),
        },
    )
    assert not leaked, f"secrets in clear: {leaked}"
    assert len(secrets) >= 5  # at least what test_flows_that_tempt_a_leak made


@pytest.mark.last
async def test_the_database_after_the_whole_run_holds_no_secret(
    hubgate: RunningHubgate, sim: TwilioSimulator, pg_url: str, keyring_json: str
) -> None:
    secrets = set(
        strong(every_secret(hubgate, sim) | await instance_secrets(hubgate, keyring_json))
    )
    dump = await asyncio.to_thread(pg_dump, pg_url)
    assert "instances" in dump
    leaked = sorted(s[:6] + "…" for s in secrets if s in dump)
    encoded = {base64.b64encode(s.encode()).decode()[:24] for s in secrets}
    leaked_encoded = [e[:6] + "…" for e in encoded if e in dump]
    publish(
        "secrets_dump",
        {
            "secrets": len(secrets),
            "dump_bytes": len(dump),
            "found": len(leaked),
            "found_base64": len(leaked_encoded),
        },
    )
    assert not leaked, f"the database holds secrets in clear: {leaked}"
    assert not leaked_encoded, f"the database holds secrets in base64: {leaked_encoded}"
