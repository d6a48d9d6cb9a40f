"""Loading a demo company into a tenant, and reading its truth back. Never commits on a given
session: the caller's unit of work does (a session factory gets one unit of work here)."""

from __future__ import annotations

import gc
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import lru_cache
from typing import Any

import numpy as np
import orjson
from sqlalchemy.orm import Session, sessionmaker

from aethercrown.analytics.service import refresh_snapshots
from aethercrown.clock import utcnow
from aethercrown.core.errors import Conflict, InvalidInput, NotFound, field_error
from aethercrown.core.ledger import audit
from aethercrown.core.models import Tenant
from aethercrown.data.service import fresh_activity_load, ingest_rows
from aethercrown.db.session import read_transaction, write_transaction
from aethercrown.metering.fold import catch_up
from aethercrown.metering.service import EventColumns, load_event_columns
from aethercrown.onboarding import service as onboarding
from aethercrown.pricing.schemas import PlanPatch, TiersPatch
from aethercrown.pricing.service import patch_tiers
from aethercrown.settings import Settings, get_settings
from aethercrown.simulate import rowtable, schemas
from aethercrown.simulate.config import SimConfig, iso_end
from aethercrown.simulate.experiments import load_experiments
from aethercrown.simulate.generator import SimulatedCompany, generate
from aethercrown.simulate.models import SimulatedTruth
from aethercrown.simulate.replay import CADENCES, Cadence, replay
from aethercrown.simulate.repository import SimulatedTruthRepository
from aethercrown.simulate.truth import Truth
from aethercrown.tenants.schemas import TenantCreate
from aethercrown.tenants.service import any_tenant, create_tenant, tenant_by_slug

# 2: the window is defined by its end instant; weekly usage is counted back from the end.
GENERATOR_VERSION = "2"
# Generated but not written through ingestion (with why). They stay in the generated company
# (regenerate from the stored seed and config) and are summarised in the truth. Empty since
# metering stores the usage events.
NOT_INGESTED: dict[str, str] = {}

LOAD_BATCH_ROWS = 50_000
# Kinds written as typed rows through ingestion's trusted path (see _load).
TRUSTED_KINDS = frozenset({"activity"})

# (kind, rows written so far, rows of that kind)
Progress = Callable[[str, int, int], None]


@dataclass
class LoadResult:
    tenant_id: uuid.UUID
    tenant_slug: str
    created_tenant: bool
    # The new tenant's admin key (tenant:write), shown once; None when the tenant existed.
    api_key: str | None
    skipped: bool  # the same company was already loaded: nothing written
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    not_ingested: dict[str, int] = field(default_factory=dict)
    # {experiment key: {experiment_id, created, events, users}}
    experiments: dict[str, dict[str, Any]] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    generate_seconds: float = 0.0
    load_seconds: float = 0.0
    # What the replay of the automation over the company's past did (simulate.replay), or
    # None when it was not run; its wall-clock seconds.
    replay: dict[str, Any] | None = None
    replay_seconds: float = 0.0


def load_demo(
    session: Session | sessionmaker[Session],
    tenant_slug: str,
    config: SimConfig,
    *,
    actor: str = "simulate",
    force: bool = False,
    progress: Progress | None = None,
    batch_rows: int | None = None,
    replay: bool = True,
    settings: Settings | None = None,
    cadences: dict[str, Cadence] | None = None,
) -> LoadResult:
    """Generate the demo company for ``config`` and write it into the tenant ``tenant_slug``
    (created on the enterprise tier if missing) through ``data.service.ingest_rows``; then, given
    a session factory and ``replay``, fold its usage and replay the platform's automation over
    its past (``simulate.replay``), each in transactions of its own. With a session (the
    caller's unit of work) the rows are written and nothing is replayed.

    Idempotent: if the tenant already holds this very company (same seed and config) nothing is
    generated or written unless ``force`` (a forced reload upserts every row as unchanged), and
    a replay that did not finish is resumed (the runner's claims skip what already ran). A
    tenant holding another simulated company — a demo ending later is another one — is refused
    (409): its rows would mix. A window ending after the clock's now is refused (422): the data
    would lie in the future.
    """
    if not isinstance(session, sessionmaker):
        return _load(session, tenant_slug, config, actor, force, progress, batch_rows)
    with _collector_paused():
        return _load_and_replay(
            session,
            tenant_slug,
            config,
            actor,
            force,
            progress,
            batch_rows,
            replay,
            settings,
            cadences,
        )


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector paused while the demo loads, then one full collection.

    The load makes tens of millions of short-lived objects (row dicts, tuples, datetimes) that
    reference counting frees as it goes, yet their allocations kept triggering collections, and
    each full one walked every live object: about 12 s of the load's 97 s of CPU (59 full
    collections, measured with ``gc.callbacks``), for no outcome. The few cycles the load leaves
    (sessions, compiled statements) wait for the one collection at the end. Process-wide, which
    suits where the demo loads: the CLI (``aethercrown demo``, and ``serve --demo`` before the
    server starts)."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.collect()


