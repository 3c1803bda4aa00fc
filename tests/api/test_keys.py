"""Gateway keys: shown once, hashed at rest, roles, revocation on every replica."""

from __future__ import annotations

import time

from tests.conftest import StartGateway
from tests.support import GatewayServer, sign_up


def test_a_new_key_is_shown_once_and_listed_by_hint(gateway: GatewayServer) -> None:
    tenant = sign_up(gateway)
    with gateway.client(tenant.api_key) as client:
        created = client.post(
            "/v1/keys", json={"name": "ci", "role": "inference", "rpm_limit": 60}
        )
        listed = client.get("/v1/keys")
    assert created.status_code == 201, created.text
    new = created.json()
    assert new["api_key"].startswith(f"crp_gw_{new['id']}_")
    assert new["role"] == "inference"
    assert new["rpm_limit"] == 60
    assert new["hint"] == f"crp_gw_{new['id']}_…{new['api_key'][-4:]}"
    rows = {row["id"]: row for row in listed.json()["data"]}
    assert set(rows) == {tenant.api_key.split("_")[2], new["id"]}
    assert rows[new["id"]]["hint"] == new["hint"]
    assert new["api_key"] not in listed.text
    assert tenant.api_key not in listed.text
    assert all("api_key" not in row for row in rows.values())


def test_last_used_is_reported_without_waiting_for_a_flush(
    gateway: GatewayServer,
) -> None:
    tenant = sign_up(gateway)
    with gateway.client(tenant.api_key) as client:
        first = client.get("/v1/keys").json()["data"][0]["last_used_at"]
        time.sleep(0.01)
        second = client.get("/v1/keys").json()["data"][0]["last_used_at"]
    assert first is not None
    assert second > first


def test_an_inference_key_cannot_manage_the_tenant(gateway: GatewayServer) -> None:
    tenant = sign_up(gateway)
    with gateway.client(tenant.api_key) as client:
        inference = client.post("/v1/keys", json={"name": "app"}).json()["api_key"]
    with gateway.client(inference) as client:
        attempts = [
            client.get("/v1/keys"),
            client.post("/v1/keys", json={"name": "escalate", "role": "admin"}),
            client.get("/v1/providers"),
            client.post(
                "/v1/providers/openai",
                json={"api_key": "sk-x" * 4, "default_model": "m"},
            ),
        ]
        me = client.get("/v1/tenants/me")
    for response in attempts:
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "insufficient_role"
    assert me.status_code == 200


def test_bad_credentials_are_refused(gateway: GatewayServer) -> None:
    tenant = sign_up(gateway)
    public_id = tenant.api_key.split("_")[2]
    wrong_secret = f"crp_gw_{public_id}_" + "a" * 52
    with gateway.client() as client:
        missing = client.get("/v1/keys")
        for token in ("nonsense", wrong_secret, tenant.api_key + "x"):
            refused = client.get(
                "/v1/keys", headers={"Authorization": f"Bearer {token}"}
            )
            assert refused.status_code == 401
            assert refused.json()["error"]["type"] == "authentication_error"
            assert token not in refused.text
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "missing_api_key"


def test_revoked_key_is_refused_at_once_here(gateway: GatewayServer) -> None:
    tenant = sign_up(gateway)
    with gateway.client(tenant.api_key) as client:
        new = client.post("/v1/keys", json={"name": "tmp", "role": "admin"}).json()
    with gateway.client(new["api_key"]) as client:
        assert client.get("/v1/keys").status_code == 200
    with gateway.client(tenant.api_key) as client:
        revoked = client.delete(f"/v1/keys/{new['id']}")
        listed = client.get("/v1/keys").json()["data"]
    assert revoked.status_code == 200
    assert revoked.json() == {"id": new["id"], "object": "gateway_key", "deleted": True}
    assert new["id"] not in {row["id"] for row in listed}
    with gateway.client(new["api_key"]) as client:
        assert client.get("/v1/keys").status_code == 401


def test_revocation_reaches_another_replica_within_a_second(
    gateway: GatewayServer, start_gateway: StartGateway
) -> None:
    tenant = sign_up(gateway)
    with gateway.client(tenant.api_key) as client:
        new = client.post("/v1/keys", json={"name": "fleet"}).json()
    with start_gateway() as replica:
        with replica.client(new["api_key"]) as client:
            assert client.get("/v1/tenants/me").status_code == 200  # now cached
        with gateway.client(tenant.api_key) as client:
            assert client.delete(f"/v1/keys/{new['id']}").status_code == 200
        time.sleep(replica.settings.crp_key_cache_seconds + 0.05)
        with replica.client(new["api_key"]) as client:
            assert client.get("/v1/tenants/me").status_code == 401


def test_the_last_admin_key_cannot_be_revoked(gateway: GatewayServer) -> None:
    tenant = sign_up(gateway)
    own_id = tenant.api_key.split("_")[2]
    with gateway.client(tenant.api_key) as client:
        refused = client.delete(f"/v1/keys/{own_id}")
        still = client.get("/v1/keys")
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "last_admin_key"
    assert still.status_code == 200


def test_keys_are_invisible_across_tenants(gateway: GatewayServer) -> None:
    first, second = sign_up(gateway), sign_up(gateway)
    first_id = first.api_key.split("_")[2]
    with gateway.client(second.api_key) as client:
        listed = client.get("/v1/keys").json()["data"]
        revoke = client.delete(f"/v1/keys/{first_id}")
    assert first_id not in {row["id"] for row in listed}
    assert revoke.status_code == 404
    with gateway.client(first.api_key) as client:
        assert client.get("/v1/keys").status_code == 200


def test_key_requests_are_validated(gateway: GatewayServer) -> None:
    tenant = sign_up(gateway)
    with gateway.client(tenant.api_key) as client:
        for body in (
            {"name": ""},
            {"name": "x", "role": "owner"},
            {"name": "x", "rpm_limit": 0},
            {"name": "x", "secret": "mine"},
        ):
            response = client.post("/v1/keys", json=body)
            assert response.status_code == 400, body
            assert response.json()["error"]["type"] == "invalid_request_error"
