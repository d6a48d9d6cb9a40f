"""GrowthBook SDK test vectors (cases.json of the SDKs: hash, getBucketRange, chooseVariation)."""

from __future__ import annotations

import pytest

from aethercrown.experiments.stats.hashing import (
    assign,
    bucket_ranges,
    choose_variation,
    fnv1a32,
    gb_hash,
)

# [seed, value, version, expected]
HASH_VECTORS = [
    ("", "a", 1, 0.22),
    ("", "b", 1, 0.077),
    ("b", "a", 1, 0.946),
    ("ef", "d", 1, 0.652),
    ("asdf", "8952klfjas09ujk", 1, 0.549),
    ("", "123", 1, 0.011),
    ("", '___)((*":&', 1, 0.563),
    ("seed", "a", 2, 0.0505),
    ("seed", "b", 2, 0.2696),
    ("foo", "ab", 2, 0.2575),
    ("foo", "def", 2, 0.2019),
    ("89123klj", "8952klfjas09ujkasdf", 2, 0.124),
    ("90850943850283058242805", "123", 2, 0.7516),
    ("()**(%$##$%#$#", '___)((*":&', 2, 0.0128),
]

BUCKET_RANGE_VECTORS = [
    ((2, 1, None), [(0, 0.5), (0.5, 1)]),
    ((2, 0.5, None), [(0, 0.25), (0.5, 0.75)]),
    ((2, 0, None), [(0, 0), (0.5, 0.5)]),
    ((4, 1, None), [(0, 0.25), (0.25, 0.5), (0.5, 0.75), (0.75, 1)]),
    ((2, 1, [0.4, 0.6]), [(0, 0.4), (0.4, 1)]),
    ((3, 1, [0.2, 0.3, 0.5]), [(0, 0.2), (0.2, 0.5), (0.5, 1)]),
    ((3, 0.2, [0.2, 0.3, 0.5]), [(0, 0.04), (0.2, 0.26), (0.5, 0.6)]),
    ((2, -0.2, None), [(0, 0), (0.5, 0.5)]),
    ((2, 1.5, None), [(0, 0.5), (0.5, 1)]),
    ((2, 1, [0.4, 0.1]), [(0, 0.5), (0.5, 1)]),
    ((2, 1, [0.7, 0.6]), [(0, 0.5), (0.5, 1)]),
    ((4, 1, [0.4, 0.4, 0.2]), [(0, 0.25), (0.25, 0.5), (0.5, 0.75), (0.75, 1)]),
    ((2, 1, [0.4, 0.5999]), [(0, 0.4), (0.4, 0.9999)]),
]


@pytest.mark.parametrize(("seed", "value", "version", "expected"), HASH_VECTORS)
def test_hash_matches_growthbook_sdk_vectors(
    seed: str, value: str, version: int, expected: float
) -> None:
    assert gb_hash(seed, value, version) == pytest.approx(expected, abs=1e-12)


def test_fnv1a_reference_values() -> None:
    assert fnv1a32("") == 0x811C9DC5
    assert fnv1a32("a") == 0xE40C292C
    assert fnv1a32("foobar") == 0xBF9CF968


@pytest.mark.parametrize(("args", "expected"), BUCKET_RANGE_VECTORS)
def test_bucket_ranges_match_growthbook_sdk_vectors(
    args: tuple[int, float, list[float] | None], expected: list[tuple[float, float]]
) -> None:
    ranges = bucket_ranges(*args)
    assert len(ranges) == len(expected)
    for (start, end), (want_start, want_end) in zip(ranges, expected, strict=True):
        assert start == pytest.approx(want_start, abs=1e-9)
        assert end == pytest.approx(want_end, abs=1e-9)


def test_choose_variation_vectors() -> None:
    even = [(0.0, 0.5), (0.5, 1.0)]
    assert [choose_variation(n, even) for n in (0.2, 0.4, 0.6, 0.8, 0.0, 0.5)] == [0, 0, 1, 1, 0, 1]
    reduced = [(0.0, 0.25), (0.5, 0.75)]
    assert [choose_variation(n, reduced) for n in (0.2, 0.3, 0.7, 0.9)] == [0, -1, 1, -1]


def test_assignment_is_deterministic_and_respects_weights() -> None:
    users = [f"user-{i}" for i in range(20_000)]
    first = [assign("exp-seed", u, [0.2, 0.8]) for u in users]
    assert first == [assign("exp-seed", u, [0.2, 0.8]) for u in users]
    share = sum(1 for v in first if v == 0) / len(users)
    assert 0.19 < share < 0.21
