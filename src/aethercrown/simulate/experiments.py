"""Glue from the simulated experiments to the experiments engine: the create body of each test,
its tracked events, and loading them into a tenant.

The simulator draws each visitor's variant at random (50/50), not with the SDK hash, so every
tracked event names its variant: the engine exposes an unseen user in the variant the event
names. Event ids are stable (``<experiment>:<visitor>:<what>``), so tracking twice stores once.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from aethercrown import clock
from aethercrown.core.ledger import record_outcome
from aethercrown.experiments import service as experiments_service
from aethercrown.experiments.schemas import ExperimentCreate, TrackBatch
from aethercrown.simulate.repository import VerdictRepository
from aethercrown.simulate.rowtable import RowTable

TRACK_BATCH = 5000  # the API's largest /track batch
CONVERSION = "conversion"
REVENUE = "revenue"

_NAMES = {
    "pricing_page_cta": "Pricing page CTA",
    "homepage_hero_aa": "Homepage hero (A/A)",
    "checkout_annual_nudge": "Checkout annual-plan nudge",
}
_HYPOTHESES = {
    "conversion": "The treatment raises the visitor conversion rate.",
    "aa": "An A/A test: both arms are identical, so no difference should be found.",
    "revenue": "The treatment raises order value, and so revenue per visitor, "
    "without lowering conversion.",
}


def experiment_name(spec: dict[str, Any]) -> str:
    return f"[demo] {_NAMES.get(spec['key'], spec['key'])}"


def create_body(
    spec: dict[str, Any], planned_users: int, engine: str = "frequentist"
) -> dict[str, Any]:
    """The ``/ab-test/create`` body for one experiment of ``truth.experiments``.

    A revenue test's primary metric is revenue per visitor, with conversion as a guardrail (the
    nudge must not cost sign-ups); the others measure conversion. The sequential engine is tuned
    to the experiment's planned sample size (its visitors), as confidence sequences should be.
    """
    metrics: list[dict[str, Any]] = [{"key": CONVERSION, "kind": "binomial", "role": "primary"}]
    if spec["kind"] == "revenue":
        metrics = [
            {"key": REVENUE, "kind": "revenue", "role": "primary"},
            {"key": CONVERSION, "kind": "binomial", "role": "guardrail"},
        ]
    allocation = spec["allocation"]
    return {
        "name": experiment_name(spec),
        "hypothesis": _HYPOTHESES.get(spec["kind"]),
        "variants": [{"key": key, "weight": weight} for key, weight in allocation.items()],
        "metrics": metrics,
        "engine": engine,
        "mde": 0.1,
        "sequential_tuning": max(1, planned_users),
        "seed": f"simulate:{spec['key']}",
    }


def experiment_rows(table: RowTable, key: str) -> RowTable:
    """The simulated visitors of one experiment."""
    names = np.asarray(table.columns["experiment"].data, dtype=object)
    return table.select(names == key)


def tracking_events(rows: RowTable, key: str) -> Iterator[dict[str, Any]]:
    """Per visitor: an impression, a conversion if they converted and, for a revenue test, the
    order value (minor units) as a revenue conversion."""
    for row in rows:
        user = row["user_id"]
        common = {"user_id": user, "variant": row["variant"], "occurred_at": row["assigned_at"]}
        yield {"event_id": f"{key}:{user}:imp", "kind": "impression", **common}
        if row["converted"]:
            yield {
                "event_id": f"{key}:{user}:cv",
                "kind": "conversion",
                "metric": CONVERSION,
                **common,
            }
        if row["revenue"]:
            yield {
                "event_id": f"{key}:{user}:rev",
                "kind": "conversion",
                "metric": REVENUE,
                "value": float(row["revenue"]),
                **common,
            }


def batches(events: Iterator[dict[str, Any]], size: int = TRACK_BATCH) -> Iterator[list[Any]]:
    batch: list[dict[str, Any]] = []
    for event in events:
        batch.append(event)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def load_experiments(
    session: Session,
    tenant_id: uuid.UUID,
    table: RowTable,
    specs: list[dict[str, Any]],
    actor: str,
) -> dict[str, dict[str, Any]]:
    """Create each simulated experiment in the tenant with its tracked events, then stop it at
    its simulated end (its results stay readable). An experiment the tenant already holds (same
    name) is left as it is. Returns {key: {experiment_id, created, events, users}}."""
    out: dict[str, dict[str, Any]] = {}
    for spec in specs:
        existing = experiments_service.by_name(session, tenant_id, experiment_name(spec))
        if existing is not None:
            out[spec["key"]] = {"experiment_id": str(existing.id), "created": False}
            continue
        rows = experiment_rows(table, spec["key"])
        body = create_body(spec, len(rows))
        experiment, _ = experiments_service.create(
            session, tenant_id, ExperimentCreate.model_validate(body), actor
        )
        experiment.started_at = datetime.fromisoformat(spec["start"])
        accepted = exposed = 0
        for batch in batches(tracking_events(rows, spec["key"])):
            # The API's own batch type: one validator call for the batch, not one per event.
            events = TrackBatch.model_validate({"events": batch}).events
            tracked = experiments_service.track(session, tenant_id, experiment, events)
            accepted += tracked.accepted
            exposed += tracked.newly_exposed
        # Stopped at its simulated end, where its results give the engine's verdict (into the
        # ledger, as any read of a new verdict does), which the truth then judges.
        ended = datetime.fromisoformat(spec["end"])
        with clock.travel(ended, tick=False):
            experiments_service.stop(session, tenant_id, experiment.id, actor)
            results = experiments_service.results(session, tenant_id, experiment)
            session.flush()
            verdict = VerdictRepository(session, tenant_id).latest(experiment.id)
            if verdict is not None:
                correct = verdict_is_right(spec, results.verdict, results.winner)
                record_outcome(
                    verdict,
                    {
                        "source": "simulator truth",
                        "has_real_effect": spec["has_real_effect"],
                        "true_relative_lift": spec.get(
                            "true_revenue_relative_lift", spec["true_relative_lift"]
                        ),
                        "verdict": results.verdict,
                        "winner": results.winner,
                        "correct": correct,
                    },
                    1.0 if correct else 0.0,
                    ended,
                )
        out[spec["key"]] = {
            "experiment_id": str(experiment.id),
            "created": True,
            "events": accepted,
            "users": exposed,
            "verdict": results.verdict,
        }
    return out


def verdict_is_right(spec: dict[str, Any], verdict: str, winner: str | None) -> bool:
    """A verdict against the truth: a real improvement must be shipped (the treatment wins),
    and where there is none (an A/A test) neither arm may be declared better or worse."""
    if spec["has_real_effect"]:
        return verdict == "winner" and winner == "treatment"
    return verdict not in ("winner", "loser")
