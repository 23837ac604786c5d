"""What the demo's summary says about pods the scheduler could not place (pure: pods in, lines out)."""

from __future__ import annotations

from typing import Any

from walletplatform.devenv import demo

# As the API server had it in the demo CI failed on: the third Postgres instance's join Job's pod.
FULL_NODE = (
    "0/1 nodes are available: 1 Insufficient cpu. no new claims to deallocate, preemption: 0/1 nodes are"
    " available: 1 No preemption victims found for incoming pod."
)


def pod(name: str, phase: str, scheduled: str | None, message: str = "") -> dict[str, Any]:
    conditions = [] if scheduled is None else [{"type": "PodScheduled", "status": scheduled, "message": message}]
    return {"metadata": {"name": name}, "status": {"phase": phase, "conditions": conditions}}


def test_a_pod_the_scheduler_could_not_place_is_named_with_the_reason() -> None:
    pods = [
        pod("wallet-dev-pg-1", "Running", "True"),
        pod("wallet-dev-pg-2-join-khd9l", "Pending", "False", FULL_NODE),
        pod("wallet-dev-user-7585888c57-b7jnh", "Pending", "True"),  # placed, its containers starting
        pod("wallet-dev-account-769ddcb9c9-5qf29", "Pending", None),  # not tried yet
    ]
    assert demo.unscheduled(pods) == [f"pod wallet-dev-pg-2-join-khd9l not scheduled: {FULL_NODE}"]


def test_nothing_is_said_when_every_pod_is_placed() -> None:
    assert demo.unscheduled([pod("wallet-dev-pg-1", "Running", "True"), {"metadata": {"name": "bare"}}]) == []
