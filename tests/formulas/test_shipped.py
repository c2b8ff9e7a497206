"""The shipped templates (item 8): each is a file ``POST /formulas`` takes, and runs."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

import pytest

from hubgate.runtime import Runtime
from sims.twilio_sim import TwilioSimulator
from tests.conftest import Api
from tests.formulas.conftest import finished, make_formula, make_instance, run_manually, values

SHIPPED = resources.files("hubgate.formulas").joinpath("shipped")


def shipped(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(SHIPPED.joinpath(name).read_text(encoding="utf-8"))
    return loaded


@pytest.mark.parametrize(
    "name", sorted(p.name for p in SHIPPED.iterdir() if p.name.endswith(".json"))
)
async def test_each_shipped_template_is_accepted(fapi: Api, name: str) -> None:
    formula = await make_formula(fapi, shipped(name))
    assert formula["name"] == shipped(name)["name"]


async def test_the_daily_count_counts_yesterdays_messages(
    fapi: Api, worker: Runtime, twilio: dict[str, Any], sim: TwilioSimulator
) -> None:
    body = shipped("daily-message-count.json")
    # Run by hand: the same steps the 08:00 schedule runs.
    body["triggers"] = [{"type": "manual", "properties": {}, "onSuccess": ["day"]}]
    formula = await make_formula(fapi, body)
    instance = await make_instance(
        fapi, formula["id"], {"twilio": twilio["id"], "email": "ops@example.test"}
    )
    account = twilio["configuration"]["username"]
    yesterday = datetime.now(UTC) - timedelta(days=1)
    for text in ("one", "two"):
        sim.add_inbound_message(
            "+15558675310", "+15017122661", text, account_sid=account, at=yesterday
        )
    sim.add_inbound_message("+15558675310", "+15017122661", "today", account_sid=account)
    run = await run_manually(fapi, instance["id"], {})
    execution = await finished(fapi, run)
    assert execution["status"] == "success", await values(fapi, run)
    report = (await values(fapi, run))["report"]
    assert report["report.count"] == "2"
    notice = json.loads(report["report.notify"])[0]
    assert notice["to"] == "ops@example.test"
