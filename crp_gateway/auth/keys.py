"""Gateway API keys: ``crp_gw_<public id>_<secret>``.

The public id (80 random bits) is the key's id and its lookup handle; the secret
(256 random bits) is shown once, at creation. Only ``HMAC-SHA256(hash_key, secret)``
is stored, where ``hash_key`` is a random 32-byte gateway key sealed in the vault
under ``SECRET_KEY`` (so rotating ``SECRET_KEY`` re-wraps it and every gateway key
keeps working). Comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from enum import StrEnum

from crp_gateway.ids import random_token

KEY_PREFIX = "crp_gw_"
_PUBLIC_ID_BYTES = 10
_SECRET_BYTES = 32
_PUBLIC_ID_LENGTH = 16
_SECRET_LENGTH = 52
_BASE32 = frozenset("abcdefghijklmnopqrstuvwxyz234567")


class Role(StrEnum):
    """``admin`` manages the tenant; ``inference`` may only call models."""

    ADMIN = "admin"
    INFERENCE = "inference"


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A freshly minted key; ``token`` is the only copy of the secret."""

    public_id: str
    token: str
    secret: str

    @property
    def hint(self) -> str:
        return key_hint(self.public_id, self.secret)


@dataclass(frozen=True, slots=True)
class PresentedKey:
    """A key as a client sent it, split into its parts."""

    public_id: str
    secret: str


def issue_key() -> IssuedKey:
    public_id = random_token(_PUBLIC_ID_BYTES)
    secret = random_token(_SECRET_BYTES)
    return IssuedKey(public_id, f"{KEY_PREFIX}{public_id}_{secret}", secret)


def key_hint(public_id: str, secret: str) -> str:
    """What lists show instead of the key: the public part and the last four."""
    return f"{KEY_PREFIX}{public_id}_…{secret[-4:]}"


def parse_key(token: str) -> PresentedKey | None:
    """Split a presented token, or ``None`` when it cannot be one of ours."""
    if not token.startswith(KEY_PREFIX):
        return None
    public_id, sep, secret = token[len(KEY_PREFIX) :].partition("_")
    if (
        not sep
        or len(public_id) != _PUBLIC_ID_LENGTH
        or len(secret) != _SECRET_LENGTH
        or not _BASE32.issuperset(public_id + secret)
    ):
        return None
    return PresentedKey(public_id, secret)


def hash_secret(hash_key: bytes, secret: str) -> str:
    return hmac.new(hash_key, secret.encode(), hashlib.sha256).hexdigest()


def secret_matches(hash_key: bytes, secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(hash_key, secret), stored_hash)
