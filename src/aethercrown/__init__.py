"""AetherCrown: growth and revenue operations on autopilot for SaaS businesses."""

__version__ = "0.1.0"
