"""The trainer status endpoint (Kubeflow Trainer v2.3.0's ``pkg/statusserver``, KEP-2779): a
training script POSTs its progress, and it becomes the TrainJob's ``status.trainerStatus``.

Why: the operator cannot see inside a training loop; the trainer can, but its pods have no RBAC
to write TrainJobs (and should not get any). So the trainer sends what it knows to the operator,
authenticated by a projected service-account token bound to the TrainJob (the audience of
``plugins/trainjob_status.py``), and the operator writes it.

``POST /apis/trainer.kubeflow.org/v1alpha1/namespaces/{namespace}/trainjobs/{name}/status``,
body ``{"trainerStatus": {progressPercentage, estimatedRemainingSeconds, metrics[{name, value}],
lastUpdatedTime}}``. In Trainer's order:

1. a body over 64 KiB: ``413``;
2. the ``Authorization: Bearer`` token is reviewed by the API server (a TokenReview with
   ``audiences`` = the TrainJob's audience, through ``engine/metrics_auth.py``'s cached
   reviewer); no token, a token not valid for that audience, or a service account of another
   namespace than ``{namespace}``: ``403``; a review that fails: ``500``;
3. a body that does not decode as Trainer's ``UpdateTrainJobStatusRequest`` (types as Go's
   ``encoding/json`` checks them: int32 integers, strings, an RFC 3339 time): ``422``;
   ``trainerStatus`` absent or null: ``200`` and nothing is written;
4. the write: server-side apply of the ``status`` subresource, field manager
   ``trainer-status``, force; the API server's ``422``/``400`` (the CRD's ranges) is ``422``
   with its message, ``404`` is ``404``, anything else ``500``;
5. ``200`` with the request as decoded (``lastUpdatedTime`` in seconds, UTC).

Errors are ``metav1.Status`` bodies as Trainer's ``badRequest`` writes them.

Where it runs: a route of the operator's webhook server (``engine/webhook/server.py``
``register_route``), not a listener of its own as Trainer's 10443: it needs what that server
already has (TLS with the operator's certificate, the Service, a port the NetworkPolicy opens,
every replica serving), so no port, Service or certificate is added. It is on whenever the
webhook server is (``--trainjob-status-server``, default on; ``kubetrain/operator.py``).

Differences from Trainer v2.3.0, on purpose:

- Tokens are checked by TokenReview (the API server decides, with its audiences), not by OIDC
  discovery of the cluster's issuer: TokenReview works on any cluster the operator can reach,
  including ones whose issuer is not reachable from the pod, and reuses the metrics filter's
  cache (1 minute per token and audience).
- The rate limit (qps 5, burst 10, Trainer's ``statusServer`` config, there the client's QPS) is
  a token bucket in front of the write that waits at most ``max_wait`` seconds, then answers
  ``429`` with ``Retry-After``, where client-go would wait for as long as the request lives.
- A body over the limit is ``413`` however it is sent (Go answers a chunked one with ``422``).
- A ``trainerStatus`` without ``lastUpdatedTime`` is ``422`` here with the CRD's CEL message,
  before the API server is asked (an API server without CEL would store it).
- Other methods on the path are ``405`` and other paths ``404`` from the webhook server.
"""

from __future__ import annotations

import datetime
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import orjson
from aiohttp import web

from kubetrain.base.clock import REAL_CLOCK, Clock
from kubetrain.base.objects import Obj
from kubetrain.base.tokenbucket import TokenBucket
from kubetrain.engine.metrics_auth import ReviewFailed, bearer_token
from kubetrain.informers.resource import ResourceRef
from kubetrain.informers.transport import ApiStatusError

from .plugins.trainjob_status import token_audience
from .resources import TRAINJOBS

__all__ = [
    "FIELD_MANAGER",
    "ROUTE",
    "StatusServerOptions",
    "TokenAuthenticator",
    "TrainerStatusServer",
    "TrainerStatusWriter",
]

log = logging.getLogger(__name__)

