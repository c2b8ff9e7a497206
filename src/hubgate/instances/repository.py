"""All SQL about instances, tenant-scoped through :func:`hubgate.db.tenancy.scoped`."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from hubgate.db.tenancy import Tenant, scoped
from hubgate.instances.models import Instance
from hubgate.tenants.models import User


class InstanceRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def next_id(self) -> int:
        # The id is known before the insert because ciphertexts are bound to their row.
        result = await self.session.execute(text("SELECT nextval('instances_id_seq')"))
        return int(result.scalar_one())

    async def add(self, instance: Instance) -> None:
        self.session.add(instance)
        await self.session.flush()

    async def get(self, tenant: Tenant, instance_id: int) -> Instance | None:
        stmt = scoped(select(Instance), Instance, tenant).where(Instance.id == instance_id)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def lock(self, instance: Instance) -> bool:
        """Read ``instance`` again from its row and lock the row until the transaction ends;
        False when the row is gone (deleted meanwhile).

        Every change of an instance starts here, so that two writers merge one after the
        other instead of both from the same old row. ``FOR NO KEY UPDATE`` still lets rows
        that reference the instance (events of a poll) be written meanwhile.
        """
        stmt = (
            select(Instance)
            .where(Instance.id == instance.id)
            .with_for_update(key_share=True)
            .execution_options(populate_existing=True)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none() is not None

    async def lock_by_id(self, instance_id: int) -> Instance | None:
        """The instance, its row locked until the transaction ends (a token refresh: one
        process at a time talks to the vendor for it). Not tenant-scoped: the caller already
        holds the instance, resolved from its token."""
        stmt = (
            select(Instance)
            .where(Instance.id == instance_id)
            .with_for_update(key_share=True)
            .execution_options(populate_existing=True)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def save(self, instance: Instance) -> None:
        """Write the changes and read back what the database set (``updated_at``), while the
        row is still locked: read after the commit, the row may already be deleted."""
        await self.session.flush()
        await self.session.refresh(instance, ["updated_at"])

    async def by_token_hash(self, token_hash: str) -> Instance | None:
        stmt = select(Instance).where(Instance.token_hash == token_hash)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def list(
        self,
        tenant: Tenant,
        *,
        tags: Sequence[str] = (),
        search: str | None = None,
        element_key: str | None = None,
    ) -> Sequence[Instance]:
        stmt = scoped(select(Instance), Instance, tenant).order_by(Instance.id)
        if tags:
            stmt = stmt.where(Instance.tags.contains(list(tags)))
        if element_key is not None:
            stmt = stmt.where(Instance.element_key == element_key)
        found = (await self.session.execute(stmt)).scalars().all()
        if search:
            # Compared in Python: the database's lower() follows its locale, which under the C
            # locale leaves every non-ASCII letter as it is; casefold() knows them all.
            needle = search.casefold()
            found = [i for i in found if needle in i.name.casefold()]
        return found

    async def count_by_element(self, tenant: Tenant) -> Sequence[tuple[str, int]]:
        stmt = (
            scoped(select(Instance.element_key), Instance, tenant)
            .add_columns(func.count())
            .group_by(Instance.element_key)
            .order_by(Instance.element_key)
        )
        return [(key, int(count)) for key, count in (await self.session.execute(stmt)).all()]

    async def remove(self, instance: Instance) -> bool:
        """Delete the row; False when there was none left to delete."""
        result = await self.session.execute(
            delete(Instance).where(Instance.id == instance.id).returning(Instance.id)
        )
        return result.first() is not None

    async def owner(self, instance: Instance) -> User | None:
        return await self.session.get(User, instance.user_id)

    async def all_for_rewrap(self) -> Sequence[Instance]:
        stmt = select(Instance).order_by(Instance.id).with_for_update()
        return (await self.session.execute(stmt)).scalars().all()
