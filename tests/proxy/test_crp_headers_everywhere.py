"""The §2.3 CRP response headers on every kind of answer, in their §2.1 formats.

``test_governance`` checks the zero-CKF and signal formats on one plain chat
completion and ``test_audit_trail`` the session and chain headers on the same
path. This module extends both to every other way an answer leaves the gateway:
Chat Completions whole, as a relayed stream (the verdict arrives as
``event: crp-headers`` after the end) and as a buffered stream, through a
translating provider, Messages whole and streamed, embeddings, and 451 halts
decided on the request, on the answer and on a buffered stream.

Every pattern is written from crp-protocol.md §2.1/§2.3, §4, §5.1-§5.2 and
§5.5, never from the gateway's own validators. The official SDKs are used where
they expose raw headers (``with_raw_response``, ``with_streaming_response``).

"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import anthropic
import openai
import pytest

from tests.fakes.upstream import FakeUpstream
from tests.proxy.conftest import WiredTenant
from tests.support import GatewayServer

HELLO = [{"role": "user", "content": "hello there"}]
FABRICATED = "Revenue was 48,213 in 1987."

# --- formats, from the digest ------------------------------------------------------

_HASH = r"sha256:[0-9a-f]{64}"  # crp-hash, §2 base ABNF
_FRACTION = r"[01]\.\d+"  # crp-fraction
_ID = r"[A-Za-z0-9]{16,32}"  # the 16-32 base62 characters of every id (§5.1)
_B64URL = r"[A-Za-z0-9_-]+"
_DIRECTIVE = r"[a-z][a-z0-9-]*(=[a-z-]+)?( [A-Za-z0-9'.:/_-]+)*"  # §3.1 grammar
_ISO_8601 = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})"

#: `CRP-Context-ETag` of the empty fact set: SHA-256 of "|0" (§2.3, 003§7.5).
EMPTY_SET_ETAG = "sha256:" + hashlib.sha256(b"|0").hexdigest()

FORMATS: dict[str, str] = {
    "crp-context-protocol-version": r"3\.0\.0",
    "crp-context-session-id": rf"crp_sess_{_ID}",
    "crp-context-window": r"[1-9]\d*/[1-9]\d*",
    "crp-context-strategy": (
        r"push|pull|reflexive|agentic|hierarchical|batch|streaming|fan-out|fan-in"
    ),
    "crp-context-continuation-id": rf"crp_cont_{_ID}",
    "crp-context-tokens-used": r"\d+",
    # zero-CKF fixed values (SPEC-017 §2.1, digest §2.3)
    "crp-context-mode": r"zero-ckf",
    "crp-context-quality-tier": r"N/A",
    "crp-context-saturation": r"0\.0",
    "crp-context-facts-used": r"0/0",
    "crp-context-etag": re.escape(EMPTY_SET_ETAG),
    "crp-context-cache-status": r"(HIT|MISS|PARTIAL)(; reason=[a-z0-9-]+)?",
    "crp-safety-grounding-pct": r"N/A",
    "crp-memory-ckf-hits": r"0",
    "crp-safety-attribution": r"PARAMETRIC",
    "crp-onboarding-hint": r"[a-z0-9][a-z0-9-]*",
    "crp-activation-status": r"[a-z-]+(; [a-z-]+(=\d+)?)*",
    # provenance (§5.5, G7)
    "crp-provenance-hmac": _HASH,
    "crp-provenance-window-hmac": _HASH,
    "crp-provenance-chain-integrity": r"VALID|BROKEN|PARTIAL|UNVERIFIED",
    # compliance
    "crp-compliance-audit-trail-id": rf"crp_trail_{_ID}",
    "crp-compliance-audit-trail-uri": r"[A-Za-z][A-Za-z0-9+.-]*://[^/\s?#]+/\S*",
    "crp-compliance-eu-ai-act": r"UNACCEPTABLE|HIGH|LIMITED|MINIMAL|UNKNOWN",
    "crp-compliance-gdpr-pii": r"true|false",
    # safety and policy
    "crp-safety-oversight-mode": r"auto|human-review|halt|log-only",
    "crp-safety-policy-applied": rf"({_DIRECTIVE}(; {_DIRECTIVE})*)?",
    "crp-safety-policy-violation": r"[a-z][a-z0-9-]*(, ?[a-z][a-z0-9-]*)*",
    "crp-safety-retry-after": (
        rf"\d+|{_ISO_8601}|oversight-required|new-session-required"
    ),
    "crp-safety-hallucination-risk": r"LOW|MEDIUM|HIGH|CRITICAL",
    "crp-safety-hallucination-score": _FRACTION,
    "crp-safety-fabrications": r"\d+",
    "crp-quality-repetition": r"(NONE|MINOR|SIGNIFICANT|SEVERE)(; overlap=[01]\.\d+)?",
    "crp-agent-revision-round": r"[1-9]\d*/[1-9]\d*",
}
#: `CRP-Agent-Safety-Budget` is a crp-fraction too (§2.1); checked on its own
#: test, where the known bug is marked.
SAFETY_BUDGET = "crp-agent-safety-budget"

#: §2.3 "always computable", present on every answer whatever its status.
ALWAYS = (
    "crp-context-protocol-version",
    "crp-context-session-id",
    "crp-context-window",
    "crp-context-strategy",
    "crp-provenance-hmac",
    "crp-provenance-window-hmac",
    "crp-provenance-chain-integrity",
    "crp-compliance-audit-trail-id",
    "crp-compliance-audit-trail-uri",
    "crp-compliance-eu-ai-act",
    "crp-safety-oversight-mode",
    "crp-safety-policy-applied",
    "crp-agent-revision-round",
    "crp-context-mode",
    "crp-onboarding-hint",
    "crp-activation-status",
    "crp-context-quality-tier",
    "crp-context-saturation",
    "crp-context-facts-used",
    "crp-context-etag",
    "crp-safety-grounding-pct",
    "crp-memory-ckf-hits",
)
#: Also on every 2xx: the provider reported usage (Axiom 6).
ON_ANSWERS = ("crp-context-tokens-used",)
#: Also on a text answer: zero-CKF attribution (§2.3).
ON_TEXT = ("crp-safety-attribution",)
#: Every 451: Retry-After (MUST), the violated directive (G18); §4 also asks for
#: Hallucination-Risk, which exists only once there is an answer to score.
ON_HALTS = ("crp-safety-retry-after", "crp-safety-policy-violation")
ON_ANSWER_HALTS = ("crp-safety-hallucination-risk",)

#: `CRP-Set-Session` (§5.2): the token, then its cookie-like attributes.
SET_SESSION_TOKEN = re.compile(rf"token=(?P<payload>{_B64URL})\.{_B64URL}")
SET_SESSION_ATTRIBUTES = {
    "Path": r"/",
    "Max-Age": r"[1-9]\d*",
    "SameSite": r"Strict",
    "Window": r"[1-9]\d*",
}
SET_SESSION_FLAGS = {"Signed"}
SET_SESSION_OPTIONAL = {"QualityHistory": r"[A-Z/]+(,[A-Z/]+)*"}


# --- answers -------------------------------------------------------------------------


@dataclass
class Answer:
    """One answer: its status, its header section and, for a relayed stream, the
    `event: crp-headers` verdict (names lowercased)."""

    kind: str
    status: int
    headers: dict[str, str]
    verdict: dict[str, str] | None = None
    verdict_after_end: bool | None = None
    body: str = ""

    @property
    def crp(self) -> dict[str, str]:
        """Every CRP value the client got: the header section, then the verdict."""
        values = {k: v for k, v in self.headers.items() if k.startswith("crp-")}
        values.update(self.verdict or {})
        return values

    @property
    def streamed(self) -> bool:
        return "stream" in self.kind

    @property
    def halted(self) -> bool:
        return self.status == 451


def _lower(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers}


def _read_sse(lines: Iterable[str], end: str) -> tuple[dict[str, str] | None, bool]:
    """The `event: crp-headers` verdict of a stream (lowercased), and whether it
    came after the stream's own end marker ``end``."""
    ended = False
    verdict: dict[str, str] | None = None
    after_end = False
    iterator = iter(lines)
    for line in iterator:
        if line == end:
            ended = True
        elif line == "event: crp-headers":
            data = next(iterator, "")
            assert data.startswith("data: "), data
            verdict = _lower(json.loads(data.removeprefix("data: ")).items())
            after_end = ended
    return verdict, after_end


