"""One vendor session per resolved instance, kept between calls (D480): what each call sends
is still exactly the instance's, through the egress client's transport seam."""

from __future__ import annotations

import base64
import dataclasses
import gc

from hubgate.elements.sdk import HubCall
from hubgate.hub import service
from hubgate.hub.vendor import VendorSession
from tests.elements.test_vendor_session import VENDOR, FakeVendor, answer, runtime_with, twilio


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


async def test_calls_on_one_resolved_instance_share_its_session_and_send_their_own_urls() -> None:
    vendor = FakeVendor(*(answer(200, {"sid": sid}) for sid in ("SM1", "SM2", "SM1")))
    runtime = runtime_with(vendor)
    instance = twilio()
    session = VendorSession.of(runtime.egress, runtime.settings, instance)
    assert VendorSession.of(runtime.egress, runtime.settings, instance) is session
    for sid in ("SM1", "SM2", "SM1"):
        fetched = await service.execute(runtime, instance, HubCall("GET", ("messages", sid)))
        assert fetched.body == {"sid": sid}
    assert [r.url for r in vendor.sent] == [
        f"{VENDOR}/AC1/Messages/SM1.json",
        f"{VENDOR}/AC1/Messages/SM2.json",
        f"{VENDOR}/AC1/Messages/SM1.json",
    ]
    assert {r.headers["Authorization"] for r in vendor.sent} == {basic("AC1", "tok")}


async def test_a_changed_instance_gets_a_session_of_its_own() -> None:
    # What the token cache holds after an update or an OAuth refresh is a new resolved
    # instance: its calls carry its own credentials and base URL, not the kept session's.
    vendor = FakeVendor(answer(200, {"sid": "SM1"}), answer(200, {"sid": "SM1"}))
    runtime = runtime_with(vendor)
    before = twilio()
    await service.execute(runtime, before, HubCall("GET", ("messages", "SM1")))
    config = {**before.config, "password": "rotated", "base.url": f"{VENDOR}/v2"}
    after = dataclasses.replace(before, config=config)
    assert VendorSession.of(runtime.egress, runtime.settings, after) is not (
        VendorSession.of(runtime.egress, runtime.settings, before)
    )
    await service.execute(runtime, after, HubCall("GET", ("messages", "SM1")))
    first, second = vendor.sent
    assert first.headers["Authorization"] == basic("AC1", "tok")
    assert second.headers["Authorization"] == basic("AC1", "rotated")
    assert second.url == f"{VENDOR}/v2/AC1/Messages/SM1.json"


def test_a_session_fills_each_path_with_its_own_values() -> None:
    runtime = runtime_with(FakeVendor())
    session = VendorSession.of(runtime.egress, runtime.settings, twilio())
    path = "/{username}/Messages/{sid}.json"
    assert session.url(path, {"sid": "SM1"}) == f"{VENDOR}/AC1/Messages/SM1.json"
    assert session.url(path, {"sid": "a/b"}) == f"{VENDOR}/AC1/Messages/a%2Fb.json"
    assert session.url(path, {"sid": "SM1", "username": "AC2"}) == (
        f"{VENDOR}/AC2/Messages/SM1.json"
    )
    assert session.url(path, {"sid": "SM1"}) == f"{VENDOR}/AC1/Messages/SM1.json"


def test_a_session_goes_with_its_resolved_instance() -> None:
    # Its auth headers hold decrypted credentials: once the token cache lets the resolved
    # instance go, nothing else may keep them.
    runtime = runtime_with(FakeVendor())
    instance = twilio()
    config = instance.config
    VendorSession.of(runtime.egress, runtime.settings, instance)
    del instance
    gc.collect()
    assert not [o for o in gc.get_objects() if isinstance(o, VendorSession) and o.config is config]
