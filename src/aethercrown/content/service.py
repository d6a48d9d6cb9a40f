"""Content orchestration: the product profile, generation through a provider or the offline
writer, stored and versioned items.

Generation runs in two halves so that no database transaction is open while a provider is
called: ``load_context`` reads the tenant's facts (the caller then ends its transaction),
``compose_*`` talks to the provider with plain values only, and ``store_item`` writes the result
in a new unit of work. Services never commit.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from cryptography.fernet import InvalidToken
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from aethercrown.churn import service as churn
from aethercrown.clock import utcnow
from aethercrown.content import analysis, campaign_mail, mail, prompts, schemas, social, stats
from aethercrown.content.facts import Feature, Link, ProductFacts, contains_banned, slugify
from aethercrown.content.models import ContentItem, ContentProfile, ContentVersion
from aethercrown.content.provider import (
    Completion,
    ProviderConfig,
    ProviderFailed,
    complete_json,
)
from aethercrown.content.repository import (
    ItemRepository,
    MetricsRepository,
    ProfileRepository,
    VersionRepository,
    insert_events,
    items_by_id,
)
from aethercrown.content.writer import BlogPost, render_html, write_blog
from aethercrown.core.crypto import SecretBox
from aethercrown.core.errors import Conflict, InvalidInput, NotFound, ProblemError, field_error
from aethercrown.core.ledger import audit
from aethercrown.data import service as data
from aethercrown.experiments import schemas as experiment_schemas
from aethercrown.experiments import service as experiments
from aethercrown.metering import service as metering
from aethercrown.webhooks.service import enqueue_webhook

OFFLINE = "offline"
OPENAI_COMPATIBLE = "openai-compatible"
_HEADING = re.compile(r"^(#{2,3})\s+(.+?)\s*#*\s*$", re.MULTILINE)
_LINK = re.compile(r"(?<!!)\[([^\]]+)\]\((https?://[^)\s]+)\)")


# The profile -----------------------------------------------------------------------------------


def save_profile(
    session: Session, tenant_id: uuid.UUID, body: schemas.ProfileIn, box: SecretBox
) -> ContentProfile:
    repo = ProfileRepository(session, tenant_id)
    profile = repo.current()
    if profile is None:
        profile = repo.add(ContentProfile())
    profile.product_name = body.product_name
    profile.audience = body.audience
    profile.value_propositions = list(body.value_propositions)
    profile.features = [f.model_dump() for f in body.features]
    profile.proof_points = list(body.proof_points)
    profile.tone = body.tone
    profile.banned_words = list(body.banned_words)
    profile.links = [link.model_dump() for link in body.links]
    profile.postal_address = body.postal_address
    profile.sender_name = body.sender_name
    if body.provider is None:
        profile.provider_base_url = profile.provider_model = None
        profile.provider_api_key = None
    else:
        profile.provider_base_url = body.provider.base_url
        profile.provider_model = body.provider.model
        profile.provider_api_key = (
            box.seal(body.provider.api_key) if body.provider.api_key else None
        )
    profile.updated_at = utcnow()
    session.flush()
    return profile


def profile_or_409(session: Session, tenant_id: uuid.UUID) -> ContentProfile:
    profile = ProfileRepository(session, tenant_id).current()
    if profile is None:
        raise ProblemError(
            409,
            "content-profile-missing",
            "No product profile",
            "Tell the platform about the product first: PUT /api/v1/content/profile",
        )
    return profile


def profile_out(profile: ContentProfile) -> schemas.ProfileOut:
    provider = None
    if profile.provider_base_url and profile.provider_model:
        provider = schemas.ProviderOut(
            base_url=profile.provider_base_url,
            model=profile.provider_model,
            has_api_key=profile.provider_api_key is not None,
        )
    return schemas.ProfileOut(
        product_name=profile.product_name,
        audience=profile.audience,
        value_propositions=profile.value_propositions,
        features=[schemas.FeatureIn.model_validate(f) for f in profile.features],
        proof_points=profile.proof_points,
        tone=profile.tone,
        banned_words=profile.banned_words,
        links=[schemas.LinkIn.model_validate(link) for link in profile.links],
        postal_address=profile.postal_address,
        sender_name=profile.sender_name,
        provider=provider,
        updated_at=profile.updated_at,
    )


@dataclass(frozen=True)
class Context:
    """Everything generation needs, read from the database and detached from it."""

    tenant_id: uuid.UUID
    facts: ProductFacts
    provider: ProviderConfig | None


def facts_of(profile: ContentProfile) -> ProductFacts:
    return ProductFacts(
        product_name=profile.product_name,
        audience=profile.audience,
        value_propositions=tuple(profile.value_propositions),
        features=tuple(Feature(f["name"], f["does"]) for f in profile.features),
        proof_points=tuple(profile.proof_points),
        tone=profile.tone,
        banned_words=tuple(profile.banned_words),
        links=tuple(Link(x["title"], x["url"], x.get("kind", "internal")) for x in profile.links),
        postal_address=profile.postal_address,
        sender_name=profile.sender_name,
    )


def load_context(session: Session, tenant_id: uuid.UUID, box: SecretBox) -> Context:
    profile = profile_or_409(session, tenant_id)
    provider = None
    if profile.provider_base_url and profile.provider_model:
        api_key = None
        if profile.provider_api_key is not None:
            try:
                api_key = box.open(profile.provider_api_key)
            except InvalidToken as exc:
                raise ProblemError(
                    409,
                    "content-provider-key-unreadable",
                    "Provider key unreadable",
                    "The provider's API key was sealed with another secret key: set it again",
                ) from exc
        provider = ProviderConfig(
            base_url=profile.provider_base_url, model=profile.provider_model, api_key=api_key
        )
    return Context(tenant_id=tenant_id, facts=facts_of(profile), provider=provider)


# Generation (no database) ----------------------------------------------------------------------


@dataclass
class Generated:
    title: str
    body: dict[str, Any]
    provider: str
    model: str | None
    fallback_reason: str | None
    analysis: dict[str, Any] | None


def _analyse_blog(body: dict[str, Any]) -> dict[str, Any]:
    return analysis.analyse(
        title=body["title"],
        slug=body["slug"],
        meta_description=body["meta_description"],
        keyphrase=body["keyphrase"],
        markdown=body["markdown"],
    ).as_dict()


def _outline(markdown: str) -> list[dict[str, object]]:
    return [{"level": len(m.group(1)), "heading": m.group(2)} for m in _HEADING.finditer(markdown)]


def blog_body_from_markdown(
    facts: ProductFacts,
    *,
    title: str,
    slug: str,
    meta_description: str,
    keyphrase: str,
    markdown: str,
    call_to_action: str | None = None,
) -> dict[str, Any]:
    """A blog body (the same shape the offline writer gives) from edited or provider Markdown."""
    if not markdown.lstrip().startswith("# "):
        markdown = f"# {title}\n\n{markdown.lstrip()}"
    links = []
    for text, url in _LINK.findall(markdown):
        kind = next((link.kind for link in facts.links if link.url == url), "external")
        links.append({"kind": kind, "title": text, "url": url})
    return {
        "title": title,
        "slug": slug,
        "meta_description": meta_description,
        "keyphrase": keyphrase,
        "outline": _outline(markdown),
        "markdown": markdown,
        "html": render_html(markdown),
        "call_to_action": call_to_action or "",
        "links": links,
    }


def _blog_validator(facts: ProductFacts, target_words: int) -> Any:
    def validate(data: dict[str, Any]) -> str | None:
        for key in ("title", "meta_description", "markdown"):
            if not isinstance(data.get(key), str) or not data[key].strip():
                return f"'{key}' must be a non-empty string"
        if len(data["title"]) > 200:
            return "the title is over 200 characters"
        if len(data["meta_description"]) > 300:
            return "the meta description is over 300 characters"
        if "\x00" in data["markdown"] or len(data["markdown"]) > 100_000:
            return "the markdown is over 100,000 characters or holds NUL"
        n_words = len(analysis.words(re.sub(r"^#.*$", "", data["markdown"], flags=re.MULTILINE)))
        if n_words < 800:
            return f"the post has {n_words} words; write 800–2000 (about {target_words})"
        if n_words > 2000:
            return f"the post has {n_words} words; stay under 2000"
        if len(_HEADING.findall(data["markdown"])) < 3:
            return "use at least three ## or ### subheadings"
        banned = contains_banned(
            " ".join([data["title"], data["meta_description"], data["markdown"]]),
            facts.banned_words,
        )
        if banned is not None:
            return f"it uses the banned word '{banned}'"
        return None

    return validate


def _ask(
    context: Context,
    choice: schemas.ProviderChoice,
    messages: Callable[[], list[dict[str, str]]],
    validate: Callable[[dict[str, Any]], str | None],
) -> tuple[Completion | None, str | None]:
    """The tenant's provider's accepted answer, or None and why the offline writer takes over
    (None, None when no provider is configured or the request asked for the offline writer)."""
    if context.provider is None or choice != "auto":
        return None, None
    try:
        return complete_json(context.provider, messages(), validate), None
    except ProviderFailed as exc:
        return None, exc.reason


def compose_blog(context: Context, body: schemas.BlogIn) -> Generated:
    facts = context.facts
    completion, fallback_reason = _ask(
        context,
        body.provider,
        lambda: prompts.blog_messages(facts, body.topic, body.keyphrase, body.target_words),
        _blog_validator(facts, body.target_words),
    )
    if completion is not None:
        data = completion.data
        title = data["title"].strip()
        slug_source = data.get("slug") if isinstance(data.get("slug"), str) else title
        post_body = blog_body_from_markdown(
            facts,
            title=title,
            slug=slugify(slug_source or title),
            meta_description=data["meta_description"].strip(),
            keyphrase=body.keyphrase,
            markdown=data["markdown"],
        )
        return Generated(
            title=title,
            body=post_body,
            provider=OPENAI_COMPATIBLE,
            model=completion.model,
            fallback_reason=None,
            analysis=_analyse_blog(post_body),
        )
    post: BlogPost = write_blog(
        facts,
        topic=body.topic,
        keyphrase=body.keyphrase,
        target_words=body.target_words,
        seed=body.seed,
    )
    offline_body = post.as_dict()
    return Generated(
        title=post.title,
        body=offline_body,
        provider=OFFLINE,
        model=None,
        fallback_reason=fallback_reason,
        analysis=_analyse_blog(offline_body),
    )


def compose_social(context: Context, body: schemas.SocialIn) -> list[tuple[str, Generated]]:
    """One post (or thread) per platform, each validated against its platform's limit."""
    facts = context.facts
    link = body.link or (facts.cta_link().url if facts.cta_link() else None)  # type: ignore[union-attr]
    out: list[tuple[str, Generated]] = []
    for platform in body.platforms:
        spec = social.PLATFORMS[platform]
        completion, fallback_reason = _ask(
            context,
            body.provider,
            partial(prompts.social_messages, facts, spec, body.topic, body.keyphrase, link),
            social.validator(spec, facts.banned_words, body.thread),
        )
        post: dict[str, Any] | None = None
        model = None
        if completion is not None:
            post = social.finish(spec, completion.data["text"], body.thread)
            model = completion.model
        if post is None:
            text = social.write_post(
                facts, spec, topic=body.topic, keyphrase=body.keyphrase, link=link, seed=body.seed
            )
            post = social.finish(spec, text, body.thread)
        out.append(
            (
                platform,
                Generated(
                    title=_first_line(post["text"]),
                    body=post,
                    provider=OFFLINE if model is None else OPENAI_COMPATIBLE,
                    model=model,
                    fallback_reason=fallback_reason,
                    analysis=None,
                ),
            )
        )
    return out


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else "(empty)"
    return line if len(line) <= 120 else line[:119].rstrip() + "…"


