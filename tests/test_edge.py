"""The ASGI edge: body limits, malformed bodies, CORS, error shapes, request ids."""

from __future__ import annotations

import json
import select
import socket

import pytest

from tests.support import ALLOWED_ORIGIN, GatewayServer, random_address

ELEVEN_MB = 11 * 1024 * 1024


def _send_until_answered(
    server: GatewayServer, head: bytes, chunks: list[bytes]
) -> bytes:
    """Write ``head`` then ``chunks`` over a raw socket, stopping as soon as the
    server answers (it may refuse before the body is sent); return the answer."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(head)
        for chunk in chunks:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
        answer = b""
        while b"\r\n\r\n" not in answer or not _body_complete(answer):
            data = sock.recv(65536)
            if not data:
                break
            answer += data
    return answer


def _body_complete(answer: bytes) -> bool:
    head, _, body = answer.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(body) >= int(line.split(b":")[1])
    return True


def _status_and_body(answer: bytes) -> tuple[int, dict[str, object]]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1])
    return status, json.loads(body)


def _signup_head(extra: str) -> bytes:
    return (
        "POST /v1/tenants HTTP/1.1\r\nHost: gateway\r\n"
        f"Content-Type: application/json\r\nX-Forwarded-For: {random_address()}\r\n"
        f"{extra}\r\n"
    ).encode()


def test_an_11_mb_body_with_content_length_is_refused(gateway: GatewayServer) -> None:
    head = _signup_head(f"Content-Length: {ELEVEN_MB}\r\n")
    answer = _send_until_answered(gateway, head, [b"x" * 65536] * (ELEVEN_MB // 65536))
    status, body = _status_and_body(answer)
    assert status == 413
    assert body["error"]["code"] == "request_too_large"  # type: ignore[index]


def test_an_11_mb_chunked_body_is_refused(gateway: GatewayServer) -> None:
    piece = b"x" * 65536
    chunk = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    head = _signup_head("Transfer-Encoding: chunked\r\n")
    answer = _send_until_answered(
        gateway, head, [chunk] * (ELEVEN_MB // len(piece)) + [b"0\r\n\r\n"]
    )
    status, body = _status_and_body(answer)
    assert status == 413
    assert body["error"]["type"] == "invalid_request_error"  # type: ignore[index]


def test_a_body_under_the_limit_is_read(gateway: GatewayServer) -> None:
    payload = json.dumps({"name": "x" * 200, "email": "big@example.com"}).encode()
    piece = f"{len(payload):x}\r\n".encode() + payload + b"\r\n0\r\n\r\n"
    answer = _send_until_answered(
        gateway, _signup_head("Transfer-Encoding: chunked\r\n"), [piece]
    )
    status, body = _status_and_body(answer)
    assert status == 400  # reached validation: the name is too long, not too big
    assert body["error"]["param"] == "name"  # type: ignore[index]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "Invalid request body"),
        (b'"a string"', "Invalid request body"),
        (b"", "Invalid request body"),
    ],
)
def test_malformed_bodies_are_400_not_422(
    gateway: GatewayServer, content: bytes, expected: str
) -> None:
    with gateway.client() as client:
        response = client.post(
            "/v1/tenants",
            content=content,
            headers={
                "Content-Type": "application/json",
                "X-Forwarded-For": random_address(),
            },
        )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert expected in error["message"]


def test_framework_errors_use_the_openai_shape(gateway: GatewayServer) -> None:
    with gateway.client() as client:
        missing = client.get("/v1/nothing-here")
        wrong_method = client.put("/v1/tenants", json={})
    assert missing.status_code == 404
    assert missing.json()["error"]["type"] == "not_found_error"
    assert wrong_method.status_code == 405
    assert set(wrong_method.json()["error"]) == {"type", "code", "message"}


def test_cors_preflight_from_an_allowed_origin_is_granted(
    gateway: GatewayServer,
) -> None:
    with gateway.client() as client:
        response = client.options(
            "/v1/providers",
            headers={
                "Origin": ALLOWED_ORIGIN,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,content-type",
            },
        )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ALLOWED_ORIGIN


def test_cors_preflight_from_another_origin_gets_no_grant(
    gateway: GatewayServer,
) -> None:
    with gateway.client() as client:
        response = client.options(
            "/v1/providers",
            headers={
                "Origin": "https://evil.example.net",
                "Access-Control-Request-Method": "POST",
            },
        )
        simple = client.get("/health", headers={"Origin": "https://evil.example.net"})
    assert "access-control-allow-origin" not in response.headers
    assert "access-control-allow-origin" not in simple.headers


def test_every_response_carries_a_request_id(gateway: GatewayServer) -> None:
    with gateway.client() as client:
        generated = client.get("/health")
        echoed = client.get("/health", headers={"X-Request-Id": "client-trace-1234"})
        refused = client.get("/health", headers={"X-Request-Id": "bad id\twith tab"})
        failed = client.get("/v1/keys")
    assert generated.headers["x-request-id"].startswith("req_")
    assert echoed.headers["x-request-id"] == "client-trace-1234"
    assert refused.headers["x-request-id"].startswith("req_")
    assert failed.headers["x-request-id"].startswith("req_")
