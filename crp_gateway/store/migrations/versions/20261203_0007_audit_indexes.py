"""Indexes for the audit API: sessions by time, and a session's tenant links.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_audit_windows_created",
        "audit_windows",
        ["tenant_id", "created_at", "id"],
    )
    op.create_index(
        "ix_audit_tenant_links_session",
        "audit_tenant_links",
        ["tenant_id", "session_id", "seq"],
    )


def downgrade() -> None:
    op.drop_index("ix_audit_tenant_links_session", table_name="audit_tenant_links")
    op.drop_index("ix_audit_windows_created", table_name="audit_windows")
