"""Value types shared by every scanner.

A :class:`Finding` names *what* was found and *where*, never the matched text: the
kind is a fixed identifier from a scanner's published vocabulary and the span is a
pair of offsets into the caller's own string. Nothing in here can carry a secret,
a personal datum or attacker-chosen text into a log line, an audit record or a
header.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Finding:
    """One detection.

    Attributes:
        kind: identifier from the scanner's vocabulary (``"email"``, ``"override"``).
        start: offset of the first character in ``texts[text_index]``.
        end: offset just past the last character (``text[start:end]``).
        text_index: which of the scanned texts the span points into.
        encoding: ``"base64"``, ``"hex"`` or ``"url"`` when the match was inside a
            decoded payload; the span then covers the whole encoded blob.
    """

    kind: str
    start: int
    end: int
    text_index: int = 0
    encoding: str | None = None


def kinds_of(findings: Iterable[Finding]) -> tuple[str, ...]:
    """The distinct kinds in ``findings``, sorted, for stable output."""
    return tuple(sorted({finding.kind for finding in findings}))


def drop_overlaps(findings: Iterable[Finding]) -> tuple[Finding, ...]:
    """Keep findings in priority order, dropping any that overlap a kept one.

    The caller lists findings most trustworthy first (a checksummed IBAN before a
    card number found inside it); the result is sorted by position. Kept spans
    never overlap, so one bisection per finding decides it.
    """
    starts: dict[int, list[int]] = {}
    ends: dict[int, list[int]] = {}
    kept: list[Finding] = []
    for finding in findings:
        text_starts = starts.setdefault(finding.text_index, [])
        text_ends = ends.setdefault(finding.text_index, [])
        at = bisect.bisect_left(text_starts, finding.end)
        if at and text_ends[at - 1] > finding.start:
            continue
        text_starts.insert(at, finding.start)
        text_ends.insert(at, finding.end)
        kept.append(finding)
    return tuple(sorted(kept, key=lambda f: (f.text_index, f.start, f.end)))
