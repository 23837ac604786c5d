"""Drift repair is debounced per platform: a burst of child events is one reconcile, due once the
burst has been quiet for Drift.QUIET seconds, or Drift.LONGEST after its first event at the latest."""

from __future__ import annotations

import pytest
from walletplatform.controller import handlers


def test_a_burst_of_events_is_one_pass_once_quiet_or_at_the_latest_after_longest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = {"now": 100.0}
    monkeypatch.setattr(handlers.time, "monotonic", lambda: clock["now"])
    drift = handlers.Drift()
    drift.note("ns", "a")
    clock["now"] += 0.2
    drift.note("ns", "a")  # the same burst
    drift.note("ns", "b")
    assert drift.due(clock["now"] + 0.1) == []  # neither quiet for 0.3 s yet
    assert drift.due(clock["now"] + handlers.Drift.QUIET + 0.01) == [("ns", "a"), ("ns", "b")]
    assert drift.due(clock["now"] + 10) == []  # each taken once

    for _ in range(6):  # events every 0.2 s never leave 0.3 s of quiet
        drift.note("ns", "c")
        clock["now"] += 0.2
    assert drift.due(clock["now"]) == [("ns", "c")]  # but 1 s after the first it is due anyway
