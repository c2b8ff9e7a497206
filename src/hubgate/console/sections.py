"""Parts of the instance page that features add when they exist (events, trace logs).

A feature registers a section at import time: a template under ``templates/sections/`` and
an async loader for what it shows. The page renders each registered section in order, so
adding one never edits the page's template or routes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from hubgate.db.tenancy import Tenant
from hubgate.instances.models import Instance
from hubgate.runtime import Runtime

Loader = Callable[[AsyncSession, Runtime, Tenant, Instance], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class InstanceSection:
    key: str
    # Rendered with ``section`` bound to what ``load`` returned.
    template: str
    load: Loader


_SECTIONS: dict[str, InstanceSection] = {}


def add_instance_section(section: InstanceSection) -> None:
    _SECTIONS[section.key] = section


def instance_sections() -> list[InstanceSection]:
    return list(_SECTIONS.values())


async def load_sections(
    session: AsyncSession, runtime: Runtime, tenant: Tenant, instance: Instance
) -> list[tuple[str, dict[str, Any]]]:
    return [
        (s.template, await s.load(session, runtime, tenant, instance)) for s in instance_sections()
    ]