# Stored items ----------------------------------------------------------------------------------


def store_item(
    session: Session,
    tenant_id: uuid.UUID,
    *,
    kind: str,
    channel: str,
    generated: Generated,
    inputs: dict[str, Any],
    author: str,
    campaign: tuple[str, uuid.UUID] | None = None,
) -> tuple[ContentItem, ContentVersion]:
    item = ItemRepository(session, tenant_id).add(
        ContentItem(
            kind=kind,
            channel=channel,
            title=generated.title[:300],
            version=1,
            campaign_kind=campaign[0] if campaign else None,
            campaign_id=campaign[1] if campaign else None,
        )
    )
    session.flush()
    version = VersionRepository(session, tenant_id).add(
        ContentVersion(
            item_id=item.id,
            version=1,
            body=generated.body,
            inputs=inputs,
            provider=generated.provider,
            model=generated.model,
            fallback_reason=generated.fallback_reason,
            analysis=generated.analysis,
            author=author,
        )
    )
    session.flush()
    return item, version


def current_version(session: Session, item: ContentItem) -> ContentVersion:
    version = VersionRepository(session, item.tenant_id).of(item.id, item.version)
    if version is None:  # written together with the item; absent only if the row was tampered
        raise ProblemError(409, "content-version-missing", "Version missing", str(item.id))
    return version


