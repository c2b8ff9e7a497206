"""Finding the manifest resource and operation a hub path and method name (D20)."""

from __future__ import annotations

from urllib.parse import quote

from hubgate.elements.manifest import Manifest, Resource
from hubgate.hub.model import Matched
from hubgate.kit.errors import HubgateError

_Template = tuple[Resource, tuple[str | None, ...], tuple[str, ...]]
# Routes by element key, compiled once: a hub call must not re-read the manifest.
_compiled: dict[str, tuple[Manifest, dict[int, list[_Template]]]] = {}


def _compile(manifest: Manifest) -> dict[int, list[_Template]]:
    by_length: dict[int, list[_Template]] = {}
    for resource in manifest.resources:
        literals: list[str | None] = []
        names: list[str] = []
        for segment in resource.segments:
            if segment.startswith("{") and segment.endswith("}"):
                literals.append(None)
                names.append(segment[1:-1])
            else:
                literals.append(segment.casefold())
        by_length.setdefault(len(literals), []).append((resource, tuple(literals), tuple(names)))
    # Literal segments win over placeholders (``messages/{id}`` never shadows a literal path).
    for templates in by_length.values():
        templates.sort(key=lambda t: sum(1 for lit in t[1] if lit is None))
    return by_length


def routes(manifest: Manifest) -> dict[int, list[_Template]]:
    found = _compiled.get(manifest.key)
    if found is None or found[0] is not manifest:
        found = (manifest, _compile(manifest))
        _compiled[manifest.key] = found
    return found[1]


def match(manifest: Manifest, method: str, segments: tuple[str, ...]) -> Matched:
    for resource, literals, names in routes(manifest).get(len(segments), ()):
        values: list[str] = []
        for literal, segment in zip(literals, segments, strict=True):
            if literal is None:
                if segment in (".", ".."):
                    break  # a dot segment would walk up the vendor's path
                values.append(segment)
            elif literal != segment.casefold():
                break
        else:
            operation = resource.operations.get(method)  # type: ignore[call-overload]
            if operation is None:
                allowed = ", ".join(resource.operations)
                raise HubgateError(
                    405,
                    f"Method {method} is not allowed on {resource.path}; use {allowed}",
                    headers={"Allow": allowed},
                )
            return Matched(resource, operation, method, dict(zip(names, values, strict=True)))
    raise HubgateError(404, f"No resource /{'/'.join(segments)} in element {manifest.key}")


def fill(template: str, values: dict[str, str | None]) -> str:
    """``template`` with each ``{name}`` replaced by its value quoted as one path segment."""
    out: list[str] = []
    rest = template
    while True:
        start = rest.find("{")
        if start < 0:
            out.append(rest)
            return "".join(out)
        end = rest.find("}", start)
        name = rest[start + 1 : end]
        value = values.get(name)
        if value is None:
            raise HubgateError(400, f"Missing value for {{{name}}}")
        # Quoted whole so that a value can never climb out of its path segment.
        out.append(rest[:start])
        out.append(quote(value, safe=""))
        rest = rest[end + 1 :]
