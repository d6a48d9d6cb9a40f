"""SEO and readability analysis of a blog post, with the checks and thresholds of Yoast SEO.

Pure: takes the post's parts as plain strings and returns plain values. Every check answers a
score (0–9, Yoast's traffic-light scale: 9 good, 6 ok, 3 bad), a status, the measured value and a
concrete fix; the overall scores are the means of the checks' scores on a 0–100 scale. Nothing is
asserted: a post that fails a check says so.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import pyphen

GOOD, OK, BAD = 9, 6, 3
_STATUS = {GOOD: "good", OK: "ok", BAD: "bad"}

_HYPHENATOR = pyphen.Pyphen(lang="en_US")
# Pyphen.positions is HyphDict.positions (cached per word by pyphen) kept to the points at least
# ``left`` letters from the start and ``right`` from the end; syllable_count makes the same cut
# itself, which spares a call and a list per word.
_HYPH_POINTS = _HYPHENATOR.hd.positions
_LEFT, _RIGHT = _HYPHENATOR.left, _HYPHENATOR.right
_WORD = re.compile(r"[^\W_][\w'’\-]*")
_VOWEL_GROUPS = re.compile(r"[aeiouy]+")
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"”')\]]*\s+(?=[\"“'(\[]?[A-Z0-9])")
_MD_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_MD_EMPHASIS = re.compile(r"(\*\*|__|\*|_|`)")
_LIST_MARK = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")
_LIST_STARTS = frozenset("-*+0123456789")  # a stripped line can only be a list item if it starts so

# Yoast's English transition words (single words and multi-word phrases), in lower case.
TRANSITION_WORDS = frozenset(
    [
        "accordingly",
        "additionally",
        "afterward",
        "afterwards",
        "albeit",
        "also",
        "although",
        "altogether",
        "another",
        "basically",
        "because",
        "before",
        "besides",
        "but",
        "certainly",
        "chiefly",
        "comparatively",
        "concurrently",
        "consequently",
        "conversely",
        "correspondingly",
        "coupled",
        "despite",
        "doubtedly",
        "during",
        "emphatically",
        "equally",
        "especially",
        "eventually",
        "evidently",
        "explicitly",
        "finally",
        "firstly",
        "following",
        "formerly",
        "forthwith",
        "fourthly",
        "further",
        "furthermore",
        "generally",
        "hence",
        "henceforth",
        "however",
        "identically",
        "indeed",
        "initially",
        "instead",
        "lastly",
        "later",
        "lest",
        "likewise",
        "markedly",
        "meanwhile",
        "moreover",
        "nevertheless",
        "nonetheless",
        "nor",
        "notwithstanding",
        "obviously",
        "occasionally",
        "otherwise",
        "overall",
        "particularly",
        "presently",
        "previously",
        "rather",
        "regardless",
        "secondly",
        "shortly",
        "significantly",
        "similarly",
        "simultaneously",
        "since",
        "so",
        "soon",
        "specifically",
        "still",
        "straightaway",
        "subsequently",
        "surely",
        "surprisingly",
        "than",
        "then",
        "thereafter",
        "therefore",
        "thereupon",
        "thirdly",
        "though",
        "thus",
        "till",
        "too",
        "undeniably",
        "undoubtedly",
        "unless",
        "unlike",
        "unquestionably",
        "until",
        "when",
        "whenever",
        "whereas",
        "while",
        "first",
        "second",
        "third",
        "next",
    ]
)
TRANSITION_PHRASES = (
    "above all",
    "after all",
    "all in all",
    "as a result",
    "as long as",
    "as soon as",
    "as well as",
    "at the same time",
    "because of",
    "by all means",
    "by the same token",
    "even so",
    "even though",
    "for example",
    "for instance",
    "for one thing",
    "for this reason",
    "in addition",
    "in contrast",
    "in fact",
    "in other words",
    "in particular",
    "in short",
    "in summary",
    "in the end",
    "in the meantime",
    "in the same way",
    "in this case",
    "most of all",
    "not only",
    "on the contrary",
    "on the other hand",
    "so that",
    "that is to say",
    "to begin with",
    "to put it differently",
    "to sum up",
    "to summarize",
    "with this in mind",
    "what is more",
    "in conclusion",
    "as an illustration",
    "to that end",
    "in practice",
    "as a rule",
)
_PHRASE_PATTERN = re.compile(r"\b(?:" + "|".join(re.escape(p) for p in TRANSITION_PHRASES) + r")\b")

_BE_FORMS = frozenset(
    [
        "am",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "get",
        "gets",
        "got",
        "gotten",
        "getting",
        "isn't",
        "aren't",
        "wasn't",
        "weren't",
    ]
)
_IRREGULAR_PARTICIPLES = frozenset(
    [
        "arisen",
        "awoken",
        "beaten",
        "become",
        "begun",
        "bent",
        "bet",
        "bitten",
        "blown",
        "broken",
        "brought",
        "built",
        "bought",
        "caught",
        "chosen",
        "come",
        "cost",
        "cut",
        "dealt",
        "done",
        "drawn",
        "driven",
        "drunk",
        "eaten",
        "fallen",
        "fed",
        "felt",
        "fought",
        "found",
        "flown",
        "forbidden",
        "forgotten",
        "forgiven",
        "frozen",
        "given",
        "gone",
        "grown",
        "hung",
        "had",
        "heard",
        "hidden",
        "hit",
        "held",
        "hurt",
        "kept",
        "known",
        "laid",
        "led",
        "left",
        "lent",
        "let",
        "lain",
        "lost",
        "made",
        "meant",
        "met",
        "paid",
        "put",
        "quit",
        "read",
        "ridden",
        "rung",
        "risen",
        "run",
        "said",
        "seen",
        "sought",
        "sold",
        "sent",
        "set",
        "shaken",
        "shown",
        "shut",
        "sung",
        "sunk",
        "sat",
        "slept",
        "spoken",
        "spent",
        "spun",
        "stood",
        "stolen",
        "stuck",
        "struck",
        "sworn",
        "swept",
        "swum",
        "taken",
        "taught",
        "torn",
        "told",
        "thought",
        "thrown",
        "understood",
        "woken",
        "worn",
        "won",
        "written",
    ]
)
_NOT_PARTICIPLES = frozenset(
    ["need", "feed", "speed", "seed", "bed", "red", "shed", "bred", "indeed", "exceed", "proceed"]
)


@dataclass(frozen=True)
class Check:
    key: str
    name: str
    score: int
    value: float | str | None
    fix: str | None
    detail: str

    @property
    def status(self) -> str:
        return _STATUS[self.score]

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "name": self.name,
            "score": self.score,
            "status": self.status,
            "value": self.value,
            "detail": self.detail,
            "fix": self.fix,
        }


@dataclass
class Analysis:
    seo: list[Check] = field(default_factory=list)
    readability: list[Check] = field(default_factory=list)
    word_count: int = 0
    flesch_reading_ease: float = 0.0
    flesch_kincaid_grade: float = 0.0

    @property
    def seo_score(self) -> int:
        return _overall(self.seo)

    @property
    def readability_score(self) -> int:
        return _overall(self.readability)

    def as_dict(self) -> dict[str, Any]:
        return {
            "word_count": self.word_count,
            "seo_score": self.seo_score,
            "readability_score": self.readability_score,
            "flesch_reading_ease": self.flesch_reading_ease,
            "flesch_kincaid_grade": self.flesch_kincaid_grade,
            "seo": [c.as_dict() for c in self.seo],
            "readability": [c.as_dict() for c in self.readability],
        }


def _overall(checks: list[Check]) -> int:
    if not checks:
        return 0
    return round(100 * sum(c.score for c in checks) / (GOOD * len(checks)))


@dataclass(frozen=True)
class _Block:
    kind: str  # heading | paragraph
    level: int
    text: str


def _plain(line: str) -> str:
    # Most lines hold no link and no emphasis: the membership tests are far cheaper than the
    # substitutions they skip, and skipping one changes nothing.
    if "[" in line:
        line = _MD_LINK.sub(r"\1", line)
    if "*" in line or "_" in line or "`" in line:
        line = _MD_EMPHASIS.sub("", line)
    return line.strip()


def _blocks(markdown: str) -> list[_Block]:
    """Headings and paragraphs of a Markdown body (a list item is a paragraph of its own)."""
    blocks: list[_Block] = []
    buffer: list[str] = []

    def flush() -> None:
        if buffer:
            blocks.append(_Block("paragraph", 0, " ".join(buffer)))
            buffer.clear()

    for raw in markdown.splitlines():
        line = raw.strip()
        if not line:
            flush()
            continue
        if line.startswith("#"):
            flush()
            level = len(line) - len(line.lstrip("#"))
            if level == 1:
                continue  # the title, analysed on its own
            blocks.append(_Block("heading", level, _plain(line.lstrip("#"))))
            continue
        if line[0] in _LIST_STARTS and _LIST_MARK.match(line):
            flush()
            blocks.append(_Block("paragraph", 0, _plain(_LIST_MARK.sub("", line))))
            continue
        buffer.append(_plain(line))
    flush()
    return blocks


def words(text: str) -> list[str]:
    return _WORD.findall(text)


def sentences(text: str) -> list[str]:
    return [s for s in (p.strip() for p in _SENTENCE_END.split(text)) if s]


def _count_syllables(word: str) -> int:
    """Syllables of an English word: pyphen's hyphenation points, which never split a one-letter
    syllable off, so at least the count of vowel groups less a silent final e."""
    lower = word.lower().strip("'’-")
    if not lower:
        return 0
    if lower.isdigit():
        return max(1, len(lower))
    groups = len(_VOWEL_GROUPS.findall(lower))
    if groups <= 1:
        return 1  # hyphenation finds no break in a word of one vowel group
    if lower.endswith("e") and not lower.endswith(("le", "ee", "ye")) and groups > 1:
        groups -= 1
    if lower.endswith("ed") and not lower.endswith(("ted", "ded")) and groups > 1:
        groups -= 1
    last = len(lower) - _RIGHT  # the last point pyphen may break at
    # Pyphen cuts at most (last - _LEFT + 1) points, so at most that many pieces plus one: when
    # the vowel groups already reach it, the lookup cannot raise the count.
    if groups >= max(0, last - _LEFT + 1) + 1:
        return groups
    hyphenated = 1
    for point in _HYPH_POINTS(lower):
        if _LEFT <= point <= last:
            hyphenated += 1
    return max(1, hyphenated, groups)


syllable_count = lru_cache(maxsize=65536)(_count_syllables)

# The analysis's own syllable cache: a plain dict, whose miss costs a fraction of an lru_cache
# miss (a post's unique words are each looked up once, so most lookups of a new post miss).
# Bounded by refusing new words once full rather than evicting: real vocabularies fit, and text
# made up to fill it only stops being cached.
_SYLLABLES: dict[str, int] = {}
_SYLLABLES_MAX = 65536


def clear_syllable_cache() -> None:
    """Forget every counted word (benchmarks time the analysis from cold)."""
    _SYLLABLES.clear()
    syllable_count.cache_clear()


def _syllables(counts: Counter[str]) -> int:
    """The syllables of a text given as its words' counts."""
    known = _SYLLABLES
    total = 0
    for word, n in counts.items():
        count = known.get(word)
        if count is None:
            count = _count_syllables(word)
            if len(known) < _SYLLABLES_MAX:
                known[word] = count
        total += n * count
    return total


