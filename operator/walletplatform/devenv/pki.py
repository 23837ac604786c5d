"""Throwaway certificate authorities for the local node (openssl): the cluster CA that signs the client
certificate kube-apiserver presents to the kubelet and the serving certificates of the kubelet and
metrics-server, and the front-proxy CA of the aggregation layer. Used by devenv.controlplane, kubelet
and metrics_server when a node runs."""

from __future__ import annotations

import pathlib
import subprocess


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def ensure_ca(folder: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path]:
    """(ca.crt, ca.key) in ``folder``, made once."""
    folder.mkdir(parents=True, exist_ok=True)
    crt, key = folder / "ca.crt", folder / "ca.key"
    if not crt.exists():
        _openssl(
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30", "-subj", "/CN=wallet-local-ca",
            "-keyout", str(key), "-out", str(crt),
        )  # fmt: skip
    return crt, key


def client_certificate(folder: pathlib.Path, name: str, subject: str) -> tuple[pathlib.Path, pathlib.Path]:
    """A client certificate ``name``.crt/.key signed by the folder's CA, for ``subject`` (e.g. /CN=x/O=y)."""
    ca_crt, ca_key = ensure_ca(folder)
    crt, key, csr = folder / f"{name}.crt", folder / f"{name}.key", folder / f"{name}.csr"
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", subject, "-keyout", str(key), "-out", str(csr))
    _openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(ca_crt), "-CAkey", str(ca_key), "-CAcreateserial",
        "-days", "30", "-out", str(crt),
    )  # fmt: skip
    return crt, key


def serving_certificate(
    folder: pathlib.Path, name: str, ips: list[str], dns: list[str]
) -> tuple[pathlib.Path, pathlib.Path]:
    """A serving certificate ``name``.crt/.key for ``ips`` and ``dns`` names, signed by the folder's CA."""
    ca_crt, ca_key = ensure_ca(folder)
    crt, key, csr, ext = (folder / f"{name}.{suffix}" for suffix in ("crt", "key", "csr", "ext"))
    sans = ",".join([*(f"IP:{ip}" for ip in ips), *(f"DNS:{d}" for d in dns)])
    ext.write_text(f"subjectAltName={sans}\nextendedKeyUsage=serverAuth\n")
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}", "-keyout", str(key), "-out", str(csr))
    _openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(ca_crt), "-CAkey", str(ca_key), "-CAcreateserial",
        "-days", "30", "-extfile", str(ext), "-out", str(crt),
    )  # fmt: skip
    return crt, key
