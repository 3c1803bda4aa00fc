"""Tests for crp_gateway.governance.discovery (digest §8, 016§2.5, G37, §5.5)."""

from __future__ import annotations

import json

import pytest

from crp_gateway.governance.discovery import discovery_document
from crp_gateway.governance.scanners import describe_methods

SHALL_FIELDS = {
    "crp_version",
    "conformance_level",
    "endpoints",
    "providers_supported",
    "regions",
    "max_loop_depth",
    "max_fan_out",
    "max_dag_nodes",
}


@pytest.fixture
def doc() -> dict[str, object]:
    return discovery_document(
        gateway_url="https://gw.example/",
        providers=["openai", "anthropic", "openai"],
        regions=["EU"],
    )


def test_shall_fields_are_present_and_typed(doc: dict[str, object]) -> None:
    assert set(doc) >= SHALL_FIELDS
    assert doc["crp_version"] == "3.0.0"
    assert isinstance(doc["conformance_level"], str)
    endpoints = doc["endpoints"]
    assert isinstance(endpoints, dict)
    assert set(endpoints) == {"inference", "crp_native"}
    assert endpoints["inference"] == "https://gw.example/v1"
    assert doc["providers_supported"] == ["anthropic", "openai"]
    assert doc["regions"] == ["EU"]
    for name in ("max_loop_depth", "max_fan_out", "max_dag_nodes"):
        assert isinstance(doc[name], int)
        assert not isinstance(doc[name], bool)
        assert doc[name] >= 0  # type: ignore[operator]


def test_document_is_json(doc: dict[str, object]) -> None:
    assert json.loads(json.dumps(doc)) == doc


def test_no_conformance_is_overclaimed(doc: dict[str, object]) -> None:
    level = str(doc["conformance_level"]).lower()
    assert "compliant" not in level
    assert level not in {"basic", "standard", "full"}


def test_signal_methods_with_versions_and_weights(doc: dict[str, object]) -> None:
    methods = doc["signal_methods"]
    assert isinstance(methods, dict)
    assert set(methods) == set(describe_methods())
    assert methods
    for entry in methods.values():
        assert isinstance(entry["version"], str)
    assert "weights" in methods["crp-gw.risk/1"]
    header_methods = doc["header_methods"]
    assert isinstance(header_methods, dict)
    assert header_methods["CRP-Safety-Hallucination-Risk"] == "crp-gw.risk/1"
    assert set(header_methods.values()) <= set(methods)


def test_header_lists(doc: dict[str, object]) -> None:
    headers = doc["headers"]
    assert isinstance(headers, dict)
    assert "CRP-Safety-Policy" in headers["request"]
    assert "CRP-Session-Token" in headers["request"]
    assert "CRP-Safety-Hallucination-Risk" not in headers["request"]
    assert "CRP-Safety-Hallucination-Risk" in headers["rejected_on_request"]
    assert "CRP-Provenance-HMAC" in headers["stripped_on_request"]
    assert "CRP-Safety-Retry-After" in headers["response"]
    assert "CRP-Context-ETag" in headers["response"]
    assert not set(headers["request"]) & set(headers["response"]) - {
        "CRP-Context-Session-Id",
        "CRP-Context-Continuation-Id",
        "CRP-Safety-Oversight-Mode",
        "CRP-Compliance-Data-Residency",
        "CRP-Agent-Safety-Budget",
    }


def test_hmac_encoding_is_described(doc: dict[str, object]) -> None:
    hmac = doc["hmac"]
    assert isinstance(hmac, dict)
    assert hmac["algorithm"] == "HMAC-SHA256"
    assert hmac["message"] == [
        "session_id",
        "window_number",
        "timestamp",
        "content_hash",
        "dpe_report_hash",
        "prev_window_hmac",
    ]
    assert hmac["field_separator"] == ""
    assert "sha256:" in hmac["hash_format"]
    assert "crp-session-hmac-v3" in hmac["key"]
    assert hmac["implemented"] is True


def test_conformance_notes_and_halt_reasons(doc: dict[str, object]) -> None:
    notes = doc["conformance_notes"]
    assert isinstance(notes, list)
    joined = " ".join(notes)
    for omitted in ("Entailment", "Fidelity", "Chain-Integrity", "crp-gw.risk/1"):
        assert omitted in joined
    halt = doc["halt"]
    assert isinstance(halt, dict)
    assert halt["status"] == 451
    assert "CRITICAL_HALLUCINATION_RISK" in halt["reasons"]


def test_fresh_document_each_call(doc: dict[str, object]) -> None:
    doc["regions"] = ["XX"]
    again = discovery_document(gateway_url="https://gw.example", providers=[])
    assert again["regions"] == []
    assert again["providers_supported"] == []