def _normalise(text: str) -> str:
    return " ".join(w.lower() for w in words(text))


def _contains(text: str, keyphrase: str) -> bool:
    phrase = _normalise(keyphrase)
    return bool(phrase) and f" {phrase} " in f" {_normalise(text)} "


def _occurrences_in(tokens: list[str], keyphrase: str) -> int:
    """Occurrences of the keyphrase in lower-cased tokens, matched token by token."""
    phrase = _normalise(keyphrase)
    if not phrase:
        return 0
    # Tokens hold no white space, so a token-by-token match is a match of " phrase " in the
    # space-joined text; the look-ahead counts overlapping matches too, as the token walk did.
    pattern = re.compile("(?= " + re.escape(phrase) + " )")
    return len(pattern.findall(" " + " ".join(tokens) + " "))


# Approximate advance widths (px) of Arial at 20 px, the font Google's result titles use; Yoast
# measures the SEO title's pixel width against 600 px.
_WIDE = set("MWmw@%")
_NARROW = set("iljtfI!.,:;'|()[] ")


def title_width(title: str) -> int:
    width = 0.0
    for ch in title:
        if ch in _WIDE:
            width += 16.5
        elif ch in _NARROW:
            width += 5.6
        elif ch.isupper() or ch.isdigit():
            width += 12.5
        else:
            width += 10.0
    return round(width)


