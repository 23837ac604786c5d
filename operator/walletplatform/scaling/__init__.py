"""The scaling engine's decisions: pure functions of a policy, demand history, live state and ``now``.
The operator's scaler (``walletplatform.reconcile.scaler``) fetches and applies; nothing here does I/O."""
