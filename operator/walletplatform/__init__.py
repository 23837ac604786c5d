"""The WalletPlatform operator: a pure core (models, catalog, renderer, scaling, forecasting) and thin
adapters around it (Kopf handlers, Pulumi stacks, the walletctl CLI, the Kubernetes and Prometheus
clients)."""

API_GROUP = "wallet.platform.io"
API_VERSION = "v1alpha1"
