"""A small typed client of the credflow HTTP API, shared by the CLI and the machine agent."""

from __future__ import annotations

from typing import Any

import httpx


class ApiError(Exception):
    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        self.status = status
        self.problem = problem
        super().__init__(f"{status} {problem.get('code', '')}: {problem.get('detail', '')}")


class Client:
    def __init__(self, server: str, token: str | None, timeout: float = 30.0) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=server.rstrip("/"), headers=headers, timeout=timeout)

    def close(self) -> None:
        self.http.close()

    def request(self, method: str, path: str, **kw: Any) -> Any:
        url = path if path.startswith(("/api/", "/events")) else f"/api/v1{path}"
        resp = self.http.request(method, url, **kw)
        if resp.status_code >= 400:
            try:
                problem = resp.json()
            except ValueError:
                problem = {"code": "http_error", "detail": resp.text[:200]}
            raise ApiError(resp.status_code, problem)
        if resp.status_code == 204 or not resp.content:
            return None
        if resp.headers.get("content-type", "").startswith(("application/json", "application/problem+json")):
            return resp.json()
        return resp.content

    def get(self, path: str, **kw: Any) -> Any:
        return self.request("GET", path, **kw)

    def post(self, path: str, json: Any = None, **kw: Any) -> Any:
        return self.request("POST", path, json=json, **kw)

    def put(self, path: str, json: Any = None, **kw: Any) -> Any:
        return self.request("PUT", path, json=json, **kw)

    def patch(self, path: str, json: Any = None, **kw: Any) -> Any:
        return self.request("PATCH", path, json=json, **kw)

    def delete(self, path: str, **kw: Any) -> Any:
        return self.request("DELETE", path, **kw)

    def all(self, path: str, **params: Any) -> list[dict[str, Any]]:
        """Every item of a list, following ``next_cursor``."""
        items: list[dict[str, Any]] = []
        cursor = None
        while True:
            page = self.get(path, params={**params, "limit": 500, **({"cursor": cursor} if cursor else {})})
            items.extend(page["items"])
            cursor = page.get("next_cursor")
            if not cursor:
                return items
