"""The statuses of connections and runs: one enum each, whose members are the plain strings stored and served."""

from __future__ import annotations

import json

from credflow.domain.statuses import ConnectionStatus, RunStatus
from credflow.services.access import connection_access
from credflow.services.automation import run_state


def test_a_connection_is_connected_or_says_why_its_runs_get_nothing() -> None:
    assert {s.value for s in ConnectionStatus} == {
        "connected", "access_revoked", "credential_deleted", "secret_unreadable"}


def test_a_run_is_queued_running_succeeded_failed_or_cancelled() -> None:
    assert [s.value for s in RunStatus] == ["queued", "running", "succeeded", "failed", "cancelled"]


def test_a_status_is_its_string_in_comparisons_formatting_and_json() -> None:
    assert RunStatus.SUCCEEDED == "succeeded" and "access_revoked" == ConnectionStatus.ACCESS_REVOKED
    assert f"the run has already {RunStatus.FAILED}" == "the run has already failed"
    assert json.dumps({"status": ConnectionStatus.SECRET_UNREADABLE}) == '{"status": "secret_unreadable"}'
    assert ConnectionStatus("credential_deleted") is ConnectionStatus.CREDENTIAL_DELETED


def test_only_queued_and_running_runs_are_active() -> None:
    assert set(run_state.ACTIVE) == {RunStatus.QUEUED, RunStatus.RUNNING}


def test_sharing_moves_connections_between_access_revoked_and_connected_only() -> None:
    assert (connection_access.ACCESS_REVOKED, connection_access.CONNECTED) == (ConnectionStatus.ACCESS_REVOKED,
                                                                               ConnectionStatus.CONNECTED)
    assert ConnectionStatus.CREDENTIAL_DELETED in connection_access._KEEP
