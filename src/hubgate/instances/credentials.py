"""The element's check call: credentials are proven with the vendor before they are kept (D13).

The call itself is the vendor session's (``hub/vendor.py``), the same one hub calls use.
"""

from __future__ import annotations

from hubgate.elements.manifest import Manifest
from hubgate.hub.vendor import VendorSession
from hubgate.instances.configuration import Configuration
from hubgate.kit.egress import EgressClient
from hubgate.settings import Settings


async def check_credentials(
    egress: EgressClient, settings: Settings, manifest: Manifest, config: Configuration
) -> None:
    await VendorSession(egress, settings, manifest, config).check()
