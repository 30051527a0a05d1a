"""Certificates for admission webhooks: a small CA, serving certificates, PEM round trips.

Why here: the operator's webhook server must serve HTTPS with a certificate the API server
trusts (``caBundle``). ``rotator.py`` keeps a CA and a serving certificate in a Secret and renews
them; tests and the conformance tier make throwaway CAs with the same code. Keys are ECDSA P-256
(generated in about a millisecond). Times come from the caller (``now``), so a fake clock can
drive expiry.
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
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

__all__ = [
    "CertificateAuthority",
    "CertificateError",
    "ServerCertificate",
    "load_ca",
    "make_ca",
    "split_pem",
]

#: Backdating of ``not_valid_before``, so a peer whose clock is a little behind accepts it.
_BACKDATE = datetime.timedelta(minutes=5)


class CertificateError(ValueError):
    """PEM data that is not a usable certificate or key (the message says which)."""


def _utcnow(now: datetime.datetime | None) -> datetime.datetime:
    return now if now is not None else datetime.datetime.now(datetime.UTC)


def _validity(valid_days: int, validity: datetime.timedelta | None) -> datetime.timedelta:
    return validity if validity is not None else datetime.timedelta(days=valid_days)


@dataclass(frozen=True, slots=True)
class ServerCertificate:
    """A PEM certificate chain (leaf first) and its PEM private key."""

    cert_pem: bytes
    key_pem: bytes

    @property
    def certificate(self) -> x509.Certificate:
        """The leaf, parsed; raises ``CertificateError`` when ``cert_pem`` is not a certificate."""
        try:
            return x509.load_pem_x509_certificate(self.cert_pem)
        except ValueError as exc:
            raise CertificateError(f"not a PEM certificate: {exc}") from None

    @property
    def not_after(self) -> datetime.datetime:
        return self.certificate.not_valid_after_utc

    def dns_names(self) -> list[str]:
        """The leaf's DNS subject alternative names."""
        try:
            san = self.certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        except x509.ExtensionNotFound:
            return []
        return san.value.get_values_for_type(x509.DNSName)

    def load_into(self, ctx: ssl.SSLContext) -> None:
        """Serve this certificate from ``ctx`` from the next handshake on (a hot swap: live
        connections keep theirs). Raises ``CertificateError`` when the pair does not load, and
        then leaves ``ctx`` as it was: the pair is tried on a scratch context first, because a
        failed ``load_cert_chain`` has already replaced the certificate and dropped the key."""
        with tempfile.TemporaryDirectory(prefix="kubetrain-cert-") as tmp:
            cert_path = os.path.join(tmp, "tls.crt")
            key_path = os.path.join(tmp, "tls.key")
            with open(cert_path, "wb") as fh:
                fh.write(self.cert_pem)
            fd = os.open(key_path, os.O_WRONLY | os.O_CREAT, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(self.key_pem)
            try:
                server_ssl_context().load_cert_chain(cert_path, key_path)
            except ssl.SSLError as exc:
                raise CertificateError(f"certificate and key do not load: {exc}") from None
            ctx.load_cert_chain(cert_path, key_path)

    def ssl_context(self) -> ssl.SSLContext:
        """A new server-side context serving this certificate (TLS 1.2+)."""
        ctx = server_ssl_context()
        self.load_into(ctx)
        return ctx

    def signed_by(self, issuer: x509.Certificate) -> bool:
        """True when ``issuer`` (a CA certificate) signed this certificate."""
        try:
            self.certificate.verify_directly_issued_by(issuer)
        except (ValueError, TypeError, InvalidSignature, CertificateError):
            return False
        return True


def server_ssl_context() -> ssl.SSLContext:
    """An empty server-side context (TLS 1.2+); ``ServerCertificate.load_into`` fills it."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
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

    @property
    def key_pem(self) -> bytes:
        """The CA's private key, PEM (PKCS#8, unencrypted: it is stored in a Secret)."""
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    @property
    def not_after(self) -> datetime.datetime:
        return self.cert.not_valid_after_utc

    def issue_server_cert(
        self,
        *,
        dns_names: Sequence[str] = ("localhost",),
        ip_addresses: Sequence[str] = ("127.0.0.1",),
        valid_days: int = 7,
        validity: datetime.timedelta | None = None,
        now: datetime.datetime | None = None,
    ) -> ServerCertificate:
        """A serving certificate for ``dns_names`` and ``ip_addresses`` signed by this CA, valid
        for ``validity`` (default ``valid_days``) from ``now`` (default: the system's UTC time).

        A webhook reached through a Service is verified against ``<name>.<namespace>.svc``
        (as kube-apiserver does): put that name in ``dns_names``. The certificate never outlives
        its CA (``not_after`` is capped at the CA's).
        """
        key = ec.generate_private_key(ec.SECP256R1())
        start = _utcnow(now)
        not_after = min(start + _validity(valid_days, validity), self.not_after)
        common_name = dns_names[0] if dns_names else (ip_addresses[0] if ip_addresses else "server")
        sans: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
        sans.extend(x509.IPAddress(ipaddress.ip_address(a)) for a in ip_addresses)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start - _BACKDATE)
            .not_valid_after(not_after)
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
    common_name: str = "kubetrain-webhook-ca",
    *,
    valid_days: int = 7,
    validity: datetime.timedelta | None = None,
    now: datetime.datetime | None = None,
) -> CertificateAuthority:
    """A fresh self-signed CA valid for ``validity`` (default ``valid_days``) from ``now``."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    start = _utcnow(now)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start - _BACKDATE)
        .not_valid_after(start + _validity(valid_days, validity))
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


def load_ca(cert_pem: bytes, key_pem: bytes) -> CertificateAuthority:
    """A CA from its PEM certificate and EC private key; ``CertificateError`` when unusable."""
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as exc:
        raise CertificateError(f"CA certificate or key is not valid PEM: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise CertificateError("CA key is not an EC private key")
    if key.public_key().public_numbers() != cert.public_key().public_numbers():  # type: ignore[union-attr]
        raise CertificateError("CA key does not match the CA certificate")
    return CertificateAuthority(cert=cert, key=key)


def split_pem(bundle: bytes) -> list[x509.Certificate]:
    """The certificates of a PEM bundle (e.g. a ``caBundle``), in order; [] for garbage."""
    try:
        return x509.load_pem_x509_certificates(bundle)
    except ValueError:
        return []
