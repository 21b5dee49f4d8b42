"""Every page in a real browser: signing in with the keyboard alone, machines, runs, cloud flows, solutions and
audit; and, walking every link each person is offered, that every page answers, labels its form controls and
never holds a secret value."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.web.helpers import Admin, path_of, shot, sign_in, sign_in_admin, unlabelled_controls

pytestmark = pytest.mark.browser

CANARY = "Canary-Secret-a81f3e"
TYPED = "Typed-Password-5c02b9"


def _keyboard_to(page: Page, element_id: str) -> None:
    for _ in range(40):
        if page.evaluate("document.activeElement && document.activeElement.id") == element_id:
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"Tab never reached #{element_id}")


def test_signing_in_and_choosing_a_password_with_the_keyboard_alone(new_page: Callable[[], Page],
                                                                     admin_api: Admin) -> None:
    admin_api.person("kim", "environment_maker", "kim-first-password")
    page = new_page()
    page.goto("/")
    assert path_of(page) == "/sign-in?next=%2F"
    shot(page, "sign-in")
    _keyboard_to(page, "f-email")
    page.keyboard.type("kim@example.com")
    page.keyboard.press("Tab")
    page.keyboard.type("kim-first-password")
    page.keyboard.press("Enter")
    page.wait_for_url("**/account/password")
    assert "A system administrator set your first password" in page.inner_text("main")
    page.goto("/env/default/credentials")  # nothing else opens before the password is changed
    assert path_of(page) == "/account/password"
    shot(page, "account-password")
    _keyboard_to(page, "f-current")
    for text in ("kim-first-password", "kim-own-password-1", "kim-own-password-1"):
        page.keyboard.type(text)
        page.keyboard.press("Tab")
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Enter")
    page.wait_for_url("**/env/default/credentials**")
    assert "Your password is changed." in page.inner_text("main")


def _scene(api: Admin) -> dict[str, Any]:
    """A store with a canary secret, variables, a credential shared with bob, a machine in a group, connections
    (one with a credential, one with a typed password), a desktop flow, a cloud flow and a solution."""
    api.person("bob", "basic_user", "bob-first-password")
    api.call("POST", api.e("/secret-stores"), 201, json={"name": "vault", "kind": "builtin"})
    api.call("PUT", api.e("/secret-stores/vault/secrets/robot-password"), json={"value": CANARY})
    api.call("POST", api.e("/environment-variables"), 201,
             json={"schema_name": "robot_user", "type": "text", "value": "robot@corp.example"})
    api.call("POST", api.e("/environment-variables"), 201, json={
        "schema_name": "robot_pass", "type": "secret",
        "secret_reference": {"store": "vault", "name": "robot-password"}})
    cred = api.call("POST", api.e("/credentials"), 201, json={
        "name": "Canary login", "username_variable": "robot_user", "password_variable": "robot_pass"})
    api.call("PUT", api.e(f"/credentials/{cred['id']}/shares/bob@example.com"), json={"role": "user"})
    api.call("POST", api.e("/teams"), 201, json={"name": "robot-team", "members": ["bob@example.com"]})
    machine, agent = api.machine("pc-1")
    api.call("POST", api.e("/machine-groups"), 201, json={"name": "pool", "machines": [machine["machine_id"]]})
    conn = api.call("POST", api.e("/connections"), 201, json={
        "name": "canary-conn", "target": {"machine_group": "pool"}, "credential": cred["id"]})
    api.call("POST", api.e("/connections"), 201, json={
        "name": "typed-conn", "target": {"machine": "pc-1"}, "username": "typed-user", "password": TYPED})
    flow = api.call("POST", api.e("/desktop-flows"), 201, json={"name": "invoice-robot", "command": ["robot"]})
    run = api.call("POST", api.e("/runs"), 201, json={"desktop_flow": flow["id"], "connection": conn["id"]})
    job = agent.post("/machines/me/jobs/claim", params={"wait": 0}).json()
    assert job["run_id"] == run["id"]
    agent.post(f"/machines/me/jobs/{run['id']}/result", json={"exit_code": 0, "log": "invoices sent\n"})
    ref = api.call("POST", api.e("/connection-references"), 201, json={"name": "robot-ref", "connection": conn["id"]})
    action = {"type": "run_desktop_flow", "desktop_flow": flow["id"], "connection_reference": ref["id"]}
    api.call("POST", api.e("/cloud-flows"), 201,
             json={"name": "Nightly invoices", "trigger": {"type": "manual"}, "actions": [action]})
    api.call("POST", api.e("/solutions"), 201, json={"unique_name": "robots", "display_name": "Robots",
                                                    "version": "1.0.0.0"})
    api.call("POST", api.e("/solutions/robots/components"), json={"type": "credential", "id": cred["id"]})
    api.call("POST", "/environments", 201, json={"name": "test"})
    api.call("POST", "/environments/test/secret-stores", 201, json={"name": "vault", "kind": "builtin"})
    api.call("PUT", "/environments/test/secret-stores/vault/secrets/robot-password", json={"value": CANARY})
    agent.close()
    return {"run": run}


RAW_ID = re.compile(r"\b[0-9a-f]{32}\b")


def _walk(page: Page, label: str, start: str, limit: int = 70) -> list[str]:
    """Visit every page linked from ``start`` (GET links of this site), checking each (no secret, every control
    labelled, names rather than ids in what the page says); returns the paths."""
    seen: list[str] = []
    queue = [start]
    while queue and len(seen) < limit:
        path = queue.pop(0)
        if path in seen:
            continue
        seen.append(path)
        resp = page.goto(path)
        assert resp is not None and resp.ok, f"{label}: {path} answered {resp.status if resp else None}"
        html = page.content()
        assert CANARY not in html and TYPED not in html, f"{label}: {path} holds a secret value"
        assert unlabelled_controls(page) == [], f"{label}: {path} has form controls without a label"
        shown = RAW_ID.findall(page.inner_text("main"))
        assert shown == [], f"{label}: {path} shows ids {shown}"
        name = re.sub(r"[0-9a-f]{32}", "id", path.lower())
        shot(page, f"{label}-" + (re.sub(r"[^a-z0-9]+", "-", name).strip("-") or "home"))
        links = page.eval_on_selector_all("a[href^='/']:not([download])", "els => els.map(e => e.getAttribute('href'))")
        for href in links:
            target = href.split("#")[0]
            if target.startswith(("/env/default", "/account")) and "cursor=" not in target and target not in seen:
                queue.append(target)
    return seen


def test_every_page_answers_is_labelled_and_holds_no_secret(new_page: Callable[[], Page], admin_api: Admin) -> None:
    scene = _scene(admin_api)
    stranger = new_page()
    stranger.goto("/sign-in")
    stranger.get_by_label("Email").fill("admin@localhost")
    stranger.get_by_label("Password").fill("not-the-admin-password")
    stranger.get_by_role("button", name="Sign in").click()
    assert "the email or the password is not right" in stranger.inner_text("[role=alert]")

    admin = new_page()
    sign_in_admin(admin)
    # Machines: the registration token with the agent command ready to copy; pc-1 is online.
    admin.goto("/env/default/machines")
    assert "online" in admin.locator("tr", has_text="pc-1").first.inner_text()
    admin.get_by_role("button", name="Register a machine").click()
    command = admin.inner_text("#agent-command")
    assert re.search(r"credflow agent register --server http://127\.0\.0\.1:\d+ --registration-token cfr_\S+ "
                     r"--name MACHINE-NAME\ncredflow agent run", command), command
    assert admin.get_by_role("button", name="Copy").count() == 1
    shot(admin, "machines-registration")
    # Runs: status and log, and the names of what the run used.
    admin.goto(f"/env/default/runs/{scene['run']['id']}")
    assert "succeeded" in admin.inner_text("#run-status") and "invoices sent" in admin.inner_text("#run-log")
    assert "invoice-robot" in admin.inner_text("h1") and "pc-1" in admin.inner_text("dl")
    # Cloud flows: the Run button queues the runs and links to them.
    admin.goto("/env/default/cloud-flows")
    admin.get_by_role("button", name="Run Nightly invoices").click()
    expect(admin.locator("#queued")).to_contain_text("Queued 1 run(s)")
    shot(admin, "cloud-flows-run")
    # Solutions: export downloads the zip (no secret value in it); importing it elsewhere reports a dry run.
    admin.goto("/env/default/solutions")
    with admin.expect_download() as download:
        admin.locator("tr", has_text="robots").get_by_role("link", name="Export").click()
    data = open(download.value.path(), "rb").read()
    names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    assert names and CANARY.encode() not in data
    admin.goto("/env/test/solutions")
    admin.get_by_label("Solution zip").set_input_files(files=[{"name": "robots.zip", "mimeType": "application/zip",
                                                               "buffer": data}])
    admin.get_by_role("button", name="Import").click()
    report = admin.locator("#import-report")
    assert "Dry run: nothing was changed" in report.inner_text() and "Canary login" in report.inner_text()
    assert "No solutions yet." in admin.inner_text("main")  # nothing imported
    shot(admin, "solutions-import-dry-run")
    # Audit: the failed sign-in is there, without the password tried.
    admin.goto("/env/default/audit?action=auth.signin_failed")
    assert "admin@localhost" in admin.inner_text("tbody") and "not-the-admin-password" not in admin.content()

    walked = _walk(admin, "admin", "/env/default/credentials")
    assert {"/env/default/audit", "/env/default/users", "/env/default/machines", "/env/default/connections/new",
            "/env/default/solutions", "/env/default/stores/new", "/env/default/variables/new?type=secret",
            "/env/default/cloud-flows", "/env/default/runs", "/env/default/teams"} <= set(walked)

    bob = new_page()
    sign_in(bob, "bob@example.com", "bob-first-password", "bob-own-password-1")
    walked = _walk(bob, "basic-user", "/env/default/credentials")
    assert not any(p.startswith(("/env/default/audit", "/env/default/users", "/env/default/stores",
                                 "/env/default/teams")) for p in walked)
    assert any("/credentials/" in p for p in walked)
    assert bob.goto("/env/default/audit").status == 403  # type: ignore[union-attr]


def test_a_team_gets_a_member_a_share_and_loses_the_member(new_page: Callable[[], Page], admin_api: Admin) -> None:
    admin_api.person("tess", "basic_user", "tess-first-password")
    admin_api.call("POST", admin_api.e("/secret-stores"), 201, json={"name": "team-vault", "kind": "builtin"})
    admin_api.call("PUT", admin_api.e("/secret-stores/team-vault/secrets/pw"), json={"value": CANARY})
    admin_api.call("POST", admin_api.e("/environment-variables"), 201,
                   json={"schema_name": "team_user", "type": "text", "value": "team@corp.example"})
    admin_api.call("POST", admin_api.e("/environment-variables"), 201, json={
        "schema_name": "team_pass", "type": "secret", "secret_reference": {"store": "team-vault", "name": "pw"}})
    cred = admin_api.call("POST", admin_api.e("/credentials"), 201, json={
        "name": "Team login", "username_variable": "team_user", "password_variable": "team_pass"})
    admin = new_page()
    sign_in_admin(admin)

    # Create a team, then add tess to it.
    admin.get_by_role("link", name="Teams").click()
    admin.get_by_label("Team name").fill("night-shift")
    admin.get_by_role("button", name="Create team").click()
    assert "Created." in admin.inner_text("main")
    members = admin.locator("tbody tr", has_text="night-shift").locator("td").nth(1)
    assert members.inner_text().strip() == "—"
    admin.get_by_label("Person to add to team night-shift").select_option(label="tess (tess@example.com)")
    admin.get_by_role("button", name="Add to team night-shift").click()
    assert "The member is added." in admin.inner_text("main")
    assert "tess tess@example.com" in members.inner_text()
    shot(admin, "teams-member-added")

    # Share the credential with the team from the Share page; tess sees it through the team.
    admin.goto(f"/env/default/credentials/{cred['id']}/share")
    admin.get_by_label("Person (email) or team (name)").fill("night-shift")
    admin.locator("#role-user").check()
    admin.get_by_role("button", name="Save").click()
    assert "Shared." in admin.inner_text("main")
    shared = admin.locator("tbody tr", has_text="night-shift")
    assert "(team)" in shared.inner_text() and "User (can view only)" in shared.inner_text()
    tess = new_page()
    sign_in(tess, "tess@example.com", "tess-first-password", "tess-own-password-1")
    tess.goto("/env/default/credentials")
    assert "Team login" in tess.inner_text("main")
    assert tess.goto("/env/default/teams").status == 200  # type: ignore[union-attr]
    assert tess.get_by_role("link", name="Teams").count() == 0  # the nav link is for system administrators
    assert tess.get_by_role("button", name="Create team").count() == 0

    # Remove tess: the team keeps its share, tess loses the credential at once.
    admin.goto("/env/default/teams")
    admin.get_by_role("button", name="Remove tess@example.com from team night-shift").click()
    assert "The member is removed" in admin.inner_text("main")
    assert members.inner_text().strip() == "—"
    shot(admin, "teams-member-removed")
    admin.goto(f"/env/default/credentials/{cred['id']}/share")
    assert "night-shift" in admin.inner_text("tbody")
    tess.goto("/env/default/credentials")
    assert "Team login" not in tess.inner_text("main")

    # A duplicate name is refused on the page, with the service's code; deleting the team removes its share.
    admin.goto("/env/default/teams")
    admin.get_by_label("Team name").fill("night-shift")
    admin.get_by_role("button", name="Create team").click()
    assert "duplicate_name" in admin.inner_text("[role=alert]")
    assert admin.get_by_label("Team name").input_value() == "night-shift"
    admin.get_by_role("link", name="Delete team night-shift").click()
    assert "Delete the team night-shift?" in admin.inner_text("h1")
    admin.get_by_role("button", name="Delete night-shift").click()
    assert "Deleted." in admin.inner_text("main")
    admin.goto(f"/env/default/credentials/{cred['id']}/share")
    assert "night-shift" not in admin.inner_text("tbody")


def test_adding_and_removing_machines_of_a_group(new_page: Callable[[], Page], admin_api: Admin) -> None:
    one, agent_one = admin_api.machine("grp-pc-1")
    two, agent_two = admin_api.machine("grp-pc-2")
    agent_one.close()
    agent_two.close()
    admin_api.call("POST", admin_api.e("/machine-groups"), 201,
                   json={"name": "grp-pool", "machines": [one["machine_id"]]})
    admin = new_page()
    sign_in_admin(admin)
    admin.goto("/env/default/machine-groups")
    admin.get_by_label("Machine to add to group grp-pool").select_option(label="grp-pc-2")
    admin.get_by_role("button", name="Add to group grp-pool").click()
    assert "The machine is added to the group." in admin.inner_text("main")
    members = admin.locator("tbody tr", has_text="grp-pool").locator("ul.members")
    assert "grp-pc-1" in members.inner_text() and "grp-pc-2" in members.inner_text()
    shot(admin, "machine-group-member-added")
    admin.get_by_role("button", name="Remove grp-pc-1 from group grp-pool").click()
    assert "The machine is removed from the group." in admin.inner_text("main")
    members = admin.locator("tbody tr", has_text="grp-pool").locator("ul.members")
    assert "grp-pc-1" not in members.inner_text() and "grp-pc-2" in members.inner_text()
    group = admin_api.call("GET", admin_api.e("/machine-groups/grp-pool"))
    assert group["machines"] == [two["machine_id"]]
