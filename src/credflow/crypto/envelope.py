"""Envelope encryption: per-record AES-256-GCM data keys (DEKs) wrapped by a key-encryption key (KEK).

KEKs carry a key id so that several can be known at once: the active one wraps new data keys, older ones
still unwrap what they wrapped until ``credflow keys rotate`` re-wraps every data key under the active one.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_DEK_AAD = b"credflow/dek/v1"


class KeyringError(Exception):
    pass


def key_id_of(key: bytes) -> str:
    return hashlib.sha256(b"credflow/kek-id/" + key).hexdigest()[:12]


def _decode_key(text: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except ValueError:
        raise KeyringError("a master key must be 32 bytes in standard base64") from None
    if len(key) != 32:
        raise KeyringError("a master key must be 32 bytes in standard base64")
    return key


@dataclass
class Keyring:
    """Known KEKs by id and the active one. A key-file keyring re-reads its file when it meets an unknown
    key id, so a server keeps working while ``credflow keys rotate`` runs beside it."""

    keys: dict[str, bytes]
    active_id: str
    path: Path | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def from_env_value(cls, value: str) -> Keyring:
        """``CREDFLOW_MASTER_KEY``: one or more base64 keys, comma-separated; the first is active."""
        keys = [_decode_key(part) for part in value.split(",") if part.strip()]
        if not keys:
            raise KeyringError("CREDFLOW_MASTER_KEY is empty")
        by_id = {key_id_of(k): k for k in keys}
        return cls(keys=by_id, active_id=key_id_of(keys[0]))

    @classmethod
    def from_file(cls, path: Path) -> Keyring:
        """Load the key file, creating it with one fresh key and mode 0600 when missing."""
        if not path.exists():
            key = AESGCM.generate_key(bit_length=256)
            _write_key_file(path, {key_id_of(key): key}, key_id_of(key))
        data = json.loads(path.read_text())
        keys = {kid: _decode_key(b64) for kid, b64 in data["keys"].items()}
        return cls(keys=keys, active_id=data["active"], path=path)

    @property
    def active_key(self) -> bytes:
        return self.keys[self.active_id]

    def key(self, key_id: str) -> bytes:
        if key_id not in self.keys and self.path is not None:
            with self._lock:
                fresh = Keyring.from_file(self.path)
                self.keys, self.active_id = fresh.keys, fresh.active_id
        try:
            return self.keys[key_id]
        except KeyError:
            raise KeyringError(f"no master key with id {key_id} is configured") from None

    def add_new_active_key(self) -> str:
        """Make a new KEK the active one (key-file keyrings only) and return its id."""
        if self.path is None:
            raise KeyringError(
                "the master key comes from CREDFLOW_MASTER_KEY: put the new key first in that list, then rotate"
            )
        key = AESGCM.generate_key(bit_length=256)
        kid = key_id_of(key)
        with self._lock:
            self.keys[kid] = key
            self.active_id = kid
            _write_key_file(self.path, self.keys, kid)
        return kid

    # --- wrapping data keys ---------------------------------------------------------------------------
    def wrap(self, dek: bytes) -> tuple[str, bytes]:
        nonce = os.urandom(12)
        return self.active_id, nonce + AESGCM(self.active_key).encrypt(nonce, dek, _DEK_AAD)

    def unwrap(self, key_id: str, wrapped: bytes) -> bytes:
        return AESGCM(self.key(key_id)).decrypt(wrapped[:12], wrapped[12:], _DEK_AAD)


def _write_key_file(path: Path, keys: dict[str, bytes], active: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    body = json.dumps({"active": active, "keys": {k: base64.b64encode(v).decode() for k, v in keys.items()}})
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(body)
    os.replace(tmp, path)
    os.chmod(path, 0o600)


def new_data_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def seal_with(dek: bytes, plaintext: bytes, aad: bytes) -> bytes:
    nonce = os.urandom(12)
    return nonce + AESGCM(dek).encrypt(nonce, plaintext, aad)


def open_with(dek: bytes, blob: bytes, aad: bytes) -> bytes:
    return AESGCM(dek).decrypt(blob[:12], blob[12:], aad)
