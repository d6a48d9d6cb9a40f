"""The tenant's own plans for its customers, pricing factor tables and quotes."""
