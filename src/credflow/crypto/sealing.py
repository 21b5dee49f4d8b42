"""Sealed boxes to machine keys (libsodium crypto_box_seal over X25519)."""

from __future__ import annotations

import base64

from nacl.exceptions import CryptoError
from nacl.public import PrivateKey, PublicKey, SealedBox


class BadPublicKey(ValueError):
    pass


def parse_public_key(b64: str) -> PublicKey:
    try:
        raw = base64.b64decode(b64, validate=True)
        return PublicKey(raw)
    except (ValueError, CryptoError, TypeError):
        raise BadPublicKey("public_key must be a 32-byte X25519 key in standard base64") from None


def seal(public_key_b64: str, plaintext: bytes) -> str:
    return base64.b64encode(SealedBox(parse_public_key(public_key_b64)).encrypt(plaintext)).decode()


def open_sealed(private_key: PrivateKey, sealed_b64: str) -> bytes:
    return SealedBox(private_key).decrypt(base64.b64decode(sealed_b64))


def new_key_pair() -> tuple[PrivateKey, str]:
    key = PrivateKey.generate()
    return key, base64.b64encode(bytes(key.public_key)).decode()
