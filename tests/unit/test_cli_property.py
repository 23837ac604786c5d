"""Property: whatever file a user hands walletctl (generated hostile YAML for ``validate``/``render``,
generated CSV traces for ``backtest``), it answers with exit 0, or exit 2 and a message naming the
problem; never a traceback, a hang or unbounded memory. Each example runs in process, under
hypothesis' deadline, so a hang or a runaway allocation fails the test."""

from __future__ import annotations

import contextlib
import io
import json
import pathlib
import tempfile
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from walletplatform.cli import main

HOSTILE = settings(
    max_examples=60,
    deadline=timedelta(seconds=20),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.sampled_from(["9999999999d", "0s", "-1m", "09:00:30", "latest", "ghcr.io/x:latest", "Europe/Nowhere", "3"]),
)
documents = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=25,
)
field_names = st.sampled_from(
    ["services", "redis", "postgres", "monitoring", "retainData", "environment", "predictive", "schedules",
     "targets", "platformRef", "interval", "lookback", "leadTime", "step", "query", "minReplicas"]
)  # fmt: skip
specs = st.dictionaries(field_names, documents, max_size=6)


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main.main(list(argv))
    return code, out.getvalue(), err.getvalue()


def check(code: int, err: str) -> None:
    assert code in (0, 2), (code, err)
    assert "Traceback" not in err
    if code == 2:
        assert err.strip(), "exit 2 without a message"


@HOSTILE
@given(kind=st.sampled_from(["WalletPlatform", "ScalingPolicy"]), spec=specs, name=st.text(max_size=50))
def test_generated_resources_are_validated_or_refused_with_a_message(kind: str, spec: dict, name: str) -> None:
    doc = {"apiVersion": "wallet.platform.io/v1alpha1", "kind": kind, "metadata": {"name": name}, "spec": spec}
    with tempfile.TemporaryDirectory() as folder:
        path = pathlib.Path(folder) / "doc.yaml"
        path.write_text(json.dumps(doc))  # JSON is YAML; json.dumps writes NaN/Infinity as YAML would not
        for command in (("validate", "-f", str(path)), ("render", "-f", str(path))):
            check(*run(*command)[::2])


@HOSTILE
@given(raw=st.binary(max_size=400))
def test_arbitrary_bytes_are_refused_with_a_message(raw: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = pathlib.Path(folder) / "doc.yaml"
        path.write_bytes(raw)
        check(*run("validate", "-f", str(path))[::2])
        trace = pathlib.Path(folder) / "trace.csv"
        trace.write_bytes(raw)
        check(*run("backtest", "--trace", str(trace), "--peak-replicas", "5", "--json")[::2])


timestamps = st.one_of(
    st.integers(min_value=-(10**12), max_value=10**14),  # epoch seconds or milliseconds, far out of range too
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["2024-03-31T02:30:00", "2040-01-01T00:00:00Z", "0", "yesterday", ""]),
)
values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.integers(), st.sampled_from(["", "NA", "-1", "x"])
)


@HOSTILE
@given(
    rows=st.lists(st.tuples(timestamps, values), min_size=0, max_size=30),
    regular=st.integers(min_value=0, max_value=3),
)
def test_generated_traces_are_replayed_or_refused_with_a_message(
    rows: list[tuple[object, object]], regular: int
) -> None:
    # Optionally a week and a day of regular minutes around the hostile rows, so some examples get past
    # the loader into the replay.
    base = 1_700_000_000
    lines = [f"{base + 60 * i},{5 + i % 7}" for i in range(regular and 8 * 1440 + 30)]
    lines += [f"{t},{v}" for t, v in rows]
    with tempfile.TemporaryDirectory() as folder:
        trace = pathlib.Path(folder) / "trace.csv"
        trace.write_text("\n".join(lines))
        code, out, err = run("backtest", "--trace", str(trace), "--peak-replicas", "5", "--json")
        check(code, err)
        if code == 0:
            json.loads(out, parse_constant=pytest.fail)  # strict JSON: no NaN or Infinity
