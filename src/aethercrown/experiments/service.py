"""Orchestration for experiments: create/stop/archive, assignment, tracking, results, verdicts,
the stateless analysis, the power calculator and bandit reweighting. Never commits."""

from __future__ import annotations

import math
import uuid
import zlib
from collections.abc import Sequence
from typing import Any, cast

import numpy as np
from sqlalchemy.orm import Session

from aethercrown.clock import utcnow
from aethercrown.core.errors import Conflict, InvalidInput, field_error
from aethercrown.core.ledger import audit, record_decision
from aethercrown.core.numbers import plain
from aethercrown.experiments import repository, schemas
from aethercrown.experiments.models import (
    Experiment,
    ExperimentAssignment,
    ExperimentCovariate,
    ExperimentEvent,
)
from aethercrown.experiments.repository import (
    AssignmentRepository,
    EventRepository,
    ExperimentRepository,
    VariantSums,
    insert_ignoring_duplicates,
    metric_sums,
)
from aethercrown.experiments.stats import bandit, hashing, power
from aethercrown.experiments.stats.analysis import PROBLEMS, BatchResult, MetricBatch, analyse
from aethercrown.experiments.stats.corrections import Correction, adjust
from aethercrown.experiments.stats.srm import SRM_THRESHOLD

MODEL_VERSION = "1"
WEIGHT_TOLERANCE = 1e-6


# --- create, list, stop, archive -------------------------------------------------------------


def validate_weights(
    weights: Sequence[float | None], normalise: bool, loc: str = "variants"
) -> tuple[list[float], bool]:
    """Weights that sum to 1 (equal when none given); (weights, whether they were normalised)."""
    if all(w is None for w in weights):
        return [1.0 / len(weights)] * len(weights), False
    if any(w is None for w in weights):
        raise InvalidInput(
            "Give a weight for every variant or for none",
            [
                field_error([loc, i, "weight"], "missing weight")
                for i, w in enumerate(weights)
                if w is None
            ],
        )
    values = [float(w) for w in weights if w is not None]
    negative = [i for i, w in enumerate(values) if w < 0]
    if negative:
        raise InvalidInput(
            "Weights must not be negative",
            [field_error([loc, i, "weight"], "weight is negative") for i in negative],
        )
    total = sum(values)
    if total <= 0:
        raise InvalidInput("Weights sum to 0", [field_error([loc], "weights sum to 0")])
    if abs(total - 1.0) <= WEIGHT_TOLERANCE:
        return values, False
    if not normalise:
        raise InvalidInput(
            f"Weights sum to {plain(total, 6)}, not 1; they were not normalised "
            "(send normalise_weights: true to scale them to sum to 1)",
            [field_error([loc], f"weights sum to {plain(total, 6)}, not 1; not normalised")],
        )
    return [w / total for w in values], True


def create(
    session: Session, tenant_id: uuid.UUID, body: schemas.ExperimentCreate, actor: str
) -> tuple[Experiment, bool]:
    if len(body.variants) < 2:
        raise InvalidInput(
            "An experiment needs at least two variants (a control and one treatment)",
            [field_error(["variants"], f"{len(body.variants)} given, at least 2 needed")],
        )
    _unique([v.key for v in body.variants], "variants")
    if not body.metrics:
        raise InvalidInput("Give at least one metric", [field_error(["metrics"], "empty")])
    _unique([m.key for m in body.metrics], "metrics")
    weights, normalised = validate_weights(
        [v.weight for v in body.variants], body.normalise_weights
    )
    if body.bandit and body.bandit_floor * len(weights) > 1:
        raise InvalidInput(
            "The bandit floor times the number of variants exceeds 1",
            [field_error(["bandit_floor"], "too large for this many variants")],
        )
    metrics = [m.model_dump() | {"name": m.name or m.key} for m in body.metrics]
    if not any(m["role"] == "primary" for m in metrics):
        metrics[0]["role"] = "primary"
    experiment_id = uuid.uuid4()
    experiment = Experiment(
        name=body.name,
        hypothesis=body.hypothesis,
        status="running",
        seed=body.seed or str(experiment_id),
        hash_version=2,
        coverage=body.coverage,
        variants=[{"key": v.key, "name": v.name or v.key} for v in body.variants],
        weights=weights,
        configured_weights=weights,
        metrics=metrics,
        engine=body.engine,
        alpha=body.alpha,
        mde=body.mde,
        power=body.power,
        sequential_tuning=body.sequential_tuning,
        correction=body.correction,
        bandit=body.bandit,
        bandit_floor=body.bandit_floor,
    )
    ExperimentRepository(session, tenant_id).add(experiment)
    session.flush()
    audit(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action="experiment.create",
        target_type="experiment",
        target_id=experiment.id,
        details={"name": body.name, "weights": weights, "normalised": normalised},
    )
    return experiment, normalised


