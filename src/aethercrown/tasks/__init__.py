"""The AI task scheduler: tasks with dependencies, workers with leases, and queue metrics."""
