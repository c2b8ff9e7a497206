"""Bodies and answers of the common resource API (A.2, A.3 of the background; D35, D36)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel

from hubgate.transformations.mapping import Level

NAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$"
MAX_FIELDS = 500
ObjectName = Field(min_length=1, max_length=200, pattern=NAME_PATTERN)


class _Body(BaseModel):
    # Strict, as the instance API's bodies: JSON's true is not the number 1.
    model_config = ConfigDict(extra="ignore", populate_by_name=True, strict=True)


class DefinitionField(_Body):
    path: str = Field(min_length=1, max_length=1000)
    type: str | None = Field(default=None, max_length=50)


class DefinitionBody(_Body):
    fields: list[DefinitionField] = Field(max_length=MAX_FIELDS)
    object_name: str | None = Field(default=None, alias="objectName", max_length=200)


class DefinitionsBody(RootModel[dict[str, DefinitionBody]]):
    """``POST /organizations/objects/definitions``: many definitions keyed by name."""


class RenameObject(_Body):
    object_name: str = Field(alias="objectName", min_length=1, max_length=200, pattern=NAME_PATTERN)


class TransformationBody(_Body):
    """Read loosely here; ``mapping.parse_transformation`` checks every part and names it."""

    vendor_name: str | None = Field(default=None, alias="vendorName", max_length=200)
    fields: list[dict[str, Any]] | None = Field(default=None, max_length=MAX_FIELDS)
    configuration: list[dict[str, Any]] | None = Field(default=None, max_length=20)
    script: dict[str, Any] | None = None
    is_legacy: bool | None = Field(default=None, alias="isLegacy")


class TransformationUpsert(TransformationBody):
    """``PUT /transformations``: the level, object and owner come in the body."""

    level: Level
    object_name: str = Field(alias="objectName", min_length=1, max_length=200, pattern=NAME_PATTERN)
    element_instance_id: int | None = Field(default=None, alias="elementInstanceId")
    element_key: str | None = Field(default=None, alias="elementKey", max_length=100)
    element_id: int | None = Field(default=None, alias="elementId")


class ExecuteBody(_Body):
    payload: dict[str, Any] | list[dict[str, Any]]
    element_id: int | str | None = Field(default=None, alias="elementId")
    instance_id: int | None = Field(default=None, alias="instanceId")
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] | None = None


class CommonResourceField(_Body):
    path: str = Field(min_length=1, max_length=1000)
    type: str | None = Field(default=None, max_length=50)
    associated_level: Level = Field(default="organization", alias="associatedLevel")
    associated_id: int | None = Field(default=None, alias="associatedId")


class ChangedField(_Body):
    path: str = Field(min_length=1, max_length=1000)
    old_path: str = Field(alias="oldPath", min_length=1, max_length=1000)
    type: str | None = Field(default=None, max_length=50)
    associated_level: Level | None = Field(default=None, alias="associatedLevel")


class CommonResourceBody(_Body):
    name: str = Field(min_length=1, max_length=200, pattern=NAME_PATTERN)
    fields: list[CommonResourceField] = Field(max_length=MAX_FIELDS)
    changed_fields: list[ChangedField] = Field(
        default_factory=list, alias="changedFields", max_length=MAX_FIELDS
    )


class RenameCommonResource(_Body):
    name: str = Field(min_length=1, max_length=200, pattern=NAME_PATTERN)


# Answers.


class _Read(BaseModel):
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)


class DefinitionFieldRead(_Read):
    path: str
    type: str | None = None


# What reads may say besides the three levels: "system", Hubgate's catalogue (D322).
ReadLevel = Level | Literal["system"]


class DefinitionRead(_Read):
    fields: list[DefinitionFieldRead]
    level: ReadLevel


class TransformationFieldRead(_Read):
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True, extra="allow")

    path: str
    vendor_path: str = Field(alias="vendorPath")
    level: ReadLevel


class TransformationRead(_Read):
    object_name: str = Field(alias="objectName")
    level: ReadLevel
    vendor_name: str | None = Field(default=None, alias="vendorName")
    fields: list[TransformationFieldRead]
    configuration: list[dict[str, Any]] | None = None
    script: dict[str, Any] | None = None
    is_legacy: bool = Field(default=False, alias="isLegacy")
    # None for an element's default, which no one stored.
    start_date: str | None = Field(default=None, alias="startDate")
    element_key: str = Field(alias="elementKey")
    element_instance_id: int | None = Field(default=None, alias="elementInstanceId")


class CommonResourceFieldRead(_Read):
    path: str
    type: str | None = None
    associated_level: Level = Field(alias="associatedLevel")
    associated_id: int | None = Field(default=None, alias="associatedId")


class CommonResourceRead(_Read):
    name: str
    fields: list[CommonResourceFieldRead]
    element_instance_ids: list[int] = Field(alias="elementInstanceIds")
    mapped_element_ids: list[int] = Field(alias="mappedElementIds")


class FormulaUsage(_Read):
    formula_name: str = Field(alias="formulaName")
    formula_id: int = Field(alias="formulaId")
    usage_count: int = Field(alias="usageCount")


class UsagesRead(_Read):
    formula_usages: list[FormulaUsage] = Field(alias="formulaUsages")


class Deleted(_Read):
    """An empty object, as Open Connectors answers a delete."""