def get(session: Session, tenant_id: uuid.UUID, experiment_id: uuid.UUID) -> Experiment:
    """The tenant's experiment (404 for another tenant's or none)."""
    return ExperimentRepository(session, tenant_id).get_or_404(experiment_id)


def by_name(session: Session, tenant_id: uuid.UUID, name: str) -> Experiment | None:
    return ExperimentRepository(session, tenant_id).by_name(name)


def _unique(keys: list[str], loc: str) -> None:
    seen: set[str] = set()
    for i, key in enumerate(keys):
        if key in seen:
            raise InvalidInput(
                f"Duplicate key {key!r} in {loc}", [field_error([loc, i, "key"], "duplicate key")]
            )
        seen.add(key)


def to_out(experiment: Experiment, normalised: bool = False) -> schemas.ExperimentOut:
    return schemas.ExperimentOut(
        id=experiment.id,
        name=experiment.name,
        hypothesis=experiment.hypothesis,
        status=experiment.status,
        variants=[
            schemas.VariantOut(key=v["key"], name=v["name"], weight=w)
            for v, w in zip(experiment.variants, experiment.weights, strict=True)
        ],
        metrics=[schemas.MetricOut(**m) for m in experiment.metrics],
        engine=experiment.engine,
        alpha=experiment.alpha,
        mde=experiment.mde,
        power=experiment.power,
        sequential_tuning=experiment.sequential_tuning,
        correction=experiment.correction,
        seed=experiment.seed,
        hash_version=experiment.hash_version,
        coverage=experiment.coverage,
        bandit=experiment.bandit,
        bandit_floor=experiment.bandit_floor,
        weights_normalised=normalised,
        last_verdict=experiment.last_verdict,
        started_at=experiment.started_at,
        stopped_at=experiment.stopped_at,
        archived_at=experiment.archived_at,
    )


def stop(
    session: Session, tenant_id: uuid.UUID, experiment_id: uuid.UUID, actor: str
) -> Experiment:
    experiment = ExperimentRepository(session, tenant_id).get_or_404(experiment_id)
    if experiment.status != "running":
        raise Conflict(f"Experiment {experiment_id} is {experiment.status}, not running")
    experiment.status = "stopped"
    experiment.stopped_at = utcnow()
    audit(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action="experiment.stop",
        target_type="experiment",
        target_id=experiment.id,
    )
    return experiment


def archive(
    session: Session, repo: ExperimentRepository, experiment_id: uuid.UUID, actor: str
) -> Experiment:
    experiment = repo.get_or_404(experiment_id)
    if experiment.status == "archived":
        raise Conflict(f"Experiment {experiment_id} is already archived")
    now = utcnow()
    experiment.stopped_at = experiment.stopped_at or now
    experiment.status = "archived"
    experiment.archived_at = now
    audit(
        session,
        tenant_id=repo.tenant_id,
        actor=actor,
        action="experiment.archive",
        target_type="experiment",
        target_id=experiment.id,
    )
    return experiment


# --- assignment and tracking ------------------------------------------------------------------


def _running(experiment: Experiment) -> None:
    if experiment.status != "running":
        raise Conflict(f"Experiment {experiment.id} is {experiment.status}; it takes no new data")


def bucket(experiment: Experiment, user_id: str) -> int:
    return hashing.assign(
        experiment.seed, user_id, experiment.weights, experiment.coverage, experiment.hash_version
    )


