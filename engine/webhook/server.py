"""The HTTPS server admission webhooks are served from (controller-runtime's ``webhook.Server``).

Why it is its own listener: the API server calls webhooks over TLS with a certificate it trusts
through ``caBundle``, on a port of its own (9443 by convention), while metrics and probes stay
plain HTTP. The certificate is swapped in place (``use_certificate``) when it is renewed, so
rotation never drops a request: connections being set up keep the old one, new handshakes get
the new one.

Contract: ``register`` every path before ``start``; ``start`` binds the port at once (a port in
use fails the operator's start, not a later admission); until the first ``use_certificate``
handshakes fail and ``check_ready`` raises, so a pod is not ready before it can answer.

Each path answers ``POST`` of an ``AdmissionReview`` (admission.k8s.io/v1, JSON) with one; a body
that is not one gets HTTP 400, a handler exception a 500 refusal inside a 200 review (the API
server then applies the webhook's ``failurePolicy``). A path registered with
``register_conversion`` answers a CRD's ``ConversionReview`` (apiextensions.k8s.io/v1,
``conversion.py``) instead: every object through the converter, a Success with the objects in
order or a Failure with a message (a converter exception too: logged, never a dropped request);
a malformed review gets 400. Both kinds of path share the listener, the certificate and the
metrics (labelled by path). Metrics have controller-runtime's names:
``controller_runtime_webhook_requests_total{webhook,code}``,
``controller_runtime_webhook_latency_seconds{webhook}`` and
``controller_runtime_webhook_requests_in_flight{webhook}``.

A path registered with ``register_route`` (a pattern such as ``/apis/.../{name}/status``) is
answered by its aiohttp handler as it is, no review parsing: the trainer status endpoint
(``reconcilers/trainer/status_server.py``) shares the listener and its certificate this way.
Its metrics are labelled by the pattern, not the concrete path.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from kubetrain.engine.metrics_registry import once_per_registry
from kubetrain.engine.webhook.admission import (
    ADMISSION_API_VERSION,
    AdmissionResponse,
    Handler,
    errored,
)
from kubetrain.engine.webhook.certs import ServerCertificate, server_ssl_context
from kubetrain.engine.webhook.conversion import (
    BadConversionReview,
    Converter,
    answer_conversion,
    conversion_failure,
    review_uid,
)

__all__ = ["RouteHandler", "WebhookServer", "WebhookServerOptions"]

log = logging.getLogger(__name__)

#: The API server's own limit for a request body; a review is smaller than its object plus a bit.
MAX_REVIEW_BYTES = 8 * 1024 * 1024

#: A handler of a plain route (``register_route``): the aiohttp request in, its response out.
RouteHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True, kw_only=True)
class WebhookServerOptions:
    """Where the webhook server listens."""

    host: str = ""
    """Interface to bind; "" means every interface (a real API server dials the pod's IP)."""
    port: int = 9443
    """TCP port; 0 picks a free one (``WebhookServer.port`` tells which)."""

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError(f"webhook server port must be 0..65535, got {self.port}")


class _Metrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "controller_runtime_webhook_requests",
            "Total number of admission requests by HTTP status code.",
            ["webhook", "code"],
            registry=registry,
        )
        self.latency = Histogram(
            "controller_runtime_webhook_latency_seconds",
            "Histogram of the latency of processing admission requests",
            ["webhook"],
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=registry,
        )
        self.in_flight = Gauge(
            "controller_runtime_webhook_requests_in_flight",
            "Current number of admission requests being served.",
            ["webhook"],
            registry=registry,
        )