def _load_and_replay(
    session: sessionmaker[Session],
    tenant_slug: str,
    config: SimConfig,
    actor: str,
    force: bool,
    progress: Progress | None,
    batch_rows: int | None,
    replay: bool,
    settings: Settings | None,
    cadences: dict[str, Cadence] | None,
) -> LoadResult:
    with read_transaction(session) as unit:
        fresh = not any_tenant(unit)
    # Into a database that holds no tenant yet (a first start's demo) the load may skip fsync:
    # see write_transaction's bulk_load for why no acknowledged write is at risk.
    with write_transaction(session, bulk_load=fresh) as unit:
        result = _load(unit, tenant_slug, config, actor, force, progress, batch_rows)
    replayed = replay and (result.replay is None or bool(result.replay.get("errors")))
    if replayed:
        began = time.perf_counter()
        result.replay = _fold_and_replay(
            session, result, config, settings, progress, cadences or CADENCES
        )
        result.replay_seconds = time.perf_counter() - began
    onboarding.onboard_demo_customers(session, result.tenant_id)
    if not result.skipped or replayed:
        # The dashboards' snapshot, as the analytics_snapshots job's first tick would store it:
        # the first page after the load reads it instead of computing the whole series (1.3 s
        # cold). A reload that wrote nothing keeps the one it stored.
        with write_transaction(session) as unit:
            refresh_snapshots(unit, result.tenant_id, utcnow())
    return result


def _fold_and_replay(
    factory: sessionmaker[Session],
    result: LoadResult,
    config: SimConfig,
    settings: Settings | None,
    progress: Progress | None,
    cadences: dict[str, Cadence],
) -> dict[str, Any]:
    def replayed(done: int, total: int) -> None:
        if progress is not None:
            progress("replay", done, total)

    # The usage events roll up (and today's alerts fire) as the usage_fold job would do them.
    folded = catch_up(factory, result.tenant_id)
    summary = replay(
        factory,
        result.tenant_id,
        config.start,
        config.end,
        settings=settings,
        progress=replayed,
        cadences=cadences,
    )
    summary["usage_folded"] = {"events": folded.events, "alerts": folded.alerts}
    with write_transaction(factory) as unit:
        stored = SimulatedTruthRepository(unit, result.tenant_id).current()
        if stored is not None:
            stored.row_counts = {**stored.row_counts, "replay": summary}
    return summary


def _load(
    session: Session,
    tenant_slug: str,
    config: SimConfig,
    actor: str,
    force: bool,
    progress: Progress | None,
    batch_rows: int | None,
) -> LoadResult:
    tenant, api_key = _ensure_tenant(session, tenant_slug, actor)
    repo = SimulatedTruthRepository(session, tenant.id)
    stored = repo.current()
    result = LoadResult(
        tenant_id=tenant.id,
        tenant_slug=tenant.slug,
        created_tenant=api_key is not None,
        api_key=api_key,
        skipped=False,
    )
    if config.end > utcnow():
        raise InvalidInput(
            f"The window would end at {iso_end(config.end)}, after the clock's now: its data "
            "would lie in the future",
            [field_error(["end"], "must not be after now")],
        )
    if stored is not None and stored.config != config.to_dict():
        raise Conflict(_other_company(tenant.slug, stored, config), slug="simulation-exists")
    if stored is not None and not force:
        result.skipped = True
        result.summary = _summary_from_truth(stored.truth, stored.row_counts)
        result.replay = stored.row_counts.get("replay")
        return result

    began = time.perf_counter()
    company = generate(config)
    result.generate_seconds = time.perf_counter() - began
    began = time.perf_counter()
    # Bigger than an API request's batch: each ingest_rows call re-checks the tier quota by
    # counting the tenant's stored rows, so fewer calls keep a million-row load linear.
    batch = batch_rows or max(get_settings().max_batch_rows, LOAD_BATCH_ROWS)
    for kind in SimulatedCompany.CONTRACT_KINDS:
        result.counts[kind] = _ingest_table(session, tenant.id, kind, company, batch, progress)
    result.counts["usage"] = _load_usage(session, tenant.id, company, actor, progress, batch)
    result.experiments = _load_experiments(session, tenant.id, company, actor)
    result.not_ingested = {kind: len(company.rows[kind]) for kind in NOT_INGESTED}
    result.load_seconds = time.perf_counter() - began
    _record_load(session, repo, config, actor, company, result, first=stored is None)
    return result


