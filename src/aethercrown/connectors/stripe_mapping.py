"""Stripe objects to business-data rows: pure functions over plain dicts, no database.

Every mapping is a function of the stored events of one Stripe object, sorted by their creation
time, so the result is the same whatever order the events arrived in and however often they were
delivered (Stripe retries, a backfill reads an object again).

Subscriptions become *segments*: one business-data subscription row per subscription item and
period of unchanged terms (price, quantity, discount). A mid-month plan change closes the old
segment at the change and opens a new one, so the MRR of every month-end reads the plan then in
force; invoices (and their proration lines) never enter MRR. Prices are normalised to the data
contract's two intervals: ``month`` and ``year`` stay (the analytics read a year as 1/12 a
month), any other interval (every 3 months, weekly, daily) becomes its monthly equivalent.
Metered items (billed on usage) and items without a unit amount (tiered prices) have no fixed
recurring value and make no segment.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

# Stripe object type -> the mapping that reads it.
MAPPED_OBJECTS = ("customer", "subscription", "invoice", "charge")

# Days per month and weeks per month over a year, for intervals the data contract lacks.
_MONTHS_PER = {"day": Decimal(12) / Decimal(365), "week": Decimal(12) / Decimal(52)}


class StripeShapeError(ValueError):
    """A payload that is not a Stripe object of the expected shape."""


def epoch_time(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise StripeShapeError(f"expected a Unix timestamp, got {value!r}")
    return datetime.fromtimestamp(value, UTC)


def ref_id(value: Any) -> str | None:
    """An id that Stripe sends either bare or as an expanded object."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping) and isinstance(value.get("id"), str):
        return str(value["id"])
    raise StripeShapeError(f"expected an id or an object with an id, got {value!r}")


def currency_code(value: Any) -> str:
    if not isinstance(value, str) or len(value) != 3 or not value.isalpha():
        raise StripeShapeError(f"expected a three-letter currency, got {value!r}")
    return value.upper()


@dataclass(frozen=True)
class Snapshot:
    """One state of a Stripe object: when it was true and what it was."""

    at: datetime
    event_id: str
    event_type: str
    obj: Mapping[str, Any]


# ---- customers ------------------------------------------------------------------------------


def customer_row(obj: Mapping[str, Any], deleted: bool = False) -> dict[str, Any]:
    ident = ref_id(obj.get("id"))
    if ident is None:
        raise StripeShapeError("customer without id")
    created = epoch_time(obj.get("created"))
    address = obj.get("address") if isinstance(obj.get("address"), Mapping) else {}
    country = address.get("country") if isinstance(address, Mapping) else None
    attributes: dict[str, Any] = {"source": "stripe"}
    if isinstance(obj.get("metadata"), Mapping) and obj["metadata"]:
        attributes["metadata"] = dict(obj["metadata"])
    if obj.get("delinquent"):
        attributes["delinquent"] = True
    if deleted:
        attributes["deleted"] = True
    currency = obj.get("currency")
    return {
        "external_id": ident,
        "name": (obj.get("name") or obj.get("email") or ident)[:300],
        "email": obj.get("email") or None,
        "currency": currency_code(currency) if currency else "USD",
        "country": country if isinstance(country, str) and len(country) == 2 else None,
        "signup_date": (created or datetime(1970, 1, 1, tzinfo=UTC)).date(),
        "attributes": attributes,
    }


def placeholder_customer(external_id: str, seen: datetime) -> dict[str, Any]:
    """A customer named only by a subscription, invoice or charge whose own event has not come
    yet (events arrive in any order); the customer's event replaces it when it comes."""
    return {
        "external_id": external_id,
        "name": external_id,
        "email": None,
        "currency": "USD",
        "country": None,
        "signup_date": seen.date(),
        "attributes": {"source": "stripe", "placeholder": True},
    }


def latest(snapshots: Sequence[Snapshot]) -> Snapshot:
    """The newest state; at equal times, the event that arrived last is listed last and wins."""
    return max(enumerate(snapshots), key=lambda pair: (pair[1].at, pair[0]))[1]


# ---- subscriptions --------------------------------------------------------------------------


@dataclass(frozen=True)
class Terms:
    """What one subscription item is billed, in the data contract's terms."""

    plan: str
    amount: int
    currency: str
    interval: str
    quantity: int
    discount_percent: float
    discount_amount: int


