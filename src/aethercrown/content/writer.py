"""The offline writer: deterministic, seeded copy assembled from a tenant's product facts.

Needs nothing (no model, no network). The same facts, topic, keyphrase and seed give the same
post; another seed gives another selection and order of sentences. Sentences come from pools of
templates filled with the facts; each sentence is used at most once per post and sentences with
a banned word are skipped. Pure: plain values in and out.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field

from markdown_it import MarkdownIt

from aethercrown.content.analysis import title_width
from aethercrown.content.facts import Feature, Link, ProductFacts, contains_banned, slugify

MIN_WORDS, MAX_WORDS = 800, 2000
_MARKDOWN = MarkdownIt("commonmark", {"html": False})

# Sentence openers Yoast counts as transition words; prefixed to some sentences.
_TRANSITIONS = (
    "In practice,",
    "For example,",
    "As a result,",
    "In addition,",
    "However,",
    "Above all,",
    "In short,",
    "To begin with,",
    "What is more,",
    "For this reason,",
    "Meanwhile,",
    "In particular,",
    "Equally,",
    "Even so,",
    "In other words,",
    "With this in mind,",
    "At the same time,",
    "Similarly,",
    "Consequently,",
    "Finally,",
)

_GENERAL = (
    "Most {audience} already know that {kp} affects growth, yet few measure it every week.",
    "The teams that make the fastest progress on {kp} treat it as a habit, not a project.",
    "A small change in {kp} compounds month after month.",
    "Start with the numbers you already have before you buy anything new.",
    "Good decisions about {kp} come from clean data and a clear owner.",
    "Pick one metric, write down its current value and review it every Monday.",
    "Progress is easier to defend when every change has a date and a reason.",
    "You do not need a large team to make real progress here.",
    "Clear goals keep a busy team from chasing every new idea.",
    "Customers notice when a company fixes the small problems first.",
    "Each improvement should be easy to explain to someone outside the team.",
    "Short feedback loops beat long plans that nobody revisits.",
    "The hardest part is usually agreeing on what success looks like.",
    "Write the goal down in one sentence and share it with everyone involved.",
    "Progress on {kp} rarely happens by accident.",
    "Leaders who talk about {kp} in every review get better results from it.",
    "A shared dashboard turns {kp} from an opinion into a fact.",
    "Small, steady experiments teach more than one big launch.",
    "Numbers alone do not change behaviour; clear next steps do.",
    "Every week without a baseline is a week of guessing.",
    "Ask which customers feel the problem most and start with them.",
    "Simple rules that people follow beat clever rules that they ignore.",
    "The best time to act on {kp} is before it shows up in the revenue report.",
    "Tools help, but the routine around them matters more.",
    "Most gains come from doing the obvious things consistently.",
    "Document what worked so the next person does not start from zero.",
    "Budgets are easier to win when you can point to measured results.",
    "A quarterly review keeps the work honest and focused.",
    "Teams that share their results openly tend to improve faster.",
    "The right goal is specific, measurable and owned by one person.",
    "Keep the list of priorities short enough to remember.",
    "A good habit survives a busy quarter; a heroic effort does not.",
    "Ask for feedback early, while changes are still cheap.",
    "Celebrate the small wins so the team keeps going.",
    "Use plain language in every report so nobody has to guess.",
    "Look at trends over months, not single days.",
    "Agree on definitions first, or every meeting turns into a debate about numbers.",
    "Protect time in the calendar for this work, or it will slip.",
    "Your own customers are the best source of ideas.",
    "Test one idea at a time and let the data decide.",
    "A clear owner turns a good plan into finished work.",
    "Keep an eye on {kp} even when other numbers look healthy.",
    "The question is not whether {kp} matters, but how quickly you can act on it.",
    "People follow a process they helped to design.",
    "Reliable data beats a long list of opinions.",
    "Check the numbers at the same time each week, so changes stand out.",
    "Most problems look smaller once someone writes them down.",
    "Good tools remove the busywork, not the thinking.",
    "An honest baseline is worth more than an ambitious target.",
    "Teams move faster when they know which decisions they may take alone.",
)

_QUESTIONS = (
    (
        "How long does it take to see results?",
        (
            "Most teams see a first signal within a few weeks.",
            "Lasting results take a full quarter of steady work.",
            "The timing depends on how often your customers renew or pay.",
        ),
    ),
    (
        "Do we need a data team to start?",
        (
            "No, a spreadsheet and one curious owner are enough to begin.",
            "A data team helps later, once the routine is in place.",
            "Start with the reports your billing system already gives you.",
        ),
    ),
    (
        "Which number should we track first?",
        (
            "Track the one number that your leadership already talks about.",
            "Keep it simple, so everyone reads it the same way.",
            "Add a second number only when the first one is stable.",
        ),
    ),
    (
        "How do we keep the work going after launch?",
        (
            "Put a short review in the calendar every week.",
            "Rotate the owner each quarter, so knowledge spreads.",
            "Report progress in the same meeting as revenue.",
        ),
    ),
)

_WHY = (
    "{kp_cap} shapes how fast {audience} can grow without adding headcount.",
    "When nobody watches {kp}, the cost shows up weeks later in the revenue report.",
    "Investors and boards now ask about {kp} as often as they ask about new sales.",
    "Every customer you keep is one you do not have to win again.",
    "Acquisition costs keep rising, so the value of each existing customer matters more.",
    "Ignoring {kp} leaves money on the table that competitors will happily collect.",
    "A clear view of {kp} also makes forecasting far more reliable.",
    "The good news is that most of the causes are visible in data you already collect.",
    "Teams that act early spend less time on rescue work later.",
    "Visible progress on {kp} also lifts morale, because people see their work pay off.",
)

_HOW_INTRO = (
    "{product} was built for {audience} who want results without a long setup.",
    "{product} connects to the tools you already use and starts from your own data.",
    "Instead of another report, {product} gives your team a short list of next actions.",
    "{product} keeps every decision on record, so you can see what changed and why.",
    "With {product}, {audience} can {vp} without writing code.",
    "Most teams see their first useful signal from {product} within a week.",
    "{product} is designed to support {kp} work from the first day.",
)

_FEATURE = (
    "{feature} {does}.",
    "With {feature}, your team no longer has to do this work by hand.",
    "{feature} turns a weekly chore into something that simply happens.",
    "Teams use {feature} to spot problems while there is still time to act.",
    "You can switch {feature} on in minutes and tune it later.",
    "Every action that {feature} takes is logged, so nothing happens out of sight.",
    "{feature} fits into the workflow you already have.",
    "Because {feature} runs on your own data, its suggestions match your business.",
    "{feature} is where many teams see their first quick win.",
)

_VALUE = (
    "{product} helps {audience} {vp}.",
    "The goal is simple: {vp}.",
    "When you {vp}, progress on {kp} follows.",
    "Being able to {vp} frees your team for higher-value work.",
    "Customers tell us the biggest change is that they can finally {vp}.",
    "It should not take a large team to {vp}.",
    "Our customers chose {product} because they wanted to {vp}.",
)

_STEP_HEADINGS = (
    "Step {n}: measure your {kp} baseline",
    "Step {n}: find where customers struggle",
    "Step {n}: choose one change to test",
    "Step {n}: automate the routine work",
    "Step {n}: review the results every week",
    "Step {n}: share what you learned",
)

_STEP = (
    "Collect the last twelve months of data and mark the moments that matter.",
    "Write down the current value and the date you measured it.",
    "Look for the accounts, plans or channels where the numbers move the most.",
    "Talk to five customers before you decide what to change.",
    "Choose the change that is cheapest to try and easiest to undo.",
    "Run it for a fixed period so the result is not a matter of opinion.",
    "Automate the parts that a person repeats every week.",
    "Set an alert so the right person hears about a problem on the day it starts.",
    "Compare the result with your baseline, not with your hopes.",
    "Keep what worked, drop what did not and record both.",
    "Share a one-page summary with the wider team.",
    "Plan the next change only after the last one has a result.",
    "Tie each step back to {kp} so the purpose stays clear.",
    "Give each step an owner and a deadline.",
)

_MISTAKES = (
    "The most common mistake is trying to fix everything at once.",
    "Another is trusting a single good week as proof that a change worked.",
    "Some teams measure {kp} but never decide who acts on the numbers.",
    "Others copy a competitor's playbook without checking that it fits their customers.",
    "Changing several things together makes it impossible to know what helped.",
    "Waiting for perfect data delays decisions that good data would already support.",
    "Treating {kp} as a one-off project means the gains fade within a quarter.",
    "Hiding bad results slows everyone down and repeats the same errors.",
    "Setting targets without a baseline turns every review into guesswork.",
    "Buying a tool before agreeing on the goal rarely ends well.",
)

_RESULTS = (
    "Measure the result against the baseline you recorded at the start.",
    "Expect steady gains rather than overnight miracles.",
    "Most teams see the first clear change in {kp} within one or two months.",
    "Keep the before-and-after numbers where everyone can see them.",
    "A good result is one you can repeat, not only one you can report.",
    "Some changes pay off at once, while others need a full renewal cycle.",
    "Report the result in money where you can, since that is what leaders compare.",
)

_CLOSING = (
    "Work on {kp} is a habit you can build one week at a time.",
    "Start with one step from this guide and give it a month.",
    "The sooner you measure, the sooner you can improve.",
    "Small, honest changes add up to results your whole team can see.",
)

_TITLES = (
    "{kp_cap}: a practical guide for {audience}",
    "{kp_cap}: how {audience} get it right",
    "{kp_cap} made simple: a step-by-step plan",
    "{kp_cap}: {n} steps that work",
    "{kp_cap} guide: what to measure and what to change",
)

_METAS = (
    "{kp_cap} explained for {audience}: what to measure, what to change and how {product} "
    "helps you {vp}.",
    "{kp_cap} in {n} practical steps: measure a baseline, fix what matters and see how "
    "{product} helps.",
    "A practical guide to {kp} for {audience}, with clear steps and the results to expect.",
    "Learn how to act on {kp} step by step, avoid common mistakes and {vp} with {product}.",
)


@dataclass
class BlogPost:
    title: str
    slug: str
    meta_description: str
    keyphrase: str
    outline: list[dict[str, object]]
    markdown: str
    html: str
    call_to_action: str
    links: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "title": self.title,
            "slug": self.slug,
            "meta_description": self.meta_description,
            "keyphrase": self.keyphrase,
            "outline": self.outline,
            "markdown": self.markdown,
            "html": self.html,
            "call_to_action": self.call_to_action,
            "links": self.links,
        }


def seed_for(*parts: str) -> int:
    return int.from_bytes(hashlib.sha256("\x1f".join(parts).encode()).digest()[:8], "big")


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:] if text else text


def render_html(markdown: str) -> str:
    """Markdown to HTML; raw HTML in the source is escaped, never passed through."""
    return _MARKDOWN.render(markdown)


class _Composer:
    """Draws unused sentences from pools, filled with the facts; tracks the keyphrase's share."""

    def __init__(self, facts: ProductFacts, keyphrase: str, topic: str, rng: random.Random):
        self.facts = facts
        self.keyphrase = keyphrase.strip()
        self.topic = topic.strip()
        self.rng = rng
        self.used: set[str] = set()
        self.words = 0
        self.keyphrase_uses = 0
        self.sentences = 0
        self.transitions = 0
        self.transition_pool = list(_TRANSITIONS)
        rng.shuffle(self.transition_pool)

    def fill(self, template: str, **extra: str) -> str:
        facts = self.facts
        vp = self.rng.choice(facts.value_propositions) if facts.value_propositions else "grow"
        values = {
            "kp": self.keyphrase,
            "kp_cap": _cap(self.keyphrase),
            "topic": self.topic,
            "product": facts.product_name,
            "audience": facts.audience,
            "vp": vp,
            "n": "5",
        } | extra
        return template.format(**values)

    def _acceptable(self, sentence: str) -> bool:
        return (
            sentence not in self.used and contains_banned(sentence, self.facts.banned_words) is None
        )

    def draw(self, pool: tuple[str, ...] | list[str], count: int, **extra: str) -> list[str]:
        """Up to ``count`` unused sentences from ``pool``; favours keyphrase sentences while
        the keyphrase is under about 1.2 % of the words, avoids them above 2 %."""
        candidates = list(pool)
        self.rng.shuffle(candidates)
        out: list[str] = []
        for _ in range(count):
            share = 100 * self.keyphrase_uses / max(self.words, 1)
            want_keyphrase = share < 1.2
            avoid_keyphrase = share > 2.0
            ranked = sorted(
                candidates,
                key=lambda t: (
                    ("{kp" in t) != want_keyphrase if (want_keyphrase or avoid_keyphrase) else 0
                ),
            )
            chosen = None
            for template in ranked:
                sentence = self.fill(template, **extra)
                if self._acceptable(sentence):
                    chosen = (template, sentence)
                    break
            if chosen is None:
                break
            candidates.remove(chosen[0])
            out.append(self._finish(chosen[1]))
        return out

    def _finish(self, sentence: str) -> str:
        self.used.add(sentence)
        # About every third sentence opens with a transition, which Yoast looks for in 30 %+.
        starts_with_name = sentence.startswith(self.facts.product_name)
        if (
            self.sentences >= 1
            and self.transitions * 100 < 38 * (self.sentences + 1)
            and not starts_with_name
            and self.transition_pool
        ):
            opener = self.transition_pool.pop(0)
            self.transition_pool.append(opener)
            # Names keep their capital after the opener; ordinary words lose it.
            names = [f.name for f in self.facts.features]
            if any(sentence.startswith(name) for name in names) or sentence[:2].isupper():
                body = sentence
            else:
                body = sentence[:1].lower() + sentence[1:]
            sentence = f"{opener} {body}"
            self.transitions += 1
        self.sentences += 1
        self.words += len(sentence.split())
        self.keyphrase_uses += sentence.lower().count(self.keyphrase.lower())
        return sentence


