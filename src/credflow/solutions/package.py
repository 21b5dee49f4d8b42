"""Writing a solution zip, and reading one without trusting it.

Reading refuses, before anything is imported: what is not a zip, entry names that could escape a directory
(absolute, ``..``, backslashes, drive letters, symbolic links, duplicates), encrypted entries, archives with too
many entries, too many bytes once uncompressed, or an entry that inflates suspiciously (a zip bomb). Sizes are
enforced on the bytes actually inflated, not on what the archive claims.
"""

from __future__ import annotations

import io
import re
import stat
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from credflow.domain.errors import Malformed, RuleViolation
from credflow.solutions.manifest import (
    SCHEMA_VERSION,
    ComponentEntry,
    Dependency,
    Doc,
    Manifest,
    SolutionInfo,
    doc_name,
    parse_doc,
    parse_manifest,
)

MANIFEST_NAME = "manifest.json"
MAX_ARCHIVE_BYTES = 16 * 1024 * 1024
MAX_ENTRIES = 2_000
MAX_ENTRY_BYTES = 4 * 1024 * 1024
MAX_TOTAL_BYTES = 32 * 1024 * 1024
MAX_RATIO = 100
RATIO_FLOOR = 64 * 1024  # small JSON files may compress well without being a bomb
_DIRS = {"environment_variable": "environment_variables", "credential": "credentials",
         "desktop_flow": "desktop_flows", "connection_reference": "connection_references",
         "cloud_flow": "cloud_flows"}
_DRIVE = re.compile(r"^[A-Za-z]:")
_UNSAFE_CHARS = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class Package:
    manifest: Manifest
    components: list[tuple[ComponentEntry, Doc]]  # in manifest order


def _file_name(type_: str, name: str, taken: set[str]) -> str:
    slug = _UNSAFE_CHARS.sub("_", name).strip("._")[:80] or "component"
    path, n = f"{_DIRS[type_]}/{slug}.json", 1
    while path in taken:
        n += 1
        path = f"{_DIRS[type_]}/{slug}-{n}.json"
    taken.add(path)
    return path


def pack(info: SolutionInfo, components: Sequence[tuple[str, Doc]], dependencies: Sequence[Dependency]) -> bytes:
    taken: set[str] = set()
    entries = [(ComponentEntry.model_validate({"type": t, "name": doc_name(d),
                                               "file": _file_name(t, doc_name(d), taken)}), d)
               for t, d in components]
    manifest = Manifest(schema_version=SCHEMA_VERSION, solution=info, components=[e for e, _ in entries],
                        dependencies=list(dependencies),
                        exported_at=datetime.now(UTC).isoformat().replace("+00:00", "Z"))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(MANIFEST_NAME, manifest.model_dump_json(indent=2, exclude_none=True))
        for entry, doc in entries:
            zf.writestr(entry.file, doc.model_dump_json(indent=2, exclude_none=True))
    return buf.getvalue()


def _too_large(detail: str) -> Malformed:
    return Malformed(detail, code="zip_too_large", limits={
        "archive_bytes": MAX_ARCHIVE_BYTES, "entries": MAX_ENTRIES, "entry_bytes": MAX_ENTRY_BYTES,
        "total_bytes": MAX_TOTAL_BYTES, "compression_ratio": MAX_RATIO})


def _check_entries(infos: list[zipfile.ZipInfo]) -> None:
    if len(infos) > MAX_ENTRIES:
        raise _too_large(f"the zip holds more than {MAX_ENTRIES} entries")
    seen: set[str] = set()
    total = 0
    for index, info in enumerate(infos):
        name = info.orig_filename
        parts = name.split("/")
        if (not name or name.startswith("/") or "\\" in name or "\x00" in name or _DRIVE.match(name)
                or ".." in parts or name in seen or stat.S_ISLNK(info.external_attr >> 16)):
            raise Malformed(f"entry {index} of the zip has an unsafe name (absolute, '..', backslash, link or "
                            "duplicate); nothing was imported", code="unsafe_zip_entry", entry=index)
        seen.add(name)
        if info.flag_bits & 0x1:
            raise Malformed(f"entry {index} of the zip is encrypted", code="encrypted_zip_entry", entry=index)
        if info.file_size > MAX_ENTRY_BYTES:
            raise _too_large(f"entry {index} would inflate beyond {MAX_ENTRY_BYTES} bytes")
        if info.file_size > RATIO_FLOOR and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise _too_large(f"entry {index} inflates more than {MAX_RATIO} times: refused as a zip bomb")
        total += info.file_size
        if total > MAX_TOTAL_BYTES:
            raise _too_large(f"the zip would inflate beyond {MAX_TOTAL_BYTES} bytes")


class _Reader:
    """Reads entries with a byte budget, whatever sizes the archive declares."""

    def __init__(self, zf: zipfile.ZipFile) -> None:
        self.zf = zf
        self.budget = MAX_TOTAL_BYTES

    def read(self, info: zipfile.ZipInfo) -> bytes:
        limit = min(MAX_ENTRY_BYTES, self.budget)
        try:
            with self.zf.open(info) as fh:
                data = fh.read(limit + 1)
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, ValueError):
            raise Malformed("an entry of the zip is damaged or uses an unsupported compression",
                            code="corrupt_zip") from None
        if len(data) > limit:
            raise _too_large("an entry inflates beyond the size limits")
        self.budget -= len(data)
        return data


def unpack(data: bytes) -> Package:
    if len(data) > MAX_ARCHIVE_BYTES:
        raise _too_large(f"the zip is larger than {MAX_ARCHIVE_BYTES} bytes")
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError):
        raise Malformed("the file is not a zip archive", code="not_a_zip") from None
    with zf:
        infos = zf.infolist()
        _check_entries(infos)
        by_name = {i.orig_filename: i for i in infos if not i.is_dir()}
        reader = _Reader(zf)
        if MANIFEST_NAME not in by_name:
            raise RuleViolation("the zip has no manifest.json at its root", code="missing_manifest")
        manifest = parse_manifest(reader.read(by_name[MANIFEST_NAME]))
        components: list[tuple[ComponentEntry, Doc]] = []
        for entry in manifest.components:
            info = by_name.get(entry.file)
            if info is None or entry.file == MANIFEST_NAME:
                raise RuleViolation(f"the manifest lists {entry.type} {entry.name!r} but the zip lacks its file",
                                    code="invalid_manifest", component={"type": entry.type, "name": entry.name})
            components.append((entry, parse_doc(entry, reader.read(info))))
        unlisted = set(by_name) - {MANIFEST_NAME} - {e.file for e in manifest.components}
        if unlisted:
            raise RuleViolation(f"the zip holds {len(unlisted)} file(s) the manifest does not list",
                                code="invalid_manifest")
        return Package(manifest=manifest, components=components)
