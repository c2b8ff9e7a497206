"""In-process caches of the hub: resolved Element tokens, and GET responses (D26).

The token cache is what keeps a hub call free of database queries. Entries go away when the
instance changes: at once in the process that changed it (after its commit), and through
PostgreSQL ``NOTIFY`` in every other process (see ``listener``). The TTL is only a backstop for
a notification lost while the listening connection was down, which also clears everything.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hubgate.hub.model import ResolvedInstance

CACHE_CLEARED = "cache:"


def cache_cleared(instance_id: int) -> str:
    """The notification payload that says: drop this instance's cached responses (D26)."""
    return f"{CACHE_CLEARED}{instance_id}"


class TokenCache:
    def __init__(self, ttl: float, max_entries: int = 100_000) -> None:
        self._ttl = ttl
        self._max = max_entries
        self._entries: dict[str, tuple[ResolvedInstance, float]] = {}
        # Token -> its HMAC, for the tokens that resolved: hashing one cost as much as the
        # rest of the lookup (bench/README.md). A token's HMAC never changes, so an entry needs
        # no eviction of its own; it is dropped with the cache, and never outnumbers it.
        self._hashes: dict[str, str] = {}
        # Bumped by every eviction: a lookup that started before one must not store what it
        # read, since the database row it read may be the one just changed.
        self.epoch = 0
        # False while no change listener runs: nothing is cached that could not be evicted.
        self.active = False

    def hash_of(self, token: str, digest: Callable[[str], str]) -> str:
        """The token's HMAC (``digest``), remembered if the token resolved before."""
        known = self._hashes.get(token)
        return known if known is not None else digest(token)

    def get(self, token_hash: str) -> ResolvedInstance | None:
        entry = self._entries.get(token_hash)
        if entry is None:
            return None
        if entry[1] < time.monotonic():
            self._entries.pop(token_hash, None)
            return None
        return entry[0]

    def put(self, resolved: ResolvedInstance, epoch: int, token: str) -> None:
        if epoch != self.epoch or not self.active:
            return
        if len(self._entries) >= self._max:
            self._entries.clear()
            self._hashes.clear()
        self._entries[resolved.token_hash] = (resolved, time.monotonic() + self._ttl)
        self._hashes[token] = resolved.token_hash

    def evict(self, token_hashes: set[str] | frozenset[str]) -> None:
        self.epoch += 1
        for token_hash in token_hashes:
            self._entries.pop(token_hash, None)

    def clear(self) -> None:
        self.epoch += 1
        self._entries.clear()
        self._hashes.clear()

    def __len__(self) -> int:
        return len(self._entries)


@dataclass(frozen=True, slots=True)
class CachedResponse:
    body: Any
    headers: dict[str, str]
    expires: float


class ResponseCache:
    """GET answers per instance and URL, each instance with its own TTL and size (D26)."""

    def __init__(self) -> None:
        self._by_instance: dict[int, OrderedDict[str, CachedResponse]] = {}

    def get(self, instance: ResolvedInstance, key: str) -> CachedResponse | None:
        entries = self._by_instance.get(instance.id)
        if entries is None:
            return None
        found = entries.get(key)
        if found is None:
            return None
        if found.expires < time.monotonic():
            del entries[key]
            return None
        entries.move_to_end(key)
        return found

    def put(self, instance: ResolvedInstance, key: str, body: Any, headers: dict[str, str]) -> None:
        if instance.max_cache_size <= 0 or instance.cache_time_to_live <= 0:
            return
        entries = self._by_instance.setdefault(instance.id, OrderedDict())
        entries[key] = CachedResponse(
            body, dict(headers), time.monotonic() + instance.cache_time_to_live
        )
        entries.move_to_end(key)
        while len(entries) > instance.max_cache_size:
            entries.popitem(last=False)

    def clear(self, instance_id: int) -> None:
        self._by_instance.pop(instance_id, None)
