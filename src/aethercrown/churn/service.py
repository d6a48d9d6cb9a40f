"""Churn orchestration: point-in-time datasets, training and promotion, scoring, campaigns,
outcomes and uplift. Never commits: the request, CLI command or job does."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from importlib import resources
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from aethercrown.churn import features as F
from aethercrown.churn import model as M
from aethercrown.churn import policy, renewal, repository, schemas
from aethercrown.churn.models import ChurnModel, RetentionCampaign
from aethercrown.churn.repository import (
    CAMPAIGN_KIND,
    SCORE_KIND,
    ActivityRepository,
    CampaignRepository,
    CustomerRepository,
    CustomerTable,
    DecisionRepository,
    EventAggregateQueries,
    ModelRepository,
    ScoreRepository,
    SubscriptionRepository,
    SubscriptionTable,
)
from aethercrown.clock import utcnow
from aethercrown.core.errors import ProblemError
from aethercrown.core.ledger import (
    DecisionInput,
    OutcomeInput,
    audit,
    record_decision,
    record_decisions,
    record_outcome,
    record_outcomes,
)
from aethercrown.core.models import Decision
from aethercrown.core.pagination import PageParams, paginate
from aethercrown.db.base import new_id
from aethercrown.metering import service as metering
from aethercrown.webhooks.service import enqueue_webhook

DEFAULT_HORIZON_DAYS = 30
DEFAULT_COOLDOWN_DAYS = 30
DEFAULT_HOLDOUT_SHARE = 0.10
MAX_SNAPSHOTS = 24
MIN_SNAPSHOTS = 4
MIN_TRAIN_POSITIVES = 30
MIN_SLICE_POSITIVES = 10
FEATURE_SETS = ("full", "seed6")
DAY = 86400.0


class InsufficientHistory(ProblemError):
    def __init__(self, detail: str, **missing: Any) -> None:
        super().__init__(
            409, "insufficient-history", "Not enough labelled history", detail, missing=missing
        )


# ---------------------------------------------------------------- point-in-time features


def subscription_state(
    subs: SubscriptionTable, n: int, at: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(active at ``at``, MRR in minor units, subscriptions started in the 90 days before)."""
    live = (subs.started <= at) & (subs.ended > at)
    active = np.bincount(subs.customer[live], minlength=n) > 0
    mrr = np.bincount(subs.customer[live], weights=subs.mrr_minor[live], minlength=n)
    recent = (subs.started <= at) & (subs.started > at - F.QUARTER_DAYS * DAY)
    starts = np.bincount(subs.customer[recent], minlength=n).astype(np.float64)
    return active, mrr.astype(np.float64), starts


def churn_times(subs: SubscriptionTable, n: int) -> np.ndarray:
    """When each customer's last subscription ended (+inf while one is open or none exists)."""
    out = np.full(n, -np.inf)
    np.maximum.at(out, subs.customer, subs.ended)
    out[np.isneginf(out)] = np.inf
    return out


def features_at(
    session: Session,
    tenant_id: uuid.UUID,
    as_of: datetime,
    customers: CustomerTable,
    subs: SubscriptionTable,
    attribute_keys: Sequence[str],
) -> tuple[np.ndarray, np.ndarray]:
    """The full feature matrix of every customer at ``as_of`` and who was active then."""
    n = len(customers.ids)
    at = as_of.timestamp()
    events = EventAggregateQueries(session, tenant_id).at(as_of, customers.index())
    active, mrr, starts = subscription_state(subs, n, at)
    _, mrr_before, _ = subscription_state(subs, n, at - F.QUARTER_DAYS * DAY)
    agg = F.Aggregates(
        events=events,
        tenure_days=np.maximum((at - customers.signup) / DAY, 0.0),
        last_activity_age_days=(at - events.last_activity) / DAY,
        mrr_minor=mrr,
        mrr_minor_quarter_ago=mrr_before,
        starts_quarter=starts,
        company_size=customers.company_size,
        annual_revenue_minor=customers.annual_revenue,
        attributes=F.attribute_columns(customers.attributes, attribute_keys),
    )
    return F.feature_matrix(agg, attribute_keys), active & (customers.signup <= at)


@dataclass
class Dataset:
    features: list[str]
    attribute_keys: list[str]
    x: np.ndarray
    y: np.ndarray
    snapshot: np.ndarray  # index into ``snapshots`` per row
    customer: np.ndarray  # index into ``customers.ids`` per row
    snapshots: list[datetime]
    customers: CustomerTable
    horizon_days: int


def snapshot_dates(data_start: datetime, as_of: datetime, horizon_days: int) -> list[datetime]:
    """Monthly as-of moments whose label window has fully passed, oldest first."""
    last = as_of - timedelta(days=horizon_days)
    earliest = data_start + timedelta(days=2 * F.RECENT_DAYS)
    out: list[datetime] = []
    current = last
    while current >= earliest and len(out) < MAX_SNAPSHOTS:
        out.append(current)
        current -= timedelta(days=30)
    return sorted(out)


