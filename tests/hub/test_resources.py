"""Every Twilio v2 resource of D21 through the one pipeline, against the simulator."""

from __future__ import annotations

from datetime import UTC, datetime

from hubgate.hub.service import fetch_all
from hubgate.instances.models import Instance
from tests.conftest import RunningHubgate
from tests.hub.conftest import HubInstance

HUB = "/elements/api-v2/hubs/messaging"


async def test_message_fetch_update_delete(instance: HubInstance) -> None:
    created = await instance.hub.post(
        f"{HUB}/messages", json={"To": "+15558675310", "From": "+15017122661", "Body": "secret"}
    )
    sid = created.body["sid"]
    fetched = await instance.hub.get(f"{HUB}/messages/{sid}")
    assert fetched.status == 200
    assert fetched.body["sid"] == sid
    redacted = await instance.hub.patch(f"{HUB}/messages/{sid}", json={"Body": ""})
    assert redacted.status == 200, redacted.text
    assert instance.account.requests()[-1].method == "POST"  # Twilio updates with a POST
    deleted = await instance.hub.delete(f"{HUB}/messages/{sid}")
    assert (deleted.status, deleted.body) == (200, {})
    missing = await instance.hub.get(f"{HUB}/messages/{sid}")
    assert missing.status == 404
    assert missing.body["providerCode"] == 20404
    assert missing.body["providerStatus"] == 404
    assert missing.body["providerMessage"]


async def test_media_fetch_and_delete(instance: HubInstance) -> None:
    created = await instance.hub.post(
        f"{HUB}/messages",
        json={"To": "+15558675310", "From": "+15017122661", "MediaUrl": "https://e.com/x.png"},
    )
    media = await instance.hub.get(f"{HUB}/messages/{created.body['sid']}/media")
    media_sid = media.body[0]["sid"]
    one = await instance.hub.get(f"{HUB}/messages/{created.body['sid']}/media/{media_sid}")
    assert one.body["parent_sid"] == created.body["sid"]
    gone = await instance.hub.delete(f"{HUB}/messages/{created.body['sid']}/media/{media_sid}")
    assert gone.status == 200


async def test_accounts(instance: HubInstance) -> None:
    listed = await instance.hub.get(f"{HUB}/accounts")
    assert [a["sid"] for a in listed.body] == [instance.account.sid]
    one = await instance.hub.get(f"{HUB}/accounts/{instance.account.sid}")
    assert one.body["status"] == "active"
    named = await instance.hub.get(
        f"{HUB}/accounts", params={"where": "FriendlyName='nobody' AND Status='active'"}
    )
    assert named.body == []
    assert instance.account.requests()[-1].query["FriendlyName"] == "nobody"


async def test_addresses_crud(instance: HubInstance) -> None:
    body = {
        "CustomerName": "Jack",
        "FriendlyName": "Jack",
        "Street": "1 Main St",
        "City": "Springfield",
        "Region": "IL",
        "PostalCode": "62701",
        "IsoCountry": "US",
    }
    created = await instance.hub.post(f"{HUB}/addresses", json=body)
    assert created.status == 200, created.text
    sid = created.body["sid"]
    patched = await instance.hub.patch(f"{HUB}/addresses/{sid}", json={"City": "Shelbyville"})
    assert patched.body["city"] == "Shelbyville"
    listed = await instance.hub.get(f"{HUB}/addresses", params={"where": "FriendlyName='Jack'"})
    assert [a["sid"] for a in listed.body] == [sid]
    assert (await instance.hub.get(f"{HUB}/addresses/{sid}")).body["customer_name"] == "Jack"
    assert (await instance.hub.delete(f"{HUB}/addresses/{sid}")).status == 200
    assert (await instance.hub.get(f"{HUB}/addresses")).body == []


async def test_numbers_default_to_us_local_and_can_be_bought(instance: HubInstance) -> None:
    available = await instance.hub.get(f"{HUB}/numbers", params={"pageSize": "5"})
    assert available.status == 200, available.text
    assert len(available.body) == 5
    assert {n["iso_country"] for n in available.body} == {"US"}
    sent = instance.account.requests()[-1]
    assert sent.path.endswith("/AvailablePhoneNumbers/US/Local.json")
    mms = await instance.hub.get(
        f"{HUB}/numbers",
        params={"countryCode": "GB", "type": "Mobile", "where": "SmsEnabled='true'"},
    )
    assert mms.status == 200
    assert instance.account.requests()[-1].query == {"SmsEnabled": "true"}
    assert all(n["capabilities"]["SMS"] for n in mms.body)
    bought = await instance.hub.post(f"{HUB}/numbers", json={"AreaCode": "415"})
    assert bought.status == 200, bought.text
    assert bought.body["phone_number"].startswith("+1415")
    assert instance.account.requests()[-1].path.endswith("/IncomingPhoneNumbers.json")
    bad = await instance.hub.get(f"{HUB}/numbers", params={"type": "Satellite"})
    assert bad.status == 400


