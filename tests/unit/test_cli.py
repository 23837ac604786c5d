"""walletctl: output on good input, exit status 2 and one line per problem on bad input."""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import yaml
from walletplatform.cli import main

from tests.conftest import DEV_EXAMPLE, INVALID, PROD_EXAMPLE, ROOT


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_render_prints_every_object(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "render", "-f", str(DEV_EXAMPLE))
    assert code == 0 and err == ""
    docs = list(yaml.safe_load_all(out))
    assert len(docs) == 53
    assert docs[0]["kind"] == "ConfigMap"


def test_a_reader_that_goes_away_ends_walletctl_quietly_like_a_shell_tool() -> None:
    # More output than a pipe buffer holds (64 KiB): the write after the reader closed fails.
    command = [sys.executable, "-m", "walletplatform.cli.main", "render", "-f", str(DEV_EXAMPLE)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()  # `walletctl render | true`
        err = proc.stderr.read()
    assert (proc.returncode, err) == (main.EXIT_BROKEN_PIPE, b"")


def test_ctrl_c_ends_a_backtest_and_its_workers_with_one_line(tmp_path: pathlib.Path) -> None:
    rng = np.random.default_rng(2)
    trace = tmp_path / "trace.csv"  # 40 days of minutes: long enough to be interrupted mid-replay
    trace.write_text("".join(f"{60 * m},{v:.2f}\n" for m, v in enumerate(rng.uniform(10, 100, 40 * 1440))))
    command = [sys.executable, "-m", "walletplatform.cli.main", "backtest", "--trace", str(trace)]
    command += ["--peak-replicas", "20", "--jobs", "2", "--json"]
    with subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group, as a shell's foreground job
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # noqa: PLW1509 - before exec only
    ) as proc:
        assert proc.stderr is not None
        workers = _children(proc.pid, seconds=60)  # the replays have started in forked workers
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does: the whole foreground group
        out, err = proc.communicate(timeout=60)
    assert workers
    assert (proc.returncode, out, err) == (main.EXIT_INTERRUPTED, b"", b"walletctl backtest: interrupted\n")
    assert not [pid for pid in workers if pathlib.Path(f"/proc/{pid}").exists()]


def _children(pid: int, seconds: float) -> list[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = [int(c) for c in pathlib.Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
        if found:
            return found
        time.sleep(0.05)
    return []


def test_render_bad_input_no_partial_output(capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path) -> None:
    bad = yaml.safe_load(DEV_EXAMPLE.read_text())
    del bad["spec"]["services"][3]["minReplicas"]  # the catalog's floor (3) applies
    bad["spec"]["services"][3]["maxReplicas"] = 1
    bad["spec"]["services"].append({"name": "ledger"})
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad) + "---\n" + PROD_EXAMPLE.read_text())
    code, out, err = run(capsys, "render", "-f", str(path))
    assert code == 2
    assert out == ""
    assert err.splitlines() == [
        "spec.services[3].maxReplicas: 1 is less than minReplicas 3",
        "spec.services[7].name: 'ledger' is not a catalog service "
        "(known: account, api-gateway, compliance, notification, payment, transaction, user)",
    ]


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_validate_rejects_invalid_fixture(capsys: pytest.CaptureFixture[str], path: pathlib.Path) -> None:
    code, out, err = run(capsys, "validate", "-f", str(path))
    expected = path.read_text().splitlines()[0].removeprefix("# expect: ")
    assert code == 2 and out == ""
    assert any(line.startswith(f"{expected}:") for line in err.splitlines()), err


def test_validate_policy_against_platform(capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path) -> None:
    policy = yaml.safe_load((ROOT / "policies" / "dev" / "transaction-path.yaml").read_text())
    policy["spec"]["services"] = ["transaction", "ledger"]
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(policy))
    code, _, err = run(capsys, "validate", "-f", str(path), "--platform", str(DEV_EXAMPLE))
    assert code == 2
    assert err.strip() == "spec.services[1]: 'ledger' is not a service of platform 'wallet-dev'"


