"""Bodies and answers of the formula API, for the OpenAPI document (D39, part B).

Template and instance bodies are checked by ``template.check`` and the service, which name
each fault in a 400; these models describe the shapes for clients and the fuzzers.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Status = Literal["queued", "pending", "success", "failed", "retry", "cancelled"]


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class ConfigurationEntry(_Open):
    key: str
    name: str | None = None
    type: Literal["elementInstance", "value"] = "value"
    description: str | None = None
    required: bool | None = None


class StepBody(_Open):
    name: str
    type: str
    properties: dict[str, Any] = Field(default_factory=dict)
    on_success: list[str] = Field(default_factory=list, alias="onSuccess")
    on_failure: list[str] = Field(default_factory=list, alias="onFailure")


class TriggerBody(_Open):
    type: Literal["event", "elementRequest", "scheduled", "manual"]
    properties: dict[str, Any] = Field(default_factory=dict)
    on_success: list[str] = Field(default_factory=list, alias="onSuccess")
    on_failure: list[str] = Field(default_factory=list, alias="onFailure")


class FormulaBody(_Open):
    name: str
    description: str | None = None
    active: bool | None = None
    engine: Literal["v3"] | None = None
    configuration: list[ConfigurationEntry] = Field(default_factory=list)
    triggers: list[TriggerBody] = Field(default_factory=list)
    steps: list[StepBody] = Field(default_factory=list)


class StepRead(StepBody):
    id: int


class TriggerRead(TriggerBody):
    id: int


class FormulaRead(_Open):
    id: int
    name: str
    description: str
    active: bool
    engine: Literal["v3"]
    version: int
    configuration: list[dict[str, Any]]
    triggers: list[TriggerRead]
    steps: list[StepRead]
    created_date: str = Field(alias="createdDate")
    updated_date: str = Field(alias="updatedDate")


class InstanceBody(_Open):
    name: str
    active: bool | None = None
    configuration: dict[str, Any] = Field(default_factory=dict)
    settings: dict[str, Any] = Field(default_factory=dict)


class FormulaRef(_Open):
    id: int
    name: str
    active: bool


class InstanceRead(_Open):
    id: int
    name: str
    active: bool
    configuration: dict[str, str]
    settings: dict[str, Any]
    formula: FormulaRef
    number_consecutive_errors: int = Field(alias="numberConsecutiveErrors")
    created_date: str = Field(alias="createdDate")
    updated_date: str = Field(alias="updatedDate")


class StepValueRead(_Open):
    id: int
    key: str
    value: str
    truncated: bool | None = None


class StepExecutionRead(_Open):
    id: int
    step_name: str = Field(alias="stepName")
    status: Literal["success", "failed"]
    created_date: str = Field(alias="createdDate")
    updated_date: str = Field(alias="updatedDate")
    duration: int
    step_execution_values: list[StepValueRead] | None = Field(
        default=None, alias="stepExecutionValues"
    )


class ExecutionRead(_Open):
    id: int
    formula_instance_id: int = Field(alias="formulaInstanceId")
    formula_id: int = Field(alias="formulaId")
    formula_version: int = Field(alias="formulaVersion")
    status: Status
    created_date: str = Field(alias="createdDate")
    updated_date: str = Field(alias="updatedDate")
    step_executions: list[StepExecutionRead] | None = Field(default=None, alias="stepExecutions")


class ExecutionPatch(_Open):
    status: Literal["cancelled"]


class ReplayBody(_Open):
    from_step: str = Field(alias="fromStep")


class Deleted(_Open):
    """An empty object, as Open Connectors answers a delete."""
