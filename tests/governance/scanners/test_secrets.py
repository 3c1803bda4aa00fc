from __future__ import annotations

import dataclasses

import pytest

from crp_gateway.governance.scanners.secrets import KINDS, find_secrets, scan_secrets

from .labelled import SECRETS


@pytest.mark.parametrize(
    "example", [e for e in SECRETS if e.expected], ids=lambda e: e.expected
)
def test_each_kind_is_found_with_the_full_span(example) -> None:  # type: ignore[no-untyped-def]
    (finding,) = find_secrets(example.text)
    assert finding.kind == example.expected
    value = example.text[finding.start : finding.end]
    assert len(value) >= 20
    assert example.text.endswith(value) or "\n" in value or "." in value


def test_every_kind_is_covered_by_the_set() -> None:
    assert {e.expected for e in SECRETS if e.expected} == set(KINDS)


@pytest.mark.parametrize("example", [e for e in SECRETS if not e.expected])
def test_hard_negatives(example) -> None:  # type: ignore[no-untyped-def]
    assert find_secrets(example.text) == ()


def test_findings_never_contain_the_secret() -> None:
    texts = [e.text for e in SECRETS if e.expected]
    findings = scan_secrets(texts)
    assert len(findings) == len(texts)
    for finding in findings:
        value = texts[finding.text_index][finding.start : finding.end]
        assert value not in repr(finding)
        for field in dataclasses.fields(finding):
            assert value not in str(getattr(finding, field.name))


def test_openai_key_needs_mixed_characters() -> None:
    assert find_secrets("sk-" + "a" * 40) == ()
    assert find_secrets("sk-" + "aB3" * 10)[0].kind == "openai_api_key"


def test_anthropic_key_is_not_reported_as_openai() -> None:
    text = "sk-" + "ant-" + "aB3" * 12
    assert [f.kind for f in find_secrets(text)] == ["anthropic_api_key"]


def test_unterminated_pem_block_is_still_found() -> None:
    text = "-----BEGIN EC " + "PRIVATE KEY-----\nMHcCAQEEIB\nabc"
    (finding,) = find_secrets(text)
    assert finding.kind == "private_key_block"
    assert finding.end == len(text)
