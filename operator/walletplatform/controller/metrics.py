"""The operator's Prometheus metrics, defined once. Served on ``Settings.metrics_port`` by ``main``."""

from __future__ import annotations

import typing

import prometheus_client

from walletplatform.scaling import demand

PREFIX = "wallet_operator"

RECONCILE_SECONDS = prometheus_client.Histogram(
    f"{PREFIX}_reconcile_duration_seconds",
    "Time one WalletPlatform reconcile took.",
    ["trigger"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
RECONCILE_ERRORS = prometheus_client.Counter(
    f"{PREFIX}_reconcile_errors_total", "Reconciles that ended in an error, by reason.", ["reason"]
)
OBJECTS_APPLIED = prometheus_client.Counter(
    f"{PREFIX}_objects_applied_total", "Child objects written with server-side apply, by kind.", ["kind"]
)
OBJECTS_PRUNED = prometheus_client.Counter(
    f"{PREFIX}_objects_pruned_total", "Child objects deleted because the spec no longer renders them.", ["kind"]
)
SCALING_DECISIONS = prometheus_client.Counter(
    f"{PREFIX}_scaling_decisions_total", "Scaling decisions, by the input that won.", ["source"]
)
SCALING_FLOOR = prometheus_client.Gauge(
    f"{PREFIX}_scaling_floor", "Replica floor decided for a service.", ["namespace", "policy", "service"]
)
FORECAST_DEMAND = prometheus_client.Gauge(
    f"{PREFIX}_forecast_demand",
    "Highest forecast demand in the coming window.",
    ["namespace", "policy", "service"],
)
FORECAST_ERROR_RATIO = prometheus_client.Gauge(
    f"{PREFIX}_forecast_error_ratio",
    "Forecaster's recent replay error.",
    ["namespace", "policy", "service"],
)
PROMETHEUS_TROUBLE = prometheus_client.Counter(
    f"{PREFIX}_prometheus_trouble_total", "Demand queries that failed, by named case.", ["kind"]
)
LEADER = prometheus_client.Gauge(f"{PREFIX}_leader", "1 while this process holds the leader lease.")
LOOP_ERRORS = prometheus_client.Counter(
    f"{PREFIX}_loop_errors_total",
    "Iterations of a background loop that failed (logged, backed off, retried).",
    ["loop"],
)
LOOP_ITERATIONS = prometheus_client.Counter(
    f"{PREFIX}_loop_iterations_total", "Iterations a background loop completed, failed or not.", ["loop"]
)
LEASE_ERRORS = prometheus_client.Counter(
    f"{PREFIX}_lease_errors_total", "Lease renewals or acquisitions that failed on an error.", ["kind"]
)
ADMISSION_REVIEWS = prometheus_client.Counter(
    f"{PREFIX}_admission_reviews_total",
    "Admission reviews the webhook answered, by kind and result (allowed, refused, error).",
    ["kind", "result"],
)

# Every label value known in advance starts at 0, so that the dashboard's and the alerts' queries
# select a series before the first error rather than nothing.
RECONCILE_ERROR_REASONS = ("InvalidSpec", "ApplyFailed", "MissingCRD", "NotOwned")
for _reason in RECONCILE_ERROR_REASONS:
    RECONCILE_ERRORS.labels(_reason)
for _kind in typing.get_args(demand.TroubleKind):
    PROMETHEUS_TROUBLE.labels(_kind)
