"""CRP governance on the data path: headers in and out, policies, 451 halts."""

from __future__ import annotations

import json
import re
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.fakes.upstream import FakeUpstream
from tests.proxy.conftest import WiredTenant
from tests.support import GatewayServer

HELLO = [{"role": "user", "content": "hello there"}]
CARD = "4111 1111 1111 1111"  # passes Luhn

#: Value formats of crp-protocol.md §2, written from the digest (not from the code).
_DIRECTIVE = r"[a-z0-9-]+( [A-Za-z0-9'.:/_-]+)*"
FORMATS = {
    "crp-context-protocol-version": r"\d+\.\d+\.\d+",
    "crp-safety-policy-applied": f"{_DIRECTIVE}(; {_DIRECTIVE})*",
    "crp-context-mode": r"zero-ckf",
    "crp-context-quality-tier": r"N/A",
    "crp-context-saturation": r"0\.0",
    "crp-context-facts-used": r"0/0",
    "crp-context-etag": r"sha256:[0-9a-f]{64}",
    "crp-safety-grounding-pct": r"N/A",
    "crp-memory-ckf-hits": r"0",
    "crp-compliance-gdpr-pii": r"true|false",
    "crp-compliance-eu-ai-act": r"UNACCEPTABLE|HIGH|LIMITED|MINIMAL|UNKNOWN",
    "crp-context-tokens-used": r"\d+",
    "crp-safety-hallucination-risk": r"LOW|MEDIUM|HIGH|CRITICAL",
    "crp-safety-hallucination-score": r"[01]\.\d+",
    "crp-safety-fabrications": r"\d+",
    "crp-quality-repetition": r"(NONE|MINOR|SIGNIFICANT|SEVERE)(; overlap=[01]\.\d+)?",
    "crp-safety-oversight-mode": r"log-only|auto|human-review|halt",
}


def _chat(
    gateway: GatewayServer,
    key: str,
    *,
    headers: dict[str, str] | None = None,
    messages: list[dict[str, Any]] = HELLO,
    stream: bool = False,
    model: str = "gpt-4o",
) -> httpx.Response:
    with gateway.client(key) as client:
        return client.post(
            "/v1/chat/completions",
            json={"model": model, "messages": messages, "stream": stream},
            headers=headers or {},
        )


def test_a_normal_answer_carries_the_crp_headers_in_their_formats(
    gateway: GatewayServer, wired: WiredTenant
) -> None:
    response = _chat(gateway, wired.api_key)
    assert response.status_code == 200
    for name, pattern in FORMATS.items():
        assert name in response.headers, name
        assert re.fullmatch(pattern, response.headers[name]), (
            name,
            response.headers[name],
        )
    assert response.headers["crp-context-tokens-used"] == "5"  # 2 prompt + 3 completion
    assert "echo" not in " ".join(response.headers.values())


def test_security_headers_are_on_every_response(gateway: GatewayServer) -> None:
    with gateway.client() as client:
        for response in (client.get("/health"), client.get("/v1/keys")):
            assert response.headers["x-content-type-options"] == "nosniff"
            assert response.headers["x-frame-options"] == "DENY"
            assert "max-age=31536000" in response.headers["strict-transport-security"]
            assert (
                "frame-ancestors 'none'" in response.headers["content-security-policy"]
            )


