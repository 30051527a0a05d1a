"""certs: a small CA, serving certificates it signs, PEM round trips and loading into TLS contexts.

Times are passed explicitly (``now=``) wherever validity is asserted, so nothing depends on the
wall clock; x509 stores whole seconds, hence the ``microsecond=0`` start times.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kubetrain.engine.webhook.certs import (
    CertificateAuthority,
    CertificateError,
    ServerCertificate,
    load_ca,
    make_ca,
    server_ssl_context,
    split_pem,
)

NOW = datetime.datetime(2030, 6, 1, 12, 0, 0, tzinfo=datetime.UTC)


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return make_ca("test-ca", now=NOW, valid_days=30)


@pytest.fixture(scope="module")
def other_ca() -> CertificateAuthority:
    return make_ca("other-ca", now=NOW, valid_days=30)


def test_ca_is_self_signed_ca_with_requested_name_and_validity() -> None:
    ca = make_ca("my-ca", validity=datetime.timedelta(hours=10), now=NOW)
    cert = ca.cert
    assert cert.subject == cert.issuer
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "my-ca"
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    assert cert.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign is True
    cert.verify_directly_issued_by(cert)  # self-signed: raises when not
    assert ca.not_after == NOW + datetime.timedelta(hours=10)
    # backdated so a peer whose clock lags a little still accepts it
    assert cert.not_valid_before_utc == NOW - datetime.timedelta(minutes=5)
    assert isinstance(ca.key, ec.EllipticCurvePrivateKey)
    assert ca.key.curve.name == "secp256r1"


def test_ca_valid_days_default_and_pem_forms() -> None:
    ca = make_ca(now=NOW, valid_days=3)
    assert ca.not_after == NOW + datetime.timedelta(days=3)
    assert ca.cert_pem.startswith(b"-----BEGIN CERTIFICATE-----")
    # PKCS#8, unencrypted: what goes into the Secret
    assert ca.key_pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert serialization.load_pem_private_key(ca.key_pem, password=None) is not None
    assert make_ca(now=NOW).cert.serial_number != make_ca(now=NOW).cert.serial_number


def test_issued_cert_is_signed_by_its_ca_and_not_another(
    ca: CertificateAuthority, other_ca: CertificateAuthority
) -> None:
    cert = ca.issue_server_cert(now=NOW)
    assert cert.signed_by(ca.cert)
    assert not cert.signed_by(other_ca.cert)
    # a CA with the same name but another key did not sign it either
    same_name = make_ca("test-ca", now=NOW)
    assert not cert.signed_by(same_name.cert)
    assert other_ca.issue_server_cert(now=NOW).signed_by(other_ca.cert)


def test_issued_cert_contents(ca: CertificateAuthority) -> None:
    cert = ca.issue_server_cert(
        dns_names=["svc.ns.svc", "svc.ns.svc.cluster.local"],
        ip_addresses=["127.0.0.1", "::1"],
        validity=datetime.timedelta(hours=2),
        now=NOW,
    )
    parsed = cert.certificate
    assert parsed.issuer == ca.cert.subject
    assert parsed.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "svc.ns.svc"
    assert cert.dns_names() == ["svc.ns.svc", "svc.ns.svc.cluster.local"]
    san = parsed.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    ]
    assert parsed.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    eku = parsed.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in list(eku)
    assert cert.not_after == NOW + datetime.timedelta(hours=2)
    assert parsed.not_valid_before_utc == NOW - datetime.timedelta(minutes=5)
    assert cert.key_pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    key = serialization.load_pem_private_key(cert.key_pem, password=None)
    assert key.public_key().public_numbers() == parsed.public_key().public_numbers()  # type: ignore[union-attr]


def test_issued_cert_default_names_and_valid_days(ca: CertificateAuthority) -> None:
    cert = ca.issue_server_cert(now=NOW, valid_days=2)
    assert cert.dns_names() == ["localhost"]
    assert cert.not_after == NOW + datetime.timedelta(days=2)
    two = ca.issue_server_cert(now=NOW)
    assert two.certificate.serial_number != cert.certificate.serial_number
    assert two.key_pem != cert.key_pem


def test_cert_without_dns_names_is_named_after_its_ip(ca: CertificateAuthority) -> None:
    cert = ca.issue_server_cert(dns_names=(), ip_addresses=("10.0.0.7",), now=NOW)
    assert cert.dns_names() == []
    cn = cert.certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert cn == "10.0.0.7"


def test_validity_is_capped_by_the_ca() -> None:
    ca = make_ca(validity=datetime.timedelta(hours=3), now=NOW)
    later = NOW + datetime.timedelta(hours=2)
    cert = ca.issue_server_cert(validity=datetime.timedelta(days=365), now=later)
    assert cert.not_after == ca.not_after
    assert cert.not_after < later + datetime.timedelta(days=365)
    shorter = ca.issue_server_cert(validity=datetime.timedelta(minutes=30), now=later)
    assert shorter.not_after == later + datetime.timedelta(minutes=30)


def test_dns_names_of_a_cert_without_san(ca: CertificateAuthority) -> None:
    # the CA certificate has no subjectAltName extension
    assert ServerCertificate(cert_pem=ca.cert_pem, key_pem=ca.key_pem).dns_names() == []


def test_load_ca_round_trip(ca: CertificateAuthority) -> None:
    loaded = load_ca(ca.cert_pem, ca.key_pem)
    assert loaded.cert == ca.cert
    assert loaded.cert_pem == ca.cert_pem
    assert loaded.key_pem == ca.key_pem
    assert loaded.not_after == ca.not_after
    # the loaded CA signs certificates the original CA certificate verifies
    issued = loaded.issue_server_cert(now=NOW)
    assert issued.signed_by(ca.cert)


def test_load_ca_refuses_a_mismatched_key(
    ca: CertificateAuthority, other_ca: CertificateAuthority
) -> None:
    with pytest.raises(CertificateError, match="does not match"):
        load_ca(ca.cert_pem, other_ca.key_pem)


@pytest.mark.parametrize(
    ("cert_pem", "key_pem"),
    [
        (b"garbage", b"garbage"),
        (b"", b""),
        (b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", b"garbage"),
    ],
)
def test_load_ca_refuses_garbage(cert_pem: bytes, key_pem: bytes) -> None:
    with pytest.raises(CertificateError):
        load_ca(cert_pem, key_pem)


def test_load_ca_refuses_a_garbage_key_with_a_good_cert(ca: CertificateAuthority) -> None:
    with pytest.raises(CertificateError):
        load_ca(ca.cert_pem, b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")


def test_load_ca_refuses_a_non_ec_key(ca: CertificateAuthority) -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = rsa_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(CertificateError, match="not an EC"):
        load_ca(ca.cert_pem, pem)


def test_certificate_error_is_a_value_error() -> None:
    assert issubclass(CertificateError, ValueError)


def test_split_pem_of_a_bundle_keeps_order(
    ca: CertificateAuthority, other_ca: CertificateAuthority
) -> None:
    certs = split_pem(other_ca.cert_pem + ca.cert_pem)
    assert certs == [other_ca.cert, ca.cert]
    assert split_pem(ca.cert_pem) == [ca.cert]


@pytest.mark.parametrize(
    "bundle",
    [b"", b"garbage", b"-----BEGIN CERTIFICATE-----\nnot base64 !!\n-----END CERTIFICATE-----\n"],
)
def test_split_pem_of_garbage_is_empty(bundle: bytes) -> None:
    assert split_pem(bundle) == []


def test_garbage_certificate(ca: CertificateAuthority) -> None:
    bad = ServerCertificate(cert_pem=b"garbage", key_pem=b"garbage")
    with pytest.raises(CertificateError, match="not a PEM certificate"):
        _ = bad.certificate
    with pytest.raises(CertificateError):
        _ = bad.not_after
    assert not bad.signed_by(ca.cert)


def test_load_into_serves_a_matching_pair(ca: CertificateAuthority) -> None:
    ctx = server_ssl_context()
    assert ctx.minimum_version >= ssl.TLSVersion.TLSv1_2
    ca.issue_server_cert(now=NOW).load_into(ctx)
    assert isinstance(ca.issue_server_cert(now=NOW).ssl_context(), ssl.SSLContext)


def test_load_into_refuses_a_mismatched_pair(ca: CertificateAuthority) -> None:
    a = ca.issue_server_cert(now=NOW)
    b = ca.issue_server_cert(now=NOW)
    ctx = server_ssl_context()
    with pytest.raises(CertificateError, match="do not load"):
        ServerCertificate(cert_pem=a.cert_pem, key_pem=b.key_pem).load_into(ctx)
    with pytest.raises(CertificateError):
        ServerCertificate(cert_pem=b"garbage", key_pem=a.key_pem).load_into(ctx)
    with pytest.raises(CertificateError):
        ServerCertificate(cert_pem=a.cert_pem, key_pem=b"garbage").ssl_context()
