"""``aethercrown content …``: generate from the command line and print the SEO table."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from aethercrown.content import schemas, service
from aethercrown.content.models import ContentProfile
from aethercrown.content.repository import ProfileRepository
from aethercrown.core.commandline import fail, invalid_input, unit_of_work
from aethercrown.core.crypto import secret_box
from aethercrown.core.errors import ProblemError
from aethercrown.settings import get_settings
from aethercrown.tenants.service import resolve_tenant_ref

app = typer.Typer(no_args_is_help=True)
generate_app = typer.Typer(no_args_is_help=True, help="Generate content and store it.")
app.add_typer(generate_app, name="generate")

_STATUS_STYLE = {"good": "green", "ok": "yellow", "bad": "red"}


def seo_table(analysis: dict[str, object]) -> Table:
    table = Table(
        title=(
            f"SEO {analysis['seo_score']}/100 · readability {analysis['readability_score']}/100 · "
            f"{analysis['word_count']} words · Flesch {analysis['flesch_reading_ease']} "
            f"(grade {analysis['flesch_kincaid_grade']})"
        )
    )
    table.add_column("Check")
    table.add_column("Status")
    table.add_column("Value", justify="right")
    table.add_column("Fix")
    for check in [*analysis["seo"], *analysis["readability"]]:  # type: ignore[misc]
        style = _STATUS_STYLE[check["status"]]
        table.add_row(
            check["name"],
            f"[{style}]{check['status']}[/{style}]",
            str(check["value"]),
            check["fix"] or "",
        )
    return table


def _context_from_file(path: Path) -> service.Context:

    try:
        body = schemas.ProfileIn.model_validate_json(path.read_bytes())
    except OSError as exc:
        fail(f"cannot read {path}: {exc}", 2)
    except ValidationError as exc:
        fail(f"invalid profile: {exc}", 2)
    profile = ContentProfile(
        product_name=body.product_name,
        audience=body.audience,
        value_propositions=body.value_propositions,
        features=[f.model_dump() for f in body.features],
        proof_points=body.proof_points,
        tone=body.tone,
        banned_words=body.banned_words,
        links=[link.model_dump() for link in body.links],
        postal_address=body.postal_address,
        sender_name=body.sender_name,
    )
    return service.Context(
        tenant_id=uuid.UUID(int=0), facts=service.facts_of(profile), provider=None
    )


@generate_app.command("blog")
def generate_blog(
    topic: str = typer.Option(..., help="What the post is about"),
    keyphrase: str = typer.Option(..., help="The focus keyphrase"),
    tenant: str | None = typer.Option(None, help="Tenant slug or id (its product profile)"),
    profile: Path | None = typer.Option(
        None, help="A profile JSON file instead of a tenant (nothing is stored)"
    ),
    words: int = typer.Option(1000, help="Target length, 800–2000 words"),
    seed: int = typer.Option(0, help="Seed of the offline writer"),
    offline: bool = typer.Option(False, help="Use the offline writer even if a provider is set"),
    output: str = typer.Option("markdown", help="markdown | html | json"),
) -> None:
    """Write a blog post, store it (with --tenant) and print it with its SEO table."""
    try:
        body = schemas.BlogIn(
            topic=topic,
            keyphrase=keyphrase,
            target_words=words,
            seed=seed,
            provider="offline" if offline else "auto",
        )
    except ValidationError as exc:
        fail(f"invalid input: {exc}", 2)
    if output not in ("markdown", "html", "json"):
        fail("--output must be markdown, html or json", 2)
    if (tenant is None) == (profile is None):
        fail("give either --tenant or --profile", 2)
    settings = get_settings()
    stored_id = None
    if profile is not None:
        context = _context_from_file(profile)
        generated = service.compose_blog(context, body)
    else:
        assert tenant is not None
        try:
            with unit_of_work(settings) as session:
                tenant_id = resolve_tenant_ref(session, tenant).id
                if ProfileRepository(session, tenant_id).current() is None:
                    fail(f"tenant {tenant} has no content profile: PUT /api/v1/content/profile", 1)
                context = service.load_context(session, tenant_id, secret_box(settings))
        except ProblemError as exc:
            fail(exc.detail or exc.title, 1)
        # The provider is called with no transaction open; the item is stored in a new one.
        generated = service.compose_blog(context, body)
        with unit_of_work(settings) as session:
            item, _ = service.store_item(
                session,
                context.tenant_id,
                kind="blog",
                channel="blog",
                generated=generated,
                inputs=body.model_dump(),
                author="cli",
            )
            stored_id = item.id
    if output == "json":
        typer.echo(
            json.dumps(
                {
                    "id": str(stored_id) if stored_id else None,
                    "provider": generated.provider,
                    "fallback_reason": generated.fallback_reason,
                    "body": generated.body,
                    "analysis": generated.analysis,
                },
                indent=2,
            )
        )
        return
    typer.echo(generated.body["html"] if output == "html" else generated.body["markdown"])
    console = Console(width=160)
    assert generated.analysis is not None
    console.print(seo_table(generated.analysis))
    source = generated.provider + (
        f" (fell back: {generated.fallback_reason})" if generated.fallback_reason else ""
    )
    console.print(f"written by: {source}" + (f"; stored as {stored_id}" if stored_id else ""))


@app.command("campaign-emails")
def campaign_emails(
    campaign: str = typer.Argument(..., help="churn | upsell"),
    tenant: str = typer.Option(..., help="Tenant slug or id"),
    since_days: int = typer.Option(30, help="Campaigns opened in the last N days"),
    limit: int = typer.Option(50, help="At most this many emails (1–200)"),
    seed: int = typer.Option(0, help="Seed of the offline writer"),
    offline: bool = typer.Option(False, help="Use the offline writer even if a provider is set"),
) -> None:
    """Write the emails of the latest churn or upsell campaigns that have none yet, one per
    campaign and customer, and list them."""
    try:
        body = schemas.CampaignEmailsIn.model_validate(
            {
                "campaign": campaign,
                "since_days": since_days,
                "limit": limit,
                "seed": seed,
                "provider": "offline" if offline else "auto",
            }
        )
    except ValidationError as exc:
        fail(invalid_input(exc), 2)
    settings = get_settings()
    try:
        with unit_of_work(settings) as session:
            tenant_id = resolve_tenant_ref(session, tenant).id
            context = service.load_context(session, tenant_id, secret_box(settings))
            work = service.campaign_briefs_to_write(session, tenant_id, body)
    except ProblemError as exc:
        fail(exc.detail or exc.title, 1)
    # The provider is called with no transaction open; the emails are stored in a new one.
    generated = service.compose_campaign_emails(context, work, body.provider, body.seed)
    with unit_of_work(settings) as session:
        out = service.store_campaign_emails(session, tenant_id, work, generated, "cli")
    table = Table(title=f"{len(out.written)} {campaign} campaign emails written")
    for column in ("Customer", "Subject", "Written by", "Item"):
        table.add_column(column)
    for item in out.written:
        brief = item.current.inputs["campaign"]
        table.add_row(
            f"{brief['customer']} ({brief['name']})" if brief["name"] else brief["customer"],
            item.title,
            item.current.provider
            + (
                f" (fell back: {item.current.fallback_reason})"
                if item.current.fallback_reason
                else ""
            ),
            str(item.id),
        )
    console = Console(width=160)
    console.print(table)
    if out.already_written:
        console.print(f"{out.already_written} campaigns already had their email")
