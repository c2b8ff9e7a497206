"""The authenticate and edit forms, built from an element's configuration entries.

The console sends what a person typed to the same provisioning service the API uses, then
puts the service's errors back beside the fields they concern. Secret values are never
written back into a page: a form shown again after an error asks for them anew.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import ValidationError
from starlette.datastructures import FormData

from hubgate.elements.manifest import ConfigEntry, Manifest
from hubgate.errors_http import describe_validation
from hubgate.instances import configuration as cfg
from hubgate.kit.errors import HubgateError

Kind = Literal["text", "password", "checkbox", "number", "select", "textarea"]
NAME_FIELD = "name"
TAGS_FIELD = "tags"
MAX_NAME_LENGTH = 200


@dataclass(frozen=True)
class FormField:
    """One labelled control of a form, ready for the template."""

    name: str
    input_id: str
    label: str
    help: str
    kind: Kind
    required: bool
    value: str
    error: str | None = None
    options: tuple[str, ...] = ()
    advanced: bool = False
    placeholder: str = ""


@dataclass
class FormErrors:
    """What went wrong: per field (by form name) and for the form as a whole."""

    fields: dict[str, str] = field(default_factory=dict)
    summary: str | None = None

    def __bool__(self) -> bool:
        return bool(self.fields) or self.summary is not None


@dataclass(frozen=True)
class Submitted:
    """A submitted form: the values to send and the values to show again."""

    name: str
    tags: list[str]
    # Every console-visible entry: the text given, or None when left empty.
    configuration: dict[str, str | None]


def input_id(key: str) -> str:
    return "cfg-" + "".join(c if c.isalnum() else "-" for c in key)


def is_secret(manifest: Manifest, entry: ConfigEntry) -> bool:
    return entry.secret or entry.key in cfg.secret_keys(manifest) or entry.type == "PASSWORD"


def visible_entries(manifest: Manifest) -> list[ConfigEntry]:
    entries = [e for e in manifest.configuration if not e.hide_from_console]
    return sorted(entries, key=lambda e: (e.display_order, e.id))


def _kind(manifest: Manifest, entry: ConfigEntry) -> tuple[Kind, tuple[str, ...]]:
    if is_secret(manifest, entry):
        return "password", ()
    if entry.type == "BOOLEAN":
        return "checkbox", ()
    if entry.type == "NUMBER":
        return "number", ()
    if entry.type == "TEXTAREA":
        return "textarea", ()
    if entry.type == "SELECT" and entry.key == "event.vendor.type":
        return "select", manifest.event_methods
    return "text", ()


def configuration_fields(
    manifest: Manifest,
    values: Mapping[str, str | None],
    errors: FormErrors,
    *,
    editing: bool,
) -> list[FormField]:
    """One field per entry a person may set; secrets always start empty."""
    fields: list[FormField] = []
    for entry in visible_entries(manifest):
        kind, options = _kind(manifest, entry)
        value = values.get(entry.key)
        placeholder = ""
        if kind == "password":
            value = ""
            if editing:
                placeholder = "Unchanged; type a new value to replace it"
        elif kind != "checkbox" and entry.default_value is not None and not entry.required:
            placeholder = "" if kind == "textarea" else entry.default_value
        fields.append(
            FormField(
                name=entry.key,
                input_id=input_id(entry.key),
                label=entry.name,
                help=entry.description,
                kind=kind,
                required=entry.required,
                value=value if value is not None else "",
                error=errors.fields.get(entry.key),
                options=options,
                advanced=entry.advanced,
                placeholder=placeholder,
            )
        )
    return fields


def _last(form: FormData, name: str) -> str:
    values = [v for v in form.getlist(name) if isinstance(v, str)]
    return values[-1] if values else ""


def parse(manifest: Manifest, form: FormData) -> Submitted:
    configuration: dict[str, str | None] = {}
    for entry in visible_entries(manifest):
        kind, _ = _kind(manifest, entry)
        if kind == "checkbox":
            # The template sends a hidden "false" before the checkbox, so an unticked box
            # still says so rather than vanishing from the request.
            given = [v for v in form.getlist(entry.key) if isinstance(v, str)]
            if given:
                configuration[entry.key] = "true" if "true" in given else "false"
            continue
        text = _last(form, entry.key)
        configuration[entry.key] = text.strip() or None
    tags = [t.strip() for t in _last(form, TAGS_FIELD).split(",")]
    return Submitted(
        name=_last(form, NAME_FIELD).strip(),
        tags=[t for t in tags if t],
        configuration=configuration,
    )


def for_create(submitted: Submitted) -> dict[str, str]:
    """Only what was given: an empty entry takes the element's default."""
    return {k: v for k, v in submitted.configuration.items() if v is not None}