def test_validate_runs_guardrails(capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path) -> None:
    prod = yaml.safe_load(PROD_EXAMPLE.read_text())
    prod["spec"]["postgres"]["instances"] = 2
    prod["spec"]["postgres"]["synchronousReplicas"] = 1
    path = tmp_path / "prod.yaml"
    path.write_text(yaml.safe_dump(prod))
    code, _, err = run(capsys, "validate", "-f", str(path))
    assert code == 2
    assert err.strip() == "Cluster/wallet-prod-pg.spec.instances: 2 is below the 3 instances prod requires"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("spec: [unclosed", "not valid YAML"),
        ("", "contains no documents"),
    ],
    ids=["broken-yaml", "empty"],
)
def test_unreadable_input(
    capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path, content: str, message: str
) -> None:
    path = tmp_path / "x.yaml"
    path.write_text(content)
    code, out, err = run(capsys, "render", "-f", str(path))
    assert (code, out) == (2, "")
    assert message in err


def test_missing_file(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "validate", "-f", "/nonexistent.yaml")
    assert code == 2 and "/nonexistent.yaml: No such file" in err


def test_crds_command(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "crds")
    kinds = [d["spec"]["names"]["kind"] for d in yaml.safe_load_all(out)]
    assert (code, kinds) == (0, ["WalletPlatform", "ScalingPolicy"])


def test_backtest_json_on_a_synthetic_trace(capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path) -> None:
    import json  # noqa: PLC0415

    import numpy as np  # noqa: PLC0415

    minutes = np.arange(9 * 1440)
    demand = 100 + 80 * np.sin(2 * np.pi * minutes / 1440)
    rows = ["timestamp,value"] + [f"{1700000000 + 60 * m},{v:.2f}" for m, v in zip(minutes, demand, strict=True)]
    path = tmp_path / "trace.csv"
    path.write_text("\n".join(rows))
    plot = tmp_path / "plot.png"
    code, out, _ = run(capsys, "backtest", "--trace", str(path), "--peak-replicas", "20", "--json", "--plot", str(plot))
    result = json.loads(out)
    assert code == 0
    assert plot.read_bytes().startswith(b"\x89PNG")
    assert set(result["strategies"]) >= {"reactive", "schedule", "predictive", "static", "oracle"}
    for score in result["strategies"].values():
        assert set(score) >= {"saturated_pct", "replica_hours", "replica_hours_vs_oracle", "actions"}
    assert result["meta"]["minutes_scored"] == 2 * 1440
    assert result["strategies"]["oracle"]["replica_hours_vs_oracle"] == 1.0
    assert result["strategies"]["static"]["saturated_pct"] == 0.0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\xff\xfe\x00binary", "is not UTF-8 text (byte 0xff at offset 0)"),
        ("caf\u00e9: 1\n".encode("latin-1"), "is not UTF-8 text (byte 0xe9 at offset 3)"),
        (b"[" * 100_000, "not valid YAML: nested too deeply"),
        (b"spec: {replicas: " + b"9" * 5000 + b"}\n", "not valid YAML: Exceeds the limit (4300 digits)"),
        (
            b"apiVersion: v1\nkind: WalletPlatform\nkind: ScalingPolicy\n",
            ":3:1: not valid YAML: found duplicate key 'kind'",
        ),
    ],
    ids=["binary", "latin-1", "deep-nesting", "huge-integer", "duplicate-key"],
)
def test_hostile_files_are_refused_with_status_2_and_no_traceback(
    tmp_path: pathlib.Path, content: bytes, message: str
) -> None:
    path = tmp_path / "hostile.yaml"
    path.write_bytes(content)
    result = subprocess.run(
        [sys.executable, "-m", "walletplatform.cli.main", "validate", "-f", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and message in result.stderr and str(path) in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("crds", "-o", "{missing}/crds.yaml"),
        ("backtest", "--trace", "{trace}", "--peak-replicas", "5", "--plot", "{missing}/plot.png"),
    ],
    ids=["crds-output", "backtest-plot"],
)
def test_an_output_into_a_missing_folder_is_refused_before_any_work(
    tmp_path: pathlib.Path, args: tuple[str, ...]
) -> None:
    trace = tmp_path / "trace.csv"
    trace.write_text("".join(f"{1700000000 + 3600 * i},{100 + i % 24}\n" for i in range(24 * 10)))
    missing = tmp_path / "no" / "such"
    argv = [a.format(missing=missing, trace=trace) for a in args]
    result = subprocess.run(
        [sys.executable, "-m", "walletplatform.cli.main", *argv],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2 and result.stdout == ""
    flag = "--output" if args[0] == "crds" else "--plot"
    assert result.stderr.strip() == f"{flag}: folder {missing} does not exist"


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("garbage: [", "while parsing a flow node"),
        ("apiVersion: v1\n", "no current-context"),
        ("current-context: c\ncontexts: []\n", "context 'c' is not in contexts"),
        (
            "current-context: c\ncontexts: [{name: c, context: {cluster: k}}]\nclusters: [{name: k, cluster: {}}]\n",
            "cluster 'k' has no server",
        ),
        (
            "current-context: c\ncontexts: [{name: c, context: {cluster: k, user: u}}]\n"
            "clusters: [{name: k, cluster: {server: 'https://127.0.0.1:1'}}]\n"
            "users: [{name: u, user: {client-certificate-data: Zm9v}}]\n",
            "client certificate without its key",
        ),
        (None, "no such file"),
    ],
)
def test_explain_with_an_unusable_kubeconfig_is_status_2_naming_it(
    capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path, content: str | None, reason: str
) -> None:
    path = tmp_path / "kubeconfig"
    if content is not None:
        path.write_text(content)
    code, out, err = run(capsys, "explain", "p", "-n", "ns", "--kubeconfig", str(path))
    assert code == 2 and out == ""
    assert err.startswith(f"--kubeconfig: {path}: not a usable kubeconfig: ") and reason in err
    assert "Traceback" not in err


