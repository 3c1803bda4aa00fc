"""A governed call whose policy names a ``report-uri`` sends its violation report
(§3.6) through the outbox, committed with the call's audit record."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.conftest import StartGateway
from tests.fakes.upstream import FakeUpstream
from tests.outbox.receiver import Receiver
from tests.outbox.support import signature_valid
from tests.proxy.conftest import register
from tests.support import Backend, GatewayServer, sign_up

FAST = {"crp_reports_allow_private": True, "crp_outbox_poll_seconds": 0.05}
# An answer the published heuristic scores HIGH (secrets and a card number).
RISKY = (
    "key AKIAIOSFODNN7EXAMPLE and sk-proj-abcdefghijklmnopqrstuvwxyz123456 "
    "card 4111 1111 1111 1111 Revenue was 48,213 in 1987"
)


def _wire(server: GatewayServer, upstream: FakeUpstream, policy: str) -> str:
    tenant = sign_up(server)
    register(
        server,
        tenant.api_key,
        "openai",
        {
            "api_key": "sk-report-" + "r" * 24,
            "default_model": "gpt-4o",
            "base_url": upstream.openai_base_url,
        },
    )
    with server.client(tenant.api_key) as client:
        response = client.put("/v1/tenants/me/policy", json={"safety_policy": policy})
    assert response.status_code == 200, response.text
    time.sleep(1.1)  # the tenant's context (its policy) is cached for a second
    return tenant.api_key


def _chat(server: GatewayServer, key: str, content: str) -> Any:
    with server.client(key) as client:
        return client.post(
            "/v1/chat/completions",
            json={
                "model": "gpt-4o",
                "messages": [{"role": "user", "content": content}],
            },
        )


def _deliveries(server: GatewayServer, key: str) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 15
    while True:
        with server.client(key) as client:
            rows: list[dict[str, Any]] = client.get("/v1/reports/deliveries").json()[
                "data"
            ]
        if rows and all(row["status"] != "pending" for row in rows):
            return rows
        if time.monotonic() > deadline:
            pytest.fail(f"deliveries not settled: {rows}")
        time.sleep(0.05)


def test_a_warned_call_reports_to_its_report_uri(
    backend: Backend, start_gateway: StartGateway, upstream: FakeUpstream
) -> None:
    if backend.is_services:
        pytest.skip("production mode (PostgreSQL) accepts https targets only")
    with Receiver() as receiver, start_gateway(**FAST) as server:
        key = _wire(server, upstream, f"warn-on HIGH; report-uri {receiver.url()}")
        quiet = _chat(server, key, "hello there")  # LOW risk: nothing to report
        warned = _chat(server, key, RISKY)
        assert warned.status_code == 200
        assert warned.headers["crp-safety-hallucination-risk"] == "HIGH"
        assert receiver.wait_for(1)
        with server.client(key) as client:
            secret = client.get("/v1/reports/signing-secret").json()["secret"]
        rows = _deliveries(server, key)
    assert len(receiver.requests) == 1  # the quiet call sent none
    sent = receiver.requests[0]
    assert signature_valid(secret, sent.headers, sent.body)
    report = json.loads(sent.body)
    assert report["session_id"] == warned.headers["crp-context-session-id"]
    assert report["window_number"] == 1
    assert report["risk_level"] == "HIGH"
    assert report["audit_trail_uri"] == warned.headers["crp-compliance-audit-trail-uri"]
    assert report["directive_violated"] == "warn-on"
    assert report["grounding_pct"] is None  # never measured, never invented
    assert quiet.headers["crp-context-session-id"] != report["session_id"]
    assert [row["status"] for row in rows] == ["delivered"]


def test_a_request_phase_halt_reports_too(
    backend: Backend, start_gateway: StartGateway, upstream: FakeUpstream
) -> None:
    if backend.is_services:
        pytest.skip("production mode (PostgreSQL) accepts https targets only")
    with Receiver() as receiver, start_gateway(**FAST) as server:
        key = _wire(server, upstream, f"block-pii; report-uri {receiver.url()}")
        halted = _chat(server, key, "charge card 4111 1111 1111 1111 please")
        assert halted.status_code == 451
        assert receiver.wait_for(1)
    report = json.loads(receiver.requests[0].body)
    assert report["session_id"] == halted.json()["session_id"]
    assert report["directive_violated"] == "block-pii"
    assert "4111" not in receiver.requests[0].body.decode()


def test_production_refuses_an_http_report_target(
    backend: Backend, start_gateway: StartGateway, upstream: FakeUpstream
) -> None:
    if not backend.is_services:
        pytest.skip("the embedded default is development mode")
    with Receiver() as receiver, start_gateway(**FAST) as server:
        key = _wire(server, upstream, f"warn-on HIGH; report-uri {receiver.url()}")
        assert _chat(server, key, RISKY).status_code == 200
        rows = _deliveries(server, key)
    assert [row["status"] for row in rows] == ["dead"]
    assert "https" in rows[0]["last_error"]
    assert receiver.requests == []