def build_dataset(
    session: Session,
    tenant_id: uuid.UUID,
    as_of: datetime,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
    use_attributes: bool = True,
) -> Dataset:
    customers = CustomerRepository(session, tenant_id).table()
    subs_repo = SubscriptionRepository(session, tenant_id)
    subs = subs_repo.table(customers.index())
    first, _ = subs_repo.data_span()
    keys = F.numeric_attribute_keys(customers.attributes) if use_attributes else []
    names = F.feature_names(keys)
    if first is None:
        return Dataset(
            names, keys, np.zeros((0, len(names))), np.zeros(0, dtype=np.int64),
            np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), [], customers, horizon_days,
        )  # fmt: skip
    ends = churn_times(subs, len(customers.ids))
    # Behaviour features need behaviour data: when subscriptions go back further than the
    # activity does (history imported from billing only), snapshots before the activity
    # starts would teach "no activity, no churn" — so the window opens with both.
    first_activity = ActivityRepository(session, tenant_id).earliest()
    if first_activity is not None:
        first = max(first, first_activity)
    snapshots = snapshot_dates(first, as_of, horizon_days)
    xs, ys, snap_idx, cust_idx = [], [], [], []
    for k, moment in enumerate(snapshots):
        x, active = features_at(session, tenant_id, moment, customers, subs, keys)
        at = moment.timestamp()
        rows = np.flatnonzero(active)
        xs.append(x[rows])
        ys.append(((ends[rows] > at) & (ends[rows] <= at + horizon_days * DAY)).astype(np.int64))
        snap_idx.append(np.full(len(rows), k, dtype=np.int64))
        cust_idx.append(rows)
    return Dataset(
        features=names,
        attribute_keys=keys,
        x=np.vstack(xs) if xs else np.zeros((0, len(names))),
        y=np.concatenate(ys) if ys else np.zeros(0, dtype=np.int64),
        snapshot=np.concatenate(snap_idx) if snap_idx else np.zeros(0, dtype=np.int64),
        customer=np.concatenate(cust_idx) if cust_idx else np.zeros(0, dtype=np.int64),
        snapshots=snapshots,
        customers=customers,
        horizon_days=horizon_days,
    )


@dataclass
class Split:
    train: np.ndarray
    calibrate: np.ndarray
    holdout: np.ndarray


def time_split(data: Dataset) -> Split:
    """Oldest snapshots train, the next ones calibrate, the newest are the holdout; raises
    InsufficientHistory saying what is missing when any slice cannot carry its job."""
    k = len(data.snapshots)
    positives = int(data.y.sum())
    if k < MIN_SNAPSHOTS:
        raise InsufficientHistory(
            f"Training needs {MIN_SNAPSHOTS} monthly snapshots whose {data.horizon_days}-day "
            f"outcome is known; the stored subscriptions give {k}. Load at least "
            f"{MIN_SNAPSHOTS + 2} months of subscriptions and activity.",
            snapshots=k,
            snapshots_needed=MIN_SNAPSHOTS,
            churned_examples=positives,
        )
    n_hold = max(1, round(k * 0.2))
    n_cal = max(1, round(k * 0.2))
    hold_from, cal_from = k - n_hold, k - n_hold - n_cal
    split = Split(
        train=np.flatnonzero(data.snapshot < cal_from),
        calibrate=np.flatnonzero((data.snapshot >= cal_from) & (data.snapshot < hold_from)),
        holdout=np.flatnonzero(data.snapshot >= hold_from),
    )
    counts = {
        "train": int(data.y[split.train].sum()),
        "calibration": int(data.y[split.calibrate].sum()),
        "holdout": int(data.y[split.holdout].sum()),
    }
    needed = {
        "train": MIN_TRAIN_POSITIVES,
        "calibration": MIN_SLICE_POSITIVES,
        "holdout": MIN_SLICE_POSITIVES,
    }
    short = {s: (counts[s], needed[s]) for s in counts if counts[s] < needed[s]}
    negatives = {
        "train": len(split.train) - counts["train"],
        "calibration": len(split.calibrate) - counts["calibration"],
        "holdout": len(split.holdout) - counts["holdout"],
    }
    if short or min(negatives.values()) < MIN_SLICE_POSITIVES:
        described = ", ".join(
            f"{s} has {have} churned (needs {need})" for s, (have, need) in short.items()
        )
        raise InsufficientHistory(
            "Too few customers churned within the horizon to train and check a model: "
            + (described or "a slice has too few retained customers")
            + ". Keep loading history; until then the simulator prior answers.",
            churned_examples=counts,
            churned_examples_needed=needed,
            snapshots=k,
        )
    return split


# ---------------------------------------------------------------- training and the registry


@dataclass
class TrainOutcome:
    models: list[ChurnModel]
    data: Dataset
    split: Split
    holdout_predictions: dict[str, np.ndarray]


def _columns(data: Dataset, names: Sequence[str]) -> np.ndarray:
    return _select_columns(data.x, data.features, names)


def _select_columns(x: np.ndarray, have: Sequence[str], want: Sequence[str]) -> np.ndarray:
    position = {name: i for i, name in enumerate(have)}
    out = np.full((x.shape[0], len(want)), np.nan)
    for j, name in enumerate(want):
        if name in position:
            out[:, j] = x[:, position[name]]
    return out


def fit_models(data: Dataset, split: Split) -> dict[str, tuple[M.ChurnPredictor, dict[str, float]]]:
    out = {}
    for feature_set in FEATURE_SETS:
        names = data.features if feature_set == "full" else list(F.SEED_FEATURES)
        x = _columns(data, names)
        predictor = M.fit(
            x[split.train], data.y[split.train], x[split.calibrate], data.y[split.calibrate], names
        )
        p = predictor.predict(x[split.holdout])
        out[feature_set] = (predictor, M.metrics(data.y[split.holdout], p))
    return out