def _ingest_table(
    session: Session,
    tenant_id: uuid.UUID,
    kind: str,
    company: SimulatedCompany,
    batch: int,
    progress: Progress | None,
) -> dict[str, int]:
    """One kind's generated rows through ``ingest_rows`` in batches; what it did with them."""
    table = company.rows[kind]
    totals = {"received": 0, "inserted": 0, "updated": 0, "unchanged": 0}
    done = 0
    # The million activity rows go in typed, past the per-field validation (the generator
    # is trusted; tests/simulate/test_load.py checks its typed rows equal the validated
    # text rows): parsing a million timestamps only to render them again took seconds.
    typed = kind in TRUSTED_KINDS
    # Into an empty activity table (a fresh SQLite database) its indexes are built after the
    # million events instead of kept up to date through them (data.service).
    with fresh_activity_load(session, tenant_id) if kind == "activity" else nullcontext():
        for rows in table.batches(batch, typed=typed):
            outcome = ingest_rows(session, tenant_id, kind, rows, max_rows=batch, trusted=typed)
            totals["received"] += outcome.received
            totals["inserted"] += outcome.inserted
            totals["updated"] += outcome.updated
            totals["unchanged"] += outcome.unchanged
            done += len(rows)
            if progress is not None:
                progress(kind, done, len(table))
    if progress is not None and not len(table):
        progress(kind, 0, 0)
    return totals


def _record_load(
    session: Session,
    repo: SimulatedTruthRepository,
    config: SimConfig,
    actor: str,
    company: SimulatedCompany,
    result: LoadResult,
    *,
    first: bool,
) -> None:
    """The company's truth and row counts stored (on its first load), the load audited, and
    the result's summary read from that truth."""
    truth_json = _jsonable(company.truth.to_dict())
    row_counts = {
        "ingested": result.counts,
        "generated": company.counts(),
        "experiments": result.experiments,
        "not_ingested": {
            k: {"rows": result.not_ingested[k], "why": v} for k, v in NOT_INGESTED.items()
        },
    }
    if first:
        repo.add(
            SimulatedTruth(
                seed=config.seed,
                config=config.to_dict(),
                truth=truth_json,
                row_counts=row_counts,
                generator_version=GENERATOR_VERSION,
                generated_at=utcnow(),
            )
        )
    audit(
        session,
        tenant_id=result.tenant_id,
        actor=actor,
        action="simulate.demo_loaded" if first else "simulate.demo_reloaded",
        target_type="tenant",
        target_id=result.tenant_id,
        details={
            "seed": config.seed,
            "customers": config.customers,
            "months": config.months,
            "inserted": sum(c["inserted"] for c in result.counts.values()),
        },
    )
    result.summary = _summary_from_truth(truth_json, row_counts)


def _other_company(slug: str, stored: SimulatedTruth, config: SimConfig) -> str:
    """Why a load is refused, in words: which company the tenant holds, and what to do."""
    held = SimConfig.from_dict(stored.config)
    described = (
        f"Tenant '{slug}' already holds a simulated company (seed {held.seed}, "
        f"{held.customers:,} customers × {held.months} months, window ending "
        f"{iso_end(held.end)})"
    )
    if {**held.to_dict(), "end": None} == {**config.to_dict(), "end": None}:
        return (
            f"{described}; the one asked for ends at {iso_end(config.end)}. A demo ending at "
            "another moment is another company (its window moves and every draw with it), so "
            "it cannot be loaded over this one: load it into another tenant, or pass "
            f"--end {iso_end(held.end)} to keep this one"
        )
    return f"{described}; load another configuration into another tenant"


def _load_usage(
    session: Session,
    tenant_id: uuid.UUID,
    company: SimulatedCompany,
    actor: str,
    progress: Progress | None,
    batch: int,
) -> dict[str, int]:
    """The metered usage events, stored through metering (its folder rolls them up), so the
    demo's usage reports, alerts, upsell and renewal odds have history; and the tenant's plans
    get the capacities the simulated customers were sized against."""
    capacities = company.truth.usage["capacities_per_month"]
    plans = [
        PlanPatch(slug=slug, capacities={m: caps[i] for m, caps in capacities.items()})
        for i, slug in enumerate(company.truth.usage["plans_order"])
    ]
    patch_tiers(session, tenant_id, TiersPatch(plans=plans), actor)

    table = company.rows["usage"]
    totals = {"received": 0, "inserted": 0, "updated": 0, "unchanged": 0}
    # Column by column (metering's load_event_columns): a row dict, an ISO timestamp parsed
    # and rendered again per event cost more than storing it.
    columns = table.columns
    ids = table.column("id")
    customers = columns["customer"].data.tolist()
    metrics = columns["metric"].data.tolist()
    values = columns["value"].data.tolist()
    times = rowtable.EPOCH + np.asarray(columns["timestamp"].data, dtype=np.int64).astype(
        "timedelta64[s]"
    )
    for start in range(0, len(table), batch):
        part = slice(start, min(start + batch, len(table)))
        events = EventColumns(ids[part], customers[part], metrics[part], values[part], times[part])
        inserted = load_event_columns(session, tenant_id, events)
        totals["received"] += len(events)
        totals["inserted"] += inserted
        totals["unchanged"] += len(events) - inserted
        if progress is not None:
            progress("usage", totals["received"], len(table))
    return totals


