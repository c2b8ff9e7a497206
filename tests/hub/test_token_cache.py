"""The token cache remembers the HMAC of a token that resolved, so a cached hub call hashes
nothing; a token that never resolved is hashed on every call, and a cleared cache forgets."""

from __future__ import annotations

from hubgate.elements.registry import discover
from hubgate.elements.sdk import ResolvedInstance
from hubgate.hub.cache import TokenCache


def resolved(token_hash: str) -> ResolvedInstance:
    return ResolvedInstance(
        id=1,
        organization_id=1,
        account_id=1,
        token_hash=token_hash,
        version=1,
        disabled=False,
        element=discover().get("twiliov2"),
        config={},
        caching_enabled=False,
        cache_time_to_live=0,
        max_cache_size=0,
        trace_logging_enabled=False,
    )


def test_a_resolved_tokens_hash_is_remembered_until_the_cache_clears() -> None:
    hashed: list[str] = []

    def digest(token: str) -> str:
        hashed.append(token)
        return f"hmac-of-{token}"

    cache = TokenCache(ttl=60)
    cache.active = True
    assert cache.hash_of("known", digest) == "hmac-of-known"
    cache.put(resolved("hmac-of-known"), cache.epoch, "known")
    assert cache.hash_of("known", digest) == "hmac-of-known"
    assert cache.hash_of("stranger", digest) == "hmac-of-stranger"
    assert cache.hash_of("stranger", digest) == "hmac-of-stranger"
    assert hashed == ["known", "stranger", "stranger"]
    assert cache.get("hmac-of-known") is not None
    cache.clear()
    assert cache.hash_of("known", digest) == "hmac-of-known"
    assert hashed == ["known", "stranger", "stranger", "known"]


def test_nothing_is_remembered_from_a_lookup_an_eviction_overtook() -> None:
    cache = TokenCache(ttl=60)
    cache.active = True
    epoch = cache.epoch
    cache.evict({"hmac-of-known"})
    cache.put(resolved("hmac-of-known"), epoch, "known")
    assert cache.hash_of("known", lambda token: "computed") == "computed"
    assert cache.get("hmac-of-known") is None
