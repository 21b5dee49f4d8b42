"""The builtin store keeps the same contract as every vault."""

from __future__ import annotations

import json

import pytest

from credflow.services.core import Actor, Core
from credflow.services.secrets.secret_stores import BuiltinBackend, create_store, put_secret
from credflow.stores.base import SecretStore, StoreContext
from credflow.stores.builtin import BuiltinPlugin, BuiltinStore
from credflow.stores.testing import StoreContractTests
from tests.conftest import ADMIN_TOKEN


class TestBuiltinContract(StoreContractTests):
    missing_version = "999"

    @pytest.fixture(autouse=True)
    def _core(self, core: Core) -> None:
        from credflow.services.access.authz import authenticate

        self.core = core
        with core.db.read() as s:
            self.actor: Actor = authenticate(s, ADMIN_TOKEN)
        self.store_id = create_store(core, self.actor, "default", "vault", "builtin", None, {})["id"]

    def make_store(self) -> SecretStore:
        ctx = StoreContext(store_id=self.store_id, vault_url="builtin://default/vault",
                           builtin=BuiltinBackend(self.core))
        store: BuiltinStore = BuiltinPlugin.open(BuiltinPlugin.Config(), ctx)
        return store

    def write_secret(self, name: str, value: str) -> str:
        return str(put_secret(self.core, self.actor, "default", "vault", name, value)["version"])

    def write_fields(self, name: str, fields: dict[str, str]) -> str:
        return self.write_secret(name, json.dumps(fields))

    def make_denied_store(self) -> SecretStore:
        pytest.skip("the builtin store is part of credflow: access is decided by credflow's own roles "
                    "(tested over the API), there is no separate vault identity to deny")

    def make_unavailable_store(self) -> SecretStore:
        pytest.skip("the builtin store lives in credflow's own database: there is no separate server to lose")

    def make_throttled_store(self, name: str) -> SecretStore:
        pytest.skip("the builtin store has no request quota")
