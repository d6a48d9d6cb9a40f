"""The contract between domains and the automation runner.

A domain that has periodic work lists it in its ``jobs.py`` as ``JOBS: list[JobSpec]`` and is
named in ``JOB_MODULES`` below; the runner (``aethercrown.automation``) claims each job once per
period across every runner process and calls it inside a unit of work.
"""

from __future__ import annotations

import importlib
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from aethercrown.settings import Settings, get_settings

# A job function gets the session of its unit of work (never commit inside), the tenant it
# runs for (None for installation-wide jobs), and the start of the period it was claimed for.
# It returns a JSON-able summary of what it decided, kept in the run history.
JobFunction = Callable[[Session, uuid.UUID | None, datetime], dict[str, Any]]
# A job that calls the network or computes for long (webhook delivery, model training) gets the
# session factory instead, and opens its own short units of work (db.session.read_transaction,
# write_transaction) around its reads and writes, with none open while it sends or computes:
# otherwise it would hold SQLite's one write lock (or PostgreSQL row locks) all along.
UnitsJobFunction = Callable[[sessionmaker[Session], uuid.UUID | None, datetime], dict[str, Any]]
# The run's main decision in a few words, from its summary ("allocated USD 2,620.00 over 7
# channels…"); `aethercrown automate --once` prints it. The domain that wrote the summary reads it.
Headline = Callable[[dict[str, Any]], str]


@dataclass(frozen=True)
class JobSpec:
    name: str
    interval_seconds: int
    run: JobFunction | None = None
    per_tenant: bool = True
    description: str = ""
    headline: Headline | None = None
    run_in_units: UnitsJobFunction | None = None

    def __post_init__(self) -> None:
        if (self.run is None) == (self.run_in_units is None):
            raise ValueError(f"job {self.name}: give exactly one of run and run_in_units")

    def describe(self, summary: dict[str, Any] | None) -> str:
        """The headline of a run's summary; a job without one shows its summary's plain figures."""
        if summary is None:
            return "no summary"
        if self.headline is not None:
            return self.headline(summary)
        plain = [f"{k} {v}" for k, v in summary.items() if isinstance(v, int | float | str)]
        return ", ".join(plain) or "done"


def count(n: int, noun: str) -> str:
    """``count(1, "customer")`` → "1 customer"; ``count(2, …)`` → "2 customers"."""
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


# Domains with periodic work; each module exposes JOBS.
JOB_MODULES: tuple[str, ...] = (
    "aethercrown.webhooks.jobs",
    "aethercrown.experiments.jobs",
    "aethercrown.budget.jobs",
    "aethercrown.health.jobs",
    "aethercrown.tasks.jobs",
    "aethercrown.security.jobs",
    "aethercrown.churn.jobs",
    "aethercrown.analytics.jobs",
    "aethercrown.metering.jobs",
    "aethercrown.content.jobs",
    "aethercrown.onboarding.jobs",
    "aethercrown.alerts.jobs",
    "aethercrown.connectors.jobs",
)


def all_jobs() -> list[JobSpec]:
    jobs: list[JobSpec] = []
    for module in JOB_MODULES:
        jobs.extend(importlib.import_module(module).JOBS)
    names = [j.name for j in jobs]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise RuntimeError(f"duplicate job names: {sorted(duplicates)}")
    return jobs


# The settings of the runner that calls a job (its data_dir, secret key, Redis URL…), so jobs
# need not read the environment themselves; set by the runner around each call.
_JOB_SETTINGS: ContextVar[Settings | None] = ContextVar("job_settings", default=None)


def job_settings() -> Settings:
    """The settings a job runs under: the runner's, else the environment's."""
    return _JOB_SETTINGS.get() or get_settings()


@contextmanager
def job_settings_scope(settings: Settings | None) -> Iterator[None]:
    token = _JOB_SETTINGS.set(settings)
    try:
        yield
    finally:
        _JOB_SETTINGS.reset(token)
