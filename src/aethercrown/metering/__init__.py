"""Usage metering: events, meters, rollups, quotas, alerts, upsell triggers and renewal odds."""
