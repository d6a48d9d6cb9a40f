"""Alert channels: a tenant's alerts and decisions sent to Slack-compatible webhooks and email."""
