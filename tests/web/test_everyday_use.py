"""Everyday use in a real browser, as a new person meets it: long lists searched, sorted and paged (the audit trail
newest first, with names and readable details), a question before anything is deleted, a run followed live to its
end, the new-connection form saying how to register a machine, each store kind's own hints, and desktop-flow
commands quoted as a shell would read them. Each changed page is saved as a screenshot."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.web.helpers import Admin, path_of, shot, sign_in_admin

pytestmark = pytest.mark.browser


def _robot(api: Admin, prefix: str) -> dict[str, Any]:
    """A machine (and its agent's client), a desktop flow and a connection with a typed login on the machine."""
    machine, agent = api.machine(f"{prefix}-pc")
    flow = api.call("POST", api.e("/desktop-flows"), 201, json={"name": f"{prefix}-flow", "command": ["robot"]})
    conn = api.call("POST", api.e("/connections"), 201, json={
        "name": f"{prefix}-conn", "target": {"machine": machine["machine_id"]}, "username": "u", "password": "p"})
    return {"machine": machine, "agent": agent, "flow": flow, "conn": conn}


def _rows(page: Page) -> int:
    return page.locator("main table tbody tr:not(.deps-row)").count()


def test_long_lists_are_searched_sorted_and_paged(new_page: Callable[[], Page], admin_api: Admin) -> None:
    for n in range(120):
        admin_api.call("POST", admin_api.e("/environment-variables"), 201,
                       json={"schema_name": f"bulk_{n:03}", "type": "text", "value": f"value {n}"})
    admin = new_page()
    sign_in_admin(admin)

    # Environment variables: 50 to a page, counted; a search narrows them, a sort turns them round.
    admin.goto("/env/default/variables?q=bulk_")
    assert _rows(admin) == 50
    assert admin.inner_text("#list-count").startswith("1\u201350 of 120 environment variables")
    shot(admin, "lists-variables-page-1")
    admin.get_by_role("link", name="Next page").click()
    assert admin.inner_text("#list-count").startswith("51\u2013100 of 120")
    admin.get_by_role("link", name="Next page").click()
    assert _rows(admin) == 20 and admin.get_by_role("link", name="Next page").count() == 0
    admin.get_by_label("Search by schema or display name").fill("bulk_07")
    admin.get_by_label("Sort by").select_option(label="Schema name, Z to A")
    admin.get_by_role("button", name="Show").click()
    assert _rows(admin) == 10
    assert admin.locator("main tbody tr:not(.deps-row)").first.locator("td").nth(1).inner_text() == "bulk_079"
    assert "of 10 environment variables matching “bulk_07”" in admin.inner_text("#list-count")
    shot(admin, "lists-variables-searched")

    # The audit trail: newest first, 50 records a page, names rather than ids, details as text rather than JSON.
    admin.goto("/env/default/audit")
    assert _rows(admin) == 50
    first = admin.locator("main tbody tr").first
    assert first.locator("td").nth(3).inner_text() == "Environment variable bulk_119"
    assert first.locator("td").nth(1).inner_text() == "admin@localhost"
    assert "{" not in admin.inner_text("main tbody")
    assert admin.evaluate("document.body.scrollHeight") < 6000
    shot(admin, "lists-audit-newest-first")
    admin.get_by_role("link", name="Next page").click()
    assert admin.locator("main tbody tr").first.locator("td").nth(3).inner_text() == "Environment variable bulk_069"
    admin.get_by_role("link", name="Previous page").click()
    assert admin.locator("main tbody tr").first.locator("td").nth(3).inner_text() == "Environment variable bulk_119"
    admin.get_by_label("What (a name)").fill("bulk_005")
    admin.get_by_role("button", name="Show").click()
    assert _rows(admin) == 1 and "value 5" not in admin.inner_text("main tbody")  # the value is never audited
    shot(admin, "lists-audit-filtered")

    # Runs: the newest first, 50 to a page, found by the name of their desktop flow.
    robot = _robot(admin_api, "paging")
    made = [admin_api.call("POST", admin_api.e("/runs"), 201, json={
        "desktop_flow": robot["flow"]["id"], "connection": robot["conn"]["id"]})["id"] for _ in range(55)]
    robot["agent"].close()
    admin.goto("/env/default/runs?q=paging-flow")
    assert _rows(admin) == 50
    assert admin.locator("main tbody tr").first.get_attribute("id") == f"run-{made[-1]}"
    shot(admin, "lists-runs-newest-first")
    admin.get_by_role("link", name="Next page").click()
    assert _rows(admin) == 5 and admin.locator("main tbody tr").last.get_attribute("id") == f"run-{made[0]}"
    admin.get_by_role("link", name="Previous page").click()
    assert _rows(admin) == 50 and admin.locator("main tbody tr").first.get_attribute("id") == f"run-{made[-1]}"
    admin.goto("/env/default/runs?q=paging-flow&sort=oldest")
    assert admin.locator("main tbody tr").first.get_attribute("id") == f"run-{made[0]}"
    admin.goto("/env/default/runs?q=paging-flow&status=succeeded")
    assert "No run matches." in admin.inner_text("main")


def test_deleting_asks_first(new_page: Callable[[], Page], admin_api: Admin) -> None:
    robot = _robot(admin_api, "doomed")
    robot["agent"].close()
    admin_api.call("POST", admin_api.e("/environment-variables"), 201,
                   json={"schema_name": "doomed_var", "type": "text", "value": "x"})
    admin = new_page()
    sign_in_admin(admin)
    cases = (("/env/default/variables?q=doomed", "Delete doomed_var",
              "Delete the environment variable doomed_var?", "Delete doomed_var", "variable"),
             ("/env/default/connections?q=doomed", "Delete connection doomed-conn",
              "Delete the connection doomed-conn?", "Delete doomed-conn", "connection"),
             ("/env/default/machines?q=doomed", "Delete machine doomed-pc", "Delete the machine doomed-pc?",
              "Delete doomed-pc", "machine"))
    for list_path, link, question, button, what in cases:
        base = list_path.split("?")[0]
        admin.goto(list_path)
        admin.get_by_role("link", name=link).click()  # one click only asks
        assert path_of(admin).endswith("/delete") and question in admin.inner_text("h1")
        shot(admin, f"delete-{what}-asks")
        admin.get_by_role("link", name="Cancel").click()
        assert path_of(admin) == base
        admin.goto(list_path)
        admin.get_by_role("link", name=link).click()
        admin.get_by_role("button", name=button).click()
        assert path_of(admin) == f"{base}?done=deleted" and "Deleted." in admin.inner_text("main")
        admin.goto(list_path)
        assert admin.get_by_role("link", name=link).count() == 0


def test_the_run_page_follows_the_run_to_its_end(new_page: Callable[[], Page], admin_api: Admin) -> None:
    robot = _robot(admin_api, "live")
    agent: httpx.Client = robot["agent"]
    admin = new_page()
    sign_in_admin(admin)
    admin.goto("/env/default/runs")
    admin.get_by_label("Desktop flow", exact=True).select_option(label="live-flow")
    admin.get_by_label("Connection", exact=True).select_option(label="live-conn (connected)")
    admin.get_by_role("button", name="Run").click()
    run_id = path_of(admin).rsplit("/", 1)[-1]
    expect(admin.locator("#run-state")).to_contain_text("Queued: waiting for a machine")
    assert "Run of live-flow" in admin.inner_text("h1")
    shot(admin, "run-queued")

    job = agent.post("/machines/me/jobs/claim", params={"wait": 0}).json()
    assert job["run_id"] == run_id
    expect(admin.locator("#run-state")).to_contain_text("Running on live-pc", timeout=5_000)
    started = time.monotonic()
    agent.post(f"/machines/me/jobs/{run_id}/result", json={"exit_code": 0, "log": "all invoices sent\n"})
    expect(admin.locator("#run-status")).to_have_text("succeeded", timeout=5_000)
    assert time.monotonic() - started < 4  # polled every second, no reload
    expect(admin.locator("#run-state")).to_have_text("Succeeded.")
    main = admin.inner_text("main")
    assert "Queued." not in main and "Queued:" not in main and "all invoices sent" in admin.inner_text("#run-log")
    assert admin.get_by_role("button", name="Cancel the run").count() == 0
    assert admin.locator("#run[hx-trigger]").count() == 0  # following stops at the end
    shot(admin, "run-succeeded-live")

    # A failed run says why, on its page and in the list.
    second = admin_api.call("POST", admin_api.e("/runs"), 201, json={
        "desktop_flow": robot["flow"]["id"], "connection": robot["conn"]["id"]})
    admin.goto(f"/env/default/runs/{second['id']}")
    agent.post("/machines/me/jobs/claim", params={"wait": 0})
    agent.post(f"/machines/me/jobs/{second['id']}/result", json={"exit_code": 3, "log": "printer on fire\n"})
    expect(admin.locator("#run-state")).to_contain_text("Failed: The flow exited with code 3", timeout=5_000)
    admin.goto("/env/default/runs?q=live-flow")
    assert "The flow exited with code 3" in admin.locator(f"#run-{second['id']}").inner_text()
    shot(admin, "runs-failure-reason")
    agent.close()


def test_the_new_connection_form_says_how_to_register_a_machine(new_page: Callable[[], Page],
                                                                 admin_api: Admin) -> None:
    admin_api.call("POST", "/environments", 201, json={"name": "bare"})
    admin = new_page()
    sign_in_admin(admin)
    admin.goto("/env/bare/connections/new")
    hint = admin.locator("#no-machines")
    assert "No machine is registered in bare yet." in hint.inner_text()
    assert "credflow agent register --server http://127.0.0.1:" in hint.inner_text()
    assert "credflow agent run" in hint.inner_text()
    shot(admin, "connection-new-no-machine")
    hint.get_by_role("link", name="Machines").click()
    assert path_of(admin) == "/env/bare/machines"
    admin.get_by_role("button", name="Register a machine").click()
    assert "--registration-token cfr_" in admin.inner_text("#agent-command")


@pytest.mark.parametrize(("kind", "says", "never"), [
    ("hashicorp-vault", "https://vault.example.com:8200", "azure"),
    ("azure-keyvault", "https://NAME.vault.azure.net", "amazonaws"),
    ("aws-secretsmanager", "https://secretsmanager.eu-west-1.amazonaws.com", "azure"),
    ("builtin", "builtin://ENVIRONMENT/NAME", "azure"),
])
def test_each_store_kind_has_its_own_hints(new_page: Callable[[], Page], admin_api: Admin, kind: str, says: str,
                                           never: str) -> None:
    admin = new_page()
    sign_in_admin(admin)
    admin.goto(f"/env/default/stores/new?kind={kind}")
    hint = admin.inner_text("#h-vault_url")
    assert says in hint and never not in hint.lower(), hint
    if kind != "builtin":  # every setting of the kind is explained under its field
        described = admin.locator("fieldset input, fieldset select").evaluate_all(
            "els => els.map(e => [e.name, e.getAttribute('aria-describedby')])")
        assert described and all(d for _, d in described), described
    shot(admin, f"store-new-{kind}-hints")


def test_desktop_flow_commands_read_as_a_shell_would(new_page: Callable[[], Page], admin_api: Admin) -> None:
    admin_api.call("POST", admin_api.e("/desktop-flows"), 201,
                   json={"name": "spaced-flow", "command": ["robot", "--title", "two words", "it's"]})
    admin = new_page()
    sign_in_admin(admin)
    admin.goto("/env/default/desktop-flows")
    typed = """sh -c 'echo "$CREDFLOW_USERNAME" > /tmp/who'"""
    admin.get_by_label("Name", exact=True).fill("shell-flow")
    admin.get_by_label("Command line").fill(typed)
    admin.get_by_role("button", name="Create desktop flow").click()
    assert "Created." in admin.inner_text("main")
    made = admin_api.call("GET", admin_api.e("/desktop-flows/shell-flow"))
    assert made["command"] == ["sh", "-c", 'echo "$CREDFLOW_USERNAME" > /tmp/who']
    assert admin.locator("tr", has_text="shell-flow").locator("code").inner_text() == typed
    spaced = admin.locator("tr", has_text="spaced-flow").locator("code").inner_text()
    assert spaced == """robot --title 'two words' 'it'"'"'s'""", spaced
    shot(admin, "desktop-flows-quoted")


def test_machines_connections_flows_and_stores_are_changed_on_their_pages(new_page: Callable[[], Page],
                                                                        admin_api: Admin) -> None:
    robot = _robot(admin_api, "ops")
    agent: httpx.Client = robot["agent"]
    done = admin_api.call("POST", admin_api.e("/runs"), 201, json={
        "desktop_flow": robot["flow"]["id"], "connection": robot["conn"]["id"]})
    agent.post("/machines/me/jobs/claim", params={"wait": 0})
    agent.post(f"/machines/me/jobs/{done['id']}/result", json={"exit_code": 0, "log": "ok\n"})
    admin_api.call("POST", admin_api.e("/machine-groups"), 201,
                   json={"name": "ops-pool", "machines": [robot["machine"]["machine_id"]]})
    admin_api.call("POST", admin_api.e("/secret-stores"), 201, json={"name": "ops-vault", "kind": "builtin"})
    admin_api.call("PUT", admin_api.e("/secret-stores/ops-vault/secrets/ops-pw"), json={"value": "Ops-Secret-1"})
    admin_api.call("POST", admin_api.e("/environment-variables"), 201,
                   json={"schema_name": "ops_user", "type": "text", "value": "ops@corp.example"})
    admin_api.call("POST", admin_api.e("/environment-variables"), 201, json={
        "schema_name": "ops_pass", "type": "secret", "secret_reference": {"store": "ops-vault", "name": "ops-pw"}})
    admin_api.call("POST", admin_api.e("/credentials"), 201, json={
        "name": "Ops login", "username_variable": "ops_user", "password_variable": "ops_pass"})
    admin = new_page()
    sign_in_admin(admin)

    # A machine's own page: status, last seen, groups and its runs; renaming it.
    admin.goto("/env/default/machines?q=ops")
    admin.get_by_role("link", name="ops-pc", exact=True).click()
    facts = admin.inner_text("dl.facts")
    assert "online" in facts and "ops-pool" in facts and "UTC" in facts
    assert "ops-flow" in admin.locator(f"#run-{done['id']}").inner_text()
    admin.get_by_label("Machine name").fill("ops-pc-renamed")
    admin.get_by_role("button", name="Rename").click()
    assert "Renamed." in admin.inner_text("main") and admin.inner_text("h1") == "Machine ops-pc-renamed"
    shot(admin, "machine-page")

    # A connection switches to a credential, and back to a typed login.
    admin.goto("/env/default/connections?q=ops")
    admin.get_by_role("link", name="Edit connection ops-conn").click()
    admin.get_by_label("A credential").check()
    admin.get_by_label("Credential", exact=True).select_option(label="Ops login (Owner)")
    shot(admin, "connection-edit")
    admin.get_by_role("button", name="Save").click()
    assert "Saved." in admin.inner_text("main")
    assert "Credential Ops login" in admin.locator("tr", has_text="ops-conn").inner_text()
    admin.get_by_role("link", name="Edit connection ops-conn").click()
    admin.get_by_label("A username and password").check()
    admin.get_by_label("Username", exact=True).fill("typed-again")
    admin.get_by_role("button", name="Save").click()
    assert "missing_credential" in admin.inner_text("[role=alert]")  # switching needs the password too
    admin.get_by_label("A username and password").check()
    admin.get_by_label("Username", exact=True).fill("typed-again")
    admin.get_by_label("Password", exact=True).fill("Typed-Again-9")
    admin.get_by_role("button", name="Save").click()
    assert "Username and password" in admin.locator("tr", has_text="ops-conn").inner_text()
    assert "Typed-Again-9" not in admin.content()

    # A desktop flow's command changes, typed as a shell reads it.
    admin.goto("/env/default/desktop-flows?q=ops")
    admin.get_by_role("link", name="Edit desktop flow ops-flow").click()
    assert admin.get_by_label("Command line").input_value() == "robot"
    admin.get_by_label("Command line").fill("sh -c 'robot --all'")
    shot(admin, "desktop-flow-edit")
    admin.get_by_role("button", name="Save").click()
    assert admin.locator("tr", has_text="ops-flow").locator("code").inner_text() == "sh -c 'robot --all'"

    # A store's token is rotated on its edit page (never shown); a store in use is not deleted, an unused one is.
    admin_api.call("POST", admin_api.e("/secret-stores"), 201, json={
        "name": "ops-bao", "kind": "hashicorp-vault", "vault_url": "http://127.0.0.1:1",
        "config": {"address": "http://127.0.0.1:1", "token": "Old-Token-1"}})
    admin.goto("/env/default/stores/ops-bao")
    admin.get_by_role("link", name="Edit").click()
    assert "It is set" in admin.inner_text("#h-cfg-token")
    admin.get_by_label("Token").fill("New-Token-2")
    shot(admin, "store-edit")
    admin.get_by_role("button", name="Save").click()
    assert "Saved." in admin.inner_text("main") and "New-Token-2" not in admin.content()
    admin.goto("/env/default/audit?action=secret_store.update")
    assert "Config changed\ntoken" in admin.locator("main tbody tr").first.inner_text()
    admin.goto("/env/default/stores/ops-vault")
    admin.get_by_role("link", name="Delete").click()
    admin.get_by_role("button", name="Delete ops-vault").click()
    refusal = admin.inner_text("[role=alert]")
    assert "in_use" in refusal and "ops_pass" in refusal, refusal
    shot(admin, "store-delete-in-use")
    admin.goto("/env/default/stores/ops-bao")
    admin.get_by_role("link", name="Delete").click()
    admin.get_by_role("button", name="Delete ops-bao").click()
    assert "Deleted." in admin.inner_text("main") and "ops-bao" not in admin.inner_text("main")

    # A cancelled run says so, and who cancelled it, on its page and in the list.
    waiting = admin_api.call("POST", admin_api.e("/runs"), 201, json={
        "desktop_flow": robot["flow"]["id"], "connection": robot["conn"]["id"]})
    admin.goto(f"/env/default/runs/{waiting['id']}")
    admin.get_by_role("button", name="Cancel the run").click()
    expect(admin.locator("#run-status")).to_have_text("cancelled")
    assert admin.inner_text("#run-state") == "Cancelled by admin@localhost."
    admin.goto("/env/default/runs?status=cancelled")
    row = admin.locator(f"#run-{waiting['id']}").inner_text()
    assert "cancelled" in row and "Cancelled by admin@localhost" in row
    shot(admin, "runs-cancelled")
    agent.close()
