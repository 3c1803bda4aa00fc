"""Repetition in model output, method ``crp-gw.repetition/1``.

Tokens are lower-cased runs of letters and digits (``\\w+``); the measures are
over word 4-grams:

* ``ratio`` (intra-answer): repeated 4-gram occurrences / all 4-gram
  occurrences, i.e. ``1 - distinct / total``. A 4-gram seen three times adds two
  repeats. 0.0 for an answer with fewer than :data:`MIN_NGRAMS` 4-grams.
* ``overlap`` (cross-window, the SPEC-005 measure): the share of this answer's
  distinct 4-grams that occur in the earlier answers of the session, or ``None``
  when there are none (first window).

The level comes from the larger of the two, against the published thresholds
(``NONE`` < 0.10 <= ``MINOR`` < 0.25 <= ``SIGNIFICANT`` < 0.50 <= ``SEVERE``).
A level above ``NONE`` on the first window is our addition: SPEC-005 defines
only the cross-window half, so the intra-answer ratio catches degenerate loops
that its first window cannot. It is lexical only: paraphrased repetition (the
semantic half of SPEC-005) is not detected, and code or tables with many
similar lines score higher than prose.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

METHOD_ID = "crp-gw.repetition/1"
METHOD_VERSION = "1.0.0"

N = 4
MIN_NGRAMS = 10
THRESHOLDS: tuple[tuple[float, str], ...] = (
    (0.50, "SEVERE"),
    (0.25, "SIGNIFICANT"),
    (0.10, "MINOR"),
)

_TOKEN = re.compile(r"\w+")


class RepetitionLevel(StrEnum):
    """``CRP-Quality-Repetition`` values, in increasing severity."""

    NONE = "NONE"
    MINOR = "MINOR"
    SIGNIFICANT = "SIGNIFICANT"
    SEVERE = "SEVERE"

    @property
    def rank(self) -> int:
        return _RANKS[self]


_RANKS: MappingProxyType[RepetitionLevel, int] = MappingProxyType(
    {level: rank for rank, level in enumerate(RepetitionLevel)}
)


@dataclass(frozen=True, slots=True)
class RepetitionScan:
    """The two measures and the level they give."""

    ratio: float
    overlap: float | None
    level: RepetitionLevel
    ngrams: int

    @property
    def header_value(self) -> str:
        """``LEVEL[; overlap=f]`` as ``CRP-Quality-Repetition`` carries it."""
        if self.overlap is None:
            return self.level.value
        return f"{self.level.value}; overlap={self.overlap:.2f}"


def ngrams(text: str) -> list[tuple[str, ...]]:
    tokens = _TOKEN.findall(text.lower())
    return list(zip(*(tokens[i:] for i in range(N)), strict=False))


def scan_repetition(
    output: str, previous_outputs: Sequence[str] = ()
) -> RepetitionScan:
    """Measure ``output`` alone and against ``previous_outputs``."""
    grams = ngrams(output)
    total = len(grams)
    distinct = set(grams)
    ratio = 1.0 - len(distinct) / total if total >= MIN_NGRAMS else 0.0
    overlap = _overlap(distinct, previous_outputs)
    return RepetitionScan(
        round(ratio, 4), overlap, level_for(max(ratio, overlap or 0.0)), total
    )


def _overlap(distinct: set[tuple[str, ...]], previous: Sequence[str]) -> float | None:
    if not previous:
        return None
    if len(distinct) < MIN_NGRAMS:
        return 0.0
    earlier: set[tuple[str, ...]] = set()
    for text in previous:
        earlier.update(ngrams(text))
    return round(len(distinct & earlier) / len(distinct), 4)


def level_for(value: float) -> RepetitionLevel:
    for threshold, level in THRESHOLDS:
        if value >= threshold:
            return RepetitionLevel(level)
    return RepetitionLevel.NONE


def describe() -> dict[str, object]:
    """The method entry for the well-known document."""
    return {
        "version": METHOD_VERSION,
        "description": (
            "Word 4-grams (lower-cased \\w+ tokens). ratio = 1 - distinct/total "
            "within the answer; overlap = share of the answer's distinct 4-grams "
            "found in earlier answers of the session. Level from max(ratio, "
            "overlap)."
        ),
        "n": N,
        "min_ngrams": MIN_NGRAMS,
        "thresholds": {level: threshold for threshold, level in THRESHOLDS},
    }
