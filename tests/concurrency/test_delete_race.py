"""Twenty PUT, PATCH and hub calls race one DELETE of the same instance (issue 9, item 2).

The calls that lose the race find no instance: 404 with the D9 body (by id) or 401 (its
Element token no longer names anything, D8). None answers 500 and the server logs no traceback.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from sims.twilio_sim import TwilioSimulator
from tests.concurrency.conftest import Serving
from tests.conftest import Api, Response, twilio_instance_body
from tests.logwatch import remember_secret
from tests.results import publish

ROUNDS = 5
RACERS = 20
TRACEBACK = "Traceback (most recent call last)"


async def racer(api: Api, sim: TwilioSimulator, instance: dict[str, Any], n: int) -> Response:
    by_token = api.with_auth(f"Element {instance['token']}")
    path = f"instances/{instance['id']}"
    kind = n % 5
    if kind == 0:
        body = twilio_instance_body(sim, **{"pagination.max": str(20 + n)})
        # A PUT replaces what may change; the element is read-only (D203).
        del body["element"]
        body["name"] = f"replaced-{n}"
        return await api.put(path, json=body)
    if kind == 1:
        return await api.patch(path, json={"configuration": {"pagination.max": str(n + 1)}})
    if kind == 2:
        return await api.patch(f"{path}/configuration/50305", json={"propertyValue": str(n + 1)})
    if kind == 3:
        return await by_token.patch("instances", json={"name": f"patched-{n}"})
    return await by_token.get("hubs/messaging/messages")


def is_d9(answer: Response) -> bool:
    body = answer.body
    return (
        isinstance(body, dict)
        and set(body) == {"requestId", "message"}
        and answer.headers.get("Elements-Request-Id") == body["requestId"]
    )


async def test_updates_racing_a_delete_end_in_404_never_500(
    serving: Serving, sim: TwilioSimulator
) -> None:
    api = serving.api
    log_start = serving.log_size()
    statuses: Counter[str] = Counter()
    refused: list[str] = []
    for _ in range(ROUNDS):
        # Traced: a hub call that ends after the DELETE has a trace entry with nowhere to go.
        created = await api.post(
            "instances", json={**twilio_instance_body(sim), "traceLoggingEnabled": True}
        )
        assert created.status == 200, created.text
        instance = created.body
        remember_secret(instance["token"])
        tasks = [asyncio.create_task(racer(api, sim, instance, n)) for n in range(RACERS)]
        # The DELETE goes out among the others, not before or after all of them.
        tasks.insert(RACERS // 2, asyncio.create_task(api.delete(f"instances/{instance['id']}")))
        answers = await asyncio.gather(*tasks)
        deleted = answers.pop(RACERS // 2)
        assert deleted.status == 200, deleted.text
        statuses["200"] += 1
        for n, answer in enumerate(answers):
            statuses[str(answer.status)] += 1
            hub_call = n % 5 == 4
            allowed = {200, 401} if hub_call else {200, 401, 404} if n % 5 == 3 else {200, 404}
            if answer.status not in allowed or (answer.status != 200 and not is_d9(answer)):
                refused.append(f"{answer.status} {answer.text[:300]}")
        gone = await api.get(f"instances/{instance['id']}")
        assert gone.status == 404
    logged = serving.log_since(log_start)
    server_errors = sum(n for status, n in statuses.items() if status.startswith("5"))
    tracebacks = logged.count(TRACEBACK)
    publish(
        "concurrency_delete_race",
        {
            "rounds": ROUNDS,
            "requests": sum(statuses.values()),
            "statuses": dict(statuses),
            "server_errors": server_errors,
            "tracebacks_logged": tracebacks,
        },
    )
    assert server_errors == 0, refused[:5]
    assert not refused, refused[:5]
    assert tracebacks == 0, logged[-3000:]
    assert sum(statuses.values()) == ROUNDS * (RACERS + 1)
