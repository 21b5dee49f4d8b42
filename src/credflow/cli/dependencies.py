"""Where a variable or a credential is used, printed as a tree (or JSON): shared by ``credflow variable
dependencies`` and ``credflow credential dependencies``."""

from __future__ import annotations

import json
from typing import Any

from rich.tree import Tree

from credflow.cli.common import calling, out
from credflow.client.http import Client


def show_dependencies(title: str, path: str, every: bool, as_json: bool) -> None:
    with calling() as c:
        deps = _pages(c, path, every)
    if as_json:
        print(json.dumps(deps, indent=2))
        return
    out.print(_tree(title, deps))


def _pages(c: Client, path: str, every: bool) -> dict[str, Any]:
    got: dict[str, Any] = c.get(path, params={"limit": 500 if every else 50})
    while every and got.get("next_cursor"):
        more = c.get(path, params={"limit": 500, "cursor": got["next_cursor"]})
        got["connections"] += more["connections"]
        got["next_cursor"] = more["next_cursor"]
    return got


def _connection_label(conn: dict[str, Any]) -> str:
    return f"{conn['name']} [dim](owner {conn.get('owner_email') or conn['owner']}, {conn['status']})[/dim]"


def _tree(title: str, deps: dict[str, Any]) -> Tree:
    tree = Tree(title)
    counts = deps["counts"]
    shown = len(deps["connections"])
    if "credentials" in deps:
        creds = tree.add(f"Credentials ({counts['credentials']})")
        for cred in deps["credentials"]:
            node = creds.add(cred["name"])
            for conn in deps["connections"]:
                if conn["credential"] == cred["id"]:
                    node.add(_connection_label(conn))
    else:
        conns = tree.add(f"Connections ({counts['connections']})")
        for conn in deps["connections"]:
            conns.add(_connection_label(conn))
    if shown < counts["connections"]:
        tree.add(f"[yellow]{shown} of {counts['connections']} connections shown; --all lists every one[/yellow]")
    flows = tree.add(f"Cloud flows ({counts['cloud_flows']})")
    for flow in deps["cloud_flows"]:
        flows.add(flow["name"])
    return tree
