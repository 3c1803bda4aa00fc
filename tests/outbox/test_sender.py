"""The SSRF-guarded POST: refused targets, https, redirects, timeouts."""

from __future__ import annotations

import ipaddress
import socket

import pytest

from crp_gateway.outbox.sender import (
    Delivery,
    PinnedResolver,
    ReportSender,
    is_public,
)
from tests.outbox.receiver import Receiver
from tests.support import run

BODY = b'{"violation_type":"HALT_ON_CRITICAL"}'


def _send(
    url: str,
    *,
    allow_private: bool = False,
    production: bool = False,
    timeout: float = 5.0,
) -> Delivery:
    sender = ReportSender(
        require_https=production, allow_private=allow_private, timeout=timeout
    )
    return run(sender.send(url, BODY, {"X-Test": "1"}))


@pytest.mark.parametrize(
    "target",
    [
        "http://127.0.0.1:{port}/reports",
        "http://localhost:{port}/reports",
        "http://[::1]:{port}/reports",
        "http://[::ffff:127.0.0.1]:{port}/reports",
        "http://10.1.2.3/reports",
        "http://192.168.0.10/reports",
        "http://169.254.169.254/latest/meta-data/",
        "http://100.64.0.1/reports",
        "http://0.0.0.0:{port}/reports",
        "http://224.0.0.1/reports",
    ],
)
def test_private_targets_are_refused_before_connecting(target: str) -> None:
    with Receiver() as receiver:
        delivery = _send(target.format(port=receiver.port))
        assert delivery == Delivery(
            ok=False, error="refused: address not public", permanent=True
        )
        assert receiver.requests == []


def test_allowing_private_targets_delivers_to_loopback_by_name() -> None:
    with Receiver() as receiver:
        delivery = _send(
            f"http://localhost:{receiver.port}/reports?token=t0p", allow_private=True
        )
        assert delivery.ok, delivery
        (request,) = receiver.requests
    assert request.body == BODY
    assert request.query == "token=t0p"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["X-Test"] == "1"


def test_http_is_refused_in_production() -> None:
    with Receiver() as receiver:
        delivery = _send(receiver.url(), allow_private=True, production=True)
        assert delivery == Delivery(
            ok=False, error="refused: https required", permanent=True
        )
        assert receiver.requests == []


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("ftp://example.com/r", "refused: not http(s)"),
        ("http://user:pw@127.0.0.1/r", "refused: credentials in the URL"),
        ("http:///r", "refused: no host"),
    ],
)
def test_malformed_targets_are_refused(url: str, error: str) -> None:
    delivery = _send(url, allow_private=True)
    assert delivery == Delivery(ok=False, error=error, permanent=True)


def test_redirects_are_not_followed() -> None:
    with Receiver() as elsewhere, Receiver() as receiver:
        receiver.reply(302, headers={"Location": elsewhere.url()})
        delivery = _send(receiver.url(), allow_private=True)
        assert delivery == Delivery(
            ok=False, error="redirect 302 not followed", status=302
        )
        assert len(receiver.requests) == 1
        assert elsewhere.requests == []


def test_a_receiver_that_never_answers_times_out() -> None:
    with Receiver(hang=True) as receiver:
        delivery = _send(receiver.url(), allow_private=True, timeout=0.5)
        assert delivery == Delivery(ok=False, error="timeout")
        assert len(receiver.requests) == 1


def test_errors_name_the_status_never_the_url() -> None:
    with Receiver() as receiver:
        receiver.reply(500)
        delivery = _send(receiver.url("/r?token=s3cr3t"), allow_private=True)
    assert delivery == Delivery(ok=False, error="http 500", status=500)


def test_an_unreachable_port_is_a_retryable_connection_failure() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    delivery = _send(f"http://127.0.0.1:{port}/r", allow_private=True)
    assert delivery == Delivery(ok=False, error="connection failed")


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.216.34", True),
        ("2606:4700:4700::1111", True),
        ("127.0.0.1", False),
        ("::1", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("::ffff:10.0.0.1", False),
        ("172.16.0.1", False),
        ("198.18.0.1", False),
        ("240.0.0.1", False),
        ("::", False),
    ],
)
def test_is_public(address: str, public: bool) -> None:
    assert is_public(ipaddress.ip_address(address)) is public


def test_the_pinned_resolver_answers_only_for_the_vetted_host() -> None:
    resolver = PinnedResolver("reports.example", [ipaddress.ip_address("8.8.8.8")])

    async def both() -> list[str]:
        answers = await resolver.resolve("reports.example", 443, socket.AF_UNSPEC)
        with pytest.raises(OSError, match="vetted host"):
            await resolver.resolve("internal.example", 443)
        return [answer["host"] for answer in answers]

    assert run(both()) == ["8.8.8.8"]
