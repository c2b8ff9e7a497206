"""The routes the fuzzers must reach, written by hand (issue 16).

A route the app serves that is in neither list nor excused below fails
``test_every_route_is_fuzzed``, and so does an entry the app no longer serves: adding a route
means deciding here which fuzzer reaches it. ``OPENAPI`` routes must also be in the document
``test_openapi_fuzz`` generates its cases from; ``CONSOLE`` routes must be among those
``test_console_fuzz`` sends random input to.
"""

from __future__ import annotations

# Fuzzed by tests/fuzz/test_openapi_fuzz.py, from /elements/api-v2/openapi.json.
OPENAPI = frozenset(
    {
        "GET /elements/api-v2/audit-logs",
        "GET /elements/api-v2/elements",
        "GET /elements/api-v2/elements/keys",
        "GET /elements/api-v2/elements/{key_or_id}",
        "GET /elements/api-v2/elements/{key_or_id}/configuration",
        "GET /elements/api-v2/elements/{key_or_id}/docs",
        "GET /elements/api-v2/elements/{key_or_id}/instances",
        "POST /elements/api-v2/elements/{key_or_id}/instances",
        "GET /elements/api-v2/elements/{key_or_id}/metadata",
        "POST /elements/api-v2/events/{element_key}/{encoded_id}",
        "GET /elements/api-v2/hubs",
        "GET /elements/api-v2/hubs/keys",
        "DELETE /elements/api-v2/hubs/{hub}/{rest}",
        "GET /elements/api-v2/hubs/{hub}/{rest}",
        "PATCH /elements/api-v2/hubs/{hub}/{rest}",
        "POST /elements/api-v2/hubs/{hub}/{rest}",
        "PUT /elements/api-v2/hubs/{hub}/{rest}",
        "GET /elements/api-v2/hubs/{key}",
        "GET /elements/api-v2/hubs/{key}/elements",
        "DELETE /elements/api-v2/instances",
        "GET /elements/api-v2/instances",
        "PATCH /elements/api-v2/instances",
        "POST /elements/api-v2/instances",
        "PUT /elements/api-v2/instances",
        "GET /elements/api-v2/instances/configuration",
        "GET /elements/api-v2/instances/configuration/{config_id}",
        "PATCH /elements/api-v2/instances/configuration/{config_id}",
        "DELETE /elements/api-v2/instances/enabled",
        "PUT /elements/api-v2/instances/enabled",
        "GET /elements/api-v2/instances/events",
        "GET /elements/api-v2/instances/events/status",
        "GET /elements/api-v2/instances/events/{event_id}",
        "POST /elements/api-v2/instances/events/{event_id}/redeliver",
        "DELETE /elements/api-v2/instances/{instance_id}",
        "GET /elements/api-v2/instances/{instance_id}",
        "PATCH /elements/api-v2/instances/{instance_id}",
        "PUT /elements/api-v2/instances/{instance_id}",
        "GET /elements/api-v2/instances/{instance_id}/configuration",
        "GET /elements/api-v2/instances/{instance_id}/configuration/{config_id}",
        "PATCH /elements/api-v2/instances/{instance_id}/configuration/{config_id}",
        "GET /elements/api-v2/instances/{instance_id}/docs",
        "DELETE /elements/api-v2/instances/{instance_id}/enabled",
        "PUT /elements/api-v2/instances/{instance_id}/enabled",
        "GET /elements/api-v2/instances/{instance_id}/events",
        "GET /elements/api-v2/instances/{instance_id}/events/status",
        "GET /elements/api-v2/instances/{instance_id}/events/{event_id}",
        "POST /elements/api-v2/instances/{instance_id}/events/{event_id}/redeliver",
        "GET /elements/api-v2/instances/{instance_id}/logs",
        "GET /elements/api-v2/elements/metadata",
        "DELETE /elements/api-v2/elements/{key_or_id}/instances/{instance_id}",
        "GET /elements/api-v2/elements/{key_or_id}/instances/{instance_id}",
        "PATCH /elements/api-v2/elements/{key_or_id}/instances/{instance_id}",
        "PUT /elements/api-v2/elements/{key_or_id}/instances/{instance_id}",
        "GET /elements/api-v2/hubs/{hub}/objects",
        "GET /elements/api-v2/hubs/{hub}/objects/{name}/metadata",
        "GET /elements/api-v2/instances/count",
        "GET /elements/api-v2/objects",
        "GET /elements/api-v2/objects/{name}/metadata",
    }
)

# Fuzzed by tests/fuzz/test_console_fuzz.py (HTML pages and forms, outside the document).
CONSOLE = frozenset(
    {
        "GET /",
        "GET /catalog",
        "GET /catalog/{key}",
        "POST /catalog/{key}",
        "GET /instances",
        "GET /instances/{instance_id}",
        "GET /instances/{instance_id}/api-docs",
        "GET /instances/{instance_id}/api-docs/openapi.json",
        "GET /instances/{instance_id}/delete",
        "POST /instances/{instance_id}/delete",
        "GET /instances/{instance_id}/edit",
        "POST /instances/{instance_id}/edit",
        "POST /instances/{instance_id}/enabled",
        "GET /instances/{instance_id}/formulas",
        "GET /instances/{instance_id}/mapping",
        "POST /instances/{instance_id}/token",
        "POST /instances/{instance_id}/trace-logging",
        "GET /signin",
        "POST /signin",
        "POST /signout",
        "GET /static/swagger-ui/{name}",
    }
)

# Routes no fuzzer reaches, each with the reason.
EXCUSED: dict[str, str] = {
    "GET /healthz": "an operator's probe with no input; tests/ops/test_health.py",
    "GET /readyz": "an operator's probe with no input, 503 by design without a worker;"
    " tests/ops/test_health.py",
    "GET /metrics": "takes only an optional bearer token; tests/ops/test_metrics.py",
}
