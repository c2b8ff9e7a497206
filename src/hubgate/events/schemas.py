"""Event records as the API returns them (D30)."""

from __future__ import annotations

from typing import Any

from hubgate.events.models import Event, EventAttempt
from hubgate.instances.presenter import iso

MAX_PAGE_SIZE = 200
DEFAULT_PAGE_SIZE = 50


def attempt_json(attempt: EventAttempt) -> dict[str, Any]:
    return {
        "attemptedDate": iso(attempt.attempted_at),
        "statusCode": attempt.status_code,
        "latencyMs": round(attempt.latency_ms, 1),
        "response": attempt.response,
        "error": attempt.error,
    }


def event_json(
    event: Event, attempts: list[EventAttempt], *, with_raw: bool = False
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": str(event.id),
        "eventDate": iso(event.event_date),
        "status": event.status,
        "objectType": event.object_type,
        "objectId": event.object_id,
        "eventType": event.event_type,
        "instanceId": event.instance_id,
        "elementKey": event.element_key,
        "source": event.source,
        "events": event.events,
        "attempts": [attempt_json(a) for a in attempts],
        "nextAttemptDate": iso(event.next_attempt_at)
        if event.status in ("NEW", "DISPATCHED")
        else None,
        "notifiedDate": iso(event.notified_at) if event.notified_at else None,
        "failureReason": event.failure_reason,
    }
    if with_raw:
        body["raw"] = event.raw
    return body
