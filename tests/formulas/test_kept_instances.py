"""A worker keeps the connector instances it resolved between step jobs (D526): consecutive
executions share one resolved instance (and its vendor session), and an instance changed
through the API is resolved again by the next job, which sends the new credentials."""

from __future__ import annotations

from typing import Any

import pytest

from hubgate.formulas import tasks
from hubgate.hub.model import ResolvedInstance
from hubgate.runtime import Runtime
from sims.twilio_sim import TwilioSimulator
from tests.conftest import Api
from tests.formulas.conftest import (
    finished,
    make_formula,
    make_instance,
    run_manually,
    send_step,
    values,
)

SEND = {
    "name": "send one message",
    "configuration": [{"key": "twilio", "type": "elementInstance"}],
    "triggers": [{"type": "manual", "properties": {}, "onSuccess": ["send"]}],
    "steps": [send_step("send", "${trigger.args}")],
}


async def _send(api: Api, instance_id: int, text: str) -> dict[str, Any]:
    args = {"To": "+15558675310", "From": "+15017122661", "Body": text}
    execution_id = await run_manually(api, instance_id, args)
    execution = await finished(api, execution_id)
    assert execution["status"] == "success", await values(api, execution_id)
    stored = await values(api, execution_id)
    response: dict[str, Any] = stored["send"]
    return response


def _kept(worker: Runtime, instance_id: int) -> ResolvedInstance:
    return tasks._KEPT[worker.engine][instance_id]


@pytest.mark.asyncio
async def test_jobs_share_a_resolved_instance_until_it_changes(
    fapi: Api, worker: Runtime, twilio: dict[str, Any], sim: TwilioSimulator
) -> None:
    formula = await make_formula(fapi, SEND)
    instance = await make_instance(fapi, formula["id"], {"twilio": twilio["id"]})
    first_account = twilio["configuration"]["username"]

    await _send(fapi, instance["id"], "first")
    kept = _kept(worker, twilio["id"])
    await _send(fapi, instance["id"], "second")
    assert _kept(worker, twilio["id"]) is kept
    sent = [m for m in sim.messages(first_account) if m["body"] in ("first", "second")]
    assert len(sent) == 2

    # New credentials through the API: the row's version moves, the next job resolves it
    # again and the message goes to the other account with its own token.
    account_sid, auth_token = sim.add_account()
    patched = await fapi.patch(
        f"instances/{twilio['id']}",
        json={"configuration": {"username": account_sid, "password": auth_token}},
    )
    assert patched.status == 200, patched.text
    await _send(fapi, instance["id"], "third")
    changed = _kept(worker, twilio["id"])
    assert changed is not kept
    assert changed.version > kept.version
    assert changed.config["username"] == account_sid
    assert [m["body"] for m in sim.messages(account_sid)] == ["third"]
    assert "third" not in [m["body"] for m in sim.messages(first_account)]