def test_explain_against_an_unreachable_server_is_status_1_with_the_reason(
    capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path
) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
                "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "current-context": "c",
            }
        )
    )
    code, _, err = run(capsys, "explain", "p", "-n", "ns", "--kubeconfig", str(path))
    assert code == 1 and err.startswith("cannot read ScalingPolicy ns/p: ") and "Connection refused" in err


def test_validate_with_a_platform_file_refuses_a_policy_for_another_platform(
    capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path
) -> None:
    policy = yaml.safe_load((ROOT / "policies" / "prod" / "gateway.yaml").read_text())
    policy["spec"]["platformRef"] = "nope"
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(policy))
    code, out, err = run(capsys, "validate", "-f", str(path), "--platform", str(PROD_EXAMPLE))
    assert (code, out) == (2, "")
    assert err.startswith(
        f"spec.platformRef: wallet-prod/nope is not a WalletPlatform in {PROD_EXAMPLE} (it has: wallet-prod/wallet-prod)"
    )
    policy["spec"]["platformRef"] = "wallet-prod"
    policy["metadata"]["namespace"] = "elsewhere"  # the operator looks the platform up in the policy's namespace
    path.write_text(yaml.safe_dump(policy))
    code, _, err = run(capsys, "validate", "-f", str(path), "--platform", str(PROD_EXAMPLE))
    assert code == 2 and "elsewhere/wallet-prod is not a WalletPlatform" in err


def test_render_refuses_a_platform_that_breaks_its_environments_guardrails(
    capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path
) -> None:
    doc = yaml.safe_load(PROD_EXAMPLE.read_text())
    doc["spec"]["postgres"]["instances"] = 2
    path = tmp_path / "prod.yaml"
    path.write_text(yaml.safe_dump(doc))
    code, out, err = run(capsys, "render", "-f", str(path))
    assert (code, out) == (2, "")  # nothing rendered, as the operator and the policy pack refuse it
    assert "Cluster/wallet-prod-pg.spec.instances: 2 is below the 3 instances prod requires" in err
