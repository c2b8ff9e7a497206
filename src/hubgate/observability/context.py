"""What the current request or job is about, for its metrics and its log lines.

One mutable object per request (set by the metrics middleware) that the pipeline fills in as
it learns things: mutable so that what the pipeline notes reaches the middleware and the log
formatter even when the framework ran the endpoint in a copied context.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass


@dataclass
class Context:
    request_id: str = ""
    trace_id: str = ""
    element: str = ""
    resource: str = ""
    organization_id: int | None = None
    instance_id: int | None = None


_current: ContextVar[Context | None] = ContextVar("hubgate_context", default=None)


def begin(request_id: str = "") -> Context:
    context = Context(request_id=request_id)
    _current.set(context)
    return context


def current() -> Context:
    return _current.get() or Context()


def note_call(element: str, resource: str, organization_id: int, instance_id: int) -> None:
    """The hub pipeline matched ``resource`` of ``element`` for this instance (request or job)."""
    context = _current.get()
    if context is None:
        context = begin()
    context.element, context.resource = element, resource
    context.organization_id, context.instance_id = organization_id, instance_id