def _is_passive(tokens: list[str]) -> bool:
    """``tokens``: the sentence's words in lower case."""
    if _BE_FORMS.isdisjoint(tokens):
        return False  # most sentences: one set operation instead of a loop over the words
    for i, token in enumerate(tokens[:-1]):
        if token not in _BE_FORMS:
            continue
        for candidate in tokens[i + 1 : i + 3]:
            if candidate in _IRREGULAR_PARTICIPLES or (
                candidate.endswith("ed")
                and len(candidate) > 4
                and candidate not in _NOT_PARTICIPLES
            ):
                return True
            if not candidate.endswith("ly"):
                break
    return False


def _has_transition(lower_sentence: str, tokens: list[str]) -> bool:
    if not TRANSITION_WORDS.isdisjoint(tokens):
        return True
    return _PHRASE_PATTERN.search(lower_sentence) is not None


def _band(value: float, good: tuple[float, float], ok: tuple[float, float]) -> int:
    if good[0] <= value <= good[1]:
        return GOOD
    if ok[0] <= value <= ok[1]:
        return OK
    return BAD


def analyse(
    *, title: str, slug: str, meta_description: str, keyphrase: str, markdown: str
) -> Analysis:
    """Yoast's SEO and readability checks over a post whose body is Markdown (## / ### for
    subheadings; a leading # line is taken as the title and skipped)."""
    blocks = _blocks(markdown)
    paragraphs = [b.text for b in blocks if b.kind == "paragraph"]
    headings = [b for b in blocks if b.kind == "heading" and b.level in (2, 3)]
    tokenised, paragraph_lengths = _tokenise(paragraphs)
    body_words = [w for _, tokens in tokenised for w in tokens]
    word_count = len(body_words)
    analysis = Analysis(word_count=word_count)
    analysis.seo += _keyphrase_checks(title, slug, keyphrase, paragraphs, headings, body_words)
    analysis.seo += _meta_description_checks(meta_description, keyphrase)
    analysis.seo += [_title_width_check(title), _text_length_check(word_count)]
    analysis.readability += _structure_checks(blocks, paragraph_lengths, headings, tokenised)
    analysis.readability += _style_checks(tokenised)
    ease, grade, flesch = _flesch_check(tokenised, body_words)
    analysis.flesch_reading_ease = round(ease, 1)
    analysis.flesch_kincaid_grade = round(grade, 1)
    analysis.readability.append(flesch)
    return analysis


