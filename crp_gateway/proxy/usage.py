"""The tokens of one call, as the data path learns them.

The row is committed with the call's audit record, in the same group commit
(``audit.writer``), before the answer is sent; a call that is not audited commits
its row alone through the same writer. A stream whose client left queues its row
without waiting (``Call.abandon_usage``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from crp_gateway.logging import get_logger
from crp_gateway.store.models.base import utcnow

log = get_logger("crp_gateway.usage")


@dataclass(slots=True)
class Usage:
    """One call's usage; the data path fills in tokens as the provider reports them."""

    tenant_id: str
    key_id: str
    request_id: str
    endpoint: str
    provider: str
    model: str
    stream: bool
    status: int = 200
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    created_at: datetime = field(default_factory=utcnow)
