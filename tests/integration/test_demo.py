"""The README's main command, as CI runs it: ``walletctl demo --exit-when-ready`` starts everything,
prints the summary, exits 0 once the platform is reconciled and leaves no process behind."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration


def test_demo_exits_zero_once_reconciled_and_tears_down(tmp_path: pathlib.Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "walletplatform.cli.main", "demo", "--exit-when-ready", "--workdir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "Reconciled  True   Applied: all 47 objects applied" in out
    assert "wallet-dev-transaction" in out and "wallet-scaler" in out
    assert "PrometheusHealthy: True" in out and "predictive:" in out
    leftovers = subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True, text=True, check=False)
    assert leftovers.stdout.strip() == "", "demo processes outlived it"
