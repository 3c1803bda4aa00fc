"""Where the data path meets CRP governance (``governance.engine``).

:func:`prepare` runs before dispatch. A complete answer goes through
:func:`conclude`, which returns the CRP headers or raises the 451. A stream is
either buffered and decided before its first byte (:func:`buffered`, when the
policy could still halt it, G24) or relayed as it comes with the verdict sent
after the end as ``event: crp-headers`` (:func:`with_verdict`). A refused or
failed call goes through :func:`failed`.

Every outcome is recorded by :func:`record`: the audit window (in the session
the request's token continues, or a new one), its events, the tenant chain link
and the usage row, in one commit before the answer; then the session token for
the next call (``audit.sessions``).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from typing import Any

from starlette.responses import Response, StreamingResponse

from crp_gateway.audit.chain import JSONValue
from crp_gateway.audit.recorder import (
    OUTCOME_CANCELLED,
    OUTCOME_ERROR,
    OUTCOME_REFUSED,
    CallRecord,
    ReportPlanner,
    WindowRef,
)
from crp_gateway.errors import GatewayError
from crp_gateway.governance import engine
from crp_gateway.governance.headers import (
    POLICY_VIOLATION,
    CallOutcome,
    SessionFacts,
    check_request_headers,
    crp_headers_event,
    response_headers,
    session_headers,
    upfront_headers,
)
from crp_gateway.governance.policy import (
    ResolvedPolicy,
    RiskLevel,
    SafetyPolicy,
    policy_hash,
)
from crp_gateway.outbox.reports import (
    ReportLimits,
    ViolationReport,
    plan_report,
    report_trigger,
)
from crp_gateway.providers.directory import TenantContext
from crp_gateway.proxy.call import Call

STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


async def prepare(call: Call, body: dict[str, Any], context: TenantContext) -> None:
    """The request phase: 400 / 401 / 403 / 409 / 451 (``engine.SafetyHalt``) are
    raised; the session token is checked and its continuation point claimed
    (``audit.sessions``); a halt is audited first, in its session (G19)."""
    if not call.runtime.settings.crp_governance:
        return
    sources = engine.PolicySources(
        key=call.principal.safety_policy,
        tenant=context.safety_policy,
        plan=context.plan,
        system=call.runtime.providers.system_of(context, call.principal),
    )
    try:
        call.governance = engine.prepare(
            call.client_headers,
            body,
            sources,
            gateway_url=call.runtime.settings.crp_gateway_url,
        )
    except engine.SafetyHalt as halt:
        if halt.resolved is not None:
            await _place(call, context.plan, halt.resolved.policy)
        await _halted_before_dispatch(call, halt, policy=halt.resolved)
        raise
    await _place(call, context.plan, call.governance.resolved.policy)
    if call.place is not None and call.place.budget_halts:
        depleted = engine.budget_halt(call.governance)
        await _halted_before_dispatch(
            call, depleted, policy=call.governance.resolved, end_session=True
        )
        raise depleted


async def _place(call: Call, plan: str, policy: SafetyPolicy) -> None:
    """Where the call's window goes: its token's session, or a new one."""
    if not call.runtime.settings.crp_audit:
        return
    check = (
        call.governance.headers
        if call.governance is not None
        else check_request_headers(call.client_headers)
    )
    call.plan = plan
    call.place = await call.runtime.crp_sessions.place(
        tenant_id=call.principal.tenant_id,
        key_id=call.principal.key_id,
        plan=plan,
        headers=check,
        policy=policy,
    )


async def _halted_before_dispatch(
    call: Call,
    halt: engine.SafetyHalt,
    *,
    policy: ResolvedPolicy | None,
    end_session: bool = False,
) -> None:
    session = await record(
        call,
        outcome=CallOutcome.HALT.value,
        status=451,
        output_text="",
        report={"outcome": "HALT", "phase": "request", "halted": True},
        halt_reason=str(halt.to_body()["crp_halt_reason"]),
        policy=policy.policy if policy else None,
        end_session=end_session,
        findings=Findings(
            outcome=CallOutcome.HALT.value,
            violations=tuple(
                v.strip()
                for v in halt.headers.get(POLICY_VIOLATION, "").split(",")
                if v.strip()
            ),
        ),
    )
    if session is not None:
        halt.attach_session(session)


async def record(
    call: Call,
    *,
    outcome: str,
    status: int,
    output_text: str,
    report: dict[str, JSONValue],
    halt_reason: str | None = None,
    policy: SafetyPolicy | None = None,
    risk: RiskLevel | None = None,
    error_code: str | None = None,
    end_session: bool = False,
    findings: Findings | None = None,
) -> SessionFacts | None:
    """Commit the call's audit record and usage row together (the usage alone
    when audit is off); return the session facts for its headers.

    When the call has a place in a session, the answer also gets the token for
    the point its window opened (none when ``end_session``).
    """
    runtime = call.runtime
    usage = call.take_usage(status=status)
    if call.audited or not (
        runtime.settings.crp_governance and runtime.settings.crp_audit
    ):
        if usage is not None:
            await runtime.audit.record_usage(usage)
        return None
    call.audited = True
    route = call.route
    tokens = (
        call.usage.prompt_tokens + call.usage.completion_tokens
        if call.usage
        and call.usage.prompt_tokens is not None
        and call.usage.completion_tokens is not None
        else None
    )
    facts = await runtime.audit.record(
        CallRecord(
            tenant_id=call.principal.tenant_id,
            key_id=call.principal.key_id,
            request_id=call.request_id,
            endpoint=call.endpoint,
            provider=route.upstream.name if route else "",
            model=route.model if route else "",
            status=status,
            outcome=outcome,
            output_text=output_text,
            report=report,
            halt_reason=halt_reason,
            tokens_used=tokens,
            policy_hash=policy_hash(policy) if policy is not None else None,
            error_code=error_code,
        ),
        call.place,
        usage=usage,
        report=_report_planner(call, policy, findings) if findings else None,
    )
    if call.place is None:
        return facts
    issued = await runtime.crp_sessions.issue(
        call.place,
        tenant_id=call.principal.tenant_id,
        key_id=call.principal.key_id,
        window_hmac=facts.provenance_hmac or "",
        policy=policy or SafetyPolicy(),
        risk=risk,
        end=end_session,
    )
    return dataclasses.replace(
        facts,
        set_session=issued.set_session,
        continuation_id=issued.continuation_id,
        safety_budget=issued.budget,
    )


@dataclasses.dataclass(frozen=True, slots=True)
class Findings:
    """What a decided call found, for its violation report (§3.6)."""

    outcome: str
    violations: tuple[str, ...] = ()
    risk_level: str | None = None
    score: float | None = None
    fabrications: int = 0

    @classmethod
    def of(cls, decision: engine.Decision) -> Findings:
        scan = decision.output_scan
        return cls(
            outcome=decision.outcome.value,
            violations=decision.violations,
            risk_level=scan.risk.level.value if scan else None,
            score=scan.risk.score if scan else None,
            fabrications=scan.fabrication.count if scan else 0,
        )


def _report_planner(
    call: Call, policy: SafetyPolicy | None, findings: Findings
) -> ReportPlanner | None:
    """The violation report a call's findings call for (G26), if any: built
    once the record's ids exist, committed with it, sent by the outbox."""
    if policy is None or policy.report_uri is None:
        return None
    trigger = report_trigger(
        outcome=findings.outcome,
        violations=findings.violations,
        risk_level=findings.risk_level,
        fabrication_count=findings.fabrications,
    )
    if trigger is None:
        return None
    report_uri = policy.report_uri

    async def plan(window: WindowRef) -> dict[str, Any] | None:
        report = ViolationReport(
            session_id=window.session_id,
            window_id=window.window_id,
            window_number=window.window_number,
            violation_type=trigger.violation_type.value,
            directive_violated=trigger.directive_violated,
            risk_level=findings.risk_level,
            hallucination_score=findings.score,
            grounding_pct=None,  # nothing is grounded in zero-CKF mode
            fabrication_count=findings.fabrications,
            audit_trail_uri=window.audit_trail_uri,
            timestamp=window.timestamp,
        )
        return await plan_report(
            call.runtime.state,
            call.principal.tenant_id,
            call.plan,
            report_uri=report_uri,
            report=report,
            limits=ReportLimits.from_settings(call.runtime.settings),
        )

    return plan


