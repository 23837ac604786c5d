"""The reference wallet service: one small program, seven roles chosen by ``SERVICE_NAME`` (user,
account, transaction, payment, notification, compliance, api-gateway), so that the platform's
examples run real pods. HTTP API on ``PORT``, Prometheus metrics on ``METRICS_PORT``."""
