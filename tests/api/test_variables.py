"""Environment variables: text values, secret references in both forms, and the store checks."""

from __future__ import annotations

from typing import Any

from tests.conftest import Api


def test_a_secret_variable_takes_the_azure_resource_id_form(admin: Api) -> None:
    admin.store("corp-kv", vault_url="https://Corp-KV.vault.azure.net/")
    admin.secret("corp-kv", "robot-password", "pw-1")
    ref = ("/subscriptions/0000/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/corp-kv/secrets/"
           "robot-password")
    var = admin.ok(admin.post(admin.e("/environment-variables"),
                              {"schema_name": "pw", "type": "secret", "secret_reference": ref}), 201)
    assert var["secret_reference"]["store_name"] == "corp-kv"
    assert var["secret_reference"]["name"] == "robot-password"
    assert "value" not in var


def test_a_pinned_version_is_kept(admin: Api) -> None:
    admin.store("vault")
    admin.secret("vault", "s", "one")
    admin.secret("vault", "s", "two")
    var = admin.secret_var("pinned", "vault", "s", version="1")
    assert var["secret_reference"]["version"] == "1"


def test_text_variable_values_can_be_updated(admin: Api, cred_setup: dict[str, Any]) -> None:
    got = admin.ok(admin.patch(admin.e("/environment-variables/robot_user"), {"value": "new@corp.example"}))
    assert got["value"] == "new@corp.example"
    assert admin.ok(admin.get(admin.e(f"/environment-variables/{got['id']}")))["value"] == "new@corp.example"


def test_a_maker_needs_permission_to_use_a_store(admin: Api) -> None:
    admin.store("vault")
    admin.secret("vault", "s", "v")
    maker = admin.user("maker")
    body = {"schema_name": "p", "type": "secret", "secret_reference": {"store": "vault", "name": "s"}}
    resp = maker.post(maker.e("/environment-variables"), body)
    assert resp.status_code == 403 and resp.json()["code"] == "store_access_denied"
    admin.ok(admin.post(admin.e("/secret-stores/vault/access"), {"principal": maker.info["email"],
                                                                 "allowed": True}))
    assert maker.post(maker.e("/environment-variables"), body).status_code == 201


def test_builtin_writes_make_new_versions_and_never_show_values(admin: Api) -> None:
    admin.store("vault")
    assert admin.secret("vault", "s", "first-value")["version"] == "1"
    assert admin.secret("vault", "s", "second-value")["version"] == "2"
    listed = admin.ok(admin.get(admin.e("/secret-stores/vault/secrets")))
    assert listed["items"] == [{"name": "s", "version": "2"}]
    assert "value" not in str(listed)


def test_the_prerequisite_check_of_a_builtin_store(admin: Api) -> None:
    admin.store("vault")
    report = admin.ok(admin.post(admin.e("/secret-stores/vault/check")))
    assert [c["check"] for c in report["checks"]] == ["reachable", "service_can_read", "caller_may_use",
                                                      "same_tenant"]
    assert report["ok"] and all(c["ok"] and c["detail"] for c in report["checks"])
    maker = admin.user("maker")
    mine = maker.ok(maker.post(maker.e("/secret-stores/vault/check")))
    assert not mine["ok"]
    refused = next(c for c in mine["checks"] if c["check"] == "caller_may_use")
    assert not refused["ok"] and "access" in refused["detail"]


def test_an_azure_store_is_checked_against_the_organizations_tenant(admin: Api, core: Any) -> None:
    from sqlalchemy import update

    from credflow.persistence.tables import Organization
    from tests.e2e.server import free_port

    vault = f"https://127.0.0.1:{free_port()}"  # nothing listens: only the tenant check is of interest here
    admin.store("kv", kind="azure-keyvault", vault_url=vault,
                config={"tenant_id": "AAAA-1111", "client_id": "app", "client_secret": "app-secret"})

    def same_tenant() -> dict[str, Any]:
        report = admin.ok(admin.post(admin.e("/secret-stores/kv/check")))
        return next(c for c in report["checks"] if c["check"] == "same_tenant")

    unset = same_tenant()
    assert not unset["ok"] and "CREDFLOW_TENANT_ID" in unset["detail"]
    with core.db.transaction() as s:
        s.execute(update(Organization).values(tenant_id="bbbb-2222"))
    other = same_tenant()
    assert not other["ok"] and "aaaa-1111" in other["detail"] and "bbbb-2222" in other["detail"]
    with core.db.transaction() as s:
        s.execute(update(Organization).values(tenant_id="aaaa-1111"))
    assert same_tenant()["ok"]
