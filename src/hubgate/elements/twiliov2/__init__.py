"""The ``twiliov2`` element: Twilio's 2010 REST API behind the messaging hub."""

from __future__ import annotations

from pathlib import Path

from hubgate.elements.manifest import load_manifest
from hubgate.elements.sdk import Element, Hooks, load_transformations
from hubgate.elements.twiliov2 import hooks
from hubgate.elements.twiliov2.webhooks import TwilioWebhook

element = Element(
    manifest=load_manifest(Path(__file__).with_name("manifest.json")),
    hooks=Hooks(
        operations={"ping": hooks.ping},
        requests={"statusCallback": hooks.status_callback},
        webhook=TwilioWebhook(),
    ),
    transformations=load_transformations(Path(__file__).with_name("transformations.json")),
)
