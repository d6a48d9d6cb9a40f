"""The demo's window is defined by its end: it ends exactly there on any day — the first of a
month, mid-month, the last minute of a year, a leap day — and nothing generated lies after it."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
from dateutil.relativedelta import relativedelta

from aethercrown import clock
from aethercrown.simulate import SimConfig, SimulatedCompany, generate
from aethercrown.simulate.config import as_end, default_end

# The instant of each row kind (its occurrence; a trial's end is a schedule, not an event).
WHEN = {
    "customers": ("signup_date",),
    "subscriptions": ("started_at", "ended_at"),
    "activity": ("occurred_at",),
    "tickets": ("opened_at", "closed_at"),
    "payments": ("occurred_at",),
    "marketing": ("day",),
    "usage": ("timestamp",),
    "experiment_assignments": ("assigned_at",),
}
# Ends on the calendar's edges (the clock is moved there: the default end is "now").
EDGES = [
    datetime(2026, 12, 1, 0, 1, tzinfo=UTC),  # a minute into a month
    datetime(2026, 12, 2, 10, 37, tzinfo=UTC),  # mid-month, mid-morning
    datetime(2025, 12, 31, 23, 59, tzinfo=UTC),  # the last minute of a year
    datetime(2028, 2, 29, 12, 0, tzinfo=UTC),  # a leap day
    datetime(2026, 11, 1, tzinfo=UTC),  # a midnight: whole days only
]


def instant(value: str) -> datetime:
    if len(value) == 10:  # a day: its last instant counts
        return datetime.combine(date.fromisoformat(value), time.max, UTC)
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def latest(company: SimulatedCompany) -> dict[str, datetime]:
    out = {}
    for kind, fields in WHEN.items():
        for name in fields:
            values = [v for v in company.rows[kind].column(name) if v is not None]
            if values:
                out[f"{kind}.{name}"] = max(instant(v) for v in values)
    return out


def small(end: datetime | None = None, **kw: object) -> SimConfig:
    values: dict[str, object] = {"customers": 200, "months": 3, "seed": 4, "activity_scale": 0.5}
    values.update(kw)
    if end is not None:
        values["end"] = end
    return SimConfig(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize("end", EDGES, ids=lambda e: e.strftime("%Y-%m-%dT%H:%M:%S"))
def test_the_window_ends_at_the_end_and_nothing_lies_after_it(end: datetime) -> None:
    with clock.travel(end + timedelta(seconds=20), tick=False):
        config = small()  # the default end: now, to the minute
    assert config.end == end.replace(second=0)
    company = generate(config)
    end = config.end
    truth = company.truth
    assert truth.end == end and company.summary()["window"][1] == end.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert truth.start == config.start
    assert datetime.combine(truth.start, time.min, UTC) < end
    # Three calendar months back from the end's day (clamped to the month's last day).
    assert truth.start == end.date() - relativedelta(months=3)
    for field, moment in latest(company).items():
        if field in ("customers.signup_date", "marketing.day"):
            # Days: a signup happens on the end's day only before the end; a marketing day is
            # reported once it is over.
            day = moment.date()
            assert day <= end.date() and (field != "marketing.day" or day < end.date()), field
        else:
            assert moment < end, (field, moment)
    # The company is alive up to its end: the newest activity and usage are recent.
    recent = latest(company)
    assert end - recent["activity.occurred_at"] < timedelta(days=3)
    assert end - recent["usage.timestamp"] <= timedelta(hours=1)
    # The truth's months run up to the end's month, whose MRR is read at the end.
    months = sorted(truth.mrr_by_month)
    last_month = (end - timedelta(microseconds=1)).strftime("%Y-%m")
    assert months[-1] == last_month and months[0] == truth.start.strftime("%Y-%m")
    assert truth.mrr_by_month[last_month] == truth.mrr_at(end)
    for churn in truth.churn:
        assert instant(churn["decided_at"]) < end
    assert all(instant(r["renewal_at"]) < end for r in truth.renewals)


def test_same_seed_and_end_same_company_and_a_later_end_another() -> None:
    end = datetime(2026, 12, 2, 10, 37, tzinfo=UTC)
    a, b = generate(small(end)), generate(small(end))
    for kind in a.rows:
        assert a.rows[kind].fingerprint() == b.rows[kind].fingerprint(), kind
    assert a.truth.to_dict() == b.truth.to_dict()
    later = generate(small(end + timedelta(days=1)))
    assert later.rows["activity"].fingerprint() != a.rows["activity"].fingerprint()
    assert later.truth.start == a.truth.start + timedelta(days=1)


def test_a_partial_last_day_acquires_only_before_the_end() -> None:
    # At 09:00 a quarter of the signup hours (08:00–20:00) has passed: signups that day happen
    # before 09:00 and are fewer than on a whole day; at 07:00 there are none yet.
    for hour, allowed in ((9, True), (7, False)):
        end = datetime(2026, 3, 16, hour, tzinfo=UTC)
        company = generate(small(end, customers=3000, months=2, existing_share=0.0))
        today = [c for c in company.rows["customers"] if c["signup_date"] == end.date().isoformat()]
        starts = {s["customer"]: instant(s["started_at"]) for s in company.rows["subscriptions"]}
        assert bool(today) == allowed
        assert all(starts[c["external_id"]] < end for c in today)


def test_config_ends_are_normalised_and_checked() -> None:
    assert as_end(date(2026, 12, 2)) == datetime(2026, 12, 2, tzinfo=UTC)
    assert as_end("2026-12-02T10:37:00Z") == datetime(2026, 12, 2, 10, 37, tzinfo=UTC)
    assert as_end(datetime(2026, 12, 2, 10, 37)) == datetime(2026, 12, 2, 10, 37, tzinfo=UTC)
    with clock.travel(datetime(2028, 2, 29, 23, 59, 59, tzinfo=UTC), tick=False):
        assert default_end() == datetime(2028, 2, 29, 23, 59, tzinfo=UTC)
    config = SimConfig(end=datetime(2026, 3, 31, 12, 0, 0, 999, tzinfo=UTC), months=2)
    assert config.end.microsecond == 0 and config.start == date(2026, 1, 31)
    assert SimConfig.from_dict(config.to_dict()) == config
    # A config stored before windows were defined by their end reads back as the same window.
    old = {**config.to_dict(), "start": "2025-05-01", "months": 18}
    del old["end"]
    assert SimConfig.from_dict(old).end == datetime(2026, 11, 1, tzinfo=UTC)
    with pytest.raises(ValueError):
        SimConfig(end=datetime(1971, 1, 1, tzinfo=UTC))


def test_months_are_counted_back_on_the_calendar() -> None:
    # Calendar months, clamped to the shorter month's last day.
    def start(end: date, months: int) -> date:
        return SimConfig(end=datetime.combine(end, datetime.min.time(), UTC), months=months).start

    assert start(date(2028, 2, 29), 12) == date(2027, 2, 28)
    assert start(date(2026, 3, 31), 2) == date(2026, 1, 31)
    assert start(date(2026, 12, 2), 18) == date(2025, 6, 2)
    assert start(date(2026, 4, 30), 2) == date(2026, 2, 28)
