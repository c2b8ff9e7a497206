"""CEQL names only fields the resource has, and dates that are dates (issue 9, item 13)."""

from __future__ import annotations

import pytest

from tests.hub.conftest import HubInstance

MESSAGES = "/elements/api-v2/hubs/messaging/messages"


@pytest.mark.parametrize(
    ("where", "named"),
    [
        ("Nonexistent='x'", "'Nonexistent'"),
        ("to='+15558675310' AND colour='red'", "'colour'"),
        ("NOT (shoe_size > 3)", "'shoe_size'"),
        ("DateSent>='not-a-date'", "'not-a-date'"),
        ("DateSent='2026-13-45'", "'2026-13-45'"),
        ("date_created IN ('2026-01-01', 'soon')", "'soon'"),
        ("DateSent > 5", "5"),
    ],
)
async def test_unknown_field_or_bad_date_is_400_naming_it(
    instance: HubInstance, where: str, named: str
) -> None:
    response = await instance.hub.get(MESSAGES, params={"where": where})
    assert response.status == 400, response.text
    assert named in response.body["message"]
    assert len(response.body["requestId"]) == 24
    assert response.headers["Elements-Request-Id"] == response.body["requestId"]


async def test_unknown_order_by_field_is_400(instance: HubInstance) -> None:
    response = await instance.hub.get(MESSAGES, params={"orderBy": "colour desc"})
    assert response.status == 400, response.text
    assert "'colour'" in response.body["message"]


async def test_declared_fields_in_any_spelling_still_work(instance: HubInstance) -> None:
    sent = {"To": "+15558675310", "From": "+15017122661", "Body": "hello"}
    created = await instance.hub.post(MESSAGES, json=sent)
    assert created.status == 200, created.text
    # Twilio stamps date_sent once the carrier takes the message.
    instance.account.sim.set_message_status(created.body["sid"], "delivered")
    day = created.body["date_created"]
    for where in (
        "To='+15558675310' AND DateSent>='2020-01-01'",
        "to='+15558675310' AND datesent>='2020-01-01T00:00:00Z'",
        "TO='+15558675310' AND date_sent>='2020-01-01'",
        f"date_created='{day}' AND body LIKE 'hel%'",
        "subresource_uris.media IS NOT NULL AND Body='hello'",
    ):
        found = await instance.hub.get(MESSAGES, params={"where": where})
        assert found.status == 200, (where, found.text)
        assert [m["sid"] for m in found.body] == [created.body["sid"]], where


async def test_vendor_filters_that_are_not_response_fields_are_accepted(
    instance: HubInstance,
) -> None:
    # Twilio filters numbers by SmsEnabled, which no number object carries as such.
    numbers = "/elements/api-v2/hubs/messaging/numbers"
    found = await instance.hub.get(
        numbers, params={"where": "SmsEnabled='true'", "countryCode": "US", "type": "Local"}
    )
    assert found.status == 200, found.text
