"""The only layer that talks to servers: the Kubernetes API (server-side apply) and Prometheus."""
