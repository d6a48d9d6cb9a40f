"""Social posts: each platform's limit counted by its own rules, hashtags picked from the text,
threads split at sentence boundaries. Pure: plain values in and out.

Counting: X by the twitter-text weighted rules (URLs 23, CJK and emoji 2); Bluesky in
graphemes; Mastodon in characters with every URL counted as 23; the others in characters.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import regex

from aethercrown.content.facts import ProductFacts, contains_banned
from aethercrown.content.writer import seed_for

_URL = re.compile(r"https?://\S+")
_HASHTAG = re.compile(r"(?<![\w#])#(\w+)")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def count_x(text: str) -> int:
    # Imported on first use: twitter-text loads pkg_resources, slow to import.
    from twitter_text import parse_tweet

    return int(parse_tweet(text).weightedLength)


def count_graphemes(text: str) -> int:
    return len(regex.findall(r"\X", text))


def count_mastodon(text: str) -> int:
    return len(_URL.sub("x" * 23, text))


def count_chars(text: str) -> int:
    return len(text)


@dataclass(frozen=True)
class PlatformSpec:
    key: str
    label: str
    limit: int
    unit: str
    count: Callable[[str], int]
    max_hashtags: int  # the platform's hard cap (None-like large number where there is none)
    suggested_hashtags: int  # the convention
    links_clickable: bool
    threads: bool
    conventions: str


PLATFORMS: dict[str, PlatformSpec] = {
    "x": PlatformSpec(
        "x",
        "X",
        280,
        "weighted characters (URLs count 23)",
        count_x,
        280,
        2,
        True,
        True,
        "short hook first, one link, at most two hashtags",
    ),
    "linkedin": PlatformSpec(
        "linkedin",
        "LinkedIn",
        3000,
        "characters",
        count_chars,
        3000,
        4,
        True,
        False,
        "a strong first line, short paragraphs with line breaks, three to five hashtags at the end",
    ),
    "instagram": PlatformSpec(
        "instagram",
        "Instagram",
        2200,
        "characters",
        count_chars,
        30,
        10,
        False,
        False,
        "links are not clickable in captions ('link in bio'); up to 30 hashtags, at the end",
    ),
    "threads": PlatformSpec(
        "threads",
        "Threads",
        500,
        "characters",
        count_chars,
        1,
        1,
        True,
        True,
        "conversational; one topic tag per post",
    ),
    "bluesky": PlatformSpec(
        "bluesky",
        "Bluesky",
        300,
        "graphemes",
        count_graphemes,
        300,
        2,
        True,
        True,
        "short and plain; a hashtag or two at most",
    ),
    "mastodon": PlatformSpec(
        "mastodon",
        "Mastodon",
        500,
        "characters (URLs count 23)",
        count_mastodon,
        500,
        3,
        True,
        True,
        "CamelCase hashtags for screen readers; content warnings for sensitive topics",
    ),
    "facebook": PlatformSpec(
        "facebook",
        "Facebook",
        63206,
        "characters",
        count_chars,
        63206,
        2,
        True,
        False,
        "a question or story works well; one or two hashtags at most",
    ),
}


def hashtags_in(text: str) -> list[str]:
    return _HASHTAG.findall(text)


def _camel(phrase: str) -> str:
    parts = re.findall(r"[A-Za-z0-9]+", phrase)
    return "".join(p if p[:1].isupper() else p.capitalize() for p in parts)


@lru_cache(maxsize=1)
def _extractor() -> Any:
    import yake  # imported on first use: it takes about a second

    return yake.KeywordExtractor(lan="en", n=2, dedupLim=0.6, top=20)


def pick_hashtags(text: str, count: int, keyphrase: str | None = None) -> list[str]:
    """Hashtags for ``text``: the keyphrase first, then YAKE's top keyphrases, CamelCase."""
    if count <= 0:
        return []
    tags: list[str] = []
    seen: set[str] = set()
    candidates = [keyphrase] if keyphrase else []
    plain = _URL.sub(" ", text)
    candidates += [kw for kw, _score in _extractor().extract_keywords(plain)]
    for candidate in candidates:
        tag = _camel(candidate)
        lower = tag.lower()
        if len(tag) < 3 or tag.isdigit() or len(tag) > 40:
            continue
        # A tag inside one already chosen (#Churn beside #InvoluntaryChurn) adds nothing.
        if any(lower in other or other in lower for other in seen):
            continue
        seen.add(lower)
        tags.append(tag)
        if len(tags) == count:
            break
    return tags


_HOOKS = (
    "Most {audience} lose more to {kp} than they think.",
    "Here is a simple way to act on {kp} this month.",
    "What would fixing {kp} be worth to your team?",
    "{kp_cap} is easier to improve than it looks.",
    "A quick note for {audience} on {kp}.",
)
_BODIES = (
    "{product} helps {audience} {vp}.",
    "With {product}, you can {vp}.",
    "{feature} {does}.",
)
_CTAS = (
    "See how it works: {link}",
    "Learn more: {link}",
    "Try it: {link}",
)