def version_out(version: ContentVersion) -> schemas.VersionOut:
    return schemas.VersionOut.model_validate(version, from_attributes=True)


def item_out(item: ContentItem, version: ContentVersion) -> schemas.ItemOut:
    return schemas.ItemOut(
        id=item.id,
        kind=item.kind,
        channel=item.channel,
        title=item.title,
        status=item.status,
        version=item.version,
        scheduled_at=item.scheduled_at,
        created_at=item.created_at,
        updated_at=item.updated_at,
        campaign_kind=item.campaign_kind,
        campaign_id=item.campaign_id,
        current=version_out(version),
    )


def item_summary(item: ContentItem) -> schemas.ItemSummary:
    return schemas.ItemSummary.model_validate(item, from_attributes=True)


def get_item(session: Session, tenant_id: uuid.UUID, item_id: uuid.UUID) -> schemas.ItemOut:
    item = ItemRepository(session, tenant_id).get_or_404(item_id)
    return item_out(item, current_version(session, item))


def edit_item(
    session: Session,
    tenant_id: uuid.UUID,
    item_id: uuid.UUID,
    edit: schemas.ItemEdit,
    author: str,
) -> schemas.ItemOut:
    """A new version with the edited fields merged in; a blog post is analysed again."""
    item = ItemRepository(session, tenant_id).get_or_404(item_id)
    previous = current_version(session, item)
    changes = edit.model_dump(exclude_none=True)
    if not changes:
        raise ProblemError(422, "validation-error", "Invalid input", "Nothing to change")
    body = dict(previous.body)
    result_analysis: dict[str, Any] | None = None
    if item.kind == "blog":
        body = _edit_blog(session, tenant_id, item, body, changes)
        result_analysis = _analyse_blog(body)
    elif item.kind in ("newsletter", "email"):
        body = _edit_letter(item, body, changes)
    else:
        body = _edit_post(item, body, changes)
    item.version += 1
    version = VersionRepository(session, tenant_id).add(
        ContentVersion(
            item_id=item.id,
            version=item.version,
            body=body,
            inputs={"edited_from": previous.version, "fields": sorted(changes)},
            provider="edit",
            model=None,
            fallback_reason=None,
            analysis=result_analysis,
            author=author,
        )
    )
    item.updated_at = utcnow()
    session.flush()
    return item_out(item, version)


