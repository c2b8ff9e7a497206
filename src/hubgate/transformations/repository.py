"""All SQL about object definitions and transformations, tenant-scoped through ``scoped``.

A ``Place`` names one level's owner inside the caller's tenant; rows "at" a place are that
owner's, rows "from" a place are those of that level and the levels below it that the tenant
sees (organization: all; account: the account's and its instances'; instance: the instance's).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import Select, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from hubgate.db.tenancy import Tenant, scoped
from hubgate.kit.errors import HubgateError
from hubgate.transformations.changes import changed
from hubgate.transformations.mapping import Level
from hubgate.transformations.models import ObjectDefinition, StoredTransformation

Row = ObjectDefinition | StoredTransformation
R = TypeVar("R", ObjectDefinition, StoredTransformation)


@dataclass(frozen=True)
class Place:
    """One level's owner: the organization, the tenant's account, or one of its instances."""

    tenant: Tenant
    level: Level
    instance_id: int | None = None

    @property
    def owner_id(self) -> int:
        if self.level == "organization":
            return self.tenant.organization_id
        if self.level == "account":
            return self.tenant.account_id
        assert self.instance_id is not None
        return self.instance_id

    @property
    def account_id(self) -> int | None:
        return None if self.level == "organization" else self.tenant.account_id

    def owns(self, row: Row) -> None:
        row.organization_id = self.tenant.organization_id
        row.account_id = self.account_id
        row.instance_id = self.instance_id
        row.level = self.level
        row.owner_id = self.owner_id


def _at(model: type[R], place: Place) -> Select[R]:
    return scoped(select(model), model, place.tenant).where(
        model.level == place.level, model.owner_id == place.owner_id
    )


def _from(model: type[R], place: Place) -> Select[R]:
    stmt = scoped(select(model), model, place.tenant)
    if place.level == "account":
        stmt = stmt.where(model.level != "organization")
    elif place.level == "instance":
        stmt = stmt.where(model.instance_id == place.instance_id)
    return stmt


class TransformationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, row: Row) -> None:
        self.session.add(row)
        await self.flush()

    async def flush(self) -> None:
        """Write pending changes; a name another request took meanwhile is a 409."""
        changed()
        try:
            await self.session.flush()
        except IntegrityError:
            raise HubgateError(409, "An object of that name already exists at that level") from None

    async def remove(self, rows: Sequence[Row]) -> None:
        changed()
        for model in (ObjectDefinition, StoredTransformation):
            ids = [r.id for r in rows if isinstance(r, model)]
            if ids:
                await self.session.execute(delete(model).where(model.id.in_(ids)))

    async def _all(self, stmt: Select[R]) -> Sequence[R]:
        return (await self.session.execute(stmt)).scalars().all()

    # ------------------------------------------------------------------ definitions

    async def definition(self, place: Place, name: str) -> ObjectDefinition | None:
        stmt = _at(ObjectDefinition, place).where(ObjectDefinition.object_name == name)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def definitions_at(self, place: Place) -> Sequence[ObjectDefinition]:
        return await self._all(_at(ObjectDefinition, place).order_by(ObjectDefinition.object_name))

    async def visible_definitions(
        self, tenant: Tenant, name: str | None = None
    ) -> Sequence[ObjectDefinition]:
        """Every definition the tenant sees (of ``name``), organization's first."""
        stmt = scoped(select(ObjectDefinition), ObjectDefinition, tenant)
        if name is not None:
            stmt = stmt.where(ObjectDefinition.object_name == name)
        return await self._all(stmt.order_by(ObjectDefinition.object_name, ObjectDefinition.id))

    # ------------------------------------------------------------------ transformations

    async def transformation(
        self, place: Place, element_key: str, name: str
    ) -> StoredTransformation | None:
        stmt = _at(StoredTransformation, place).where(
            StoredTransformation.element_key == element_key,
            StoredTransformation.object_name == name,
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def transformations_from(
        self, place: Place, name: str | None = None
    ) -> Sequence[StoredTransformation]:
        """Transformations at ``place``'s level and below (of ``name``)."""
        stmt = _from(StoredTransformation, place)
        if name is not None:
            stmt = stmt.where(StoredTransformation.object_name == name)
        return await self._all(stmt.order_by(StoredTransformation.id))

    async def visible_transformations(
        self, tenant: Tenant, name: str | None = None
    ) -> Sequence[StoredTransformation]:
        stmt = scoped(select(StoredTransformation), StoredTransformation, tenant)
        if name is not None:
            stmt = stmt.where(StoredTransformation.object_name == name)
        return await self._all(stmt.order_by(StoredTransformation.id))

    async def chain(
        self, tenant: Tenant, element_key: str, name: str, instance_id: int | None
    ) -> dict[str, StoredTransformation]:
        """The organization's, the account's and (with an instance) the instance's, by level."""
        stmt = scoped(select(StoredTransformation), StoredTransformation, tenant).where(
            StoredTransformation.element_key == element_key,
            StoredTransformation.object_name == name,
        )
        found: dict[str, StoredTransformation] = {}
        for row in await self._all(stmt):
            if row.level != "instance" or row.instance_id == instance_id:
                found[row.level] = row
        return found

    # ------------------------------------------------------------------ hub calls

    async def of_instance(
        self, tenant: Tenant, element_key: str, instance_id: int
    ) -> tuple[Sequence[ObjectDefinition], Sequence[StoredTransformation]]:
        """The definitions the instance sees and the transformations of its element it sees:
        its organization's, its account's and its own."""
        definitions = scoped(select(ObjectDefinition), ObjectDefinition, tenant).where(
            (ObjectDefinition.instance_id.is_(None)) | (ObjectDefinition.instance_id == instance_id)
        )
        transformations = scoped(select(StoredTransformation), StoredTransformation, tenant).where(
            StoredTransformation.element_key == element_key,
            (StoredTransformation.instance_id.is_(None))
            | (StoredTransformation.instance_id == instance_id),
        )
        return (
            await self._all(definitions.order_by(ObjectDefinition.id)),
            await self._all(transformations.order_by(StoredTransformation.id)),
        )
