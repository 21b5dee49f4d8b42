"""The store plugin registry: a kind whose vault SDK is not installed, or whose plugin is broken, is listed as
not viable with the reason (and, for a missing extra, the command that installs it); the others stay usable."""

from __future__ import annotations

import importlib
import json
import sys
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

import credflow.stores
from credflow.cli.main import app
from credflow.services.core import Core
from credflow.stores import registry
from credflow.stores.registry import GROUP, StoreRegistry
from tests.conftest import Api, problem, sign_in_cli

REAL_KINDS = ["aws-secretsmanager", "azure-keyvault", "builtin", "hashicorp-vault"]
AWS_INSTALL = "pip install 'credflow[aws]'"


def uninstall_boto3(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if credflow were installed without the aws extra: ``import boto3`` fails, and the AWS store's module is
    imported afresh by the next discovery (the real one is put back after the test)."""
    importlib.import_module("credflow.stores.aws_secretsmanager")  # so that the real module is what comes back
    monkeypatch.setitem(sys.modules, "boto3", None)
    monkeypatch.delitem(sys.modules, "credflow.stores.aws_secretsmanager")
    monkeypatch.delattr(credflow.stores, "aws_secretsmanager")


def _with_entry_points(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, modules: dict[str, str],
                       extra: dict[str, str]) -> None:
    """Discovery finds credflow's own entry points plus ``extra`` (name -> value), whose modules are written to
    ``tmp_path`` from ``modules`` (module name -> source)."""
    for name, source in modules.items():
        (tmp_path / f"{name}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    real = registry._store_entry_points
    fakes = [EntryPoint(name, value, GROUP) for name, value in extra.items()]
    monkeypatch.setattr(registry, "_store_entry_points", lambda: (*real(), *fakes))


def test_the_four_kinds_are_viable_with_every_extra_installed() -> None:
    found = StoreRegistry.discover()
    assert found.kinds() == REAL_KINDS and found.not_viable == {}


def test_a_kind_whose_extra_is_not_installed_is_not_viable_and_names_the_install_command(
        monkeypatch: pytest.MonkeyPatch) -> None:
    uninstall_boto3(monkeypatch)
    found = StoreRegistry.discover()
    assert found.kinds() == ["azure-keyvault", "builtin", "hashicorp-vault"]
    why = found.not_viable["aws-secretsmanager"]
    assert why.reason == f"needs the aws extra: {AWS_INSTALL}" and why.install == AWS_INSTALL
    assert why.config is not None and "region" in why.config.model_fields  # its form is still known


def test_a_plugin_whose_sdk_import_fails_at_load_is_not_viable_and_the_others_stay(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _with_entry_points(monkeypatch, tmp_path, {"unguarded_store": "import credflow_no_such_sdk\n"},
                       {"unguarded": "unguarded_store:Plugin"})
    found = StoreRegistry.discover()
    assert found.kinds() == REAL_KINDS
    why = found.not_viable["unguarded"]
    assert why.reason == "cannot import credflow_no_such_sdk: install the package that provides it"
    assert why.install is None and why.config is None


def test_a_plugin_that_breaks_on_load_or_is_no_plugin_is_not_viable(monkeypatch: pytest.MonkeyPatch,
                                                                    tmp_path: Path) -> None:
    _with_entry_points(monkeypatch, tmp_path, {"crashing_store": "raise RuntimeError('boom')\n",
                                               "misnamed_store": "class Plugin:\n    kind = 'other'\n"},
                       {"crashing": "crashing_store:Plugin", "misnamed": "misnamed_store:Plugin",
                        "not-a-plugin": "json:loads"})
    found = StoreRegistry.discover()
    assert found.kinds() == REAL_KINDS
    assert {kind: why.reason for kind, why in found.not_viable.items()} == {
        "crashing": "the plugin failed to load (RuntimeError)",
        "misnamed": "not a secret store plugin: its kind is 'other', not its entry point's name 'misnamed'",
        "not-a-plugin": "not a secret store plugin: its kind is None, not its entry point's name 'not-a-plugin'",
    }


# --- over the API ---------------------------------------------------------------------------------------------
def test_any_signed_in_user_lists_the_four_kinds_viable_here(admin: Api) -> None:
    basic = admin.user("bob", "basic_user")
    listed = basic.ok(basic.get("/secret-store-kinds"))
    assert listed["next_cursor"] is None
    assert [(k["kind"], k["viable"], k["detail"], k["install"]) for k in listed["items"]] == [
        (kind, True, None, None) for kind in REAL_KINDS]
    vault = next(k["config_schema"] for k in listed["items"] if k["kind"] == "hashicorp-vault")
    assert vault["required"] == ["address"]
    assert vault["properties"]["token"]["writeOnly"] is True  # a secret field, write-only
    assert vault["$defs"]["AppRoleLogin"]["properties"]["secret_id"]["writeOnly"] is True
    assert "writeOnly" not in vault["properties"]["address"]


def test_a_kind_without_its_extra_is_listed_refused_and_checked_with_the_install_command(
        admin: Api, core: Core, monkeypatch: pytest.MonkeyPatch) -> None:
    aws = {"region": "eu-west-1", "access_key_id": "AKIAEXAMPLE", "secret_access_key": "not-a-real-key"}
    admin.store("before", kind="aws-secretsmanager", vault_url="https://aws.example", config=aws)
    uninstall_boto3(monkeypatch)
    monkeypatch.setattr(core, "registry", StoreRegistry.discover())  # the server restarted without boto3

    listed = {k["kind"]: k for k in admin.ok(admin.get("/secret-store-kinds"))["items"]}
    assert sorted(listed) == REAL_KINDS
    assert listed["aws-secretsmanager"]["viable"] is False
    assert listed["aws-secretsmanager"]["install"] == AWS_INSTALL
    assert listed["aws-secretsmanager"]["detail"] == f"needs the aws extra: {AWS_INSTALL}"
    assert listed["aws-secretsmanager"]["config_schema"]["properties"]["secret_access_key"]["writeOnly"] is True

    refused = problem(admin.post(admin.e("/secret-stores"), {"name": "after", "kind": "aws-secretsmanager",
                                                              "vault_url": "https://aws.example", "config": aws}),
                      422, "store_kind_not_viable")
    assert AWS_INSTALL in refused["detail"]

    report = admin.ok(admin.post(admin.e("/secret-stores/before/check")))
    reachable = next(c for c in report["checks"] if c["check"] == "reachable")
    assert reachable["ok"] is False and AWS_INSTALL in reachable["detail"]


def test_store_kinds_lists_them_from_the_cli(client: TestClient, admin: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    sign_in_cli(monkeypatch, client, admin)
    listed = CliRunner().invoke(app, ["store", "kinds", "--json"])
    assert listed.exit_code == 0, listed.output
    assert [(k["kind"], k["viable"]) for k in json.loads(listed.stdout)] == [(kind, True) for kind in REAL_KINDS]
