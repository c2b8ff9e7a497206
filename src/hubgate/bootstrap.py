"""Getting a database ready: the embedded server, migrations, and the first tenant (D3, D7)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from hubgate.db.embedded import start_embedded
from hubgate.db.engine import create_engine, create_sessionmaker, unit_of_work
from hubgate.db.migrate import upgrade
from hubgate.runtime import load_keyring
from hubgate.settings import Settings, reveal
from hubgate.tenants.repository import TenantRepository
from hubgate.tenants.service import CreatedTenant, create_organization


def database_url(settings: Settings) -> str:
    """The configured server, or the embedded one started (or joined) in the data dir."""
    return reveal(settings.database_url) or start_embedded(settings.data_dir)


def prepare_database(settings: Settings) -> str:
    url = database_url(settings)
    upgrade(url)
    return url


async def create_tenant(
    settings: Settings,
    url: str,
    *,
    name: str,
    email: str,
    first_name: str = "",
    last_name: str = "",
) -> CreatedTenant:
    engine = create_engine(url, pool_size=1)
    try:
        async with unit_of_work(create_sessionmaker(engine)) as session:
            return await create_organization(
                session,
                load_keyring(settings),
                name=name,
                email=email,
                first_name=first_name,
                last_name=last_name,
            )
    finally:
        await engine.dispose()


async def bootstrap_if_empty(settings: Settings, url: str) -> CreatedTenant | None:
    """On an empty database, the first organization and user; their secrets are shown once."""
    engine = create_engine(url, pool_size=1)
    try:
        async with unit_of_work(create_sessionmaker(engine)) as session:
            # Serialises concurrent first starts so only one of them creates the tenant.
            await session.connection(execution_options={"isolation_level": "SERIALIZABLE"})
            if await TenantRepository(session).count_organizations() > 0:
                return None
            created = await create_organization(
                session, load_keyring(settings), name="Default", email="admin@localhost"
            )
    finally:
        await engine.dispose()
    write_private_json(settings.data_dir / "bootstrap.json", created.as_json())
    return created


def write_private_json(path: Path, payload: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(payload, handle, indent=2)
        handle.write("\n")
    path.chmod(0o600)
