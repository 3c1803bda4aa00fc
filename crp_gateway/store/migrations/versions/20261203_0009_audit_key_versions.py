"""Audit master key rotation: key versions on audit rows, several per tenant.

Every audit row names the tenant master key version its HMAC key comes from
(existing rows: 1), and ``tenant_keys`` keeps one row per version.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_AUDIT_TABLES = (
    "audit_windows",
    "audit_events",
    "audit_tenant_links",
    "audit_truncations",
)


def upgrade() -> None:
    for table in _AUDIT_TABLES:
        op.add_column(
            table,
            sa.Column("key_version", sa.Integer(), server_default="1", nullable=False),
        )
    with op.batch_alter_table("tenant_keys", schema=None) as batch_op:
        batch_op.drop_constraint("uq_tenant_keys_tenant_id", type_="unique")
        batch_op.create_unique_constraint(
            "uq_tenant_keys_version", ["tenant_id", "purpose", "version"]
        )


def downgrade() -> None:
    with op.batch_alter_table("tenant_keys", schema=None) as batch_op:
        batch_op.drop_constraint("uq_tenant_keys_version", type_="unique")
        batch_op.create_unique_constraint(
            "uq_tenant_keys_tenant_id", ["tenant_id", "purpose"]
        )
    for table in reversed(_AUDIT_TABLES):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("key_version")
