"""Ad-spend exports into marketing spend, with the tenant's campaign-to-channel rules."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from aethercrown.connectors import adspend
from aethercrown.connectors.models import ChannelRule
from aethercrown.connectors.repository import ChannelRuleRepository
from aethercrown.core.errors import InvalidInput, field_error
from aethercrown.data import service as data

SOURCES = (*adspend.FORMATS, "any")


def channel_rules(session: Session, tenant_id: uuid.UUID) -> Sequence[ChannelRule]:
    return ChannelRuleRepository(session, tenant_id).ordered()


def replace_channel_rules(
    session: Session, tenant_id: uuid.UUID, rules: Sequence[dict[str, Any]]
) -> Sequence[ChannelRule]:
    """The tenant's rules become exactly ``rules`` (source, pattern, channel, priority)."""
    seen: set[tuple[str, str]] = set()
    errors = []
    for i, rule in enumerate(rules):
        key = (rule["source"], rule["pattern"].lower())
        if key in seen:
            errors.append(field_error([i, "pattern"], "duplicates an earlier rule's pattern"))
        seen.add(key)
    if errors:
        raise InvalidInput("Channel rules repeat a pattern; nothing was changed", errors)
    repo = ChannelRuleRepository(session, tenant_id)
    repo.delete_all()
    for rule in rules:
        repo.add(ChannelRule(**rule))
    session.flush()
    return repo.ordered()


def import_export(
    session: Session, tenant_id: uuid.UUID, text: str, fmt: str, currency: str = "USD"
) -> dict[str, Any]:
    """Read one platform's campaign report and upsert its (channel, day) spend. A file that is
    not such a report is a 422 that stores nothing; rows that cannot be read are skipped and
    listed with the reason (the rest are imported)."""
    if "\x00" in text:
        raise InvalidInput("The file contains NUL characters", [field_error(["file"], "NUL")])
    try:
        parsed = adspend.parse_export(text, fmt, currency)
    except adspend.ExportError as exc:
        raise InvalidInput(str(exc), [field_error(["file"], str(exc))]) from exc
    rules = [
        adspend.Rule(r.source, r.pattern, r.channel) for r in channel_rules(session, tenant_id)
    ]
    days, conflicts = adspend.channel_days(parsed, fmt, rules)
    skipped = sorted([*parsed.skipped, *conflicts], key=lambda s: s.line)
    result = data.ingest_rows(session, tenant_id, "marketing", days, max_rows=max(len(days), 1))
    return {
        "format": fmt,
        "rows": parsed.data_lines,
        "campaign_days": len(parsed.rows) - len(conflicts),
        "channel_days": len(days),
        "channels": sorted({d["channel"] for d in days}),
        "inserted": result.inserted,
        "updated": result.updated,
        "unchanged": result.unchanged,
        "skipped": [{"line": s.line, "reason": s.reason} for s in skipped],
    }
