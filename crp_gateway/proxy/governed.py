"""Where the data path meets CRP governance (``governance.engine``).

:func:`prepare` runs before dispatch. A complete answer goes through
:func:`conclude`, which returns the CRP headers or raises the 451. A stream is
either buffered and decided before its first byte (:func:`buffered`, when the
policy could still halt it, G24) or relayed as it comes with the verdict sent
after the end as ``event: crp-headers`` (:func:`with_verdict`).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from typing import Any

from starlette.responses import Response, StreamingResponse

from crp_gateway.audit.chain import JSONValue
from crp_gateway.audit.recorder import CallRecord
from crp_gateway.governance import engine
from crp_gateway.governance.headers import (
    CallOutcome,
    SessionFacts,
    crp_headers_event,
    response_headers,
)
from crp_gateway.governance.policy import SafetyPolicy, policy_hash
from crp_gateway.providers.directory import TenantContext
from crp_gateway.proxy.call import Call

STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


async def prepare(call: Call, body: dict[str, Any], context: TenantContext) -> None:
    """The request phase: 400 / 403 / 451 (``engine.SafetyHalt``) are raised; a
    halt is audited first (G19)."""
    if not call.runtime.settings.crp_governance:
        return
    sources = engine.PolicySources(
        key=call.principal.safety_policy,
        tenant=context.safety_policy,
        plan=context.plan,
    )
    try:
        call.governance = engine.prepare(
            call.client_headers,
            body,
            sources,
            gateway_url=call.runtime.settings.crp_gateway_url,
        )
    except engine.SafetyHalt as halt:
        body_ = halt.to_body()
        session = await _audit(
            call,
            outcome=CallOutcome.HALT,
            status=451,
            output_text="",
            report={"outcome": "HALT", "phase": "request", "halted": True},
            halt_reason=str(body_["crp_halt_reason"]),
            policy=None,
        )
        if session is not None:
            halt.attach_session(session)
        raise


async def _audit(
    call: Call,
    *,
    outcome: CallOutcome,
    status: int,
    output_text: str,
    report: dict[str, JSONValue],
    halt_reason: str | None,
    policy: SafetyPolicy | None,
) -> SessionFacts | None:
    """The call's durable audit record; ``None`` when audit is switched off."""
    if not call.runtime.settings.crp_audit:
        return None
    route, usage = call.route, call.usage
    tokens = (
        usage.prompt_tokens + usage.completion_tokens
        if usage
        and usage.prompt_tokens is not None
        and usage.completion_tokens is not None
        else None
    )
    return await call.runtime.audit.record(
        CallRecord(
            tenant_id=call.principal.tenant_id,
            key_id=call.principal.key_id,
            request_id=call.request_id,
            endpoint=call.endpoint,
            provider=route.upstream.name if route else "",
            model=route.model if route else "",
            status=status,
            outcome=outcome.value,
            output_text=output_text,
            report=report,
            halt_reason=halt_reason,
            tokens_used=tokens,
            policy_hash=policy_hash(policy) if policy is not None else None,
        )
    )


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
    session = await _audit(
        call,
        outcome=decision.outcome,
        status=451 if halted else call.stream_status,
        output_text=output_text,
        report=_report(decision),
        halt_reason=decision.halt.value if decision.halt else None,
        policy=prepared.resolved.policy,
    )
    if session is not None:
        facts = dataclasses.replace(facts, session=session)
    if halted:
        call.finish_usage(status=451)
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
    call.finish_usage(status=call.stream_status)
    return stream_response(call, _replay(chunks), headers)


async def with_verdict(
    call: Call, events: AsyncGenerator[bytes, None]
) -> AsyncIterator[bytes]:
    """Relay ``events`` untouched, then send the verdict as ``event: crp-headers``."""
    async with contextlib.aclosing(events) as stream:  # a disconnect closes it now
        async for chunk in stream:
            yield chunk
    assert call.governance is not None
    text = "".join(call.output)
    decision = engine.decide(call.governance, text)
    if decision.outcome is CallOutcome.HALT:  # not reachable: this policy cannot halt
        decision = engine.Decision(
            CallOutcome.WARN, decision.violations, decision.output_scan
        )
    yield crp_headers_event(await _verdict(call, text, decision, streamed=True))


async def respond_stream(
    call: Call, events: AsyncGenerator[bytes, None], headers: Mapping[str, str]
) -> Response:
    """A governed stream: buffered when the policy can halt it, else relayed."""
    out = dict(headers)
    if call.governance is None:
        return stream_response(call, events, out)
    if call.governance.buffer_stream:
        return await buffered(call, events, out)
    return stream_response(call, with_verdict(call, events), out)
