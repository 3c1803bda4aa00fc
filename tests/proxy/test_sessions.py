"""Session continuation with signed tokens (SPEC-007, G12, G14, G15).

An answer's ``CRP-Set-Session`` token, sent back with its continuation id,
continues the session: same session id, the next window, chained to the last.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from crp_gateway.audit.master_keys import TenantKeys
from crp_gateway.audit.session_token import KeyRing, SessionToken, open_token
from crp_gateway.runtime import build_vault
from crp_gateway.store.database import create_engine, create_sessionmaker
from tests.conftest import StartGateway
from tests.fakes.upstream import FakeUpstream
from tests.proxy.conftest import WiredTenant, register
from tests.support import Backend, GatewayServer, run, sign_up

HELLO = [{"role": "user", "content": "hello there"}]
# §5.2: token=<b64u>.<b64u>; Path=/; Max-Age=3600; Signed; SameSite=Strict; Window=N
SET_SESSION = re.compile(
    r"token=[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}; Path=/; Max-Age=3600; Signed; "
    r"SameSite=Strict; Window=\d+(; QualityHistory=[A-Z/,]+)?"
)
CONTINUATION = re.compile(r"crp_cont_[0-9a-f]{32}")


def _token(response: httpx.Response) -> str:
    header = response.headers["crp-set-session"]
    assert SET_SESSION.fullmatch(header), header
    return header.split(";", 1)[0].removeprefix("token=")


def _continue(response: httpx.Response) -> dict[str, str]:
    """The request headers that continue the session ``response`` belongs to."""
    return {
        "CRP-Session-Token": _token(response),
        "CRP-Context-Continuation-Id": response.headers["crp-context-continuation-id"],
    }


def _chat(
    gateway: GatewayServer, key: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    with gateway.client(key) as client:
        return client.post(
            "/v1/chat/completions",
            json={"model": "gpt-4o", "messages": HELLO},
            headers=headers or {},
        )


def _verify(gateway: GatewayServer, key: str, session_id: str) -> dict[str, Any]:
    with gateway.client(key) as client:
        response = client.get("/v1/audit/verify", params={"session_id": session_id})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _payload(token: str) -> dict[str, Any]:
    part = token.split(".", 1)[0]
    data: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    )
    return data


def test_the_token_of_an_answer_continues_its_session(
    gateway: GatewayServer, wired: WiredTenant
) -> None:
    first = _chat(gateway, wired.api_key)
    assert first.status_code == 200
    assert first.headers["crp-context-window"] == "1/3"
    assert CONTINUATION.fullmatch(first.headers["crp-context-continuation-id"])
    second = _chat(gateway, wired.api_key, _continue(first))
    assert second.status_code == 200, second.text
    session_id = first.headers["crp-context-session-id"]
    assert second.headers["crp-context-session-id"] == session_id
    assert second.headers["crp-context-window"] == "2/3"
    assert second.headers["crp-provenance-chain-integrity"] == "VALID"
    assert second.headers["crp-provenance-hmac"] != first.headers["crp-provenance-hmac"]
    assert (
        second.headers["crp-context-continuation-id"]
        != first.headers["crp-context-continuation-id"]
    )
    verified = _verify(gateway, wired.api_key, session_id)
    assert verified["status"] == "VALID"
    assert verified["windows"]["checked"] == 2
    # window 2 is chained to window 1: its token's chain tip is window 1's HMAC
    assert _payload(_token(first))["ct"] == first.headers["crp-provenance-hmac"]
    assert _payload(_token(second))["win"] == 2


def test_the_openai_sdk_can_carry_the_token(
    gateway: GatewayServer, wired: WiredTenant
) -> None:
    client = openai.OpenAI(
        base_url=f"{gateway.url}/v1", api_key=wired.api_key, max_retries=0
    )
    with client:
        first = client.chat.completions.with_raw_response.create(
            model="gpt-4o",
            messages=HELLO,  # type: ignore[arg-type]
        )
        token = first.headers["crp-set-session"].split(";", 1)[0][len("token=") :]
        second = client.chat.completions.with_raw_response.create(
            model="gpt-4o",
            messages=HELLO,  # type: ignore[arg-type]
            extra_headers={
                "CRP-Session-Token": token,
                "CRP-Context-Continuation-Id": first.headers[
                    "crp-context-continuation-id"
                ],
            },
        )
    assert second.headers["crp-context-window"] == "2/3"
    assert (
        second.headers["crp-context-session-id"]
        == first.headers["crp-context-session-id"]
    )
    assert second.parse().choices[0].message.content == "echo: hello there"


def _flip(token: str, at: int) -> str:
    flipped = "B" if token[at] == "A" else "A"
    return token[:at] + flipped + token[at + 1 :]


@pytest.mark.parametrize("where", ["payload", "signature"])
def test_a_token_with_one_flipped_character_is_401(
    gateway: GatewayServer, wired: WiredTenant, upstream: FakeUpstream, where: str
) -> None:
    first = _chat(gateway, wired.api_key)
    headers = _continue(first)
    token = headers["CRP-Session-Token"]
    at = 10 if where == "payload" else len(token) - 5
    headers["CRP-Session-Token"] = _flip(token, at)
    calls = len(upstream.requests)
    response = _chat(gateway, wired.api_key, headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_session_token"
    assert len(upstream.requests) == calls  # refused before dispatch
    assert token not in response.text
    # the genuine token still continues: the refusal claimed nothing
    assert _chat(gateway, wired.api_key, _continue(first)).status_code == 200


def test_a_replayed_token_is_409_once_the_tip_moved(
    gateway: GatewayServer, wired: WiredTenant, upstream: FakeUpstream
) -> None:
    first = _chat(gateway, wired.api_key)
    second = _chat(gateway, wired.api_key, _continue(first))
    assert second.status_code == 200
    calls = len(upstream.requests)
    replay = _chat(gateway, wired.api_key, _continue(first))
    assert replay.status_code == 409
    assert replay.json()["error"]["code"] == "stale_chain_tip"
    assert len(upstream.requests) == calls
    # the newest token still works
    third = _chat(gateway, wired.api_key, _continue(second))
    assert third.headers["crp-context-window"] == "3/3"


def test_the_last_window_ends_the_session(
    gateway: GatewayServer, wired: WiredTenant
) -> None:
    answer = _chat(gateway, wired.api_key)
    for _ in range(2):
        answer = _chat(gateway, wired.api_key, _continue(answer))
    assert answer.headers["crp-context-window"] == "3/3"
    assert "crp-context-continuation-id" not in answer.headers  # N = M: complete
    assert _payload(_token(answer))["cid"] == ""
    # G14: a token without a continuation id starts a new session
    fresh = _chat(gateway, wired.api_key, {"CRP-Session-Token": _token(answer)})
    assert fresh.status_code == 200
    assert fresh.headers["crp-context-window"] == "1/3"
    assert (
        fresh.headers["crp-context-session-id"]
        != answer.headers["crp-context-session-id"]
    )


def test_terminate_starts_a_new_session(
    gateway: GatewayServer, wired: WiredTenant
) -> None:
    first = _chat(gateway, wired.api_key)
    ended = _chat(
        gateway,
        wired.api_key,
        _continue(first) | {"CRP-Session-Action": "terminate"},
    )
    assert ended.headers["crp-context-window"] == "1/3"
    assert (
        ended.headers["crp-context-session-id"]
        != first.headers["crp-context-session-id"]
    )


def test_fan_out_siblings_share_a_window_number(
    gateway: GatewayServer, wired: WiredTenant
) -> None:
    first = _chat(gateway, wired.api_key)
    fan_out = _continue(first) | {"CRP-Agent-Dispatch-Strategy": "fan-out"}
    siblings = [_chat(gateway, wired.api_key, fan_out) for _ in range(3)]  # free: 3
    assert [s.status_code for s in siblings] == [200, 200, 200]
    assert {s.headers["crp-context-window"] for s in siblings} == {"2/3"}
    assert len({s.headers["crp-provenance-hmac"] for s in siblings}) == 3
    fourth = _chat(gateway, wired.api_key, fan_out)
    assert fourth.status_code == 403
    assert fourth.json()["error"]["code"] == "max_fan_out_reached"
    # a linear continuation of a point with fan-out children is stale
    assert _chat(gateway, wired.api_key, _continue(first)).status_code == 409
    verified = _verify(gateway, wired.api_key, first.headers["crp-context-session-id"])
    assert verified["status"] == "VALID"
    assert verified["windows"]["checked"] == 4
    # each sibling continues on its own
    assert (
        _chat(gateway, wired.api_key, _continue(siblings[1])).headers[
            "crp-context-window"
        ]
        == "3/3"
    )


def test_another_key_cannot_continue_the_session(
    gateway: GatewayServer, wired: WiredTenant, upstream: FakeUpstream
) -> None:
    first = _chat(gateway, wired.api_key)
    with gateway.client(wired.api_key) as client:
        created = client.post("/v1/keys", json={"name": "other", "role": "inference"})
    assert created.status_code == 201, created.text
    other = _chat(gateway, created.json()["api_key"], _continue(first))
    assert other.status_code == 403
    assert other.json()["error"]["code"] == "session_scope_mismatch"
    stranger = sign_up(gateway)  # another tenant: its key cannot even verify it
    register(
        gateway,
        stranger.api_key,
        "openai",
        {
            "api_key": "sk-stranger-" + "s" * 24,
            "default_model": "gpt-4o",
            "base_url": upstream.openai_base_url,
        },
    )
    foreign = _chat(gateway, stranger.api_key, _continue(first))
    assert foreign.status_code == 401
    assert foreign.json()["error"]["code"] == "invalid_session_token"


def test_a_looser_policy_cannot_continue_the_session(
    gateway: GatewayServer, wired: WiredTenant
) -> None:
    first = _chat(gateway, wired.api_key, {"CRP-Safety-Policy": "halt-on CRITICAL"})
    assert first.status_code == 200
    looser = _chat(gateway, wired.api_key, _continue(first))  # back to warn-on HIGH
    assert looser.status_code == 403
    assert looser.json()["error"]["code"] == "safety_policy_not_tighter"
    same = _chat(
        gateway,
        wired.api_key,
        _continue(first) | {"CRP-Safety-Policy": "halt-on CRITICAL"},
    )
    assert same.status_code == 200, same.text


def test_a_stream_gets_its_token_in_the_final_event(
    gateway: GatewayServer, wired: WiredTenant
) -> None:
    first = _chat(gateway, wired.api_key)
    with gateway.client(wired.api_key) as client:
        with client.stream(
            "POST",
            "/v1/chat/completions",
            json={"model": "gpt-4o", "messages": HELLO, "stream": True},
            headers=_continue(first),
        ) as response:
            assert response.status_code == 200
            # the window is known before the first byte
            assert response.headers["crp-context-window"] == "2/3"
            body = response.read().decode()
    verdict = json.loads(body.split("event: crp-headers\ndata: ", 1)[1].split("\n")[0])
    assert SET_SESSION.fullmatch(verdict["CRP-Set-Session"])
    assert verdict["CRP-Context-Session-Id"] == first.headers["crp-context-session-id"]
    assert CONTINUATION.fullmatch(verdict["CRP-Context-Continuation-Id"])


async def _master(gateway: GatewayServer, tenant_id: str) -> bytes:
    engine = create_engine(gateway.settings.store_url)
    try:
        keys = TenantKeys(create_sessionmaker(engine), build_vault(gateway.settings))
        return await keys.master(tenant_id)
    finally:
        await engine.dispose()


def test_a_spent_safety_budget_halts_before_dispatch(
    gateway: GatewayServer, wired: WiredTenant, upstream: FakeUpstream
) -> None:
    first = _chat(gateway, wired.api_key)
    assert first.headers["crp-agent-safety-budget"] == "0.99"  # LOW risk: -0.01
    headers = _continue(first)
    # The operator's key re-signs the genuine token with a budget of 0.08 (a
    # session's budget only ever falls: 012§2.3 puts (0, 0.10] at halt).
    ring = KeyRing.single(run(_master(gateway, wired.tenant.tenant_id)))
    genuine = open_token(headers["CRP-Session-Token"], ring, now=0)
    low = SessionToken(**{**genuine.__dict__, "safety_budget": 0.08})
    headers["CRP-Session-Token"] = ring.sign(low)
    calls = len(upstream.requests)
    halted = _chat(gateway, wired.api_key, headers)
    assert halted.status_code == 451
    body = halted.json()
    assert body["crp_halt_reason"] == "SAFETY_BUDGET_DEPLETED"
    assert body["session_id"] == first.headers["crp-context-session-id"]
    assert halted.headers["crp-safety-retry-after"] == "new-session-required"
    assert halted.headers["crp-context-window"] == "2/3"
    assert "crp-context-continuation-id" not in halted.headers  # the session ended
    assert len(upstream.requests) == calls
    verified = _verify(gateway, wired.api_key, body["session_id"])
    assert verified["status"] == "VALID"


def test_a_risky_answer_lowers_the_budget(
    gateway: GatewayServer, wired: WiredTenant
) -> None:
    risky = [
        {
            "role": "user",
            "content": "key AKIAIOSFODNN7EXAMPLE and sk-proj-abcdefghijklmnopqrstuvwxyz"
            "123456 card 4111 1111 1111 1111 Revenue was 48,213 in 1987",
        }
    ]
    with gateway.client(wired.api_key) as client:
        response = client.post(
            "/v1/chat/completions", json={"model": "gpt-4o", "messages": risky}
        )
    assert response.status_code == 200
    assert response.headers["crp-safety-hallucination-risk"] == "HIGH"
    assert response.headers["crp-agent-safety-budget"] == "0.85"  # 1 - 0.15 (HIGH)
    assert _payload(_token(response))["sb"] == 0.85


def test_an_upstream_failure_is_audited_in_its_session(
    gateway: GatewayServer, wired: WiredTenant, upstream: FakeUpstream
) -> None:
    first = _chat(gateway, wired.api_key)
    upstream.script(status=500, body={"error": {"message": "boom"}})
    failed = _chat(gateway, wired.api_key, _continue(first))
    assert failed.status_code == 502
    session_id = first.headers["crp-context-session-id"]
    assert failed.headers["crp-context-session-id"] == session_id
    assert failed.headers["crp-context-window"] == "2/3"
    # the session goes on after the failed window
    after = _chat(gateway, wired.api_key, _continue(failed))
    assert after.headers["crp-context-window"] == "3/3"
    with gateway.client(wired.api_key) as client:
        detail = client.get(f"/v1/audit/sessions/{session_id}").json()
    outcomes = [w["outcome"] for w in detail["windows"]]
    assert outcomes == ["PASS", "ERROR", "PASS"]
    events = [e["event_type"] for e in detail["events"]]
    assert "DISPATCH_FAILED" in events
    assert _verify(gateway, wired.api_key, session_id)["status"] == "VALID"


@pytest.fixture
def replica(backend: Backend, start_gateway: StartGateway) -> Iterator[GatewayServer]:
    if not backend.is_services:
        pytest.skip("sessions are per replica without REDIS_URL (documented)")
    with start_gateway() as server:
        yield server


def test_a_session_continues_on_another_replica(
    gateway: GatewayServer, replica: GatewayServer, wired: WiredTenant
) -> None:
    first = _chat(gateway, wired.api_key)
    second = _chat(replica, wired.api_key, _continue(first))
    assert second.status_code == 200, second.text
    assert second.headers["crp-context-window"] == "2/3"
    assert (
        second.headers["crp-context-session-id"]
        == first.headers["crp-context-session-id"]
    )
    # the tip moved on the replica: the first token is stale everywhere
    assert _chat(gateway, wired.api_key, _continue(first)).status_code == 409
    assert _chat(replica, wired.api_key, _continue(first)).status_code == 409
    third = _chat(gateway, wired.api_key, _continue(second))
    assert third.headers["crp-context-window"] == "3/3"
    assert (
        _verify(replica, wired.api_key, first.headers["crp-context-session-id"])[
            "status"
        ]
        == "VALID"
    )