def _tokenise(paragraphs: list[str]) -> tuple[list[tuple[str, list[str]]], list[int]]:
    """Each sentence tokenised once: (lower-cased text, its lower-cased words); and each
    paragraph's word count.

    A sentence boundary falls on white space after punctuation, where no word can run on, so a
    paragraph's words are its sentences' words; lower-casing ASCII maps letters to letters, so
    the count can be taken from the lower-cased tokens. Other text is counted afresh (lower-casing
    can change a non-ASCII word's length, e.g. 'İ'), keeping the count exactly ``words(p)``."""
    tokenised: list[tuple[str, list[str]]] = []
    lengths: list[int] = []
    for paragraph in paragraphs:
        count = 0
        for sentence in sentences(paragraph):
            lower = sentence.lower()
            tokens = words(lower)
            tokenised.append((lower, tokens))
            count += len(tokens)
        lengths.append(count if paragraph.isascii() else len(words(paragraph)))
    return tokenised, lengths


def _keyphrase_checks(
    title: str,
    slug: str,
    keyphrase: str,
    paragraphs: list[str],
    headings: list[_Block],
    body_words: list[str],
) -> list[Check]:
    """The keyphrase in the title (best at its start), introduction, slug and subheadings, and
    its density; one check saying there is none when it is blank."""
    if not keyphrase.strip():
        return [
            Check(
                "keyphrase",
                "Focus keyphrase",
                BAD,
                None,
                "Set a focus keyphrase.",
                "No focus keyphrase was given, so no keyphrase check can run.",
            )
        ]
    return [
        _keyphrase_in_title(title, keyphrase),
        _keyphrase_in_introduction(paragraphs, keyphrase),
        _keyphrase_in_slug(slug, keyphrase),
        _keyphrase_in_subheadings(headings, keyphrase),
        _keyphrase_density(body_words, keyphrase),
    ]


