"""Every table, imported in one place so that Alembic and the tests see the whole schema."""

from __future__ import annotations

from hubgate.console.models import ConsoleSession
from hubgate.db.base import Base
from hubgate.events.models import Event, EventAttempt, EventPoller, SeenObject
from hubgate.formulas.models import (
    Execution,
    Formula,
    FormulaInstance,
    StepExecution,
    StepValue,
)
from hubgate.hub.models import AuditLog, HubLog
from hubgate.instances.models import Instance
from hubgate.tenants.models import Account, Organization, User
from hubgate.transformations.models import ObjectDefinition, StoredTransformation

metadata = Base.metadata

__all__ = [
    "Account",
    "AuditLog",
    "ConsoleSession",
    "Event",
    "EventAttempt",
    "EventPoller",
    "Execution",
    "Formula",
    "FormulaInstance",
    "HubLog",
    "Instance",
    "ObjectDefinition",
    "Organization",
    "SeenObject",
    "StepExecution",
    "StepValue",
    "StoredTransformation",
    "User",
    "metadata",
]
