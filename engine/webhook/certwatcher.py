"""A serving certificate from files (cert-manager, or any Secret mounted in the pod), reloaded
when the files change.

Why polling: kubelet updates a mounted Secret by swapping a symlink (``..data``), which inotify
on the file names misses; reading two small files every few seconds and comparing bytes is cheap
and always right (controller-runtime's certwatcher polls as well). A half-written pair (the key
of the new certificate with the old certificate) does not load and is retried on the next poll;
the previous certificate stays in use meanwhile.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from kubetrain.base.clock import REAL_CLOCK, Clock
from kubetrain.engine.webhook.certs import CertificateError, ServerCertificate

__all__ = ["CertWatcher"]

log = logging.getLogger(__name__)


class CertWatcher:
    """Reads ``<cert_dir>/tls.crt`` and ``tls.key``; hands each new pair to ``on_certificate``.

    ``load()`` reads once (True when a new pair was put in use); ``await run()`` loads, then
    polls every ``poll_interval`` seconds until cancelled.
    """

    def __init__(
        self,
        cert_dir: str | Path,
        on_certificate: Callable[[ServerCertificate], None],
        *,
        cert_name: str = "tls.crt",
        key_name: str = "tls.key",
        poll_interval: float = 5.0,
        clock: Clock = REAL_CLOCK,
        purpose: str = "webhook",
    ) -> None:
        """``purpose`` names the certificate in logs (``webhook``, ``metrics``)."""
        self.purpose = purpose
        self.cert_path = Path(cert_dir) / cert_name
        self.key_path = Path(cert_dir) / key_name
        self.poll_interval = poll_interval
        self.clock = clock
        self._on_certificate = on_certificate
        self._loaded: tuple[bytes, bytes] | None = None
        self._last_error = ""
        self.reloads = 0

    def load(self) -> bool:
        """Read the files; put the pair in use when it changed and loads. Errors are logged
        once per distinct message, never raised (the previous certificate stays)."""
        try:
            pair = (self.cert_path.read_bytes(), self.key_path.read_bytes())
        except OSError as e:
            self._complain(f"cannot read the {self.purpose} certificate: {e}")
            return False
        if pair == self._loaded:
            return False
        cert = ServerCertificate(cert_pem=pair[0], key_pem=pair[1])
        try:
            self._on_certificate(cert)
        except CertificateError as e:
            self._complain(
                f"{self.purpose} certificate in {self.cert_path.parent} does not load: {e}"
            )
            return False
        self._loaded = pair
        self._last_error = ""
        self.reloads += 1
        log.info(
            "%s certificate loaded from %s (valid until %s)",
            self.purpose,
            self.cert_path.parent,
            cert.not_after.isoformat(),
        )
        return True

    async def run(self) -> None:
        """Load now, then every ``poll_interval`` seconds, until cancelled."""
        while True:
            self.load()  # two small reads: not worth a thread
            await self.clock.sleep(self.poll_interval)

    def _complain(self, message: str) -> None:
        if message != self._last_error:
            log.error("%s", message)
            self._last_error = message
