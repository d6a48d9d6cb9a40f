"""``/api/v1/content``: the product profile, generation, stored items, the calendar, metrics.

Generation routes read the tenant's facts, end that transaction, call the provider with no
transaction open, then store the item in a new one (committed before the response)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, status
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from aethercrown.content import analysis, schemas, service
from aethercrown.content.models import ContentItem
from aethercrown.content.repository import ItemRepository
from aethercrown.core.auth import TenantReader, TenantWriter
from aethercrown.core.crypto import SecretBox, secret_box
from aethercrown.core.pagination import Pagination, paginate
from aethercrown.db.session import DbSession

router = APIRouter(prefix="/api/v1/content", tags=["content"])

Kind = Literal["blog", "social", "newsletter", "email"]
Channel = Literal[
    "blog", "x", "linkedin", "instagram", "threads", "bluesky", "mastodon", "facebook", "email"
]


def _box(request: Request) -> SecretBox:
    return secret_box(request.app.state.settings)


@router.put("/profile", response_model=schemas.ProfileOut)
def put_profile(
    request: Request, body: schemas.ProfileIn, principal: TenantWriter, session: DbSession
) -> schemas.ProfileOut:
    """Tell the platform about the product once; every generation reads it."""
    profile = service.save_profile(session, principal.tenant_id, body, _box(request))
    return service.profile_out(profile)


@router.get("/profile", response_model=schemas.ProfileOut)
def get_profile(principal: TenantReader, session: DbSession) -> schemas.ProfileOut:
    return service.profile_out(service.profile_or_409(session, principal.tenant_id))


def _context(session: Session, tenant_id: uuid.UUID, box: SecretBox) -> service.Context:
    context = service.load_context(session, tenant_id, box)
    # End the read transaction before any provider call (it may take seconds).
    session.commit()
    return context


@router.post("/generate/blog", status_code=status.HTTP_201_CREATED, response_model=schemas.ItemOut)
async def generate_blog(
    request: Request, body: schemas.BlogIn, principal: TenantWriter, session: DbSession
) -> schemas.ItemOut:
    """A blog post of 800–2,000 words with its SEO and readability analysis, stored as an item."""
    box = _box(request)
    context = await run_in_threadpool(_context, session, principal.tenant_id, box)
    generated = await run_in_threadpool(service.compose_blog, context, body)

    def store() -> schemas.ItemOut:
        item, version = service.store_item(
            session,
            principal.tenant_id,
            kind="blog",
            channel="blog",
            generated=generated,
            inputs=body.model_dump(),
            author=principal.actor,
        )
        return service.item_out(item, version)

    return await run_in_threadpool(store)


@router.post(
    "/generate/social", status_code=status.HTTP_201_CREATED, response_model=schemas.SocialOut
)
async def generate_social(
    request: Request, body: schemas.SocialIn, principal: TenantWriter, session: DbSession
) -> schemas.SocialOut:
    """One post per platform, each within the platform's limit by its own counting rules."""
    box = _box(request)
    context = await run_in_threadpool(_context, session, principal.tenant_id, box)
    posts = await run_in_threadpool(service.compose_social, context, body)

    def store() -> schemas.SocialOut:
        out = []
        for platform, generated in posts:
            item, version = service.store_item(
                session,
                principal.tenant_id,
                kind="social",
                channel=platform,
                generated=generated,
                inputs=body.model_dump() | {"platform": platform},
                author=principal.actor,
            )
            out.append(service.item_out(item, version))
        return schemas.SocialOut(items=out)

    return await run_in_threadpool(store)


@router.post("/analyze", response_model=dict[str, Any])
def analyze(body: schemas.AnalysisIn, principal: TenantReader) -> dict[str, Any]:
    """Yoast's SEO and readability checks over any post (nothing is stored)."""
    return analysis.analyse(
        title=body.title,
        slug=body.slug,
        meta_description=body.meta_description,
        keyphrase=body.keyphrase,
        markdown=body.markdown,
    ).as_dict()


@router.get("/items", response_model=schemas.ItemPage)
def list_items(
    principal: TenantReader,
    session: DbSession,
    page: Pagination,
    kind: Kind | None = None,
    channel: Channel | None = None,
    status_filter: Annotated[
        Literal["draft", "scheduled", "due", "cancelled"] | None, Query(alias="status")
    ] = None,
) -> schemas.ItemPage:
    repo = ItemRepository(session, principal.tenant_id)
    stmt = repo.filtered(kind=kind, channel=channel, status=status_filter)
    rows, cursor = paginate(session, stmt, ContentItem.id, page, parse=uuid.UUID, descending=True)
    return schemas.ItemPage(items=[service.item_summary(r) for r in rows], next_cursor=cursor)


@router.get("/items/{content_id}", response_model=schemas.ItemOut)
def get_item(content_id: uuid.UUID, principal: TenantReader, session: DbSession) -> schemas.ItemOut:
    return service.get_item(session, principal.tenant_id, content_id)


@router.patch("/items/{content_id}", response_model=schemas.ItemOut)
def edit_item(
    content_id: uuid.UUID, body: schemas.ItemEdit, principal: TenantWriter, session: DbSession
) -> schemas.ItemOut:
    """Edit an item: a new version holding the change (earlier versions are kept)."""
    return service.edit_item(session, principal.tenant_id, content_id, body, principal.actor)


@router.get("/items/{content_id}/versions", response_model=list[schemas.VersionOut])
def item_versions(
    content_id: uuid.UUID, principal: TenantReader, session: DbSession
) -> list[schemas.VersionOut]:
    return service.versions(session, principal.tenant_id, content_id)
