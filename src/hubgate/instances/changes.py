"""Telling others that an instance changed: in its transaction, and once it is committed.

Services mark the instances they change on the session; after the session commits, every
subscriber (the hub's token cache of each app in this process) hears the token hashes. Other
processes hear the same change from PostgreSQL (a trigger notifies ``hubgate_instances``).

Work that must commit with the change itself (the events domain's pollers, born in the
transaction that enables events) registers a hook with :func:`on_saved`; the composition root
does, as it knows both domains.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from hubgate.instances.models import Instance

CHANNEL = "hubgate_instances"
_KEY = "hubgate.changed_instances"
Subscriber = Callable[[frozenset[str]], None]
_subscribers: list[Subscriber] = []
SavedHook = Callable[[AsyncSession, Instance], Awaitable[None]]
_saved_hooks: list[SavedHook] = []


def mark_changed(session: AsyncSession, instance: Instance) -> None:
    session.sync_session.info.setdefault(_KEY, set()).add(instance.token_hash)


def on_saved(hook: SavedHook) -> None:
    if hook not in _saved_hooks:
        _saved_hooks.append(hook)


async def saved(session: AsyncSession, instance: Instance) -> None:
    """Run the hooks for an instance just written, in the writer's transaction."""
    for hook in list(_saved_hooks):
        await hook(session, instance)


def subscribe(subscriber: Subscriber) -> None:
    _subscribers.append(subscriber)


def unsubscribe(subscriber: Subscriber) -> None:
    if subscriber in _subscribers:
        _subscribers.remove(subscriber)


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    changed = session.info.pop(_KEY, None)
    if changed:
        hashes = frozenset(changed)
        for subscriber in list(_subscribers):
            subscriber(hashes)


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_KEY, None)
