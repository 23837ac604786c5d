"""Backtests: replay a demand trace minute by minute through reactive HPA, HPA with schedules, HPA with
the predictive floor, a naive same-time-last-week floor, a static deployment and an oracle. Pure."""