def _keyphrase_in_title(title: str, keyphrase: str) -> Check:
    fix: str | None
    if _normalise(title).startswith(_normalise(keyphrase)):
        score, fix = GOOD, None
    elif _contains(title, keyphrase):
        score, fix = OK, "Move the keyphrase to the beginning of the title."
    else:
        score, fix = BAD, f"Put '{keyphrase}' in the title, ideally at its start."
    return Check(
        "keyphrase_in_title",
        "Keyphrase in SEO title",
        score,
        "start" if score == GOOD else ("elsewhere" if score == OK else "missing"),
        fix,
        "Yoast: the exact keyphrase at the beginning of the title.",
    )


def _keyphrase_in_introduction(paragraphs: list[str], keyphrase: str) -> Check:
    intro = paragraphs[0] if paragraphs else ""
    found = _contains(intro, keyphrase)
    return Check(
        "keyphrase_in_introduction",
        "Keyphrase in introduction",
        GOOD if found else BAD,
        found,
        None if found else f"Use '{keyphrase}' in the first paragraph.",
        "Yoast: the keyphrase appears in the first paragraph.",
    )


def _keyphrase_in_slug(slug: str, keyphrase: str) -> Check:
    slug_words = _normalise(slug.replace("-", " "))
    found = f" {_normalise(keyphrase)} " in f" {slug_words} "
    return Check(
        "keyphrase_in_slug",
        "Keyphrase in slug",
        GOOD if found else BAD,
        found,
        None if found else f"Put '{keyphrase}' in the slug.",
        "Yoast: the keyphrase's words appear in the slug.",
    )


def _keyphrase_in_subheadings(headings: list[_Block], keyphrase: str) -> Check:
    fix: str | None
    with_phrase = sum(1 for h in headings if _contains(h.text, keyphrase))
    share = 100 * with_phrase / len(headings) if headings else 0.0
    score = GOOD if headings and 30 <= share <= 75 else (OK if headings and share > 0 else BAD)
    if not headings:
        fix = "Add H2/H3 subheadings to the post."
    elif share < 30:
        fix = f"Use '{keyphrase}' (or a synonym) in more subheadings: 30–75 %."
    elif share > 75:
        fix = "Use the keyphrase in fewer subheadings (at most 75 %): vary them."
    else:
        fix = None
    return Check(
        "keyphrase_in_subheadings",
        "Keyphrase in subheadings",
        score,
        round(share, 1),
        fix,
        "Yoast: 30–75 % of H2/H3 subheadings.",
    )