#: The route, as ``WebhookServer.register_route`` takes it.
ROUTE = "/apis/trainer.kubeflow.org/v1alpha1/namespaces/{namespace}/trainjobs/{name}/status"
FIELD_MANAGER = "trainer-status"
_SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"
_INT32 = (-(2**31), 2**31 - 1)
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusServerOptions:
    """Trainer's ``statusServer`` config (qps, burst) and the limits of one request."""

    qps: float = 5.0
    burst: int = 10
    max_wait: float = 1.0
    """Seconds a write may wait for the rate limiter before the request gets ``429``."""
    max_body_bytes: int = 1 << 16


class TokenAuthenticator(Protocol):
    """What the server needs of ``engine.metrics_auth.MetricsAuthorizer``: the TokenReview."""

    async def authenticate(
        self, token: str, audiences: Sequence[str] = ()
    ) -> dict[str, Any] | None: ...


class TrainerStatusWriter(Protocol):
    """The one write: server-side apply of the TrainJob's status (``ApiClient.patch``)."""

    async def patch(
        self,
        ref: ResourceRef,
        namespace: str | None,
        name: str,
        patch: Any,
        *,
        patch_type: Literal["merge", "json", "strategic", "apply"] = "merge",
        subresource: str | None = None,
        field_manager: str | None = None,
        force: bool | None = None,
    ) -> Obj: ...


class _Refused(Exception):
    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message


class TrainerStatusServer:
    """The handler of ``ROUTE``: ``handle`` answers one request. ``writes`` counts the status
    writes made (tests check what reached the API server)."""

    def __init__(
        self,
        client: TrainerStatusWriter,
        authenticator: TokenAuthenticator,
        options: StatusServerOptions | None = None,
        *,
        clock: Clock = REAL_CLOCK,
    ) -> None:
        self.client = client
        self.authenticator = authenticator
        self.options = opts = options if options is not None else StatusServerOptions()
        self.clock = clock
        self._bucket = TokenBucket(opts.qps, opts.burst, clock=clock)
        self.writes = 0

    async def handle(self, request: web.Request) -> web.Response:
        namespace = request.match_info.get("namespace", "")
        name = request.match_info.get("name", "")
        try:
            body = await self._answer(request, namespace, name)
        except _Refused as e:
            if e.code >= 500:
                log.error("trainer status of %s/%s not written: %s", namespace, name, e.message)
            else:
                log.debug("trainer status of %s/%s refused: %s", namespace, name, e.message)
            headers = {"Retry-After": "1"} if e.code == 429 else None
            return _status(e.code, e.reason, e.message, headers)
        return web.Response(status=200, body=orjson.dumps(body), content_type="application/json")

    async def _answer(self, request: web.Request, namespace: str, name: str) -> Obj:
        limit = self.options.max_body_bytes
        if request.content_length is not None and request.content_length > limit:
            raise _Refused(413, "RequestEntityTooLarge", "Payload too large")
        await self._authorize(request.headers.get("Authorization"), namespace, name)
        raw = await _read_capped(request, limit)
        trainer_status = _decode(raw)
        if trainer_status is None:
            return {}
        await self._wait_for_rate_limit()
        await self._write(namespace, name, trainer_status)
        return {"trainerStatus": trainer_status}

    async def _authorize(self, header: str | None, namespace: str, name: str) -> None:
        token = bearer_token(header)
        if token is None:
            raise _Refused(403, "Forbidden", "Forbidden")
        try:
            user = await self.authenticator.authenticate(token, (token_audience(namespace, name),))
        except ReviewFailed as e:
            raise _Refused(500, "InternalError", "Internal error") from e
        username = str((user or {}).get("username") or "")
        if not username.startswith(_SERVICE_ACCOUNT_PREFIX):
            raise _Refused(403, "Forbidden", "Forbidden")
        token_namespace = username[len(_SERVICE_ACCOUNT_PREFIX) :].split(":", 1)[0]
        if token_namespace != namespace:
            raise _Refused(403, "Forbidden", "Forbidden")

    async def _wait_for_rate_limit(self) -> None:
        bucket = self._bucket
        if bucket.tokens < 1.0 - self.options.max_wait * bucket.rate:
            raise _Refused(429, "TooManyRequests", "Too many status updates; retry later")
        delay = bucket.reserve()
        if delay > 0:
            await self.clock.sleep(delay)

    async def _write(self, namespace: str, name: str, trainer_status: Obj) -> None:
        apply = {
            "apiVersion": TRAINJOBS.api_version,
            "kind": TRAINJOBS.kind,
            "metadata": {"name": name, "namespace": namespace},
            "status": {"trainerStatus": trainer_status},
        }
        try:
            await self.client.patch(
                TRAINJOBS,
                namespace,
                name,
                apply,
                patch_type="apply",
                subresource="status",
                field_manager=FIELD_MANAGER,
                force=True,
            )
        except ApiStatusError as e:
            if e.code in (400, 422):
                raise _Refused(422, "Invalid", e.message or f"Validation failed: {e}") from e
            if e.code == 404:
                raise _Refused(404, "NotFound", "Train job not found") from e
            log.error("trainer status of %s/%s: the write failed: %s", namespace, name, e)
            raise _Refused(500, "InternalError", "Internal error") from e
        except Exception as e:  # the API server unreachable, a timeout
            log.error("trainer status of %s/%s: the write failed: %s", namespace, name, e)
            raise _Refused(500, "InternalError", "Internal error") from e
        self.writes += 1