def assign(
    session: Session, tenant_id: uuid.UUID, experiment: Experiment, body: schemas.AssignIn
) -> schemas.AssignOut:
    _running(experiment)
    metric_keys = {m["key"] for m in experiment.metrics}
    unknown = [k for k in body.covariates if k not in metric_keys]
    if unknown:
        raise InvalidInput(
            f"Unknown metric {unknown[0]!r} in covariates",
            [field_error(["covariates", k], "not a metric of this experiment") for k in unknown],
        )
    assignments = AssignmentRepository(session, tenant_id)
    existing = assignments.variants_of(experiment.id, [body.user_id])
    variant = existing.get(body.user_id)
    newly = False
    if variant is None:
        variant = bucket(experiment, body.user_id)
        if variant < 0:
            raise Conflict(
                f"User {body.user_id} is outside the experiment's coverage",
                slug="not-in-experiment",
            )
        newly = _expose(session, tenant_id, experiment.id, {body.user_id: variant}) == 1
        variant = assignments.variants_of(experiment.id, [body.user_id])[body.user_id]
    if body.covariates:
        insert_ignoring_duplicates(
            session,
            ExperimentCovariate,
            [
                {
                    "tenant_id": tenant_id,
                    "experiment_id": experiment.id,
                    "user_id": body.user_id,
                    "metric_key": key,
                    "value": value,
                }
                for key, value in body.covariates.items()
            ],
            ["experiment_id", "user_id", "metric_key"],
        )
    return schemas.AssignOut(
        experiment_id=experiment.id,
        user_id=body.user_id,
        variant=experiment.variants[variant]["key"],
        variant_index=variant,
        newly_exposed=newly,
    )


def _expose(
    session: Session, tenant_id: uuid.UUID, experiment_id: uuid.UUID, users: dict[str, int]
) -> int:
    now = utcnow()
    return insert_ignoring_duplicates(
        session,
        ExperimentAssignment,
        [
            {
                "tenant_id": tenant_id,
                "experiment_id": experiment_id,
                "user_id": u,
                "variant": v,
                "assigned_at": now,
            }
            for u, v in users.items()
        ],
        ["experiment_id", "user_id"],
    )


def track(
    session: Session, tenant_id: uuid.UUID, experiment: Experiment, events: list[schemas.TrackEvent]
) -> schemas.TrackOut:
    """Store events (a user not yet exposed is exposed by their first event, in the variant the
    event names or else the one the hash gives). Validates the whole batch before writing."""
    _running(experiment)
    variant_index = {v["key"]: i for i, v in enumerate(experiment.variants)}
    metrics = {m["key"]: m for m in experiment.metrics}
    known = AssignmentRepository(session, tenant_id).variants_of(
        experiment.id, sorted({e.user_id for e in events})
    )
    errors: list[dict[str, Any]] = []
    to_expose: dict[str, int] = {}
    rows: list[dict[str, Any]] = []
    for i, event in enumerate(events):
        loc: list[str | int] = ["events", i] if len(events) > 1 else []
        metric = None
        if event.kind == "conversion":
            key = event.metric or _primary(experiment)["key"]
            metric = metrics.get(key)
            if metric is None:
                errors.append(field_error([*loc, "metric"], f"unknown metric {key!r}"))
                continue
            if metric["kind"] in ("revenue", "mean") and event.value is None:
                errors.append(field_error([*loc, "value"], f"metric {key!r} needs a value"))
                continue
            if metric["kind"] == "count" and event.value is not None and event.value < 0:
                errors.append(field_error([*loc, "value"], "a count cannot be negative"))
                continue
        elif event.metric is not None:
            errors.append(field_error([*loc, "metric"], "impressions carry no metric"))
            continue
        wanted = None
        if event.variant is not None:
            wanted = variant_index.get(event.variant)
            if wanted is None:
                errors.append(field_error([*loc, "variant"], f"unknown variant {event.variant!r}"))
                continue
        current = known.get(event.user_id, to_expose.get(event.user_id))
        if current is None:
            current = wanted if wanted is not None else bucket(experiment, event.user_id)
            if current < 0:
                errors.append(field_error([*loc, "user_id"], "user is outside the coverage"))
                continue
            to_expose[event.user_id] = current
        elif wanted is not None and wanted != current:
            errors.append(
                field_error(
                    [*loc, "variant"],
                    f"user {event.user_id} is in {experiment.variants[current]['key']!r}, "
                    f"not {event.variant!r}",
                )
            )
            continue
        rows.append(
            {
                "tenant_id": tenant_id,
                "experiment_id": experiment.id,
                "event_id": event.event_id,
                "user_id": event.user_id,
                "variant": current,
                "kind": event.kind,
                "metric_key": metric["key"] if metric else None,
                "value": 1.0 if event.value is None else event.value,
                "occurred_at": event.occurred_at or utcnow(),
            }
        )
    if errors:
        raise InvalidInput(f"{len(errors)} event(s) are not valid; nothing was stored", errors)
    exposed = _expose(session, tenant_id, experiment.id, to_expose)
    accepted = insert_ignoring_duplicates(
        session, ExperimentEvent, rows, ["experiment_id", "event_id"]
    )
    return schemas.TrackOut(
        accepted=accepted, duplicates=len(rows) - accepted, newly_exposed=exposed
    )


