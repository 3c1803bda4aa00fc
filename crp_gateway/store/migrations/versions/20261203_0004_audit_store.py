"""Audit store: windows, events, the tenant rolling chain, tenant keys.

On PostgreSQL a trigger makes the three audit tables append-only: UPDATE and
DELETE are refused unless the transaction ran
``SET LOCAL crp.audit_retention = 'on'`` (the retention path, 015§6.4).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from crp_gateway.store.models.base import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

AUDIT_TABLES = ("audit_windows", "audit_events", "audit_tenant_links")

_APPEND_ONLY_FUNCTION = """
CREATE OR REPLACE FUNCTION crp_audit_append_only() RETURNS trigger AS $$
BEGIN
    IF current_setting('crp.audit_retention', true) = 'on' THEN
        RETURN COALESCE(NEW, OLD);
    END IF;
    RAISE EXCEPTION 'audit records are append-only (% on %)', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql
"""


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("session_id", sa.String(length=48), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("event_type", sa.String(length=48), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("timestamp", sa.String(length=40), nullable=False),
        sa.Column("window_id", sa.String(length=48), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("data_hash", sa.String(length=71), nullable=False),
        sa.Column("prev_hmac", sa.String(length=71), nullable=False),
        sa.Column("hmac", sa.String(length=71), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_audit_events_tenant_id_tenants"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
        sa.UniqueConstraint(
            "session_id", "seq", name=op.f("uq_audit_events_session_id")
        ),
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_audit_events_session", ["tenant_id", "session_id", "seq"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_audit_events_tenant_id"), ["tenant_id"], unique=False
        )

    op.create_table(
        "audit_tenant_links",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("timestamp", sa.String(length=40), nullable=False),
        sa.Column("session_id", sa.String(length=48), nullable=False),
        sa.Column("window_id", sa.String(length=48), nullable=False),
        sa.Column("window_number", sa.Integer(), nullable=False),
        sa.Column("window_hmac", sa.String(length=71), nullable=False),
        sa.Column("prev_hmac", sa.String(length=71), nullable=False),
        sa.Column("hmac", sa.String(length=71), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_audit_tenant_links_tenant_id_tenants"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_tenant_links")),
        sa.UniqueConstraint(
            "tenant_id", "seq", name=op.f("uq_audit_tenant_links_tenant_id")
        ),
    )
    with op.batch_alter_table("audit_tenant_links", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_audit_tenant_links_tenant_id"), ["tenant_id"], unique=False
        )

    op.create_table(
        "audit_windows",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("session_id", sa.String(length=48), nullable=False),
        sa.Column("window_id", sa.String(length=48), nullable=False),
        sa.Column("window_number", sa.Integer(), nullable=False),
        sa.Column("timestamp", sa.String(length=40), nullable=False),
        sa.Column("content_hash", sa.String(length=71), nullable=False),
        sa.Column("dpe_report_hash", sa.String(length=71), nullable=False),
        sa.Column("prev_hmac", sa.Text(), nullable=False),
        sa.Column("hmac", sa.String(length=71), nullable=False),
        sa.Column("trail_id", sa.String(length=48), nullable=False),
        sa.Column("request_id", sa.String(length=80), nullable=False),
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("endpoint", sa.String(length=32), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_audit_windows_tenant_id_tenants"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_windows")),
        sa.UniqueConstraint("window_id", name=op.f("uq_audit_windows_window_id")),
    )
    with op.batch_alter_table("audit_windows", schema=None) as batch_op:
        batch_op.create_index(
            "ix_audit_windows_session",
            ["tenant_id", "session_id", "window_number"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_audit_windows_tenant_id"), ["tenant_id"], unique=False
        )
        batch_op.create_index(
            "ix_audit_windows_trail", ["tenant_id", "trail_id"], unique=False
        )

    op.create_table(
        "tenant_keys",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("purpose", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=False),
        sa.Column("kek_id", sa.String(length=32), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_tenant_keys_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tenant_keys")),
        sa.UniqueConstraint(
            "tenant_id", "purpose", name=op.f("uq_tenant_keys_tenant_id")
        ),
    )
    with op.batch_alter_table("tenant_keys", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_tenant_keys_tenant_id"), ["tenant_id"], unique=False
        )

    if op.get_bind().dialect.name == "postgresql":
        op.execute(_APPEND_ONLY_FUNCTION)
        for table in AUDIT_TABLES:
            op.execute(
                f"CREATE TRIGGER {table}_append_only "
                f"BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION crp_audit_append_only()"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in AUDIT_TABLES:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        op.execute("DROP FUNCTION IF EXISTS crp_audit_append_only()")
    with op.batch_alter_table("tenant_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tenant_keys_tenant_id"))

    op.drop_table("tenant_keys")
    with op.batch_alter_table("audit_windows", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_windows_trail")
        batch_op.drop_index(batch_op.f("ix_audit_windows_tenant_id"))
        batch_op.drop_index("ix_audit_windows_session")

    op.drop_table("audit_windows")
    with op.batch_alter_table("audit_tenant_links", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_tenant_links_tenant_id"))

    op.drop_table("audit_tenant_links")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_events_tenant_id"))
        batch_op.drop_index("ix_audit_events_session")

    op.drop_table("audit_events")
