"""Imports every domain's tables so that Alembic and the tests see the whole schema.

A new domain with tables adds its ``models`` module here.
"""

from __future__ import annotations

import importlib

from aethercrown.db.base import Base

MODEL_MODULES = (
    "aethercrown.core.models",
    "aethercrown.webhooks.models",
    "aethercrown.metering.models",
    "aethercrown.pricing.models",
    "aethercrown.data.models",
    "aethercrown.simulate.models",
    "aethercrown.experiments.models",
    "aethercrown.tasks.models",
    "aethercrown.automation.models",
    "aethercrown.health.models",
    "aethercrown.churn.models",
    "aethercrown.analytics.models",
    "aethercrown.budget.models",
    "aethercrown.content.models",
    "aethercrown.onboarding.models",
    "aethercrown.web.models",
    "aethercrown.connectors.models",
    "aethercrown.alerts.models",
)

for _module in MODEL_MODULES:
    importlib.import_module(_module)

metadata = Base.metadata