def _primary(experiment: Experiment) -> dict[str, Any]:
    return next((m for m in experiment.metrics if m["role"] == "primary"), experiment.metrics[0])


# --- results ----------------------------------------------------------------------------------


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def results(
    session: Session, tenant_id: uuid.UUID, experiment: Experiment, engine: str | None = None
) -> schemas.ExperimentResults:
    """The experiment's results, with a new verdict recorded in the ledger: for a unit of work
    that writes (a job, a replay). A read request evaluates, then records in a write unit of its
    own (``evaluate`` and ``record_verdict``)."""
    out, batch = evaluate(session, tenant_id, experiment, engine)
    _record_verdict(session, tenant_id, experiment, out, batch)
    return out


def evaluate(
    session: Session, tenant_id: uuid.UUID, experiment: Experiment, engine: str | None = None
) -> tuple[schemas.ExperimentResults, MetricBatch]:
    """The experiment's results and the sums they were computed from; reads only."""
    engine = engine or experiment.engine
    k = len(experiment.variants)
    users = AssignmentRepository(session, tenant_id).users_per_variant(experiment.id)
    impressions = EventRepository(session, tenant_id).impressions_per_variant(experiment.id)
    sums: list[list[VariantSums]] = []
    empty = VariantSums(0, 0.0, 0.0, 0.0, 0, 0.0, 0.0, 0.0)
    for metric in experiment.metrics:
        by_variant = metric_sums(session, tenant_id, experiment.id, metric["key"], metric["kind"])
        sums.append([by_variant.get(v, empty) for v in range(k)])

    batch = _metric_batch(experiment, sums, users)
    options: dict[str, Any] = {
        "alpha": experiment.alpha,
        "sequential_tuning": experiment.sequential_tuning,
    }
    relative = analyse(batch, engine, relative=True, **options)  # type: ignore[arg-type]
    absolute = analyse(batch, engine, relative=False, **options)  # type: ignore[arg-type]
    # Bandit traffic moves on purpose, so the configured split is no yardstick for it.
    srm_p = 1.0 if experiment.bandit else float(relative.srm_p_value[0])
    srm = srm_p < SRM_THRESHOLD
    adjusted = None
    if relative.p_value is not None:
        method = cast(Correction, experiment.correction)
        adjusted = adjust(relative.p_value.ravel(), method).reshape(relative.p_value.shape)
    significance = _significance(experiment, relative, adjusted)

    metric_results = []
    for row, metric in enumerate(experiment.metrics):
        variants = [
            _variant_result(
                spec,
                row,
                v,
                sums[row][v],
                users.get(v, 0),
                impressions.get(v, 0),
                (relative, absolute),
                adjusted,
                significance,
            )
            for v, spec in enumerate(experiment.variants)
        ]
        metric_results.append(
            schemas.MetricResult(
                key=metric["key"],
                name=metric["name"],
                kind=metric["kind"],
                role=metric["role"],
                cuped=bool(batch.has_covariate[row]) if batch.has_covariate is not None else False,
                variants=variants,
            )
        )
    verdict, winner, recommendation, needed = _verdict(
        experiment, relative, significance, users, srm, srm_p
    )
    out = schemas.ExperimentResults(
        experiment_id=experiment.id,
        name=experiment.name,
        status=experiment.status,
        engine=engine,
        alpha=experiment.alpha,
        correction=experiment.correction if adjusted is not None else "none",
        srm_p_value=srm_p,
        srm_detected=srm,
        verdict=verdict,
        winner=winner,
        recommendation=recommendation,
        users_needed_per_variant=needed,
        metrics=metric_results,
    )
    return out, batch


