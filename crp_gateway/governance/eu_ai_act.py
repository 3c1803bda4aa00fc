"""EU AI Act class of a registered AI system (016§5, crp-protocol.md §8, G30).

Pure and I/O-free. The class comes from the system's registration, never from
the content of a call (002§7.1), so it is computed once when the system is
registered or changed and stored with it.

The rule, in the order G30 decides (016§5.3 checks the indicators first, which
would let a biometric-identification system with any indicator come out HIGH):

1. the domain is prohibited (`biometric_id`, `social_scoring`): UNACCEPTABLE;
2. any high-risk indicator is set: HIGH;
3. personal data is processed, or decisions are automated: LIMITED;
4. otherwise MINIMAL;

and the catalogue default of the domain is a floor under steps 2 to 4 (G30:
`general_information` is LIMITED even without personal data).

The domain catalogue (`DOMAIN_FLOORS`, published in the well-known document):

=========================  ============  =====================================
domain                     floor         why
=========================  ============  =====================================
biometric_id               UNACCEPTABLE  prohibited domain (step 1)
social_scoring             UNACCEPTABLE  prohibited domain (step 1)
employment                 HIGH          an Annex III area, like its indicator
credit                     HIGH          an Annex III area, like its indicator
medical                    HIGH          an Annex III area, like its indicator
law_enforcement            HIGH          an Annex III area, like its indicator
critical_infrastructure    HIGH          an Annex III area, like its indicator
education                  HIGH          an Annex III area (education_access)
general_information        LIMITED       the 016 catalogue's example (G30)
customer_support           LIMITED       people talk to the system (Art. 50)
content_generation         LIMITED       generated content is disclosed (Art. 50)
software_development       MINIMAL       no floor
data_analysis              MINIMAL       no floor
research                   MINIMAL       no floor
other                      MINIMAL       no floor
=========================  ============  =====================================

The floors err on the strict side: a domain named after an Annex III area is
HIGH even when no indicator is ticked. A system that only touches such an area
in passing (a tutoring bot, say) registers under a broader domain instead.

An unregistered system (a key bound to none) is UNKNOWN (002§12.5, G2).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from enum import StrEnum
from types import MappingProxyType

from crp_gateway.governance.headers import EuAiActClass

__all__ = [
    "CLASS_ORDER",
    "DOMAIN_FLOORS",
    "PROHIBITED_DOMAINS",
    "Basis",
    "Classification",
    "Domain",
    "HighRiskIndicators",
    "SystemFacts",
    "SystemProfile",
    "catalogue",
    "classify",
]


class Domain(StrEnum):
    """The registrable domains (the catalogue in the module docstring)."""

    BIOMETRIC_ID = "biometric_id"
    SOCIAL_SCORING = "social_scoring"
    EMPLOYMENT = "employment"
    CREDIT = "credit"
    MEDICAL = "medical"
    LAW_ENFORCEMENT = "law_enforcement"
    CRITICAL_INFRASTRUCTURE = "critical_infrastructure"
    EDUCATION = "education"
    GENERAL_INFORMATION = "general_information"
    CUSTOMER_SUPPORT = "customer_support"
    CONTENT_GENERATION = "content_generation"
    SOFTWARE_DEVELOPMENT = "software_development"
    DATA_ANALYSIS = "data_analysis"
    RESEARCH = "research"
    OTHER = "other"


#: Registered classes from least to most restricted (UNKNOWN is not a rank).
CLASS_ORDER: tuple[EuAiActClass, ...] = (
    EuAiActClass.MINIMAL,
    EuAiActClass.LIMITED,
    EuAiActClass.HIGH,
    EuAiActClass.UNACCEPTABLE,
)
_RANK = {cls: rank for rank, cls in enumerate(CLASS_ORDER)}

PROHIBITED_DOMAINS: frozenset[Domain] = frozenset(
    {Domain.BIOMETRIC_ID, Domain.SOCIAL_SCORING}
)

DOMAIN_FLOORS: Mapping[Domain, EuAiActClass] = MappingProxyType(
    {
        Domain.BIOMETRIC_ID: EuAiActClass.UNACCEPTABLE,
        Domain.SOCIAL_SCORING: EuAiActClass.UNACCEPTABLE,
        Domain.EMPLOYMENT: EuAiActClass.HIGH,
        Domain.CREDIT: EuAiActClass.HIGH,
        Domain.MEDICAL: EuAiActClass.HIGH,
        Domain.LAW_ENFORCEMENT: EuAiActClass.HIGH,
        Domain.CRITICAL_INFRASTRUCTURE: EuAiActClass.HIGH,
        Domain.EDUCATION: EuAiActClass.HIGH,
        Domain.GENERAL_INFORMATION: EuAiActClass.LIMITED,
        Domain.CUSTOMER_SUPPORT: EuAiActClass.LIMITED,
        Domain.CONTENT_GENERATION: EuAiActClass.LIMITED,
        Domain.SOFTWARE_DEVELOPMENT: EuAiActClass.MINIMAL,
        Domain.DATA_ANALYSIS: EuAiActClass.MINIMAL,
        Domain.RESEARCH: EuAiActClass.MINIMAL,
        Domain.OTHER: EuAiActClass.MINIMAL,
    }
)


class Basis(StrEnum):
    """Which step of the rule decided the class."""

    PROHIBITED_DOMAIN = "prohibited_domain"
    HIGH_RISK_INDICATOR = "high_risk_indicator"
    PERSONAL_DATA_OR_ADM = "personal_data_or_automated_decisions"
    DOMAIN_FLOOR = "domain_floor"
    NO_RISK_FACTOR = "no_risk_factor"
    UNREGISTERED = "unregistered"


@dataclass(frozen=True, slots=True)
class HighRiskIndicators:
    """The seven high-risk indicators of the 016§5 schema, all off by default."""

    employment: bool = False
    credit: bool = False
    medical: bool = False
    law_enforcement: bool = False
    critical_infrastructure: bool = False
    biometric_id: bool = False
    education_access: bool = False

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    def raised(self) -> tuple[str, ...]:
        """The names of the indicators that are set."""
        return tuple(name for name in self.names() if getattr(self, name))

    def as_dict(self) -> dict[str, bool]:
        return {name: bool(getattr(self, name)) for name in self.names()}


@dataclass(frozen=True, slots=True, kw_only=True)
class SystemProfile:
    """A registration (016§5 schema). Only the domain, the indicators and the
    two data-processing flags decide the class; the other fields describe the
    system for its operator and auditors."""

    system_id: str | None = None
    name: str
    domain: Domain
    intended_purpose: str
    deployment_context: str | None = None
    high_risk_indicators: HighRiskIndicators = HighRiskIndicators()
    users_classification: str | None = None
    personal_data_processing: bool = False
    automated_decision_making: bool = False
    default_safety_policy: str | None = None
    data_residency: str | None = None


@dataclass(frozen=True, slots=True)
class Classification:
    eu_ai_act: EuAiActClass
    basis: Basis


def _at_least(computed: Classification, floor: EuAiActClass) -> Classification:
    if _RANK[floor] > _RANK[computed.eu_ai_act]:
        return Classification(floor, Basis.DOMAIN_FLOOR)
    return computed


def classify(profile: SystemProfile | None) -> Classification:
    """The EU AI Act class of a registration; UNKNOWN for ``None``."""
    if profile is None:
        return Classification(EuAiActClass.UNKNOWN, Basis.UNREGISTERED)
    if profile.domain in PROHIBITED_DOMAINS:
        return Classification(EuAiActClass.UNACCEPTABLE, Basis.PROHIBITED_DOMAIN)
    if profile.high_risk_indicators.raised():
        computed = Classification(EuAiActClass.HIGH, Basis.HIGH_RISK_INDICATOR)
    elif profile.personal_data_processing or profile.automated_decision_making:
        computed = Classification(EuAiActClass.LIMITED, Basis.PERSONAL_DATA_OR_ADM)
    else:
        computed = Classification(EuAiActClass.MINIMAL, Basis.NO_RISK_FACTOR)
    return _at_least(computed, DOMAIN_FLOORS[profile.domain])


@dataclass(frozen=True, slots=True)
class SystemFacts:
    """What the data path needs of the system a key is bound to."""

    system_id: str
    eu_ai_act: EuAiActClass
    default_safety_policy: str | None = None

    @property
    def prohibited(self) -> bool:
        return self.eu_ai_act is EuAiActClass.UNACCEPTABLE


def catalogue() -> dict[str, object]:
    """The rule and the domain catalogue, for the well-known document."""
    return {
        "order": [
            "prohibited domain -> UNACCEPTABLE (checked first, G30)",
            "any high-risk indicator -> HIGH",
            "personal_data_processing or automated_decision_making -> LIMITED",
            "otherwise MINIMAL",
            "the domain's floor applies under steps 2-4",
        ],
        "prohibited_domains": sorted(d.value for d in PROHIBITED_DOMAINS),
        "domain_floors": {d.value: cls.value for d, cls in DOMAIN_FLOORS.items()},
        "high_risk_indicators": list(HighRiskIndicators.names()),
        "unregistered": EuAiActClass.UNKNOWN.value,
    }
