"""API shapes of alert channels, their deliveries and a test send."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, model_validator

from aethercrown.alerts.catalogue import FILTERABLE

Name = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^\S(.*\S)?$")]
Email = Annotated[str, Field(pattern=r"^[^@\s<>,;\"]{1,64}@[^@\s<>,;\"]{1,255}$", max_length=320)]
EventPattern = Annotated[
    str,
    Field(
        min_length=1,
        max_length=100,
        pattern=r"^[a-z*][a-z0-9_.*]*$",
        examples=["usage.alert.*", "sla.breach"],
        description=f"An event type or a prefix ending in '*'. Events: {', '.join(FILTERABLE)}",
    ),
]
Severity = Literal["info", "warning", "critical"]
WebhookUrl = Annotated[str, Field(min_length=1, max_length=2000)]


class _Filter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event_types: list[EventPattern] | None = Field(
        default=None, max_length=50, description="Empty or absent: every event"
    )
    min_severity: Severity | None = None


class AlertChannelCreate(_Filter):
    name: Name
    kind: Literal["slack", "email"]
    enabled: StrictBool = True
    webhook_url: WebhookUrl | None = Field(
        default=None, description="slack: the incoming webhook's https URL (stored encrypted)"
    )
    recipients: list[Email] | None = Field(
        default=None, min_length=1, max_length=50, description="email: who receives the alerts"
    )

    @model_validator(mode="after")
    def _kind_fields(self) -> AlertChannelCreate:
        if self.kind == "slack":
            if self.webhook_url is None:
                raise ValueError("a slack channel needs webhook_url")
            if self.recipients is not None:
                raise ValueError("a slack channel has no recipients")
        else:
            if not self.recipients:
                raise ValueError("an email channel needs recipients")
            if self.webhook_url is not None:
                raise ValueError("an email channel has no webhook_url")
        return self


class AlertChannelUpdate(_Filter):
    """Only the fields sent change; a channel's kind cannot."""

    name: Name | None = None
    enabled: StrictBool | None = None
    webhook_url: WebhookUrl | None = None
    recipients: list[Email] | None = Field(default=None, min_length=1, max_length=50)


class AlertChannelOut(BaseModel):
    id: uuid.UUID
    name: str
    kind: str
    enabled: bool
    event_types: list[str]
    min_severity: str
    webhook_url: str | None = Field(description="masked: the host and the last characters")
    recipients: list[str]
    created_at: datetime
    updated_at: datetime


class AlertDeliveryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    channel_id: uuid.UUID
    event_id: uuid.UUID
    event_type: str
    severity: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_status_code: int | None
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime
    payload: dict[str, Any]


class TestResult(BaseModel):
    delivered: bool
    delivery_id: uuid.UUID
    status_code: int | None = Field(description="HTTP status (slack) or SMTP reply code (email)")
    error: str | None
