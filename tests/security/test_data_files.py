"""The server's data directory is its owner's alone: the directory 0700 and the SQLite database 0600, also when
they existed before with looser modes."""

from __future__ import annotations

import stat
from pathlib import Path

from credflow.services.core import build_core
from credflow.settings import Settings


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_existing_loose_data_files_are_tightened_at_start(tmp_path: Path) -> None:
    data = tmp_path / "data"
    settings = Settings(data_dir=data, bootstrap_token="cfu_files-admin-token-0123456789", run_workers=False)
    build_core(settings).db.engine.dispose()
    db = data / "credflow.db"
    data.chmod(0o755)
    db.chmod(0o644)
    core = build_core(settings)
    try:
        assert _mode(data) == 0o700
        assert _mode(db) == 0o600
        assert all(_mode(p) == 0o600 for p in data.glob("credflow.db-*"))
    finally:
        core.db.engine.dispose()