async def failed(call: Call, error: GatewayError) -> None:
    """A call refused or failed with ``error``: audited like any other (a
    refusal before dispatch, or an upstream failure after it), its usage
    committed, and its session headers added to the error response."""
    if isinstance(error, engine.SafetyHalt):
        return  # audited where it was raised
    dispatched = call.dispatched
    session = await record(
        call,
        outcome=OUTCOME_ERROR if dispatched else OUTCOME_REFUSED,
        status=error.status_code,
        output_text="",
        report={"outcome": OUTCOME_ERROR if dispatched else OUTCOME_REFUSED},
        policy=call.governance.resolved.policy if call.governance else None,
        error_code=error.code,
    )
    if session is not None:
        error.headers.update(session_headers(session))


def _report(decision: engine.Decision) -> dict[str, JSONValue]:
    """Our analysis record (the ``dpe_report_hash`` input): never invented."""
    report: dict[str, JSONValue] = {
        "outcome": decision.outcome.value,
        "violations": list(decision.violations),
        "halted": decision.outcome is CallOutcome.HALT,
    }
    scan = decision.output_scan
    if scan is not None:
        report["risk"] = {
            "method": scan.risk.method,
            "score": scan.risk.score,
            "level": scan.risk.level.value,
        }
    return report


async def _verdict(
    call: Call, output_text: str, decision: engine.Decision, *, streamed: bool
) -> dict[str, str]:
    """Audit the decided call; return its CRP headers or raise its 451."""
    prepared = call.governance
    assert prepared is not None
    usage = call.usage
    facts = engine.call_facts(
        prepared,
        decision,
        prompt_tokens=usage.prompt_tokens if usage else None,
        completion_tokens=usage.completion_tokens if usage else None,
        streamed=streamed,
    )
    halted = decision.outcome is CallOutcome.HALT
    scan = decision.output_scan
    session = await record(
        call,
        outcome=decision.outcome.value,
        status=451 if halted else call.stream_status,
        output_text=output_text,
        report=_report(decision),
        halt_reason=decision.halt.value if decision.halt else None,
        policy=prepared.resolved.policy,
        risk=RiskLevel(scan.risk.level.value) if scan is not None else None,
        findings=Findings.of(decision),
    )
    if session is not None:
        facts = dataclasses.replace(facts, session=session)
    if halted:
        raise engine.response_halt(prepared, decision, facts)
    return response_headers(facts)


