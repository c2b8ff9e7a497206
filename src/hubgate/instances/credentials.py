"""The element's check call: credentials are proven with the vendor before they are kept (D13).

The call itself is the vendor session's (``hub/vendor.py``), the same one hub calls use; an
element's credential-check hook then proves what the check call cannot (D282).
"""

from __future__ import annotations

from hubgate.elements.sdk import Element
from hubgate.hub.vendor import VendorSession
from hubgate.instances.configuration import Configuration
from hubgate.kit.egress import EgressClient
from hubgate.settings import Settings


async def check_credentials(
    egress: EgressClient, settings: Settings, element: Element, config: Configuration
) -> None:
    session = VendorSession(egress, settings, element.manifest, config)
    await session.check()
    if element.hooks.credential_check is not None:
        await element.hooks.credential_check(session)
