"""walletctl: the command-line adapter over the core (render, validate, crds) and the adapters
(demo, explain, backtest)."""
