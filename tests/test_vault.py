"""Envelope encryption: contexts bind ciphertexts, rotation re-wraps."""

from __future__ import annotations

import pytest

from crp_gateway.vault import Context, Vault, VaultError

OLD = "old-secret-" + "a" * 32
NEW = "new-secret-" + "b" * 32
CONTEXT = Context(owner="tnt_a", name="openai", version=1)


def test_a_sealed_value_opens_under_its_context() -> None:
    vault = Vault(OLD)
    envelope = vault.seal(b"sk-live-value", CONTEXT)
    assert b"sk-live-value" not in envelope.ciphertext + envelope.wrapped_key
    assert vault.open(envelope, CONTEXT) == b"sk-live-value"


def test_each_seal_uses_a_fresh_data_key_and_nonce() -> None:
    vault = Vault(OLD)
    first, second = vault.seal(b"same", CONTEXT), vault.seal(b"same", CONTEXT)
    assert first.ciphertext != second.ciphertext
    assert first.wrapped_key != second.wrapped_key


@pytest.mark.parametrize(
    "other",
    [
        Context(owner="tnt_b", name="openai", version=1),
        Context(owner="tnt_a", name="anthropic", version=1),
        Context(owner="tnt_a", name="openai", version=2),
    ],
)
def test_another_context_does_not_open(other: Context) -> None:
    vault = Vault(OLD)
    envelope = vault.seal(b"secret", CONTEXT)
    with pytest.raises(VaultError):
        vault.open(envelope, other)


def test_tampering_is_detected() -> None:
    vault = Vault(OLD)
    envelope = vault.seal(b"secret", CONTEXT)
    flipped = bytes([envelope.ciphertext[-1] ^ 1])
    tampered = type(envelope)(
        envelope.ciphertext[:-1] + flipped, envelope.wrapped_key, envelope.kek_id
    )
    with pytest.raises(VaultError):
        vault.open(tampered, CONTEXT)


def test_another_secret_key_does_not_open() -> None:
    envelope = Vault(OLD).seal(b"secret", CONTEXT)
    with pytest.raises(VaultError, match="SECRET_KEY_PREVIOUS"):
        Vault(NEW).open(envelope, CONTEXT)


def test_rotation_reads_old_rows_and_rewraps_them() -> None:
    envelope = Vault(OLD).seal(b"secret", CONTEXT)
    rotating = Vault(NEW, previous_secret_key=OLD)
    assert rotating.open(envelope, CONTEXT) == b"secret"
    rewrapped = rotating.rewrap(envelope, CONTEXT)
    assert rewrapped.kek_id == Vault(NEW).current_kek_id != envelope.kek_id
    assert rewrapped.ciphertext == envelope.ciphertext
    assert Vault(NEW).open(rewrapped, CONTEXT) == b"secret"


def test_kek_ids_do_not_reveal_the_secret() -> None:
    kek_id = Vault(OLD).current_kek_id
    assert kek_id.startswith("k")
    assert len(kek_id) == 17
    assert OLD[:8] not in kek_id
