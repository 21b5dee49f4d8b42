"""A package that is not what it claims is refused with a clear error, and nothing changes."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import Api
from tests.solutions.conftest import credential_solution, export, import_, inventory, target_env, unzip


def _zip(files: dict[str, bytes], extra: list[tuple[zipfile.ZipInfo, bytes]] = ()) -> bytes:  # type: ignore[assignment]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
        for info, data in extra:
            zf.writestr(info, data)
    return buf.getvalue()


def _with(good: bytes, **changes: Any) -> bytes:
    """The good package with manifest fields changed."""
    files = unzip(good)
    manifest = json.loads(files["manifest.json"])
    manifest.update(changes)
    files["manifest.json"] = json.dumps(manifest).encode()
    return _zip(files)


def _entry(name: str, data: bytes = b"{}") -> Callable[[bytes], bytes]:
    def make(good: bytes) -> bytes:
        info = zipfile.ZipInfo(name)
        info.compress_type = zipfile.ZIP_DEFLATED
        return _zip(unzip(good), [(info, data)])
    return make


def _symlink(good: bytes) -> bytes:
    info = zipfile.ZipInfo("environment_variables/link.json")
    info.external_attr = 0o120777 << 16
    return _zip(unzip(good), [(info, b"/etc/passwd")])


def _component_file(good: bytes, edit: Callable[[dict[str, Any]], None]) -> bytes:
    files = unzip(good)
    doc = json.loads(files["environment_variables/robot_pass.json"])
    edit(doc)
    files["environment_variables/robot_pass.json"] = json.dumps(doc).encode()
    return _zip(files)


def _lying_sizes(good: bytes) -> bytes:
    """The archive claims robot_pass.json is 10 bytes long; it inflates to more."""
    data = bytearray(good)
    name = b"environment_variables/robot_pass.json"
    for signature, size_at, name_at in ((b"PK\x03\x04", 22, 30), (b"PK\x01\x02", 24, 46)):
        at = data.find(signature)
        while at != -1:
            if data[at + name_at:at + name_at + len(name)] == name:
                data[at + size_at:at + size_at + 4] = (10).to_bytes(4, "little")
            at = data.find(signature, at + 1)
    return bytes(data)


def _unknown_type(good: bytes) -> bytes:
    manifest = json.loads(unzip(good)["manifest.json"])
    manifest["components"][0]["type"] = "machine_group"
    return _with(good, components=manifest["components"])


CASES: dict[str, tuple[Callable[[bytes], bytes], int, str]] = {
    "not a zip": (lambda good: b"PK but not really a zip", 400, "not_a_zip"),
    "no manifest": (lambda good: _zip({"readme.txt": b"hi"}), 422, "missing_manifest"),
    "manifest not json": (lambda good: _zip({**unzip(good), "manifest.json": b"{oops"}), 422, "invalid_manifest"),
    "manifest without solution": (lambda good: _with(good, solution=None), 422, "invalid_manifest"),
    "newer schema": (lambda good: _with(good, schema_version=99), 422, "unsupported_schema_version"),
    "unknown component type": (_unknown_type, 422, "unknown_component_type"),
    "listed file missing": (lambda good: _zip({k: v for k, v in unzip(good).items()
                                               if not k.startswith("credentials/")}), 422, "invalid_manifest"),
    "dot-dot path": (_entry("../../outside.json"), 400, "unsafe_zip_entry"),
    "absolute path": (_entry("/etc/cron.d/evil"), 400, "unsafe_zip_entry"),
    "backslash path": (_entry("..\\..\\evil.json"), 400, "unsafe_zip_entry"),
    "drive letter": (_entry("C:/Windows/evil.json"), 400, "unsafe_zip_entry"),
    "duplicate entry": (_entry("manifest.json", b'{"schema_version": 1}'), 400, "unsafe_zip_entry"),
    "symbolic link": (_symlink, 400, "unsafe_zip_entry"),
    "sizes that lie": (_lying_sizes, 400, "corrupt_zip"),
    "a file the manifest does not list": (_entry("environment_variables/extra.json"), 422, "invalid_manifest"),
    "zip bomb by ratio": (_entry("padding.bin", b"\0" * (1024 * 1024)), 400, "zip_too_large"),
    "zip bomb by size": (_entry("padding.bin", b"\0" * (5 * 1024 * 1024)), 400, "zip_too_large"),
    "a secret variable with a value": (lambda good: _component_file(
        good, lambda d: d.update(value="Smuggled-Value-77")), 422, "invalid_component"),
    "a file naming another component": (lambda good: _component_file(
        good, lambda d: d.update(schema_name="someone_else")), 422, "invalid_component"),
}


@pytest.fixture
def good(admin: Api) -> bytes:
    credential_solution(admin)
    return export(admin, "CredentialSolution")


@pytest.mark.filterwarnings("ignore:Duplicate name")  # the duplicate entry is the point of one case
@pytest.mark.parametrize("case", list(CASES))
def test_a_bad_package_is_refused_and_nothing_changes(admin: Api, good: bytes, case: str) -> None:
    make, status, code = CASES[case]
    prod = target_env(admin)
    before = inventory(prod)
    for dry_run in (True, False):
        resp = import_(prod, make(good), dry_run=dry_run)
        assert resp.status_code == status, resp.text
        assert resp.headers["content-type"].startswith("application/problem+json")
        body = resp.json()
        assert body["code"] == code and body["detail"] and body["title"]
        assert "Smuggled-Value-77" not in resp.text
    assert inventory(prod) == before
    prod.ok(import_(prod, good))  # the same environment takes the good package


def test_an_upload_without_the_file_field_is_refused(admin: Api) -> None:
    resp = admin.post(admin.e("/solutions/import"), files={"other": ("x.zip", b"x")})
    assert resp.status_code == 400 and resp.json()["code"] == "missing_file"
    resp = admin.post(admin.e("/solutions/import"), json={"file": "not multipart"})
    assert resp.status_code == 400 and resp.json()["code"] == "missing_file"
