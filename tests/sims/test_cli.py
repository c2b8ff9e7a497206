"""`hubgate sim sendgrid|slack` start a simulator whose printed `export` lines work as printed."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from tests.conftest import free_port
from tests.e2e.test_newcomer import exported, hubgate, start, stop, wait_for


def fetch(url: str, headers: dict[str, str], data: bytes | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=data, headers=headers)  # noqa: S310 - loopback
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - loopback
            return answer.status, json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def test_sim_sendgrid_prints_a_working_key_and_the_webhook_public_key(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "sendgrid.log"
    process = start(hubgate("sim", "sendgrid", "--port", str(port)), dict(os.environ), log)
    try:
        wait_for(f"http://127.0.0.1:{port}/_sim/health", process)
        printed = exported(log)
        base = printed["SENDGRID_BASE_URL"]
        assert base == f"http://127.0.0.1:{port}"
        key = printed["SENDGRID_API_KEY"]
        status, scopes = fetch(f"{base}/v3/scopes", {"Authorization": f"Bearer {key}"})
        assert status == 200
        assert "mail.send" in scopes["scopes"]
        status, _ = fetch(f"{base}/v3/scopes", {"Authorization": f"Bearer {key}x"})
        assert status == 401
        _, health = fetch(f"{base}/_sim/health", {})
        assert printed["SENDGRID_EVENT_WEBHOOK_PUBLIC_KEY"] == health["publicKey"]
        assert health["publicKey"].startswith("MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE")
    finally:
        stop(process)


def test_sim_slack_prints_the_app_credentials_and_its_urls(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "slack.log"
    process = start(hubgate("sim", "slack", "--port", str(port)), dict(os.environ), log)
    try:
        wait_for(f"http://127.0.0.1:{port}/_sim/health", process)
        printed = exported(log)
        root = f"http://127.0.0.1:{port}"
        assert printed["SLACK_AUTHORIZATION_URL"] == f"{root}/oauth/v2/authorize"
        assert printed["SLACK_TOKEN_URL"] == f"{root}/api/oauth.v2.access"
        assert printed["SLACK_BASE_URL"] == f"{root}/api"
        _, health = fetch(f"{root}/_sim/health", {})
        assert printed["SLACK_SIGNING_SECRET"] == health["signingSecret"]
        # The printed client credentials pass the token endpoint's client check: only the
        # made-up code is refused.
        form = urllib.parse.urlencode(
            {
                "client_id": printed["SLACK_CLIENT_ID"],
                "client_secret": printed["SLACK_CLIENT_SECRET"],
                "code": "made-up",
            }
        ).encode()
        status, answer = fetch(printed["SLACK_TOKEN_URL"], {}, form)
        assert (status, answer) == (200, {"ok": False, "error": "invalid_code"})
        query = urllib.parse.urlencode(
            {
                "client_id": printed["SLACK_CLIENT_ID"],
                "redirect_uri": "http://cb.invalid/",
                "scope": "chat:write",
            }
        )
        with urllib.request.urlopen(  # noqa: S310 - loopback
            f"{printed['SLACK_AUTHORIZATION_URL']}?{query}", timeout=10
        ) as page:
            assert b">Allow</button>" in page.read()
    finally:
        stop(process)