def _metric_batch(
    experiment: Experiment, sums: list[list[VariantSums]], users: dict[int, int]
) -> MetricBatch:
    """The stored sums as the engines' input: one row per metric, one column per variant."""
    k = len(experiment.variants)

    def grid(attr: str) -> np.ndarray:
        return np.array([[getattr(s, attr) for s in row] for row in sums], dtype=float)

    return MetricBatch(
        n=np.array([[users.get(v, 0) for v in range(k)] for _ in sums], dtype=float),
        total=grid("total"),
        sum_squares=grid("sum_squares"),
        binomial=np.array([m["kind"] == "binomial" for m in experiment.metrics]),
        weights=np.tile(np.asarray(experiment.configured_weights, dtype=float), (len(sums), 1)),
        pre_total=grid("pre_total"),
        pre_sum_squares=grid("pre_sum_squares"),
        post_pre_sum=grid("post_pre_sum"),
        has_covariate=grid("covariates").sum(axis=1) > 0,
        inverse=np.array([m["lower_is_better"] for m in experiment.metrics]),
    )


def _variant_result(
    spec: dict[str, Any],
    row: int,
    v: int,
    s: VariantSums,
    n: int,
    impressions: int,
    analyses: tuple[BatchResult, BatchResult],
    adjusted: np.ndarray | None,
    significance: np.ndarray,
) -> schemas.VariantResult:
    """Variant ``v`` on metric ``row``: its counts and mean, and (against the control, v = 0)
    its relative and absolute effect, p-values or chance to win, and significance."""
    relative, absolute = analyses
    item = schemas.VariantResult(
        key=spec["key"],
        name=spec["name"],
        users=n,
        impressions=impressions,
        conversions=s.conversions,
        rate=s.conversions / n if n else None,
        mean=float(relative.mean[row, v]),
        variance=float(relative.variance[row, v]),
    )
    if v == 0:
        return item
    c = v - 1
    problem = int(relative.problem[row, c])
    item.problem = PROBLEMS.get(problem)
    item.relative = _interval(relative, row, c)
    item.absolute = _interval(absolute, row, c)
    if relative.p_value is not None and adjusted is not None:
        item.p_value = _finite(relative.p_value[row, c])
        item.adjusted_p_value = _finite(adjusted[row, c])
    if relative.chance_to_win is not None and relative.risk is not None:
        item.chance_to_win = _finite(relative.chance_to_win[row, c])
        item.risk = _finite(relative.risk[row, c])
    item.significant = bool(significance[row, c] != 0) if not problem else None
    return item


def has_new_verdict(experiment: Experiment, out: schemas.ExperimentResults) -> bool:
    return out.verdict != experiment.last_verdict


def record_verdict(
    session: Session,
    tenant_id: uuid.UUID,
    experiment_id: uuid.UUID,
    out: schemas.ExperimentResults,
    batch: MetricBatch,
) -> None:
    """Record a verdict a read computed, in a write unit: the experiment is read again under
    the write lock, so concurrent reads of the same new verdict record it once."""
    experiment = ExperimentRepository(session, tenant_id).get(experiment_id)
    if experiment is not None:
        _record_verdict(session, tenant_id, experiment, out, batch)


def _interval(result: BatchResult, row: int, c: int) -> schemas.Interval:
    return schemas.Interval(
        effect=_finite(result.effect[row, c]),
        ci=(_finite(result.ci_low[row, c]), _finite(result.ci_high[row, c])),
        stddev=_finite(result.stddev[row, c]),
    )


def _significance(
    experiment: Experiment, result: BatchResult, adjusted: np.ndarray | None
) -> np.ndarray:
    """+1 where a variant is significantly better than control, −1 worse, 0 neither."""
    better_sign = np.array([-1.0 if m["lower_is_better"] else 1.0 for m in experiment.metrics])[
        :, None
    ]
    direction = np.sign(np.nan_to_num(result.effect)) * better_sign
    if result.chance_to_win is not None:
        ctw = np.nan_to_num(result.chance_to_win, nan=0.5)
        return np.where(ctw >= 1 - experiment.alpha, 1, np.where(ctw <= experiment.alpha, -1, 0))
    assert adjusted is not None
    significant = np.nan_to_num(adjusted, nan=1.0) < experiment.alpha
    return np.where(significant, direction, 0).astype(int)