def _refuse_fields(item: ContentItem, changes: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(changes) - allowed)
    if unknown:
        noun = item.kind if item.kind in ("newsletter", "email") else f"{item.kind} item"
        raise ProblemError(
            422,
            "validation-error",
            "Invalid input",
            f"A {noun} has no field(s) {', '.join(unknown)}",
        )


def _edit_blog(
    session: Session,
    tenant_id: uuid.UUID,
    item: ContentItem,
    body: dict[str, Any],
    changes: dict[str, Any],
) -> dict[str, Any]:
    """A blog post's new body, rebuilt from its edited Markdown and fields (title kept in the
    Markdown's first heading); the item takes the new title."""
    if "text" in changes:
        raise ProblemError(
            422, "validation-error", "Invalid input", "A blog post is edited as markdown"
        )
    merged = {
        k: changes.get(k, body.get(k, ""))
        for k in ("title", "slug", "meta_description", "keyphrase", "markdown")
    }
    markdown = merged["markdown"]
    if "title" in changes and markdown.lstrip().startswith("# "):
        markdown = re.sub(r"^\s*# .*$", f"# {merged['title']}", markdown, count=1, flags=re.M)
    context_facts = facts_of(profile_or_409(session, tenant_id))
    new_body = blog_body_from_markdown(
        context_facts,
        title=merged["title"],
        slug=merged["slug"] or slugify(merged["title"]),
        meta_description=merged["meta_description"],
        keyphrase=merged["keyphrase"],
        markdown=markdown,
        call_to_action=body.get("call_to_action"),
    )
    item.title = merged["title"][:300]
    return new_body


def _edit_letter(
    item: ContentItem, body: dict[str, Any], changes: dict[str, Any]
) -> dict[str, Any]:
    """A newsletter's or email's subject, preheader and intro (``text``), merge fields checked."""
    _refuse_fields(item, changes, {"subject", "preheader", "text", "title"})
    for field, target in (("subject", "subject"), ("preheader", "preheader"), ("text", "intro")):
        if field in changes:
            _check_merge_fields(changes[field], field)
            body[target] = changes[field]
    if "title" in changes or "subject" in changes:
        item.title = changes.get("title") or changes["subject"]
    return body


