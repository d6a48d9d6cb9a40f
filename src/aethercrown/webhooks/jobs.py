"""Periodic work of the webhook outbox: send the deliveries that are due."""

from __future__ import annotations

from aethercrown.core.outbox import delivery_job
from aethercrown.webhooks import service

JOBS = [
    delivery_job(
        "webhook_delivery",
        service.deliver_due,
        "Send due outbound webhooks, with retries and backoff",
        "no webhook due",
    )
]