@pytest.mark.parametrize("path", ["chat", "stream", "embeddings", "messages"])
def test_axiom_4_the_provider_never_sees_a_crp_header(
    gateway: GatewayServer, wired: WiredTenant, upstream: FakeUpstream, path: str
) -> None:
    with gateway.client(wired.api_key) as client:
        first = client.post(
            "/v1/chat/completions",
            json={"model": "gpt-4o", "messages": HELLO},
            headers={"CRP-Safety-Policy": "warn-on HIGH"},
        )
    token = first.headers["crp-set-session"].split(";")[0].removeprefix("token=")
    headers = {
        "CRP-Safety-Policy": "warn-on HIGH",
        "CRP-Session-Token": token,
        "CRP-Context-Continuation-Id": first.headers["crp-context-continuation-id"],
        "CRP-Context-Session-Id": first.headers["crp-context-session-id"],
        "CRP-Provider-Key": "sk-byok-should-not-travel",
        "Cookie": "a=b",
        "X-Forwarded-For": "198.51.100.7",
        "Forwarded": "for=198.51.100.7",
    }
    with gateway.client(wired.api_key) as client:
        if path == "embeddings":
            response = client.post(
                "/v1/embeddings",
                json={"model": "gpt-4o", "input": "x"},
                headers=headers,
            )
        elif path == "messages":
            response = client.post(
                "/v1/messages",
                json={"model": "claude-sonnet-4-5", "max_tokens": 8, "messages": HELLO},
                headers=headers,
            )
        else:
            response = client.post(
                "/v1/chat/completions",
                json={"model": "gpt-4o", "messages": HELLO, "stream": path == "stream"},
                headers=headers,
            )
    assert response.status_code == 200, response.text
    assert response.headers["crp-context-window"].startswith("2/")  # continued
    seen = upstream.last_request.headers
    names = {name.lower() for name in seen}
    assert not {n for n in names if n.startswith("crp-")}
    assert not names & {"cookie", "x-forwarded-for", "forwarded"}
    assert "sk-byok-should-not-travel" not in json.dumps(dict(seen.items()))


def test_crp_headers_from_the_provider_are_dropped(
    gateway: GatewayServer, wired: WiredTenant, upstream: FakeUpstream
) -> None:
    upstream.script(
        headers={
            "CRP-Context-Mode": "full-ckf",
            "CRP-Provenance-HMAC": "x",
            "CRP-Quality-Score": "0.99",
        }
    )
    response = _chat(gateway, wired.api_key)
    # the gateway's own values, never the provider's
    hmac = response.headers["crp-provenance-hmac"]
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", hmac)
    assert response.headers["crp-context-mode"] == "zero-ckf"
    assert "crp-quality-score" not in response.headers  # we do not compute it


def test_default_src_none_halts_with_451_before_the_provider(
    gateway: GatewayServer, wired: WiredTenant, upstream: FakeUpstream
) -> None:
    response = _chat(
        gateway, wired.api_key, headers={"CRP-Safety-Policy": "default-src 'none'"}
    )
    assert response.status_code == 451
    body = response.json()
    for field in (
        "crp_halt_reason",
        "session_id",
        "audit_trail_uri",
        "oversight_required",
        "retry_condition",
    ):
        assert field in body
    assert body["error"]["type"] == "crp_safety_halt"
    assert body["error"]["code"] == body["crp_halt_reason"]
    assert response.headers["crp-safety-retry-after"] == body["retry_condition"]
    assert 'rel="blocked-by"' in response.headers["link"]
    assert "default-src" in response.headers["crp-safety-policy-violation"]
    assert upstream.requests == []


def test_the_openai_sdk_raises_api_status_error_451(
    gateway: GatewayServer, wired: WiredTenant
) -> None:
    client = openai.OpenAI(
        base_url=f"{gateway.url}/v1",
        api_key=wired.api_key,
        max_retries=0,
        default_headers={"CRP-Safety-Policy": "default-src 'none'"},
    )
    with pytest.raises(openai.APIStatusError) as raised:
        client.chat.completions.create(model="gpt-4o", messages=HELLO)  # type: ignore[arg-type]
    assert raised.value.status_code == 451


@pytest.mark.parametrize(
    ("headers", "needle"),
    [
        ({"CRP-Safety-Policy": "halt-on LOW"}, "halt-on"),
        ({"CRP-Safety-Policy": "allow-hallucination"}, "allow-hallucination"),
        ({"CRP-Safety-Mode": "reckless"}, "CRP-Safety-Mode"),
        ({"CRP-Safety-Hallucination-Risk": "LOW"}, "CRP-Safety-Hallucination-Risk"),
    ],
)
def test_bad_crp_request_headers_are_400(
    gateway: GatewayServer,
    wired: WiredTenant,
    upstream: FakeUpstream,
    headers: dict[str, str],
    needle: str,
) -> None:
    response = _chat(gateway, wired.api_key, headers=headers)
    assert response.status_code == 400
    assert needle.lower() in response.json()["error"]["message"].lower()
    assert upstream.requests == []


