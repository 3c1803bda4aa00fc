"""Envelope encryption for tenants' provider credentials and the gateway's own keys.

Each secret is sealed with AES-256-GCM under a fresh random *data key*; the data key
is itself sealed ("wrapped") under a *key-encryption key* (KEK) derived from
``SECRET_KEY`` by HKDF-SHA256. Both layers bind associated data:

* the secret's AAD is its :class:`Context`: owner (tenant id), name (provider name
  or purpose) and version (incremented on every rotation of the credential);
* the data key's AAD is the same context plus the KEK id.

So a ciphertext copied to another tenant's row, another provider or another
version fails to decrypt with :class:`VaultError` instead of yielding a key.

A KEK id is a fingerprint of its secret (``k`` + 16 hex characters of an HKDF
output); it names which ``SECRET_KEY`` wrapped a row without revealing it. A
:class:`Vault` holds the current KEK and, during a rotation, the previous one:
rows wrapped by either open, and :meth:`Vault.rewrap` moves a row to the current
KEK without touching the secret's own ciphertext (``crp-gateway rotate-secret``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_NONCE_BYTES = 12
_KEY_BYTES = 32
_KEK_INFO = b"crp-gateway/vault/kek/v1"
_KEK_ID_INFO = b"crp-gateway/vault/kek-id/v1"


class VaultError(Exception):
    """A sealed value could not be opened: wrong key, wrong context, or tampering."""


@dataclass(frozen=True, slots=True)
class Context:
    """What a sealed value belongs to; bound into the AEAD associated data."""

    owner: str
    name: str
    version: int

    def aad(self) -> bytes:
        return f"crp-gateway|{self.owner}|{self.name}|{self.version}".encode()


@dataclass(frozen=True, slots=True)
class Envelope:
    """A sealed secret as stored: nonce-prefixed ciphertexts and the KEK id."""

    ciphertext: bytes
    wrapped_key: bytes
    kek_id: str


def _hkdf(secret: str, info: bytes) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=_KEY_BYTES, salt=None, info=info
    ).derive(secret.encode())


@dataclass(frozen=True, slots=True)
class _Kek:
    kek_id: str
    aead: AESGCM

    @classmethod
    def from_secret(cls, secret: str) -> _Kek:
        kek_id = "k" + _hkdf(secret, _KEK_ID_INFO)[:8].hex()
        return cls(kek_id=kek_id, aead=AESGCM(_hkdf(secret, _KEK_INFO)))


def _seal(aead: AESGCM, plaintext: bytes, aad: bytes) -> bytes:
    nonce = os.urandom(_NONCE_BYTES)
    return nonce + aead.encrypt(nonce, plaintext, aad)


def _open(aead: AESGCM, sealed: bytes, aad: bytes) -> bytes:
    try:
        return aead.decrypt(sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:], aad)
    except (InvalidTag, ValueError) as exc:
        raise VaultError("sealed value does not open under this context") from exc


class Vault:
    """Seals and opens secrets under keys derived from ``SECRET_KEY``."""

    def __init__(self, secret_key: str, previous_secret_key: str | None = None):
        self._current = _Kek.from_secret(secret_key)
        self._keks = {self._current.kek_id: self._current}
        if previous_secret_key:
            previous = _Kek.from_secret(previous_secret_key)
            self._keks.setdefault(previous.kek_id, previous)

    @property
    def current_kek_id(self) -> str:
        return self._current.kek_id

    def seal(self, plaintext: bytes, context: Context) -> Envelope:
        data_key = AESGCM.generate_key(bit_length=256)
        ciphertext = _seal(AESGCM(data_key), plaintext, context.aad())
        return Envelope(
            ciphertext=ciphertext,
            wrapped_key=self._wrap(self._current, data_key, context),
            kek_id=self._current.kek_id,
        )

    def open(self, envelope: Envelope, context: Context) -> bytes:
        data_key = self._unwrap(envelope, context)
        return _open(AESGCM(data_key), envelope.ciphertext, context.aad())

    def rewrap(self, envelope: Envelope, context: Context) -> Envelope:
        """The same secret with its data key wrapped by the current KEK."""
        data_key = self._unwrap(envelope, context)
        return Envelope(
            ciphertext=envelope.ciphertext,
            wrapped_key=self._wrap(self._current, data_key, context),
            kek_id=self._current.kek_id,
        )

    def _wrap(self, kek: _Kek, data_key: bytes, context: Context) -> bytes:
        return _seal(kek.aead, data_key, context.aad() + b"|" + kek.kek_id.encode())

    def _unwrap(self, envelope: Envelope, context: Context) -> bytes:
        kek = self._keks.get(envelope.kek_id)
        if kek is None:
            raise VaultError(
                "sealed by a SECRET_KEY this process does not hold "
                "(set SECRET_KEY_PREVIOUS and run crp-gateway rotate-secret)"
            )
        aad = context.aad() + b"|" + kek.kek_id.encode()
        return _open(kek.aead, envelope.wrapped_key, aad)
