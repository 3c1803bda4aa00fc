"""AI system registration (016§5, G30) and the key's bound system.

``ai_systems`` holds each tenant's registrations with the EU AI Act class
computed from them; ``api_keys.system_id`` (nullable: unregistered) binds a key
to one of its tenant's systems.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from crp_gateway.store.models.base import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ai_systems",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("domain", sa.String(length=40), nullable=False),
        sa.Column("intended_purpose", sa.Text(), nullable=False),
        sa.Column("deployment_context", sa.Text(), nullable=True),
        sa.Column("high_risk_indicators", sa.JSON(), nullable=False),
        sa.Column("users_classification", sa.String(length=200), nullable=True),
        sa.Column("personal_data_processing", sa.Boolean(), nullable=False),
        sa.Column("automated_decision_making", sa.Boolean(), nullable=False),
        sa.Column("default_safety_policy", sa.Text(), nullable=True),
        sa.Column("data_residency", sa.String(length=2), nullable=True),
        sa.Column("eu_ai_act", sa.String(length=16), nullable=False),
        sa.Column("eu_ai_act_basis", sa.String(length=48), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_ai_systems_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ai_systems")),
        sa.UniqueConstraint("tenant_id", "name", name=op.f("uq_ai_systems_tenant_id")),
    )
    with op.batch_alter_table("ai_systems", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_ai_systems_tenant_id"), ["tenant_id"], unique=False
        )

    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("system_id", sa.String(length=40), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_api_keys_system_id"), ["system_id"], unique=False
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_api_keys_system_id_ai_systems"),
            "ai_systems",
            ["system_id"],
            ["id"],
        )


def downgrade() -> None:
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_api_keys_system_id_ai_systems"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_api_keys_system_id"))
        batch_op.drop_column("system_id")

    with op.batch_alter_table("ai_systems", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ai_systems_tenant_id"))

    op.drop_table("ai_systems")