def test_a_card_number_under_block_pii_halts_before_the_provider(
    gateway: GatewayServer, wired: WiredTenant, upstream: FakeUpstream
) -> None:
    response = _chat(
        gateway,
        wired.api_key,
        headers={"CRP-Safety-Policy": "block-pii"},
        messages=[{"role": "user", "content": f"charge card {CARD} please"}],
    )
    assert response.status_code == 451
    assert "block-pii" in response.headers["crp-safety-policy-violation"]
    assert CARD not in response.text
    assert upstream.requests == []


def test_a_number_failing_luhn_is_not_personal_data(
    gateway: GatewayServer, wired: WiredTenant
) -> None:
    response = _chat(
        gateway,
        wired.api_key,
        headers={"CRP-Safety-Policy": "block-pii"},
        messages=[{"role": "user", "content": "order 4111 1111 1111 1112 shipped"}],
    )
    assert response.status_code == 200


def test_a_fabricated_number_in_the_answer_halts_under_block_fabrication(
    gateway: GatewayServer, wired: WiredTenant, upstream: FakeUpstream
) -> None:
    upstream.script(
        body={
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1,
            "model": "gpt-4o",
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": "Revenue was 48,213 in 1987.",
                    },
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 2, "completion_tokens": 5, "total_tokens": 7},
        }
    )
    response = _chat(
        gateway, wired.api_key, headers={"CRP-Safety-Policy": "block-fabrication"}
    )
    assert response.status_code == 451
    assert "block-fabrication" in response.headers["crp-safety-policy-violation"]
    assert "48,213" not in response.text


def test_warnings_pass_with_their_headers(
    gateway: GatewayServer, wired: WiredTenant
) -> None:
    response = _chat(
        gateway,
        wired.api_key,
        headers={"CRP-Safety-Policy-Report-Only": "block-parametric"},
    )
    assert response.status_code == 200
    assert "block-parametric" in response.headers["crp-safety-policy-violation"]


def test_a_pass_through_stream_sends_its_verdict_after_done(
    gateway: GatewayServer, wired: WiredTenant
) -> None:
    response = _chat(gateway, wired.api_key, stream=True)
    text = response.text
    done = text.index("data: [DONE]")
    tail = text[done:]
    assert "event: crp-headers" in tail
    verdict = json.loads(tail.split("event: crp-headers\ndata: ", 1)[1].split("\n")[0])
    assert verdict["CRP-Context-Mode"] == "zero-ckf"
    assert "CRP-Safety-Policy-Applied" in verdict


