from __future__ import annotations

import pytest

from crp_gateway.governance.scanners.pii import (
    bsn_valid,
    card_valid,
    find_pii,
    iban_valid,
    luhn_valid,
    scan_pii,
    ssn_valid,
)


def _spans(text: str) -> list[tuple[str, str]]:
    return [(f.kind, text[f.start : f.end]) for f in find_pii(text)]


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("write to a.b-c@mail.example.org.", "email", "a.b-c@mail.example.org"),
        ("tel +1 415 555 2671 ok", "phone", "+1 415 555 2671"),
        ("tel 415.555.2671", "phone", "415.555.2671"),
        ("tel 020 7946 0958", "phone", "020 7946 0958"),
        (
            "iban FR14 2004 1010 0505 0001 3M02 606 end",
            "iban",
            "FR14 2004 1010 0505 0001 3M02 606",
        ),
        ("NL91ABNA0417164300", "iban", "NL91ABNA0417164300"),
        ("card 5500-0000-0000-0004.", "payment_card", "5500-0000-0000-0004"),
        ("card 4012888888881881", "payment_card", "4012888888881881"),
        ("ssn 219-09-9999", "us_ssn", "219-09-9999"),
        ("nino AB123456C", "uk_nino", "AB123456C"),
        ("dni 00000000T", "es_dni", "00000000T"),
        ("nie Y1234567X", "es_nie", "Y1234567X"),
        ("BSN: 1112.22.333", "nl_bsn", "1112.22.333"),
    ],
)
def test_positives_with_exact_spans(text: str, kind: str, value: str) -> None:
    assert (kind, value) in _spans(text)


@pytest.mark.parametrize(
    "text",
    [
        "4111 1111 1111 1112",
        "1234567812345678",
        "DE89 3704 0044 0532 0130 01",
        "XX89 3704 0044 0532 0130 00",
        "version 3.10.12 and 2.7.18",
        "v4.5.6-rc1 / 12.0.4.1",
        "099-555-1234",
        "911-555-1234",
        "000-12-3456 and 900-12-3456 and 123-00-4567 and 123-45-0000",
        "078-05-1120",
        "DA 12 34 56 C and GB 12 34 56 A",
        "12345678B",
        "bsn 123456789",
        "2024-05-06 12:30:45",
        "hash 9f86d081884c7d659a2feaa0c55ad015",
        "user@localhost",
    ],
)
def test_hard_negatives(text: str) -> None:
    assert find_pii(text) == ()


def test_checksum_helpers() -> None:
    assert iban_valid("GB82 WEST 1234 5698 7654 32")
    assert not iban_valid("GB82 WEST 1234 5698 7654 33")
    assert not iban_valid("GB82WEST123456987654")  # wrong length
    assert luhn_valid("79927398713")
    assert not luhn_valid("79927398710")
    assert card_valid("378282246310005")
    assert not card_valid("9111111111111111")  # Luhn-valid shape, no issuer
    assert ssn_valid("123456788")
    assert not ssn_valid("666123456")
    assert bsn_valid("111222333")
    assert not bsn_valid("000000000")


def test_iban_inside_text_does_not_swallow_following_words() -> None:
    text = "to DE89370400440532013000 EUR 50"
    (finding,) = find_pii(text)
    assert text[finding.start : finding.end] == "DE89370400440532013000"


def test_overlaps_keep_the_stronger_finding() -> None:
    kinds = [f.kind for f in find_pii("NL91ABNA0417164300 and 4111111111111111")]
    assert kinds == ["iban", "payment_card"]


def test_scan_sets_text_index_and_never_holds_values() -> None:
    findings = scan_pii(["nothing", "mail x@example.com"])
    assert [(f.kind, f.text_index) for f in findings] == [("email", 1)]
    assert "example" not in repr(findings)