def _verdict(
    experiment: Experiment,
    result: BatchResult,
    significance: np.ndarray,
    users: dict[int, int],
    srm: bool,
    srm_p: float,
) -> tuple[str, str | None, str, int | None]:
    primary_row = experiment.metrics.index(_primary(experiment))
    primary = experiment.metrics[primary_row]
    names = [v["key"] for v in experiment.variants]
    if srm:
        return (
            "invalid",
            None,
            f"Sample ratio mismatch (p = {srm_p:.2g} < {SRM_THRESHOLD}): the users per variant "
            f"({', '.join(str(users.get(v, 0)) for v in range(len(names)))}) do not match the "
            "configured weights. Fix assignment or tracking before trusting any result; "
            "no verdict.",
            None,
        )
    guardrails = [i for i, m in enumerate(experiment.metrics) if m["role"] == "guardrail"]
    winners: list[tuple[int, list[str]]] = []
    harmed: list[tuple[int, list[str]]] = []
    for c in range(len(names) - 1):
        if significance[primary_row, c] > 0:
            broken = [experiment.metrics[g]["key"] for g in guardrails if significance[g, c] < 0]
            (harmed if broken else winners).append((c, broken))
    needed = _users_needed(experiment, result, primary_row, primary)
    have = min(users.get(v, 0) for v in range(len(names)))
    if winners:
        best = max(
            winners,
            key=lambda w: (
                result.effect[primary_row, w[0]] * (-1 if primary["lower_is_better"] else 1)
            ),
        )[0]
        lift = result.effect[primary_row, best]
        low, high = result.ci_low[primary_row, best], result.ci_high[primary_row, best]
        return (
            "winner",
            names[best + 1],
            f"Ship {names[best + 1]!r}: {primary['name']} changed by {lift:+.1%} against control "
            f"(interval {low:+.1%} to {high:+.1%}) with no guardrail harmed.",
            needed,
        )
    if len(names) > 1 and all(significance[primary_row, c] < 0 for c in range(len(names) - 1)):
        return (
            "loser",
            None,
            f"Keep control: every variant did worse on {primary['name']}.",
            needed,
        )
    if harmed:
        c, broken = harmed[0]
        return (
            "inconclusive",
            None,
            f"{names[c + 1]!r} improved {primary['name']} but harmed guardrail(s) "
            f"{', '.join(broken)}; do not ship it as is.",
            needed,
        )
    if needed is None:
        advice = (
            f"No significant difference on {primary['name']} yet, and there is not enough data "
            "in control to size the test; keep it running."
        )
    elif have < needed:
        advice = (
            f"No significant difference on {primary['name']} yet. For {experiment.power:.0%} power "
            f"to detect a {experiment.mde:.1%} change, each variant needs about {needed:,} users; "
            f"the smallest has {have:,}, so about {needed - have:,} more per variant."
        )
    else:
        advice = (
            f"No significant difference on {primary['name']} with {have:,} users per variant, "
            f"enough for {experiment.power:.0%} power at a {experiment.mde:.1%} change: any true "
            "effect is probably smaller than that. Stop the test and keep control."
        )
    return "inconclusive", None, advice, needed


def _users_needed(
    experiment: Experiment, result: BatchResult, row: int, metric: dict[str, Any]
) -> int | None:
    mean = float(result.mean[row, 0])
    variance = float(result.variance[row, 0])
    binomial = metric["kind"] == "binomial"
    if mean <= 0 or variance <= 0 or (binomial and mean * (1 + experiment.mde) >= 1):
        return None
    return power.sample_size_per_variant(
        mean, variance, experiment.mde, experiment.alpha, experiment.power, binomial=binomial
    )


def _record_verdict(
    session: Session,
    tenant_id: uuid.UUID,
    experiment: Experiment,
    out: schemas.ExperimentResults,
    batch: MetricBatch,
) -> None:
    """Every new verdict (not every read of the same one) goes to the decision ledger."""
    if out.verdict == experiment.last_verdict:
        return
    experiment.last_verdict = out.verdict
    primary = _primary(experiment)
    lift = None
    if out.winner is not None:
        for metric in out.metrics:
            if metric.key == primary["key"]:
                found = next(v for v in metric.variants if v.key == out.winner)
                lift = found.relative.effect if found.relative else None
    record_decision(
        session,
        tenant_id=tenant_id,
        kind="experiment_verdict",
        subject_type="experiment",
        subject_id=experiment.id,
        inputs={
            "n": batch.n.tolist(),
            "sum": batch.total.tolist(),
            "sum_squares": batch.sum_squares.tolist(),
        },
        output={
            "verdict": out.verdict,
            "winner": out.winner,
            "recommendation": out.recommendation,
            "srm_p_value": out.srm_p_value,
        },
        model=f"experiments.{out.engine}",
        model_version=MODEL_VERSION,
        predicted_value=lift,
    )


# --- stateless analysis and power -------------------------------------------------------------


