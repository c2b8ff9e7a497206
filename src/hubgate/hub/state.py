"""What the hub keeps per running app: its caches and the change listener that keeps them true."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import Request

from hubgate.hub.cache import ResponseCache, TokenCache
from hubgate.hub.listener import ChangeListener
from hubgate.instances import changes
from hubgate.runtime import Runtime


@dataclass
class HubState:
    tokens: TokenCache
    listener: ChangeListener
    responses: ResponseCache = field(default_factory=ResponseCache)

    def _evict(self, token_hashes: frozenset[str]) -> None:
        self.tokens.evict(token_hashes)

    async def start(self) -> None:
        changes.subscribe(self._evict)
        await self.listener.start()

    async def close(self) -> None:
        changes.unsubscribe(self._evict)
        await self.listener.close()


async def open_hub(runtime: Runtime, database_url: str) -> HubState:
    tokens = TokenCache(runtime.settings.hub_token_cache_ttl)
    responses = ResponseCache()
    listener = ChangeListener(database_url, tokens, responses)
    state = HubState(tokens=tokens, listener=listener, responses=responses)
    await state.start()
    return state


def hub_state(request: Request) -> HubState:
    state: HubState = request.app.state.hub
    return state
