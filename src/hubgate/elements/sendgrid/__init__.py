"""The ``sendgrid`` element: SendGrid's v3 Web API behind the messaging hub (D54)."""

from __future__ import annotations

from pathlib import Path

from hubgate.elements.manifest import load_manifest
from hubgate.elements.sdk import Element, Hooks, load_transformations
from hubgate.elements.sendgrid import hooks
from hubgate.elements.sendgrid.webhooks import SendGridWebhook

element = Element(
    manifest=load_manifest(Path(__file__).with_name("manifest.json")),
    transformations=load_transformations(Path(__file__).with_name("transformations.json")),
    hooks=Hooks(
        operations={"message": hooks.message},
        requests={"mail": hooks.mail_body},
        webhook=SendGridWebhook(),
        credential_check=hooks.can_send_mail,
    ),
)
