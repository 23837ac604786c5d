"""Forecasters of demand: pure functions of a regular time series, one module each, behind the small
``Forecaster`` protocol in ``walletplatform.forecast.base``; ``registry.FORECASTERS`` picks one by name."""