def train(
    session: Session,
    tenant_id: uuid.UUID,
    *,
    actor: str,
    as_of: datetime | None = None,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
    use_attributes: bool = True,
) -> TrainOutcome:
    """Train both feature sets on the tenant's history, register them, and promote each one
    unless the promoted model scores a higher ROC-AUC on the same holdout. In one unit of
    work; the retrain job runs the three steps (``build_dataset``, ``fit``, ``register``) in
    units of its own, training with no transaction open."""
    as_of = as_of or utcnow()
    data = build_dataset(session, tenant_id, as_of, horizon_days, use_attributes)
    return register(session, tenant_id, fit(data), actor=actor)


@dataclass
class Fitted:
    data: Dataset
    split: Split
    models: dict[str, tuple[M.ChurnPredictor, dict[str, float]]]


def fit(data: Dataset) -> Fitted:
    """Split the dataset in time and fit both feature sets: the CPU-bound step (seconds on a
    few thousand customers), which reads and writes nothing."""
    split = time_split(data)
    return Fitted(data, split, fit_models(data, split))


def register(session: Session, tenant_id: uuid.UUID, fitted: Fitted, *, actor: str) -> TrainOutcome:
    """Register the fitted models, promoting each one unless the promoted model (as it is now,
    under the write lock) scores a higher ROC-AUC on the same holdout."""
    data, split, horizon_days = fitted.data, fitted.split, fitted.data.horizon_days
    registry = ModelRepository(session, tenant_id)
    created: list[ChurnModel] = []
    holdout_predictions: dict[str, np.ndarray] = {}
    y_hold = data.y[split.holdout]
    for feature_set, (predictor, scores) in fitted.models.items():
        holdout_predictions[feature_set] = predictor.predict(
            _columns(data, predictor.features)[split.holdout]
        )
        current = registry.promoted(feature_set)
        incumbent_auc = None
        if current is not None:
            incumbent = M.ChurnPredictor.from_bytes(current.artifact)
            p_old = incumbent.predict(_columns(data, incumbent.features)[split.holdout])
            incumbent_auc = M.metrics(y_hold, p_old)["roc_auc"]
        promote = incumbent_auc is None or scores["roc_auc"] >= incumbent_auc
        row = ChurnModel(
            feature_set=feature_set,
            version=registry.next_version(feature_set),
            horizon_days=horizon_days,
            window_start=data.snapshots[0],
            window_end=data.snapshots[-1] + timedelta(days=horizon_days),
            features=predictor.features,
            training={
                "rows": {
                    "train": len(split.train),
                    "calibration": len(split.calibrate),
                    "holdout": len(split.holdout),
                },
                "churned": {
                    "train": int(data.y[split.train].sum()),
                    "calibration": int(data.y[split.calibrate].sum()),
                    "holdout": int(y_hold.sum()),
                },
                "snapshots": [s.isoformat() for s in data.snapshots],
                "calibration": predictor.calibration.kind,
                "trees": predictor.booster.num_trees(),
                "incumbent_holdout_roc_auc": incumbent_auc,
            },
            artifact=predictor.to_bytes(),
            promoted=promote,
            promoted_at=utcnow() if promote else None,
            **{k: _finite(v) for k, v in scores.items()},
        )
        if promote:
            registry.demote_all(feature_set)
        registry.add(row)
        created.append(row)
    session.flush()
    for row in created:
        audit(
            session,
            tenant_id=tenant_id,
            actor=actor,
            action="churn.model.trained",
            target_type="churn_model",
            target_id=row.id,
            details={"feature_set": row.feature_set, "version": row.version,
                     "roc_auc": row.roc_auc, "promoted": row.promoted},
        )  # fmt: skip
    return TrainOutcome(created, data, split, holdout_predictions)


def _finite(value: float) -> float:
    return float(value) if np.isfinite(value) else 0.0


# ---------------------------------------------------------------- which model answers


@dataclass
class ActiveModel:
    predictor: M.ChurnPredictor
    source: str  # tenant | simulator_prior
    version: str


PRIOR_FILES = {"full": "prior_full.json", "seed6": "prior_seed6.json"}


@cache
def prior_model(feature_set: str) -> ActiveModel:
    """The model trained on the demo simulator (shipped artifact, made by
    ``python -m aethercrown.churn.prior``); process-cached for speed only."""
    blob = resources.files("aethercrown.churn").joinpath(PRIOR_FILES[feature_set]).read_bytes()
    version = "prior-" + hashlib.sha256(blob).hexdigest()[:12]
    return ActiveModel(M.ChurnPredictor.from_bytes(blob), "simulator_prior", version)


def active_model(session: Session, tenant_id: uuid.UUID, feature_set: str) -> ActiveModel:
    row = ModelRepository(session, tenant_id).promoted(feature_set)
    if row is None:
        return prior_model(feature_set)
    return ActiveModel(
        _load_artifact(row.id, row.artifact), "tenant", f"{feature_set}-v{row.version}"
    )


_artifact_cache: dict[uuid.UUID, M.ChurnPredictor] = {}


