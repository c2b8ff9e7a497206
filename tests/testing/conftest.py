"""Shared fixture for the Twilio simulator tests: a fresh simulator per test, on a free port."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from sims.twilio_sim import TwilioSimulator


@pytest_asyncio.fixture
async def sim() -> AsyncIterator[TwilioSimulator]:
    simulator = TwilioSimulator()
    await simulator.start()
    try:
        yield simulator
    finally:
        await simulator.stop()
