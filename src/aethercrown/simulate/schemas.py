"""API shapes of the simulated truth."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field


class TruthOut(BaseModel):
    tenant_id: uuid.UUID
    seed: int
    config: dict[str, Any]
    generator_version: str
    generated_at: datetime
    row_counts: dict[str, Any] = Field(
        description="Rows written through ingestion per kind, rows generated, and the generated "
        "kinds not ingested (with why)"
    )
    truth: dict[str, Any] = Field(
        description="Hazard (form, intercept, coefficients, feature definitions), churn events, "
        "channel curves and revenue per conversion, seasonality, experiments' true effects, "
        "MRR by month, renewals, plan changes, plans and capacities, usage, subscriptions"
    )


class ChurnProbability(BaseModel):
    customer: str
    probability: float
    churned: bool = Field(description="Whether the customer really churned within the horizon")


class ChurnProbabilitiesOut(BaseModel):
    as_of: date
    horizon_days: int
    mode: Literal["path", "as_of"]
    customers: int
    churned: int
    items: list[ChurnProbability]