def _keyphrase_density(body_words: list[str], keyphrase: str) -> Check:
    fix: str | None
    word_count = len(body_words)
    occurrences = _occurrences_in(body_words, keyphrase)
    density = 100 * occurrences / word_count if word_count else 0.0
    score = _band(density, (0.5, 3.0), (0.3, 3.5))
    if density < 0.5:
        fix = f"Use '{keyphrase}' more often ({occurrences} times now): aim for 0.5–3 %."
    elif density > 3.0:
        fix = f"Use '{keyphrase}' less often ({occurrences} times now): over 3 % reads stuffed."
    else:
        fix = None
    return Check(
        "keyphrase_density",
        "Keyphrase density",
        score,
        round(density, 2),
        fix,
        "Yoast: 0.5–3 % of the text.",
    )


def _meta_description_checks(meta_description: str, keyphrase: str) -> list[Check]:
    """The meta description's length, and the keyphrase in it (when there is one)."""
    seo: list[Check] = []
    fix: str | None
    meta_len = len(meta_description)
    # Yoast: missing is red, too short or too long orange.
    score = _band(meta_len, (120, 156), (1, 1_000_000))
    if meta_len == 0:
        score, fix = BAD, "Write a meta description of 120–156 characters."
    elif meta_len < 120:
        fix = f"Lengthen the meta description ({meta_len} characters) to 120–156."
    elif meta_len > 156:
        fix = f"Shorten the meta description ({meta_len} characters) to at most 156."
    else:
        fix = None
    seo.append(
        Check(
            "meta_description_length",
            "Meta description length",
            score,
            meta_len,
            fix,
            "Yoast: 120–156 characters.",
        )
    )
    if keyphrase.strip():
        found = _contains(meta_description, keyphrase)
        seo.append(
            Check(
                "keyphrase_in_meta_description",
                "Keyphrase in meta description",
                GOOD if found else BAD,
                found,
                None if found else f"Use '{keyphrase}' in the meta description.",
                "Yoast: the keyphrase appears in the meta description.",
            )
        )
    return seo


def _title_width_check(title: str) -> Check:
    width = title_width(title)
    if width > 600:
        score, fix = BAD, f"Shorten the title: about {width} px wide, over Google's 600 px."
    elif width < 400:
        score, fix = OK, f"Lengthen the title: about {width} px leaves space unused (400–600 px)."
    else:
        score, fix = GOOD, None
    return Check(
        "title_width",
        "SEO title width",
        score,
        width,
        fix,
        "Yoast: the title fills Google's 600 px without overflowing.",
    )


def _text_length_check(word_count: int) -> Check:
    score = GOOD if word_count >= 300 else (OK if word_count >= 250 else BAD)
    return Check(
        "text_length",
        "Text length",
        score,
        word_count,
        None if score == GOOD else "Write at least 300 words.",
        "Yoast: at least 300 words for a post.",
    )