def analyze(body: schemas.AnalyzeIn) -> schemas.AnalyzeOut:
    variants = body.variants
    errors = []
    if len(variants) < 2:
        errors.append(
            field_error(
                ["variants"], f"{len(variants)} given, at least 2 needed (the first is the control)"
            )
        )
    binomial = body.metric_type == "binomial"
    errors += [e for i, v in enumerate(variants) if (e := _variant_error(i, v, binomial))]
    weights = [1.0 / max(len(variants), 1)] * len(variants)
    if body.weights is not None:
        if len(body.weights) != len(variants):
            errors.append(field_error(["weights"], "one weight per variant"))
        else:
            weights, _ = validate_weights(body.weights, normalise=True, loc="weights")
    if errors:
        raise InvalidInput(
            errors[0]["msg"] if len(errors) == 1 else f"{len(errors)} problems in the input", errors
        )
    if body.engine == "sequential" and body.alternative != "two-sided":
        raise InvalidInput(
            "Sequential confidence sequences are two-sided only",
            [field_error(["alternative"], "use two-sided with the sequential engine")],
        )
    n = np.array([[v.n for v in variants]], dtype=float)
    batch = MetricBatch(
        n=n,
        total=np.array([[v.sum for v in variants]], dtype=float),
        sum_squares=np.array(
            [[v.sum if binomial else (v.sum_squares or 0.0) for v in variants]], dtype=float
        ),
        binomial=np.array([binomial]),
        weights=np.array([weights]),
    )
    result = analyse(
        batch,
        body.engine,
        relative=body.difference == "relative",
        alternative=body.alternative,
        alpha=body.alpha,
        sequential_tuning=body.sequential_tuning,
    )
    out = [_analyzed_variant(i, v, result) for i, v in enumerate(variants)]
    srm_p = float(result.srm_p_value[0])
    return schemas.AnalyzeOut(
        engine=body.engine,
        difference=body.difference,
        alternative=body.alternative,
        alpha=body.alpha,
        srm_p_value=srm_p,
        srm_detected=srm_p < SRM_THRESHOLD,
        variants=out,
    )


def _variant_error(i: int, v: schemas.AnalyzeVariant, binomial: bool) -> dict[str, Any] | None:
    """What is wrong with variant ``i``'s sums (the first problem found), or None."""
    if v.n < 0 or (v.sum < 0 and binomial):
        return field_error(["variants", i], "counts must not be negative")
    if v.n != int(v.n):
        return field_error(["variants", i, "n"], "n must be a whole number")
    if binomial:
        if v.sum > v.n:
            return field_error(
                ["variants", i, "sum"], f"conversions ({plain(v.sum)}) exceed n ({plain(v.n)})"
            )
        return None
    if v.n < 2:
        return field_error(["variants", i, "n"], "a mean needs n ≥ 2")
    if v.sum_squares is None:
        return field_error(["variants", i, "sum_squares"], "a mean needs sum_squares")
    if v.sum_squares < 0 or v.sum_squares * v.n < v.sum**2 * (1 - 1e-9):
        return field_error(
            ["variants", i, "sum_squares"], "sum_squares is below sum²/n (negative variance)"
        )
    return None


def _analyzed_variant(
    i: int, v: schemas.AnalyzeVariant, result: BatchResult
) -> schemas.AnalyzeVariantOut:
    """Variant ``i``'s mean and variance and, against the control (i = 0), its effect."""
    item = schemas.AnalyzeVariantOut(
        name=v.name, n=v.n, mean=float(result.mean[0, i]), variance=float(result.variance[0, i])
    )
    if i == 0:
        return item
    c = i - 1
    item.problem = PROBLEMS.get(int(result.problem[0, c]))
    item.effect = _finite(result.effect[0, c])
    item.ci = (_finite(result.ci_low[0, c]), _finite(result.ci_high[0, c]))
    item.stddev = _finite(result.stddev[0, c])
    if result.p_value is not None:
        item.p_value = _finite(result.p_value[0, c])
    if (
        result.chance_to_win is not None
        and result.risk is not None
        and result.risk_control is not None
    ):
        item.chance_to_win = _finite(result.chance_to_win[0, c])
        item.risk = _finite(result.risk[0, c])
        item.risk_control = _finite(result.risk_control[0, c])
    return item