@pytest.mark.parametrize("model", ["gpt-4o", "claude-sonnet-4-5"])
def test_the_openai_sdk_parses_a_stream_with_a_verdict_cleanly(
    gateway: GatewayServer, wired: WiredTenant, model: str
) -> None:
    client = openai.OpenAI(
        base_url=f"{gateway.url}/v1", api_key=wired.api_key, max_retries=0
    )
    chunks = list(
        client.chat.completions.create(
            model=model,
            messages=HELLO,
            stream=True,  # type: ignore[arg-type]
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: hello there"


def test_the_anthropic_sdk_parses_a_stream_with_a_verdict_cleanly(
    gateway: GatewayServer, wired: WiredTenant
) -> None:
    client = anthropic.Anthropic(
        base_url=gateway.url, api_key=wired.api_key, max_retries=0
    )
    with client.messages.stream(
        model="claude-sonnet-4-5",
        max_tokens=16,
        messages=HELLO,  # type: ignore[arg-type]
    ) as stream:
        assert "".join(stream.text_stream) == "echo: hello there"


def test_a_stream_the_policy_can_halt_is_decided_before_its_first_byte(
    gateway: GatewayServer, wired: WiredTenant, upstream: FakeUpstream
) -> None:
    chunk = {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-4o",
        "choices": [
            {
                "index": 0,
                "delta": {
                    "role": "assistant",
                    "content": "Revenue was 48,213 in 1987.",
                },
                "finish_reason": None,
            }
        ],
    }
    upstream.script(body=f"data: {json.dumps(chunk)}\n\ndata: [DONE]\n\n")
    response = _chat(
        gateway,
        wired.api_key,
        stream=True,
        headers={"CRP-Safety-Policy": "block-fabrication"},
    )
    assert response.status_code == 451  # decided before any byte of the stream
    assert "48,213" not in response.text
    assert upstream.requests  # this halt needed the answer


def test_a_buffered_stream_that_passes_is_released_whole(
    gateway: GatewayServer, wired: WiredTenant
) -> None:
    response = _chat(
        gateway,
        wired.api_key,
        stream=True,
        headers={"CRP-Safety-Policy": "block-fabrication"},
    )
    assert response.status_code == 200
    assert "block-fabrication" in response.headers["crp-safety-policy-applied"]
    assert "data: [DONE]" in response.text
    assert "event: crp-headers" not in response.text  # the verdict is in the headers


def test_the_tenant_default_policy_applies_and_requests_may_only_tighten(
    gateway: GatewayServer, wired: WiredTenant
) -> None:
    with gateway.client(wired.api_key) as client:
        bad = client.put("/v1/tenants/me/policy", json={"safety_policy": "halt-on LOW"})
        ok = client.put(
            "/v1/tenants/me/policy", json={"safety_policy": "halt-on HIGH; block-pii"}
        )
        me = client.get("/v1/tenants/me").json()
    assert bad.status_code == 400
    assert ok.status_code == 200
    assert me["safety_policy"] == "halt-on HIGH; block-pii"
    applied = _chat(gateway, wired.api_key).headers["crp-safety-policy-applied"]
    assert "halt-on HIGH" in applied
    assert "block-pii" in applied
    looser = _chat(
        gateway, wired.api_key, headers={"CRP-Safety-Policy": "halt-on CRITICAL"}
    )
    assert looser.status_code == 403
    assert looser.headers["crp-safety-policy-violation"] == "inheritance"
    tighter = _chat(
        gateway, wired.api_key, headers={"CRP-Safety-Policy": "block-fabrication"}
    )
    assert tighter.status_code == 200
    assert "block-fabrication" in tighter.headers["crp-safety-policy-applied"]


def test_a_keys_policy_overrides_the_tenant_default(
    gateway: GatewayServer, wired: WiredTenant, upstream: FakeUpstream
) -> None:
    with gateway.client(wired.api_key) as client:
        client.put("/v1/tenants/me/policy", json={"safety_policy": "warn-on HIGH"})
        strict = client.post(
            "/v1/keys", json={"name": "strict", "safety_policy": "default-src 'none'"}
        ).json()
    assert strict["safety_policy"] == "default-src 'none'"
    assert _chat(gateway, strict["api_key"]).status_code == 451
    assert _chat(gateway, wired.api_key).status_code == 200


def test_the_discovery_document(gateway: GatewayServer) -> None:
    with gateway.client() as client:
        document = client.get("/.well-known/crp-gateway.json").json()
    assert re.fullmatch(r"\d+\.\d+\.\d+", document["crp_version"])
    for field in ("conformance_level", "endpoints", "providers_supported"):
        assert field in document
    methods = json.dumps(document)
    assert "crp-gw.risk/1" in methods
    assert "crp-gw.pii/1" in methods
    # the session limits the gateway enforces (tests/proxy/test_sessions.py)
    assert (document["max_fan_out"], document["max_dag_nodes"]) == (10, 50)
    free = document["sessions"]["limits"]["free"]
    assert (free["max_windows"], free["max_fan_out"]) == (3, 3)
    assert document["sessions"]["safety_budget"]["decrements"]["HIGH"] == 0.15


def test_embeddings_are_governed_too(
    gateway: GatewayServer, wired: WiredTenant, upstream: FakeUpstream
) -> None:
    with gateway.client(wired.api_key) as client:
        halted = client.post(
            "/v1/embeddings",
            json={"model": "gpt-4o", "input": [f"card {CARD}"]},
            headers={"CRP-Safety-Policy": "block-pii"},
        )
        passed = client.post("/v1/embeddings", json={"model": "gpt-4o", "input": "x"})
    assert halted.status_code == 451
    assert passed.status_code == 200
    assert passed.headers["crp-context-mode"] == "zero-ckf"
    assert len(upstream.requests) == 1
