"""What certificate a server serves to a NEW TLS connection: importable as ``tlsprobe`` by the
webhook tests (``tests/`` is on the path through its conftest)."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import warnings

from cryptography import x509


async def served_certificate(
    port: int, ctx: ssl.SSLContext, *, server_hostname: str | None = None
) -> bytes:
    """The DER certificate 127.0.0.1:``port`` presents on a new connection verified by ``ctx``
    (for ``server_hostname`` when given: the name an API server verifies)."""
    _, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=ctx, server_hostname=server_hostname
    )
    try:
        der: bytes = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        return der
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def served_serial(port: int, trusted_pem: bytes) -> int:
    """The serial of what ``served_certificate`` gets, trusting only ``trusted_pem``."""
    ctx = ssl.create_default_context(cadata=trusted_pem.decode())
    return x509.load_der_x509_certificate(await served_certificate(port, ctx)).serial_number


async def negotiated_version(port: int, ctx: ssl.SSLContext) -> str:
    """The TLS version a new connection to 127.0.0.1:``port`` verified by ``ctx`` agrees on
    (``TLSv1.2``, ``TLSv1.3``); raises ``ssl.SSLError`` when the handshake fails."""
    _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx)
    try:
        version: str = writer.get_extra_info("ssl_object").version()
        return version
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


def old_tls_client(maximum: ssl.TLSVersion = ssl.TLSVersion.TLSv1_1) -> ssl.SSLContext:
    """A client that offers nothing newer than ``maximum`` (TLS 1.1 by default) and verifies
    nothing: a server requiring TLS 1.2+ must refuse its handshake."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with warnings.catch_warnings():  # TLSv1/TLSv1_1 are deprecated: that is the point
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.maximum_version = maximum
    with contextlib.suppress(ssl.SSLError):
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # OpenSSL 3 refuses TLS < 1.2 at level 1+
    return ctx
