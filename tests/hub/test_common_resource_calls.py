"""Hub calls on a common resource (issue 11 item 6; D36-D38) against the Twilio simulator:
canonical answers and bodies, CEQL rewritten and pushed down, paging, nulls, caching, trace
logs and a failing script."""

from __future__ import annotations

from typing import Any

from tests.conftest import Api
from tests.hub.conftest import HubInstance, TwilioAccount, create_instance

HUB = "/elements/api-v2/hubs/messaging"
TO, FROM = "+15558675310", "+15017122661"
MY_MESSAGES = {
    "fields": [
        {"path": "id", "type": "string"},
        {"path": "to", "type": "string"},
        {"path": "from", "type": "string"},
        {"path": "text", "type": "string"},
        {"path": "status", "type": "string"},
        {"path": "sentAt", "type": "date"},
    ]
}


def _field(path: str, vendor_path: str, write: str | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {"path": path, "vendorPath": vendor_path}
    if write is not None:
        found["vendorWritePath"] = write
    return found


def transformation(script: str | None = None) -> dict[str, Any]:
    """The background file's ``myMessages`` for Twilio, with the write names (D37)."""
    body: dict[str, Any] = {
        "vendorName": "messages",
        "fields": [
            _field("id", "sid"),
            _field("to", "to", "To"),
            _field("from", "from", "From"),
            _field("text", "body", "Body"),
            _field("status", "status"),
            _field("sentAt", "date_sent"),
        ],
        "configuration": [
            {"type": "passThrough", "properties": {"fromVendor": False, "toVendor": False}}
        ],
    }
    if script is not None:
        body["script"] = {"body": script}
    return body


async def map_messages(api: Api, instance: HubInstance, script: str | None = None) -> None:
    made = await api.post("organizations/objects/myMessages/definitions", json=MY_MESSAGES)
    assert made.status == 200, made.text
    saved = await api.post(
        f"instances/{instance.id}/transformations/myMessages", json=transformation(script)
    )
    assert saved.status == 200, saved.text


async def send(instance: HubInstance, to: str, body: str) -> str:
    sent = await instance.hub.post(f"{HUB}/messages", json={"To": to, "From": FROM, "Body": body})
    assert sent.status == 200, sent.text
    sid: str = sent.body["sid"]
    return sid


async def test_where_pushes_to_down_and_filters_text_here(api: Api, instance: HubInstance) -> None:
    await map_messages(api, instance)
    wanted = await send(instance, TO, "oh hi there")
    await send(instance, TO, "goodbye")
    await send(instance, "+15550000000", "hi elsewhere")
    before = len(instance.account.requests())
    listed = await instance.hub.get(
        f"{HUB}/myMessages", params={"where": f"text LIKE '%hi%' AND to='{TO}'"}
    )
    assert listed.status == 200, listed.text
    assert [m["id"] for m in listed.body] == [wanted]
    # Only the canonical fields; sentAt is null while queued and nulls are dropped (D24).
    assert set(listed.body[0]) == {"id", "to", "from", "text", "status"}
    assert listed.body[0]["text"] == "oh hi there"
    assert listed.headers["Elements-Returned-Count"] == "1"
    [vendor] = instance.account.requests()[before:]
    assert vendor.path.endswith("/Messages.json")
    assert vendor.query["To"] == TO
    assert not any(k.casefold() == "body" for k in vendor.query)


async def test_a_canonical_post_reaches_twilio_as_its_form_fields(
    api: Api, instance: HubInstance
) -> None:
    await map_messages(api, instance)
    sent = await instance.hub.post(
        f"{HUB}/myMessages", json={"to": TO, "from": FROM, "text": "mapped hello"}
    )
    assert sent.status == 200, sent.text
    request = instance.account.requests()[-1]
    assert request.method == "POST"
    assert request.form == {"To": TO, "From": FROM, "Body": "mapped hello"}
    assert sent.body["text"] == "mapped hello"
    assert sent.body["id"].startswith("SM")
    assert "sid" not in sent.body
    one = await instance.hub.get(f"{HUB}/myMessages/{sent.body['id']}")
    assert one.status == 200
    assert (one.body["id"], one.body["to"]) == (sent.body["id"], TO)
    gone = await instance.hub.delete(f"{HUB}/myMessages/{sent.body['id']}")
    assert (gone.status, gone.body) == (200, {})


async def test_unknown_field_order_and_fields(api: Api, instance: HubInstance) -> None:
    await map_messages(api, instance)
    for text in ("b", "c", "a"):
        await send(instance, TO, text)
    unknown = await instance.hub.get(f"{HUB}/myMessages", params={"where": "colour = 'red'"})
    assert unknown.status == 400
    assert "colour" in unknown.body["message"]
    assert unknown.body["requestId"]
    bad_order = await instance.hub.get(f"{HUB}/myMessages", params={"orderBy": "shade"})
    assert bad_order.status == 400
    assert "shade" in bad_order.body["message"]
    ordered = await instance.hub.get(
        f"{HUB}/myMessages", params={"orderBy": "text desc", "fields": "text"}
    )
    assert ordered.status == 200, ordered.text
    assert ordered.body == [{"text": "c"}, {"text": "b"}, {"text": "a"}]


async def test_paging_runs_through_the_vendor(api: Api, instance: HubInstance) -> None:
    await map_messages(api, instance)
    sent = {await send(instance, TO, f"m{n}") for n in range(5)}
    first = await instance.hub.get(f"{HUB}/myMessages", params={"pageSize": "2"})
    assert first.status == 200, first.text
    assert len(first.body) == 2
    token = first.headers["Elements-Next-Page-Token"]
    seen = [m["id"] for m in first.body]
    while token:
        more = await instance.hub.get(
            f"{HUB}/myMessages", params={"pageSize": "2", "nextPage": token}
        )
        assert more.status == 200, more.text
        seen += [m["id"] for m in more.body]
        token = more.headers.get("Elements-Next-Page-Token", "")
    assert sorted(seen) == sorted(sent)
    # Sorted here: Hubgate pages the whole list itself, with its own tokens.
    by_text = await instance.hub.get(
        f"{HUB}/myMessages", params={"pageSize": "3", "orderBy": "text"}
    )
    assert [m["text"] for m in by_text.body] == ["m0", "m1", "m2"]
    rest = await instance.hub.get(
        f"{HUB}/myMessages",
        params={
            "pageSize": "3",
            "orderBy": "text",
            "nextPage": by_text.headers["Elements-Next-Page-Token"],
        },
    )
    assert [m["text"] for m in rest.body] == ["m3", "m4"]
    assert "Elements-Next-Page-Token" not in rest.headers


async def test_a_failing_script_answers_mapped_objects_with_elements_error(
    api: Api, instance: HubInstance
) -> None:
    await map_messages(api, instance, script="throw new Error('no way');")
    await send(instance, TO, "scripted")
    listed = await instance.hub.get(f"{HUB}/myMessages")
    assert listed.status == 200, listed.text
    assert listed.body[0]["text"] == "scripted"
    assert "transformation script failed" in listed.headers["Elements-Error"]
    assert "no way" in listed.headers["Elements-Error"]


async def test_a_script_adds_a_field_and_queries_on_it_run_here(
    api: Api, instance: HubInstance
) -> None:
    script = (
        "transformedObject.loud = transformedObject.text.toUpperCase(); done(transformedObject);"
    )
    await map_messages(api, instance, script=script)
    grown = await api.put(
        "organizations/objects/myMessages/definitions",
        json={"fields": [*MY_MESSAGES["fields"], {"path": "loud", "type": "string"}]},
    )
    assert grown.status == 200, grown.text
    await send(instance, TO, "quiet")
    await send(instance, TO, "other")
    listed = await instance.hub.get(f"{HUB}/myMessages", params={"where": "loud = 'QUIET'"})
    assert listed.status == 200, listed.text
    assert [m["loud"] for m in listed.body] == ["QUIET"]
    assert "Elements-Error" not in listed.headers


async def test_nulls_caching_and_trace_logs(api: Api, twilio: TwilioAccount) -> None:
    instance = await create_instance(
        api,
        twilio,
        configuration={
            **twilio.instance_body()["configuration"],
            "filter.response.nulls": "false",
        },
        cachingEnabled=True,
        cacheTimeToLive=600,
        maxCacheSize=10,
        traceLoggingEnabled=True,
    )
    await map_messages(api, instance)
    await send(instance, TO, "cached")
    first = await instance.hub.get(f"{HUB}/myMessages")
    assert first.status == 200, first.text
    before = len(instance.account.requests())
    again = await instance.hub.get(f"{HUB}/myMessages")
    assert again.body == first.body
    assert len(instance.account.requests()) == before  # answered from the cache (D26)
    # Twilio's sent date is null while queued: kept, since nulls are not filtered here.
    assert "sentAt" in first.body[0]
    assert first.body[0]["sentAt"] is None
    logs = await api.get(f"instances/{instance.id}/logs")
    assert logs.status == 200
    assert any("/myMessages" in entry["path"] for entry in logs.body), logs.body