def _paragraphs(sentences: list[str], rng: random.Random) -> list[str]:
    """Sentences grouped into paragraphs of two to four."""
    out: list[str] = []
    i = 0
    while i < len(sentences):
        size = rng.choice((2, 3, 3, 4))
        out.append(" ".join(sentences[i : i + size]))
        i += size
    return out


def _words(paragraphs: list[str]) -> int:
    return sum(len(p.split()) for p in paragraphs)


def _pick_fitting(
    composer: _Composer, templates: tuple[str, ...], low: int, high: int, measure: object
) -> str:
    """The first template (in seeded order) whose filled text measures within [low, high];
    else the one closest to the range."""
    order = list(templates)
    composer.rng.shuffle(order)
    best: tuple[float, str] | None = None
    for template in order:
        text = composer.fill(template)
        value = measure(text)  # type: ignore[operator]
        if low <= value <= high:
            return text
        distance = min(abs(value - low), abs(value - high))
        if best is None or distance < best[0]:
            best = (distance, text)
    assert best is not None
    return best[1]


def write_blog(
    facts: ProductFacts,
    *,
    topic: str,
    keyphrase: str,
    target_words: int = 1000,
    seed: int = 0,
) -> BlogPost:
    """A post of about ``target_words`` words (800–2,000) on ``topic`` around ``keyphrase``."""

    target_words = max(MIN_WORDS, min(MAX_WORDS, target_words))
    rng = random.Random(seed_for(str(seed), topic, keyphrase, facts.product_name))
    composer = _Composer(facts, keyphrase, topic, rng)
    features = list(facts.features)
    rng.shuffle(features)
    features = features[:3]

    title = _pick_fitting(composer, _TITLES, 420, 590, title_width)
    meta = _pick_fitting(composer, _METAS, 120, 156, len)
    if len(meta) > 156:
        meta = meta[:155].rsplit(" ", 1)[0].rstrip(",:;") + "…"
    slug = slugify(keyphrase + " guide") if len(slugify(title)) > 60 else slugify(title)

    # The draws keep their order (the same seed writes the same post): the plan's shuffle, the
    # introduction, the sections, the top-up, the questions, the close.
    plan = _section_plan(facts, keyphrase, features, rng)
    total_weight = sum(w for *_, w in plan) + 1.2  # + introduction and conclusion
    blocks = _introduction(composer, target_words * 0.6 / total_weight, rng)
    outline: list[dict[str, object]] = []
    links_used: list[dict[str, str]] = []
    for index, (level, heading, pools, weight) in enumerate(plan):
        blocks.append(f"{'#' * level} {heading}")
        outline.append({"level": level, "heading": heading})
        blocks.extend(
            _section(
                composer,
                facts,
                heading,
                pools,
                target_words * weight / total_weight,
                # The internal link in the second section, the external one in the last but one.
                link_kind={1: "internal", len(plan) - 2: "external"}.get(index),
                links_used=links_used,
            )
        )
    _top_up(composer, blocks, target_words)
    _answer_questions(composer, blocks, outline, keyphrase, target_words)

    blocks.append(f"## Getting started with {keyphrase}")
    outline.append({"level": 2, "heading": f"Getting started with {keyphrase}"})
    blocks.extend(_paragraphs(composer.draw(_CLOSING, 3), rng))
    call_to_action = _call_to_action(facts, keyphrase, links_used)
    blocks.append(call_to_action)

    markdown = f"# {title}\n\n" + "\n\n".join(blocks) + "\n"
    return BlogPost(
        title=title,
        slug=slug,
        meta_description=meta,
        keyphrase=keyphrase,
        outline=outline,
        markdown=markdown,
        html=render_html(markdown),
        call_to_action=call_to_action,
        links=links_used,
    )


