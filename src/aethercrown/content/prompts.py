"""Chat prompts, built from one tenant's facts and the request alone (nothing is shared between
calls, so no tenant's facts can reach another's prompt)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING

from aethercrown.content.facts import ProductFacts

if TYPE_CHECKING:
    from aethercrown.content.social import PlatformSpec


def _facts_json(facts: ProductFacts) -> str:
    return json.dumps(
        {
            "product": facts.product_name,
            "audience": facts.audience,
            "value_propositions": list(facts.value_propositions),
            "features": [{"name": f.name, "does": f.does} for f in facts.features],
            "proof_points": list(facts.proof_points),
            "tone": facts.tone,
            "links": [{"title": x.title, "url": x.url, "kind": x.kind} for x in facts.links],
        },
        ensure_ascii=False,
    )


def _system(facts: ProductFacts) -> str:
    banned = ", ".join(facts.banned_words) or "none"
    return (
        "You write marketing copy for one software company. Use only the facts given; never "
        "invent statistics, customers or quotes. Write in a "
        f"{facts.tone} tone, in plain English, with short sentences (most under 20 words), "
        "active verbs and transition words. Never use these words: "
        f"{banned}. Answer with a single JSON object and nothing else."
    )


def blog_messages(
    facts: ProductFacts, topic: str, keyphrase: str, target_words: int
) -> list[dict[str, str]]:
    task = (
        f"Write a blog post about: {topic}\n"
        f"Focus keyphrase: {keyphrase}\n"
        f"Length: about {target_words} words of body text (800–2000).\n"
        "Structure: an introduction whose first paragraph uses the keyphrase; ## and ### "
        "subheadings, about half of them with the keyphrase; no section over 300 words; "
        "paragraphs under 150 words; one internal and one external link from the facts where "
        "given, as Markdown links; end with a call to action using the 'cta' link.\n"
        'Answer as JSON: {"title": "...", "meta_description": "120–156 characters with the '
        'keyphrase", "slug": "...", "markdown": "the post body in Markdown"}.\n'
        f"Facts: {_facts_json(facts)}"
    )
    return [{"role": "system", "content": _system(facts)}, {"role": "user", "content": task}]


def social_messages(
    facts: ProductFacts,
    spec: PlatformSpec,
    topic: str,
    keyphrase: str | None,
    link: str | None,
) -> list[dict[str, str]]:
    task = (
        f"Write one {spec.label} post about: {topic}\n"
        + (f"Keyphrase: {keyphrase}\n" if keyphrase else "")
        + (f"Link to include: {link}\n" if link and spec.links_clickable else "")
        + f"Limit: {spec.limit} {spec.unit}. Conventions: {spec.conventions}\n"
        + 'Answer as JSON: {"text": "the post, hashtags included"}.\n'
        + f"Facts: {_facts_json(facts)}"
    )
    return [{"role": "system", "content": _system(facts)}, {"role": "user", "content": task}]


def _merge_rules(fields: Iterable[str]) -> str:
    return (
        "You may personalise with merge fields written {{field|fallback}}, using only these "
        f"fields: {', '.join(sorted(fields))}; always give a fallback.\n"
    )


def newsletter_messages(
    facts: ProductFacts, topic: str, sections: int, fields: Iterable[str]
) -> list[dict[str, str]]:
    task = (
        f"Write an email newsletter about: {topic}\n"
        f"Exactly {sections} sections that alternate product news (a feature from the facts), "
        "a practical tip and a result from the proof points; each section has a short heading "
        "and 30–150 words of text.\n"
        "A subject under 70 characters; a preheader of 40–130 characters that adds to the "
        "subject; an intro of one or two sentences.\n"
        + _merge_rules(fields)
        + 'Answer as JSON: {"subject": "...", "preheader": "...", "intro": "...", '
        '"sections": [{"heading": "...", "text": "..."}]}.\n'
        f"Facts: {_facts_json(facts)}"
    )
    return [{"role": "system", "content": _system(facts)}, {"role": "user", "content": task}]


def email_messages(facts: ProductFacts, topic: str, fields: Iterable[str]) -> list[dict[str, str]]:
    task = (
        f"Write a one-message email campaign about: {topic}\n"
        "One idea, one proof point from the facts, one call to action (the platform adds the "
        "'cta' link as a button): an intro sentence, then one to three short paragraphs.\n"
        "A subject under 70 characters; a preheader of 40–130 characters.\n"
        + _merge_rules(fields)
        + 'Answer as JSON: {"subject": "...", "preheader": "...", "intro": "...", '
        '"paragraphs": ["...", "..."]}.\n'
        f"Facts: {_facts_json(facts)}"
    )
    return [{"role": "system", "content": _system(facts)}, {"role": "user", "content": task}]


def campaign_email_messages(
    facts: ProductFacts, brief: dict[str, object], offer: str | None, reasons: list[str]
) -> list[dict[str, str]]:
    """One customer's churn or upsell email: the brief is that customer's campaign alone."""
    if brief["campaign"] == "churn":
        purpose = (
            "a retention email to a customer who may be about to leave. Be warm and helpful, "
            "never guilt-tripping; say what we noticed only in the words given"
        )
    else:
        purpose = (
            "an upgrade email to a customer whose usage is outgrowing their plan. Be helpful, "
            "never pushy; describe their usage only in the words given"
        )
    customer = {"name": brief["name"], "plan": brief["plan"]}
    task = (
        f"Write {purpose}.\n"
        f"Customer: {json.dumps(customer, ensure_ascii=False)}\n"
        f"What we noticed: {json.dumps(reasons, ensure_ascii=False)}\n"
        f"The offer (state it exactly): {offer or 'none: suggest features that help them'}\n"
        "An intro sentence, then one to three short paragraphs; the platform adds the 'cta' "
        "link as a button and the greeting.\n"
        "A subject under 70 characters; a preheader of 40–130 characters.\n"
        'Answer as JSON: {"subject": "...", "preheader": "...", "intro": "...", '
        '"paragraphs": ["...", "..."]}.\n'
        f"Facts: {_facts_json(facts)}"
    )
    return [{"role": "system", "content": _system(facts)}, {"role": "user", "content": task}]
