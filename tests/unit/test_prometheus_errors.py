"""What a Prometheus answer may put into status: its HTTP status, and Prometheus's own JSON error (a
PromQL parse error is worth showing); never any other body, which is the server's to choose."""

from __future__ import annotations

import pytest
from walletplatform.clients import prometheus


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (
            """HTTP Status Code 400 (b'{"status":"error","errorType":"bad_data","error":"1:10: parse error"}')""",
            ": bad_data: 1:10: parse error",
        ),
        ("HTTP Status Code 500 (b'<html>internal admin: token=abc</html>')", ""),
        ("""HTTP Status Code 400 (b'{"status":"success","data":{"secret":"abc"}}')""", ""),
        ("""HTTP Status Code 400 (b'{"status":"error","errorType":"<script>","error":"x"}')""", ""),
        ("no body at all", ""),
    ],
)
def test_only_prometheus_error_answers_are_shown(text: str, shown: str) -> None:
    assert prometheus.prometheus_error(text) == shown


def test_a_long_prometheus_error_is_cut() -> None:
    text = "HTTP Status Code 422 (b'" + '{"status":"error","errorType":"execution","error":"' + "x" * 5000 + "\"}')"
    assert prometheus.prometheus_error(text) == ": execution: " + "x" * 200