def for_update(manifest: Manifest, submitted: Submitted) -> dict[str, str | None]:
    """Every shown entry: empty means the default again, except secrets, which stay as they are."""
    changes: dict[str, str | None] = {}
    for entry in visible_entries(manifest):
        if entry.key not in submitted.configuration:
            continue
        value = submitted.configuration[entry.key]
        if value is None:
            if is_secret(manifest, entry):
                continue
            value = entry.default_value
        changes[entry.key] = value
    return changes


def shown_again(manifest: Manifest, submitted: Submitted) -> dict[str, str | None]:
    """What a re-shown form keeps of the submission: everything but secrets."""
    return {
        key: value
        for key, value in submitted.configuration.items()
        if not (entry := manifest.entry(key)) or not is_secret(manifest, entry)
    }


def _mentioned_key(keys: Iterable[str], message: str) -> str | None:
    # Longest first, so that "event.notification.callback.url" wins over a shorter key
    # that happens to prefix it.
    for key in sorted(keys, key=len, reverse=True):
        if f"Configuration {key} " in message:
            return key
    return None


def errors_from(manifest: Manifest, error: HubgateError) -> FormErrors:
    """Put a provisioning error beside the field it concerns, and summarise it on top."""
    found = FormErrors(summary=error.message)
    shown = {e.key for e in visible_entries(manifest)}
    order = {e.key: position for position, e in enumerate(visible_entries(manifest))}
    given: Sequence[Any] = error.extra.get("missing") or ()
    # In the order the form shows them, which is the order a person reads them in.
    missing = sorted((str(k) for k in given), key=lambda k: (order.get(k, len(order)), k))
    for key in missing:
        entry = manifest.entry(key)
        found.fields[key] = f"{entry.name if entry else key} is required."
    if missing:
        labels = [found.fields[k].removesuffix(" is required.") for k in missing]
        found.summary = f"Missing: {', '.join(labels)}."
    if "providerMessage" in error.extra:
        provider = error.extra.get("providerMessage") or ""
        code = error.extra.get("providerCode")
        detail = f"{manifest.vendor_name} says: {provider}" if provider else error.message
        if code is not None:
            detail += f" (code {code})"
        found.fields[manifest.auth.keys[-1]] = f"{error.message}. {detail}"
    elif error.status in (502, 504):
        found.fields[manifest.base_url_key] = error.message
    elif mentioned := _mentioned_key(shown, error.message):
        found.fields[mentioned] = error.message
    elif error.message.startswith(f"{NAME_FIELD} "):
        found.fields[NAME_FIELD] = error.message
    elif error.message.startswith(f"{TAGS_FIELD}["):
        found.fields[TAGS_FIELD] = error.message
    return found


def errors_from_validation(error: ValidationError) -> FormErrors:
    found = FormErrors(summary=describe_validation(error.errors()))
    for detail in error.errors():
        location = detail.get("loc", ())
        if location and location[0] in (NAME_FIELD, TAGS_FIELD):
            found.fields[str(location[0])] = str(detail.get("msg", "invalid"))
    return found


@dataclass(frozen=True)
class FormState:
    """What a form shows: entry values, name, tags (as typed) and errors."""

    values: Mapping[str, str | None]
    name: str = ""
    tags: str = ""
    errors: FormErrors = field(default_factory=FormErrors)


def resubmitted(manifest: Manifest, submitted: Submitted, errors: FormErrors) -> FormState:
    return FormState(
        values=shown_again(manifest, submitted),
        name=submitted.name,
        tags=", ".join(submitted.tags),
        errors=errors,
    )


def context(manifest: Manifest, state: FormState, *, editing: bool) -> dict[str, Any]:
    """The template variables of the authenticate and edit forms."""
    return {
        "fields": configuration_fields(manifest, state.values, state.errors, editing=editing),
        "name": state.name,
        "tags": state.tags,
        "errors": state.errors,
        "max_name": MAX_NAME_LENGTH,
    }
