"""The automation runner: every registered job exactly once per period, across runner processes."""
