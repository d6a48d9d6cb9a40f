"""Periodic work of alert channels: send the deliveries that are due."""

from __future__ import annotations

from aethercrown.alerts import service
from aethercrown.core.jobs import job_settings
from aethercrown.core.outbox import delivery_job

JOBS = [
    delivery_job(
        "alert_delivery",
        # The settings are read at each run (job_settings: the runner's, or the process's).
        lambda factory: service.deliver_due(factory, job_settings()),
        "Send due alerts to Slack-compatible webhooks and email, with retries",
        "no alert due",
    )
]