def _openai(gateway: GatewayServer, wired: WiredTenant, **kw: Any) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"{gateway.url}/v1", api_key=wired.api_key, max_retries=0, **kw
    )


def _anthropic(gateway: GatewayServer, wired: WiredTenant) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        base_url=gateway.url, api_key=wired.api_key, max_retries=0
    )


def _chat_json(model: str) -> Callable[[GatewayServer, WiredTenant], Answer]:
    def call(gateway: GatewayServer, wired: WiredTenant) -> Answer:
        raw = _openai(gateway, wired).chat.completions.with_raw_response.create(
            model=model,
            messages=HELLO,  # type: ignore[arg-type]
        )
        completion = raw.parse()
        assert completion.choices[0].message.content == "echo: hello there"
        return Answer("chat", raw.status_code, _lower(raw.headers.items()))

    return call


def _chat_relayed(model: str) -> Callable[[GatewayServer, WiredTenant], Answer]:
    def call(gateway: GatewayServer, wired: WiredTenant) -> Answer:
        client = _openai(gateway, wired)
        with client.chat.completions.with_streaming_response.create(
            model=model,
            messages=HELLO,  # type: ignore[arg-type]
            stream=True,
        ) as response:
            headers = _lower(response.headers.items())
            verdict, after_end = _read_sse(response.iter_lines(), "data: [DONE]")
            status = response.status_code
        return Answer("chat-stream", status, headers, verdict, after_end)

    return call