async def conclude(
    call: Call, output_text: str, *, streamed: bool = False
) -> dict[str, str]:
    """The verdict on a complete answer: its CRP headers, or a raised 451."""
    if call.governance is None:
        return {}
    decision = engine.decide(call.governance, output_text)
    return await _verdict(call, output_text, decision, streamed=streamed)


def stream_response(
    call: Call, body: AsyncIterator[bytes], headers: dict[str, str]
) -> Response:
    headers.update(STREAM_HEADERS)
    headers["Server-Timing"] = call.timing.header()
    return StreamingResponse(body, media_type="text/event-stream", headers=headers)


async def _replay(chunks: list[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


async def buffered(
    call: Call, events: AsyncGenerator[bytes, None], headers: dict[str, str]
) -> Response:
    """Read the whole stream, decide, then release it (or answer 451)."""
    call.defer_usage = True
    async with contextlib.aclosing(events) as stream:
        chunks = [chunk async for chunk in stream]
    headers.update(await conclude(call, "".join(call.output), streamed=True))
    return stream_response(call, _replay(chunks), headers)


async def with_verdict(
    call: Call, events: AsyncGenerator[bytes, None]
) -> AsyncIterator[bytes]:
    """Relay ``events`` untouched, then send the verdict as ``event: crp-headers``.

    A client that leaves mid-stream still leaves its audit record (status 499),
    committed in the background: a cancelled task can await nothing.
    """
    call.defer_usage = True
    finished = False
    try:
        async with contextlib.aclosing(events) as stream:  # a disconnect closes it
            async for chunk in stream:
                yield chunk
        finished = True
    finally:
        if not finished:
            call.runtime.audit.spawn(_record_cut_stream(call))
    assert call.governance is not None
    text = "".join(call.output)
    decision = engine.decide(call.governance, text)
    if decision.outcome is CallOutcome.HALT:  # not reachable: this policy cannot halt
        decision = engine.Decision(
            CallOutcome.WARN, decision.violations, decision.output_scan
        )
    yield crp_headers_event(await _verdict(call, text, decision, streamed=True))


async def _record_cut_stream(call: Call) -> None:
    await record(
        call,
        outcome=OUTCOME_CANCELLED,
        status=call.stream_status,
        output_text="".join(call.output),
        report={"outcome": OUTCOME_CANCELLED},
        policy=call.governance.resolved.policy if call.governance else None,
        error_code="client_closed_request",
    )


async def respond_stream(
    call: Call, events: AsyncGenerator[bytes, None], headers: Mapping[str, str]
) -> Response:
    """A governed stream: buffered when the policy can halt it, else relayed."""
    out = dict(headers)
    if call.governance is None:
        return stream_response(call, events, out)
    if call.governance.buffer_stream:
        return await buffered(call, events, out)
    out.update(_known_before_the_answer(call, call.governance))
    return stream_response(call, with_verdict(call, events), out)


def _known_before_the_answer(call: Call, prepared: engine.Prepared) -> dict[str, str]:
    """The CRP headers a relayed stream sends up front (G24): the policy, the
    mode, the session and its window; the verdict follows the stream."""
    facts = engine.call_facts(
        prepared,
        engine.Decision(CallOutcome.PASS),
        prompt_tokens=None,
        completion_tokens=None,
        streamed=True,
    )
    if (place := call.place) is not None:
        facts = dataclasses.replace(
            facts,
            session=SessionFacts(
                session_id=place.session_id,
                window=place.window,
                max_windows=max(place.limits.max_windows, place.window),
            ),
        )
    return upfront_headers(facts)
