"""A tiny certificate authority for admission webhooks served on 127.0.0.1.

The API server calls webhooks over HTTPS and trusts only ``clientConfig.caBundle``; tests and the
local operator need a CA, a server certificate for ``127.0.0.1`` / ``<svc>.<ns>.svc`` and an
``ssl.SSLContext`` to serve with. Keys are ECDSA P-256 (generated in about a millisecond).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

__all__ = ["CertificateAuthority", "ServerCertificate", "make_ca"]


@dataclass(frozen=True, slots=True)
class ServerCertificate:
    """A PEM certificate chain (leaf first) and its PEM private key."""

    cert_pem: bytes
    key_pem: bytes

    def ssl_context(self) -> ssl.SSLContext:
        """A server-side context serving this certificate (TLS 1.2+)."""
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        # load_cert_chain only reads files: write both to a private temp dir, then remove them.
        with tempfile.TemporaryDirectory(prefix="kubetrain-cert-") as tmp:
            cert_path = os.path.join(tmp, "tls.crt")
            key_path = os.path.join(tmp, "tls.key")
            with open(cert_path, "wb") as fh:
                fh.write(self.cert_pem)
            fd = os.open(key_path, os.O_WRONLY | os.O_CREAT, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(self.key_pem)
            ctx.load_cert_chain(cert_path, key_path)
        return ctx


@dataclass(frozen=True, slots=True)
class CertificateAuthority:
    """A self-signed CA. ``cert_pem`` is what goes into a webhook's ``caBundle`` (base64)."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def cert_pem(self) -> bytes:
        """The CA certificate, PEM encoded."""
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def issue_server_cert(
        self,
        *,
        dns_names: Sequence[str] = ("localhost",),
        ip_addresses: Sequence[str] = ("127.0.0.1",),
        valid_days: int = 7,
    ) -> ServerCertificate:
        """A serving certificate for ``dns_names`` and ``ip_addresses`` signed by this CA.

        A webhook reached through a Service is verified against ``<name>.<namespace>.svc``
        (as kube-apiserver does): put that name in ``dns_names``.
        """
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        common_name = dns_names[0] if dns_names else (ip_addresses[0] if ip_addresses else "server")
        sans: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
        sans.extend(x509.IPAddress(ipaddress.ip_address(a)) for a in ip_addresses)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=valid_days))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
            .sign(self.key, hashes.SHA256())
        )
        return ServerCertificate(
            cert_pem=cert.public_bytes(serialization.Encoding.PEM),
            key_pem=key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        )


def make_ca(
    common_name: str = "kubetrain-webhook-ca", *, valid_days: int = 7
) -> CertificateAuthority:
    """A fresh self-signed CA valid for ``valid_days``."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=valid_days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return CertificateAuthority(cert=cert, key=key)
