"""Revenue analytics, the executive dashboard and forecasts, computed from stored data."""
