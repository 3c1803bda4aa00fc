"""Per-tenant key derivation (digest §5.3, §5.4; G9, G10; 016§4.1).

Every tenant has one 32-byte master key (the "gateway master key" of 007§3.1,
kept in the vault/KMS and never transmitted or put in a header). From it,
HKDF-SHA256 (RFC 5869, L = 32) derives:

=====================  ==========================  =====================  ======
key                    info                        salt                   source
=====================  ==========================  =====================  ======
session HMAC key       ``crp-session-hmac-v3``     UTF-8 session id       015§4.3
session signing key    ``crp-session-sign-v3``     UTF-8 session id       007§3.1
tenant chain key       ``crp-gw-tenant-chain-v1``  UTF-8 tenant id        ours
=====================  ==========================  =====================  ======

G9: the HMAC (chain) key and the signing (token) key are two different keys,
as the specs say; we do not mirror the vendor module that uses ``sign`` for
both. G10: the session HMAC key may be exported to an authenticated tenant
admin (`exportable_session_key`); signing, tenant-chain and master keys never
leave the gateway. The tenant chain key is our own (G5): the digest fixes no
info string for it, so ours carries a ``crp-gw-`` prefix to stay out of the
protocol's namespace.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = [
    "KEY_LENGTH",
    "MASTER_KEY_LENGTH",
    "SESSION_HMAC_INFO",
    "SESSION_SIGN_INFO",
    "TENANT_CHAIN_INFO",
    "exportable_session_key",
    "session_hmac_key",
    "session_signing_key",
    "tenant_chain_key",
]

MASTER_KEY_LENGTH = 32
KEY_LENGTH = 32
SESSION_HMAC_INFO = b"crp-session-hmac-v3"
SESSION_SIGN_INFO = b"crp-session-sign-v3"
TENANT_CHAIN_INFO = b"crp-gw-tenant-chain-v1"


def _hkdf(master_key: bytes, salt: str, info: bytes) -> bytes:
    if len(master_key) != MASTER_KEY_LENGTH:
        raise ValueError(f"a tenant master key is {MASTER_KEY_LENGTH} bytes")
    if not salt:
        raise ValueError("the HKDF salt (session or tenant id) must not be empty")
    kdf = HKDF(
        algorithm=hashes.SHA256(),
        length=KEY_LENGTH,
        salt=salt.encode("utf-8"),
        info=info,
    )
    return kdf.derive(master_key)


def session_hmac_key(master_key: bytes, session_id: str) -> bytes:
    """The key of a session's window and event chains (015§4.3, §5.4)."""
    return _hkdf(master_key, session_id, SESSION_HMAC_INFO)


def session_signing_key(master_key: bytes, session_id: str) -> bytes:
    """The key that signs a session's tokens (007§3.1); never exported."""
    return _hkdf(master_key, session_id, SESSION_SIGN_INFO)


def tenant_chain_key(master_key: bytes, tenant_id: str) -> bytes:
    """The key of the tenant's rolling audit chain (G5; our info string)."""
    return _hkdf(master_key, tenant_id, TENANT_CHAIN_INFO)


def exportable_session_key(master_key: bytes, session_id: str) -> bytes:
    """The one key a verifier may receive (G10): the session HMAC key.

    A named alias of `session_hmac_key`, so an export endpoint cannot pick the
    signing key by mistake.
    """
    return session_hmac_key(master_key, session_id)
