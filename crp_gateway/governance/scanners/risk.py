"""Composite risk score, method ``crp-gw.risk/1``.

A documented heuristic for ``CRP-Safety-Hallucination-Score`` / ``-Risk`` on a
gateway without models (digest section 2.3, option b). It is **not** the DPE
score of SPEC-005 and must be published as this method id.

Each signal is first mapped to a strength ``s`` in [0, 1]:

* ``fabrication``: ``1 - 0.7 ** n`` for ``n`` fabrication candidates
  (``crp-gw.fabrication/1``), so one unsupported number is weak evidence and
  many are strong;
* ``repetition``: ``NONE`` 0, ``MINOR`` 0.25, ``SIGNIFICANT`` 0.6, ``SEVERE`` 1
  (``crp-gw.repetition/1``);
* ``injection``: ``1 - 0.5 ** f`` for ``f`` distinct injection families in the
  request (``crp-gw.injection/1``): a steered model is more likely to mislead;
* ``output_secret``: 1 when the answer contains a credential shape
  (``crp-gw.secrets/1``), else 0.

The score is a noisy-OR of the weighted strengths,
``score = 1 - prod(1 - w_i * s_i)``, rounded to two decimals; with every weight
below 1 it stays in [0, 1), and it never decreases when a signal grows. The
level uses the CRP thresholds: ``CRITICAL`` >= 0.70, ``HIGH`` >= 0.45,
``MEDIUM`` >= 0.20, else ``LOW``. Personal data is not a risk input: it has its
own header and policy directive (``block-pii``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from .repetition import RepetitionLevel

METHOD_ID = "crp-gw.risk/1"
METHOD_VERSION = "1.0.0"

WEIGHTS: MappingProxyType[str, float] = MappingProxyType(
    {"fabrication": 0.60, "repetition": 0.50, "injection": 0.60, "output_secret": 0.50}
)
FABRICATION_DECAY = 0.7
INJECTION_DECAY = 0.5
REPETITION_STRENGTH: MappingProxyType[RepetitionLevel, float] = MappingProxyType(
    {
        RepetitionLevel.NONE: 0.0,
        RepetitionLevel.MINOR: 0.25,
        RepetitionLevel.SIGNIFICANT: 0.6,
        RepetitionLevel.SEVERE: 1.0,
    }
)
THRESHOLDS: tuple[tuple[float, str], ...] = (
    (0.70, "CRITICAL"),
    (0.45, "HIGH"),
    (0.20, "MEDIUM"),
)


class RiskLevel(StrEnum):
    """``CRP-Safety-Hallucination-Risk`` values, in increasing severity."""

    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"
    CRITICAL = "CRITICAL"


@dataclass(frozen=True, slots=True)
class RiskSignals:
    """The inputs of the score, as counts and levels."""

    fabrications: int = 0
    repetition: RepetitionLevel = RepetitionLevel.NONE
    injection_families: int = 0
    output_secrets: int = 0


@dataclass(frozen=True, slots=True)
class RiskAssessment:
    """Score, level and each signal's weighted strength (for the audit record)."""

    score: float
    level: RiskLevel
    contributions: tuple[tuple[str, float], ...]
    method: str = METHOD_ID

    @property
    def header_score(self) -> str:
        """The score as a ``crp-fraction`` (``0.42``)."""
        return f"{self.score:.2f}"


def strengths(signals: RiskSignals) -> dict[str, float]:
    """Each signal mapped to [0, 1] as the module docstring specifies."""
    return {
        "fabrication": 1.0 - FABRICATION_DECAY ** max(signals.fabrications, 0),
        "repetition": REPETITION_STRENGTH[signals.repetition],
        "injection": 1.0 - INJECTION_DECAY ** max(signals.injection_families, 0),
        "output_secret": 1.0 if signals.output_secrets > 0 else 0.0,
    }


def assess_risk(signals: RiskSignals) -> RiskAssessment:
    """Score ``signals`` with the published weights."""
    contributions = tuple(
        (name, round(WEIGHTS[name] * strength, 4))
        for name, strength in strengths(signals).items()
    )
    remaining = 1.0
    for _, contribution in contributions:
        remaining *= 1.0 - contribution
    score = round(1.0 - remaining, 2)
    return RiskAssessment(score, level_for(score), contributions)


def level_for(score: float) -> RiskLevel:
    for threshold, level in THRESHOLDS:
        if score >= threshold:
            return RiskLevel(level)
    return RiskLevel.LOW


def describe() -> dict[str, object]:
    """The method entry for the well-known document."""
    return {
        "version": METHOD_VERSION,
        "description": (
            "Heuristic composite, not the SPEC-005 DPE score: "
            "score = 1 - prod(1 - weight * strength) over the signals, rounded to "
            "2 decimals. Strengths: fabrication 1 - 0.7^n (candidates), repetition "
            "NONE 0 / MINOR 0.25 / SIGNIFICANT 0.6 / SEVERE 1, injection "
            "1 - 0.5^f (distinct families in the request), output_secret 0 or 1."
        ),
        "weights": dict(WEIGHTS),
        "fabrication_decay": FABRICATION_DECAY,
        "injection_decay": INJECTION_DECAY,
        "repetition_strength": {
            level.value: s for level, s in REPETITION_STRENGTH.items()
        },
        "thresholds": {level: threshold for threshold, level in THRESHOLDS},
        "inputs": {
            "fabrication": "crp-gw.fabrication/1",
            "repetition": "crp-gw.repetition/1",
            "injection": "crp-gw.injection/1",
            "output_secret": "crp-gw.secrets/1",
        },
    }
