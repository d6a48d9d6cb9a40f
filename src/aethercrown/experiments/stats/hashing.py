"""Deterministic bucketing compatible with the GrowthBook SDKs (hash versions 1 and 2).

A user lands in the same variant in every process, and in the same one a GrowthBook SDK would put
them in for the same seed, weights and coverage: the SDKs' published test vectors are in the tests.
"""

from __future__ import annotations

from collections.abc import Sequence

_FNV_OFFSET = 0x811C9DC5
_FNV_PRIME = 0x01000193
_MASK32 = 0xFFFFFFFF


def fnv1a32(text: str) -> int:
    """32-bit FNV-1a over the UTF-16 code units' low bytes, as the JavaScript SDK computes it."""
    value = _FNV_OFFSET
    # The reference SDK hashes charCodeAt(i) (a UTF-16 unit) xor-ed into the state; for ASCII this
    # is the byte itself. Other SDKs follow JavaScript, so do we.
    for unit in _utf16_units(text):
        value ^= unit
        value = (value * _FNV_PRIME) & _MASK32
    return value


def _utf16_units(text: str) -> list[int]:
    data = text.encode("utf-16-le", errors="surrogatepass")
    return [data[i] | (data[i + 1] << 8) for i in range(0, len(data), 2)]


def gb_hash(seed: str, value: str, version: int = 2) -> float:
    """A number in [0, 1) for (seed, value): version 2 re-hashes to fix v1's poor spread."""
    if version == 2:
        inner = fnv1a32(seed + value)
        return (fnv1a32(str(inner)) % 10000) / 10000
    if version == 1:
        return (fnv1a32(value + seed) % 1000) / 1000
    raise ValueError(f"unknown hash version {version}")


def bucket_ranges(
    num_variations: int, coverage: float = 1.0, weights: Sequence[float] | None = None
) -> list[tuple[float, float]]:
    """Each variant's [start, end) slice of the unit interval, as the SDKs compute it.

    Coverage is clamped to [0, 1]; weights of the wrong length or not summing to 1 (± 0.01) fall
    back to equal weights, as the SDKs do.
    """
    coverage = min(max(coverage, 0.0), 1.0)
    equal = [1.0 / num_variations] * num_variations
    chosen = list(weights) if weights is not None else equal
    if len(chosen) != num_variations or not 0.99 <= sum(chosen) <= 1.01:
        chosen = equal
    ranges: list[tuple[float, float]] = []
    cumulative = 0.0
    for weight in chosen:
        start = cumulative
        cumulative += weight
        ranges.append((start, start + coverage * weight))
    return ranges


def choose_variation(n: float, ranges: Sequence[tuple[float, float]]) -> int:
    """The index of the range holding ``n``, or -1 when ``n`` falls outside the coverage."""
    for index, (start, end) in enumerate(ranges):
        if start <= n < end:
            return index
    return -1


def assign(
    seed: str,
    user_id: str,
    weights: Sequence[float],
    coverage: float = 1.0,
    version: int = 2,
) -> int:
    """The variant index for a user (-1 when outside the coverage)."""
    n = gb_hash(seed, user_id, version)
    return choose_variation(n, bucket_ranges(len(weights), coverage, weights))