def _chat_buffered(gateway: GatewayServer, wired: WiredTenant) -> Answer:
    client = _openai(gateway, wired)
    with client.chat.completions.with_streaming_response.create(
        model="gpt-4o",
        messages=HELLO,  # type: ignore[arg-type]
        stream=True,
        extra_headers={"CRP-Safety-Policy": "halt-on CRITICAL"},
    ) as response:
        headers = _lower(response.headers.items())
        verdict, after_end = _read_sse(response.iter_lines(), "data: [DONE]")
        status = response.status_code
    assert verdict is None  # buffered: decided before the first byte
    return Answer("chat-stream-buffered", status, headers, verdict, after_end)


def _messages_json(model: str) -> Callable[[GatewayServer, WiredTenant], Answer]:
    def call(gateway: GatewayServer, wired: WiredTenant) -> Answer:
        raw = _anthropic(gateway, wired).messages.with_raw_response.create(
            model=model,
            max_tokens=16,
            messages=HELLO,  # type: ignore[arg-type]
        )
        message = raw.parse()
        assert message.content[0].type == "text"
        assert message.content[0].text == "echo: hello there"
        return Answer("messages", raw.status_code, _lower(raw.headers.items()))

    return call


def _messages_relayed(model: str) -> Callable[[GatewayServer, WiredTenant], Answer]:
    def call(gateway: GatewayServer, wired: WiredTenant) -> Answer:
        client = _anthropic(gateway, wired)
        with client.messages.with_streaming_response.create(
            model=model,
            max_tokens=16,
            messages=HELLO,  # type: ignore[arg-type]
            stream=True,
        ) as response:
            headers = _lower(response.headers.items())
            end = "event: message_stop"
            verdict, after_end = _read_sse(response.iter_lines(), end)
            status = response.status_code
        return Answer("messages-stream", status, headers, verdict, after_end)

    return call


def _embeddings(gateway: GatewayServer, wired: WiredTenant) -> Answer:
    raw = _openai(gateway, wired).embeddings.with_raw_response.create(
        model="gpt-4o", input="hello there"
    )
    assert len(raw.parse().data) == 1
    return Answer("embeddings", raw.status_code, _lower(raw.headers.items()))


def _httpx_chat(
    gateway: GatewayServer, wired: WiredTenant, kind: str, policy: str, stream: bool
) -> Answer:
    with gateway.client(wired.api_key) as client:
        response = client.post(
            "/v1/chat/completions",
            json={"model": "gpt-4o", "messages": HELLO, "stream": stream},
            headers={"CRP-Safety-Policy": policy},
        )
    return Answer(
        kind,
        response.status_code,
        _lower(response.headers.items()),
        body=response.text,
    )


def _halt_on_request(gateway: GatewayServer, wired: WiredTenant) -> Answer:
    return _httpx_chat(gateway, wired, "halt-request", "default-src 'none'", False)


def _fabricated_completion() -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": FABRICATED},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 2, "completion_tokens": 5, "total_tokens": 7},
    }


def _fabricated_stream() -> str:
    chunk = {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-4o",
        "choices": [
            {
                "index": 0,
                "delta": {"role": "assistant", "content": FABRICATED},
                "finish_reason": None,
            }
        ],
    }
    return f"data: {json.dumps(chunk)}\n\ndata: [DONE]\n\n"


