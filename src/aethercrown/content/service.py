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
from dataclasses import dataclass
from typing import Any

from cryptography.fernet import InvalidToken
from sqlalchemy.orm import Session

from aethercrown.clock import utcnow
from aethercrown.content import analysis, prompts, schemas, social
from aethercrown.content.facts import Feature, Link, ProductFacts, contains_banned, slugify
from aethercrown.content.models import ContentItem, ContentProfile, ContentVersion
from aethercrown.content.provider import ProviderConfig, ProviderFailed, complete_json
from aethercrown.content.repository import ItemRepository, ProfileRepository, VersionRepository
from aethercrown.content.writer import BlogPost, render_html, write_blog
from aethercrown.core.crypto import SecretBox
from aethercrown.core.errors import ProblemError

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


def compose_blog(context: Context, body: schemas.BlogIn) -> Generated:
    facts = context.facts
    fallback_reason = None
    if context.provider is not None and body.provider == "auto":
        messages = prompts.blog_messages(facts, body.topic, body.keyphrase, body.target_words)
        try:
            completion = complete_json(
                context.provider, messages, _blog_validator(facts, body.target_words)
            )
        except ProviderFailed as exc:
            fallback_reason = exc.reason
        else:
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
        fallback_reason = None
        post: dict[str, Any] | None = None
        model = None
        if context.provider is not None and body.provider == "auto":
            messages = prompts.social_messages(facts, spec, body.topic, body.keyphrase, link)
            try:
                completion = complete_json(
                    context.provider,
                    messages,
                    social.validator(spec, facts.banned_words, body.thread),
                )
            except ProviderFailed as exc:
                fallback_reason = exc.reason
            else:
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
) -> tuple[ContentItem, ContentVersion]:
    item = ItemRepository(session, tenant_id).add(
        ContentItem(kind=kind, channel=channel, title=generated.title[:300], version=1)
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
    return schemas.VersionOut(
        version=version.version,
        body=version.body,
        inputs=version.inputs,
        provider=version.provider,
        model=version.model,
        fallback_reason=version.fallback_reason,
        analysis=version.analysis,
        author=version.author,
        created_at=version.created_at,
    )


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
        current=version_out(version),
    )


def item_summary(item: ContentItem) -> schemas.ItemSummary:
    return schemas.ItemSummary(
        id=item.id,
        kind=item.kind,
        channel=item.channel,
        title=item.title,
        status=item.status,
        version=item.version,
        scheduled_at=item.scheduled_at,
        created_at=item.created_at,
    )


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
        body = blog_body_from_markdown(
            context_facts,
            title=merged["title"],
            slug=merged["slug"] or slugify(merged["title"]),
            meta_description=merged["meta_description"],
            keyphrase=merged["keyphrase"],
            markdown=markdown,
            call_to_action=body.get("call_to_action"),
        )
        result_analysis = _analyse_blog(body)
        item.title = merged["title"][:300]
    else:
        unknown = sorted(set(changes) - {"text", "title"})
        if unknown:
            raise ProblemError(
                422,
                "validation-error",
                "Invalid input",
                f"A {item.kind} item has no field(s) {', '.join(unknown)}",
            )
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


def versions(
    session: Session, tenant_id: uuid.UUID, item_id: uuid.UUID
) -> list[schemas.VersionOut]:
    ItemRepository(session, tenant_id).get_or_404(item_id)
    return [version_out(v) for v in VersionRepository(session, tenant_id).history(item_id)]
