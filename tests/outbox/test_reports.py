"""Violation reports: the union payload, the triggers, the daily cap."""

from __future__ import annotations

import json
import uuid

import pytest

from crp_gateway.logging import configure_logging
from crp_gateway.outbox.reports import (
    REPORT_KIND,
    ReportLimits,
    ReportTrigger,
    ViolationReport,
    ViolationType,
    plan_report,
    report_row,
    report_trigger,
)
from crp_gateway.runtime import build_state
from crp_gateway.state import MemoryState
from tests.support import Backend, LogCapture, run

UNION_FIELDS = {
    # 006§3.16
    "crp_version",
    "session_id",
    "window_id",
    "timestamp",
    "violation_type",
    "directive_violated",
    "risk_level",
    "hallucination_score",
    "grounding_pct",
    "fabrication_count",
    "audit_trail_uri",
    # 002§5.13
    "window_number",
}


def _report(window_id: str = "crp_win_0123456789abcdef") -> ViolationReport:
    return ViolationReport(
        session_id="crp_sess_0123456789abcdef",
        window_id=window_id,
        window_number=1,
        violation_type=ViolationType.HALT_ON_CRITICAL,
        directive_violated="halt-on",
        risk_level="CRITICAL",
        hallucination_score=0.91,
        grounding_pct=None,
        fabrication_count=2,
        audit_trail_uri="https://gw.example/crp/v3/trail/crp_trail_0123456789abcdef",
        timestamp="2026-12-03T10:00:00Z",
    )


def test_the_payload_is_the_union_of_both_shapes_with_nulls_kept() -> None:
    row = report_row("tnt_a", "https://risk.example.com/r", _report())
    payload = json.loads(row["body"])
    assert set(payload) == UNION_FIELDS
    assert payload["crp_version"] == "3.0.0"
    assert payload["violation_type"] == "HALT_ON_CRITICAL"
    assert payload["window_number"] == 1
    assert payload["grounding_pct"] is None  # not measured: null, not a number
    assert row["kind"] == REPORT_KIND
    assert row["status"] == "pending"
    assert row["idempotency_key"] == "crp-report:crp_win_0123456789abcdef"
    assert row["tenant_id"] == "tnt_a"


@pytest.mark.parametrize(
    ("outcome", "violations", "risk", "fabrications", "chain", "expected"),
    [
        ("HALT", ("halt-on",), "CRITICAL", 0, None, ("HALT_ON_CRITICAL", "halt-on")),
        (
            "HALT",
            ("halt-on", "block-pii"),
            "HIGH",
            0,
            None,
            ("HALT_ON_RISK", "halt-on"),
        ),
        ("HALT", ("block-pii",), "LOW", 0, None, ("PII_DETECTED", "block-pii")),
        ("HALT", ("default-src",), None, 0, None, ("NO_TRUSTED_SOURCE", "default-src")),
        ("HALT", (), None, 0, None, ("SAFETY_POLICY_VIOLATION", None)),
        ("WARN", ("warn-on",), "HIGH", 0, None, ("WARN_ON_RISK", "warn-on")),
        # a report-only policy's violation can only warn
        (
            "WARN",
            ("block-fabrication",),
            "MEDIUM",
            1,
            None,
            ("FABRICATION_DETECTED", "block-fabrication"),
        ),
        ("PASS", (), "LOW", 2, None, ("FABRICATION_DETECTED", None)),
        ("PASS", (), "LOW", 0, "BROKEN", ("CHAIN_BROKEN", None)),
        ("PASS", (), "LOW", 0, "VALID", None),
        ("PASS", (), None, 0, None, None),
    ],
)
def test_report_triggers(
    outcome: str,
    violations: tuple[str, ...],
    risk: str | None,
    fabrications: int,
    chain: str | None,
    expected: tuple[str, str | None] | None,
) -> None:
    trigger = report_trigger(
        outcome=outcome,
        violations=violations,
        risk_level=risk,
        fabrication_count=fabrications,
        chain_integrity=chain,
    )
    if expected is None:
        assert trigger is None
    else:
        assert trigger == ReportTrigger(ViolationType(expected[0]), expected[1])


def test_plan_report_caps_reports_per_tenant_and_plan(backend: Backend) -> None:
    configure_logging(level="info", json=True)
    limits = ReportLimits(free_per_day=3, paid_per_day=5)
    tenant, other = f"tnt_{uuid.uuid4().hex}", f"tnt_{uuid.uuid4().hex}"
    uri = "https://risk.example.com/r?token=secret-token"

    async def plan_many() -> tuple[list[bool], list[bool], list[bool], bool]:
        state = build_state(backend.settings(), redis_prefix=backend.redis_prefix)
        try:

            async def one(tenant_id: str, plan: str, n: int) -> bool:
                row = await plan_report(
                    state,
                    tenant_id,
                    plan,
                    report_uri=uri,
                    report=_report(f"crp_win_{n:016d}"),
                    limits=limits,
                )
                return row is not None

            free = [await one(tenant, "free", n) for n in range(5)]
            paid = [await one(other, "team", n) for n in range(7)]
            again = [await one(tenant, "free", n) for n in range(2)]
            no_uri = await plan_report(
                state, tenant, "free", report_uri=None, report=_report(), limits=limits
            )
            return free, paid, again, no_uri is None
        finally:
            await state.aclose()

    with LogCapture(json=True) as logs:
        free, paid, again, no_uri = run(plan_many())
    assert free == [True, True, True, False, False]
    assert paid == [True] * 5 + [False] * 2
    assert again == [False, False]  # the day's budget stays spent
    assert no_uri
    warnings = [
        json.loads(line)
        for line in logs.text.splitlines()
        if '"report.rate_limited"' in line
    ]
    assert len(warnings) == 6
    assert {line["tenant_id"] for line in warnings} == {tenant, other}
    assert "secret-token" not in logs.text


def test_plan_report_skips_a_report_uri_it_cannot_send_to() -> None:
    async def plan() -> object:
        return await plan_report(
            MemoryState(),
            "tnt_a",
            "free",
            report_uri="mailto:risk@example.com",
            report=_report(),
            limits=ReportLimits(free_per_day=1, paid_per_day=1),
        )

    assert run(plan()) is None
