"""Server-rendered executive and investor dashboard pages (Jinja2 + vendored uPlot)."""
