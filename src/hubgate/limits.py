"""Abuse limits kept in memory: token buckets per key (an instance, a client address).

Each bucket holds up to ``burst`` tokens and refills at ``rate`` tokens a second; taking from
an empty bucket is refused with the seconds until a token is back, which becomes the 429's
``Retry-After``. The buckets live in one process: with several ``hubgate serve`` processes
each enforces its own share (docs/decisions.md, D171).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from fastapi import Request

from hubgate.kit.errors import HubgateError
from hubgate.settings import Settings

# Buckets kept at most; the least recently used goes first. A full bucket forgotten and made
# again is the same bucket, so only a key under attack for longer than the others lasts loses
# anything, and what it loses is its refusal: memory stays bounded whatever the traffic.
MAX_KEYS = 100_000


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    def __init__(
        self,
        rate: float,
        burst: float,
        *,
        max_keys: int = MAX_KEYS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a rate limit needs rate > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self._max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[Hashable, _Bucket] = OrderedDict()

    def _bucket(self, key: Hashable) -> _Bucket:
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = _Bucket(self.burst, now)
            self._buckets[key] = bucket
            if len(self._buckets) > self._max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
        return bucket

    def _wait(self, bucket: _Bucket) -> float:
        return (1 - bucket.tokens) / self.rate

    def take(self, key: Hashable) -> float | None:
        """Take a token: None when there was one, else the seconds until there is."""
        bucket = self._bucket(key)
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return None
        return self._wait(bucket)

    def blocked(self, key: Hashable) -> float | None:
        """Like ``take`` but takes nothing: the seconds to wait when the bucket is empty."""
        bucket = self._bucket(key)
        return None if bucket.tokens >= 1 else self._wait(bucket)

    def spend(self, key: Hashable) -> None:
        """Take a token if there is one: for what already happened (a failed attempt)."""
        bucket = self._bucket(key)
        bucket.tokens = max(bucket.tokens - 1, 0.0)


def too_many(message: str, wait: float) -> HubgateError:
    return HubgateError(429, message, headers={"Retry-After": str(max(1, math.ceil(wait)))})


@dataclass
class Limits:
    """The limiters of one process, made from the settings (``HUBGATE_*``)."""

    # Failed authentications per client address (D8's 401s).
    auth_failures: RateLimiter
    # Hub calls per instance (D20).
    hub_calls: RateLimiter

    def check_client(self, request: Request) -> None:
        """Refuse a client address that failed to authenticate too often, before trying.

        Checked before the credentials, so that while an address is refused its guesses
        are not tried at all: answering right guesses would keep the oracle open.
        """
        wait = self.auth_failures.blocked(client_address(request))
        if wait is not None:
            raise too_many("Too many failed authentications from this address", wait)

    def note_auth_failure(self, request: Request) -> None:
        self.auth_failures.spend(client_address(request))

    def check_hub_call(self, instance_id: int) -> None:
        wait = self.hub_calls.take(instance_id)
        if wait is not None:
            raise too_many(f"Too many requests for instance {instance_id}", wait)


def make_limits(settings: Settings) -> Limits:
    return Limits(
        auth_failures=RateLimiter(
            settings.auth_failure_burst / settings.auth_failure_window,
            settings.auth_failure_burst,
        ),
        hub_calls=RateLimiter(settings.hub_rate_per_second, settings.hub_rate_burst),
    )


def client_address(request: Request) -> str:
    # The peer address, never X-Forwarded-For: a header the client writes would let it pick
    # its own bucket. Behind a proxy every client shares the proxy's bucket (D171).
    # Read from the scope: ``request.client`` builds an address tuple on every call (D531).
    client = request.scope.get("client")
    return str(client[0]) if client else ""
