from __future__ import annotations

import itertools

import pytest

from crp_gateway.governance.scanners.repetition import RepetitionLevel
from crp_gateway.governance.scanners.risk import (
    RiskLevel,
    RiskSignals,
    assess_risk,
    level_for,
)

LEVELS = list(RepetitionLevel)
GRID = [
    RiskSignals(fab, rep, inj, sec)
    for fab, rep, inj, sec in itertools.product(range(6), LEVELS, range(4), range(2))
]


def test_no_signal_is_zero_and_low() -> None:
    risk = assess_risk(RiskSignals())
    assert (risk.score, risk.level, risk.header_score) == (0.0, RiskLevel.LOW, "0.00")
    assert risk.method == "crp-gw.risk/1"


@pytest.mark.parametrize("signals", GRID[:: max(1, len(GRID) // 40)])
def test_score_is_a_fraction(signals: RiskSignals) -> None:
    assert 0.0 <= assess_risk(signals).score <= 1.0


def _raise_each(signals: RiskSignals) -> list[RiskSignals]:
    bumped = [
        RiskSignals(
            signals.fabrications + 1,
            signals.repetition,
            signals.injection_families,
            signals.output_secrets,
        ),
        RiskSignals(
            signals.fabrications,
            signals.repetition,
            signals.injection_families + 1,
            signals.output_secrets,
        ),
        RiskSignals(
            signals.fabrications,
            signals.repetition,
            signals.injection_families,
            signals.output_secrets + 1,
        ),
    ]
    rank = signals.repetition.rank
    if rank + 1 < len(LEVELS):
        bumped.append(
            RiskSignals(
                signals.fabrications,
                LEVELS[rank + 1],
                signals.injection_families,
                signals.output_secrets,
            )
        )
    return bumped


def test_score_and_level_never_decrease_when_a_signal_grows() -> None:
    order = list(RiskLevel)
    for signals in GRID:
        base = assess_risk(signals)
        for stronger in _raise_each(signals):
            higher = assess_risk(stronger)
            assert higher.score >= base.score, (signals, stronger)
            assert order.index(higher.level) >= order.index(base.level)


def test_reference_points() -> None:
    assert assess_risk(RiskSignals(fabrications=1)).level is RiskLevel.LOW
    assert assess_risk(RiskSignals(fabrications=3)).level is RiskLevel.MEDIUM
    assert (
        assess_risk(RiskSignals(repetition=RepetitionLevel.SEVERE)).level
        is RiskLevel.HIGH
    )
    assert assess_risk(RiskSignals(injection_families=1)).level is RiskLevel.MEDIUM
    everything = RiskSignals(10, RepetitionLevel.SEVERE, 3, 1)
    assert assess_risk(everything).level is RiskLevel.CRITICAL


@pytest.mark.parametrize(
    ("score", "level"),
    [
        (0.19, "LOW"),
        (0.20, "MEDIUM"),
        (0.44, "MEDIUM"),
        (0.45, "HIGH"),
        (0.69, "HIGH"),
        (0.70, "CRITICAL"),
    ],
)
def test_crp_thresholds(score: float, level: str) -> None:
    assert level_for(score) == level


def test_contributions_are_reported_per_signal() -> None:
    risk = assess_risk(RiskSignals(fabrications=2, output_secrets=1))
    contributions = dict(risk.contributions)
    assert set(contributions) == {
        "fabrication",
        "repetition",
        "injection",
        "output_secret",
    }
    assert contributions["output_secret"] == 0.5
    assert contributions["fabrication"] == round(0.6 * (1 - 0.7**2), 4)
