"""The EU AI Act class of a registration (016§5, G30): every branch of the rule."""

from __future__ import annotations

from dataclasses import replace

import pytest

from crp_gateway.governance.discovery import discovery_document
from crp_gateway.governance.eu_ai_act import (
    CLASS_ORDER,
    DOMAIN_FLOORS,
    Basis,
    Domain,
    HighRiskIndicators,
    SystemFacts,
    SystemProfile,
    catalogue,
    classify,
)
from crp_gateway.governance.headers import EuAiActClass

BASE = SystemProfile(
    name="notes-helper",
    domain=Domain.SOFTWARE_DEVELOPMENT,
    intended_purpose="Summarise engineering notes.",
)


def test_an_unregistered_system_is_unknown() -> None:
    result = classify(None)
    assert result.eu_ai_act is EuAiActClass.UNKNOWN
    assert result.basis is Basis.UNREGISTERED


def test_no_risk_factor_in_a_domain_without_floor_is_minimal() -> None:
    result = classify(BASE)
    assert result.eu_ai_act is EuAiActClass.MINIMAL
    assert result.basis is Basis.NO_RISK_FACTOR


@pytest.mark.parametrize("domain", [Domain.BIOMETRIC_ID, Domain.SOCIAL_SCORING])
def test_prohibited_domains_are_unacceptable(domain: Domain) -> None:
    result = classify(replace(BASE, domain=domain))
    assert result.eu_ai_act is EuAiActClass.UNACCEPTABLE
    assert result.basis is Basis.PROHIBITED_DOMAIN


def test_g30_a_prohibited_domain_wins_over_a_high_risk_indicator() -> None:
    """016§5.3 as written would say HIGH here; G30 checks the domain first."""
    profile = replace(
        BASE,
        domain=Domain.BIOMETRIC_ID,
        high_risk_indicators=HighRiskIndicators(biometric_id=True, employment=True),
        personal_data_processing=True,
    )
    result = classify(profile)
    assert result.eu_ai_act is EuAiActClass.UNACCEPTABLE
    assert result.basis is Basis.PROHIBITED_DOMAIN


@pytest.mark.parametrize("indicator", HighRiskIndicators.names())
def test_any_single_high_risk_indicator_is_high(indicator: str) -> None:
    profile = replace(
        BASE, high_risk_indicators=HighRiskIndicators(**{indicator: True})
    )
    result = classify(profile)
    assert result.eu_ai_act is EuAiActClass.HIGH
    assert result.basis is Basis.HIGH_RISK_INDICATOR


def test_the_biometric_indicator_outside_a_prohibited_domain_is_high() -> None:
    profile = replace(
        BASE,
        domain=Domain.CUSTOMER_SUPPORT,
        high_risk_indicators=HighRiskIndicators(biometric_id=True),
    )
    assert classify(profile).eu_ai_act is EuAiActClass.HIGH


@pytest.mark.parametrize(("pii", "adm"), [(True, False), (False, True), (True, True)])
def test_personal_data_or_automated_decisions_are_limited(pii: bool, adm: bool) -> None:
    profile = replace(BASE, personal_data_processing=pii, automated_decision_making=adm)
    result = classify(profile)
    assert result.eu_ai_act is EuAiActClass.LIMITED
    assert result.basis is Basis.PERSONAL_DATA_OR_ADM


def test_an_indicator_outranks_personal_data() -> None:
    profile = replace(
        BASE,
        personal_data_processing=True,
        high_risk_indicators=HighRiskIndicators(credit=True),
    )
    assert classify(profile).eu_ai_act is EuAiActClass.HIGH


def test_g30_general_information_has_a_limited_floor() -> None:
    """The catalogue default beats the MINIMAL the rule alone would give."""
    result = classify(replace(BASE, domain=Domain.GENERAL_INFORMATION))
    assert result.eu_ai_act is EuAiActClass.LIMITED
    assert result.basis is Basis.DOMAIN_FLOOR


def test_a_high_floor_lifts_personal_data_processing() -> None:
    profile = replace(BASE, domain=Domain.MEDICAL, personal_data_processing=True)
    result = classify(profile)
    assert result.eu_ai_act is EuAiActClass.HIGH
    assert result.basis is Basis.DOMAIN_FLOOR


def test_a_floor_never_lowers_the_computed_class() -> None:
    profile = replace(
        BASE,
        domain=Domain.GENERAL_INFORMATION,
        high_risk_indicators=HighRiskIndicators(law_enforcement=True),
    )
    result = classify(profile)
    assert result.eu_ai_act is EuAiActClass.HIGH
    assert result.basis is Basis.HIGH_RISK_INDICATOR


def test_when_the_floor_equals_the_computed_class_the_rule_is_the_basis() -> None:
    profile = replace(
        BASE, domain=Domain.GENERAL_INFORMATION, automated_decision_making=True
    )
    assert classify(profile).basis is Basis.PERSONAL_DATA_OR_ADM


@pytest.mark.parametrize("domain", list(Domain))
def test_every_domain_is_classified_at_least_at_its_floor(domain: Domain) -> None:
    floor = DOMAIN_FLOORS[domain]
    got = classify(replace(BASE, domain=domain)).eu_ai_act
    assert CLASS_ORDER.index(got) >= CLASS_ORDER.index(floor)
    assert got is floor  # no other risk factor is set in BASE


def test_the_catalogue_covers_every_domain_and_names_the_g30_order() -> None:
    document = catalogue()
    floors = document["domain_floors"]
    assert isinstance(floors, dict)
    assert set(floors) == {domain.value for domain in Domain}
    assert floors["general_information"] == "LIMITED"
    assert document["prohibited_domains"] == ["biometric_id", "social_scoring"]
    order = document["order"]
    assert isinstance(order, list)
    assert "UNACCEPTABLE" in order[0]
    assert document["high_risk_indicators"] == list(HighRiskIndicators.names())


def test_indicators_report_what_is_raised() -> None:
    indicators = HighRiskIndicators(credit=True, education_access=True)
    assert indicators.raised() == ("credit", "education_access")
    assert indicators.as_dict()["credit"] is True
    assert indicators.as_dict()["medical"] is False
    assert len(HighRiskIndicators.names()) == 7


def test_only_an_unacceptable_system_is_prohibited() -> None:
    for cls in EuAiActClass:
        facts = SystemFacts(system_id="sys_x", eu_ai_act=cls)
        assert facts.prohibited is (cls is EuAiActClass.UNACCEPTABLE)


def test_the_well_known_document_publishes_the_catalogue() -> None:
    document = discovery_document(gateway_url="https://gw.example", providers=[])
    assert document["eu_ai_act"] == catalogue()
    halt = document["halt"]
    assert isinstance(halt, dict)
    assert "UNACCEPTABLE_EU_AI_ACT" in halt["reasons"]
