"""JSON log lines (D64): one object per line, with what the request or job is about.

A line carries time, level, logger, message, and when known the request id, the trace id,
the organization and the instance: ids only, never a body, a header or a configuration value,
so what the code logs decides what the line holds and the secrets scan of the test suite
(tests/secrets) reads these lines like any other.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from hubgate.observability import context
from hubgate.settings import Settings


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        now = context.current()
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if now.request_id:
            line["requestId"] = now.request_id
        if now.trace_id:
            line["traceId"] = now.trace_id
        if now.organization_id is not None:
            line["organizationId"] = now.organization_id
        if now.instance_id is not None:
            line["instanceId"] = now.instance_id
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def configure(settings: Settings) -> None:
    """JSON lines on stderr for Hubgate's, uvicorn's and procrastinate's loggers alike."""
    if settings.log_format != "json":
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
