"""The connector SDK's boundary (D270) and its vendor-webhook hook (D271)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlencode

import pytest
from twilio.request_validator import RequestValidator

import hubgate.elements
from hubgate.elements.registry import discover
from hubgate.elements.sdk import VendorRequest, WebhookRefusedError
from hubgate.elements.twiliov2 import element as twilio
from hubgate.kit.errors import HubgateError

ELEMENTS = Path(hubgate.elements.__file__).parent
FORBIDDEN = ("hubgate.hub", "hubgate.events", "hubgate.instances")
# What a connector may import of Hubgate: the SDK, the manifest model, the kit, its own folder.
ALLOWED = ("hubgate.elements.sdk", "hubgate.elements.manifest", "hubgate.kit")


def _hubgate_imports(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
    return [name for name in names if name.split(".")[0] == "hubgate"]


def _connector_folders() -> list[Path]:
    return sorted(p for p in ELEMENTS.iterdir() if (p / "__init__.py").is_file())


def test_the_walk_finds_the_connector_folders() -> None:
    # Guards the parametrized check below against passing by finding nothing to walk.
    assert "twiliov2" in [p.name for p in _connector_folders()]


@pytest.mark.parametrize("folder", _connector_folders(), ids=lambda p: p.name)
def test_a_connector_imports_only_the_sdk_the_manifest_the_kit_and_itself(folder: Path) -> None:
    own = f"hubgate.elements.{folder.name}"
    for source in sorted(folder.rglob("*.py")):
        for name in _hubgate_imports(source):
            allowed = name == own or name.startswith(own + ".") or name.startswith(ALLOWED)
            assert allowed, f"{source.relative_to(ELEMENTS)} imports {name}"


def test_the_sdk_and_the_registry_import_no_pipeline_package() -> None:
    for module in ("sdk.py", "manifest.py", "registry.py"):
        for name in _hubgate_imports(ELEMENTS / module):
            assert not name.startswith(FORBIDDEN), f"{module} imports {name}"


def test_a_connector_loads_with_the_hub_events_and_instances_packages_blocked() -> None:
    # A fresh interpreter, so that nothing this test session imported hides a cycle.
    program = f"""
import sys
from importlib.abc import MetaPathFinder

class Block(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.startswith({FORBIDDEN!r}):
            raise ImportError("blocked: " + name)
        return None

sys.meta_path.insert(0, Block())
from hubgate.elements.registry import discover
from hubgate.elements.twiliov2 import element
assert discover().get("twiliov2") is element
loaded = sorted(m for m in sys.modules if m.startswith({FORBIDDEN!r}))
assert not loaded, loaded
print("ok", element.key)
"""
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok twiliov2"


def test_the_built_in_element_is_registered_by_its_entry_point() -> None:
    assert discover().get("twiliov2") is twilio


# --- the vendor-webhook hook: the raw request in, the verified changes and the answer out ---

URL = "https://hubgate.example.test/elements/api-v2/events/twiliov2/MQ"
TOKEN = "auth-token-of-the-instance"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def _signed(params: dict[str, str], token: str = TOKEN, url: str = URL) -> VendorRequest:
    signature = RequestValidator(token).compute_signature(url, params)
    headers = {"content-type": FORM["Content-Type"], "x-twilio-signature": signature}
    return VendorRequest(url, headers, urlencode(params).encode())


def test_a_signed_webhook_gives_its_changes_and_twilios_acknowledgement() -> None:
    hook = twilio.hooks.webhook
    assert hook is not None
    params = {"MessageSid": "SM1", "MessageStatus": "delivered", "To": "+15005550006"}
    answer = hook.receive(_signed(params), {"password": TOKEN})
    assert [(c.object_type, c.object_id, c.event_type) for c in answer.changes] == [
        ("messages", "SM1", "UPDATED")
    ]
    assert answer.changes[0].raw == params
    assert answer.status == 200
    assert answer.media_type == "application/xml"
    assert answer.body.endswith(b"<Response></Response>")


def test_a_tampered_or_foreign_webhook_is_refused() -> None:
    hook = twilio.hooks.webhook
    assert hook is not None
    params = {"MessageSid": "SM1", "MessageStatus": "delivered"}
    good = _signed(params)
    tampered = VendorRequest(good.url, good.headers, good.body.replace(b"SM1", b"SM2"))
    unsigned = VendorRequest(good.url, {"content-type": FORM["Content-Type"]}, good.body)
    other_url = VendorRequest(URL.replace("MQ", "Mg"), good.headers, good.body)
    shared_key = VendorRequest(
        good.url,
        {**good.headers, "x-twilio-webhooks-signature-settings": "HMAC_SHA256"},
        good.body,
    )
    for request in (tampered, unsigned, other_url, shared_key):
        with pytest.raises(WebhookRefusedError, match="signature does not match"):
            hook.receive(request, {"password": TOKEN})
    with pytest.raises(WebhookRefusedError):
        hook.receive(good, {"password": "another-token"})
    with pytest.raises(WebhookRefusedError):
        hook.receive(good, {"password": None})


def test_a_malformed_form_body_is_bad_input() -> None:
    hook = twilio.hooks.webhook
    assert hook is not None
    request = VendorRequest(URL, {"content-type": FORM["Content-Type"]}, b"\xff\xfe=1")
    with pytest.raises(HubgateError) as raised:
        hook.receive(request, {"password": TOKEN})
    assert raised.value.status == 400
