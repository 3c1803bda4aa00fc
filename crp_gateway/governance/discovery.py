"""The `/.well-known/crp-gateway.json` discovery document (002§16.2, 016§2.5).

Digest §8 lists the SHALL fields: `crp_version`, `conformance_level`,
`endpoints{inference, crp_native}`, `providers_supported[]`, `regions[]`,
`max_loop_depth`, `max_fan_out`, `max_dag_nodes`. Every value is honest:

* `conformance_level` is `none`: the session token, HMAC chains and audit trail
  exist, but the §9.C target also needs quotas and the Comply webhook, and
  Hallucination-Risk / -Score are a disclosed heuristic, so at most
  "CRP-Basic-aligned" can be claimed later (§9.C); "CRP-Compliant" is a
  certification trademark and is never claimed (§0).
* `endpoints.crp_native` is `null`: the CRP-native dispatch API is not served
  (only `/crp/v3/trail/{id}`, the target of the audit-trail URI).
* The limits are the session layer's (`audit.sessions`, passed in as
  `sessions`): the largest plan's fan-out and DAG size; `max_loop_depth` is 0,
  as the gateway runs no agent loops. `sessions` details them per plan, with
  the continuation rule and the safety budget (G12, G14, G15).
* `signal_methods` is `describe_methods()` (ids, versions, weights,
  parameters), and `header_methods` says which method produces which header
  (G37, 005§16.3).
* `eu_ai_act` is the classification rule and the domain catalogue of
  registered AI systems (G30, `governance.eu_ai_act.catalogue`).
* `hmac` describes the §5.5 window-chain encoding decision (G6, G7, G8, G9)
  that every audit record uses.
* `conformance_notes` lists what is not computed and why.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from crp_gateway import __version__
from crp_gateway.governance import eu_ai_act
from crp_gateway.governance.halt import ERROR_TYPE, HALT_STATUS, HaltReason
from crp_gateway.governance.headers import (
    EMITTED_RESPONSE_HEADERS,
    PROTOCOL_VERSION,
    REJECTED_REQUEST_HEADERS,
    REQUEST_HEADERS,
    RESPONSE_ONLY_HEADERS,
    RETRY_AFTER,
    SIGNAL_METHODS,
)
from crp_gateway.governance.scanners import describe_methods

__all__ = ["CONFORMANCE_LEVEL", "discovery_document"]

CONFORMANCE_LEVEL = "none"

_NOT_COMPUTED = (
    "Model-based signals are omitted, never faked: CRP-Safety-Entailment-Score, "
    "-Contradictions, CRP-Provenance-Attribution-Score, -Fidelity-Score, "
    "-Claim-Count, CRP-Quality-Completeness, -Flow, -Score, "
    "CRP-Context-Coverage, CRP-Memory-CKF-Community.",
    "CRP-Safety-Hallucination-Risk and -Score come from the heuristic "
    "crp-gw.risk/1 (see signal_methods), not from the SPEC-005 DPE; they are "
    "absent when there is no answer (halt before dispatch).",
    "Zero-CKF mode (SPEC-017): fixed values for Quality-Tier, Saturation, "
    "Facts-Used, Attribution, Grounding-Pct, Memory-CKF-Hits and the empty-set "
    "Context-ETag; Distortions and Omissions are skipped; CRP-Context-If-Match "
    "is ignored (G21). Every relaxed directive is reported in "
    "CRP-Safety-Policy-Adjustment (G20).",
    "Every governed call, halted, refused and failed ones included, is a window "
    "with a durable chained audit record, in the session its CRP-Session-Token "
    "continues or in a new one (G14): CRP-Context-Session-Id, -Window N/M, "
    "-Continuation-Id, CRP-Set-Session, CRP-Provenance-HMAC, -Window-HMAC, "
    "-Chain-Integrity (UNVERIFIED for a first window; VALID when the token's "
    "chain tip matched), CRP-Agent-Safety-Budget and "
    "CRP-Compliance-Audit-Trail-Id and -URI are emitted. -DAG-Root and "
    "-Window-Lineage are not.",
    "CRP-Compliance-EU-AI-Act is the class of the AI system the calling key is "
    "bound to (POST /v1/systems, then POST /v1/keys with system_id), computed "
    "from the registration by the rule in eu_ai_act (G30: UNACCEPTABLE domains "
    "first, domain floors); an UNACCEPTABLE system halts with 451 "
    "UNACCEPTABLE_EU_AI_ACT before dispatch; a key bound to no system gets "
    "UNKNOWN (002§12.5). A registration's data_residency is recorded, not yet "
    "enforced or emitted. NIST-Tier, ISO-42001 and Controls-Met are not emitted.",
    "CRP-Context-Tokens-Used is the provider's reported prompt + completion "
    "tokens (there is no envelope in zero-CKF mode).",
    "Agent headers other than Revision-Round (always 1/1: no re-dispatch) are "
    "not emitted.",
    "Request CRP headers are never forwarded to a provider (Axiom 4). "
    "Response-only CRP-Safety-* headers on a request are answered 400; other "
    "response-only and unknown CRP-* request headers are stripped and logged.",
    "Not CRP-Compliant (a certification mark); no certification is claimed.",
)


def _hmac() -> dict[str, object]:
    """The §5.5 window-chain encoding (G6), as published."""
    return {
        "implemented": True,
        "algorithm": "HMAC-SHA256",
        "key": (
            "HKDF-SHA256(IKM=tenant master key, salt=UTF-8 session_id, "
            "info='crp-session-hmac-v3', L=32); distinct from the token signing key "
            "(info='crp-session-sign-v3')"
        ),
        "message": [
            "session_id",
            "window_number",
            "timestamp",
            "content_hash",
            "dpe_report_hash",
            "prev_window_hmac",
        ],
        "field_separator": "",
        "concatenation": "UTF-8 string concatenation of the fields, no separator",
        "window_number": "decimal, no leading zeros",
        "timestamp": "RFC 3339 UTC with 'Z', stored and hashed verbatim",
        "hash_format": "sha256:<64 lowercase hex>, for inputs and output",
        "content_hash": (
            "SHA-256 of the normalised completion: all choices in index order, "
            "message content and tool-call JSON; streamed and buffered hash alike"
        ),
        "dpe_report_hash": (
            "SHA-256 of the canonical JSON (sorted keys, no whitespace, UTF-8) of "
            "the analysis record; '{}' when nothing was analysed"
        ),
        "root_prev": "empty string",
        "fan_in_prev": "'|'.join(sorted(parent HMACs))",
        "window_hmac_header": (
            "CRP-Provenance-HMAC is chained; CRP-Provenance-Window-HMAC uses the "
            "same message with an empty prev_window_hmac"
        ),
    }


def discovery_document(
    *,
    gateway_url: str,
    providers: Iterable[str],
    regions: Iterable[str] = (),
    max_loop_depth: int = 0,
    max_fan_out: int = 0,
    max_dag_nodes: int = 1,
    sessions: Mapping[str, object] | None = None,
) -> dict[str, object]:
    """The discovery document; a fresh JSON-able dict on each call.

    `gateway_url` is the public base URL (no trailing slash needed);
    `providers` the provider kinds served; `regions` the deployment regions
    configured (an empty list when none is).
    """
    base = gateway_url.rstrip("/")
    return {
        "crp_version": PROTOCOL_VERSION,
        "conformance_level": CONFORMANCE_LEVEL,
        "endpoints": {"inference": f"{base}/v1", "crp_native": None},
        "providers_supported": sorted(set(providers)),
        "regions": sorted(set(regions)),
        "max_loop_depth": max_loop_depth,
        "max_fan_out": max_fan_out,
        "max_dag_nodes": max_dag_nodes,
        "gateway": {"name": "crp-gateway", "version": __version__, "url": base},
        "context_mode": "zero-ckf",
        "headers": _headers(),
        "signal_methods": describe_methods(),
        "header_methods": dict(SIGNAL_METHODS),
        "hmac": _hmac(),
        "sessions": dict(sessions) if sessions is not None else None,
        "eu_ai_act": eu_ai_act.catalogue(),
        "halt": {
            "status": HALT_STATUS,
            "error_type": ERROR_TYPE,
            "reasons": _halt_reasons(),
        },
        "conformance_notes": list(_NOT_COMPUTED),
    }


def _headers() -> dict[str, list[str]]:
    return {
        "request": sorted(REQUEST_HEADERS),
        "response": sorted(EMITTED_RESPONSE_HEADERS | {RETRY_AFTER, "Link"}),
        "rejected_on_request": sorted(REJECTED_REQUEST_HEADERS),
        "stripped_on_request": sorted(RESPONSE_ONLY_HEADERS - REJECTED_REQUEST_HEADERS),
    }


def _halt_reasons() -> list[str]:
    return [reason.value for reason in HaltReason]