def _load_experiments(
    session: Session, tenant_id: uuid.UUID, company: SimulatedCompany, actor: str
) -> dict[str, dict[str, Any]]:
    """The simulated experiments, created in the tenant with their tracked events (through the
    experiments engine's own service), so the demo shows tests with results."""
    return load_experiments(
        session,
        tenant_id,
        company.rows["experiment_assignments"],
        company.truth.experiments,
        actor,
    )


def _ensure_tenant(session: Session, slug: str, actor: str) -> tuple[Tenant, str | None]:
    tenant = tenant_by_slug(session, slug)
    if tenant is not None:
        return tenant, None
    name = "Demo company" if slug == "demo" else f"Demo company ({slug})"
    tenant, issued = create_tenant(
        session, TenantCreate(name=name, slug=slug, tier="enterprise"), actor=actor
    )
    return tenant, issued.secret


def _jsonable(value: Any) -> Any:
    return orjson.loads(orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY))


def _summary_from_truth(truth: dict[str, Any], row_counts: dict[str, Any]) -> dict[str, Any]:
    months = sorted(truth["mrr_by_month"])
    return {
        "customers": len(truth["customers"]),
        "churned": len(truth["churn"]),
        "mrr_now": truth["mrr_by_month"][months[-1]] if months else 0.0,
        "window": [truth["start"], truth["end"]],
        "rows": row_counts.get("generated", {}),
    }


def stored_truth(session: Session, tenant_id: uuid.UUID) -> SimulatedTruth:
    """The tenant's stored truth row; 404 when its data was not simulated."""
    row = SimulatedTruthRepository(session, tenant_id).current()
    if row is None:
        raise NotFound("Simulated truth", tenant_id)
    return row


@lru_cache(maxsize=2)
def _regenerate(config_json: str) -> Truth:
    return generate(SimConfig.from_dict(orjson.loads(config_json))).truth


def truth_for_tenant(session: Session, tenant_id: uuid.UUID) -> Truth:
    """The full truth of a simulated tenant, hazard matrix included: regenerated from the stored
    seed and config (bit for bit the loaded company; kept for the last two configs)."""
    row = stored_truth(session, tenant_id)
    return _regenerate(orjson.dumps(row.config, option=orjson.OPT_SORT_KEYS).decode())


def truth_out(session: Session, tenant_id: uuid.UUID) -> schemas.TruthOut:
    row = stored_truth(session, tenant_id)
    return schemas.TruthOut(
        tenant_id=tenant_id,
        seed=row.seed,
        config=row.config,
        generator_version=row.generator_version,
        generated_at=row.generated_at,
        row_counts=row.row_counts,
        truth=row.truth,
    )


def churn_probabilities_out(
    session: Session, tenant_id: uuid.UUID, as_of: date, horizon_days: int, mode: str
) -> schemas.ChurnProbabilitiesOut:
    row = stored_truth(session, tenant_id)
    start = date.fromisoformat(row.truth["start"])
    end = SimConfig.from_dict(row.config).end
    last = end.date() if end.time() else end.date() - timedelta(days=1)
    if not start <= as_of <= last:
        raise InvalidInput(
            f"as_of must fall inside the simulated window [{start}, {iso_end(end)})",
            [field_error(["query", "as_of"], f"must be a day between {start} and {last}")],
        )
    truth = truth_for_tenant(session, tenant_id)
    probabilities = truth.churn_probabilities(as_of, horizon_days, mode=mode)
    labels = truth.churned_within(as_of, horizon_days)
    items = [
        schemas.ChurnProbability(customer=c, probability=p, churned=labels[c])
        for c, p in probabilities.items()
    ]
    return schemas.ChurnProbabilitiesOut(
        as_of=as_of,
        horizon_days=horizon_days,
        mode="path" if mode == "path" else "as_of",
        customers=len(items),
        churned=sum(i.churned for i in items),
        items=items,
    )
