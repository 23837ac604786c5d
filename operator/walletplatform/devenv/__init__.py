"""The local development environment: a real control plane (etcd, kube-apiserver,
kube-controller-manager built from Go module sources by hack/toolchain.sh), real Prometheus from
Debian, third-party CRDs from their published sources, and the one-command demo."""