class WebhookServer:
    """An aiohttp HTTPS listener dispatching AdmissionReviews to handlers by path."""

    def __init__(
        self,
        options: WebhookServerOptions | None = None,
        *,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.options = options if options is not None else WebhookServerOptions()
        self._metrics = once_per_registry(_Metrics, registry)
        self._handlers: dict[str, Handler] = {}
        self._converters: dict[str, Converter] = {}
        self._routes: dict[str, RouteHandler] = {}
        self._ssl = server_ssl_context()
        self._certificate: ServerCertificate | None = None
        self._runner: web.AppRunner | None = None
        self._bound_port: int | None = None

    # -- wiring ----------------------------------------------------------------------------------

    def register(self, path: str, handler: Handler) -> None:
        """Serve ``handler`` at ``path`` (``/validate-...``). Call before ``start``."""
        self._check_new_path("register", path)
        self._handlers[path] = handler

    def register_conversion(self, path: str, converter: Converter) -> None:
        """Answer ConversionReviews at ``path`` (``/convert``) with ``converter``, called once
        per object with the review's ``desiredAPIVersion``. Call before ``start``."""
        self._check_new_path("register_conversion", path)
        self._converters[path] = converter

    def register_route(self, path: str, handler: RouteHandler) -> None:
        """Answer ``POST`` on ``path`` (an aiohttp pattern: ``{name}`` matches one segment) with
        ``handler`` as it is: no AdmissionReview, the handler writes the whole response. Call
        before ``start``."""
        self._check_new_path("register_route", path)
        self._routes[path] = handler

    def _check_new_path(self, caller: str, path: str) -> None:
        if self._runner is not None:
            raise RuntimeError(f"WebhookServer.{caller}: register paths before start()")
        if not path.startswith("/"):
            raise ValueError(f"webhook path must start with '/', got {path!r}")
        if path in self._handlers or path in self._converters or path in self._routes:
            raise ValueError(f"webhook path {path} is already registered")

    @property
    def paths(self) -> list[str]:
        """Every registered path, admission, conversion and plain routes."""
        return sorted([*self._handlers, *self._converters, *self._routes])

    def use_certificate(self, certificate: ServerCertificate) -> None:
        """Serve ``certificate`` from the next TLS handshake on (raises ``CertificateError``
        when it does not load, and then keeps the previous one)."""
        certificate.load_into(self._ssl)
        if self._certificate is None:
            log.info("webhook server has a certificate; ready to serve admission requests")
        self._certificate = certificate

    @property
    def certificate(self) -> ServerCertificate | None:
        """The certificate being served; None before the first ``use_certificate``."""
        return self._certificate

    @property
    def port(self) -> int:
        """The bound port; raises before ``start``."""
        if self._bound_port is None:
            raise RuntimeError("webhook server is not started")
        return self._bound_port

    def check_ready(self) -> None:
        """Readiness: listening, with a certificate that is valid now. Raises the reason."""
        if self._bound_port is None:
            raise RuntimeError("webhook server not started")
        cert = self._certificate
        if cert is None:
            raise RuntimeError("webhook server has no certificate yet")
        if cert.not_after.timestamp() <= time.time():
            raise RuntimeError(f"webhook certificate expired at {cert.not_after.isoformat()}")

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Bind and serve. Raises ``OSError`` (address in use, ...) naming the address."""
        app = web.Application(client_max_size=MAX_REVIEW_BYTES)
        for path in self.paths:
            if path in self._routes:
                app.router.add_post(path, self._route(path, self._routes[path]))
            else:
                app.router.add_post(path, self._serve)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(
            runner, self.options.host or None, self.options.port, ssl_context=self._ssl
        )
        try:
            await site.start()
        except OSError as e:
            await runner.cleanup()
            raise OSError(
                e.errno,
                f"webhook server cannot bind {self.options.host}:{self.options.port}: {e} "
                "(choose another with --webhook-server-port, 0 disables the webhook server)",
            ) from e
        self._runner = runner
        sockets = runner.addresses
        self._bound_port = int(sockets[0][1]) if sockets else self.options.port
        log.info(
            "webhook server listening on %s:%s (%s)",
            self.options.host or "*",
            self._bound_port,
            ", ".join(self.paths),
        )

    async def stop(self) -> None:
        """Close the listener and its connections (idempotent)."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- serving ---------------------------------------------------------------------------------

    async def _serve(self, request: web.Request) -> web.Response:
        path = request.path
        metrics = self._metrics
        in_flight = metrics.in_flight.labels(path)
        in_flight.inc()
        start = time.perf_counter()
        try:
            status, body = await self._answer(path, request)
        finally:
            in_flight.dec()
        metrics.latency.labels(path).observe(time.perf_counter() - start)
        metrics.requests.labels(path, str(status)).inc()
        return web.Response(status=status, body=body, content_type="application/json")

    def _route(self, pattern: str, handler: RouteHandler) -> RouteHandler:
        """``handler`` with the server's metrics, labelled by ``pattern``."""
        metrics = self._metrics

        async def serve(request: web.Request) -> web.StreamResponse:
            in_flight = metrics.in_flight.labels(pattern)
            in_flight.inc()
            start = time.perf_counter()
            try:
                response = await handler(request)
            finally:
                in_flight.dec()
            metrics.latency.labels(pattern).observe(time.perf_counter() - start)
            metrics.requests.labels(pattern, str(response.status)).inc()
            return response

        return serve

    async def _answer(self, path: str, request: web.Request) -> tuple[int, bytes]:
        content_type = request.headers.get("Content-Type", "").split(";")[0].strip()
        if content_type != "application/json":
            return _bad_request(
                f"contentType={content_type or '(none)'}, expected application/json"
            )
        converter = self._converters.get(path)
        what = "ConversionReview" if converter is not None else "AdmissionReview"
        try:
            review = orjson.loads(await request.read())
        except orjson.JSONDecodeError as e:
            return _bad_request(f"couldn't decode the {what}: {e}")
        if converter is not None:
            return self._convert(path, review, converter)
        if not isinstance(review, dict) or review.get("apiVersion") != ADMISSION_API_VERSION:
            got = review.get("apiVersion") if isinstance(review, dict) else type(review).__name__
            return _bad_request(f"expected an {ADMISSION_API_VERSION} AdmissionReview, got {got!r}")
        req = review.get("request")
        if review.get("kind") != "AdmissionReview" or not isinstance(req, dict):
            return _bad_request("expected an AdmissionReview with a request")
        uid = req.get("uid")
        if not isinstance(uid, str) or not uid:
            return _bad_request("the AdmissionReview's request has no uid")
        response = await self._decide(path, req)
        return 200, orjson.dumps(response.review(uid))

    def _convert(self, path: str, review: object, converter: Converter) -> tuple[int, bytes]:
        try:
            answer = answer_conversion(review, converter)
        except BadConversionReview as e:
            return _bad_request(str(e))
        except Exception as e:  # a converter bug must not take the server down
            log.exception("conversion webhook %s failed", path)
            answer = conversion_failure(
                review_uid(review),
                f"internal error in conversion webhook {path}: {type(e).__name__}: {e}",
            )
        return 200, orjson.dumps(answer)

    async def _decide(self, path: str, req: dict[str, Any]) -> AdmissionResponse:
        handler = self._handlers[path]
        try:
            outcome = handler(req)
            if inspect.isawaitable(outcome):
                outcome = await outcome
        except Exception as e:  # a handler bug must not take the server down
            log.exception("webhook %s failed on %s", path, _describe(req))
            return errored(f"internal error in webhook {path}: {type(e).__name__}: {e}")
        return outcome


def _bad_request(message: str) -> tuple[int, bytes]:
    return 400, orjson.dumps({"error": message})


def _describe(req: dict[str, Any]) -> str:
    kind_ref = req.get("kind")
    kind = kind_ref.get("kind", "?") if isinstance(kind_ref, dict) else "?"
    return f"{req.get('operation', '?')} {kind} {req.get('namespace', '')}/{req.get('name', '')}"