_Pools = list[tuple[tuple[str, ...], dict[str, str]]]


def _section_plan(
    facts: ProductFacts, keyphrase: str, features: list[Feature], rng: random.Random
) -> list[tuple[int, str, _Pools, float]]:
    """(level, heading, sentence pools, weight) per section; the weights share the target out."""
    step_headings = list(_STEP_HEADINGS[1:])
    rng.shuffle(step_headings)
    step_headings = [_STEP_HEADINGS[0], *sorted(step_headings[:2], key=_STEP_HEADINGS.index)]
    plan: list[tuple[int, str, _Pools, float]] = [
        (2, f"Why {keyphrase} matters for {facts.audience}", [(_WHY, {}), (_GENERAL, {})], 1.2),
        (
            2,
            f"How {facts.product_name} helps with {keyphrase}",
            [(_HOW_INTRO, {}), (_VALUE, {})],
            1.0,
        ),
    ]
    for feature in features:
        plan.append((3, _cap(feature.name), [(_FEATURE, _feature_fill(feature))], 0.6))
    plan.append((2, "A practical plan in three steps", [(_GENERAL, {})], 0.5))
    for n, heading in enumerate(step_headings, start=1):
        plan.append((3, heading.format(n=n, kp=keyphrase), [(_STEP, {}), (_GENERAL, {})], 0.8))
    plan.append((2, "Mistakes to avoid", [(_MISTAKES, {}), (_GENERAL, {})], 0.9))
    plan.append(
        (2, f"Results to expect from work on {keyphrase}", [(_RESULTS, {}), (_WHY, {})], 0.7)
    )
    return plan


