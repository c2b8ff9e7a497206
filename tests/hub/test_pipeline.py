"""The pipeline end to end over real HTTP against the Twilio simulator (issue 3, "must show")."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.hub.conftest import HubInstance

MESSAGES = "/elements/api-v2/hubs/messaging/messages"


async def test_post_message_sends_a_form_to_twilio_and_returns_the_message(
    instance: HubInstance,
) -> None:
    sent = {"To": "+15558675310", "From": "+15017122661", "Body": "hi"}
    response = await instance.hub.post(MESSAGES, json=sent)
    assert response.status == 200, response.text
    assert response.body["body"] == "hi"
    assert response.body["sid"].startswith("SM")
    assert response.headers["elements-element-instance-id"] == str(instance.id)
    posted = [r for r in instance.account.requests() if r.method == "POST"]
    assert len(posted) == 1
    assert posted[0].path == f"/2010-04-01/Accounts/{instance.account.sid}/Messages.json"
    assert posted[0].form == sent
    # Nulls are removed by default (D24): a new message has no error_code yet.
    assert "error_code" not in response.body
    stored = instance.account.sim.message(response.body["sid"])
    assert stored["to"] == "+15558675310"


async def test_arrays_become_repeated_form_keys(instance: HubInstance) -> None:
    urls = ["https://example.com/a.png", "https://example.com/b.png"]
    body = {"To": "+15558675310", "From": "+15017122661", "MediaUrl": urls, "ProvideFeedback": True}
    response = await instance.hub.post(MESSAGES, json=body)
    assert response.status == 200, response.text
    form = instance.account.requests()[-1].form
    assert form["MediaUrl"] == urls
    assert form["ProvideFeedback"] == "true"
    media = await instance.hub.get(f"{MESSAGES}/{response.body['sid']}/media")
    assert media.status == 200
    assert len(media.body) == 2
    assert media.headers["Elements-Returned-Count"] == "2"


async def test_where_pushes_to_and_date_sent_and_pages_with_tokens(instance: HubInstance) -> None:
    sim, sid = instance.account.sim, instance.account.sid
    expected = set()
    for day in range(1, 6):
        at = datetime(2026, 1, day, 12, tzinfo=UTC)
        message = sim.add_inbound_message(
            "+15017122661", "+15558675310", f"m{day}", account_sid=sid, at=at
        )
        expected.add(message["sid"])
    sim.add_inbound_message("+15017122661", "+15550000000", "other", account_sid=sid, at=at)
    sim.add_inbound_message(
        "+15017122661",
        "+15558675310",
        "old",
        account_sid=sid,
        at=datetime(2025, 12, 31, 23, tzinfo=UTC),
    )
    where = "to='+15558675310' AND DateSent>='2026-01-01'"
    response = await instance.hub.get(MESSAGES, params={"where": where, "pageSize": "2"})
    assert response.status == 200, response.text
    first = instance.account.requests()[-1]
    assert first.query["To"] == "+15558675310"
    assert first.query["DateSent>"] == "2026-01-01T00:00:00Z"
    assert first.query["PageSize"] == "2"
    seen = [m["sid"] for m in response.body]
    assert response.headers["Elements-Returned-Count"] == "2"
    token = response.headers.get("Elements-Next-Page-Token")
    pages = 1
    while token:
        response = await instance.hub.get(
            MESSAGES, params={"where": where, "pageSize": "2", "nextPage": token}
        )
        assert response.status == 200, response.text
        seen.extend(m["sid"] for m in response.body)
        token = response.headers.get("Elements-Next-Page-Token")
        pages += 1
    assert pages == 3
    assert sorted(seen) == sorted(expected)  # every record exactly once
    assert len(seen) == len(set(seen))


async def test_like_is_evaluated_locally(instance: HubInstance) -> None:
    sim, sid = instance.account.sim, instance.account.sid
    hit = sim.add_inbound_message("+15017122661", "+15558675310", "oh HI there", account_sid=sid)
    sim.add_inbound_message("+15017122661", "+15558675310", "bye", account_sid=sid)
    response = await instance.hub.get(MESSAGES, params={"where": "body LIKE '%hi%'"})
    assert response.status == 200, response.text
    assert [m["sid"] for m in response.body] == [hit["sid"]]
    sent = instance.account.requests()[-1].query
    assert not any(key.lower().startswith("body") for key in sent)


async def test_bad_where_is_400_naming_the_position(instance: HubInstance) -> None:
    response = await instance.hub.get(MESSAGES, params={"where": "to="})
    assert response.status == 400
    assert "position 3" in response.body["message"]
    assert response.body["position"] == 3
    assert len(response.body["requestId"]) == 24
