"""Key derivation (digest §5.4, G9, G10) against the §5.8 vectors."""

from __future__ import annotations

import pytest

from crp_gateway.audit.keys import (
    exportable_session_key,
    session_hmac_key,
    session_signing_key,
    tenant_chain_key,
)

MASTER = bytes(range(32))
SID = "crp_sess_0123456789abcdef"
HMAC_KEY = "1b99533d3f87c1473946269b1be14b25fa9c46b0d21f5be29f9cca602f24973d"
SIGN_KEY = "4b82b68efbdbaa24eeb790c773156ef889c9d77484b9e247ffffec429aeab5d4"


def test_session_hmac_key_vector() -> None:
    assert session_hmac_key(MASTER, SID).hex() == HMAC_KEY


def test_session_signing_key_vector() -> None:
    assert session_signing_key(MASTER, SID).hex() == SIGN_KEY


def test_exported_key_is_the_hmac_key_never_the_signing_key() -> None:
    assert exportable_session_key(MASTER, SID).hex() == HMAC_KEY


def test_keys_depend_on_session_and_tenant() -> None:
    other = "crp_sess_0123456789abcdee"
    assert session_hmac_key(MASTER, other).hex() != HMAC_KEY
    assert session_signing_key(MASTER, other).hex() != SIGN_KEY
    tenant_a = tenant_chain_key(MASTER, "tnt_a")
    assert tenant_a != tenant_chain_key(MASTER, "tnt_b")
    assert tenant_a.hex() not in {HMAC_KEY, SIGN_KEY}
    assert len(tenant_a) == 32


@pytest.mark.parametrize("master", [b"", bytes(31), bytes(33)])
def test_master_key_must_be_32_bytes(master: bytes) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        session_hmac_key(master, SID)


def test_salt_must_not_be_empty() -> None:
    with pytest.raises(ValueError, match="salt"):
        session_signing_key(MASTER, "")