def _load_artifact(model_id: uuid.UUID, blob: bytes) -> M.ChurnPredictor:
    # Registry rows are immutable, so a parsed booster can be reused by id.
    if model_id not in _artifact_cache:
        if len(_artifact_cache) > 64:
            _artifact_cache.clear()
        _artifact_cache[model_id] = M.ChurnPredictor.from_bytes(blob)
    return _artifact_cache[model_id]


# ---------------------------------------------------------------- scoring and campaigns


@dataclass
class Scored:
    probability: np.ndarray
    risk: list[str]
    factors: list[list[dict[str, Any]]]


def score_matrix(
    predictor: M.ChurnPredictor, x: np.ndarray, top_k: int = 3, explain_low_risk: bool = True
) -> Scored:
    """Probabilities, risk levels and TreeSHAP factors. TreeSHAP costs ~100x a prediction, so
    batch scoring (``explain_low_risk=False``) explains only the customers it may act on."""
    p = predictor.predict(x)
    risk = policy.risk_levels(p)
    rows = np.arange(len(p)) if explain_low_risk else np.flatnonzero(p >= 0.3)
    factors: list[list[dict[str, Any]]] = [[] for _ in range(len(p))]
    if len(rows):
        explained = M.top_factors(
            predictor.contributions(x[rows]), predictor.features, x[rows], top_k
        )
        for row, item in zip(rows, explained, strict=True):
            factors[int(row)] = item
    return Scored(p, risk, factors)


def campaign_view(level: str) -> dict[str, Any] | None:
    plan = policy.CAMPAIGNS[level]
    if plan is None:
        return None
    return {
        "name": plan.name,
        "actions": list(plan.actions),
        "discount_percent": plan.discount_percent,
    }


def predict_behaviour(
    session: Session, tenant_id: uuid.UUID, users: Sequence[dict[str, Any]], actor: str
) -> dict[str, Any]:
    """Score the seed's six behaviour fields per user with the six-feature model."""
    model = active_model(session, tenant_id, "seed6")
    x = np.array([[float(u[f]) for f in F.SEED_FEATURES] for u in users], dtype=np.float64)
    scored = score_matrix(model.predictor, x)
    predictions = []
    decisions: list[Decision] = []
    for i, user in enumerate(users):
        campaign = campaign_view(scored.risk[i])
        item = {
            "user_id": user.get("user_id"),
            "churn_probability": round(float(scored.probability[i]), 6),
            "risk_level": scored.risk[i],
            "top_factors": scored.factors[i],
            "campaign": campaign,
        }
        decision = record_decision(
            session,
            tenant_id=tenant_id,
            kind=SCORE_KIND,
            subject_type="user",
            subject_id=user.get("user_id") or f"row-{i}",
            inputs={f: user[f] for f in F.SEED_FEATURES},
            output=item,
            model=f"churn-seed6-{model.source}",
            model_version=model.version,
            predicted_value=float(scored.probability[i]),
            actor=actor,
        )
        decisions.append(decision)
        predictions.append(item)
    session.flush()
    for item, decision in zip(predictions, decisions, strict=True):
        item["decision_id"] = decision.id
    return _answer(model, "seed6", predictions)


def _answer(
    model: ActiveModel, feature_set: str, predictions: list[dict[str, Any]]
) -> dict[str, Any]:
    counts = {level: 0 for level in policy.RISK_LEVELS}
    for item in predictions:
        counts[item["risk_level"]] += 1
    return {
        "model_source": model.source,
        "model_version": model.version,
        "feature_set": feature_set,
        "horizon_days": DEFAULT_HORIZON_DAYS,
        "predictions": predictions,
        "risk_summary": counts,
    }


