"""What the agent reports of a flow's output: masked values, cut to the log budget, timeouts and bad commands."""

from __future__ import annotations

import sys
import threading
import time

import pytest

from credflow.agent.executor import execute, flow_environment
from credflow.domain.masking import contains_any, mask

USER, PASSWORD = "svc-robot", "Pa55-w0rd-Xy!"


def _run(code: str, timeout: float = 30, budget: int = 1_000_000, cancel: threading.Event | None = None
         ) -> tuple[int, str]:
    env = flow_environment(USER, PASSWORD, "run-1", "machine-1")
    got = execute([sys.executable, "-c", code], env, [USER, PASSWORD], timeout, cancel or threading.Event(), budget)
    return got.exit_code, got.log


def test_values_are_masked_inside_text_across_lines_and_on_stderr() -> None:
    code, log = _run("import os, sys\np = os.environ['CREDFLOW_PASSWORD']\n"
                     "print('x' + p + 'y'); print(p[:4]); print(p[4:]); sys.stderr.write(p + '\\n')\n"
                     "print(os.environ['CREDFLOW_USERNAME'], os.environ['CREDFLOW_RUN_ID'])")
    assert code == 0
    assert log == "x***y\n***\n***\n***\n*** run-1\n"


def test_a_huge_output_is_cut_to_the_budget_and_no_part_of_a_value_survives_the_cut() -> None:
    code, log = _run("import os, sys\np = os.environ['CREDFLOW_PASSWORD']\n"
                     "for i in range(40000): sys.stdout.write(p[:7] + '\\n' + p[7:] + ' line %d\\n' % i)",
                     budget=200_000)
    assert code == 0
    assert len(log.encode()) <= 200_000 and "left out" in log
    assert not contains_any(log, [PASSWORD]) and "Pa55" not in log and "w0rd" not in log
    assert log.rstrip().endswith("line 39999")


def test_a_flow_past_its_timeout_is_stopped() -> None:
    started = time.monotonic()
    code, log = _run("import time; print('started', flush=True); time.sleep(60)", timeout=1)
    assert time.monotonic() - started < 10
    assert code != 0 and "started" in log and "timeout" in log


def test_a_cancelled_flow_is_stopped() -> None:
    cancel = threading.Event()
    threading.Timer(0.5, cancel.set).start()
    code, log = _run("import time; time.sleep(60)", cancel=cancel)
    assert code != 0 and "cancelled" in log


def test_a_command_that_does_not_exist_fails_with_127() -> None:
    env = flow_environment(USER, PASSWORD, "run-1", "machine-1")
    got = execute(["/no/such/program"], env, [USER, PASSWORD], 10, threading.Event(), 10_000)
    assert got.exit_code == 127 and "could not be started" in got.log


def test_the_flow_does_not_inherit_credflow_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CREDFLOW_MASTER_KEY", "must-not-leak")
    env = flow_environment(USER, PASSWORD, "run-1", "machine-1")
    assert "CREDFLOW_MASTER_KEY" not in env and env["CREDFLOW_PASSWORD"] == PASSWORD


def test_masking_keeps_the_shape_of_the_log() -> None:
    assert mask("a Pa55-w0rd-Xy! b\r\nPa55-\r\nw0rd-Xy!c", [PASSWORD]) == "a *** b\r\n***\r\n***c"
    assert mask("nothing to hide", [PASSWORD, ""]) == "nothing to hide"
