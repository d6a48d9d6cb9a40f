"""Each platform's counting rules and limits, hashtags and thread splits."""

from __future__ import annotations

import pytest

from aethercrown.content import social
from tests.content.conftest import FACTS

LONG_URL = "https://acme.com/" + "a" * 200


def test_x_weighs_urls_as_23_and_emoji_and_cjk_as_2() -> None:
    assert social.count_x(f"See {LONG_URL}") == 4 + 23
    assert social.count_x("😀") == 2
    assert social.count_x("日本") == 4
    assert social.count_x("a" * 280) == 280


def test_bluesky_counts_graphemes_and_mastodon_urls() -> None:
    family = "👨\u200d👩\u200d👧"  # one grapheme, five code points
    assert social.count_graphemes(family + "e\u0301") == 2
    assert social.count_mastodon(f"x {LONG_URL}") == 2 + 23


@pytest.mark.parametrize("platform", sorted(social.PLATFORMS))
def test_offline_posts_fit_every_platform(platform: str) -> None:
    spec = social.PLATFORMS[platform]
    text = social.write_post(
        FACTS, spec, topic="failed payments", keyphrase="involuntary churn", link=LONG_URL, seed=4
    )
    body = social.finish(spec, text, thread=False)
    assert all(post["valid"] for post in body["posts"])
    assert all(post["length"] <= spec.limit for post in body["posts"])
    assert len(social.hashtags_in(text)) <= min(spec.max_hashtags, spec.suggested_hashtags)
    assert "InvoluntaryChurn" in social.hashtags_in(text)
    if not spec.links_clickable:
        assert LONG_URL not in text and "Link in bio" in text


def test_instagram_hashtag_cap_is_checked() -> None:
    spec = social.PLATFORMS["instagram"]
    text = "Hello there. " + " ".join(f"#tag{i}" for i in range(31))
    assert "31 hashtags" in str(social.check(spec, text))


def test_thread_split_keeps_every_post_within_the_limit() -> None:
    spec = social.PLATFORMS["x"]
    text = " ".join(
        f"Sentence number {i} talks about involuntary churn in detail." for i in range(30)
    )
    body = social.finish(spec, text, thread=True)
    assert body["thread"] and len(body["posts"]) > 3
    n = len(body["posts"])
    for i, post in enumerate(body["posts"], start=1):
        assert post["length"] <= 280 and post["valid"]
        assert post["text"].endswith(f"({i}/{n})")
    # Nothing lost: the sentences come back in order.
    joined = " ".join(p["text"].rsplit(" (", 1)[0] for p in body["posts"])
    assert joined == text


def test_hashtags_come_from_the_text() -> None:
    tags = social.pick_hashtags(
        "Smart retries recover failed payments. Failed payments cost subscription revenue.", 3
    )
    assert tags and all(t[0].isupper() for t in tags)
    assert any("Payments" in t or "Retries" in t for t in tags)