def power_calculation(body: schemas.PowerIn) -> schemas.PowerOut:
    binomial = body.metric_type == "binomial"
    if binomial:
        if body.baseline_mean >= 1:
            raise InvalidInput(
                "A conversion rate is below 1", [field_error(["baseline_mean"], "must be < 1")]
            )
        if body.baseline_mean * (1 + body.mde) >= 1:
            raise InvalidInput(
                "The rate after the MDE would reach 100%",
                [field_error(["mde"], "too large for this rate")],
            )
        variance = body.baseline_mean * (1 - body.baseline_mean)
    else:
        if body.baseline_stddev is None:
            raise InvalidInput(
                "A mean metric needs baseline_stddev",
                [field_error(["baseline_stddev"], "required")],
            )
        variance = body.baseline_stddev**2
    n = power.sample_size_per_variant(
        body.baseline_mean, variance, body.mde, body.alpha, body.power, body.alternative, binomial
    )
    total = n * body.variants
    return schemas.PowerOut(
        users_per_variant=n,
        total_users=total,
        days=total / body.daily_users if body.daily_users else None,
        per_unit_variance=variance,
    )


# --- bandits ----------------------------------------------------------------------------------


def rebalance_bandits(session: Session, tenant_id: uuid.UUID, period_key: str) -> dict[str, Any]:
    """Thompson-sampling weights for every running bandit experiment of a tenant."""
    repo = ExperimentRepository(session, tenant_id)
    running = repo.running_bandits()
    changed = []
    for experiment in running:
        primary = _primary(experiment)
        k = len(experiment.variants)
        users = AssignmentRepository(session, tenant_id).users_per_variant(experiment.id)
        sums = metric_sums(session, tenant_id, experiment.id, primary["key"], primary["kind"])
        n = np.array([users.get(v, 0) for v in range(k)], dtype=float)
        total = np.array([sums[v].total if v in sums else 0.0 for v in range(k)])
        squares = np.array([sums[v].sum_squares if v in sums else 0.0 for v in range(k)])
        batch_means = np.divide(total, n, out=np.zeros(k), where=n > 0)
        if primary["kind"] == "binomial":
            variances = batch_means * (1 - batch_means)
        else:
            variances = np.divide(squares - total**2 / np.maximum(n, 1), np.maximum(n - 1, 1))
        seed = zlib.crc32(f"{experiment.id}:{period_key}".encode())
        p_best = bandit.probability_best(
            batch_means, variances, n, seed=seed, lower_is_better=primary["lower_is_better"]
        )
        weights = bandit.floored_weights(p_best, experiment.bandit_floor).tolist()
        previous = list(experiment.weights)
        experiment.weights = weights
        record_decision(
            session,
            tenant_id=tenant_id,
            kind="experiment_bandit_weights",
            subject_type="experiment",
            subject_id=experiment.id,
            inputs={"n": n.tolist(), "sum": total.tolist(), "sum_squares": squares.tolist()},
            output={
                "weights": weights,
                "previous": previous,
                "probability_best": p_best.tolist(),
                "floor": experiment.bandit_floor,
            },
            model="experiments.thompson",
            model_version=MODEL_VERSION,
            predicted_value=float(max(p_best)),
        )
        changed.append({"experiment_id": str(experiment.id), "weights": weights})
    return {"reweighted": len(changed), "experiments": changed}


def recent(session: Session, tenant_id: uuid.UUID, limit: int) -> list[Experiment]:
    """The tenant's latest experiments, newest first (the console's list)."""
    repo = ExperimentRepository(session, tenant_id)
    return list(repo.newest(Experiment.started_at, limit))


def results_fingerprints(
    session: Session, tenant_id: uuid.UUID, listed: Sequence[Experiment]
) -> dict[uuid.UUID, list[str]]:
    """Per experiment, what its results are computed from (its settings and status, and, while
    it runs, the count and last id of its assignments, events and covariates: a stopped one
    takes no new data), so a reader may keep the results of ``evaluate`` while it is
    unchanged."""
    running = [e.id for e in listed if e.status == "running"]
    data = repository.data_fingerprints(session, tenant_id, running) if running else {}
    return {
        e.id: [str(e.updated_at), e.status, e.engine, *map(str, data.get(e.id, ()))] for e in listed
    }


def results_from(payload: dict[str, Any]) -> schemas.ExperimentResults:
    """Results kept as JSON (``ExperimentResults.model_dump(mode="json")``) read back."""
    return schemas.ExperimentResults.model_validate(payload)