def _structure_checks(
    blocks: list[_Block],
    paragraph_lengths: list[int],
    headings: list[_Block],
    tokenised: list[tuple[str, list[str]]],
) -> list[Check]:
    """Sentence, paragraph and section lengths."""
    read: list[Check] = []
    fix: str | None
    word_count = sum(len(tokens) for _, tokens in tokenised)
    sentence_lengths = [len(tokens) for _, tokens in tokenised]
    n_sentences = len(sentence_lengths) or 1
    long_share = 100 * sum(1 for n in sentence_lengths if n > 20) / n_sentences
    score = _band(long_share, (0, 25), (0, 30))
    read.append(
        Check(
            "sentence_length",
            "Sentence length",
            score,
            round(long_share, 1),
            None
            if score == GOOD
            else f"{long_share:.0f} % of sentences have over 20 words: split some.",
            "Yoast: at most 25 % of sentences over 20 words.",
        )
    )

    longest_paragraph = max(paragraph_lengths, default=0)
    score = _band(longest_paragraph, (0, 150), (0, 200))
    read.append(
        Check(
            "paragraph_length",
            "Paragraph length",
            score,
            longest_paragraph,
            None
            if score == GOOD
            else f"The longest paragraph has {longest_paragraph} words: split it (≤150).",
            "Yoast: paragraphs of at most 150 words.",
        )
    )

    longest_section = 0
    current = 0
    lengths = iter(paragraph_lengths)  # the paragraph blocks, in order
    for block in blocks:
        if block.kind == "heading":
            longest_section = max(longest_section, current)
            current = 0
        else:
            current += next(lengths)
    longest_section = max(longest_section, current)
    if word_count <= 300 and not headings:
        score, fix = GOOD, None
    else:
        score = _band(longest_section, (0, 300), (0, 350))
        fix = (
            None
            if score == GOOD
            else (f"A section runs {longest_section} words without a subheading: add one (≤300).")
        )
    read.append(
        Check(
            "subheading_distribution",
            "Subheading distribution",
            score,
            longest_section,
            fix,
            "Yoast: at most 300 words between subheadings.",
        )
    )
    return read


def _style_checks(tokenised: list[tuple[str, list[str]]]) -> list[Check]:
    """Passive voice and transition words, as shares of the sentences."""
    read: list[Check] = []
    n_sentences = len(tokenised) or 1
    passive = sum(1 for _, tokens in tokenised if _is_passive(tokens))
    passive_share = 100 * passive / n_sentences
    score = _band(passive_share, (0, 10), (0, 15))
    read.append(
        Check(
            "passive_voice",
            "Passive voice",
            score,
            round(passive_share, 1),
            None
            if score == GOOD
            else f"{passive} sentences ({passive_share:.0f} %) are passive: use active verbs.",
            "Yoast: at most 10 % of sentences in the passive voice.",
        )
    )

    transitions = sum(1 for lower, tokens in tokenised if _has_transition(lower, tokens))
    transition_share = 100 * transitions / n_sentences
    score = _band(transition_share, (30, 100), (20, 100))
    read.append(
        Check(
            "transition_words",
            "Transition words",
            score,
            round(transition_share, 1),
            None
            if score == GOOD
            else f"Only {transition_share:.0f} % of sentences use a transition word: "
            "link ideas with 'for example', 'as a result', 'however'…",
            "Yoast: at least 30 % of sentences hold a transition word.",
        )
    )
    return read


def _flesch_check(
    tokenised: list[tuple[str, list[str]]], body_words: list[str]
) -> tuple[float, float, Check]:
    """Flesch reading ease and Flesch-Kincaid grade, and the check on the ease."""
    word_count = len(body_words)
    n_sentences = len(tokenised) or 1
    syllables = _syllables(Counter(body_words))
    words_per_sentence = word_count / n_sentences if word_count else 0.0
    syllables_per_word = syllables / word_count if word_count else 0.0
    ease = 206.835 - 1.015 * words_per_sentence - 84.6 * syllables_per_word
    grade = 0.39 * words_per_sentence + 11.8 * syllables_per_word - 15.59
    score = GOOD if ease >= 60 else (OK if ease >= 50 else BAD)
    check = Check(
        "flesch_reading_ease",
        "Flesch reading ease",
        score,
        round(ease, 1),
        None if score == GOOD else "Hard to read: use shorter sentences and shorter, common words.",
        f"Yoast: 60 or more reads easily; Flesch-Kincaid grade {grade:.1f}.",
    )
    return ease, grade, check
