"""What the platform knows about a tenant's product, as plain values for the writers and prompts."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Feature:
    name: str
    # What it does, as a verb phrase in the third person: "retries failed cards at the best hour".
    does: str


@dataclass(frozen=True)
class Link:
    title: str
    url: str
    kind: str = "internal"  # internal | external | cta


@dataclass(frozen=True)
class ProductFacts:
    product_name: str
    # A plural noun phrase: "finance teams at subscription businesses".
    audience: str
    # Verb phrases of what the product helps the audience do: "recover failed payments".
    value_propositions: tuple[str, ...]
    features: tuple[Feature, ...]
    # Whole sentences, each a fact the tenant stands behind: "Customers recover 38 % of …".
    proof_points: tuple[str, ...] = ()
    tone: str = "friendly"  # friendly | professional | bold
    banned_words: tuple[str, ...] = ()
    links: tuple[Link, ...] = ()
    postal_address: str = ""
    sender_name: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    def links_of(self, kind: str) -> list[Link]:
        return [link for link in self.links if link.kind == kind]

    def cta_link(self) -> Link | None:
        ctas = self.links_of("cta")
        return ctas[0] if ctas else None


def slugify(text: str, max_length: int = 75) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    if len(slug) <= max_length:
        return slug
    cut = slug[:max_length]
    return cut.rsplit("-", 1)[0] if "-" in cut else cut


def contains_banned(text: str, banned: tuple[str, ...]) -> str | None:
    """The first banned word or phrase used in ``text`` (whole words, any case), else None."""
    lower = f" {' '.join(re.findall(r'[a-z0-9]+', text.lower()))} "
    for word in banned:
        norm = " ".join(re.findall(r"[a-z0-9]+", word.lower()))
        if norm and f" {norm} " in lower:
            return word
    return None
