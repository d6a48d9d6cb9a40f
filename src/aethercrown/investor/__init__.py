"""The investor view: live KPIs, the sanitised activity feed, monthly reports, public metrics."""
