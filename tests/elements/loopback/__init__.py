"""``loopback``: an element defined only under tests/, registered as a third-party package
registers one (the entry point in ``site/``), to show a new connector needs nothing outside
its folder."""

from __future__ import annotations

from pathlib import Path

from hubgate.elements.manifest import load_manifest
from hubgate.elements.sdk import Element, Hooks
from tests.elements.loopback import hooks
from tests.elements.loopback.standard_case import LoopbackCase

element = Element(
    manifest=load_manifest(Path(__file__).with_name("manifest.json")),
    hooks=Hooks(operations={"whoami": hooks.whoami}, webhook=hooks.LoopbackWebhook()),
)

# Where the package is "installed": a site folder holding its dist-info and entry point.
SITE = Path(__file__).with_name("site")

# How the standard connector suite drives this element's vendor.
STANDARD_CASE = LoopbackCase
