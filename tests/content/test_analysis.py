"""The SEO and readability checks measure what they claim, with Yoast's thresholds."""

from __future__ import annotations

from aethercrown.content.analysis import analyse, sentences, syllable_count, title_width


def _checks(result: dict[str, object]) -> dict[str, dict[str, object]]:
    return {c["key"]: c for c in result["seo"] + result["readability"]}  # type: ignore[operator]


def _body(paragraph: str, sections: int = 4, heading: str = "## Why invoices matter") -> str:
    return "\n\n".join(f"{heading}\n\n{paragraph}" for _ in range(sections))


SHORT = (
    "Invoice automation saves time. The team sends fewer reminders. Customers pay sooner. "
    "For example, one firm cut late payments in half."
)


def test_keyphrase_checks_pass_and_fail_for_the_right_reasons() -> None:
    markdown = (
        "Invoice automation helps small teams. "
        + SHORT
        + "\n\n"
        + _body(SHORT, heading="## Invoice automation in practice")
    )
    good = _checks(
        analyse(
            title="Invoice automation: a practical guide for finance teams",
            slug="invoice-automation-guide",
            meta_description="Invoice automation explained: " + "x" * 100,
            keyphrase="invoice automation",
            markdown=markdown,
        ).as_dict()
    )
    assert good["keyphrase_in_title"]["status"] == "good"
    assert good["keyphrase_in_introduction"]["status"] == "good"
    assert good["keyphrase_in_slug"]["status"] == "good"
    # Every subheading holds the keyphrase: over Yoast's 75 %.
    assert good["keyphrase_in_subheadings"]["value"] == 100.0
    assert good["keyphrase_in_subheadings"]["status"] == "ok"
    assert "fewer" in str(good["keyphrase_in_subheadings"]["fix"])

    bad = _checks(
        analyse(
            title="A practical guide",
            slug="guide",
            meta_description="Too short.",
            keyphrase="invoice automation",
            markdown="Nothing relevant here at all.\n\n" + _body(SHORT.replace("Invoice", "Bill")),
        ).as_dict()
    )
    for key in (
        "keyphrase_in_title",
        "keyphrase_in_introduction",
        "keyphrase_in_slug",
        "keyphrase_in_meta_description",
    ):
        assert bad[key]["status"] == "bad", key
        assert bad[key]["fix"], key
    # Yoast marks a short meta description orange, a missing one red.
    assert bad["meta_description_length"]["status"] == "ok"
    assert "Lengthen" in str(bad["meta_description_length"]["fix"])
    assert bad["meta_description_length"]["value"] == len("Too short.")


def test_density_counts_occurrences_per_word() -> None:
    filler = "word " * 196
    markdown = f"Alpha beta here. {filler}alpha beta. Alpha beta."
    result = _checks(
        analyse(
            title="t", slug="", meta_description="", keyphrase="alpha beta", markdown=markdown
        ).as_dict()
    )
    words = 3 + 196 + 2 + 2
    assert result["keyphrase_density"]["value"] == round(100 * 3 / words, 2)
    assert result["keyphrase_density"]["status"] == "good"


def test_readability_measures_sentences_paragraphs_sections_passive_transitions() -> None:
    long_sentence = "Word " + " ".join(["word"] * 24) + "."
    passive = "The invoice was sent by the team. The reminders were written yesterday."
    markdown = "\n\n".join([" ".join([long_sentence] * 8), passive])
    result = analyse(title="t", slug="", meta_description="", keyphrase="", markdown=markdown)
    checks = _checks(result.as_dict())
    assert checks["sentence_length"]["value"] == 80.0  # 8 of 10 sentences over 20 words
    assert checks["sentence_length"]["status"] == "bad"
    assert checks["paragraph_length"]["value"] == 200
    assert checks["paragraph_length"]["status"] == "ok"
    assert checks["passive_voice"]["value"] == 20.0
    assert checks["transition_words"]["value"] == 0.0
    assert checks["transition_words"]["status"] == "bad"
    # 212 words without a subheading.
    assert checks["subheading_distribution"]["value"] == 212
    assert all(c["fix"] for c in checks.values() if c["status"] != "good")


def test_flesch_scores_follow_the_formulas() -> None:
    text = "The cat sat on the mat. It was a sunny day."
    result = analyse(title="", slug="", meta_description="", keyphrase="", markdown=text)
    n_words, n_sentences = 11, 2
    n_syllables = sum(syllable_count(w) for w in text.replace(".", "").split())
    assert n_syllables == 12  # every word one syllable, "sunny" two
    ease = 206.835 - 1.015 * n_words / n_sentences - 84.6 * n_syllables / n_words
    assert result.flesch_reading_ease == round(ease, 1)
    grade = 0.39 * n_words / n_sentences + 11.8 * n_syllables / n_words - 15.59
    assert result.flesch_kincaid_grade == round(grade, 1)


def test_syllables_sentences_and_title_width() -> None:
    assert [syllable_count(w) for w in ("cat", "table", "readability", "automation")] == [
        1,
        2,
        5,
        4,
    ]
    assert sentences("One. Two! Three? four") == ["One.", "Two!", "Three? four"]
    assert title_width("i" * 10) < title_width("W" * 10)
    assert title_width("A title of sixty characters or so, for a blog post today") < 600
