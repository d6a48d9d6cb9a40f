"""Chat prompts, built from one tenant's facts and the request alone (nothing is shared between
calls, so no tenant's facts can reach another's prompt)."""

from __future__ import annotations

import json
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
