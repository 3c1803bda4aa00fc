from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from crp_gateway.store.models.base import Base, TenantOwned, UTCDateTime, utcnow


class AiSystem(TenantOwned, Base):
    """A registered AI system (016§5) and its computed EU AI Act class.

    ``eu_ai_act`` and ``eu_ai_act_basis`` are written by
    ``governance.eu_ai_act.classify`` whenever the registration changes; the data
    path reads the stored class and never re-classifies.
    """

    __tablename__ = "ai_systems"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    domain: Mapped[str] = mapped_column(String(40))
    intended_purpose: Mapped[str] = mapped_column(Text)
    deployment_context: Mapped[str | None] = mapped_column(Text, nullable=True)
    high_risk_indicators: Mapped[dict[str, bool]] = mapped_column(JSON)
    users_classification: Mapped[str | None] = mapped_column(String(200), nullable=True)
    personal_data_processing: Mapped[bool] = mapped_column(Boolean)
    automated_decision_making: Mapped[bool] = mapped_column(Boolean)
    default_safety_policy: Mapped[str | None] = mapped_column(Text, nullable=True)
    data_residency: Mapped[str | None] = mapped_column(String(2), nullable=True)
    eu_ai_act: Mapped[str] = mapped_column(String(16))
    eu_ai_act_basis: Mapped[str] = mapped_column(String(48))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
