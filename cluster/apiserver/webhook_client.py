"""The HTTPS client every webhook the API server calls goes through: admission webhooks
(``admission.py``) and CRD conversion webhooks (``conversion.py``).

Both are configured by the same ``WebhookClientConfig`` (``url`` or ``service``, ``caBundle``),
dialed the same way and fail with the same Go-like texts, so this is one module: TLS context
from the caBundle (the only trusted CA when given; system CAs otherwise), a ``service``
reference resolved against the embedded cluster's Services (see ``admission.py`` for why it is
dialed on ``service_host`` at the Service port's numeric targetPort, verified for
``<name>.<namespace>.svc``), one pooled ``aiohttp`` session, and a POST whose failures become
``WebhookCallError`` with kube-apiserver's wording (without the caller's prefix).
"""

from __future__ import annotations

import base64
import os
import ssl
from collections.abc import Mapping
from typing import Any

import aiohttp
import orjson

from .store import ObjectStore

__all__ = ["WebhookCallError", "WebhookClient", "ssl_context"]

_SVC_KEY = ("", "services")


class WebhookCallError(Exception):
    """The webhook could not be called, or answered other than 200 (text as kube's)."""


def ssl_context(ca_bundle: str | None) -> ssl.SSLContext:
    """The TLS context for a clientConfig: trusting ``ca_bundle`` (base64 PEM) only, or the
    system CAs. Raises ``binascii.Error``/``ValueError``/``ssl.SSLError`` for a bad bundle."""
    if not ca_bundle:
        return ssl.create_default_context()
    pem = base64.b64decode(ca_bundle, validate=True).decode("ascii")
    return ssl.create_default_context(cadata=pem)


class WebhookClient:
    """Resolves clientConfigs and POSTs to them; ``await close()`` at shutdown."""

    def __init__(self, *, store: ObjectStore, service_host: str = "127.0.0.1") -> None:
        self.store = store
        self.service_host = service_host
        self._session: aiohttp.ClientSession | None = None

    def endpoint(
        self, *, url: str | None, service: Mapping[str, Any] | None
    ) -> tuple[str, str | None]:
        """(URL to post to, TLS server name to verify or None for the URL's host)."""
        if url is not None:
            return url, None
        svc_ref = service or {}
        ns = str(svc_ref.get("namespace") or "")
        name = str(svc_ref.get("name") or "")
        port = int(svc_ref.get("port") or 443)
        path = str(svc_ref.get("path") or "/")
        svc = self.store.get(_SVC_KEY, ns, name)
        if svc is None:
            raise WebhookCallError(f'service "{ns}/{name}" not found')
        target: int | None = None
        for p in (svc.get("spec") or {}).get("ports") or ():
            if p.get("port") == port:
                tp = p.get("targetPort")
                target = tp if isinstance(tp, int) else port
                break
        if target is None:
            raise WebhookCallError(f'service "{ns}/{name}" has no port {port}')
        if not path.startswith("/"):
            path = "/" + path
        return f"https://{self.service_host}:{target}{path}", f"{name}.{ns}.svc"

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                json_serialize=lambda o: orjson.dumps(o).decode(),
                connector=aiohttp.TCPConnector(limit=0),
            )
        return self._session

    async def post(
        self,
        *,
        url: str,
        server_name: str | None,
        context: ssl.SSLContext | None,
        body: bytes,
        timeout: float | None,
    ) -> bytes:
        """POST ``body`` (JSON); return the 200 answer's bytes or raise ``WebhookCallError``.

        ``timeout`` (seconds) is also sent as the ``timeout`` query parameter, as kube does;
        None: no limit sent, 30 s applied (client-go's default for conversion webhooks)."""
        if timeout is not None:
            sep = "&" if "?" in url else "?"
            url = f"{url}{sep}timeout={timeout:g}s"
        try:
            async with self._http().post(
                url,
                data=body,
                headers={"Content-Type": "application/json", "Accept": "application/json"},
                ssl=context if context is not None else True,
                server_hostname=server_name,
                timeout=aiohttp.ClientTimeout(total=timeout if timeout is not None else 30.0),
            ) as resp:
                raw = await resp.read()
                if resp.status != 200:
                    text = raw.decode("utf-8", "replace").strip()[:500]
                    raise WebhookCallError(
                        f'an error on the server ("{text}") has prevented the request from '
                        f"succeeding (HTTP {resp.status})"
                    )
                return raw
        except TimeoutError:
            raise WebhookCallError(f'Post "{url}": context deadline exceeded') from None
        except aiohttp.ClientConnectorCertificateError as exc:
            raise WebhookCallError(
                f'Post "{url}": tls: failed to verify certificate: {exc.certificate_error}'
            ) from None
        except aiohttp.ClientConnectorError as exc:
            errno = exc.os_error.errno
            reason = os.strerror(errno).lower() if errno else str(exc.os_error)
            raise WebhookCallError(
                f'Post "{url}": dial tcp {exc.host}:{exc.port}: connect: {reason}'
            ) from None
        except aiohttp.ClientError as exc:
            raise WebhookCallError(f'Post "{url}": {exc}') from None

    async def close(self) -> None:
        """Close the pooled session."""
        if self._session is not None:
            await self._session.close()
            self._session = None
