"""The pure modules: score terms, dependency graph checks and bottleneck rules."""

from __future__ import annotations

import pytest

from aethercrown.tasks import graph, scoring, stats


def test_score_terms() -> None:
    assert scoring.terms(3, 600, 2, 90).total == pytest.approx(300 + 1.5 + 20 + 20)
    assert scoring.duration_term(3600) == 0  # long tasks get nothing, never negative
    assert scoring.dependency_term(9) == scoring.DEPENDENCY_CAP
    assert scoring.age_term(-5) == 0
    assert [scoring.backoff_seconds(a) for a in (1, 2, 3, 20)] == [30, 60, 120, 3600]


def test_graph_checks() -> None:
    assert graph.unknown_dependencies({"a": ["b", "x"], "b": []}, {"s"}) == [("a", 1, "x")]
    assert graph.find_cycle({"a": ["b"], "b": ["c"], "c": []}) is None
    assert graph.find_cycle({"a": ["b"], "b": ["c"], "c": ["a"]}) == ["a", "b", "c", "a"]
    # Stored tasks are outside the new graph and cannot close a cycle.
    assert graph.find_cycle({"a": ["stored"]}) is None
    chain = {f"n{i}": [f"n{i + 1}"] for i in range(5000)} | {"n5000": ["n0"]}
    cycle = graph.find_cycle(chain)
    assert cycle is not None and len(cycle) == 5002


@pytest.mark.parametrize(
    ("kwargs", "rules"),
    [
        ({"queue_length": 10, "workers": 2}, set()),  # exactly 5 × workers: not above
        ({"queue_length": 11, "workers": 2}, {"queue_length"}),
        ({"queue_length": 1, "workers": 0}, {"queue_length"}),
        ({"utilisation": 0.5}, set()),
        ({"utilisation": 0.49}, {"worker_utilisation"}),
        ({"failure_rate": 0.10}, set()),
        ({"failure_rate": 0.11}, {"failure_rate"}),
        ({"blocked_share": 0.30}, set()),
        ({"blocked_share": 0.31}, {"blocked_by_dependencies"}),
    ],
)
def test_bottleneck_thresholds(kwargs: dict[str, float], rules: set[str]) -> None:
    values: dict[str, float | None] = {
        "queue_length": 0,
        "workers": 1,
        "utilisation": None,
        "failure_rate": None,
        "blocked_share": None,
        **kwargs,
    }
    found = stats.bottlenecks(**values)  # type: ignore[arg-type]
    assert {b.rule for b in found} == rules
    assert all(b.action and b.detail for b in found)
