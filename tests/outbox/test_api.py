"""The reports API on a running gateway, and its dispatcher delivering for real."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from tests.conftest import StartGateway
from tests.outbox.receiver import Receiver
from tests.outbox.support import enqueue, open_store, report, signature_valid
from tests.support import Backend, GatewayServer, run, sign_up

FAST = {"crp_reports_allow_private": True, "crp_outbox_poll_seconds": 0.05}


def _secret(client: httpx.Client, *, rotate: bool = False) -> dict[str, Any]:
    if rotate:
        response = client.post("/v1/reports/signing-secret/rotate")
    else:
        response = client.get("/v1/reports/signing-secret")
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body: dict[str, Any] = response.json()
    return body


def _enqueue(backend: Backend, tenant_id: str, url: str) -> dict[str, Any]:
    row = report(tenant_id, url)

    async def write() -> None:
        async with open_store(backend.settings()) as store:
            await enqueue(store, [row])

    run(write())
    return row


def _deliveries(server: GatewayServer, api_key: str) -> list[dict[str, Any]]:
    with server.client(api_key) as client:
        response = client.get("/v1/reports/deliveries")
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


def _settled(server: GatewayServer, api_key: str) -> list[dict[str, Any]]:
    """The deliveries once none is pending (the dispatcher polls quickly)."""
    deadline = time.monotonic() + 15
    while True:
        rows = _deliveries(server, api_key)
        if all(row["status"] != "pending" for row in rows):
            return rows
        if time.monotonic() > deadline:
            pytest.fail(f"deliveries still pending: {rows}")
        time.sleep(0.05)


def test_the_signing_secret_is_for_admins_and_rotates(gateway: GatewayServer) -> None:
    tenant, other = sign_up(gateway), sign_up(gateway)
    with gateway.client(tenant.api_key) as client:
        first = _secret(client)
        again = _secret(client)
        rotated = _secret(client, rotate=True)
        current = _secret(client)
        inference_key = client.post(
            "/v1/keys", json={"name": "app", "role": "inference"}
        ).json()["api_key"]
    with gateway.client(other.api_key) as client:
        others = _secret(client)
    with gateway.client(inference_key) as client:
        refused = client.get("/v1/reports/signing-secret")
    assert first["secret"].startswith("crp_whsec_")
    assert (first["version"], rotated["version"]) == (1, 2)
    assert again["secret"] == first["secret"]
    assert rotated["secret"] != first["secret"]
    assert current["secret"] == rotated["secret"]
    assert others["secret"] not in {first["secret"], rotated["secret"]}
    assert first["header"] == "X-CRP-Signature"
    assert refused.status_code == 403


def test_reports_arrive_signed_with_the_secret_the_api_shows(
    backend: Backend, start_gateway: StartGateway
) -> None:
    if backend.is_services:
        pytest.skip("PostgreSQL means production, where http targets are refused")
    with Receiver() as receiver, start_gateway(**FAST) as server:
        tenant = sign_up(server)
        with server.client(tenant.api_key) as client:
            old = _secret(client)["secret"]
        first = _enqueue(backend, tenant.tenant_id, receiver.url("/r?token=hidden"))
        assert receiver.wait_for(1)
        with server.client(tenant.api_key) as client:
            new = _secret(client, rotate=True)["secret"]
        second = _enqueue(backend, tenant.tenant_id, receiver.url("/r?token=hidden"))
        assert receiver.wait_for(2)
        deliveries = _settled(server, tenant.api_key)
        outsider = _deliveries(server, sign_up(server).api_key)
        one, two = receiver.requests
    assert one.body == first["body"].encode()
    assert signature_valid(old, one.headers, one.body)
    assert two.body == second["body"].encode()
    assert signature_valid(new, two.headers, two.body)
    assert not signature_valid(old, two.headers, two.body)
    assert {row["id"] for row in deliveries} == {first["id"], second["id"]}
    assert {row["status"] for row in deliveries} == {"delivered"}
    assert {row["target_host"] for row in deliveries} == {"127.0.0.1"}
    assert "hidden" not in str(deliveries)
    assert outsider == []


def test_production_refuses_http_report_targets(
    backend: Backend, start_gateway: StartGateway
) -> None:
    if not backend.is_services:
        pytest.skip("the embedded default is not production")
    with Receiver() as receiver, start_gateway(**FAST) as server:
        tenant = sign_up(server)
        row = _enqueue(backend, tenant.tenant_id, receiver.url())
        (delivery,) = _settled(server, tenant.api_key)
        assert receiver.requests == []
    assert delivery["id"] == row["id"]
    assert delivery["status"] == "dead"
    assert delivery["attempts"] == 1
    assert delivery["last_error"] == "refused: https required"
