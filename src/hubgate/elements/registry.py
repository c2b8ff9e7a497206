"""The catalog of elements: every one a package registers, the built-in ones included.

Elements register under the ``hubgate.elements`` entry point group, each pointing at an
:class:`Element` object, so adding a connector never edits Hubgate; Hubgate's own register in
its pyproject.toml the same way (D272).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from importlib.metadata import distributions, entry_points
from pathlib import Path

from hubgate.elements.manifest import Hub, Manifest
from hubgate.elements.sdk import Element as Element
from hubgate.kit.errors import HubgateError


def _known_hubs() -> dict[str, Hub]:
    path = Path(__file__).with_name("hubs.json")
    return {
        hub.key: hub
        for hub in (Hub.model_validate(h) for h in json.loads(path.read_text(encoding="utf-8")))
    }


# The hubs Hubgate knows by name; an element of another hub declares it in its manifest.
KNOWN_HUBS: dict[str, Hub] = _known_hubs()


def hub_of(manifest: Manifest) -> Hub:
    """The hub an element belongs to, as its manifest declares it or Hubgate knows it."""
    if manifest.hub_definition is not None:
        return manifest.hub_definition
    hub = KNOWN_HUBS.get(manifest.hub)
    if hub is None:
        raise ValueError(
            f"element {manifest.key} names the hub {manifest.hub}, which Hubgate does not know;"
            " declare it as the manifest's hubDefinition"
        )
    return hub


class ElementRegistry:
    def __init__(self, elements: list[Element]) -> None:
        self._by_key: dict[str, Element] = {}
        self._by_id: dict[int, Element] = {}
        self._hubs: dict[str, Hub] = {}
        for element in elements:
            self.add(element)

    def add(self, element: Element) -> None:
        if element.key in self._by_key or element.id in self._by_id:
            raise ValueError(f"element {element.key} ({element.id}) is registered twice")
        hub = hub_of(element.manifest)
        if hub.key != element.manifest.hub:
            raise ValueError(f"element {element.key}: its hubDefinition is not hub {hub.key}")
        known = self._hubs.get(hub.key)
        if known is not None and known != hub:
            raise ValueError(f"element {element.key} declares hub {hub.key} unlike another element")
        self._hubs[hub.key] = hub
        self._by_key[element.key] = element
        self._by_id[element.id] = element

    def __iter__(self) -> Iterator[Element]:
        return iter(sorted(self._by_key.values(), key=lambda e: e.id))

    def keys(self) -> list[str]:
        return [e.key for e in self]

    def find(self, key_or_id: str | int) -> Element | None:
        if isinstance(key_or_id, int):
            return self._by_id.get(key_or_id)
        # ASCII only: str.isdigit() accepts "³", which int() refuses; and a number longer
        # than any id cannot name one (int() refuses more than 4,300 digits anyway).
        if key_or_id.isascii() and key_or_id.isdigit():
            return self._by_id.get(int(key_or_id)) if len(key_or_id) <= 18 else None
        return self._by_key.get(key_or_id)

    def get(self, key_or_id: str | int) -> Element:
        element = self.find(key_or_id)
        if element is None:
            raise HubgateError(404, f"No element found with key or id {key_or_id}")
        return element

    @property
    def hubs(self) -> dict[str, Hub]:
        """The hubs of the registered elements, by key, in the order of their ids."""
        return dict(sorted(self._hubs.items(), key=lambda item: item[1].id))

    def in_hub(self, hub: str) -> list[Element]:
        return [e for e in self if e.manifest.hub == hub]


def discover(paths: Sequence[Path] = ()) -> ElementRegistry:
    """Every element whose package declares a ``hubgate.elements`` entry point: the installed
    ones, and those of the packages installed into ``paths`` (folders that hold their
    ``.dist-info``, as a site-packages folder does)."""
    found: dict[str, Element] = {}
    points = list(entry_points(group="hubgate.elements"))
    for dist in distributions(path=[str(p) for p in paths]):
        points.extend(e for e in dist.entry_points if e.group == "hubgate.elements")
    for entry in points:
        element = entry.load()
        if not isinstance(element, Element):
            raise TypeError(f"entry point {entry.name} is not a hubgate Element")
        found[element.key] = element
    return ElementRegistry(list(found.values()))
