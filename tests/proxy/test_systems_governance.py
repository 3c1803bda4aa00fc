"""The calling key's AI system on the data path: EU AI Act header, 451, policy."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import openai
import pytest

from tests.fakes.upstream import FakeUpstream
from tests.proxy.conftest import WiredTenant
from tests.support import GatewayServer, LogCapture

HELLO = [{"role": "user", "content": "hello there"}]
CARD = "4111 1111 1111 1111"  # passes Luhn


def _system(gateway: GatewayServer, admin_key: str, **fields: Any) -> dict[str, Any]:
    body = {
        "name": f"system-{time.monotonic_ns()}",
        "domain": "software_development",
        "intended_purpose": "Help our engineers.",
        **fields,
    }
    with gateway.client(admin_key) as client:
        response = client.post("/v1/systems", json=body)
    assert response.status_code == 201, response.text
    system: dict[str, Any] = response.json()
    return system


def _key(
    gateway: GatewayServer, admin_key: str, system_id: str | None, **fields: Any
) -> dict[str, Any]:
    with gateway.client(admin_key) as client:
        response = client.post(
            "/v1/keys", json={"name": "app", "system_id": system_id, **fields}
        )
    assert response.status_code == 201, response.text
    key: dict[str, Any] = response.json()
    return key


def _chat(
    gateway: GatewayServer,
    key: str,
    *,
    headers: dict[str, str] | None = None,
    messages: list[dict[str, Any]] = HELLO,
    stream: bool = False,
) -> httpx.Response:
    with gateway.client(key) as client:
        return client.post(
            "/v1/chat/completions",
            json={"model": "gpt-4o", "messages": messages, "stream": stream},
            headers=headers or {},
        )


def _openai(gateway: GatewayServer, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=key, max_retries=0)


def test_a_bound_key_carries_its_systems_class(
    gateway: GatewayServer, wired: WiredTenant, upstream: FakeUpstream
) -> None:
    system = _system(
        gateway,
        wired.api_key,
        domain="customer_support",
        high_risk_indicators={"credit": True},
    )
    key = _key(gateway, wired.api_key, system["id"])["api_key"]
    raw = _openai(gateway, key).chat.completions.with_raw_response.create(
        model="gpt-4o",
        messages=HELLO,  # type: ignore[arg-type]
    )
    assert raw.http_response.status_code == 200
    assert raw.headers["crp-compliance-eu-ai-act"] == "HIGH"
    assert raw.parse().choices[0].message.content
    assert len(upstream.requests) == 1


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, "MINIMAL"),
        ({"domain": "general_information"}, "LIMITED"),
        ({"automated_decision_making": True}, "LIMITED"),
    ],
)
def test_each_class_reaches_the_header(
    gateway: GatewayServer,
    wired: WiredTenant,
    fields: dict[str, Any],
    expected: str,
) -> None:
    system = _system(gateway, wired.api_key, **fields)
    key = _key(gateway, wired.api_key, system["id"])["api_key"]
    response = _chat(gateway, key)
    assert response.status_code == 200, response.text
    assert response.headers["crp-compliance-eu-ai-act"] == expected


def test_an_unacceptable_system_halts_before_dispatch_and_is_audited(
    gateway: GatewayServer, wired: WiredTenant, upstream: FakeUpstream
) -> None:
    system = _system(
        gateway,
        wired.api_key,
        domain="biometric_id",
        high_risk_indicators={"biometric_id": True},
    )
    assert system["eu_ai_act"] == "UNACCEPTABLE"
    key = _key(gateway, wired.api_key, system["id"])["api_key"]
    response = _chat(gateway, key)
    assert response.status_code == 451
    body = response.json()
    assert body["crp_halt_reason"] == "UNACCEPTABLE_EU_AI_ACT"
    assert body["error"]["code"] == "UNACCEPTABLE_EU_AI_ACT"
    assert body["error"]["type"] == "crp_safety_halt"
    assert body["retry_condition"] == "oversight-required"
    assert response.headers["crp-compliance-eu-ai-act"] == "UNACCEPTABLE"
    assert response.headers["crp-safety-retry-after"] == "oversight-required"
    assert upstream.requests == []
    path = body["audit_trail_uri"].split("://", 1)[1].split("/", 1)[1]
    with gateway.client(wired.api_key) as client:
        trail = client.get(f"/{path}").json()
    last = trail["events"][-1]
    assert last["event_type"] == "SAFETY_HALT"
    assert json.loads(last["data"])["crp_halt_reason"] == "UNACCEPTABLE_EU_AI_ACT"


@pytest.mark.parametrize("route", ["stream", "embeddings", "messages", "sdk"])
def test_an_unacceptable_system_halts_on_every_route(
    gateway: GatewayServer, wired: WiredTenant, upstream: FakeUpstream, route: str
) -> None:
    system = _system(gateway, wired.api_key, domain="social_scoring")
    key = _key(gateway, wired.api_key, system["id"])["api_key"]
    if route == "sdk":
        with pytest.raises(openai.APIStatusError) as raised:
            _openai(gateway, key).chat.completions.create(
                model="gpt-4o",
                messages=HELLO,  # type: ignore[arg-type]
            )
        assert raised.value.status_code == 451
        assert raised.value.response.json()["crp_halt_reason"] == (
            "UNACCEPTABLE_EU_AI_ACT"
        )
    else:
        with gateway.client(key) as client:
            if route == "stream":
                response = client.post(
                    "/v1/chat/completions",
                    json={"model": "gpt-4o", "messages": HELLO, "stream": True},
                )
            elif route == "embeddings":
                response = client.post(
                    "/v1/embeddings", json={"model": "gpt-4o", "input": "x"}
                )
            else:
                response = client.post(
                    "/v1/messages",
                    json={
                        "model": "claude-sonnet-4-5",
                        "max_tokens": 8,
                        "messages": HELLO,
                    },
                )
        assert response.status_code == 451
        assert response.json()["crp_halt_reason"] == "UNACCEPTABLE_EU_AI_ACT"
    assert upstream.requests == []


def test_reclassifying_to_unacceptable_halts_the_next_call(
    gateway: GatewayServer, wired: WiredTenant, upstream: FakeUpstream
) -> None:
    system = _system(gateway, wired.api_key)
    key = _key(gateway, wired.api_key, system["id"])["api_key"]
    assert _chat(gateway, key).headers["crp-compliance-eu-ai-act"] == "MINIMAL"
    with gateway.client(wired.api_key) as client:
        patched = client.patch(
            f"/v1/systems/{system['id']}", json={"domain": "social_scoring"}
        )
    assert patched.json()["eu_ai_act"] == "UNACCEPTABLE"
    upstream.reset()
    halted = _chat(gateway, key)
    assert halted.status_code == 451
    assert upstream.requests == []


def test_an_unregistered_key_is_unknown_and_warned_about_once(
    gateway: GatewayServer, wired: WiredTenant
) -> None:
    created = _key(gateway, wired.api_key, None)
    with LogCapture(json=True) as logs:
        first = _chat(gateway, created["api_key"])
        second = _chat(gateway, created["api_key"])
    assert first.headers["crp-compliance-eu-ai-act"] == "UNKNOWN"
    assert second.headers["crp-compliance-eu-ai-act"] == "UNKNOWN"
    warnings = [
        json.loads(line)
        for line in logs.text.splitlines()
        if "crp.system_unregistered" in line
    ]
    assert len(warnings) == 1
    assert warnings[0]["key_id"] == created["id"]
    assert warnings[0]["level"] == "warning"
    secret = created["api_key"].rsplit("_", 1)[1]
    assert secret not in logs.text


def test_the_systems_default_policy_applies_and_requests_may_only_tighten(
    gateway: GatewayServer, wired: WiredTenant, upstream: FakeUpstream
) -> None:
    with gateway.client(wired.api_key) as client:
        client.put("/v1/tenants/me/policy", json={"safety_policy": "warn-on HIGH"})
    system = _system(
        gateway, wired.api_key, default_safety_policy="halt-on HIGH; block-pii"
    )
    key = _key(gateway, wired.api_key, system["id"])["api_key"]
    applied = _chat(gateway, key).headers["crp-safety-policy-applied"]
    assert "halt-on HIGH" in applied
    assert "block-pii" in applied
    upstream.reset()
    card = [{"role": "user", "content": f"my card is {CARD}"}]
    assert _chat(gateway, key, messages=card).status_code == 451
    assert upstream.requests == []
    looser = _chat(gateway, key, headers={"CRP-Safety-Policy": "halt-on CRITICAL"})
    assert looser.status_code == 403
    assert looser.headers["crp-safety-policy-violation"] == "inheritance"
    tighter = _chat(gateway, key, headers={"CRP-Safety-Policy": "block-fabrication"})
    assert tighter.status_code == 200
    assert "block-fabrication" in tighter.headers["crp-safety-policy-applied"]
    assert "halt-on HIGH" in tighter.headers["crp-safety-policy-applied"]
    # the tenant's looser default still governs the tenant's unbound keys
    assert (
        "halt-on"
        not in _chat(gateway, wired.api_key).headers["crp-safety-policy-applied"]
    )


def test_a_keys_policy_outranks_its_systems_default(
    gateway: GatewayServer, wired: WiredTenant
) -> None:
    system = _system(gateway, wired.api_key, default_safety_policy="default-src 'none'")
    by_system = _key(gateway, wired.api_key, system["id"])["api_key"]
    by_key = _key(
        gateway, wired.api_key, system["id"], safety_policy="warn-on CRITICAL"
    )["api_key"]
    assert _chat(gateway, by_system).status_code == 451
    passed = _chat(gateway, by_key)
    assert passed.status_code == 200
    assert passed.headers["crp-safety-policy-applied"] == "warn-on CRITICAL"
    assert passed.headers["crp-compliance-eu-ai-act"] == "MINIMAL"


def test_a_changed_default_policy_applies_on_this_replica_at_once(
    gateway: GatewayServer, wired: WiredTenant
) -> None:
    system = _system(gateway, wired.api_key)
    key = _key(gateway, wired.api_key, system["id"])["api_key"]
    assert _chat(gateway, key).status_code == 200
    with gateway.client(wired.api_key) as client:
        client.patch(
            f"/v1/systems/{system['id']}",
            json={"default_safety_policy": "default-src 'none'"},
        )
    assert _chat(gateway, key).status_code == 451
    with gateway.client(wired.api_key) as client:
        client.patch(
            f"/v1/systems/{system['id']}", json={"default_safety_policy": None}
        )
    assert _chat(gateway, key).status_code == 200
