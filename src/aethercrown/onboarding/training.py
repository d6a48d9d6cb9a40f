"""Training sessions proposed in the contact's own time zone and working hours, and their
iCalendar (RFC 5545) file. Pure: takes and returns plain values."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

# Sessions start no earlier than this many days after the proposal, on working days (Mon–Fri).
LEAD_DAYS = 2


@dataclass(frozen=True)
class Session:
    number: int
    start: datetime  # aware, in the contact's zone
    end: datetime

    @property
    def start_utc(self) -> datetime:
        return self.start.astimezone(UTC)

    @property
    def end_utc(self) -> datetime:
        return self.end.astimezone(UTC)


def propose_sessions(
    now: datetime,
    time_zone: str,
    sessions: int,
    duration_minutes: int,
    working_hours_start: int,
    working_hours_end: int,
    every_days: int = 2,
) -> list[Session]:
    """``sessions`` sessions of ``duration_minutes``, each at the start of the contact's working
    day, the first ``LEAD_DAYS`` local days after ``now``, then every ``every_days`` working
    days. A session that would run past the working day starts earlier so it ends with it."""
    zone = ZoneInfo(time_zone)
    local_today = now.astimezone(zone).date()
    day = local_today + timedelta(days=LEAD_DAYS)
    latest_start = working_hours_end * 60 - duration_minutes
    start_minute = max(0, min(working_hours_start * 60, latest_start))
    out: list[Session] = []
    gap = 0
    while len(out) < sessions:
        if day.weekday() < 5:
            if gap == 0:
                # fold=0 and a round trip through UTC keep a start in a DST gap a real instant.
                naive = datetime.combine(day, time(start_minute // 60, start_minute % 60))
                start = naive.replace(tzinfo=zone).astimezone(UTC).astimezone(zone)
                out.append(
                    Session(len(out) + 1, start, start + timedelta(minutes=duration_minutes))
                )
                gap = every_days
            gap -= 1
        day += timedelta(days=1)
    return out


def to_icalendar(
    sessions: list[Session],
    *,
    uid_prefix: str,
    summary: str,
    organizer_email: str | None,
    attendee_email: str | None,
    stamp: datetime,
) -> bytes:
    """An RFC 5545 calendar with one event per session, in the contact's zone (with its
    VTIMEZONE), stable UIDs so a re-sent file updates instead of duplicating."""
    # Imported when a calendar is asked for (rare): it is not needed to start the platform.
    import icalendar

    cal = icalendar.Calendar()
    cal.add("prodid", "-//AetherCrown//Onboarding training//EN")
    cal.add("version", "2.0")
    cal.add("method", "PUBLISH")
    cal.add("x-wr-calname", summary)
    for s in sessions:
        event = icalendar.Event()
        event.add("uid", f"{uid_prefix}-training-{s.number}@aethercrown")
        event.add("dtstamp", stamp.astimezone(UTC))
        event.add("dtstart", s.start)
        event.add("dtend", s.end)
        event.add("summary", f"{summary}: session {s.number} of {len(sessions)}")
        if organizer_email:
            event.add("organizer", f"mailto:{organizer_email}")
        if attendee_email:
            event.add("attendee", f"mailto:{attendee_email}")
        cal.add_component(event)
    cal.add_missing_timezones()
    return bytes(cal.to_ical())