KINDS: dict[str, Callable[[GatewayServer, WiredTenant], Answer]] = {
    "chat": _chat_json("gpt-4o"),
    "chat-via-anthropic": _chat_json("claude-sonnet-4-5"),
    "chat-stream-relayed": _chat_relayed("gpt-4o"),
    "chat-stream-relayed-via-anthropic": _chat_relayed("claude-sonnet-4-5"),
    "chat-stream-buffered": _chat_buffered,
    "messages": _messages_json("claude-sonnet-4-5"),
    "messages-via-openai": _messages_json("gpt-4o"),
    "messages-stream-relayed": _messages_relayed("claude-sonnet-4-5"),
    "messages-stream-relayed-via-openai": _messages_relayed("gpt-4o"),
    "embeddings": _embeddings,
    "halt-on-request": _halt_on_request,
    "halt-on-answer": lambda gateway, wired: _httpx_chat(
        gateway, wired, "halt-answer", "block-fabrication", False
    ),
    "halt-on-buffered-stream": lambda gateway, wired: _httpx_chat(
        gateway, wired, "halt-answer-stream", "block-fabrication", True
    ),
}
RELAYED = [name for name in KINDS if "relayed" in name]
#: Kinds whose upstream answer must be scripted (a fabricated number).
_SCRIPTS: dict[str, Callable[[], Any]] = {
    "halt-on-answer": _fabricated_completion,
    "halt-on-buffered-stream": _fabricated_stream,
}


def _answer(
    kind: str, gateway: GatewayServer, wired: WiredTenant, upstream: FakeUpstream
) -> Answer:
    if kind in _SCRIPTS:
        upstream.script(body=_SCRIPTS[kind]())
    answer = KINDS[kind](gateway, wired)
    expected = 451 if kind.startswith("halt") else 200
    assert answer.status == expected, (kind, answer.status, answer.body)
    if answer.halted:
        assert FABRICATED not in answer.body
    return answer


def _required(kind: str, answer: Answer) -> tuple[str, ...]:
    if answer.halted:
        extra = ON_ANSWER_HALTS if kind != "halt-on-request" else ()
        return ALWAYS + ON_HALTS + extra
    text = ON_TEXT if kind != "embeddings" else ()
    return ALWAYS + ON_ANSWERS + text


def _window(value: str) -> tuple[int, int]:
    current, _, maximum = value.partition("/")
    return int(current), int(maximum)


# --- tests ---------------------------------------------------------------------------


