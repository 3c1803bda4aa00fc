"""Provider credentials: rotation, validation, never a key in a response."""

from __future__ import annotations

import json

import pytest

from tests.support import GatewayServer, provider_key, sign_up


def test_posting_again_rotates_the_key(gateway: GatewayServer) -> None:
    tenant = sign_up(gateway)
    old, new = provider_key(), provider_key()
    with gateway.client(tenant.api_key) as client:
        first = client.post(
            "/v1/providers/anthropic",
            json={"api_key": old, "default_model": "claude-sonnet-4-5"},
        )
        second = client.post(
            "/v1/providers/anthropic",
            json={"api_key": new, "default_model": "claude-opus-4-1"},
        )
        listed = client.get("/v1/providers").json()["data"]
    assert first.status_code == 201
    assert second.status_code == 200
    assert second.json()["id"] == first.json()["id"]
    assert second.json()["key_hint"] == f"sk-…{new[-4:]}"
    assert second.json()["default_model"] == "claude-opus-4-1"
    assert second.json()["base_url"] == "https://api.anthropic.com"
    assert second.json()["updated_at"] > first.json()["updated_at"]
    assert second.json()["created_at"] == first.json()["created_at"]
    assert len(listed) == 1


def test_openai_accepts_base_url_and_organization(gateway: GatewayServer) -> None:
    tenant = sign_up(gateway)
    with gateway.client(tenant.api_key) as client:
        response = client.post(
            "/v1/providers/openai",
            json={
                "api_key": provider_key(),
                "default_model": "gpt-4o-mini",
                "base_url": "https://eu.api.example.com/v1/",
                "organization": "org-123",
            },
        )
    assert response.status_code == 201
    assert response.json()["base_url"] == "https://eu.api.example.com/v1"
    assert response.json()["organization"] == "org-123"


def test_short_keys_get_a_hint_that_reveals_nothing(gateway: GatewayServer) -> None:
    tenant = sign_up(gateway)
    with gateway.client(tenant.api_key) as client:
        response = client.post(
            "/v1/providers/custom",
            json={
                "name": "vllm",
                "base_url": "http://10.0.0.5:8000/v1",
                "api_key": "unused",
                "default_model": "qwen",
            },
        )
    assert response.json()["key_hint"] == "…"


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/providers/openai", {"default_model": "gpt-4o"}, "api_key"),
        (
            "/v1/providers/openai",
            {"api_key": "sk-abc", "default_model": ""},
            "default_model",
        ),
        (
            "/v1/providers/openai",
            {"api_key": "sk-abc", "default_model": "m", "base_url": "ftp://x/v1"},
            "base_url",
        ),
        (
            "/v1/providers/openai",
            {"api_key": "sk-abc", "default_model": "m", "base_url": "https://u:p@x/v1"},
            "base_url",
        ),
        (
            "/v1/providers/custom",
            {
                "name": "meta",
                "base_url": "http://169.254.169.254/latest",
                "api_key": "k",
                "default_model": "m",
            },
            "base_url",
        ),
        (
            "/v1/providers/custom",
            {
                "name": "Bad Name",
                "base_url": "http://x/v1",
                "api_key": "k",
                "default_model": "m",
            },
            "name",
        ),
        (
            "/v1/providers/custom",
            {
                "name": "openai",
                "base_url": "http://x/v1",
                "api_key": "k",
                "default_model": "m",
            },
            "name",
        ),
        (
            "/v1/providers/anthropic",
            {"api_key": "sk a b", "default_model": "m"},
            "api_key",
        ),
    ],
)
def test_provider_requests_are_validated(
    gateway: GatewayServer, path: str, body: dict[str, str], field: str
) -> None:
    tenant = sign_up(gateway)
    with gateway.client(tenant.api_key) as client:
        response = client.post(path, json=body)
        listed = client.get("/v1/providers").json()["data"]
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == field
    assert listed == []


def test_validation_errors_never_echo_the_key(gateway: GatewayServer) -> None:
    tenant = sign_up(gateway)
    secret = provider_key()
    bodies = [
        {"api_key": secret, "default_model": 7},
        {"api_key": secret + " \n", "default_model": "m"},
        {"api_key": secret, "default_model": "m", "base_url": secret},
        {"api_key": [secret], "default_model": "m"},
        {"api_key": secret, "default_model": "m", "extra": secret},
    ]
    with gateway.client(tenant.api_key) as client:
        for body in bodies:
            response = client.post("/v1/providers/openai", json=body)
            assert response.status_code == 400, json.dumps(body)
            assert secret not in response.text


def test_unknown_and_deleted_providers_are_not_found(gateway: GatewayServer) -> None:
    tenant = sign_up(gateway)
    with gateway.client(tenant.api_key) as client:
        client.post(
            "/v1/providers/openai",
            json={"api_key": provider_key(), "default_model": "m"},
        )
        deleted = client.delete("/v1/providers/openai")
        again = client.delete("/v1/providers/openai")
        shown = client.get("/v1/providers/openai")
    assert deleted.status_code == 200
    assert deleted.json() == {"name": "openai", "object": "provider", "deleted": True}
    assert again.status_code == 404
    assert shown.status_code == 404
    assert shown.json()["error"]["code"] == "provider_not_found"


def test_a_second_tenant_sees_none_of_the_firsts_providers(
    gateway: GatewayServer,
) -> None:
    first, second = sign_up(gateway), sign_up(gateway)
    secret = provider_key()
    with gateway.client(first.api_key) as client:
        client.post(
            "/v1/providers/openai", json={"api_key": secret, "default_model": "m"}
        )
        client.post(
            "/v1/providers/custom",
            json={
                "name": "ollama",
                "base_url": "http://h/v1",
                "api_key": secret,
                "default_model": "m",
            },
        )
    with gateway.client(second.api_key) as client:
        listed = client.get("/v1/providers")
        shown = client.get("/v1/providers/ollama")
        deleted = client.delete("/v1/providers/openai")
    assert listed.json()["data"] == []
    assert shown.status_code == 404
    assert deleted.status_code == 404
    with gateway.client(first.api_key) as client:
        names = [p["name"] for p in client.get("/v1/providers").json()["data"]]
    assert names == ["ollama", "openai"]


def test_a_2xx_means_the_change_is_already_committed(gateway: GatewayServer) -> None:
    """Each answer is sent only after its transaction committed: a request sent
    the moment the previous answer arrives always sees the change."""
    tenant = sign_up(gateway)
    with gateway.client(tenant.api_key) as client:
        for _ in range(25):
            created = client.post(
                "/v1/providers/openai",
                json={"api_key": provider_key(), "default_model": "m"},
            )
            assert created.status_code == 201
            assert client.delete("/v1/providers/openai").status_code == 200
            assert client.get("/v1/providers/openai").status_code == 404
