"""The Prometheus client adapter: one range query (in chunks Prometheus accepts) with a timeout, and
every failure mapped to a named ``demand.Trouble``. It never raises for Prometheus being unwell."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

import requests
from prometheus_api_client import PrometheusConnect
from prometheus_api_client.exceptions import PrometheusApiClientException
from urllib3.util.retry import Retry

from walletplatform.forecast import series
from walletplatform.scaling import demand

# Prometheus refuses range answers above 11,000 points per series; stay well under it.
MAX_POINTS = 10_000
HTTP_STATUS = re.compile(r"HTTP Status Code (\d{3})")
UNAVAILABLE_STATUS = frozenset({502, 503, 504})


def prometheus_error(text: str) -> str:
    """``: <errorType>: <error>`` when ``text`` holds Prometheus's own JSON error answer (a PromQL parse
    error is worth showing), else nothing: any other body is the server's to choose and is never
    copied into status, events or logs."""
    found = re.search(r"\(b'(\{.*\})'\)\s*$", text, re.DOTALL)
    if not found:
        return ""
    try:
        answer = json.loads(found[1].encode().decode("unicode_escape"))
    except (ValueError, UnicodeDecodeError):
        return ""
    if not isinstance(answer, dict) or answer.get("status") != "error":
        return ""
    kind, error = answer.get("errorType"), answer.get("error")
    if not (isinstance(kind, str) and isinstance(error, str) and re.fullmatch(r"[a-z_]{1,40}", kind)):
        return ""
    return f": {kind}: {error[:200]}"


@dataclasses.dataclass(frozen=True)
class Credentials:
    """A bearer token, or a user name and password. ``repr`` never shows them."""

    token: str | None = dataclasses.field(default=None, repr=False)
    username: str | None = dataclasses.field(default=None, repr=False)
    password: str | None = dataclasses.field(default=None, repr=False)


class Prometheus:
    def __init__(self, url: str, timeout_seconds: float, credentials: Credentials | None = None) -> None:
        self.url = url
        self.timeout = timeout_seconds
        # One attempt per query, the read timeout raised as such: the engine tries again at its next tick
        # and holds the last good floor meanwhile. The library's default (3 retries with backoff) made
        # one hung Prometheus block the scaling loop for 4 timeouts plus backoff and report it as
        # unreachable, and a 503 take 4 requests and 6 s.
        retry = Retry(total=0, read=False, raise_on_status=False)
        headers = {"Authorization": f"Bearer {credentials.token}"} if credentials and credentials.token else None
        auth = (credentials.username, credentials.password) if credentials and credentials.username else None
        self.connection = PrometheusConnect(
            url=url, headers=headers, auth=auth, disable_ssl=False, timeout=timeout_seconds, retry=retry
        )
        self.queries = 0

    def fetch_range(
        self, query: str, start: float, end: float, step: float
    ) -> Sequence[Mapping[str, object]] | demand.Trouble:
        """The matrix answer for [start, end] (epoch seconds), or the named trouble."""
        result: list[Mapping[str, object]] = []
        chunk = MAX_POINTS * step
        at = start
        while at <= end:
            until = min(end, at + chunk - step)
            self.queries += 1
            try:
                part = self.connection.custom_query_range(
                    query,
                    datetime.fromtimestamp(at, UTC),
                    datetime.fromtimestamp(until, UTC),
                    f"{int(step)}s",
                    timeout=self.timeout,
                )
            except requests.Timeout:
                return demand.Trouble("timeout", f"{self.url} did not answer within {self.timeout:g}s")
            except requests.ConnectionError as exc:
                return demand.Trouble("unavailable", f"{self.url} is unreachable ({type(exc).__name__})")
            except PrometheusApiClientException as exc:
                # Only the status code: the answer's body is the server's to choose (the URL may be
                # anyone's), and it would end up in conditions and events.
                code = HTTP_STATUS.match(str(exc))
                if code and int(code[1]) in UNAVAILABLE_STATUS:  # a proxy with no upstream, or Prometheus starting
                    return demand.Trouble("unavailable", f"{self.url} answered HTTP {code[1]}")
                answered = f"HTTP {code[1]}" if code else "an error"
                return demand.Trouble("error", f"{self.url} answered {answered}{prometheus_error(str(exc))}")
            except (requests.RequestException, ValueError, KeyError) as exc:
                return demand.Trouble("error", f"bad answer from {self.url} ({type(exc).__name__})")
            result.extend(part)
            at = until + step
        return result

    def fetch_history(self, query: str, lookback: float, step: float, now: float) -> series.Series | demand.Trouble:
        """Demand history over the lookback ending at ``now``, on a regular grid (gaps are NaN)."""
        end = now - now % step
        answer = self.fetch_range(query, end - lookback, end, step)
        if isinstance(answer, demand.Trouble):
            return answer
        return demand.parse_matrix(answer, step)