def predict_customers(
    session: Session,
    tenant_id: uuid.UUID,
    customer_refs: Sequence[str | uuid.UUID],
    actor: str,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Score stored customers, named by external id (or internal UUID), from their
    point-in-time features, storing scores and campaigns."""
    now = now or utcnow()
    refs = metering.resolve_customers(
        session, tenant_id, [str(r) for r in customer_refs], field="customer_ids"
    )
    wanted = [r.id for r in refs]
    customers = CustomerRepository(session, tenant_id).table(wanted)
    model = active_model(session, tenant_id, "full")
    results = _score_and_act(session, tenant_id, customers, model, now, actor, only_active=False)
    order = {cid: i for i, cid in enumerate(customers.ids)}
    predictions = []
    for ref in refs:
        item = results[order[ref.id]]
        item["name"] = ref.name
        predictions.append(item)
    return _answer(model, "full", predictions)


def score_all(
    session: Session, tenant_id: uuid.UUID, now: datetime | None = None, actor: str = "automation"
) -> dict[str, Any]:
    """Score every active customer, store scores and campaigns, join back due outcomes."""
    now = now or utcnow()
    outcomes = resolve_outcomes(session, tenant_id, now)
    customers = CustomerRepository(session, tenant_id).table()
    model = active_model(session, tenant_id, "full")
    results = _score_and_act(session, tenant_id, customers, model, now, actor, only_active=True)
    counts = {level: 0 for level in policy.RISK_LEVELS}
    campaigns = {"created": 0, "held_out": 0}
    for item in results.values():
        counts[item["risk_level"]] += 1
        status = (item.get("campaign") or {}).get("status")
        if status in ("planned", "queued"):
            campaigns["created"] += 1
        elif status == "held_out":
            campaigns["held_out"] += 1
    return {
        "scored": len(results),
        "model_source": model.source,
        "model_version": model.version,
        "risk_summary": counts,
        "campaigns": campaigns,
        "outcomes_resolved": outcomes,
    }


def _score_and_act(
    session: Session,
    tenant_id: uuid.UUID,
    customers: CustomerTable,
    model: ActiveModel,
    now: datetime,
    actor: str,
    only_active: bool,
) -> dict[int, dict[str, Any]]:
    subs = SubscriptionRepository(session, tenant_id).table(customers.index())
    keys = [f[len(F.ATTRIBUTE_PREFIX) :] for f in model.predictor.features
            if f.startswith(F.ATTRIBUTE_PREFIX)]  # fmt: skip
    x_all, active = features_at(session, tenant_id, now, customers, subs, keys)
    rows = np.flatnonzero(active) if only_active else np.arange(len(customers.ids))
    names = F.feature_names(keys)
    x = _select_columns(x_all[rows], names, model.predictor.features)
    scored = score_matrix(model.predictor, x, explain_low_risk=not only_active)
    results: dict[int, dict[str, Any]] = {}
    score_rows = []
    decision_items: list[DecisionInput] = []
    probabilities = scored.probability.tolist()
    # Inputs are kept as a digest only; NaN (a missing value) becomes null so it is JSON.
    inputs = np.where(np.isfinite(x), x, np.nan).tolist()
    for j, i in enumerate(rows.tolist()):
        probability = probabilities[j]
        item = {
            "customer_id": customers.ids[i],
            "external_id": customers.external_ids[i],
            "active": bool(active[i]),
            "churn_probability": round(probability, 6),
            "risk_level": scored.risk[j],
            "top_factors": scored.factors[j],
        }
        results[i] = item
        score_rows.append(
            {
                "customer_id": customers.ids[i],
                "scored_at": now,
                "probability": probability,
                "risk_level": scored.risk[j],
                "model_source": model.source,
                "model_version": model.version,
                "factors": scored.factors[j],
            }
        )
        decision_items.append(
            DecisionInput(
                subject_id=customers.ids[i],
                inputs=dict(zip(model.predictor.features, map(_json_number, inputs[j]),
                                strict=True)),
                output={k: v for k, v in item.items() if k != "customer_id"},
                predicted_value=probability,
            )
        )  # fmt: skip
    ScoreRepository(session, tenant_id).insert_many(score_rows)
    # One ledger decision per customer score, so each predicted_value joins its own outcome.
    decision_ids = record_decisions(
        session,
        tenant_id=tenant_id,
        kind=SCORE_KIND,
        subject_type="customer",
        model=f"churn-full-{model.source}",
        model_version=model.version,
        items=decision_items,
        actor=actor,
    )
    for i, decision_id in zip(rows.tolist(), decision_ids, strict=True):
        results[i]["decision_id"] = decision_id
    _plan_campaigns(session, tenant_id, results, now, model.version)
    return results


def _json_number(value: float) -> float | None:
    return None if value != value else value  # NaN → null


def _plan_campaigns(
    session: Session,
    tenant_id: uuid.UUID,
    results: dict[int, dict[str, Any]],
    now: datetime,
    model_version: str,
    cooldown_days: int = DEFAULT_COOLDOWN_DAYS,
    holdout_share: float = DEFAULT_HOLDOUT_SHARE,
) -> None:
    """Open the scored customers' campaigns (one per customer and cooldown), record each in the
    ledger and announce the treated ones (webhook ``churn.campaign.created``); every result's
    ``campaign`` says what happened to it."""
    repo = CampaignRepository(session, tenant_id)
    recent = repo.recent_customers(now - timedelta(days=cooldown_days))
    bucket = policy.cooldown_bucket(now, cooldown_days)
    rows = _campaign_rows(
        repo.tenant_slug(), results, recent, bucket, now, model_version, holdout_share
    )
    inserted = repo.insert_new(rows)
    _mark_lost_races(results, inserted)
    created = [row for row in rows if row["id"] in inserted]
    decision_ids = _record_campaign_decisions(session, tenant_id, created, model_version)
    external_ids = {item["customer_id"]: item["external_id"] for item in results.values()}
    queued = _announce_campaigns(
        session, tenant_id, list(zip(created, decision_ids, strict=True)), external_ids,
        model_version,
    )  # fmt: skip
    if queued:
        repo.mark_queued(queued)
        for item in results.values():
            campaign = item.get("campaign")
            if campaign and campaign.get("id") in set(queued):
                campaign["status"] = "queued"


def _campaign_rows(
    tenant_slug: str,
    results: dict[int, dict[str, Any]],
    recent: set[uuid.UUID],
    bucket: int,
    now: datetime,
    model_version: str,
    holdout_share: float,
) -> list[dict[str, Any]]:
    """The campaign rows to insert: one per active customer whose risk level has a campaign
    and who had none within the cooldown; a random share is held out (no actions) to measure
    the uplift. Sets each result's ``campaign`` (None, cooldown, held_out or planned)."""
    rows = []
    for item in results.values():
        plan = policy.CAMPAIGNS[item["risk_level"]]
        if plan is None or not item["active"]:
            item["campaign"] = None
            continue
        if item["customer_id"] in recent:
            item["campaign"] = {**(campaign_view(item["risk_level"]) or {}), "status": "cooldown"}
            continue
        held = policy.holdout_draw(tenant_slug, item["external_id"], bucket) < holdout_share
        campaign_id = new_id()
        rows.append(
            {
                "id": campaign_id,
                "customer_id": item["customer_id"],
                "cooldown_bucket": bucket,
                "risk_level": item["risk_level"],
                "probability": item["churn_probability"],
                "actions": [] if held else list(plan.actions),
                "discount_percent": 0 if held else plan.discount_percent,
                "holdout": held,
                "status": "held_out" if held else "planned",
                "model_version": model_version,
                "decision_id": item["decision_id"],
                "created_at": now,
            }
        )
        item["campaign"] = {
            **(campaign_view(item["risk_level"]) or {}),
            "id": campaign_id,
            "status": "held_out" if held else "planned",
        }
    return rows


def _mark_lost_races(results: dict[int, dict[str, Any]], inserted: set[uuid.UUID]) -> None:
    for item in results.values():
        campaign = item.get("campaign")
        if campaign and "id" in campaign and campaign["id"] not in inserted:
            # A concurrent scorer created this customer's campaign for the cooldown first.
            item["campaign"] = {**campaign, "status": "cooldown"}
            campaign.pop("id", None)


def _record_campaign_decisions(
    session: Session, tenant_id: uuid.UUID, created: list[dict[str, Any]], model_version: str
) -> list[uuid.UUID]:
    """One ledger decision per campaign opened, in the order of ``created``."""
    return record_decisions(
        session,
        tenant_id=tenant_id,
        kind=CAMPAIGN_KIND,
        subject_type="customer",
        model="churn-campaign-rules",
        model_version=model_version,
        items=[
            DecisionInput(
                subject_id=row["customer_id"],
                inputs={"probability": row["probability"], "risk_level": row["risk_level"]},
                output={
                    "campaign_id": row["id"],
                    "holdout": row["holdout"],
                    "actions": row["actions"],
                    "discount_percent": row["discount_percent"],
                },
                predicted_value=row["probability"],
            )
            for row in created
        ],
    )


def _announce_campaigns(
    session: Session,
    tenant_id: uuid.UUID,
    campaign_decisions: list[tuple[dict[str, Any], uuid.UUID]],
    external_ids: dict[uuid.UUID, str],
    model_version: str,
) -> list[uuid.UUID]:
    """The webhook ``churn.campaign.created`` of each treated campaign (held-out customers are
    not acted on); returns the campaigns queued for delivery."""
    queued = []
    for row, decision_id in campaign_decisions:
        if row["holdout"]:
            continue
        delivery = enqueue_webhook(
            session,
            tenant_id,
            "churn.campaign.created",
            {"campaign_id": row["id"], "customer_id": row["customer_id"],
             "external_id": external_ids.get(row["customer_id"]),
             "risk_level": row["risk_level"], "churn_probability": row["probability"],
             "actions": row["actions"], "discount_percent": row["discount_percent"],
             "model_version": model_version},
            decision_id=decision_id,
        )  # fmt: skip
        # None: no webhook endpoint; the call still routed the event to alert channels.
        if delivery is not None:
            queued.append(row["id"])
    return queued


# ---------------------------------------------------------------- campaign emails


def email_campaigns(
    session: Session, tenant_id: uuid.UUID, since: datetime, limit: int
) -> list[uuid.UUID]:
    """Campaigns an email is written for: the treated ones (never the held-out control group,
    whose customers must hear nothing) opened since ``since``, newest first."""
    return CampaignRepository(session, tenant_id).treated_since(since, limit)


def campaign_briefs(
    session: Session, tenant_id: uuid.UUID, ids: Sequence[uuid.UUID], now: datetime | None = None
) -> list[dict[str, Any]]:
    """What each treated campaign's email is about, as plain values: its customer (external id,
    name, current plan), the risk level, the top factors of the customer's latest score and the
    offer (discount and actions). Held-out campaigns and unknown ids are left out."""
    now = now or utcnow()
    rows = [r for r in CampaignRepository(session, tenant_id).by_ids(ids) if not r.holdout]
    customer_ids = [r.customer_id for r in rows]
    named = metering.customer_names(session, tenant_id, customer_ids)
    plans = metering.plan_names(session, tenant_id, customer_ids, now)
    factors = latest_factors(session, tenant_id, customer_ids)
    out = []
    for row in rows:
        ref = named.get(row.customer_id)
        out.append(
            {
                "campaign": "churn",
                "campaign_id": str(row.id),
                "customer": ref.external_id if ref else str(row.customer_id),
                "name": (ref.name if ref else None) or "",
                "plan": plans.get(row.customer_id),
                "risk_level": row.risk_level,
                "discount_percent": row.discount_percent,
                "actions": list(row.actions),
                "factors": list(factors.get(row.customer_id, [])),
            }
        )
    return out


# ---------------------------------------------------------------- outcomes and uplift


def resolve_outcomes(
    session: Session,
    tenant_id: uuid.UUID,
    now: datetime,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
) -> int:
    """Join the truth back once a horizon has passed: every customer score in the ledger gets
    whether the customer's last subscription ended within the horizon after it (so the model's
    accuracy is measured on everyone it scored, not only on the customers it targeted), and
    every campaign, with its own ledger decision, ``churned`` or ``retained``. Returns how many
    campaigns were resolved."""
    cutoff = now - timedelta(days=horizon_days)
    decisions = DecisionRepository(session, tenant_id)
    open_scores = decisions.open_customer_scores(cutoff)
    repo = CampaignRepository(session, tenant_id)
    due = repo.awaiting_outcome(cutoff)
    if not open_scores and not due:
        return 0
    customers = CustomerRepository(session, tenant_id).table()
    index = customers.index()
    ends = churn_times(SubscriptionRepository(session, tenant_id).table(index), len(customers.ids))
    horizon = horizon_days * DAY

    def churned_after(customer_id: uuid.UUID, moment: datetime) -> bool:
        i = index.get(customer_id)
        start = moment.timestamp()
        return i is not None and bool(start < ends[i] <= start + horizon)

    outcomes = []
    for decision_id, subject_id, created_at in open_scores:
        churned = churned_after(uuid.UUID(subject_id), created_at)
        outcomes.append(OutcomeInput(decision_id, {"churned": churned}, 1.0 if churned else 0.0))
    record_outcomes(session, outcomes, now)
    campaign_decisions = decisions.campaign_decisions([c.id for c in due])
    for campaign in due:
        churned = churned_after(campaign.customer_id, campaign.created_at)
        campaign.outcome = "churned" if churned else "retained"
        campaign.outcome_at = now
        decision = campaign_decisions.get(campaign.id)
        if decision is not None:
            record_outcome(
                decision,
                {"churned": churned, "holdout": campaign.holdout},
                1.0 if churned else 0.0,
                now,
            )
    return len(due)


def uplift_report(session: Session, tenant_id: uuid.UUID) -> dict[str, Any]:
    counts: dict[tuple[str, bool, str], int] = {}
    for level, holdout, outcome, n in CampaignRepository(session, tenant_id).outcome_counts():
        counts[(level, holdout, outcome)] = n
    buckets = []
    for level in ("critical", "high", "medium"):
        t_ret = counts.get((level, False, "retained"), 0)
        t_all = t_ret + counts.get((level, False, "churned"), 0)
        h_ret = counts.get((level, True, "retained"), 0)
        h_all = h_ret + counts.get((level, True, "churned"), 0)
        buckets.append({"risk_level": level, **retention_uplift(t_all, t_ret, h_all, h_ret)})
    return {"confidence": 0.95, "method": "newcombe-wilson", "buckets": buckets}


def retention_uplift(
    treated: int, treated_retained: int, holdout: int, holdout_retained: int
) -> dict[str, Any]:
    """Retention of treated minus held-out customers with Newcombe's 95% interval (None while
    either group is empty): the measure of a campaign, for any reader of outcome counts."""
    u = policy.retention_uplift(treated, treated_retained, holdout, holdout_retained)
    return {
        "treated": u.treated,
        "treated_retained": u.treated_retained,
        "holdout": u.holdout,
        "holdout_retained": u.holdout_retained,
        "retention_uplift": u.uplift,
        "ci95": None if u.ci_low is None else [u.ci_low, u.ci_high],
    }


def campaign_page(
    session: Session, tenant_id: uuid.UUID, page: PageParams
) -> tuple[list[schemas.CampaignOut], str | None]:
    """A page of retention campaigns, each naming its customer by external id and name."""
    repo = CampaignRepository(session, tenant_id)
    rows, cursor = paginate(
        session, repo.select(), RetentionCampaign.id, page, parse=uuid.UUID, descending=True
    )
    named = metering.customer_names(session, tenant_id, [r.customer_id for r in rows])
    items = []
    for row in rows:
        ref = named.get(row.customer_id)
        items.append(
            schemas.CampaignOut.model_validate(
                {
                    **{f: getattr(row, f) for f in _CAMPAIGN_FIELDS},
                    "customer": ref.external_id if ref else "",
                    "customer_name": ref.name if ref else "",
                }
            )
        )
    return items, cursor


_CAMPAIGN_FIELDS = [
    f for f in schemas.CampaignOut.model_fields if f not in ("customer", "customer_name")
]


def list_models(session: Session, tenant_id: uuid.UUID) -> Sequence[ChurnModel]:
    repo = ModelRepository(session, tenant_id)
    return repo.all_by(ChurnModel.created_at, descending=True)


def latest_activity(session: Session, tenant_id: uuid.UUID) -> datetime | None:
    return ActivityRepository(session, tenant_id).latest()


def latest_factors(
    session: Session, tenant_id: uuid.UUID, customer_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[Any]]:
    """Each customer's top factors (TreeSHAP) from its latest score, where it has one."""
    return ScoreRepository(session, tenant_id).latest_factors(customer_ids)


# ---------------------------------------------------------------- renewals and savings


@dataclass
class Renewal:
    """A paying customer's next renewal and the chance it is still there to renew."""

    customer_id: uuid.UUID
    plan: str
    mrr: int  # minor units, every paying subscription of the customer in the currency
    renews_at: datetime | None  # None when every subscription is set to end first
    ends_at: datetime | None  # the scheduled end, when the customer has cancelled
    churn_probability: float | None  # the latest score (over the model's horizon)
    scored_at: datetime | None
    renewal_probability: float | None  # None without a score; 0 when cancelled


def renewal_outlook(
    session: Session,
    tenant_id: uuid.UUID,
    currency: str,
    now: datetime | None = None,
    customer_ids: Sequence[uuid.UUID] | None = None,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
) -> list[Renewal]:
    """Every paying customer's (or ``customer_ids``') next renewal, soonest first: its date,
    the MRR it carries, and the probability the customer renews, the latest churn score spread
    over the days to the renewal (``renewal.survival``). A customer whose subscriptions all
    end before their next renewal has cancelled: probability 0."""
    now = now or utcnow()
    lives = SubscriptionRepository(session, tenant_id).lives(currency, customer_ids)
    by_customer: dict[uuid.UUID, list[renewal.Life]] = {}
    for life in lives:
        if renewal.alive(life, now) and renewal.monthly_minor(life) > 0:
            by_customer.setdefault(life.customer_id, []).append(life)
    scores = ScoreRepository(session, tenant_id).latest_probabilities(
        list(by_customer) if customer_ids is not None else None
    )
    out = []
    for customer_id, paying in by_customer.items():
        main = max(paying, key=renewal.monthly_minor)
        dates = []
        for life in paying:
            due = renewal.next_renewal(life.started_at, life.interval, now)
            if due is not None and (life.ended_at is None or life.ended_at > due):
                dates.append(due)
        ends = [life.ended_at for life in paying if life.ended_at is not None]
        renews_at = min(dates) if dates else None
        score = scores.get(customer_id)
        if renews_at is None:
            chance: float | None = 0.0
        elif score is None:
            chance = None
        else:
            days = (renews_at - now).total_seconds() / DAY
            chance = round(renewal.survival(score[0], horizon_days, days), 4)
        out.append(
            Renewal(
                customer_id=customer_id,
                plan=main.plan,
                mrr=round(sum(renewal.monthly_minor(life) for life in paying)),
                renews_at=renews_at,
                ends_at=max(ends) if renews_at is None and ends else None,
                churn_probability=None if score is None else score[0],
                scored_at=None if score is None else score[1],
                renewal_probability=chance,
            )
        )
    out.sort(key=lambda r: (r.renews_at or r.ends_at or now, str(r.customer_id)))
    return out


def renewal_fingerprint(session: Session, tenant_id: uuid.UUID) -> list[str]:
    """Changes whenever ``renewal_outlook`` could, but for the clock."""
    return [str(part) for part in repository.renewal_fingerprint(session, tenant_id)]


def campaign_savings(
    session: Session,
    tenant_id: uuid.UUID,
    currency: str,
    since: datetime,
    until: datetime,
    measured: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The retention campaigns started in ``[since, until)`` and the MRR they are expected to
    save: each treated (not held-out) customer's MRR when its campaign started, times the
    retention uplift measured against the holdout for its risk level (``uplift_report``), with
    the uplift's 95% interval. Levels without a measured uplift save nothing yet ("unmeasured").
    Rows are every campaign with its MRR and its own expected saving. ``measured`` is an
    ``uplift_report`` the caller already has."""
    campaigns = CampaignRepository(session, tenant_id).created_between(since, until)
    lives = SubscriptionRepository(session, tenant_id).lives(
        currency, list({c.customer_id for c in campaigns})
    )
    by_customer: dict[uuid.UUID, list[renewal.Life]] = {}
    for life in lives:
        by_customer.setdefault(life.customer_id, []).append(life)
    report = measured if measured is not None else uplift_report(session, tenant_id)
    uplift = {b["risk_level"]: b for b in report["buckets"]}
    rows = []
    total = {"mrr": 0.0, "save": 0.0, "low": 0.0, "high": 0.0}
    unmeasured = 0
    for c in campaigns:
        mrr = sum(
            renewal.monthly_minor(life)
            for life in by_customer.get(c.customer_id, [])
            if renewal.alive(life, c.created_at)
        )
        measured = uplift.get(c.risk_level) or {}
        effect = measured.get("retention_uplift")
        ci = measured.get("ci95")
        save = None
        if not c.holdout:
            total["mrr"] += mrr
            if effect is None:
                unmeasured += 1
            else:
                save = mrr * effect
                total["save"] += save
                if ci:
                    total["low"] += mrr * ci[0]
                    total["high"] += mrr * ci[1]
        rows.append(
            {
                "campaign_id": c.id,
                "customer_id": c.customer_id,
                "risk_level": c.risk_level,
                "probability": c.probability,
                "holdout": c.holdout,
                "status": c.status,
                "outcome": c.outcome,
                "created_at": c.created_at,
                "mrr": round(mrr),
                "uplift": None if c.holdout else effect,
                "expected_save": None if save is None else round(save),
            }
        )
    treated = [c for c in campaigns if not c.holdout]
    return {
        "since": since,
        "until": until,
        "currency": currency,
        "campaigns": len(campaigns),
        "customers": len({c.customer_id for c in campaigns}),
        "treated": len(treated),
        "held_out": len(campaigns) - len(treated),
        "treated_mrr": round(total["mrr"]),
        "expected_save": round(total["save"]) if len(treated) > unmeasured else None,
        "interval": [round(total["low"]), round(total["high"])]
        if len(treated) > unmeasured
        else None,
        "unmeasured": unmeasured,
        "rows": rows,
    }
