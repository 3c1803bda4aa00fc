"""Where the data path meets CRP governance (``governance.engine``).

:func:`prepare` runs before dispatch. A complete answer goes through
:func:`conclude`, which returns the CRP headers or raises the 451. A stream is
either buffered and decided before its first byte (:func:`buffered`, when the
policy could still halt it, G24) or relayed as it comes with the verdict sent
after the end as ``event: crp-headers`` (:func:`with_verdict`).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from typing import Any

from starlette.responses import Response, StreamingResponse

from crp_gateway.governance import engine
from crp_gateway.governance.headers import (
    CallOutcome,
    crp_headers_event,
    response_headers,
)
from crp_gateway.providers.directory import TenantContext
from crp_gateway.proxy.call import Call

STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def prepare(call: Call, body: dict[str, Any], context: TenantContext) -> None:
    """The request phase: 400 / 403 / 451 (``engine.SafetyHalt``) are raised."""
    if not call.runtime.settings.crp_governance:
        return
    sources = engine.PolicySources(
        key=call.principal.safety_policy,
        tenant=context.safety_policy,
        plan=context.plan,
    )
    call.governance = engine.prepare(
        call.client_headers,
        body,
        sources,
        gateway_url=call.runtime.settings.crp_gateway_url,
    )


def _facts_headers(
    call: Call, decision: engine.Decision, *, streamed: bool
) -> dict[str, str]:
    assert call.governance is not None
    usage = call.usage
    facts = engine.call_facts(
        call.governance,
        decision,
        prompt_tokens=usage.prompt_tokens if usage else None,
        completion_tokens=usage.completion_tokens if usage else None,
        streamed=streamed,
    )
    if decision.outcome is CallOutcome.HALT:
        raise engine.response_halt(call.governance, decision, facts)
    return response_headers(facts)


def conclude(call: Call, output_text: str, *, streamed: bool = False) -> dict[str, str]:
    """The verdict on a complete answer: its CRP headers, or a raised 451."""
    if call.governance is None:
        return {}
    decision = engine.decide(call.governance, output_text)
    try:
        return _facts_headers(call, decision, streamed=streamed)
    except engine.SafetyHalt:
        call.finish_usage(status=451)
        raise


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
    headers.update(conclude(call, "".join(call.output), streamed=True))
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
    decision = engine.decide(call.governance, "".join(call.output))
    if decision.outcome is CallOutcome.HALT:  # not reachable: this policy cannot halt
        decision = engine.Decision(
            CallOutcome.WARN, decision.violations, decision.output_scan
        )
    yield crp_headers_event(_facts_headers(call, decision, streamed=True))


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
