"""The SQLite database's disk fills up: writes answer 507 ``storage_full`` (never a 500), reads keep working, the
file stays sound (``PRAGMA integrity_check``) and writes work again once space is freed, with no restart.

The disk is a real one: a small tmpfs mounted for the test (root only; the drill is skipped where mounting is
not allowed)."""

from __future__ import annotations

import errno
import os
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import problem
from tests.faults.conftest import audit_holds, serve


@contextmanager
def small_disk(size: str = "8m") -> Iterator[Path]:
    where = Path(tempfile.mkdtemp(prefix="credflow-disk-"))
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(where)],
                             capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        where.rmdir()
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        if subprocess.run(["umount", str(where)], capture_output=True, check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(where)], capture_output=True, check=False)
        where.rmdir()


def fill(path: Path) -> None:
    """Write zeros to ``path`` until the disk refuses another byte."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (1 << 20, 4096, 1):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)


def test_a_full_disk_refuses_writes_with_507_keeps_reads_and_the_file_sound(tmp_path: Path) -> None:
    with small_disk() as disk, serve(tmp_path / "data", tmp_path / "server.log",
                                     CREDFLOW_DATABASE_URL=f"sqlite:///{disk / 'credflow.db'}") as (admin, proc):
        admin.store("vault")
        admin.secret("vault", "robot", "Before-Pa55word!")
        admin.text_var("robot_user", "robot@corp.example")
        filler = disk / "filler"
        fill(filler)

        # Writes: each refused with 507 storage_full (the WAL may still hold a few in pages it already has).
        answers = [admin.post(admin.e("/environment-variables"), {"schema_name": f"v{i}", "type": "text",
                                                                   "value": "x" * 2000}) for i in range(20)]
        refused = [r for r in answers if r.status_code != 201]
        assert refused and all(problem(r, 507, "storage_full") for r in refused)
        assert answers.index(refused[0]) < 5 and answers[-1].status_code == 507
        problem(admin.put(admin.e("/secret-stores/vault/secrets/robot"), {"value": "During-Pa55word!"}), 507,
                "storage_full")
        # Reads keep working.
        assert admin.ok(admin.get(admin.e("/environment-variables/robot_user")))["value"] == "robot@corp.example"
        assert admin.ok(admin.get(admin.e("/secret-stores/vault/secrets")))["items"]
        assert admin.get("/healthz").status_code == 200

        filler.unlink()  # space again: the same process takes writes at once
        admin.ok(admin.post(admin.e("/environment-variables"), {"schema_name": "after", "type": "text",
                                                                "value": "y"}), 201)
        assert admin.secret("vault", "robot", "After-Pa55word!")["version"] == "2"
        with sqlite3.connect(disk / "credflow.db") as db:
            assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert proc.poll() is None
        assert audit_holds(tmp_path / "data", CREDFLOW_DATABASE_URL=f"sqlite:///{disk / 'credflow.db'}")
