"""Signed webhooks to tenants: the outbox, delivery with retries, the deliveries API."""
