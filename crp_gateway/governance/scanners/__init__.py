"""Deterministic content scanners behind the heuristic CRP headers.

Pure, synchronous, I/O-free code: regexes compiled at import, cheap substring
gates before any regex, linear-time passes, bounded payload decoding. Every
signal is produced by a versioned method whose id and parameters
:func:`describe_methods` returns for the well-known document:

=========================  ===================================================
``crp-gw.normalize/1``     adversarial text fold (:mod:`.normalize`)
``crp-gw.injection/1``     prompt-injection phrase families (:mod:`.injection`)
``crp-gw.pii/1``           personal data with checksums (:mod:`.pii`)
``crp-gw.secrets/1``       credential shapes (:mod:`.secrets`)
``crp-gw.fabrication/1``   unsupported entities in answers (:mod:`.fabrication`)
``crp-gw.repetition/1``    word 4-gram repetition (:mod:`.repetition`)
``crp-gw.risk/1``          composite risk score and level (:mod:`.risk`)
=========================  ===================================================

Findings are a kind and a span, never the matched text, so nothing a scanner
returns can carry a secret, a personal datum or attacker text into a header.
"""

from .fabrication import FabricationScan
from .findings import Finding
from .normalize import DecodeLimits
from .repetition import RepetitionLevel, RepetitionScan
from .risk import RiskAssessment, RiskLevel, RiskSignals, assess_risk
from .scan import (
    InputScan,
    OutputScan,
    describe_methods,
    gdpr_pii,
    scan_input,
    scan_output,
)

__all__ = [
    "DecodeLimits",
    "FabricationScan",
    "Finding",
    "InputScan",
    "OutputScan",
    "RepetitionLevel",
    "RepetitionScan",
    "RiskAssessment",
    "RiskLevel",
    "RiskSignals",
    "assess_risk",
    "describe_methods",
    "gdpr_pii",
    "scan_input",
    "scan_output",
]
