"""The seed's procedures on the Credentials page, in a real browser: create a credential (making its variables on
the way), edit it, share it with each role, create a connection with "Switch to credentials", delete it; and what
a User (can view only) may not do."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import expect

from tests.web.helpers import Admin, csrf_of, path_of, shot, sign_in, sign_in_admin

pytestmark = pytest.mark.browser

REASON = ("You cannot edit the selected environment variables in an existing credential. To change the username or "
          "password, update the environment variables or the vault secret.")
SECRET = "Walkthrough-Secret-6f1d2c"


def test_the_seeds_credential_procedures(new_page: Callable, admin_api: Admin) -> None:  # type: ignore[type-arg]
    for name, role in (("carol", "environment_maker"), ("uma", "basic_user"), ("sam", "basic_user")):
        admin_api.person(name, role, f"{name}-first-password")
    machine, _ = admin_api.machine("robot-pc")
    admin = new_page()
    sign_in_admin(admin)

    # A builtin store holding the robot's password, and its prerequisites checked (htmx fills the report in).
    admin.get_by_role("link", name="Secret stores").click()
    admin.get_by_role("link", name="Add a secret store").click()
    admin.get_by_label("Name", exact=True).fill("vault")
    admin.get_by_role("button", name="Add").click()
    admin.get_by_role("button", name="Check prerequisites").click()
    report = admin.locator("#check-report")
    expect(report).to_contain_text("Every prerequisite is met.")
    expect(report.locator("tr.check-ok")).to_have_count(4)
    admin.get_by_label("Secret name").fill("robot-password")
    admin.get_by_label("Value").fill(SECRET)
    admin.get_by_role("button", name="Write").click()
    assert "A new version of the secret is written." in admin.inner_text("main")
    shot(admin, "secret-store")

    # Create a credential: with no variables yet, the page says so and links to creating each kind.
    admin.get_by_role("link", name="Credentials").first.click()
    assert "No credentials yet." in admin.inner_text("main")
    admin.get_by_role("link", name="New credential").click()
    assert "You don't have any text environment variables." in admin.inner_text("main")
    assert "You don't have any secret environment variables." in admin.inner_text("main")
    shot(admin, "credential-new-empty")
    admin.get_by_role("link", name="Create a text variable").click()
    admin.get_by_label("Schema name").fill("robot_user")
    admin.get_by_label("Value").fill("robot@corp.example")
    admin.get_by_role("button", name="Create").click()
    assert "/credentials/new" in admin.url
    admin.get_by_role("link", name="Create a secret variable").click()
    admin.get_by_label("Schema name").fill("robot_pass")
    admin.get_by_label("Secret store").select_option("vault")
    admin.get_by_label("Secret name").fill("robot-password")
    shot(admin, "variable-new-secret")
    admin.get_by_role("button", name="Create").click()
    assert admin.get_by_label("Username").locator("option:checked").inner_text() == "robot_user (robot_user)"
    assert admin.get_by_label("Password").locator("option:checked").inner_text() == "robot_pass (robot_pass)"
    admin.get_by_label("Credential name").fill("Robot login")
    admin.get_by_label("Description (optional)").fill("for the invoice robot")
    shot(admin, "credential-new")
    admin.get_by_role("button", name="Create").click()
    assert "Created." in admin.inner_text("main")
    cred_path = path_of(admin).split("?")[0]
    admin.get_by_role("link", name="Credentials").first.click()
    row = admin.locator("tbody tr", has_text="Robot login")
    assert [c.strip() for c in row.locator("td").all_inner_texts()] == [
        "Robot login", "for the invoice robot", "admin admin@localhost", "Owner", "active"]
    shot(admin, "credentials-list")

    # Edit: the name and description change; the variables are shown read-only with the seed's reason.
    admin.goto(f"{cred_path}/edit")
    assert admin.get_by_label("Username").is_editable() is False
    assert admin.get_by_label("Password").is_editable() is False
    assert REASON in admin.inner_text("main")
    shot(admin, "credential-edit")
    admin.get_by_label("Description (optional)").fill("for the invoice robot, v2")
    admin.get_by_role("button", name="Save").click()
    assert "for the invoice robot, v2" in admin.inner_text("dl")

    # Share with each role; the keyboard alone fills and submits the form for the last one.
    admin.goto(f"{cred_path}/share")
    shares = {"carol": "Co-owner", "uma": "User (can view only)", "sam": "User (can view and share)"}
    for name, role in (("carol", "role-co_owner"), ("uma", "role-user")):
        admin.get_by_label("Person (email) or team (name)").fill(f"{name}@example.com")
        admin.locator(f"#{role}").check()
        admin.get_by_role("button", name="Save").click()
        assert "Shared." in admin.inner_text("main")
    admin.get_by_label("Person (email) or team (name)").focus()
    admin.keyboard.type("sam@example.com")
    admin.keyboard.press("Tab")
    while admin.evaluate("document.activeElement.id") != "role-user_share":
        admin.keyboard.press("ArrowDown")
    with admin.expect_navigation():
        admin.keyboard.press("Enter")
    assert "Shared." in admin.inner_text("main")
    table = admin.locator("table").inner_text()
    assert all(f"{n}@example.com" in table for n in shares), table
    assert "User (can view and share)" in table and "Co-owner (can edit)" in table
    shot(admin, "credential-share")

    # uma, User (can view only): sees it with her role, is offered no Edit, Share or Delete, and is refused a
    # forged POST; she uses it in a connection, switching the connection form to credentials.
    uma = new_page()
    sign_in(uma, "uma@example.com", "uma-first-password", "uma-own-password-1")
    row = uma.locator("tbody tr", has_text="Robot login")
    assert row.locator("td").nth(3).inner_text() == "User (can view only)"
    uma.goto(cred_path)
    for command in ("Edit", "Share", "Delete"):
        assert uma.get_by_role("link", name=command, exact=True).count() == 0
    assert "lets you view and use this credential only" in uma.inner_text("main")
    shot(uma, "credential-detail-user")
    token = csrf_of(uma)
    forged = uma.request.post(f"{cred_path}/delete", form={"csrf_token": token})
    assert forged.status == 403 and "does not allow delete" in forged.text()
    forged = uma.request.post(f"{cred_path}/edit", form={"csrf_token": token, "name": "Mine now"})
    assert forged.status == 403
    assert uma.request.post(f"{cred_path}/delete", form={}).status == 403  # no CSRF token at all
    assert uma.request.get(f"{cred_path}/edit").status == 403

    uma.get_by_role("link", name="Connections").click()
    uma.get_by_role("link", name="Add new connection").click()
    uma.get_by_label("Connection name").fill("Invoice robot on robot-pc")
    uma.get_by_label("Machine or machine group").select_option(f"machine:{machine['machine_id']}")
    assert uma.get_by_label("Password").count() == 1  # "Connect with username and password" first
    uma.get_by_role("link", name="Switch to credentials").click()
    uma.get_by_label("Credential").wait_for()
    assert uma.get_by_label("Password").count() == 0
    assert uma.evaluate("document.activeElement.id") == "f-credential"
    assert uma.get_by_label("Connection name").input_value() == "Invoice robot on robot-pc"
    uma.get_by_label("Credential").select_option(label="Robot login (User (can view only))")
    shot(uma, "connection-new-credentials")
    uma.get_by_role("button", name="Create").click()
    row = uma.locator("tbody tr", has_text="Invoice robot on robot-pc")
    cells = [c.strip() for c in row.locator("td").all_inner_texts()]
    assert cells[1:6] == ["Machine robot-pc", "Credential Robot login", "uma uma@example.com", "connected", "1"]
    shot(uma, "connections")

    # sam, User (can view and share): Share is offered, with only the roles his own allows him to grant.
    sam = new_page()
    sign_in(sam, "sam@example.com", "sam-first-password", "sam-own-password-1")
    sam.goto(cred_path)
    assert sam.get_by_role("link", name="Share", exact=True).count() == 1
    assert sam.get_by_role("link", name="Edit", exact=True).count() == 0
    sam.get_by_role("link", name="Share", exact=True).click()
    assert sam.locator("input[name=role]").evaluate_all("els => els.map(e => e.value)") == ["user", "user_share"]

    # carol, Co-owner: Edit, Share and Delete. Delete shows the dependents first and refuses while they exist.
    carol = new_page()
    sign_in(carol, "carol@example.com", "carol-first-password", "carol-own-password-1")
    carol.goto(cred_path)
    for command in ("Edit", "Share", "Delete"):
        assert carol.get_by_role("link", name=command, exact=True).count() == 1
    carol.goto("/env/default/variables")
    row = carol.locator("tr[id^=var-]", has_text="robot_pass")
    deps = carol.locator(f"#deps-{str(row.get_attribute('id'))[4:]}")
    row.get_by_role("link", name="Show dependencies").click()
    deps.get_by_text("Invoice robot on robot-pc").wait_for()
    assert "Robot login" in deps.inner_text()
    shot(carol, "variable-dependencies")
    carol.goto(cred_path)
    carol.get_by_role("link", name="Delete", exact=True).click()
    assert "Invoice robot on robot-pc" in carol.locator("table").inner_text()
    assert "doesn't delete its environment variables" in carol.inner_text("main")
    shot(carol, "credential-delete")
    carol.get_by_role("button", name="Delete").click()
    refusal = carol.inner_text("[role=alert]")
    assert "in_use" in refusal and "Delete anyway" in refusal and "force" not in refusal, refusal
    shot(carol, "credential-delete-in-use")
    carol.get_by_label("Delete anyway").check()
    carol.get_by_role("button", name="Delete").click()
    assert "Deleted." in carol.inner_text("main") and "Robot login" not in carol.inner_text("main")
    carol.goto("/env/default/variables")
    assert "robot_user" in carol.inner_text("main") and "robot_pass" in carol.inner_text("main")
    uma.goto("/env/default/connections")
    assert "credential_deleted" in uma.locator("tbody tr", has_text="Invoice robot").inner_text()
    for page in (admin, uma, sam, carol):
        assert SECRET not in page.content()
