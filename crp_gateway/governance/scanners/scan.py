"""One entry point per side of a call.

``scan_input`` runs on the request messages before dispatch: injection (with
the adversarial fold), personal data and credentials. ``scan_output`` runs on
the answer: personal data, credentials, fabrication candidates against the
request context, repetition, and the composite risk score. Both are pure,
synchronous and bounded by the size of their input; results are frozen and hold
no matched text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from . import fabrication, injection, normalize, pii, repetition, risk, secrets
from .fabrication import FabricationScan, scan_fabrication
from .findings import Finding, kinds_of
from .injection import scan_injection
from .normalize import DecodeLimits
from .pii import scan_pii
from .repetition import RepetitionScan, scan_repetition
from .risk import RiskAssessment, RiskSignals, assess_risk
from .secrets import scan_secrets


@dataclass(frozen=True, slots=True)
class InputScan:
    """What the request messages contain. Spans index into ``texts[i]``."""

    injection: tuple[Finding, ...]
    pii: tuple[Finding, ...]
    secrets: tuple[Finding, ...]
    hidden_chars: int
    decoded_payloads: int
    decode_truncated: bool

    @property
    def injection_families(self) -> tuple[str, ...]:
        return kinds_of(self.injection)

    @property
    def pii_detected(self) -> bool:
        return bool(self.pii)

    @property
    def pii_kinds(self) -> tuple[str, ...]:
        return kinds_of(self.pii)

    @property
    def secret_kinds(self) -> tuple[str, ...]:
        return kinds_of(self.secrets)


@dataclass(frozen=True, slots=True)
class OutputScan:
    """What the answer contains, and the composite risk. Spans index the answer."""

    pii: tuple[Finding, ...]
    secrets: tuple[Finding, ...]
    fabrication: FabricationScan
    repetition: RepetitionScan
    risk: RiskAssessment

    @property
    def pii_detected(self) -> bool:
        return bool(self.pii)

    @property
    def pii_kinds(self) -> tuple[str, ...]:
        return kinds_of(self.pii)

    @property
    def secret_kinds(self) -> tuple[str, ...]:
        return kinds_of(self.secrets)


def scan_input(texts: Sequence[str], limits: DecodeLimits | None = None) -> InputScan:
    """Scan the request texts (message contents, in order)."""
    found = scan_injection(texts, limits)
    return InputScan(
        injection=found.findings,
        pii=scan_pii(texts),
        secrets=scan_secrets(texts),
        hidden_chars=found.hidden_chars,
        decoded_payloads=found.decoded_payloads,
        decode_truncated=found.decode_truncated,
    )


def scan_output(
    output_text: str,
    context_texts: Sequence[str],
    *,
    input_scan: InputScan | None = None,
    previous_outputs: Sequence[str] = (),
) -> OutputScan:
    """Scan the answer against the request context (and earlier answers)."""
    output_secrets = scan_secrets([output_text])
    fabricated = scan_fabrication(output_text, context_texts)
    repeated = scan_repetition(output_text, previous_outputs)
    signals = RiskSignals(
        fabrications=fabricated.count,
        repetition=repeated.level,
        injection_families=len(input_scan.injection_families) if input_scan else 0,
        output_secrets=len(output_secrets),
    )
    return OutputScan(
        pii=scan_pii([output_text]),
        secrets=output_secrets,
        fabrication=fabricated,
        repetition=repeated,
        risk=assess_risk(signals),
    )


def gdpr_pii(input_scan: InputScan | None, output_scan: OutputScan | None) -> bool:
    """``CRP-Compliance-GDPR-PII``: personal data seen in prompt or response."""
    return bool(
        (input_scan is not None and input_scan.pii_detected)
        or (output_scan is not None and output_scan.pii_detected)
    )


def describe_methods() -> dict[str, dict[str, object]]:
    """Every method id with its version, description and parameters.

    A fresh JSON-able dict on each call, for ``/.well-known/crp-gateway.json``.
    """
    normalization: dict[str, object] = {
        "version": normalize.METHOD_VERSION,
        "description": (
            "Drop Cf/zero-width/bidi and invisible fillers, decode Unicode tag "
            "characters, fold Cyrillic/Greek/small-capital homoglyphs, NFKD with "
            "combining marks removed, Unicode spaces to U+0020, lower case; "
            "letter-spaced runs collapsed; base64/hex/URL payloads decoded."
        ),
        "unicode_version": normalize.UNICODE_VERSION,
    }
    return {
        normalize.METHOD_ID: normalization,
        injection.METHOD_ID: injection.describe(),
        pii.METHOD_ID: pii.describe(),
        secrets.METHOD_ID: secrets.describe(),
        fabrication.METHOD_ID: fabrication.describe(),
        repetition.METHOD_ID: repetition.describe(),
        risk.METHOD_ID: risk.describe(),
    }
