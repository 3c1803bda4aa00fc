"""Sign-up and the deployment guide's Step 5 walkthrough."""

from __future__ import annotations

import re

import pytest

from tests.conftest import StartGateway
from tests.support import GatewayServer, provider_key, random_address, sign_up

TENANT_ID = re.compile(r"^tnt_[a-z2-7]{26}$")
GATEWAY_KEY = re.compile(r"^crp_gw_[a-z2-7]{16}_[a-z2-7]{52}$")


def test_guide_step_5_walkthrough(gateway: GatewayServer) -> None:
    openai_key, ollama_key = provider_key(), provider_key("ollama-")
    with gateway.client() as client:
        created = client.post(
            "/v1/tenants",
            json={"name": "my-team", "email": "Guide.User@Example.com"},
            headers={"X-Forwarded-For": random_address()},
        )
    assert created.status_code == 201
    body = created.json()
    assert set(body) == {"tenant_id", "api_key", "plan"}
    assert TENANT_ID.match(body["tenant_id"])
    assert GATEWAY_KEY.match(body["api_key"])
    assert body["plan"] == "free"

    with gateway.client(body["api_key"]) as client:
        openai = client.post(
            "/v1/providers/openai",
            json={"api_key": openai_key, "default_model": "gpt-4o"},
        )
        custom = client.post(
            "/v1/providers/custom",
            json={
                "name": "local-ollama",
                "base_url": "http://localhost:11434/v1",
                "api_key": ollama_key,
                "default_model": "llama3.1",
            },
        )
        listed = client.get("/v1/providers")
        one = client.get("/v1/providers/local-ollama")

    assert openai.status_code == 201, openai.text
    assert openai.json()["provider"] == "openai"
    assert openai.json()["default_model"] == "gpt-4o"
    assert openai.json()["base_url"] == "https://api.openai.com/v1"
    assert openai.json()["key_hint"] == f"sk-…{openai_key[-4:]}"
    assert custom.status_code == 201, custom.text
    assert custom.json()["base_url"] == "http://localhost:11434/v1"
    assert [p["name"] for p in listed.json()["data"]] == ["local-ollama", "openai"]
    assert one.json()["status"] == "ok"
    for response in (openai, custom, listed, one):
        assert openai_key not in response.text
        assert ollama_key not in response.text


def test_me_shows_the_callers_tenant(gateway: GatewayServer) -> None:
    tenant = sign_up(gateway, name="Profile Team")
    with gateway.client(tenant.api_key) as client:
        me = client.get("/v1/tenants/me")
    assert me.status_code == 200
    assert me.json()["tenant_id"] == tenant.tenant_id
    assert me.json()["name"] == "Profile Team"
    assert me.json()["email"] == tenant.email
    assert me.json()["plan"] == "free"


def test_same_email_twice_is_a_conflict_whatever_the_case(
    gateway: GatewayServer,
) -> None:
    tenant = sign_up(gateway)
    with gateway.client() as client:
        again = client.post(
            "/v1/tenants",
            json={"name": "other", "email": tenant.email.upper()},
            headers={"X-Forwarded-For": random_address()},
        )
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "tenant_exists"


def test_sign_up_validates_name_and_email(gateway: GatewayServer) -> None:
    bad_bodies = {
        "empty name": {"name": "", "email": "a@example.com"},
        "blank name": {"name": "   ", "email": "a@example.com"},
        "long name": {"name": "x" * 101, "email": "a@example.com"},
        "bad email": {"name": "team", "email": "not-an-email"},
        "missing email": {"name": "team"},
        "unknown field": {"name": "team", "email": "a@example.com", "plan": "team"},
    }
    with gateway.client() as client:
        for label, body in bad_bodies.items():
            response = client.post(
                "/v1/tenants", json=body, headers={"X-Forwarded-For": random_address()}
            )
            assert response.status_code == 400, label
            error = response.json()["error"]
            assert error["type"] == "invalid_request_error", label
            assert error["message"], label


def test_sign_up_is_rate_limited_per_client_address(
    start_gateway: StartGateway,
) -> None:
    """Two replicas share the counter when Redis is configured; one replica
    alone always enforces it."""
    address = random_address()
    with start_gateway(crp_signup_rate_per_hour=3) as server:
        statuses = []
        with server.client() as client:
            for n in range(4):
                response = client.post(
                    "/v1/tenants",
                    json={"name": "t", "email": f"rl-{n}-{address}@example.com"},
                    headers={"X-Forwarded-For": address},
                )
                statuses.append(response.status_code)
            other = client.post(
                "/v1/tenants",
                json={"name": "t", "email": f"rl-other-{address}@example.com"},
                headers={"X-Forwarded-For": random_address()},
            )
    assert statuses == [201, 201, 201, 429]
    assert int(response.headers["retry-after"]) >= 1
    assert response.json()["error"]["type"] == "rate_limit_error"
    assert other.status_code == 201


def test_sign_up_limit_is_global_across_replicas_with_redis(
    start_gateway: StartGateway, gateway: GatewayServer
) -> None:
    if gateway.settings.redis_url is None:
        pytest.skip("without Redis the counter is per replica, by design")
    address = random_address()
    with (
        start_gateway(crp_signup_rate_per_hour=2) as a,
        start_gateway(crp_signup_rate_per_hour=2) as b,
    ):
        results = []
        for n, server in enumerate((a, b, a)):
            with server.client() as client:
                results.append(
                    client.post(
                        "/v1/tenants",
                        json={"name": "t", "email": f"g-{n}-{address}@example.com"},
                        headers={"X-Forwarded-For": address},
                    ).status_code
                )
    assert results == [201, 201, 429]


def test_closed_sign_up_is_forbidden(start_gateway: StartGateway) -> None:
    with start_gateway(crp_signup="closed") as server, server.client() as client:
        response = client.post(
            "/v1/tenants", json={"name": "team", "email": "closed@example.com"}
        )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "signup_closed"