def write_post(
    facts: ProductFacts,
    spec: PlatformSpec,
    *,
    topic: str,
    keyphrase: str | None,
    link: str | None,
    seed: int = 0,
) -> str:
    """An offline post for ``spec``, within its limit (sentences are dropped until it fits)."""
    rng = random.Random(seed_for(str(seed), spec.key, topic, keyphrase or "", facts.product_name))
    kp = keyphrase or topic
    fill = {
        "audience": facts.audience,
        "kp": kp,
        "kp_cap": kp[:1].upper() + kp[1:],
        "product": facts.product_name,
    }
    hook = rng.choice(_HOOKS).format(**fill)
    sentences = [hook]
    vps = list(facts.value_propositions)
    rng.shuffle(vps)
    features = list(facts.features)
    rng.shuffle(features)
    sentences.append(_BODIES[rng.randrange(2)].format(**fill, vp=vps[0]))
    if spec.limit >= 500:
        for feature in features[:2]:
            sentences.append(f"{feature.name} {feature.does.rstrip('.')}.")
        if facts.proof_points:
            sentences.append(facts.proof_points[0].rstrip(".") + ".")
    sentences = [s for s in sentences if contains_banned(s, facts.banned_words) is None]
    if link and spec.links_clickable:
        cta = rng.choice(_CTAS).format(link=link)
    elif link:
        cta = "Link in bio."
    else:
        cta = ""
    separator = "\n\n" if spec.key in ("linkedin", "instagram", "facebook") else " "
    source = ". ".join([topic, kp, *sentences, *(f.name for f in features)])
    tags = pick_hashtags(source, min(spec.suggested_hashtags, spec.max_hashtags), keyphrase)

    def assemble(parts: list[str], n_tags: int, cta: str) -> str:
        text = separator.join(p for p in [*parts, cta] if p)
        if n_tags:
            text += ("\n\n" if separator == "\n\n" else " ") + " ".join(
                f"#{t}" for t in tags[:n_tags]
            )
        return text

    # Shed what matters least until the post fits: extra hashtags, then sentences from the
    # end, then a link too long for the platform, then the last hashtag.
    n_tags = len(tags)
    while True:
        text = assemble(sentences, n_tags, cta)
        if spec.count(text) <= spec.limit:
            return text
        if n_tags > 1:
            n_tags -= 1
        elif len(sentences) > 1:
            sentences.pop()
        elif cta:
            cta = ""
        elif n_tags:
            n_tags = 0
        else:
            return _truncate(spec, text)


def _truncate(spec: PlatformSpec, text: str) -> str:
    words = text.split(" ")
    while words and spec.count(" ".join(words) + "…") > spec.limit:
        words.pop()
    return " ".join(words) + "…"


def split_thread(spec: PlatformSpec, text: str) -> list[str]:
    """Posts of at most the limit, split at sentence (else word) boundaries, numbered i/n."""
    if spec.count(text) <= spec.limit:
        return [text]
    reserve = len(" (99/99)")
    units: list[str] = []
    for sentence in _SENTENCE.split(text.strip()):
        if spec.count(sentence) + reserve <= spec.limit:
            units.append(sentence)
        else:
            units.extend(sentence.split(" "))
    posts: list[str] = []
    current = ""
    for unit in units:
        candidate = f"{current} {unit}".strip()
        if current and spec.count(candidate) + reserve > spec.limit:
            posts.append(current)
            current = unit
        else:
            current = candidate
    if current:
        posts.append(current)
    n = len(posts)
    return [f"{p} ({i}/{n})" for i, p in enumerate(posts, start=1)]


def check(spec: PlatformSpec, text: str) -> str | None:
    """What breaks the platform's rules in one post, else None."""
    length = spec.count(text)
    if length > spec.limit:
        return f"{length} {spec.unit} is over {spec.label}'s {spec.limit}"
    tags = hashtags_in(text)
    if len(tags) > spec.max_hashtags:
        return f"{len(tags)} hashtags is over {spec.label}'s {spec.max_hashtags}"
    if not text.strip():
        return "the post is empty"
    return None


def check_all(spec: PlatformSpec, body: dict[str, Any]) -> str | None:
    for post in body["posts"]:
        problem = check(spec, post["text"])
        if problem:
            return problem
    return None


def finish(spec: PlatformSpec, text: str, thread: bool) -> dict[str, Any]:
    """The stored body: the text, its posts (a thread when asked and needed) and their counts."""
    text = text.strip()
    if thread and spec.threads:
        parts = split_thread(spec, text)
    elif spec.count(text) > spec.limit:
        parts = [_truncate(spec, text)]
    else:
        parts = [text]
    posts = [
        {
            "text": part,
            "length": spec.count(part),
            "hashtags": hashtags_in(part),
            "valid": check(spec, part) is None,
        }
        for part in parts
    ]
    return {
        "platform": spec.key,
        "text": text,
        "thread": len(posts) > 1,
        "posts": posts,
        "limit": spec.limit,
        "unit": spec.unit,
    }


def validator(
    spec: PlatformSpec, banned: tuple[str, ...], thread: bool = False
) -> Callable[[dict[str, Any]], str | None]:
    """Accepts a provider's post that fits the platform (or, for a thread, whose parts will)."""

    def validate(data: dict[str, Any]) -> str | None:
        text = data.get("text")
        if not isinstance(text, str) or not text.strip():
            return "'text' must be a non-empty string"
        if "\x00" in text:
            return "the text holds a NUL character"
        if len(text.split()) < 5:
            return "the post is too short; write at least one full sentence"
        word = contains_banned(text, banned)
        if word is not None:
            return f"it uses the banned word '{word}'"
        if not (thread and spec.threads):
            return check(spec, text)
        tags = hashtags_in(text)
        if len(tags) > spec.max_hashtags:
            return f"{len(tags)} hashtags is over {spec.label}'s {spec.max_hashtags}"
        return None

    return validate
