"""What certificate a server serves to a NEW TLS connection: importable as ``tlsprobe`` by the
webhook tests (``tests/`` is on the path through its conftest)."""

from __future__ import annotations

import asyncio
import contextlib
import ssl

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