def _introduction(composer: _Composer, budget: float, rng: random.Random) -> list[str]:
    """The opening sentence (naming the topic and the keyphrase), then about ``budget`` words."""
    intro_first = composer.fill(
        "This guide covers {topic}: what {kp} means for {audience}, where it goes wrong and "
        "how to act on it step by step."
    )
    composer.used.add(intro_first)
    composer.sentences += 1
    composer.words += len(intro_first.split())
    composer.keyphrase_uses += 1
    intro_sentences = [intro_first, *composer.draw(_GENERAL, 2)]
    return [
        " ".join(intro_sentences),
        *_paragraphs(composer.draw(_WHY, max(2, int(budget / 14) - 3)), rng),
    ]


def _section(
    composer: _Composer,
    facts: ProductFacts,
    heading: str,
    pools: _Pools,
    budget: float,
    link_kind: str | None,
    links_used: list[dict[str, str]],
) -> list[str]:
    """A section's paragraphs: about ``budget`` words from its pools, the proof points in the
    results section, and the tenant's first link of ``link_kind`` (recorded in ``links_used``)."""
    sentences: list[str] = []
    for pool, extra in pools:
        need = max(2, round(budget / 14)) - len(sentences)
        if need <= 0:
            break
        sentences.extend(composer.draw(pool, need, **extra))
    proofs = [p for p in facts.proof_points if contains_banned(p, facts.banned_words) is None]
    if heading.startswith("Results") and proofs:
        sentences[1:1] = [p.strip().rstrip(".") + "." for p in proofs[:3]]
    paragraphs = _paragraphs(sentences, composer.rng)
    links = facts.links_of(link_kind) if link_kind else []
    if links:
        template = {
            "internal": "For a closer look, read [{title}]({url}).",
            "external": "For outside research, see [{title}]({url}).",
        }[link_kind or ""]
        paragraphs.append(_link_sentence(links[0], template))
        links_used.append({"kind": link_kind or "", "title": links[0].title, "url": links[0].url})
    return paragraphs