async def test_usage_country_codes_calls_and_ping(instance: HubInstance) -> None:
    usage = await instance.hub.get(f"{HUB}/usage", params={"where": "Category='totalprice'"})
    assert [u["category"] for u in usage.body] == ["totalprice"]
    countries = await instance.hub.get(f"{HUB}/countryCodes")
    assert {"US", "GB"} <= {c["country_code"] for c in countries.body}
    call = await instance.hub.post(
        f"{HUB}/calls",
        json={"To": "+15558675310", "From": "+15017122661", "Url": "https://e.com/twiml"},
    )
    assert call.status == 200, call.text
    sid = call.body["sid"]
    assert (await instance.hub.get(f"{HUB}/calls/{sid}")).body["sid"] == sid
    ended = await instance.hub.patch(f"{HUB}/calls/{sid}", json={"Status": "completed"})
    assert ended.status == 200, ended.text
    listed = await instance.hub.get(f"{HUB}/calls", params={"where": "to='+15558675310'"})
    assert [c["sid"] for c in listed.body] == [sid]
    assert (await instance.hub.delete(f"{HUB}/calls/{sid}")).status == 200
    ping = await instance.hub.get(f"{HUB}/ping")
    assert ping.body == {"endpoint": "twiliov2", "valid": True}
    assert instance.account.requests()[-1].path.endswith(f"/{instance.account.sid}.json")


async def test_any_hub_segment_and_unknown_resources(instance: HubInstance) -> None:
    same = await instance.hub.get("/elements/api-v2/hubs/anything/accounts")
    assert same.status == 200
    assert same.body[0]["sid"] == instance.account.sid
    assert (await instance.hub.get(f"{HUB}/nothing")).status == 404
    wrong = await instance.hub.put(f"{HUB}/messages", json={})
    assert wrong.status == 405
    # The catalog routes under /hubs keep working next to the hub calls.
    assert (await instance.hub.get("/elements/api-v2/hubs/messaging/elements")).status == 200


async def test_fetch_all_follows_every_page(hubgate: RunningHubgate, instance: HubInstance) -> None:
    sim, sid = instance.account.sim, instance.account.sid
    made = {
        sim.add_inbound_message("+15017122661", "+15558675310", f"n{i}", account_sid=sid)["sid"]
        for i in range(7)
    }
    runtime = hubgate.runtime
    changed = await instance.hub.patch(
        "/elements/api-v2/instances", json={"configuration": {"pagination.max": "3"}}
    )
    assert changed.status == 200, changed.text
    async with runtime.sessions() as session:
        row = await session.get(Instance, instance.id)
        assert row is not None
        records = await fetch_all(runtime, row, "/hubs/messaging/messages?where=body LIKE 'n%'")
    assert {r["sid"] for r in records} == made
    assert sum(1 for r in instance.account.requests() if r.path.endswith("Messages.json")) == 3
    limited = await fetch_all(runtime, row, "/hubs/messaging/messages", max_records=2)
    assert len(limited) == 2


async def test_fetch_all_can_take_the_vendors_day_filter_as_final(
    hubgate: RunningHubgate, instance: HubInstance
) -> None:
    sim, sid = instance.account.sim, instance.account.sid
    same_day = [
        sim.add_inbound_message("+1501", "+1555", "a", account_sid=sid, at=at)["sid"]
        for at in (datetime(2026, 3, 5, 1, tzinfo=UTC), datetime(2026, 3, 5, 7, 8, 9, tzinfo=UTC))
    ]
    sim.add_inbound_message(
        "+1501", "+1555", "b", account_sid=sid, at=datetime(2026, 3, 6, tzinfo=UTC)
    )
    url = "/hubs/messaging/messages?where=DateSent='2026-03-05T07:08:09Z'"
    async with hubgate.runtime.sessions() as session:
        row = await session.get(Instance, instance.id)
        assert row is not None
        whole_day = await fetch_all(hubgate.runtime, row, url, vendor_filters_final=True)
        exact = await fetch_all(hubgate.runtime, row, url)
    assert sorted(r["sid"] for r in whole_day) == sorted(same_day)
    assert [r["sid"] for r in exact] == [same_day[1]]
    assert instance.account.requests()[-1].query["DateSent"] == "2026-03-05T00:00:00Z"
