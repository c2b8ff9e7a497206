"""Paging details (D22), nulls (D24), caching (D26), trace and audit logs (D27)."""

from __future__ import annotations

import base64
import json

from tests.conftest import Api, TwilioSimulator
from tests.hub.conftest import HubInstance, TwilioAccount, create_instance

MESSAGES = "/elements/api-v2/hubs/messaging/messages"


def _add(instance: HubInstance, count: int) -> list[str]:
    sim, sid = instance.account.sim, instance.account.sid
    return [
        sim.add_inbound_message("+15017122661", "+15558675310", f"p{i}", account_sid=sid)["sid"]
        for i in range(count)
    ]


async def test_page_maps_to_twilio_page_and_size_is_capped(instance: HubInstance) -> None:
    made = _add(instance, 5)
    second = await instance.hub.get(MESSAGES, params={"page": "2", "pageSize": "2"})
    assert second.status == 200
    query = instance.account.requests()[-1].query
    assert (query["Page"], query["PageSize"]) == ("1", "2")
    first = await instance.hub.get(MESSAGES, params={"page": "1", "pageSize": "2"})
    both = await instance.hub.get(MESSAGES, params={"page": "1", "pageSize": "4"})
    assert [m["sid"] for m in first.body + second.body] == [m["sid"] for m in both.body]
    await instance.hub.get(MESSAGES)
    assert instance.account.requests()[-1].query["PageSize"] == "100"  # 200 capped at max
    assert len(made) == 5
    assert (await instance.hub.get(MESSAGES, params={"page": "0"})).status == 400
    assert (await instance.hub.get(MESSAGES, params={"pageSize": "x"})).status == 400


async def test_order_by_and_fields_are_applied_by_hubgate(instance: HubInstance) -> None:
    _add(instance, 5)
    ordered = await instance.hub.get(
        MESSAGES, params={"orderBy": "body desc", "fields": "sid,body", "pageSize": "3"}
    )
    assert ordered.status == 200, ordered.text
    assert [m["body"] for m in ordered.body] == ["p4", "p3", "p2"]
    assert all(set(m) == {"sid", "body"} for m in ordered.body)
    token = ordered.headers["Elements-Next-Page-Token"]
    rest = await instance.hub.get(
        MESSAGES, params={"orderBy": "body desc", "fields": "sid,body", "nextPage": token}
    )
    assert [m["body"] for m in rest.body] == ["p1", "p0"]
    assert "Elements-Next-Page-Token" not in rest.headers
    bad = await instance.hub.get(MESSAGES, params={"orderBy": "body sideways"})
    assert bad.status == 400
    assert "position" in bad.body["message"]


async def test_forged_or_foreign_tokens_are_400(
    api: Api, instance: HubInstance, twilio: TwilioAccount, sim: TwilioSimulator
) -> None:
    _add(instance, 3)
    first = await instance.hub.get(MESSAGES, params={"pageSize": "1"})
    token = first.headers["Elements-Next-Page-Token"]
    payload, mac = token.split(".")
    raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    forged_url = json.loads(raw)["u"].replace("PageSize=1", "PageSize=2")
    forged = base64.urlsafe_b64encode(json.dumps({"u": forged_url}).encode()).decode()
    for bad in (f"{forged.rstrip('=')}.{mac}", "garbage", token + "x", f"{payload}."):
        response = await instance.hub.get(MESSAGES, params={"nextPage": bad})
        assert response.status == 400, bad
    other_account = TwilioAccount(sim, *sim.add_account())
    other = await create_instance(api, other_account)
    foreign = await other.hub.get(MESSAGES, params={"nextPage": token})
    assert foreign.status == 400


async def test_nulls_are_removed_at_every_depth_unless_configured(
    api: Api, twilio: TwilioAccount
) -> None:
    keep = await create_instance(
        api,
        twilio,
        configuration={**twilio.instance_body()["configuration"], "filter.response.nulls": "false"},
    )
    twilio.sim.add_inbound_message("+15017122661", "+15558675310", "n", account_sid=twilio.sid)
    kept = await keep.hub.get(MESSAGES)
    assert "error_code" in kept.body[0]
    assert kept.body[0]["error_code"] is None
    removing = await create_instance(api, twilio)
    numbers = await removing.hub.get(
        "/elements/api-v2/hubs/messaging/numbers", params={"countryCode": "GB", "type": "Mobile"}
    )
    # Nested members go too: GB mobile numbers have no region, locality or lata.
    assert numbers.status == 200
    assert all(None not in n.values() for n in numbers.body)
    assert "region" not in numbers.body[0]


async def test_cached_gets_until_a_write(api: Api, twilio: TwilioAccount) -> None:
    cached = await create_instance(
        api, twilio, cachingEnabled=True, cacheTimeToLive=60, maxCacheSize=10
    )
    first = await cached.hub.get("/elements/api-v2/hubs/messaging/accounts")
    calls = len(twilio.requests())
    again = await cached.hub.get("/elements/api-v2/hubs/messaging/accounts")
    assert again.body == first.body
    assert len(twilio.requests()) == calls
    await cached.hub.post(MESSAGES, json={"To": "+15558675310", "From": "+1501", "Body": "w"})
    await cached.hub.get("/elements/api-v2/hubs/messaging/accounts")
    assert len(twilio.requests()) == calls + 2


async def test_trace_logs_are_kept_redacted_and_newest_first(
    api: Api, twilio: TwilioAccount
) -> None:
    traced = await create_instance(api, twilio, traceLoggingEnabled=True)
    await traced.hub.get("/elements/api-v2/hubs/messaging/accounts")
    await traced.hub.post(MESSAGES, json={"To": "+15558675310", "From": "+1501", "Body": "t"})
    await traced.hub.get(f"{MESSAGES}/SM00000000000000000000000000000000")
    logs = await api.get(f"instances/{traced.id}/logs")
    assert logs.status == 200, logs.text
    assert [e["status"] for e in logs.body] == [404, 200, 200]
    assert logs.body[1]["method"] == "POST"
    assert ["Body", "t"] in logs.body[1]["requestBody"]
    assert logs.body[1]["vendorUrl"].endswith("/Messages.json")
    account = logs.body[2]["responseBody"][0]
    assert account["auth_token"] == "********"  # the manifest marks it secret
    assert twilio.token not in json.dumps(logs.body)
    assert logs.headers["Elements-Returned-Count"] == "3"
    paged = await api.get(f"instances/{traced.id}/logs", params={"page": "2", "pageSize": "2"})
    assert [e["status"] for e in paged.body] == [200]


async def test_audit_log_records_platform_calls(api: Api, twilio: TwilioAccount) -> None:
    created = await create_instance(api, twilio)
    await api.get(f"instances/{created.id}")
    await created.hub.get("/elements/api-v2/hubs/messaging/accounts")  # a hub call: not audited
    audit = await api.get("audit-logs")
    assert audit.status == 200
    entries = [(e["method"], e["path"]) for e in audit.body]
    assert entries[:2] == [
        ("GET", f"/elements/api-v2/instances/{created.id}"),
        ("POST", "/elements/api-v2/instances"),
    ]
    assert all("hubs" not in path for _, path in entries)
