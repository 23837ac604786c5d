"""Listen ports for the local control plane, Prometheus and the operator: never from the ephemeral
range that outgoing connections draw their local ports from, never the same port twice."""

from __future__ import annotations

import socket

from walletplatform.devenv import processes


def test_free_ports_are_distinct_bindable_and_below_the_ephemeral_range() -> None:
    ports = [processes.free_port() for _ in range(200)]
    assert len(set(ports)) == len(ports)
    high = min(processes.LISTEN_PORTS[1], processes._ephemeral_start())
    assert all(processes.LISTEN_PORTS[0] <= port < high for port in ports)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", processes.free_port()))
