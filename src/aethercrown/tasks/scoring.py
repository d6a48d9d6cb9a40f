"""The task score (seed: priority × 100 + age score + duration score + dependency score).

Every term is a plain function of stored values, so a score can be recomputed and explained:

- priority term: ``priority × 100`` (priority 1 = low … 4 = critical), so one priority step
  outweighs any single other term;
- age term: ``+1 per minute`` since the task was scheduled, capped at ``AGE_CAP`` (60): a task
  waiting an hour has gained most of a priority step, so low priorities cannot starve;
- duration term: ``DURATION_MAX − estimated minutes`` floored at 0 (+30 for an instant task,
  nothing for tasks of 30 min or more): shorter tasks first, which lowers the mean wait;
- dependency term: ``+10 per task that depends on this one``, capped at ``DEPENDENCY_CAP`` (50):
  finishing a task others wait for unblocks them.
"""

from __future__ import annotations

from dataclasses import dataclass

from aethercrown.core.backoff import exponential_backoff

PRIORITY_WEIGHT = 100
AGE_PER_MINUTE = 1.0
AGE_CAP = 60.0
DURATION_MAX = 30.0
DEPENDENCY_PER_DEPENDENT = 10.0
DEPENDENCY_CAP = 50.0

# Retry backoff: BACKOFF_BASE_SECONDS × 2^(attempt − 1), at most BACKOFF_MAX_SECONDS.
BACKOFF_BASE_SECONDS = 30.0
BACKOFF_MAX_SECONDS = 3600.0


@dataclass(frozen=True)
class ScoreTerms:
    priority: float
    age: float
    duration: float
    dependency: float

    @property
    def total(self) -> float:
        return self.priority + self.age + self.duration + self.dependency


def priority_term(priority: int) -> float:
    return float(priority * PRIORITY_WEIGHT)


def age_term(waited_seconds: float) -> float:
    return min(AGE_CAP, max(0.0, waited_seconds) / 60.0 * AGE_PER_MINUTE)


def duration_term(estimated_seconds: float) -> float:
    return max(0.0, DURATION_MAX - estimated_seconds / 60.0)


def dependency_term(dependents: int) -> float:
    return min(DEPENDENCY_CAP, DEPENDENCY_PER_DEPENDENT * dependents)


def static_score(priority: int, estimated_seconds: float, dependents: int) -> float:
    """The terms that do not change while a task waits (stored; age is added at claim time)."""
    return priority_term(priority) + duration_term(estimated_seconds) + dependency_term(dependents)


def terms(priority: int, estimated_seconds: float, dependents: int, waited: float) -> ScoreTerms:
    return ScoreTerms(
        priority=priority_term(priority),
        age=age_term(waited),
        duration=duration_term(estimated_seconds),
        dependency=dependency_term(dependents),
    )


def backoff_seconds(attempt: int) -> float:
    """Delay before the next claim after the ``attempt``-th attempt failed."""
    return exponential_backoff(attempt, BACKOFF_BASE_SECONDS, BACKOFF_MAX_SECONDS)
