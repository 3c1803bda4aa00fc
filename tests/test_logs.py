"""A whole flow's log output holds no provider key, gateway key or SECRET_KEY."""

from __future__ import annotations

import json

from tests.conftest import StartGateway
from tests.support import LogCapture, provider_key, random_address


def test_logs_of_a_whole_flow_hold_no_secret(start_gateway: StartGateway) -> None:
    openai_key, custom_key = provider_key(), provider_key("ollama-secret-")
    with LogCapture(json=True) as logs, start_gateway(log_level="debug") as server:
        with server.client() as client:
            signup = client.post(
                "/v1/tenants",
                json={"name": "logs", "email": f"logs-{openai_key[-6:]}@example.com"},
                headers={"X-Forwarded-For": random_address()},
            ).json()
        admin = signup["api_key"]
        with server.client(admin) as client:
            client.post(
                "/v1/providers/openai",
                json={"api_key": openai_key, "default_model": "m"},
            )
            client.post(
                "/v1/providers/openai", json={"api_key": openai_key, "default_model": 1}
            )
            client.post(
                "/v1/providers/custom",
                json={
                    "name": "local",
                    "base_url": "http://h/v1",
                    "api_key": custom_key,
                    "default_model": "m",
                },
            )
            inference = client.post("/v1/keys", json={"name": "app"}).json()["api_key"]
            client.get("/v1/providers")
            client.delete(f"/v1/keys/{inference.split('_')[2]}")
        with server.client(inference) as client:
            client.get("/v1/tenants/me")  # refused: revoked
        with server.client(admin + "tampered") as client:
            client.get("/v1/keys")
    text = logs.text
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    events = {line["event"] for line in lines}
    assert {"tenant.created", "provider.registered", "key.revoked"} <= events
    assert all(
        "request_id" in line for line in lines if line["event"] == "http.request"
    )
    secret_key = server.settings.secret_key_value()
    for forbidden in (openai_key, custom_key, admin, inference, secret_key):
        assert forbidden not in text
    assert admin.rsplit("_", 1)[1] not in text