@dataclass
class Segment:
    item: str
    terms: Terms
    started_at: datetime
    ended_at: datetime | None = None
    trial_end: datetime | None = None


def monthly_terms(amount: int, interval: str, count: int) -> tuple[int, str]:
    """(amount, interval) in the contract's month/year for any Stripe recurring interval."""
    if count < 1:
        raise StripeShapeError(f"interval_count must be at least 1, got {count}")
    if interval in ("month", "year"):
        if count == 1:
            return amount, interval
        per = Decimal(amount) / Decimal(count)
        return int(per.quantize(Decimal(1), rounding=ROUND_HALF_UP)), interval
    if interval in _MONTHS_PER:
        per = Decimal(amount) / (Decimal(count) / _MONTHS_PER[interval])
        return int(per.quantize(Decimal(1), rounding=ROUND_HALF_UP)), "month"
    raise StripeShapeError(f"unknown recurring interval {interval!r}")


def _plan_name(price: Mapping[str, Any]) -> str:
    product = price.get("product")
    product_name = product.get("name") if isinstance(product, Mapping) else None
    name = price.get("nickname") or price.get("lookup_key") or product_name or price.get("id")
    return str(name or "stripe")[:100]


def _coupon(sub: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The subscription's coupon: ``discount`` (one) or the first expanded of ``discounts``."""
    found = sub.get("discount")
    if not isinstance(found, Mapping):
        listed = sub.get("discounts")
        found = (
            next((d for d in listed or () if isinstance(d, Mapping)), None)
            if isinstance(listed, list)
            else None
        )
    if not isinstance(found, Mapping):
        return None
    coupon = found.get("coupon")
    if not isinstance(coupon, Mapping):
        source = found.get("source")
        coupon = source.get("coupon") if isinstance(source, Mapping) else None
    if not isinstance(coupon, Mapping) or coupon.get("duration") == "once":
        # A once-off coupon reduces one invoice, not the recurring revenue.
        return None
    return coupon


def item_terms(sub: Mapping[str, Any]) -> dict[str, tuple[Terms, datetime | None]]:
    """Item id -> (terms, item created) for the items that carry recurring revenue."""
    items = sub.get("items")
    data = items.get("data") if isinstance(items, Mapping) else None
    if not isinstance(data, list):
        raise StripeShapeError("subscription without items.data")
    coupon = _coupon(sub)
    percent = float(coupon.get("percent_off") or 0) if coupon else 0.0
    amount_off = int(coupon.get("amount_off") or 0) if coupon else 0
    out: dict[str, tuple[Terms, datetime | None]] = {}
    for item in data:
        if not isinstance(item, Mapping):
            raise StripeShapeError("subscription item is not an object")
        price = item.get("price") or item.get("plan")
        if not isinstance(price, Mapping):
            raise StripeShapeError("subscription item without price")
        recurring = price.get("recurring")
        if isinstance(recurring, Mapping):
            interval, count = recurring.get("interval"), recurring.get("interval_count", 1)
            usage = recurring.get("usage_type")
        else:  # the legacy plan object carries them on itself
            interval, count = price.get("interval"), price.get("interval_count", 1)
            usage = price.get("usage_type")
        unit = price.get("unit_amount", price.get("amount"))
        if usage == "metered" or unit is None:
            continue
        if not isinstance(unit, int) or isinstance(unit, bool) or unit < 0:
            raise StripeShapeError(f"unit_amount must be a non-negative integer, got {unit!r}")
        if not isinstance(count, int) or not isinstance(interval, str):
            raise StripeShapeError("recurring price without interval")
        amount, contract_interval = monthly_terms(unit, interval, count)
        quantity = item.get("quantity", 1)
        if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 0:
            raise StripeShapeError(f"quantity must be a non-negative integer, got {quantity!r}")
        if quantity == 0:
            continue
        item_id = ref_id(item.get("id"))
        if item_id is None:
            raise StripeShapeError("subscription item without id")
        # An amount-off coupon reduces the invoice once per interval: it is booked on the first
        # item so the subscription's total is reduced by it exactly once.
        terms = Terms(
            plan=_plan_name(price),
            amount=amount,
            currency=currency_code(price.get("currency") or sub.get("currency")),
            interval=contract_interval,
            quantity=quantity,
            discount_percent=min(max(percent, 0.0), 100.0),
            discount_amount=amount_off if not out else 0,
        )
        out[item_id] = (terms, epoch_time(item.get("created")))
    return out


def _end_of(sub: Mapping[str, Any]) -> datetime | None:
    """When the subscription stops (or is scheduled to stop), if it does."""
    if sub.get("status") in ("canceled", "incomplete_expired"):
        return epoch_time(sub.get("ended_at") or sub.get("canceled_at") or sub.get("cancel_at"))
    if sub.get("cancel_at") is not None:
        return epoch_time(sub.get("cancel_at"))
    if sub.get("cancel_at_period_end"):
        return epoch_time(sub.get("current_period_end"))
    return None


def _paused(sub: Mapping[str, Any]) -> bool:
    return sub.get("status") == "paused" or isinstance(sub.get("pause_collection"), Mapping)


def subscription_segments(snapshots: Sequence[Snapshot]) -> tuple[str, list[Segment]]:
    """(customer id, segments) of one subscription from all its known states."""
    ordered = [s for _, s in sorted(enumerate(snapshots), key=lambda p: (p[1].at, p[0]))]
    customer: str | None = None
    open_segments: dict[str, Segment] = {}
    done: list[Segment] = []
    seen_items: set[str] = set()
    for snap in ordered:
        sub = snap.obj
        customer = ref_id(sub.get("customer")) or customer
        start = epoch_time(sub.get("start_date") or sub.get("created")) or snap.at
        wanted = {} if _paused(sub) or sub.get("status") == "incomplete" else item_terms(sub)
        end = _end_of(sub)
        trial_end = epoch_time(sub.get("trial_end"))
        for item_id, segment in list(open_segments.items()):
            now_terms = wanted.get(item_id)
            if now_terms is None or now_terms[0] != segment.terms:
                segment.ended_at = max(segment.started_at, snap.at)
                done.append(open_segments.pop(item_id))
        for item_id, (terms, item_created) in wanted.items():
            if item_id in open_segments:
                continue
            first = item_id not in seen_items
            begins = max(item_created or start, start) if first else snap.at
            open_segments[item_id] = Segment(item_id, terms, begins)
            seen_items.add(item_id)
        for segment in open_segments.values():
            segment.ended_at = max(end, segment.started_at) if end is not None else None
            segment.trial_end = trial_end if trial_end and trial_end > segment.started_at else None
    if customer is None:
        raise StripeShapeError("subscription without customer")
    segments = [s for s in [*done, *open_segments.values()] if s.ended_at != s.started_at]
    return customer, segments


def segment_external_id(subscription_id: str, segment: Segment) -> str:
    return f"{subscription_id}:{segment.item}:{int(segment.started_at.timestamp())}"


def segment_rows(subscription_id: str, customer: str, segments: Iterable[Segment]) -> list[dict]:
    return [
        {
            "external_id": segment_external_id(subscription_id, s),
            "customer": customer,
            "plan": s.terms.plan,
            "amount": s.terms.amount,
            "currency": s.terms.currency,
            "interval": s.terms.interval,
            "quantity": s.terms.quantity,
            "started_at": s.started_at,
            "ended_at": s.ended_at,
            "discount_percent": s.terms.discount_percent,
            "discount_amount": s.terms.discount_amount,
            "trial_end": s.trial_end,
        }
        for s in segments
    ]


def segment_start(external_id: str) -> int:
    """The start (Unix seconds) a segment's external id ends with."""
    return int(external_id.rsplit(":", 1)[1])


# ---- invoices and payments ------------------------------------------------------------------


@dataclass
class InvoiceMapping:
    invoice: dict[str, Any]
    payments: list[dict[str, Any]] = field(default_factory=list)


def invoice_mapping(snapshots: Sequence[Snapshot]) -> InvoiceMapping:
    """The invoice's latest state, and one payment per outcome: each failed attempt (failed
    payments feed the churn model's payment-issue features) and the final payment."""
    newest = latest(snapshots)
    inv = newest.obj
    ident = ref_id(inv.get("id"))
    customer = ref_id(inv.get("customer"))
    if ident is None or customer is None:
        raise StripeShapeError("invoice without id or customer")
    currency = currency_code(inv.get("currency"))
    recurring = proration = 0
    lines = inv.get("lines")
    for line in (lines.get("data") if isinstance(lines, Mapping) else None) or ():
        if not isinstance(line, Mapping):
            continue
        amount = line.get("amount")
        if not isinstance(amount, int) or isinstance(amount, bool):
            continue
        if _is_proration(line):
            proration += amount
        else:
            recurring += amount
    period = _line_period(lines)
    subscription = ref_id(inv.get("subscription")) or _parent_subscription(inv)
    issued = epoch_time(inv.get("created")) or newest.at
    row = {
        "external_id": ident,
        "customer": customer,
        "subscription": subscription,
        "status": str(inv.get("status") or "draft")[:20],
        "currency": currency,
        "amount_due": _minor(inv.get("amount_due")),
        "amount_paid": _minor(inv.get("amount_paid")),
        "recurring_amount": recurring,
        "proration_amount": proration,
        "attempt_count": _minor(inv.get("attempt_count")),
        "period_start": period[0] or epoch_time(inv.get("period_start")),
        "period_end": period[1] or epoch_time(inv.get("period_end")),
        "issued_at": issued,
        "as_of": newest.at,
    }
    out = InvoiceMapping(row)
    for snap in snapshots:
        if snap.event_type == "invoice.payment_failed":
            attempt = _minor(snap.obj.get("attempt_count")) or 1
            out.payments.append(
                _payment(
                    f"{ident}:failed:{attempt}",
                    customer,
                    subscription,
                    snap.at,
                    "failed",
                    _minor(snap.obj.get("amount_due")),
                    currency,
                    _failure_reason(snap.obj),
                )
            )
    if inv.get("status") == "paid" and _minor(inv.get("amount_paid")) > 0:
        transitions = inv.get("status_transitions")
        paid_at = (
            epoch_time(transitions.get("paid_at")) if isinstance(transitions, Mapping) else None
        )
        out.payments.append(
            _payment(
                f"{ident}:paid",
                customer,
                subscription,
                paid_at or newest.at,
                "succeeded",
                _minor(inv.get("amount_paid")),
                currency,
                None,
            )
        )
    return out


def charge_payments(snapshots: Sequence[Snapshot]) -> list[dict[str, Any]]:
    """Refunds, read from charges (invoices carry payments and failures already)."""
    newest = latest(snapshots)
    charge = newest.obj
    customer = ref_id(charge.get("customer"))
    refunded = _minor(charge.get("amount_refunded"))
    if customer is None or refunded == 0:
        return []
    return [
        _payment(
            f"{charge['id']}:refund",
            customer,
            None,
            newest.at,
            "refunded",
            refunded,
            currency_code(charge.get("currency")),
            None,
        )
    ]


def _payment(
    ident: str,
    customer: str,
    subscription: str | None,
    at: datetime,
    status: str,
    amount: int,
    currency: str,
    reason: str | None,
) -> dict[str, Any]:
    # "stripe_subscription" is resolved to the data segment in force at the time by the service.
    return {
        "external_id": ident,
        "customer": customer,
        "stripe_subscription": subscription,
        "occurred_at": at,
        "status": status,
        "amount": amount,
        "currency": currency,
        "reason": reason,
    }


def _failure_reason(inv: Mapping[str, Any]) -> str:
    error = inv.get("last_finalization_error") or inv.get("last_payment_error")
    if isinstance(error, Mapping):
        code = error.get("decline_code") or error.get("code")
        if isinstance(code, str):
            return code[:200]
    return "payment_failed"


def _minor(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise StripeShapeError(f"expected a non-negative integer amount, got {value!r}")
    return value


def _is_proration(line: Mapping[str, Any]) -> bool:
    if line.get("proration") is True:
        return True
    details = line.get("parent")
    if isinstance(details, Mapping):
        for key in ("subscription_item_details", "invoice_item_details"):
            inner = details.get(key)
            if isinstance(inner, Mapping) and inner.get("proration") is True:
                return True
    return False


def _line_period(lines: Any) -> tuple[datetime | None, datetime | None]:
    data = lines.get("data") if isinstance(lines, Mapping) else None
    for line in data or ():
        if isinstance(line, Mapping) and not _is_proration(line):
            period = line.get("period")
            if isinstance(period, Mapping):
                return epoch_time(period.get("start")), epoch_time(period.get("end"))
    return None, None


def _parent_subscription(inv: Mapping[str, Any]) -> str | None:
    """Newer API versions name the subscription under ``parent.subscription_details``."""
    parent = inv.get("parent")
    details = parent.get("subscription_details") if isinstance(parent, Mapping) else None
    return ref_id(details.get("subscription")) if isinstance(details, Mapping) else None


def first_seen(snapshots: Sequence[Snapshot]) -> datetime:
    return min(s.at for s in snapshots)
