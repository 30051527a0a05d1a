"""The secure embedded cluster's credentials: a CA, a serving certificate and an admin token.

Why: an API server on a laptop is still an API server: any local process (or, bound beyond
loopback, any host) could create pods through it. So ``kubetrain cluster`` and ``kubetrain up``
require a bearer token, written only into the kubeconfig they emit (mode 0600). kubectl (client-go)
sends a bearer token only over HTTPS, so requiring one means serving TLS: the kubeconfig carries
the CA (``certificate-authority-data``) that signed the serving certificate, for 127.0.0.1, ::1,
localhost and the address the server binds.

With a data directory (``--data DIR``) the credentials are kept in ``DIR/pki`` (``ca.crt``,
``ca.key``, ``token``; keys and token 0600) and reused: a cluster restarted on the same data keeps
the CA and the token its clients already hold (an operator reads its kubeconfig once). The serving
certificate is issued at every start from that CA, so a new bind address is always covered.
Without a data directory they are made per run.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import ssl
from dataclasses import dataclass
from datetime import timedelta

from kubetrain.engine.webhook.certs import (
    CertificateAuthority,
    ServerCertificate,
    load_ca,
    make_ca,
)

__all__ = ["PKI_DIR", "ClusterCredentials", "serving_names"]

PKI_DIR = "pki"
#: The user the admin token authenticates as.
ADMIN_USER = "kubetrain-admin"
_CA_VALIDITY = timedelta(days=3650)
_SERVING_VALIDITY = timedelta(days=365)


def serving_names(host: str) -> tuple[list[str], list[str]]:
    """(DNS names, IP addresses) the serving certificate covers for a server bound to ``host``:
    always the loopback names; ``host`` itself when it is a specific address or name."""
    dns, ips = ["localhost"], ["127.0.0.1", "::1"]
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        if host and host not in dns:
            dns.append(host)
    else:
        if not ip.is_unspecified and str(ip) not in ips:
            ips.append(str(ip))
    return dns, ips


@dataclass(frozen=True, slots=True)
class ClusterCredentials:
    """What clients need (``ca_pem``, ``token``) and what the server serves (``serving``)."""

    ca_pem: bytes
    serving: ServerCertificate
    token: str

    @classmethod
    def load_or_create(cls, *, host: str, data_dir: str | None = None) -> ClusterCredentials:
        """Reuse the CA and token kept under ``data_dir`` (made there on first use), or make
        fresh ones when ``data_dir`` is None; issue a serving certificate for ``host``."""
        if data_dir is None:
            ca, token = make_ca("kubetrain-cluster-ca", validity=_CA_VALIDITY), _new_token()
        else:
            ca, token = _kept(os.path.join(data_dir, PKI_DIR))
        dns, ips = serving_names(host)
        serving = ca.issue_server_cert(dns_names=dns, ip_addresses=ips, validity=_SERVING_VALIDITY)
        return cls(ca_pem=ca.cert_pem, serving=serving, token=token)

    def ssl_context(self) -> ssl.SSLContext:
        """The server side: this serving certificate, TLS 1.2 or newer only."""
        return self.serving.ssl_context()


def _new_token() -> str:
    return secrets.token_urlsafe(32)


def _kept(pki: str) -> tuple[CertificateAuthority, str]:
    os.makedirs(pki, mode=0o700, exist_ok=True)
    paths = {name: os.path.join(pki, name) for name in ("ca.crt", "ca.key", "token")}
    if all(os.path.exists(p) for p in paths.values()):
        with open(paths["ca.crt"], "rb") as crt, open(paths["ca.key"], "rb") as key:
            ca = load_ca(crt.read(), key.read())
        with open(paths["token"], encoding="utf-8") as fh:
            return ca, fh.read().strip()
    ca, token = make_ca("kubetrain-cluster-ca", validity=_CA_VALIDITY), _new_token()
    _write(paths["ca.crt"], ca.cert_pem, 0o644)
    _write(paths["ca.key"], ca.key_pem, 0o600)
    _write(paths["token"], token.encode(), 0o600)
    return ca, token


def _write(path: str, data: bytes, mode: int) -> None:
    tmp = f"{path}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)
