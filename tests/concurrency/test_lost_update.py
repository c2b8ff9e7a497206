"""Seven clients PATCH seven different configuration keys of one instance at the same moment
(issue 9, item 1): every key holds afterwards, whichever route wrote it.

The writers are the routes that merge configuration: PATCH by id, PATCH of one configuration
entry by id, and both again through the instance's Element token. Each round starts from a
fresh instance (every key at its default), so a lost update shows as a key back at its default.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sims.twilio_sim import TwilioSimulator
from tests.concurrency.conftest import Serving
from tests.conftest import Api, twilio_instance_body
from tests.logwatch import remember_secret
from tests.results import publish

ROUNDS = 20
CLIENTS = 7


def wanted(round_no: int) -> dict[str, str]:
    """Seven keys, each away from its default, with values that differ from round to round."""
    return {
        "pagination.max": str(10 + round_no),
        "pagination.page.startindex": "1",
        "event.notification.callback.url": f"http://127.0.0.1:9/round-{round_no}",
        "event.vendor.type": "webhook",
        "event.poller.refresh_interval": str(16 + round_no),
        "filter.response.nulls": "false",
        "event.poller.configuration": (
            f'{{"messages":{{"url":"/hubs/messaging/messages?r={round_no}","idField":"sid"}}}}'
        ),
    }


async def patch_one(
    api: Api, instance: dict[str, Any], entry_ids: dict[str, int], n: int, key: str, value: str
) -> int:
    """Client ``n``'s PATCH, through one of the four writing routes."""
    by_token = api.with_auth(f"Element {instance['token']}")
    route = n % 4
    if route == 0:
        answer = await api.patch(
            f"instances/{instance['id']}", json={"configuration": {key: value}}
        )
    elif route == 1:
        answer = await api.patch(
            f"instances/{instance['id']}/configuration/{entry_ids[key]}",
            json={"propertyValue": value},
        )
    elif route == 2:
        answer = await by_token.patch("instances", json={"configuration": {key: value}})
    else:
        answer = await by_token.patch(
            f"instances/configuration/{entry_ids[key]}", json={"propertyValue": value}
        )
    return answer.status


async def test_seven_concurrent_patches_of_different_keys_all_hold(
    serving: Serving, sim: TwilioSimulator
) -> None:
    api = serving.api
    patches_ok = 0
    keys_lost = 0
    lost_by_round: list[list[str]] = []
    statuses: list[int] = []
    for round_no in range(ROUNDS):
        created = await api.post("instances", json=twilio_instance_body(sim))
        assert created.status == 200, created.text
        instance = created.body
        remember_secret(instance["token"])
        entries = await api.get(f"instances/{instance['id']}/configuration")
        entry_ids = {e["key"]: e["id"] for e in entries.body}
        values = wanted(round_no)
        assert len(values) == CLIENTS
        answers = await asyncio.gather(
            *(
                patch_one(api, instance, entry_ids, n, key, value)
                for n, (key, value) in enumerate(values.items())
            )
        )
        statuses.extend(answers)
        patches_ok += answers.count(200)
        stored = (await api.get(f"instances/{instance['id']}")).body["configuration"]
        lost = [key for key, value in values.items() if stored.get(key) != value]
        keys_lost += len(lost)
        lost_by_round.append(lost)
        assert (await api.delete(f"instances/{instance['id']}")).status == 200
    publish(
        "concurrency_lost_update",
        {
            "rounds": ROUNDS,
            "clients": CLIENTS,
            "patches": patches_ok,
            "keys_lost": keys_lost,
        },
    )
    assert statuses == [200] * (CLIENTS * ROUNDS)
    assert keys_lost == 0, lost_by_round
