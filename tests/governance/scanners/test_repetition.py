from __future__ import annotations

import pytest

from crp_gateway.governance.scanners.repetition import (
    MIN_NGRAMS,
    RepetitionLevel,
    level_for,
    scan_repetition,
)

PROSE = (
    "Rivers shape valleys over long periods of time. Glaciers carve deeper "
    "troughs, leaving lakes behind when the ice retreats. Wind moves sand into "
    "dunes that migrate across deserts every year."
)


@pytest.mark.parametrize(
    ("value", "level"),
    [
        (0.0, "NONE"),
        (0.0999, "NONE"),
        (0.10, "MINOR"),
        (0.2499, "MINOR"),
        (0.25, "SIGNIFICANT"),
        (0.4999, "SIGNIFICANT"),
        (0.50, "SEVERE"),
        (1.0, "SEVERE"),
    ],
)
def test_published_thresholds(value: float, level: str) -> None:
    assert level_for(value) == level


def test_ratio_is_the_share_of_repeated_four_grams() -> None:
    text = " ".join(["a b c d"] * 5)  # 20 tokens, 17 four-grams, 4 distinct
    scan = scan_repetition(text)
    assert scan.ngrams == 17
    assert scan.ratio == round(1 - 4 / 17, 4)
    assert scan.level is RepetitionLevel.SEVERE


def test_fresh_prose_is_none() -> None:
    scan = scan_repetition(PROSE)
    assert scan.ratio == 0.0
    assert scan.level is RepetitionLevel.NONE
    assert scan.header_value == "NONE"


def test_short_answers_are_not_judged() -> None:
    assert scan_repetition("no no no no no no").level is RepetitionLevel.NONE
    assert scan_repetition("w " * (MIN_NGRAMS + 3)).level is RepetitionLevel.SEVERE


def test_cross_window_overlap() -> None:
    scan = scan_repetition(PROSE, previous_outputs=[PROSE])
    assert scan.overlap == 1.0
    assert scan.level is RepetitionLevel.SEVERE
    assert scan.header_value == "SEVERE; overlap=1.00"
    assert scan_repetition(PROSE, ["something else entirely"]).overlap == 0.0


def test_levels_are_ordered() -> None:
    ranks = [level.rank for level in RepetitionLevel]
    assert ranks == sorted(ranks) == [0, 1, 2, 3]
