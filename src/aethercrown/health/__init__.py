"""Health checks of the installation and their trends."""
