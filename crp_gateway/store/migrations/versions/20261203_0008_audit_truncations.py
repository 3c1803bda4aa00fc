"""TRUNCATED markers of erased audit spans (015§6.4), append-only like the rest.

The retention path (``audit.retention``) deletes old sessions and the prefix of
a tenant's rolling chain they fill, and inserts one marker per erased span here
in the same transaction. On PostgreSQL the 0004 trigger function also guards
this table: markers are only ever inserted, so UPDATE and DELETE are refused
unless the transaction ran ``SET LOCAL crp.audit_retention = 'on'``.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from crp_gateway.store.models.base import UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

TABLE = "audit_truncations"


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("chain", sa.String(length=16), nullable=False),
        sa.Column("chain_id", sa.String(length=48), nullable=False),
        sa.Column("first", sa.Integer(), nullable=False),
        sa.Column("last", sa.Integer(), nullable=False),
        sa.Column("erased_at", sa.String(length=40), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("prev_hmac", sa.Text(), nullable=False),
        sa.Column("last_hmac", sa.String(length=71), nullable=False),
        sa.Column("hmac", sa.String(length=71), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_audit_truncations_tenant_id_tenants"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_truncations")),
    )
    with op.batch_alter_table(TABLE, schema=None) as batch_op:
        batch_op.create_index(
            "ix_audit_truncations_chain",
            ["tenant_id", "chain", "chain_id", "last"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_audit_truncations_tenant_id"), ["tenant_id"], unique=False
        )

    if op.get_bind().dialect.name == "postgresql":
        # The function crp_audit_append_only() is 0004's.
        op.execute(
            f"CREATE TRIGGER {TABLE}_append_only "
            f"BEFORE UPDATE OR DELETE ON {TABLE} "
            "FOR EACH ROW EXECUTE FUNCTION crp_audit_append_only()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP TRIGGER IF EXISTS {TABLE}_append_only ON {TABLE}")
    with op.batch_alter_table(TABLE, schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_truncations_tenant_id"))
        batch_op.drop_index("ix_audit_truncations_chain")

    op.drop_table(TABLE)
