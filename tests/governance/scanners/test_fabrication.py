from __future__ import annotations

import pytest

from crp_gateway.governance.scanners.fabrication import (
    normalize_number,
    normalize_url,
    scan_fabrication,
    trim_url,
)

CONTEXT = [
    "Q3 revenue was 1,234,567 EUR, up 4.50% on 12 January 2024.",
    "Sources: https://Example.com/Report?id=7 and doi 10.5555/ABC.123 [2].",
]


def _kinds(output: str, context: list[str] = CONTEXT) -> list[str]:
    return [f.kind for f in scan_fabrication(output, context).candidates]


@pytest.mark.parametrize(
    "output",
    [
        "Revenue was 1234567 EUR.",
        "It rose 4.5 percent.",
        "Announced on 2024-01-12.",
        "Announced in January 2024.",
        "See https://example.com/Report?id=7).",
        "See (https://www.example.com/Report?id=7/)",
        "Cited as 10.5555/abc.123.",
        "As in [2].",
        "In 2024 it grew.",
    ],
)
def test_grounded_entities_are_not_candidates(output: str) -> None:
    assert _kinds(output) == []


@pytest.mark.parametrize(
    ("output", "kind"),
    [
        ("Revenue was 1,234,568 EUR.", "number"),
        ("Announced on 13 January 2024.", "date"),
        ("See https://example.com/report?id=7 now", "url"),
        ("Cited as 10.5555/abc.124.", "citation"),
        ("As in [3].", "citation"),
        ("(Miller et al., 2019) found this.", "citation"),
        ("arXiv:2101.00001 shows it", "citation"),
    ],
)
def test_unsupported_entities_are_candidates(output: str, kind: str) -> None:
    assert _kinds(output) == [kind]


def test_each_distinct_entity_counts_once_with_its_first_span() -> None:
    output = "It was 42 units, yes 42 units, and 43 later."
    scan = scan_fabrication(output, ["nothing"])
    assert scan.count == 2
    assert scan.kinds == ("number",)
    first = scan.candidates[0]
    assert output[first.start : first.end] == "42"
    assert first.start == output.index("42")


def test_no_context_makes_every_entity_a_candidate() -> None:
    assert scan_fabrication("Founded in 1998 at https://a.example/x.", []).count == 2


def test_code_and_list_markers_are_ignored() -> None:
    output = "1. Run `pip install x==2.31`\n2. Then:\n```\nport = 8080\n```\n"
    assert scan_fabrication(output, []).count == 0


def test_dates_are_not_double_counted_as_numbers() -> None:
    assert _kinds("On 2023-05-17 it shipped.", []) == ["date"]


def test_normalisers() -> None:
    assert normalize_number("1,000.500") == "1000.5"
    assert normalize_number("007") == "7"
    assert normalize_number("0.0") == "0"
    assert trim_url("https://x.org/a_(b)).") == "https://x.org/a_(b)"
    assert trim_url("https://x.org/a_(b))).") == "https://x.org/a_(b)"
    assert normalize_url("HTTPS://WWW.Example.COM/Path/") == "example.com/Path"
