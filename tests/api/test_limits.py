"""Body sizes are limited while the body arrives: 1 MiB for every route, 16 MiB for a solution import. Over the
limit the answer is 413 ``body_too_large``, whether the size was declared (Content-Length) or not (chunked),
and nothing changes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from fastapi.testclient import TestClient

from credflow.api.app import create_app
from credflow.services.core import Core
from credflow.settings import Settings
from tests.conftest import ADMIN_TOKEN, Api, problem

MIB = 1024 * 1024


def variable(value: str) -> bytes:
    return (b'{"schema_name": "big_note", "type": "text", "value": "' + value.encode() + b'"}')


def chunks(data: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    """``data`` as a stream: httpx sends it chunked, without a Content-Length."""
    for start in range(0, len(data), size):
        yield data[start:start + size]


def variables(api: Api) -> list[str]:
    return [v["schema_name"] for v in api.ok(api.get(api.e("/environment-variables")))["items"]]


def post_variable(api: Api, body: Any, **headers: str) -> Any:
    return api.http.post(f"/api/v1/environments/{api.env}/environment-variables", content=body,
                         headers={"Authorization": f"Bearer {api.token}", "Content-Type": "application/json",
                                  **headers})


def test_a_declared_body_over_one_mib_is_refused_at_once_and_nothing_changes(admin: Api) -> None:
    before = variables(admin)
    resp = post_variable(admin, variable("x" * MIB))
    body = problem(resp, 413, "body_too_large")
    assert body["max_bytes"] == MIB and "x" * 100 not in resp.text  # no input value echoed
    assert resp.headers["connection"] == "close"
    assert variables(admin) == before


def test_a_chunked_body_over_one_mib_is_refused_as_it_arrives_and_nothing_changes(admin: Api) -> None:
    before = variables(admin)
    resp = post_variable(admin, chunks(variable("y" * (MIB + 10))))
    problem(resp, 413, "body_too_large")
    assert variables(admin) == before


def test_a_body_under_the_limit_is_read(admin: Api) -> None:
    resp = post_variable(admin, chunks(variable("z" * (MIB - 1000))))
    assert resp.status_code != 413  # what becomes of it is the route's rule, not the limit's


def test_the_limit_is_a_setting(core: Core, settings: Settings) -> None:
    settings.max_body_bytes = 2000
    with TestClient(create_app(settings, core)) as client:
        api = Api(client, ADMIN_TOKEN)
        api.env = api.ok(api.get("/environments"))["items"][0]["id"]
        problem(post_variable(api, variable("a" * 2000)), 413, "body_too_large")
        problem(post_variable(api, chunks(variable("a" * 2000), 500)), 413, "body_too_large")
        assert post_variable(api, variable("a" * 100)).status_code == 201


def test_the_webhook_checks_the_key_before_the_body(admin: Api) -> None:
    # Over the limit, but refused for the key: the body is never read (tests/security/test_failed_auth.py
    # shows it on a real server, with 100 MB).
    resp = admin.http.post("/events/eventgrid", content=chunks(b"[" + b" " * (4 * MIB) + b"]"),
                           headers={"Content-Type": "application/json"})
    problem(resp, 401, "missing_event_key")
    resp = admin.http.post("/events/eventgrid", params={"key": "cfe_wrong"}, content=chunks(b"[" + b" " * MIB),
                           headers={"Content-Type": "application/json"})
    problem(resp, 401, "invalid_event_key")


# --- solution import: 16 MiB --------------------------------------------------------------------------------
def _solution_zip(admin: Api) -> bytes:
    admin.ok(admin.post(admin.e("/desktop-flows"), {"name": "Invoice bot", "command": ["robot", "--go"]}), 201)
    admin.ok(admin.post(admin.e("/solutions"), {"unique_name": "Bots", "display_name": "Bots",
                                                "version": "1.0.0.0"}), 201)
    admin.ok(admin.post(admin.e("/solutions/Bots/components"), {"type": "desktop_flow", "id": "Invoice bot"}))
    resp = admin.get(admin.e("/solutions/Bots/export"))
    assert resp.status_code == 200
    return resp.content


def _import(api: Api, data: bytes) -> Any:
    return api.post(api.e("/solutions/import"), files={"file": ("solution.zip", data, "application/zip")})


def test_a_solution_import_takes_more_than_one_mib_and_refuses_more_than_16_mib(admin: Api) -> None:
    exported = _solution_zip(admin)
    env = admin.ok(admin.post("/environments", {"name": "production"}), 201)
    target = Api(admin.http, admin.token, env["id"])
    # 2 MiB of padding before the archive, as a self-extracting zip carries its stub: still a valid solution.
    padded = os.urandom(2 * MIB) + exported
    refused = _import(target, os.urandom(17 * MIB) + exported)
    problem(refused, 413, "body_too_large")
    assert target.ok(target.get(target.e("/solutions")))["items"] == []
    report = target.ok(_import(target, padded))
    assert report["solution"]["unique_name"] == "Bots"
    assert [s["unique_name"] for s in target.ok(target.get(target.e("/solutions")))["items"]] == ["Bots"]


def test_a_chunked_solution_over_16_mib_is_refused_and_nothing_is_imported(admin: Api) -> None:
    exported = _solution_zip(admin)
    boundary = "limitboundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"s.zip\"\r\n"
            f"Content-Type: application/zip\r\n\r\n").encode() + os.urandom(17 * MIB) + exported + \
        f"\r\n--{boundary}--\r\n".encode()
    env = admin.ok(admin.post("/environments", {"name": "staging"}), 201)
    resp = admin.http.post(f"/api/v1/environments/{env['id']}/solutions/import", content=chunks(body, MIB),
                           headers={"Authorization": f"Bearer {admin.token}",
                                    "Content-Type": f"multipart/form-data; boundary={boundary}"})
    problem(resp, 413, "body_too_large")
    assert admin.ok(admin.get(f"/environments/{env['id']}/solutions"))["items"] == []


def test_a_machines_run_result_may_carry_a_whole_log_escaped_as_json(admin: Api) -> None:
    # Over 1 MiB, still under what a log of max_log_bytes may take in JSON: read, then refused for the token.
    body = b'{"exit_code": 0, "log": "' + b"\\u001b" * (MIB // 3) + b'"}'
    resp = admin.http.post("/api/v1/machines/me/jobs/r1/result", content=body,
                           headers={"Content-Type": "application/json"})
    problem(resp, 401)


def test_the_openapi_documents_413_where_a_body_is_taken_and_429_where_a_credential_is(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    create = spec["paths"]["/api/v1/environments/{env}/credentials"]["post"]["responses"]
    assert create["413"]["content"]["application/problem+json"] and create["429"]["headers"]["Retry-After"]
    listing = spec["paths"]["/api/v1/environments/{env}/credentials"]["get"]["responses"]
    assert "413" not in listing and "429" in listing
    assert "429" not in spec["paths"]["/healthz"]["get"]["responses"]
