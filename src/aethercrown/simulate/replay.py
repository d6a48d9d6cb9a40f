"""The demo company's past, lived through by the platform's own automation.

Once the company's rows are stored, the clock (``aethercrown.clock.travel``) walks through the
window and the automation runner ticks at each replayed instant (``Runner.tick``, scoped to the
demo tenant): the same claims, run history and job functions as ``aethercrown automate``. A job
sees only what existed at its instant, through its own point-in-time queries — churn features
and labels as of a moment, the marketing days before the one it allocates, a day's return only
once the day is over — and joins outcomes with its own code when the clock passes the moment
they become known: a churn score 30 days later (churned or not), a campaign against its
holdout, an allocation once its day's return is in. So the decision ledger holds decisions
whose outcomes are measured, and "AI performance" reads what they were worth.

What is replayed, and how often (in production each job runs at its own interval):

- ``churn.retrain`` (weekly in production): every 26 weeks over the last year — at mid-year,
  so the second half is scored by the tenant's own model, and on the end's day, for the model
  the runner goes on with. A training reads every monthly snapshot of the history (≈ 4 s on the
  default demo), and a model trained on months of snapshots changes little in a week.
- ``churn.score`` (every 12 hours): every 4 weeks over the last year. Each run scores every
  active customer (≈ 0.7 s on the default demo); 13 runs leave some 17,000 scores, 15,000 of
  them with a known outcome — enough for AUC and calibration — and campaigns every four weeks
  (a customer's cooldown is 30 days anyway).
- ``budget.daily_allocation`` (daily): weekly over the last three weeks. Each run refits every
  channel's response curve with restarts and a bootstrap (1.3–4 s on the demo's noisy days, the
  dearest job), so only three allocations are replayed, two of them closed with their day's
  return; once fits are cached (issue 15) it can run daily.

Not replayed — the runner does them from its first tick on: ``health_checks`` (it measures this
installation, which did not exist in the company's past: its samples would be invented);
``usage_fold`` and ``webhook_delivery`` (installation-wide: replayed, they would act for every
tenant at a moment that is not theirs); ``key_rotation`` (the tenant's keys are created today);
``task_scheduling`` and ``experiments.bandit_reweight`` (the demo has no tasks or bandits);
``analytics_snapshots`` (a cache of the current view); ``renewal_model_training`` (it trains and
joins the renewal scores only the API makes).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from aethercrown import clock
from aethercrown.automation.service import Runner, default_runner_id
from aethercrown.core.jobs import JobSpec, all_jobs
from aethercrown.core.ledger_repository import decision_counts
from aethercrown.db.session import write_transaction
from aethercrown.settings import Settings


@dataclass(frozen=True)
class Cadence:
    every: timedelta
    # How far before the window's end the job's replay begins (never before the window).
    span: timedelta


CADENCES: dict[str, Cadence] = {
    "churn.retrain": Cadence(timedelta(weeks=26), timedelta(days=364)),
    "churn.score": Cadence(timedelta(weeks=4), timedelta(days=364)),
    "budget.daily_allocation": Cadence(timedelta(weeks=1), timedelta(days=15)),
}
# At one instant a new model is trained before the scores that use it.
ORDER = ("churn.retrain", "churn.score", "budget.daily_allocation")

# (done, total) replayed instants
ReplayProgress = Callable[[int, int], None]


def schedule(
    start: date, end: datetime, cadences: dict[str, Cadence] = CADENCES
) -> list[tuple[datetime, list[str]]]:
    """The replayed instants, oldest first, each with the jobs due then. A job's instants are
    midnights UTC counted back from the end's day every ``every`` (so its latest replay is the
    most recent), strictly before the end and not before ``max(start, end − span)``."""
    window_start = datetime.combine(start, datetime.min.time(), UTC)
    last = datetime.combine(end.astimezone(UTC).date(), datetime.min.time(), UTC)
    due: dict[datetime, list[str]] = {}
    for name in ORDER:
        cadence = cadences.get(name)
        if cadence is None:
            continue
        first = max(window_start, end - cadence.span)
        moment = last
        while moment >= first:
            if moment < end:
                due.setdefault(moment, []).append(name)
            moment -= cadence.every
    return [(moment, sorted(due[moment], key=ORDER.index)) for moment in sorted(due)]


def replay(
    factory: sessionmaker[Session],
    tenant_id: uuid.UUID,
    start: date,
    end: datetime,
    *,
    settings: Settings | None = None,
    progress: ReplayProgress | None = None,
    cadences: dict[str, Cadence] = CADENCES,
) -> dict[str, Any]:
    """Tick the runner at every instant of ``schedule`` with the clock frozen there, for this
    tenant only; returns what ran and what the ledger holds after it."""
    began = time.perf_counter()
    jobs: dict[str, JobSpec] = {job.name: job for job in all_jobs()}
    plan = schedule(start, end, cadences)
    runner_id = f"demo-replay:{default_runner_id()}"
    ran: dict[str, dict[str, Any]] = {
        name: {"runs": 0, "failed": 0, "seconds": 0.0} for name in ORDER if name in cadences
    }
    errors: list[str] = []
    for done, (moment, names) in enumerate(plan, start=1):
        with clock.travel(moment, tick=False):
            for name in names:
                runner = Runner(
                    factory,
                    [jobs[name]],
                    settings=settings,
                    runner_id=runner_id,
                    tenant_ids=frozenset({tenant_id}),
                )
                # Timed here: the run history's times are the frozen, replayed ones.
                took = time.perf_counter()
                results = runner.tick(moment)
                ran[name]["seconds"] += time.perf_counter() - took
                for result in results:
                    ran[name]["runs"] += 1
                    if result.status != "succeeded":
                        ran[name]["failed"] += 1
                        errors.append(f"{name} at {moment.isoformat()}: {result.error}")
        if progress is not None:
            progress(done, len(plan))
    with write_transaction(factory) as session:
        ledger = decision_counts(session, tenant_id)
    return {
        "from": plan[0][0].isoformat() if plan else None,
        "to": plan[-1][0].isoformat() if plan else None,
        "instants": len(plan),
        "jobs": {
            name: {
                **counts,
                "seconds": round(counts["seconds"], 2),
                "every_days": cadences[name].every.days,
                "production_interval_hours": jobs[name].interval_seconds / 3600,
            }
            for name, counts in ran.items()
        },
        "errors": errors[:20],
        "decisions": {kind: {"decisions": n, "with_outcome": k} for kind, (n, k) in ledger.items()},
        "seconds": round(time.perf_counter() - began, 2),
    }
