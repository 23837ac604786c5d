"""The operator's settings and the scaling report: pure parts of the adapters."""

from __future__ import annotations

import pathlib
from datetime import UTC, datetime

import pytest
from walletplatform.controller import settings
from walletplatform.models import scaling
from walletplatform.scaling import decide, predictive, report


def test_settings_from_env_and_bad_values_name_the_variable() -> None:
    parsed = settings.Settings.from_env(
        {"WALLET_RESYNC_SECONDS": "5", "WALLET_NAMESPACES": "a,b", "KUBECONFIG": "/k", "WALLET_IDENTITY": "x"}
    )
    assert (parsed.resync_seconds, parsed.namespaces, parsed.kubeconfig, parsed.identity) == (
        5.0,
        ("a", "b"),
        pathlib.Path("/k"),
        "x",
    )
    assert settings.Settings.from_env({}).kubeconfig is None
    with pytest.raises(ValueError, match="WALLET_LEASE_SECONDS: 'soon' is not a number"):
        settings.Settings.from_env({"WALLET_LEASE_SECONDS": "soon"})
    with pytest.raises(ValueError, match="WALLET_RESYNC_SECONDS: '0' must be positive"):
        settings.Settings.from_env({"WALLET_RESYNC_SECONDS": "0"})


def test_memory_survives_a_restart_through_status() -> None:
    at = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
    memory = decide.Memory(floor=7, decided_at=at, last_good_floor=7, last_good_at=at)
    decision = decide.Decision("transaction", 7, 7, "schedule", ("schedule business-hours: 7",), True, memory)
    entry = report.render_service_status(decision)
    assert report.memory_from_status(entry) == memory
    assert report.memory_from_status(None) == decide.Memory()
    status = scaling.ScalingPolicyStatus(mode="Auto", services=[entry], last_decision=at)
    table = report.render_table(status)
    assert table.splitlines()[2].split()[:4] == ["transaction", "7", "7", "schedule"]
    assert "  - schedule business-hours: 7" in table


def test_explain_table_shows_the_replayed_excess_and_shortfall() -> None:
    at = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
    forecast = predictive.Forecast(9, True, "peak 640 expected needs 9", 640.0, at.timestamp() + 300, 0.12, 0.3)
    decision = decide.Decision("payment", 9, 9, "predictive", ("predictive: ...",), True, decide.Memory(), forecast)
    entry = report.render_service_status(decision)
    assert (entry.error_ratio, entry.shortfall_ratio) == (0.12, 0.3)
    lines = report.render_table(scaling.ScalingPolicyStatus(mode="Auto", services=[entry])).splitlines()
    assert lines[1].split()[-3:] == ["EXCESS", "SHORT", "PREDICTIVE"]
    assert lines[2].split()[-3:] == ["0.12", "0.30", "applied"]
