"""False positives and negatives per scanner on the labelled set.

The counts are printed (run with ``-s`` to quote them) and must not exceed the
values measured when the set was written, so a regression fails the build.
"""

from __future__ import annotations

import pytest

from crp_gateway.governance.scanners.fabrication import scan_fabrication
from crp_gateway.governance.scanners.injection import scan_injection
from crp_gateway.governance.scanners.pii import find_pii
from crp_gateway.governance.scanners.repetition import scan_repetition
from crp_gateway.governance.scanners.secrets import find_secrets

from .labelled import ALL, Example

# Measured on the set as committed: (false positives, false negatives). The
# non-zero entries are the "known limits" examples of labelled.py. The set was
# written together with the patterns, so these are in-sample figures.
BASELINE = {
    "injection": (1, 2),
    "pii": (0, 1),
    "secrets": (0, 0),
    "fabrication": (1, 0),
    "repetition": (0, 0),
}


def _found(example: Example) -> set[str]:
    if example.scanner == "injection":
        return {f.kind for f in scan_injection([example.text]).findings}
    if example.scanner == "pii":
        return {f.kind for f in find_pii(example.text)}
    if example.scanner == "secrets":
        return {f.kind for f in find_secrets(example.text)}
    if example.scanner == "fabrication":
        return set(scan_fabrication(example.text, example.context).kinds)
    level = scan_repetition(example.text).level
    return set() if level == "NONE" else {level.value}


def _errors(scanner: str) -> tuple[int, int, list[str]]:
    false_pos = false_neg = 0
    notes = []
    for example in (e for e in ALL if e.scanner == scanner):
        found = _found(example)
        expected = None if example.expected == "NONE" else example.expected
        if expected is None and found:
            false_pos += 1
            notes.append(f"FP {sorted(found)}: {example.text[:60]!r}")
        elif expected is not None and expected not in found:
            false_neg += 1
            notes.append(f"FN {expected}: {example.text[:60]!r}")
    return false_pos, false_neg, notes


def test_set_is_large_enough() -> None:
    assert len(ALL) >= 60
    assert {e.scanner for e in ALL} == set(BASELINE)


@pytest.mark.parametrize("scanner", sorted(BASELINE))
def test_errors_stay_at_or_below_baseline(scanner: str) -> None:
    false_pos, false_neg, notes = _errors(scanner)
    total = sum(1 for e in ALL if e.scanner == scanner)
    report = [f"{scanner}: n={total} FP={false_pos} FN={false_neg}"]
    report += ["  " + note for note in notes]
    print("\n".join(report))  # noqa: T201 - the counts are meant to be quoted (-s)
    max_fp, max_fn = BASELINE[scanner]
    assert false_pos <= max_fp, notes
    assert false_neg <= max_fn, notes
