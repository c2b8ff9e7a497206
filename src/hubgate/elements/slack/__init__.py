"""The ``slack`` element: Slack's Web API behind the collaboration hub, OAuth v2 (D55)."""

from __future__ import annotations

from pathlib import Path

from hubgate.elements.manifest import load_manifest
from hubgate.elements.sdk import Element, Hooks, load_transformations
from hubgate.elements.slack.oauth import SlackOAuth
from hubgate.elements.slack.webhooks import SlackWebhook
from hubgate.elements.slack.writes import channel_form_body, form_body, message_form_body

element = Element(
    manifest=load_manifest(Path(__file__).with_name("manifest.json")),
    transformations=load_transformations(Path(__file__).with_name("transformations.json")),
    hooks=Hooks(
        webhook=SlackWebhook(),
        oauth=SlackOAuth(),
        requests={
            "form": form_body,
            "channelForm": channel_form_body,
            "messageForm": message_form_body,
        },
    ),
)
