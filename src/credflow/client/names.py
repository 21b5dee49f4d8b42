"""Names for the ids the API answers with, and ids for what people type: a name, an id, or a unique prefix of an id.

Both come from listing a kind once per ``Names`` (one request, cached): the API's views carry ids, people think
in names. A list the caller may not read leaves its ids as they are.
"""

from __future__ import annotations

import string
from typing import Any

from credflow.client.http import ApiError, Client

ID_LENGTH = 32  # ids are 32 hex characters
MIN_PREFIX = 4

# kind: (the list's path, "{env}" for the environment's, the field people name it by, what to call it)
KINDS: dict[str, tuple[str, str, str]] = {
    "user": ("/users", "email", "user"),
    "environment": ("/environments", "name", "environment"),
    "store": ("{env}/secret-stores", "name", "secret store"),
    "variable": ("{env}/environment-variables", "schema_name", "environment variable"),
    "credential": ("{env}/credentials", "name", "credential"),
    "team": ("{env}/teams", "name", "team"),
    "machine": ("{env}/machines", "name", "machine"),
    "machine_group": ("{env}/machine-groups", "name", "machine group"),
    "desktop_flow": ("{env}/desktop-flows", "name", "desktop flow"),
    "connection": ("{env}/connections", "name", "connection"),
    "connection_reference": ("{env}/connection-references", "name", "connection reference"),
    "cloud_flow": ("{env}/cloud-flows", "name", "cloud flow"),
    "run": ("{env}/runs", "id", "run"),
    "event_key": ("{env}/event-keys", "id", "event key"),
}


class AmbiguousReference(ValueError):
    """A prefix that more than one id starts with."""

    def __init__(self, what: str, ref: str, ids: list[str]) -> None:
        self.what, self.ref, self.ids = what, ref, ids
        shown = ", ".join(ids[:5]) + (", ..." if len(ids) > 5 else "")
        super().__init__(f"{ref!r} is the start of {len(ids)} {what} ids ({shown}); give more of the id")


def looks_like_prefix(ref: str) -> bool:
    """Could ``ref`` be the start of an id (and not a whole one)?"""
    return MIN_PREFIX <= len(ref) < ID_LENGTH and all(ch in string.hexdigits for ch in ref)


class Names:
    def __init__(self, client: Client, env: str) -> None:
        self.client = client
        self.env = env
        self._items: dict[str, list[dict[str, Any]]] = {}

    def items(self, kind: str) -> list[dict[str, Any]]:
        """Every item of ``kind`` the caller may list (none when the list is refused)."""
        if kind not in self._items:
            path = KINDS[kind][0].replace("{env}", f"/environments/{self.env}")
            try:
                self._items[kind] = self.client.all(path)
            except ApiError:
                self._items[kind] = self._me() if kind == "user" else []
        return self._items[kind]

    def _me(self) -> list[dict[str, Any]]:
        try:
            me = self.client.get("/me")
        except ApiError:
            return []
        return [me] if isinstance(me, dict) and "email" in me else []

    def name(self, kind: str, item_id: Any) -> str:
        """What people call the item with id ``item_id``: its name (a user's email); the id when unknown."""
        if item_id is None or item_id == "":
            return ""
        field = KINDS[kind][1]
        for item in self.items(kind):
            if item.get("id") == item_id:
                return str(item.get(field) or item_id)
        return str(item_id)

    def resolve(self, kind: str, ref: str) -> str:
        """What to send the API for ``ref``: the same, unless it is the unique start of an id (then that id).
        A prefix that several ids start with is refused (``AmbiguousReference``)."""
        if not looks_like_prefix(ref):
            return ref
        field, what = KINDS[kind][1], KINDS[kind][2]
        items = self.items(kind)
        if any(ref in (item.get("id"), item.get(field)) for item in items):
            return ref
        hits = [str(item["id"]) for item in items if str(item.get("id", "")).startswith(ref.lower())]
        if len(hits) > 1:
            raise AmbiguousReference(what, ref, hits)
        return hits[0] if hits else ref

    def id_of(self, kind: str, ref: str) -> str:
        """The id of the item ``ref`` names (an id, the unique start of one, or its name), for the list filters,
        which take ids; ``ref`` itself when no item is called that (the server then says what is wrong)."""
        ref = self.resolve(kind, ref)
        field = KINDS[kind][1]
        for item in self.items(kind):
            if ref in (item.get("id"), item.get(field)):
                return str(item["id"])
        return ref
