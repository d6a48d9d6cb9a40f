"""Offline content generation and its analysis, timed in-process.

Two figures, each over many different posts (a new seed per run, and a cold syllable cache for
each post, so no run benefits from the previous post's words):

* generation: the offline writer's blog post plus the full SEO/readability analysis, at the
  default 1,000-word target (the issue's budget: p99 ≤ 50 ms);
* analysis alone of a 2,000-word post (budget: p99 ≤ 10 ms).

Each run is timed twice: wall time (what a caller waits, inflated when the machine is shared)
and the thread's CPU time (what the work itself costs, which a busy machine barely moves). The
budgets are judged on both; the load average is printed beside them.

It also reports the posts' word counts and how many Yoast checks they pass, so a faster writer
cannot hide a worse one.

    .venv/bin/python benchmarks/content.py [--runs 300] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

from aethercrown.content import analysis
from aethercrown.content.facts import Feature, Link, ProductFacts
from aethercrown.content.writer import write_blog

FACTS = ProductFacts(
    product_name="Acme Recover",
    audience="finance teams at subscription businesses",
    value_propositions=("recover failed payments automatically", "keep more of what they earn"),
    features=(
        Feature("Smart retries", "retries failed cards at the hour most likely to work"),
        Feature("Dunning emails", "sends friendly reminders before a card expires"),
        Feature("Churn alerts", "flags accounts whose payments keep failing"),
    ),
    proof_points=("Customers recover 38 % of failed payments in their first quarter",),
    links=(
        Link("our retry playbook", "https://acme.example/playbook", "internal"),
        Link("a guide to card declines", "https://cards.example/declines", "external"),
        Link("Start a free trial", "https://acme.example/trial", "cta"),
    ),
)
TOPICS = (
    ("how to reduce involuntary churn", "involuntary churn"),
    ("recovering failed card payments", "failed payments"),
    ("writing dunning emails that work", "dunning emails"),
    ("forecasting subscription revenue", "revenue forecasting"),
)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(name: str, millis: list[float], budget: float) -> None:
    p99 = percentile(millis, 0.99)
    verdict = "within" if p99 <= budget else "OVER"
    print(
        f"{name:38} median {statistics.median(millis):6.2f} ms  p95 {percentile(millis, 0.95):6.2f}"
        f" ms  p99 {p99:6.2f} ms  max {max(millis):6.2f} ms  ({verdict} the {budget:.0f} ms budget)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument(
        "--json", action="store_true", help="also each post's word count and checks passed"
    )
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; {args.runs} runs each")

    # Warm the imports and pyphen's dictionary once; every timed run starts with a cold cache.
    write_blog(FACTS, topic="warm up", keyphrase="warm up")

    generation: list[float] = []
    generation_cpu: list[float] = []
    words: list[int] = []
    good: list[int] = []
    for run in range(args.runs):
        topic, keyphrase = TOPICS[run % len(TOPICS)]
        analysis.clear_syllable_cache()
        started, started_cpu = time.perf_counter(), time.thread_time()
        post = write_blog(FACTS, topic=topic, keyphrase=keyphrase, target_words=1000, seed=run)
        result = analysis.analyse(
            title=post.title,
            slug=post.slug,
            meta_description=post.meta_description,
            keyphrase=post.keyphrase,
            markdown=post.markdown,
        )
        generation.append((time.perf_counter() - started) * 1000)
        generation_cpu.append((time.thread_time() - started_cpu) * 1000)
        words.append(result.word_count)
        checks = result.seo + result.readability
        good.append(sum(1 for c in checks if c.status == "good"))

    posts = []
    for run in range(args.runs):
        topic, keyphrase = TOPICS[run % len(TOPICS)]
        posts.append(
            write_blog(FACTS, topic=topic, keyphrase=keyphrase, target_words=2000, seed=run)
        )
    analysis_only: list[float] = []
    analysis_cpu: list[float] = []
    long_words: list[int] = []
    for post in posts:
        analysis.clear_syllable_cache()
        started, started_cpu = time.perf_counter(), time.thread_time()
        result = analysis.analyse(
            title=post.title,
            slug=post.slug,
            meta_description=post.meta_description,
            keyphrase=post.keyphrase,
            markdown=post.markdown,
        )
        analysis_only.append((time.perf_counter() - started) * 1000)
        analysis_cpu.append((time.thread_time() - started_cpu) * 1000)
        long_words.append(result.word_count)

    summary("blog (1,000 words) + analysis, wall", generation, 50)
    summary("blog (1,000 words) + analysis, CPU", generation_cpu, 50)
    summary("analysis alone (2,000-word), wall", analysis_only, 10)
    summary("analysis alone (2,000-word), CPU", analysis_cpu, 10)
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    print(
        f"1,000-word posts: {min(words)}–{max(words)} words; Yoast checks good: "
        f"{min(good)}–{max(good)} of {len(checks)}"
    )
    print(f"2,000-word posts: {min(long_words)}–{max(long_words)} words")
    if args.json:
        print(json.dumps({"words": words, "checks_good": good, "long_words": long_words}))


if __name__ == "__main__":
    main()
