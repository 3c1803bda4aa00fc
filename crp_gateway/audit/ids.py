"""CRP identifiers (digest §5.1, G34).

Every id is a type prefix and 32 lowercase hex characters from the CSPRNG
(128 bits; 004§17.1 requires at least that for continuation ids, G34 extends
it to every id). Lowercase hex is a subset of base62, so the ids match the
``crp_sess_``/``crp_cont_``/``crp_trail_`` formats that
`crp_gateway.governance.headers` validates (16-32 base62 characters).
`crp_win_` ids (004's "16-char identifier") use the same 32 hex (G34).
"""

from __future__ import annotations

import re
import secrets

__all__ = [
    "CONTINUATION_ID",
    "SESSION_ID",
    "TRAIL_ID",
    "WINDOW_ID",
    "new_continuation_id",
    "new_session_id",
    "new_trail_id",
    "new_window_id",
]

_RANDOM_BYTES = 16

#: Accepted formats (§5.1): a prefix and 16-32 base62 characters.
SESSION_ID = re.compile(r"crp_sess_[A-Za-z0-9]{16,32}")
CONTINUATION_ID = re.compile(r"crp_cont_[A-Za-z0-9]{16,32}")
TRAIL_ID = re.compile(r"crp_trail_[A-Za-z0-9]{16,32}")
WINDOW_ID = re.compile(r"crp_win_[A-Za-z0-9]{16,32}")


def _new(prefix: str) -> str:
    return prefix + secrets.token_hex(_RANDOM_BYTES)


def new_session_id() -> str:
    """A fresh ``crp_sess_<32 hex>``."""
    return _new("crp_sess_")


def new_continuation_id() -> str:
    """A fresh ``crp_cont_<32 hex>`` (one per DAG node that may continue, G12)."""
    return _new("crp_cont_")


def new_trail_id() -> str:
    """A fresh ``crp_trail_<32 hex>``."""
    return _new("crp_trail_")


def new_window_id() -> str:
    """A fresh ``crp_win_<32 hex>``."""
    return _new("crp_win_")