@pytest.fixture(params=list(KINDS))
def kind(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def answer(
    kind: str, gateway: GatewayServer, wired: WiredTenant, upstream: FakeUpstream
) -> Answer:
    return _answer(kind, gateway, wired, upstream)


def test_every_answer_carries_the_always_computable_headers(
    kind: str, answer: Answer
) -> None:
    crp = answer.crp
    missing = [name for name in _required(kind, answer) if name not in crp]
    assert not missing, (kind, missing)
    wrong = {
        name: value
        for name, value in crp.items()
        if name in FORMATS and not re.fullmatch(FORMATS[name], value)
    }
    assert not wrong, (kind, wrong)


def test_every_answer_names_its_own_window_chain_and_trail(
    kind: str, answer: Answer
) -> None:
    crp = answer.crp
    current, maximum = _window(crp["crp-context-window"])
    assert 1 <= current <= maximum
    trail_id = crp["crp-compliance-audit-trail-id"]
    assert crp["crp-compliance-audit-trail-uri"].endswith(f"/{trail_id}")
    if current == 1:  # the root: the chained HMAC has an empty prev (§5.5, G7)
        assert crp["crp-provenance-hmac"] == crp["crp-provenance-window-hmac"]
    assert crp["crp-context-strategy"] == ("streaming" if answer.streamed else "push")
    if answer.halted:
        body = json.loads(answer.body)
        assert body["session_id"] == crp["crp-context-session-id"]
        assert body["audit_trail_uri"] == crp["crp-compliance-audit-trail-uri"]
        assert body["retry_condition"] == crp["crp-safety-retry-after"]


@pytest.mark.parametrize("kind", RELAYED)
def test_a_relayed_stream_sends_its_verdict_after_its_end(
    kind: str, answer: Answer
) -> None:
    assert answer.verdict is not None, kind
    assert answer.verdict_after_end, "the verdict must follow the stream's end"
    for name in ("crp-safety-fabrications", "crp-quality-repetition"):
        assert name in answer.verdict  # decided on the whole answer
    for name in ("crp-context-session-id", "crp-provenance-hmac"):
        assert name in answer.verdict  # the record exists only after the end
    sent_twice = set(answer.verdict) & set(answer.headers)
    assert {
        name: (answer.headers[name], answer.verdict[name])
        for name in sent_twice
        if answer.headers[name] != answer.verdict[name]
    } == {}, "the verdict contradicts the header section"


@pytest.mark.parametrize("kind", RELAYED)
def test_a_relayed_stream_sends_the_known_headers_up_front(
    kind: str, answer: Answer
) -> None:
    # Known before the first byte: nothing here depends on the answer.
    assert answer.headers.get("crp-context-protocol-version") == "3.0.0"
    assert answer.headers.get("crp-context-strategy") == "streaming"
    assert answer.headers.get("crp-context-mode") == "zero-ckf"
    assert "crp-safety-policy-applied" in answer.headers


@pytest.mark.parametrize("kind", KINDS)
def test_the_safety_budget_is_a_crp_fraction(kind: str, answer: Answer) -> None:
    budget = answer.crp.get(SAFETY_BUDGET)
    if budget is None:
        return  # omitted: not computed, which is honest (§2)
    assert re.fullmatch(_FRACTION, budget), budget
    assert 0.0 <= float(budget) <= 1.0


def _b64url_json(text: str) -> Any:
    padded = text + "=" * (-len(text) % 4)
    try:
        return json.loads(base64.urlsafe_b64decode(padded))
    except (binascii.Error, ValueError) as error:
        raise AssertionError(f"token payload is not base64url JSON: {error}") from None


def test_every_answer_sets_its_session_token(kind: str, answer: Answer) -> None:
    crp = answer.crp
    token, *attributes = crp["crp-set-session"].split("; ")
    matched = SET_SESSION_TOKEN.fullmatch(token)
    assert matched, token
    seen: dict[str, str | None] = {}
    for attribute in attributes:
        name, _, value = attribute.partition("=")
        seen[name] = value if "=" in attribute else None
    assert set(SET_SESSION_ATTRIBUTES) | SET_SESSION_FLAGS <= set(seen), seen
    patterns = SET_SESSION_ATTRIBUTES | SET_SESSION_OPTIONAL
    assert set(seen) <= set(patterns) | SET_SESSION_FLAGS, seen
    for name, given in seen.items():
        if name in SET_SESSION_FLAGS:
            assert given is None, (name, given)  # a bare flag
        else:
            assert given is not None, name
            assert re.fullmatch(patterns[name], given), (name, given)
    current, _ = _window(crp["crp-context-window"])
    assert seen["Window"] == str(current)
    payload = _b64url_json(matched["payload"])  # the §5.2 payload fields
    assert payload["v"] == "3.0.0"
    assert payload["sid"] == crp["crp-context-session-id"]
    assert payload["win"] == current
    assert payload["ct"] == crp["crp-provenance-hmac"]  # the chain tip (G13)
    if "crp-context-continuation-id" in crp:
        assert payload["cid"] == crp["crp-context-continuation-id"]
    assert payload["exp"] - payload["iat"] == int(seen["Max-Age"] or 0)


def test_a_continuation_id_is_issued_while_windows_remain(
    kind: str, answer: Answer
) -> None:
    crp = answer.crp
    current, maximum = _window(crp["crp-context-window"])
    if current == maximum:  # the session is complete: no continuation (§5.1)
        assert "crp-context-continuation-id" not in crp
        return
    continuation = crp["crp-context-continuation-id"]
    assert re.fullmatch(FORMATS["crp-context-continuation-id"], continuation)


#: Values no two calls may share (each call here starts its own session).
IDENTITIES = (
    "crp-context-session-id",
    "crp-provenance-hmac",
    "crp-provenance-window-hmac",
    "crp-compliance-audit-trail-id",
)
#: The same for the session token and the continuation point it names.
SESSION_IDENTITIES = ("crp-context-continuation-id", "crp-set-session")


def _every_kind_once(
    gateway: GatewayServer, wired: WiredTenant, upstream: FakeUpstream
) -> Iterator[Answer]:
    for kind in KINDS:
        yield _answer(kind, gateway, wired, upstream)


def test_no_two_answers_share_a_session_chain_or_trail(
    gateway: GatewayServer, wired: WiredTenant, upstream: FakeUpstream
) -> None:
    answers = list(_every_kind_once(gateway, wired, upstream))
    answers += [_answer("chat", gateway, wired, upstream) for _ in range(3)]
    assert len(answers) >= 10
    for name in IDENTITIES:
        values = [answer.crp[name] for answer in answers]
        assert len(set(values)) == len(values), (name, values)
    for name in SESSION_IDENTITIES:
        values = [answer.crp[name] for answer in answers if name in answer.crp]
        assert len(values) == len(answers), name  # window 1 of 3: a point each
        assert len(set(values)) == len(values), (name, values)
