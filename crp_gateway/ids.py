"""Identifiers: a short type prefix and 128 random bits in lowercase base32.

``tnt_`` tenants, ``prv_`` provider credentials. Base32 keeps ids case-insensitive
and URL-safe; 16 random bytes give 26 characters after the prefix.
"""

from __future__ import annotations

import base64
import secrets


def random_token(nbytes: int = 16) -> str:
    """``nbytes`` of CSPRNG output as unpadded lowercase base32."""
    raw = secrets.token_bytes(nbytes)
    return base64.b32encode(raw).decode("ascii").rstrip("=").lower()


def new_id(prefix: str) -> str:
    """A fresh id such as ``tnt_2q4...`` carrying 128 random bits."""
    return f"{prefix}_{random_token()}"