def _top_up(composer: _Composer, blocks: list[str], target_words: int) -> None:
    """Sentences from the general pool toward the target, spread over the step sections."""
    current = _words([b for b in blocks if not b.startswith("#")])
    if current >= target_words:
        return
    extra_sentences = composer.draw(_GENERAL, max(0, round((target_words - current) / 13)))
    extra_paragraphs = _paragraphs(extra_sentences, composer.rng)
    step_positions = [i for i, b in enumerate(blocks) if b.startswith("### Step")]
    for n, paragraph in enumerate(extra_paragraphs):
        if not step_positions:
            blocks.append(paragraph)
            continue
        position = step_positions[n % len(step_positions)] + 1
        blocks.insert(position, paragraph)
        step_positions = [p + 1 if p >= position else p for p in step_positions]


def _answer_questions(
    composer: _Composer,
    blocks: list[str],
    outline: list[dict[str, object]],
    keyphrase: str,
    target_words: int,
) -> None:
    """Long posts answer common questions, each under its own subheading, until the target."""
    if _words([b for b in blocks if not b.startswith("#")]) >= target_words - 60:
        return
    blocks.append(f"## Questions teams ask about {keyphrase}")
    outline.append({"level": 2, "heading": f"Questions teams ask about {keyphrase}"})
    for question, answers in _QUESTIONS:
        if _words([b for b in blocks if not b.startswith("#")]) >= target_words - 60:
            break
        blocks.append(f"### {question}")
        outline.append({"level": 3, "heading": question})
        answer = composer.draw(answers, len(answers))
        answer += composer.draw(_GENERAL, 2)
        blocks.extend(_paragraphs(answer, composer.rng))


def _call_to_action(facts: ProductFacts, keyphrase: str, links_used: list[dict[str, str]]) -> str:
    """The closing call to action, linked to the tenant's CTA link when it has one."""
    cta_link = facts.cta_link()
    verb = {"professional": "Book a demo of", "bold": "Start now with"}.get(facts.tone, "Try")
    cta_text = f"{verb} {facts.product_name}"
    if cta_link is None:
        return f"**{cta_text}** and see the difference in {keyphrase}."
    links_used.append({"kind": "cta", "title": cta_link.title, "url": cta_link.url})
    return f"**[{cta_text}]({cta_link.url})** and see the difference in {keyphrase}."


def _feature_fill(feature: Feature) -> dict[str, str]:
    return {"feature": feature.name, "does": feature.does.rstrip(".")}


def _link_sentence(link: Link, template: str) -> str:
    title = link.title.replace("[", "").replace("]", "")
    return template.format(title=title, url=link.url.replace(")", "%29").replace(" ", "%20"))