def _edit_post(item: ContentItem, body: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """A social post's text, checked against its platform's limit (never cut to fit)."""
    _refuse_fields(item, changes, {"text", "title"})
    if "text" in changes:
        if item.kind == "social":
            spec = social.PLATFORMS[item.channel]
            thread = bool(body.get("thread")) and spec.threads
            # An edit is never cut to fit: over the limit (outside a thread) is refused.
            problem = None if thread else social.check(spec, changes["text"])
            body = social.finish(spec, changes["text"], thread)
            problem = problem or social.check_all(spec, body)
            if problem:
                raise ProblemError(422, "validation-error", "Invalid input", problem)
        else:
            body["text"] = changes["text"]
    if "title" in changes:
        item.title = changes["title"]
    return body


def versions(
    session: Session, tenant_id: uuid.UUID, item_id: uuid.UUID
) -> list[schemas.VersionOut]:
    ItemRepository(session, tenant_id).get_or_404(item_id)
    return [version_out(v) for v in VersionRepository(session, tenant_id).history(item_id)]


# Calendar --------------------------------------------------------------------------------------

MAX_CALENDAR_DAYS = 366


def schedule(
    session: Session, tenant_id: uuid.UUID, content_id: uuid.UUID, at: datetime, actor: str
) -> ContentItem:
    """Schedule (or reschedule) an item; a cancelled or already due item may be scheduled again."""
    if at.tzinfo is None:
        raise InvalidInput(
            "The time needs a UTC offset", [field_error(["at"], "no timezone offset")]
        )
    if at <= utcnow():
        raise InvalidInput("Schedule in the future", [field_error(["at"], "is in the past")])
    if at - utcnow() > timedelta(days=5 * 366):
        raise InvalidInput(
            "Schedule at most five years ahead", [field_error(["at"], "too far ahead")]
        )
    item = ItemRepository(session, tenant_id).get_or_404(content_id)
    previous = item.scheduled_at
    item.status = "scheduled"
    item.scheduled_at = at.astimezone(UTC)
    item.due_at = None
    item.updated_at = utcnow()
    audit(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action="content.reschedule" if previous else "content.schedule",
        target_type="content_item",
        target_id=item.id,
        details={
            "from": previous.isoformat() if previous else None,
            "to": item.scheduled_at.isoformat(),
        },
    )
    session.flush()
    return item


def cancel(
    session: Session, tenant_id: uuid.UUID, content_id: uuid.UUID, actor: str
) -> ContentItem:
    item = ItemRepository(session, tenant_id).get_or_404(content_id)
    if item.status not in ("scheduled", "due"):
        raise Conflict(f"Content item {content_id} is {item.status}, not scheduled")
    item.status = "cancelled"
    item.updated_at = utcnow()
    audit(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action="content.cancel",
        target_type="content_item",
        target_id=item.id,
    )
    session.flush()
    return item


def calendar_entry(item: ContentItem) -> schemas.CalendarEntry:
    return schemas.CalendarEntry.model_validate(item, from_attributes=True)


def calendar(
    session: Session,
    tenant_id: uuid.UUID,
    start: datetime,
    end: datetime,
    channel: str | None = None,
    include_cancelled: bool = False,
) -> list[ContentItem]:
    if start.tzinfo is None or end.tzinfo is None:
        raise InvalidInput("Times need a UTC offset", [field_error(["from"], "no timezone offset")])
    if end <= start:
        raise InvalidInput("'to' must be after 'from'", [field_error(["to"], "not after from")])
    lowest, highest = datetime(1971, 1, 1, tzinfo=UTC), datetime(9990, 1, 1, tzinfo=UTC)
    if not (lowest <= start <= highest and lowest <= end <= highest):
        raise InvalidInput(
            "Times must lie between 1971 and 9990", [field_error(["from"], "out of range")]
        )
    if end - start > timedelta(days=MAX_CALENDAR_DAYS):
        raise InvalidInput(
            f"The range may span at most {MAX_CALENDAR_DAYS} days",
            [field_error(["to"], "range too long")],
        )
    repo = ItemRepository(session, tenant_id)
    stmt = repo.filtered(channel=channel, scheduled_from=start, scheduled_to=end)
    if not include_cancelled:
        stmt = stmt.where(ContentItem.status != "cancelled")
    return list(repo.all(stmt.order_by(ContentItem.scheduled_at, ContentItem.id)))


def to_icalendar(items: list[ContentItem], tenant_id: uuid.UUID) -> bytes:
    """An iCalendar (RFC 5545) feed: one event per scheduled item, a stable UID per item."""
    import icalendar

    cal = icalendar.Calendar()
    cal.add("prodid", "-//AetherCrown//Content calendar//EN")
    cal.add("version", "2.0")
    cal.add("x-wr-calname", "Content calendar")
    now = utcnow()
    for item in items:
        if item.scheduled_at is None:
            continue
        event = icalendar.Event()
        event.add("uid", f"{item.id}@{tenant_id}.aethercrown")
        event.add("dtstamp", now)
        event.add("dtstart", item.scheduled_at)
        event.add("dtend", item.scheduled_at + timedelta(minutes=30))
        event.add("summary", f"[{item.channel}] {item.title}")
        event.add("categories", [item.kind])
        event.add("status", "CANCELLED" if item.status == "cancelled" else "CONFIRMED")
        cal.add_component(event)
    return bytes(cal.to_ical())


def mark_due(session: Session, tenant_id: uuid.UUID) -> dict[str, Any]:
    """Scheduled items whose time has come become due, each announced by a signed
    ``content.due`` webhook stored in the outbox in the same unit of work."""
    now = utcnow()
    due = ItemRepository(session, tenant_id).due(now)
    webhooks = 0
    for item in due:
        item.status = "due"
        item.due_at = now
        version = current_version(session, item)
        payload = {
            "content_id": str(item.id),
            "kind": item.kind,
            "channel": item.channel,
            "title": item.title,
            "version": item.version,
            "scheduled_at": item.scheduled_at.isoformat() if item.scheduled_at else None,
            "body": version.body,
        }
        if enqueue_webhook(session, tenant_id, "content.due", payload) is not None:
            webhooks += 1
    session.flush()
    return {"due": len(due), "webhooks": webhooks}


# Metrics ---------------------------------------------------------------------------------------


def track(session: Session, tenant_id: uuid.UUID, body: schemas.TrackIn) -> schemas.TrackOut:
    """Record views, clicks and conversions once per event id; nothing is written when any
    event names an unknown item."""
    ids = {e.content_id for e in body.events}
    known = items_by_id(session, tenant_id, ids)
    errors = [
        field_error(["events", i, "content_id"], "no such content item")
        for i, e in enumerate(body.events)
        if e.content_id not in known
    ]
    if errors:
        raise InvalidInput("Some events name unknown content items", errors[:100])
    now = utcnow()
    seen: set[str] = set()
    rows = []
    for event in body.events:
        if event.event_id in seen:
            continue
        seen.add(event.event_id)
        occurred = event.occurred_at or now
        if occurred.tzinfo is None:
            raise InvalidInput(
                "occurred_at needs a UTC offset", [field_error(["occurred_at"], "no offset")]
            )
        # Aware comparisons never overflow, unlike converting year 1 or 9999 to UTC.
        if not now - timedelta(days=20 * 366) <= occurred <= now + timedelta(days=1):
            raise InvalidInput(
                "occurred_at must lie within the last 20 years and not in the future",
                [field_error(["occurred_at"], "out of range")],
            )
        rows.append(
            {
                "tenant_id": tenant_id,
                "item_id": event.content_id,
                "event_id": event.event_id,
                "kind": event.kind,
                "occurred_at": occurred.astimezone(UTC),
            }
        )
    recorded = insert_events(session, rows)
    return schemas.TrackOut(recorded=recorded, duplicates=len(body.events) - recorded)


def _performance(views: int, clicks: int, conversions: int) -> dict[str, Any]:
    return {
        "views": views,
        "clicks": clicks,
        "conversions": conversions,
        "ctr": stats.wilson(clicks, views).as_dict(),
        "conversion_rate": stats.wilson(conversions, clicks).as_dict(),
    }


def metrics(
    session: Session,
    tenant_id: uuid.UUID,
    start: datetime | None = None,
    end: datetime | None = None,
    content_id: uuid.UUID | None = None,
) -> schemas.MetricsOut:
    if content_id is not None:
        ItemRepository(session, tenant_id).get_or_404(content_id)
    rows = MetricsRepository(session, tenant_id).counts(start, end, content_id)
    per_item: dict[uuid.UUID, dict[str, Any]] = {}
    per_channel: dict[str, dict[str, int]] = {}
    totals = {"view": 0, "click": 0, "conversion": 0}
    for item_id, title, channel, kind, count in rows:
        entry = per_item.setdefault(
            item_id, {"title": title, "channel": channel, "view": 0, "click": 0, "conversion": 0}
        )
        entry[kind] += count
        per_channel.setdefault(channel, {"view": 0, "click": 0, "conversion": 0})[kind] += count
        totals[kind] += count
    repo = ItemRepository(session, tenant_id)
    by_kind = repo.counts_by_kind() if content_id is None else {}
    by_item = sorted(per_item.items(), key=lambda kv: (-kv[1]["view"], str(kv[0])))[:100]
    return schemas.MetricsOut(
        start=start,
        end=end,
        items_generated=sum(by_kind.values()),
        by_kind=by_kind,
        totals=schemas.Performance.model_validate(
            _performance(totals["view"], totals["click"], totals["conversion"])
        ),
        by_channel=[
            schemas.ChannelPerformance.model_validate(
                {"channel": channel} | _performance(c["view"], c["click"], c["conversion"])
            )
            for channel, c in sorted(per_channel.items())
        ],
        by_item=[
            schemas.ItemPerformance.model_validate(
                {"content_id": item_id, "title": e["title"], "channel": e["channel"]}
                | _performance(e["view"], e["click"], e["conversion"])
            )
            for item_id, e in by_item
        ],
    )


# Headline tests (through the experiments engine) -----------------------------------------------


def start_headline_test(
    session: Session,
    tenant_id: uuid.UUID,
    content_id: uuid.UUID,
    body: schemas.HeadlineTestIn,
    actor: str,
) -> schemas.HeadlineTestOut:
    """An A/B test of the experiments engine whose variants are the current title (control) and
    the alternatives; impressions and clicks go to /content/ab-test/{id}/track."""
    item = ItemRepository(session, tenant_id).get_or_404(content_id)
    if item.headline_experiment_id is not None:
        raise Conflict(f"Content item {content_id} already has a headline test")
    headlines = [item.title, *body.headlines]
    if len({h.casefold() for h in headlines}) != len(headlines):
        raise InvalidInput(
            "Headlines must differ from each other and from the current title",
            [field_error(["headlines"], "duplicate headline")],
        )

    create = experiment_schemas.ExperimentCreate(
        name=f"Headline: {item.title}"[:200],
        hypothesis="A different headline draws more clicks",
        variants=[
            experiment_schemas.VariantIn(key=f"h{i}", name=headline[:200])
            for i, headline in enumerate(headlines)
        ],
        metrics=[experiment_schemas.MetricIn(key="click", name="Click", kind="binomial")],
        engine=body.engine,
    )
    experiment, _ = experiments.create(session, tenant_id, create, actor)
    item.headline_experiment_id = experiment.id
    session.flush()
    return schemas.HeadlineTestOut(
        content_id=item.id,
        experiment_id=experiment.id,
        variants=[
            {"key": v["key"], "headline": headlines[i]} for i, v in enumerate(experiment.variants)
        ],
        title=item.title,
    )


def headline_results(
    session: Session, tenant_id: uuid.UUID, content_id: uuid.UUID, actor: str
) -> schemas.HeadlineTestOut:
    """The test's verdict; a winner other than the current title is written back to the item
    as a new version (once)."""

    item = ItemRepository(session, tenant_id).get_or_404(content_id)
    if item.headline_experiment_id is None:
        raise NotFound("Headline test of content item", content_id)
    experiment = experiments.get(session, tenant_id, item.headline_experiment_id)
    result = experiments.results(session, tenant_id, experiment)
    names = {v["key"]: v.get("name") or v["key"] for v in experiment.variants}
    applied = False
    winner = names.get(result.winner) if result.verdict == "winner" and result.winner else None
    if winner is None and result.winner in names.values():
        winner = result.winner
    if winner is not None and winner != item.title:
        edit_item(session, tenant_id, content_id, schemas.ItemEdit(title=winner), actor)
        applied = True
    return schemas.HeadlineTestOut(
        content_id=item.id,
        experiment_id=experiment.id,
        variants=[{"key": k, "headline": n} for k, n in names.items()],
        verdict=result.verdict,
        winner=winner,
        applied=applied,
        title=item.title,
    )


# Newsletters and email campaigns ---------------------------------------------------------------


def _check_merge_fields(template: str, field: str) -> None:
    try:
        mail.check_fields(template)
    except mail.MergeError as exc:
        raise InvalidInput(str(exc), [field_error([field], str(exc), "merge_field")]) from exc


def compose_newsletter(context: Context, body: schemas.NewsletterIn) -> Generated:
    facts = context.facts
    completion, fallback_reason = _ask(
        context,
        body.provider,
        lambda: prompts.newsletter_messages(facts, body.topic, body.sections, mail.KNOWN_FIELDS),
        mail.copy_validator(facts, sections=body.sections),
    )
    if completion is not None:
        letter = mail.letter_from_copy(facts, completion.data)
        return Generated(letter["subject"], letter, OPENAI_COMPATIBLE, completion.model, None, None)
    letter = mail.write_newsletter(facts, topic=body.topic, sections=body.sections, seed=body.seed)
    return Generated(letter["subject"], letter, OFFLINE, None, fallback_reason, None)


def compose_email(context: Context, body: schemas.EmailIn) -> Generated:
    facts = context.facts
    completion, fallback_reason = _ask(
        context,
        body.provider,
        lambda: prompts.email_messages(facts, body.topic, mail.KNOWN_FIELDS),
        mail.copy_validator(facts, sections=None),
    )
    if completion is not None:
        message = mail.letter_from_copy(facts, completion.data)
        return Generated(
            message["subject"], message, OPENAI_COMPATIBLE, completion.model, None, None
        )
    message = mail.write_email(facts, topic=body.topic, seed=body.seed)
    return Generated(message["subject"], message, OFFLINE, None, fallback_reason, None)


def render_email(
    session: Session, tenant_id: uuid.UUID, content_id: uuid.UUID, body: schemas.RenderIn
) -> schemas.RenderOut:
    """The message for one customer, with its merge fields filled (422 for an unknown field, or
    a missing value without a fallback), unsubscribe link, postal address and headers."""
    item = ItemRepository(session, tenant_id).get_or_404(content_id)
    if item.kind not in ("newsletter", "email"):
        raise InvalidInput(
            f"Only newsletters and emails are rendered; this item is a {item.kind}",
            [field_error(["content_id"], "not an email")],
        )
    if (body.customer is None) == (body.data is None):
        raise InvalidInput(
            "Give either customer or data", [field_error(["customer"], "give one of the two")]
        )
    facts = facts_of(profile_or_409(session, tenant_id))
    unsubscribe = facts.links_of("unsubscribe")
    if not unsubscribe or not facts.postal_address:
        raise ProblemError(
            409,
            "content-email-compliance",
            "Unsubscribe link or postal address missing",
            "Add a link of kind 'unsubscribe' and a postal_address to the content profile: "
            "every commercial email must carry both (CAN-SPAM)",
        )
    if body.customer is not None:
        try:
            customer = data.get_row_by_external(session, tenant_id, "customers", body.customer)
        except NotFound:
            try:
                customer = data.get_row(session, tenant_id, "customers", uuid.UUID(body.customer))
            except ValueError as exc:
                raise NotFound("Customer", body.customer) from exc
    else:
        customer = dict(body.data or {})
    try:
        rendered = mail.render(
            current_version(session, item).body,
            customer,
            unsubscribe_base=unsubscribe[0].url,
            postal_address=facts.postal_address,
            from_name=facts.sender_name or facts.product_name,
            from_address=body.from_address,
        )
    except mail.MergeError as exc:
        raise InvalidInput(str(exc), [field_error(["merge_field", exc.field], str(exc))]) from exc
    return schemas.RenderOut(**vars(rendered))


def recent_items(session: Session, tenant_id: uuid.UUID, limit: int) -> list[schemas.ItemOut]:
    """The latest items, newest first, each with its current version and its analysis (the
    console's list with the SEO table)."""
    repo = ItemRepository(session, tenant_id)
    items = repo.newest(ContentItem.created_at, limit, repo.filtered())
    return [item_out(item, current_version(session, item)) for item in items]


# Campaign emails -------------------------------------------------------------------------------
#
# A churn or upsell campaign's email, written for its customer. In three steps, like every
# generation: ``campaign_briefs_to_write`` reads the campaigns (the caller then ends that unit),
# ``compose_campaign_email`` writes each email with no transaction open, ``store_campaign_email``
# stores it linked to its campaign in a new unit.


@dataclass(frozen=True)
class CampaignWork:
    """What the read step found: the briefs to write, and what it did not write and why."""

    briefs: list[campaign_mail.CampaignBrief]
    already_written: int
    not_found: list[uuid.UUID]


def _brief(data: dict[str, Any]) -> campaign_mail.CampaignBrief:
    return campaign_mail.CampaignBrief(
        campaign=data["campaign"],
        campaign_id=data["campaign_id"],
        customer=data["customer"],
        name=data["name"],
        plan=data.get("plan"),
        risk_level=data.get("risk_level"),
        discount_percent=int(data.get("discount_percent") or 0),
        actions=tuple(data.get("actions") or ()),
        factors=tuple(data.get("factors") or ()),
        recommended_plan=data.get("recommended_plan"),
        monthly_price=data.get("monthly_price"),
        currency=data.get("currency"),
        reasons=tuple(data.get("reasons") or ()),
    )


def campaign_briefs_to_write(
    session: Session,
    tenant_id: uuid.UUID,
    body: schemas.CampaignEmailsIn,
    now: datetime | None = None,
) -> CampaignWork:
    """The campaigns named (or the latest of the last ``since_days`` days) that have no email
    yet, each with its customer's brief from the churn or metering domain."""
    now = now or utcnow()
    if body.campaign_ids is not None:
        wanted = list(dict.fromkeys(body.campaign_ids))
    elif body.campaign == "churn":
        wanted = churn.email_campaigns(
            session, tenant_id, now - timedelta(days=body.since_days), body.limit * 4
        )
    else:
        wanted = metering.upsell_email_campaigns(
            session, tenant_id, now - timedelta(days=body.since_days), body.limit * 4
        )
    written = ItemRepository(session, tenant_id).of_campaigns(body.campaign, wanted)
    unwritten = [cid for cid in wanted if cid not in written][: body.limit]
    if body.campaign == "churn":
        found = churn.campaign_briefs(session, tenant_id, unwritten, now)
    else:
        found = metering.upsell_briefs(session, tenant_id, unwritten)
    by_id = {uuid.UUID(b["campaign_id"]): b for b in found}
    return CampaignWork(
        briefs=[_brief(by_id[cid]) for cid in unwritten if cid in by_id],
        already_written=len(written),
        not_found=[cid for cid in unwritten if cid not in by_id] if body.campaign_ids else [],
    )


def compose_campaign_email(
    context: Context,
    brief: campaign_mail.CampaignBrief,
    choice: schemas.ProviderChoice = "auto",
    seed: int = 0,
) -> Generated:
    """One campaign's email for its customer: the tenant's provider when it has one (its copy
    must state the offer), else or on failure the offline writer."""
    facts = context.facts
    reasons = (
        campaign_mail.risk_reasons(brief)
        if brief.campaign == "churn"
        else campaign_mail.usage_reasons(brief)
    )
    completion, fallback_reason = _ask(
        context,
        choice,
        lambda: prompts.campaign_email_messages(
            facts, brief.as_dict(), campaign_mail.offer(brief), reasons
        ),
        campaign_mail.campaign_validator(facts, brief),
    )
    if completion is not None:
        message = mail.letter_from_copy(facts, completion.data)
        name = campaign_mail.first_name(brief)
        if name:
            message["greeting"] = f"Hi {name},"
        return Generated(
            message["subject"], message, OPENAI_COMPATIBLE, completion.model, None, None
        )
    message = campaign_mail.write_campaign_email(facts, brief, seed)
    return Generated(message["subject"], message, OFFLINE, None, fallback_reason, None)


def store_campaign_email(
    session: Session,
    tenant_id: uuid.UUID,
    brief: campaign_mail.CampaignBrief,
    generated: Generated,
    author: str,
) -> tuple[ContentItem, ContentVersion] | None:
    """Store the email linked to its campaign; None when the campaign got its email meanwhile
    (another writer's, kept: one email per campaign)."""
    campaign_id = uuid.UUID(brief.campaign_id)
    repo = ItemRepository(session, tenant_id)
    if repo.of_campaigns(brief.campaign, [campaign_id]):
        return None
    try:
        with session.begin_nested():
            item, version = store_item(
                session,
                tenant_id,
                kind="email",
                channel="email",
                generated=generated,
                inputs={"campaign": brief.as_dict()},
                author=author,
                campaign=(brief.campaign, campaign_id),
            )
    except IntegrityError:
        return None  # a concurrent writer stored this campaign's email first
    audit(
        session,
        tenant_id=tenant_id,
        actor=author,
        action="content.campaign_email.written",
        target_type="content_item",
        target_id=item.id,
        details={"campaign": brief.campaign, "campaign_id": brief.campaign_id},
    )
    return item, version


def campaign_emails(
    session: Session, tenant_id: uuid.UUID, kind: str, campaign_ids: list[uuid.UUID]
) -> dict[uuid.UUID, ContentItem]:
    """The email items of these campaigns, by campaign id (for the console's campaign page)."""
    return ItemRepository(session, tenant_id).of_campaigns(kind, campaign_ids)


def compose_campaign_emails(
    context: Context, work: CampaignWork, choice: schemas.ProviderChoice, seed: int
) -> list[Generated]:
    """Every brief's email, in order (no database: may call the provider for each)."""
    return [compose_campaign_email(context, brief, choice, seed) for brief in work.briefs]


def store_campaign_emails(
    session: Session,
    tenant_id: uuid.UUID,
    work: CampaignWork,
    generated: list[Generated],
    author: str,
) -> schemas.CampaignEmailsOut:
    written = []
    already = work.already_written
    for brief, email in zip(work.briefs, generated, strict=True):
        stored = store_campaign_email(session, tenant_id, brief, email, author)
        if stored is None:
            already += 1
        else:
            written.append(item_out(*stored))
    return schemas.CampaignEmailsOut(
        written=written, already_written=already, not_found=work.not_found
    )
