"""The Slack element's requests judged by Slack's own OpenAPI file: Prism mocks it (a Slack
stand-in we did not write) and refuses any request its description does not allow."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hubgate.elements.sdk import HubCall
from hubgate.hub import service
from hubgate.instances.credentials import check_credentials
from tests.conftest import RunningHubgate, running_prism, shared_file
from tests.elements.standard import resolved

TOKEN = "xoxb-contract-0123456789"


def bearer_file(folder: Path) -> Path:
    """Slack's file with one mechanical change (D401): every ``token`` header parameter made
    optional, since Slack documents the ``Authorization: Bearer`` header the element sends
    (slack-api.md section 2) and the file models the token as that parameter instead."""
    spec: dict[str, Any] = json.loads(shared_file("slack/slack_web_openapi_v2.json").read_text())
    for operations in spec["paths"].values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter["name"] == "token" and parameter["in"] == "header":
                    parameter["required"] = False
    derived = folder / "slack_web_openapi_v2_bearer.json"
    derived.write_text(json.dumps(spec))
    return derived


@pytest.mark.prism
async def test_prism_accepts_the_slack_elements_requests(
    hubgate: RunningHubgate, tmp_path: Path
) -> None:
    runtime = hubgate.runtime
    element = runtime.registry.get("slack")
    async with running_prism(bearer_file(tmp_path), tmp_path) as url:
        instance = resolved(element, **{"oauth.user.token": TOKEN, "base.url": url})
        # The credential check: auth.test, which the file allows only as GET.
        await check_credentials(runtime.egress, runtime.settings, element, instance.config)

        channels = await service.execute(runtime, instance, HubCall("GET", ("channels",)))
        assert isinstance(channels.body, list)
        assert channels.body
        users = await service.execute(runtime, instance, HubCall("GET", ("users",)))
        assert isinstance(users.body, list)
        assert users.body
        where = (("where", "ts > '1512085950.000000'"),)
        history = await service.execute(
            runtime, instance, HubCall("GET", ("channels", "C1H9RESGL", "messages"), where)
        )
        assert isinstance(history.body, list)

        # chat.postMessage form-encoded, blocks as one JSON string (the file's formData).
        message = {
            "channel": "C1H9RESGL",
            "text": "Hello",
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "Hello"}}],
        }
        posted = await service.execute(
            runtime, instance, HubCall("POST", ("messages",), body=json.dumps(message).encode())
        )
        assert posted.body["ts"]
        assert json.loads(dict(posted.vendor_request)["blocks"]) == message["blocks"]

        # chat.postMessage to the path's channel and chat.update of the path's message: the
        # path's values go as form fields with the body's (D443).
        to_channel = await service.execute(
            runtime,
            instance,
            HubCall(
                "POST", ("channels", "C1H9RESGL", "messages"), body=b'{"text": "To the channel"}'
            ),
        )
        assert to_channel.body["ts"]
        assert dict(to_channel.vendor_request) == {"text": "To the channel", "channel": "C1H9RESGL"}
        edited = await service.execute(
            runtime,
            instance,
            HubCall(
                "PATCH",
                ("channels", "C1H9RESGL", "messages", "1503435956.000247"),
                body=json.dumps({"text": "Edited", "blocks": message["blocks"]}).encode(),
            ),
        )
        assert edited.body["ts"]
        assert dict(edited.vendor_request) == {
            "text": "Edited",
            "blocks": json.dumps(message["blocks"], separators=(",", ":")),
            "channel": "C1H9RESGL",
            "ts": "1503435956.000247",
        }

        deleted = await service.execute(
            runtime, instance, HubCall("DELETE", ("channels", "C1H9RESGL", "messages", "1.2"))
        )
        assert deleted.body["ok"] is True
