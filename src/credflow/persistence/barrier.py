"""The encryption barrier: every value credflow keeps secret passes here on its way to and from the database.

A sealed value is ``<data key id>.<base64(nonce | AES-256-GCM ciphertext)>``; its data key lives in
``data_keys``, wrapped by the KEK its ``kek_id`` names. ``aad`` binds a ciphertext to the record it belongs
to, so a value copied into another row does not open.
"""

from __future__ import annotations

import base64
import threading
from collections import OrderedDict

from sqlalchemy import select
from sqlalchemy.orm import Session

from credflow.crypto.envelope import Keyring, new_data_key, open_with, seal_with
from credflow.persistence.tables import DataKey, new_id


class Barrier:
    def __init__(self, keyring: Keyring, cache_size: int = 4096) -> None:
        self.keyring = keyring
        self._deks: OrderedDict[str, bytes] = OrderedDict()
        self._size = cache_size
        self._lock = threading.Lock()

    def seal(self, session: Session, plaintext: str, aad: str) -> str:
        dek = new_data_key()
        kek_id, wrapped = self.keyring.wrap(dek)
        row = DataKey(id=new_id(), kek_id=kek_id, wrapped=wrapped)
        session.add(row)
        self._remember(row.id, dek)
        return f"{row.id}.{base64.b64encode(seal_with(dek, plaintext.encode(), aad.encode())).decode()}"

    def open(self, session: Session, sealed: str, aad: str) -> str:
        dk_id, _, body = sealed.partition(".")
        dek = self._dek(session, dk_id)
        return open_with(dek, base64.b64decode(body), aad.encode()).decode()

    def rewrap_all(self, session: Session, batch: int = 500) -> int:
        """Re-wrap every data key not yet under the active KEK. Old values stay readable throughout."""
        active = self.keyring.active_id
        count = 0
        while True:
            rows = session.scalars(select(DataKey).where(DataKey.kek_id != active).limit(batch)).all()
            if not rows:
                return count
            for row in rows:
                dek = self.keyring.unwrap(row.kek_id, row.wrapped)
                row.kek_id, row.wrapped = self.keyring.wrap(dek)
                count += 1
            session.flush()

    def _dek(self, session: Session, dk_id: str) -> bytes:
        with self._lock:
            dek = self._deks.get(dk_id)
            if dek is not None:
                self._deks.move_to_end(dk_id)
                return dek
        row = session.get(DataKey, dk_id)
        if row is None:
            raise LookupError("the data key of a sealed value is missing")
        dek = self.keyring.unwrap(row.kek_id, row.wrapped)
        self._remember(dk_id, dek)
        return dek

    def _remember(self, dk_id: str, dek: bytes) -> None:
        with self._lock:
            self._deks[dk_id] = dek
            while len(self._deks) > self._size:
                self._deks.popitem(last=False)