async def _read_capped(request: web.Request, limit: int) -> bytes:
    """The body, or ``413`` as soon as it passes ``limit`` bytes (a chunked body has no
    Content-Length to check first)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await request.content.read(1 << 14)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            raise _Refused(413, "RequestEntityTooLarge", "Payload too large")
        chunks.append(chunk)


def _invalid() -> _Refused:
    return _Refused(422, "Invalid", "Invalid payload")


def _decode(raw: bytes) -> Obj | None:
    """Trainer's ``UpdateTrainJobStatusRequest`` decoded as Go decodes it (unknown fields
    ignored, types checked); the ``trainerStatus`` to apply, or None when there is none."""
    try:
        request = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise _invalid() from None
    if request is None:
        return None
    if not isinstance(request, dict):
        raise _invalid()
    status = request.get("trainerStatus")
    if status is None:
        return None
    if not isinstance(status, dict):
        raise _invalid()
    out: Obj = {}
    for key in ("progressPercentage", "estimatedRemainingSeconds"):
        value = status.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            raise _invalid()
        if not _INT32[0] <= value <= _INT32[1]:
            raise _invalid()
        out[key] = value
    metrics = status.get("metrics")
    if metrics is not None:
        if not isinstance(metrics, list):
            raise _invalid()
        decoded = []
        for metric in metrics:
            if metric is None:
                metric = {}
            if not isinstance(metric, dict):
                raise _invalid()
            name, value = metric.get("name", ""), metric.get("value", "")
            if not isinstance(name, str) or not isinstance(value, str):
                raise _invalid()
            decoded.append({"name": name, "value": value})
        out["metrics"] = decoded
    updated = status.get("lastUpdatedTime")
    if updated is None:
        raise _Refused(422, "Invalid", "lastUpdatedTime is required when trainerStatus is present")
    out["lastUpdatedTime"] = _rfc3339(updated)
    return out


def _rfc3339(value: object) -> str:
    """Go's ``metav1.Time``: RFC 3339 in, UTC to the second out."""
    if not isinstance(value, str) or _RFC3339.match(value) is None:
        raise _invalid()
    try:
        parsed = datetime.datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    except ValueError:
        raise _invalid() from None
    return parsed.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _status(code: int, reason: str, message: str, headers: dict[str, str] | None) -> web.Response:
    body = {
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    return web.Response(
        status=code, body=orjson.dumps(body), content_type="application/json", headers=headers
    )
