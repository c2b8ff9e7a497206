"""What the vendor-webhook route keeps of an instance between requests (D312): the instance's
row and its decrypted configuration (the Auth Token that verifies Twilio's signature), so that
a burst of vendor POSTs costs one short transaction each and no decryption.

An entry is good while the hub's token cache has evicted nothing since it was read: the token
cache hears every instance change, in this process at once and from the others through
PostgreSQL ``NOTIFY`` (D117), and bumps its epoch for each. Any change to any instance empties
this cache, which is cheap: changes are rare beside vendor POSTs. Nothing is cached while the
token cache's listener is down, and entries expire with the token cache's TTL as a backstop.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

from hubgate.hub.cache import TokenCache
from hubgate.instances.models import Instance

_COLUMNS = Instance.__table__.columns


@dataclass(frozen=True, slots=True)
class Receiver:
    # A copy tied to no session: events are made from its values, it is never written.
    instance: Instance
    configuration: Mapping[str, str | None]
    epoch: int
    expires: float


class ReceiverCache:
    def __init__(self, tokens: TokenCache, ttl: float, max_entries: int = 100_000) -> None:
        self._tokens = tokens
        self._ttl = ttl
        self._max = max_entries
        self._entries: dict[int, Receiver] = {}

    @property
    def epoch(self) -> int:
        """Taken before reading an instance, given back to ``put``."""
        return self._tokens.epoch

    def get(self, instance_id: int) -> Receiver | None:
        entry = self._entries.get(instance_id)
        if entry is None:
            return None
        if entry.epoch != self._tokens.epoch:
            # Some instance changed since it was read: whatever was read before is suspect.
            self._entries.clear()
            return None
        if entry.expires < time.monotonic():
            del self._entries[instance_id]
            return None
        return entry

    def put(
        self, instance: Instance, configuration: Mapping[str, str | None], epoch: int
    ) -> Receiver:
        copy = Instance(**{c.key: getattr(instance, c.key) for c in _COLUMNS})
        receiver = Receiver(copy, dict(configuration), epoch, time.monotonic() + self._ttl)
        # Stored only if nothing changed since the row was read, and while changes are heard.
        if epoch == self._tokens.epoch and self._tokens.active:
            if len(self._entries) >= self._max:
                self._entries.clear()
            self._entries[instance.id] = receiver
        return receiver
