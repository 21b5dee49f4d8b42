"""Path 4: a solution import overwrites another user's desktop flow, so that the owner's next run executes the
importer's command with the owner's credential. An import updates only what the importer owns."""

from __future__ import annotations

from typing import Any

from tests.conftest import Api, problem
from tests.security.conftest import Scene


def _import(api: Api, data: bytes) -> Any:
    return api.post(api.e("/solutions/import"), files={"file": ("solution.zip", data, "application/zip")})


def _solution_with_flow(api: Api, command: list[str], version: str) -> bytes:
    """In ``api``'s environment: the desktop flow invoice-bot with ``command``, in solution Bots at ``version``."""
    flow = api.ok(api.post(api.e("/desktop-flows"), {"name": "invoice-bot", "command": command}), 201)
    api.ok(api.post(api.e("/solutions"), {"unique_name": "Bots", "display_name": "Bots", "version": version}), 201)
    api.ok(api.post(api.e("/solutions/Bots/components"), {"type": "desktop_flow", "id": flow["id"]}))
    resp = api.get(api.e("/solutions/Bots/export"))
    assert resp.status_code == 200, resp.text
    return resp.content


def test_an_import_may_not_overwrite_another_users_desktop_flow(scene: Scene) -> None:
    ad, a, m = scene.admin, scene.alice, scene.mallory
    lab = ad.ok(ad.post("/environments", {"name": "lab"}), 201)
    # A package is a file anyone can write; this one holds a flow of the same name that prints the password.
    data = _solution_with_flow(Api(ad.http, ad.token, lab["id"]),
                               ["sh", "-c", "echo $CREDFLOW_PASSWORD | base64"], "2.0.0.0")
    body = problem(_import(m, data), 409, "not_owner")
    assert body["components"] == [{"type": "desktop_flow", "name": "invoice-bot", "id": scene.flow["id"]}]
    assert a.ok(a.get(a.e(f"/desktop-flows/{scene.flow['id']}")))["command"] == ["robot", "--go"]
    names = [s["unique_name"] for s in ad.ok(ad.get(ad.e("/solutions")))["items"]]
    assert "Bots" not in names


def test_the_owner_imports_a_newer_version_of_her_own_flow(scene: Scene) -> None:
    ad, a = scene.admin, scene.alice
    lab = ad.ok(ad.post("/environments", {"name": "lab"}), 201)
    data = _solution_with_flow(Api(ad.http, ad.token, lab["id"]), ["robot", "--go", "--faster"], "2.0.0.0")
    report = a.ok(_import(a, data))
    assert [u["name"] for u in report["updated"]] == ["invoice-bot"]
    assert a.ok(a.get(a.e(f"/desktop-flows/{scene.flow['id']}")))["command"] == ["robot", "--go", "--faster"]


def test_an_import_may_not_bind_a_secret_the_importer_may_not_use(scene: Scene) -> None:
    """A credential in a package binds the target's secret variable: the importer needs the store, as over the
    API."""
    ad, m = scene.admin, scene.mallory
    lab = ad.ok(ad.post("/environments", {"name": "lab"}), 201)
    lab_admin = Api(ad.http, ad.token, lab["id"])
    lab_admin.store("vault")
    lab_admin.secret("vault", "prod-password", "lab-value")
    lab_admin.text_var("prod_user", "lab-user")
    lab_admin.secret_var("prod_pass", "vault", "prod-password")
    cred = lab_admin.credential("Wrapped", "prod_user", "prod_pass")
    lab_admin.ok(lab_admin.post(lab_admin.e("/solutions"), {"unique_name": "Wrap", "display_name": "Wrap",
                                                            "version": "1.0.0.0"}), 201)
    lab_admin.ok(lab_admin.post(lab_admin.e("/solutions/Wrap/components"), {"type": "credential",
                                                                            "id": cred["id"], "add_required": False}))
    data = lab_admin.get(lab_admin.e("/solutions/Wrap/export")).content
    problem(_import(m, data), 403, "store_access_denied")
    names = [c["name"] for c in ad.ok(ad.get(ad.e("/credentials")))["items"]]
    assert "Wrapped" not in names
