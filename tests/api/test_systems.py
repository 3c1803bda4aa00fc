"""AI system registration: ``/v1/systems``, classification, keys bound to systems."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from tests.support import GatewayServer, TenantHandle, sign_up

SUPPORT_BOT: dict[str, Any] = {
    "name": "support-bot",
    "domain": "customer_support",
    "intended_purpose": "Answer questions about our invoices.",
    "deployment_context": "public website chat",
    "users_classification": "general_public",
    "personal_data_processing": True,
    "data_residency": "eu",
}


def _register(client: httpx.Client, **fields: Any) -> httpx.Response:
    return client.post("/v1/systems", json={**SUPPORT_BOT, **fields})


def _system_ids(client: httpx.Client) -> set[str]:
    response = client.get("/v1/systems")
    assert response.status_code == 200, response.text
    return {row["id"] for row in response.json()["data"]}


def test_a_registered_system_is_classified_and_listed(gateway: GatewayServer) -> None:
    tenant = sign_up(gateway)
    with gateway.client(tenant.api_key) as client:
        created = _register(client)
        listed = client.get("/v1/systems")
        shown = client.get(f"/v1/systems/{created.json()['id']}")
    assert created.status_code == 201, created.text
    system = created.json()
    assert re.fullmatch(r"sys_[0-9a-f]{32}", system["id"])
    assert system["object"] == "ai_system"
    assert system["eu_ai_act"] == "LIMITED"
    assert system["eu_ai_act_basis"] == "personal_data_or_automated_decisions"
    assert system["data_residency"] == "EU"
    assert system["high_risk_indicators"] == {
        "employment": False,
        "credit": False,
        "medical": False,
        "law_enforcement": False,
        "critical_infrastructure": False,
        "biometric_id": False,
        "education_access": False,
    }
    assert [row["id"] for row in listed.json()["data"]] == [system["id"]]
    assert shown.status_code == 200
    assert shown.json() == system


def test_g30_a_biometric_domain_with_an_indicator_is_unacceptable(
    gateway: GatewayServer,
) -> None:
    tenant = sign_up(gateway)
    with gateway.client(tenant.api_key) as client:
        created = _register(
            client,
            name="face-match",
            domain="biometric_id",
            high_risk_indicators={"biometric_id": True, "law_enforcement": True},
        )
    assert created.status_code == 201, created.text
    assert created.json()["eu_ai_act"] == "UNACCEPTABLE"
    assert created.json()["eu_ai_act_basis"] == "prohibited_domain"


def test_patch_reclassifies_and_merges_indicators(gateway: GatewayServer) -> None:
    tenant = sign_up(gateway)
    with gateway.client(tenant.api_key) as client:
        system = _register(client).json()
        path = f"/v1/systems/{system['id']}"
        raised = client.patch(path, json={"high_risk_indicators": {"credit": True}})
        more = client.patch(path, json={"high_risk_indicators": {"medical": True}})
        lowered = client.patch(
            path,
            json={
                "domain": "software_development",
                "personal_data_processing": False,
                "high_risk_indicators": {"credit": False, "medical": False},
                "deployment_context": None,
            },
        )
        shown = client.get(path).json()
    assert raised.status_code == 200, raised.text
    assert raised.json()["eu_ai_act"] == "HIGH"
    indicators = more.json()["high_risk_indicators"]
    assert indicators["credit"] is True  # kept from the first PATCH
    assert indicators["medical"] is True
    assert lowered.json()["eu_ai_act"] == "MINIMAL"
    assert lowered.json()["deployment_context"] is None
    assert lowered.json()["intended_purpose"] == SUPPORT_BOT["intended_purpose"]
    assert shown == lowered.json()
    assert shown["updated_at"] > system["updated_at"]


@pytest.mark.parametrize(
    "body",
    [
        {"domain": "astrology"},
        {"name": ""},
        {"intended_purpose": None},
        {"high_risk_indicators": {"telepathy": True}},
        {"high_risk_indicators": {"credit": "maybe"}},
        {"default_safety_policy": "halt-on LOW"},
        {"data_residency": "EUR"},
        {"system_id": "sys_" + "0" * 32},
        {"eu_ai_act": "MINIMAL"},
    ],
)
def test_bad_registrations_are_400_and_change_nothing(
    gateway: GatewayServer, body: dict[str, Any]
) -> None:
    tenant = sign_up(gateway)
    with gateway.client(tenant.api_key) as client:
        response = client.post("/v1/systems", json={**SUPPORT_BOT, **body})
        assert response.status_code == 400, body
        error = response.json()["error"]
        assert error["type"] == "invalid_request_error"
        assert error["message"]
        assert _system_ids(client) == set()


def test_a_registration_needs_its_required_fields(gateway: GatewayServer) -> None:
    tenant = sign_up(gateway)
    with gateway.client(tenant.api_key) as client:
        for missing in ("name", "domain", "intended_purpose"):
            body = {k: v for k, v in SUPPORT_BOT.items() if k != missing}
            response = client.post("/v1/systems", json=body)
            assert response.status_code == 400, missing
            assert response.json()["error"]["param"] == missing
        assert _system_ids(client) == set()


@pytest.mark.parametrize(
    "body",
    [
        {"name": None},
        {"domain": None},
        {"personal_data_processing": None},
        {"domain": "astrology"},
        {"default_safety_policy": "no-such-directive"},
        {"unknown": 1},
    ],
)
def test_bad_patches_are_400_and_change_nothing(
    gateway: GatewayServer, body: dict[str, Any]
) -> None:
    tenant = sign_up(gateway)
    with gateway.client(tenant.api_key) as client:
        system = _register(client).json()
        response = client.patch(f"/v1/systems/{system['id']}", json=body)
        after = client.get(f"/v1/systems/{system['id']}").json()
    assert response.status_code == 400, body
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert after == system


def test_names_are_unique_per_tenant(gateway: GatewayServer) -> None:
    first, second = sign_up(gateway), sign_up(gateway)
    with gateway.client(first.api_key) as client:
        assert _register(client).status_code == 201
        duplicate = _register(client, domain="other")
        other = _register(client, name="other-bot").json()
        renamed = client.patch(
            f"/v1/systems/{other['id']}", json={"name": SUPPORT_BOT["name"]}
        )
    with gateway.client(second.api_key) as client:
        same_name_elsewhere = _register(client)
    assert duplicate.status_code == 409
    assert duplicate.json()["error"]["code"] == "system_name_taken"
    assert renamed.status_code == 409
    assert same_name_elsewhere.status_code == 201


def _bound_key(client: httpx.Client, system_id: str | None) -> dict[str, Any]:
    response = client.post("/v1/keys", json={"name": "app", "system_id": system_id})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def test_a_key_can_be_bound_to_a_system_and_lists_it(gateway: GatewayServer) -> None:
    tenant = sign_up(gateway)
    with gateway.client(tenant.api_key) as client:
        system = _register(client).json()
        bound = _bound_key(client, system["id"])
        unbound = _bound_key(client, None)
        listed = {row["id"]: row for row in client.get("/v1/keys").json()["data"]}
    assert bound["system_id"] == system["id"]
    assert listed[bound["id"]]["system_id"] == system["id"]
    assert listed[unbound["id"]]["system_id"] is None


def test_a_key_cannot_be_bound_to_an_unknown_or_foreign_system(
    gateway: GatewayServer,
) -> None:
    owner, intruder = sign_up(gateway), sign_up(gateway)
    with gateway.client(owner.api_key) as client:
        foreign = _register(client).json()["id"]
    with gateway.client(intruder.api_key) as client:
        before = {row["id"] for row in client.get("/v1/keys").json()["data"]}
        for system_id in (foreign, "sys_" + "0" * 32, "nonsense"):
            response = client.post(
                "/v1/keys", json={"name": "app", "system_id": system_id}
            )
            assert response.status_code == 404, system_id
            error = response.json()["error"]
            assert error["code"] == "system_not_found"
            assert error["param"] == "system_id"
        after = {row["id"] for row in client.get("/v1/keys").json()["data"]}
    assert after == before


def test_systems_are_invisible_across_tenants(gateway: GatewayServer) -> None:
    owner, other = sign_up(gateway), sign_up(gateway)
    with gateway.client(owner.api_key) as client:
        system = _register(client).json()
    path = f"/v1/systems/{system['id']}"
    with gateway.client(other.api_key) as client:
        attempts = [
            client.get(path),
            client.patch(path, json={"domain": "social_scoring"}),
            client.delete(path),
        ]
        listed = _system_ids(client)
    for response in attempts:
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "system_not_found"
    assert system["id"] not in listed
    with gateway.client(owner.api_key) as client:
        unchanged = client.get(path).json()
    assert unchanged == system


def test_delete_is_refused_while_an_active_key_is_bound(
    gateway: GatewayServer,
) -> None:
    tenant = sign_up(gateway)
    with gateway.client(tenant.api_key) as client:
        system = _register(client).json()
        key = _bound_key(client, system["id"])
        path = f"/v1/systems/{system['id']}"
        refused = client.delete(path)
        still = client.get(path)
        assert client.delete(f"/v1/keys/{key['id']}").status_code == 200
        deleted = client.delete(path)
        gone = client.get(path)
        again = client.delete(path)
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "system_in_use"
    assert still.status_code == 200
    assert deleted.status_code == 200
    assert deleted.json() == {
        "id": system["id"],
        "object": "ai_system",
        "deleted": True,
    }
    assert gone.status_code == 404
    assert again.status_code == 404


def _inference_key(gateway: GatewayServer, tenant: TenantHandle) -> str:
    with gateway.client(tenant.api_key) as client:
        key: str = client.post("/v1/keys", json={"name": "app"}).json()["api_key"]
    return key


def test_systems_need_an_admin_key(gateway: GatewayServer) -> None:
    tenant = sign_up(gateway)
    inference = _inference_key(gateway, tenant)
    with gateway.client(inference) as client:
        attempts = [client.get("/v1/systems"), _register(client)]
    with gateway.client() as client:
        anonymous = client.get("/v1/systems")
    for response in attempts:
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "insufficient_role"
    assert anonymous.status_code == 401
