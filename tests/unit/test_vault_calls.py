"""Every call to a vault: single flight (callers asking for the same thing at once share one call) and a
per-store budget that honours 429 and Retry-After."""

from __future__ import annotations

import threading
import time
from collections import Counter
from types import SimpleNamespace
from typing import Any

import pytest

from credflow.services.secrets import cache
from credflow.stores.base import DEFAULT_RETRY_AFTER_SECONDS, Throttled

FOLLOWERS = 7


class _Watched(cache._Call):
    """A call whose followers can be counted while they wait for the leader."""

    waiting = 0
    lock = threading.Lock()

    def __init__(self) -> None:
        super().__init__()
        outer = self

        class Done(threading.Event):
            def wait(self, timeout: float | None = None) -> bool:
                with outer.lock:
                    type(outer).waiting += 1
                return super().wait(timeout)

        self.done = Done()


@pytest.fixture
def watched(monkeypatch: pytest.MonkeyPatch) -> type[_Watched]:
    _Watched.waiting = 0
    monkeypatch.setattr(cache, "_Call", _Watched)
    return _Watched


def _wait_for(condition: Any, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


def _together(flights: cache.Flights, key: tuple[Any, ...], leader_fn: Any, followers: int
              ) -> list[tuple[str, Any]]:
    """The leader calls ``leader_fn``; ``followers`` more callers ask for ``key`` while it runs."""
    outcomes: list[tuple[str, Any]] = []

    def ask() -> None:
        try:
            outcomes.append(("value", flights.do(key, leader_fn)))
        except Exception as exc:  # noqa: BLE001 - the outcome is what the test looks at
            outcomes.append(("error", exc))

    threads = [threading.Thread(target=ask) for _ in range(followers + 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    return outcomes


def test_callers_asking_for_the_same_thing_at_once_share_one_call(watched: type[_Watched]) -> None:
    flights, calls = cache.Flights(), Counter[str]()

    def read() -> str:
        calls["read"] += 1
        _wait_for(lambda: watched.waiting == FOLLOWERS)  # every other caller joined this call
        return "v7"

    outcomes = _together(flights, ("read", "store", "db", None), read, FOLLOWERS)
    assert calls["read"] == 1
    assert outcomes == [("value", "v7")] * (FOLLOWERS + 1)


def test_a_failed_call_fails_every_caller_that_shared_it(watched: type[_Watched]) -> None:
    flights, calls = cache.Flights(), Counter[str]()
    boom = Throttled("the vault says slow down", retry_after=3.0)

    def read() -> str:
        calls["read"] += 1
        _wait_for(lambda: watched.waiting == FOLLOWERS)
        raise boom

    outcomes = _together(flights, ("read", "store", "db", None), read, FOLLOWERS)
    assert calls["read"] == 1 and outcomes == [("error", boom)] * (FOLLOWERS + 1)


def test_a_finished_call_is_not_remembered_and_other_keys_do_not_share() -> None:
    flights, calls = cache.Flights(), Counter[tuple[str, ...]]()

    def read(key: tuple[str, ...]) -> Any:
        calls[key] += 1
        return calls[key]

    assert flights.do(("a",), lambda: read(("a",))) == 1
    assert flights.do(("a",), lambda: read(("a",))) == 2
    assert flights.do(("b",), lambda: read(("b",))) == 1


def test_a_store_answers_at_most_its_rate_at_once_then_the_budget_says_when_to_retry() -> None:
    budget = cache.StoreBudget(rate=3)
    for _ in range(3):
        budget.acquire(max_wait=0)
    with pytest.raises(Throttled) as caught:
        budget.acquire(max_wait=0)
    assert 0 < (caught.value.retry_after or 0) <= 1 / 3


def test_the_budget_waits_for_a_token_when_it_may() -> None:
    budget = cache.StoreBudget(rate=50)
    for _ in range(50):
        budget.acquire(max_wait=0)
    started = time.monotonic()
    budget.acquire(max_wait=1.0)  # one token comes back within 1/50 s
    assert time.monotonic() - started < 0.5


def test_a_429_blocks_the_store_until_its_retry_after() -> None:
    budget = cache.StoreBudget(rate=50)
    assert budget.throttled(retry_after=5.0) == 5.0
    with pytest.raises(Throttled) as caught:
        budget.acquire(max_wait=1.0)
    assert 4.0 < (caught.value.retry_after or 0) <= 5.0


def test_without_retry_after_the_back_off_doubles_up_to_a_minute_and_a_success_resets_it() -> None:
    budget = cache.StoreBudget()
    delays = [budget.throttled(None) for _ in range(9)]
    assert delays == [DEFAULT_RETRY_AFTER_SECONDS * 2 ** i for i in range(6)] + [cache.MAX_BACKOFF_SECONDS] * 3
    budget.succeeded()
    assert budget.throttled(None) == DEFAULT_RETRY_AFTER_SECONDS


def _core() -> Any:
    return SimpleNamespace(state={})  # what the vault calls keep on a core: only its state


def test_a_budgeted_call_is_counted_per_store() -> None:
    core = _core()
    state = cache.vault_state(core)
    assert cache._budgeted(core, "s1", lambda: "v1", state.reads) == "v1"
    cache._budgeted(core, "s1", lambda: "v1", state.reads)
    cache._budgeted(core, "s2", lambda: "v2", state.version_checks)
    assert state.reads == Counter({"s1": 2}) and state.version_checks == Counter({"s2": 1})
    assert cache.vault_state(core) is state


def test_a_throttled_store_blocks_its_budget_and_tells_the_caller_when_to_retry() -> None:
    core = _core()
    state = cache.vault_state(core)

    def throttled_read() -> str:
        raise Throttled("429", retry_after=30.0)

    with pytest.raises(Throttled) as caught:
        cache._budgeted(core, "s1", throttled_read, state.reads)
    assert caught.value.retry_after == 30.0
    with pytest.raises(Throttled) as blocked:
        cache._budgeted(core, "s1", lambda: "never read", state.reads)  # no call reaches the vault meanwhile
    assert 29.0 < (blocked.value.retry_after or 0) <= 30.0 and state.reads["s1"] == 1
    assert cache._budgeted(core, "s2", lambda: "v", state.reads) == "v"  # other stores keep their budget


def test_a_store_that_throttles_without_retry_after_gets_the_default_back_off() -> None:
    core = _core()

    def throttled_read() -> str:
        raise Throttled("429", retry_after=None)

    with pytest.raises(Throttled) as caught:
        cache._budgeted(core, "s1", throttled_read, cache.vault_state(core).reads)
    assert caught.value.retry_after == DEFAULT_RETRY_AFTER_SECONDS
