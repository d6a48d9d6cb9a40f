"""Business-data orchestration: validated, idempotent bulk writes and the reads over them.

``ingest_rows`` is the one writer: the API, the CLI importer and the demo simulator all call it.
It never commits; the caller's unit of work does.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from aethercrown.core.errors import InvalidInput, NotFound, ProblemError, field_error
from aethercrown.core.pagination import PageParams, paginate
from aethercrown.core.tenant_repository import tenant_or_404
from aethercrown.data.kinds import KindSpec, get_kind
from aethercrown.data.repository import (
    ActiveUserDayRepository,
    ActivityRepository,
    CustomerRepository,
    RowRepository,
    SubscriptionRepository,
    repository_for,
    utc_day,
)
from aethercrown.data.schemas import IngestResult
from aethercrown.settings import get_settings
from aethercrown.tenants.service import stored_rows_total

# Bad rows listed in a 422's detail line (the errors list itself names every one).
DETAIL_INDEXES = 20
# session.info key set by ``fresh_activity_load``: the id above which that load's events lie;
# while it is set, ingest_rows leaves the active-user rollup of fully inserted batches to it.
_DEFERRED_ROLLUP = "aethercrown.data.deferred_activity_rollup"


class BatchTooLarge(ProblemError):
    def __init__(self, received: int, limit: int) -> None:
        super().__init__(
            413,
            "batch-too-large",
            "Batch too large",
            f"A batch holds at most {limit} rows (max_batch_rows); this one has {received}",
            limit=limit,
            received=received,
        )


class QuotaExceeded(ProblemError):
    def __init__(self, stored: int, adding: int, limit: int, tier: str) -> None:
        super().__init__(
            403,
            "quota-exceeded",
            "Quota exceeded",
            f"Storing {adding} new rows would bring the tenant to {stored + adding} rows; "
            f"the {tier} tier allows {limit}. Nothing was written.",
            stored_rows=stored,
            new_rows=adding,
            max_stored_rows=limit,
            tier=tier,
        )


def _pydantic_errors(index: int, exc: ValidationError) -> list[dict[str, Any]]:
    out = []
    for err in exc.errors(include_url=False, include_input=False):
        loc = [index, *err["loc"]]
        out.append(field_error(loc, err["msg"], err["type"]))
    return out


def _validate(
    spec: KindSpec, rows: Sequence[Mapping[str, Any]]
) -> tuple[list[dict[str, Any] | None], list[dict[str, Any]]]:
    """Rows as clean dicts (None where a row is bad) and every error, each naming index and field.

    The whole batch goes through one TypeAdapter call; only when that fails is each row
    validated alone, to find the good rows whose cross-field rules still need checking.
    """
    try:
        return list(spec.adapter.validate_python(rows)), []
    except ValidationError:
        pass
    clean: list[dict[str, Any] | None] = []
    errors: list[dict[str, Any]] = []
    for i, row in enumerate(rows):
        try:
            clean.append(spec.row_adapter.validate_python(row))
        except ValidationError as exc:
            clean.append(None)
            errors.extend(_pydantic_errors(i, exc))
    return clean, errors


def _cross_field_errors(kind: str, clean: list[dict[str, Any] | None]) -> list[dict[str, Any]]:
    """Rules between fields of one row (one loop per kind: this runs on every row of a batch)."""
    errors = []
    if kind == "subscriptions":
        for i, row in enumerate(clean):
            if row is None:
                continue
            if row["ended_at"] is not None and row["ended_at"] < row["started_at"]:
                errors.append(field_error([i, "ended_at"], "must not be before started_at"))
            if row["trial_end"] is not None and row["trial_end"] < row["started_at"]:
                errors.append(field_error([i, "trial_end"], "must not be before started_at"))
    elif kind == "tickets":
        for i, row in enumerate(clean):
            closed = row["closed_at"] if row is not None else None
            if row is not None and closed is not None and closed < row["opened_at"]:
                errors.append(field_error([i, "closed_at"], "must not be before opened_at"))
    elif kind == "activity":
        for i, row in enumerate(clean):
            if row is None:
                continue
            event = row["kind"]
            # Fast path: the common, valid shapes.
            if event == "session":
                if row["duration_seconds"] is not None and row["feature"] is None:
                    continue
            elif event == "feature":
                if row["feature"] is not None and row["duration_seconds"] is None:
                    continue
            elif row["duration_seconds"] is None and row["feature"] is None:
                continue
            if event == "session" and row["duration_seconds"] is None:
                errors.append(field_error([i, "duration_seconds"], "is required for sessions"))
            if event != "session" and row["duration_seconds"] is not None:
                errors.append(field_error([i, "duration_seconds"], "only sessions have a duration"))
            if event == "feature" and row["feature"] is None:
                errors.append(field_error([i, "feature"], "is required for feature events"))
            if event != "feature" and row["feature"] is not None:
                errors.append(field_error([i, "feature"], "only feature events name a feature"))
    return errors


def _duplicate_errors(
    keys: list[Any], clean: list[dict[str, Any] | None], field: str
) -> list[dict[str, Any]]:
    errors = []
    first_at: dict[Any, int] = {}
    for i, (key, row) in enumerate(zip(keys, clean, strict=True)):
        if row is None:
            continue
        if key in first_at:
            errors.append(field_error([i, field], f"duplicates row {first_at[key]} of this batch"))
        else:
            first_at[key] = i
    return errors


def _resolve_references(
    session: Session,
    tenant_id: uuid.UUID,
    spec: KindSpec,
    raw_rows: Sequence[Any],
    clean: list[dict[str, Any] | None],
    errors: list[dict[str, Any]],
) -> None:
    """Replace customer/subscription external ids by ids: one query per referenced table."""
    if not spec.has_customer:
        return
    # Rows that failed the schema still get their customer checked, so one answer lists it all.
    unchecked = {
        i: raw["customer"]
        for i, (raw, row) in enumerate(zip(raw_rows, clean, strict=True))
        if row is None and isinstance(raw, Mapping) and isinstance(raw.get("customer"), str)
    }
    refs = {row["customer"] for row in clean if row is not None} | set(unchecked.values())
    customers = CustomerRepository(session, tenant_id).ids_by_external(refs)
    for i, ref in unchecked.items():
        if ref not in customers:
            errors.append(field_error([i, "customer"], "unknown customer external_id"))
    subscriptions: dict[str, tuple[uuid.UUID, uuid.UUID]] = {}
    if spec.name == "payments":
        sub_refs = {r["subscription"] for r in clean if r is not None and r["subscription"]}
        if sub_refs:
            subscriptions = SubscriptionRepository(session, tenant_id).refs_by_external(sub_refs)
    for i, row in enumerate(clean):
        if row is None:
            continue
        customer_id = customers.get(row.pop("customer"))
        if customer_id is None:
            errors.append(field_error([i, "customer"], "unknown customer external_id"))
        row["customer_id"] = customer_id
        if spec.name == "payments":
            ref = row.pop("subscription")
            row["subscription_id"] = None
            if ref is not None:
                found = subscriptions.get(ref)
                if found is None:
                    errors.append(
                        field_error([i, "subscription"], "unknown subscription external_id")
                    )
                elif customer_id is not None and found[1] != customer_id:
                    errors.append(field_error([i, "subscription"], "belongs to another customer"))
                else:
                    row["subscription_id"] = found[0]


@dataclass(frozen=True, slots=True)
class TierQuota:
    """A tenant's tier and its stored-row limit, for a caller that has them already (read with
    the credentials that opened the tenant, and cached as long as they are)."""

    tier: str
    max_stored_rows: int


def _check_quota(
    session: Session, tenant_id: uuid.UUID, adding: int, quota: TierQuota | None = None
) -> None:
    if quota is None:
        tenant = tenant_or_404(session, tenant_id)
        quota = TierQuota(tenant.tier_slug, tenant.tier.max_stored_rows)
    stored = stored_rows_total(session, tenant_id)
    if stored + adding > quota.max_stored_rows:
        raise QuotaExceeded(stored, adding, quota.max_stored_rows, quota.tier)


def ingest_rows(
    session: Session,
    tenant_id: uuid.UUID,
    kind: str,
    rows: Sequence[Mapping[str, Any]],
    *,
    max_rows: int | None = None,
    trusted: bool = False,
) -> IngestResult:
    """Validate and upsert one batch of ``kind`` rows for a tenant, all or nothing.

    Raises InvalidInput (422) naming every bad row's index and field, BatchTooLarge (413) above
    ``max_rows`` (default: settings.max_batch_rows) and QuotaExceeded (403) when the new rows
    would pass the tier's stored-row quota. Nothing is written when it raises.

    ``trusted``: the rows come from code, not from a request, already in the shape validation
    gives (the demo generator's typed rows: aware UTC datetimes, dates, values within the row
    type's bounds), so the per-field schema checks are skipped; the rules between fields and
    rows, the references, the key and the quota are still checked. Never for outside input.
    """
    spec = get_kind(kind)
    limit = max_rows if max_rows is not None else get_settings().max_batch_rows
    if not isinstance(rows, list):
        rows = list(rows)
    if len(rows) > limit:
        raise BatchTooLarge(len(rows), limit)
    if not rows:
        return IngestResult(kind=kind, received=0, inserted=0, updated=0, unchanged=0)

    good, keys = _checked_rows(session, tenant_id, spec, rows, trusted=trusted)
    repo = repository_for(session, tenant_id, kind)
    stored = repo.existing(keys)
    if stored:
        to_write, inserted, updated, replaced = _changed_rows(
            stored, keys, good, itemgetter(*repo.data_columns())
        )
    else:
        to_write, inserted, updated, replaced = good, len(good), 0, []
    if inserted:
        _check_quota(session, tenant_id, inserted)
    # Activity ids are integers given in insert order: what a fresh batch adds lies above this.
    fresh_load = kind == "activity" and not stored and session.get_bind().dialect.name == "sqlite"
    last_id = repo.last_id() if fresh_load else None
    all_inserted = repo.upsert(to_write, all_new=not stored)
    if kind == "activity":
        if all_inserted and session.info.get(_DEFERRED_ROLLUP) is not None:
            pass  # fresh_activity_load rolls every batch up at its end
        elif last_id is not None and all_inserted:
            ActiveUserDayRepository(session, tenant_id).record_inserted_after(last_id)
        else:
            _roll_up_active_users(session, tenant_id, repo, to_write, replaced)
    return IngestResult(
        kind=kind,
        received=len(rows),
        inserted=inserted,
        updated=updated,
        unchanged=len(good) - inserted - updated,
    )


def append_activity(
    session: Session,
    tenant_id: uuid.UUID,
    rows: Sequence[Mapping[str, Any]],
    *,
    customer_ids: Mapping[str, uuid.UUID] | None = None,
    quota: TierQuota | None = None,
) -> IngestResult:
    """Store the activity events whose ``external_id`` is new and leave stored ones as they are
    (``unchanged``, whatever they say): for a source whose event ids are delivery ids, so that a
    redelivered event is the same event (Segment's ``messageId``). Validated as ``ingest_rows``
    validates (422 naming every bad row, 413, 403 over the quota; nothing written when it
    raises), and set-based: on PostgreSQL the insert and the active-user rollups are one
    statement. ``customer_ids``: the customers' ids by external id, when the caller has just
    read them in this unit of work (the others are looked up). ``quota``: the tenant's tier,
    when the caller has it (else it is read)."""
    spec = get_kind("activity")
    if not isinstance(rows, list):
        rows = list(rows)
    if len(rows) > get_settings().max_batch_rows:
        raise BatchTooLarge(len(rows), get_settings().max_batch_rows)
    if not rows:
        return IngestResult(kind="activity", received=0, inserted=0, updated=0, unchanged=0)
    clean, errors = _validate(spec, rows)
    keys = _fill_and_key(spec, clean, errors)
    known = dict(customer_ids or {})
    wanted = {row["customer"] for row in clean if row is not None} - set(known)
    if wanted:
        known.update(CustomerRepository(session, tenant_id).ids_by_external(wanted))
    for i, row in enumerate(clean):
        if row is None:
            continue
        row["customer_id"] = known.get(row.pop("customer"))
        if row["customer_id"] is None:
            errors.append(field_error([i, "customer"], "unknown customer external_id"))
    if errors:
        _raise_invalid(errors, len(rows))
    good: list[dict[str, Any]] = clean  # type: ignore[assignment]  # no None left
    repo = ActivityRepository(session, tenant_id)
    try:
        # At most every row is new: checked against that bound first, the common case needs
        # no lookup of the stored keys.
        _check_quota(session, tenant_id, len(good), quota)
    except QuotaExceeded:
        _check_quota(session, tenant_id, len(good) - len(repo.existing(keys)), quota)
    inserted = repo.append_new(good)
    return IngestResult(
        kind="activity",
        received=len(rows),
        inserted=inserted,
        updated=0,
        unchanged=len(good) - inserted,
    )


def _fill_and_key(
    spec: KindSpec, clean: list[dict[str, Any] | None], errors: list[dict[str, Any]]
) -> list[Any]:
    """Fill in the kind's defaults, add the errors between fields and between rows (a key given
    twice) to ``errors``, and return each row's upsert key (None for a row that failed)."""
    for name, default in spec.defaults.items():
        for row in clean:
            if row is not None and row.get(name) is None:
                row[name] = default
    errors.extend(_cross_field_errors(spec.name, clean))
    # A single-column key is the bare value, a composite one a tuple (as repo.existing keys).
    key_of = itemgetter(*spec.key)
    keys = [key_of(row) if row is not None else None for row in clean]
    if len(set(keys)) < len(keys):
        errors.extend(_duplicate_errors(keys, clean, spec.key[-1]))
    return keys


def _checked_rows(
    session: Session,
    tenant_id: uuid.UUID,
    spec: KindSpec,
    rows: Sequence[Mapping[str, Any]],
    *,
    trusted: bool,
) -> tuple[list[dict[str, Any]], list[Any]]:
    """The batch's rows as they are stored, defaults filled in, and each row's upsert key;
    InvalidInput naming every bad row's index and field when any row is bad."""
    if trusted:
        clean: list[dict[str, Any] | None] = [dict(row) for row in rows]
        errors: list[dict[str, Any]] = []
    else:
        clean, errors = _validate(spec, rows)
    keys = _fill_and_key(spec, clean, errors)
    _resolve_references(session, tenant_id, spec, rows, clean, errors)
    if errors:
        _raise_invalid(errors, len(rows))
    return clean, keys  # type: ignore[return-value]  # no None left


def _changed_rows(
    stored: Mapping[Any, tuple[Any, ...]],
    keys: list[Any],
    good: list[dict[str, Any]],
    values_of: Callable[[dict[str, Any]], tuple[Any, ...]],
) -> tuple[list[dict[str, Any]], int, int, list[tuple[Any, ...]]]:
    """The rows to write (new or changed), how many are new and changed, and the stored
    values of the changed ones."""
    to_write = []
    replaced: list[tuple[Any, ...]] = []
    inserted = updated = 0
    for key, row in zip(keys, good, strict=True):
        before = stored.get(key)
        if before is None:
            inserted += 1
            to_write.append(row)
        elif before != values_of(row):
            updated += 1
            to_write.append(row)
            replaced.append(before)
    return to_write, inserted, updated, replaced


@contextmanager
def fresh_activity_load(session: Session, tenant_id: uuid.UUID) -> Iterator[bool]:
    """Around a bulk load of activity events into an empty activity table on SQLite (the demo
    company's million events into a fresh database): the table's non-unique indexes are
    dropped for the load and built again after it from their stored statements, and the
    active-user rollup runs once over all the loaded events instead of once per batch. Building
    an index from the finished table sorts once; keeping three indexes up to date cost as much
    again as inserting the rows (about 2.5x the insert's CPU without them, measured).
    Yields whether it did so (False, and nothing changes, elsewhere: PostgreSQL, or stored
    events of any tenant, whose readers need the indexes meanwhile).

    Must run inside the caller's unit of work, which rolls back on an error: SQLite's DDL is
    transactional, so a failed load leaves the indexes as they were. Nothing may read the
    activity table by those indexes before the block ends (ingest_rows does not)."""
    repo = ActivityRepository(session, tenant_id)
    if (
        session.get_bind().dialect.name != "sqlite"
        or _DEFERRED_ROLLUP in session.info
        or not repo.table_is_empty()
    ):
        yield False
        return
    last_id = repo.last_id()
    indexes = repo.drop_secondary_indexes()
    session.info[_DEFERRED_ROLLUP] = last_id
    try:
        yield True
    finally:
        session.info.pop(_DEFERRED_ROLLUP, None)
    repo.create_indexes(indexes)
    # After the indexes: the rollup then reads the new events in id order, by (tenant, id).
    ActiveUserDayRepository(session, tenant_id).record_first_load(last_id)


def _roll_up_active_users(
    session: Session,
    tenant_id: uuid.UUID,
    repo: RowRepository,
    written: Sequence[Mapping[str, Any]],
    replaced: Sequence[tuple[Any, ...]],
) -> None:
    """Keep the per-day distinct-active-user rollup in step with the events just written: their
    users' days are added (a late event for an old day too); the days the updated events left
    are pruned unless another event keeps them."""
    days = ActiveUserDayRepository(session, tenant_id)
    days.record_events([r["external_id"] for r in written])
    if replaced:
        added = {(utc_day(r["occurred_at"]), r["customer_id"], r["user_id"]) for r in written}
        columns = repo.data_columns()
        at, customer, user = (columns.index(c) for c in ("occurred_at", "customer_id", "user_id"))
        left = {(utc_day(v[at]), v[customer], v[user]) for v in replaced} - added
        days.prune(sorted(left))


def _raise_invalid(errors: list[dict[str, Any]], received: int) -> None:
    errors.sort(key=lambda e: e["loc"][0] if e["loc"] else -1)
    bad = sorted({e["loc"][0] for e in errors if e["loc"] and isinstance(e["loc"][0], int)})
    shown = ", ".join(str(i) for i in bad[:DETAIL_INDEXES])
    more = f" and {len(bad) - DETAIL_INDEXES} more" if len(bad) > DETAIL_INDEXES else ""
    exc = InvalidInput(
        f"{len(bad)} of {received} rows are invalid (rows {shown}{more}); nothing was written",
        errors,
    )
    exc.extra["bad_rows"] = bad
    raise exc


def delete_by_external(
    session: Session, tenant_id: uuid.UUID, kind: str, external_ids: Sequence[str]
) -> int:
    """Delete the tenant's rows of ``kind`` with these external ids (for a source whose own
    object no longer yields them, as a connector re-deriving its rows); returns rows deleted."""
    spec = get_kind(kind)
    if "external_id" not in spec.fields:
        raise InvalidInput(f"{kind} rows have no external_id")
    return repository_for(session, tenant_id, kind).delete_external(external_ids)


# ---- reads ----


def known_customers(
    session: Session, tenant_id: uuid.UUID, external_ids: Collection[str]
) -> set[str]:
    """The external ids among ``external_ids`` that name a stored customer of the tenant."""
    if not external_ids:
        return set()
    return set(CustomerRepository(session, tenant_id).ids_by_external(external_ids))


def customer_ids(
    session: Session, tenant_id: uuid.UUID, external_ids: Collection[str]
) -> dict[str, uuid.UUID]:
    """The ids of the stored customers among ``external_ids``, by external id."""
    if not external_ids:
        return {}
    return CustomerRepository(session, tenant_id).ids_by_external(external_ids)


def customer_rows(
    session: Session, tenant_id: uuid.UUID, external_ids: Collection[str]
) -> dict[str, dict[str, Any]]:
    """Stored customers as contract rows (the fields an ingest takes), by external id, so a
    source that knows only some fields can merge them into what is stored."""
    if not external_ids:
        return {}
    spec = get_kind("customers")
    objs = CustomerRepository(session, tenant_id).by_externals(external_ids)
    return {o.external_id: {f: getattr(o, f) for f in spec.fields} for o in objs}


def external_ids_starting(
    session: Session, tenant_id: uuid.UUID, kind: str, prefixes: Collection[str]
) -> list[str]:
    """External ids of the tenant's ``kind`` rows that begin with one of ``prefixes``."""
    if not prefixes:
        return []
    return repository_for(session, tenant_id, kind).external_ids_starting(prefixes)


def _customer_filter_id(session: Session, tenant_id: uuid.UUID, filters: Mapping[str, Any]) -> Any:
    ext = filters.get("customer")
    if ext is None:
        return None
    return CustomerRepository(session, tenant_id).ids_by_external([ext]).get(ext)


def _with_references(
    session: Session, tenant_id: uuid.UUID, spec: KindSpec, objs: Sequence[Any]
) -> list[dict[str, Any]]:
    """Rows as dicts with the contract's reference fields (external ids): two queries at most."""
    columns = [c.name for c in spec.model.__table__.columns if c.name != "tenant_id"]
    out = [{c: getattr(obj, c) for c in columns} for obj in objs]
    if spec.has_customer:
        names = CustomerRepository(session, tenant_id).external_by_ids(
            r["customer_id"] for r in out
        )
        for r in out:
            r["customer"] = names.get(r["customer_id"])
    if spec.name == "payments":
        subs = SubscriptionRepository(session, tenant_id).external_by_ids(
            r["subscription_id"] for r in out if r["subscription_id"] is not None
        )
        for r in out:
            r["subscription"] = subs.get(r["subscription_id"]) if r["subscription_id"] else None
    return out


def list_rows(
    session: Session,
    tenant_id: uuid.UUID,
    kind: str,
    filters: Mapping[str, Any],
    page: PageParams,
) -> tuple[list[dict[str, Any]], str | None]:
    spec = get_kind(kind)
    repo = repository_for(session, tenant_id, kind)
    stmt = repo.list_statement(filters, _customer_filter_id(session, tenant_id, filters))
    objs, cursor = paginate(session, stmt, spec.model.id, page, parse=spec.id_type)  # type: ignore[attr-defined]
    return _with_references(session, tenant_id, spec, objs), cursor


def get_row(session: Session, tenant_id: uuid.UUID, kind: str, ident: Any) -> dict[str, Any]:
    spec = get_kind(kind)
    obj = repository_for(session, tenant_id, kind).get_or_404(ident)
    return _with_references(session, tenant_id, spec, [obj])[0]


def get_row_by_external(
    session: Session, tenant_id: uuid.UUID, kind: str, external_id: str
) -> dict[str, Any]:
    spec = get_kind(kind)
    repo = repository_for(session, tenant_id, kind)
    obj = repo.by_external(external_id)
    if obj is None:
        raise NotFound(repo.noun, external_id)
    return _with_references(session, tenant_id, spec, [obj])[0]


def iter_export_rows(
    session: Session,
    tenant_id: uuid.UUID,
    kind: str,
    filters: Mapping[str, Any],
    batch: int = 2_000,
) -> Iterator[dict[str, Any]]:
    """Every matching row in id order as a contract dict (the fields an import takes back)."""
    spec = get_kind(kind)
    repo: RowRepository = repository_for(session, tenant_id, kind)
    customer_id = _customer_filter_id(session, tenant_id, filters)
    for result_row in repo.export_rows(filters, customer_id, batch):
        obj = result_row[0]
        out = {}
        for name in spec.fields:
            if name == "customer":
                out[name] = result_row[1]
            elif name == "subscription":
                out[name] = result_row[2]
            else:
                out[name] = getattr(obj, name)
        yield out


__all__ = [
    "BatchTooLarge",
    "IngestResult",
    "QuotaExceeded",
    "customer_rows",
    "delete_by_external",
    "external_ids_starting",
    "get_row",
    "get_row_by_external",
    "ingest_rows",
    "iter_export_rows",
    "known_customers",
    "list_rows",
]
