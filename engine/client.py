"""The operator's one API client: raw JSON over pooled HTTP/1.1, limited and measured.

Every request the operator makes goes through an ``ApiClient`` (DESIGN.md: "writes go through one
API client"), so this is where the adaptive in-flight limit (``engine.adaptive_limit``), the
optional fixed QPS cap, 429/Retry-After handling and the ``rest_client_*`` metrics live. Requests
with a whole answer travel on ``engine.http1`` (a third of aiohttp's CPU per request); watches
stream through one aiohttp session. It implements ``informers.transport.Transport`` (reflectors list
and watch through it) and adds small conveniences addressed by ``ResourceRef``. Objects are plain
dicts parsed once with orjson; nothing here builds model objects.

Retries follow client-go's ``rest.Request``: an answer of 429, or of 5xx with a ``Retry-After``
header, is retried after that many seconds (1 s when a 429 names none), at most
``ClientOptions.max_retries`` times; each attempt waits for the rate limiter again. An answer of
401 makes the credential be fetched anew (``engine.credentials``) and the request sent once more.
"""

from __future__ import annotations

import builtins
import contextlib
import math
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from time import perf_counter
from types import TracebackType
from typing import Any, Literal
from urllib.parse import urlencode

import aiohttp
import orjson
import yarl
from prometheus_client import CollectorRegistry, Counter, Histogram

from kubetrain.base.clock import REAL_CLOCK, Clock
from kubetrain.base.jsoncopy import json_copy
from kubetrain.base.tokenbucket import TokenBucket
from kubetrain.informers.resource import ResourceRef
from kubetrain.informers.transport import ApiStatusError

from .adaptive_limit import AdaptiveLimit, AdaptiveLimitOptions, Ticket
from .client_metrics import ERROR_CODE, AdaptiveLimitCollector, ClientMetrics
from .config import ClientConfig
from .http1 import Http1Pool
from .request_priority import current_request_priority

__all__ = [
    "PATCH_CONTENT_TYPES",
    "ApiClient",
    "ApiConnectionError",
    "ClientOptions",
    "PatchType",
    "deep_copy",
    "request_kind",
]

PatchType = Literal["merge", "json", "strategic", "apply"]

PATCH_CONTENT_TYPES: dict[str, str] = {
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "apply": "application/apply-patch+yaml",  # JSON is YAML; the server accepts it as such
}

_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    410: "Gone",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


class ApiConnectionError(ConnectionError):
    """No HTTP answer: connection refused/reset, server disconnected, or a broken body.

    The aiohttp exception is ``__cause__``. Raised instead of aiohttp's own types so callers of the
    ``Transport`` protocol can catch ``ConnectionError`` without knowing aiohttp.
    """


DEFAULT_ADAPTIVE_LIMIT = AdaptiveLimitOptions()
"""The adaptive limit every client has unless told otherwise (frozen, so safely shared)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientOptions:
    """Knobs of an ``ApiClient``; every default is documented where it comes from."""

    qps: float = 0.0
    """A fixed cap on requests per second (``--kube-api-qps``); ``<= 0``: none. The reference
    operator's default is 20, which made 500 jobs wait minutes: kubetrain's default is no fixed
    rate and the ``adaptive`` limit below. When set, it caps whatever the adaptive limit allows."""
    burst: int = 0
    """Requests allowed at once above ``qps`` (``--kube-api-burst``); ``0``: ``1.5 * qps``."""
    adaptive: AdaptiveLimitOptions | None = DEFAULT_ADAPTIVE_LIMIT
    """Requests in flight, learned from the server's answers (``engine.adaptive_limit``: grows
    while answers are fast, halves on 429, honours Retry-After). ``None``: no limit but ``qps``
    and the connection pool (test harnesses and the benchmarks' bare client)."""
    max_retries: int = 10
    """Retries of one request answered 429 (or 5xx with Retry-After); client-go's default."""
    max_retry_after: float = 60.0
    """Cap on one Retry-After wait, seconds, so a confused server cannot park us for hours."""
    default_retry_after: float = 1.0
    """Wait when a 429 carries no Retry-After (client-go waits 1 s)."""
    request_timeout: float | None = 60.0
    """Whole-request timeout for ``request_json`` when the call passes none; ``None``: no limit."""
    connect_timeout: float = 10.0
    """TCP/TLS connect timeout, seconds."""
    connection_limit: int = 100
    """Pooled connections kept open to the server per pool (0: no limit): the request pool's and
    aiohttp's, whose connections are the open watches."""
    transport: Literal["http1", "aiohttp"] = "http1"
    """What carries request/response exchanges: ``http1`` (``engine.http1``: asyncio protocols and
    httptools, about a sixth of aiohttp's CPU a request) or ``aiohttp``. Watches always stream
    through aiohttp."""
    user_agent: str = "kubetrain/0.1"
    name: str = "main"
    """The ``client`` label of this client's ``kubetrain_client_*`` series (the operator has a
    ``main`` client and an ``events`` one)."""
    registry: CollectorRegistry | None = None
    """Where ``rest_client_*`` metrics go; ``None``: prometheus-client's global registry."""
    clock: Clock = REAL_CLOCK
    """Time for the rate limiter, retry waits and credential expiry; tests pass a ``FakeClock``."""

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError(f"ClientOptions.max_retries must be >= 0, got {self.max_retries}")
        if self.burst < 0:
            raise ValueError(f"ClientOptions.burst must be >= 0, got {self.burst}")
        if (
            self.adaptive is not None
            and self.connection_limit > 0
            and self.adaptive.maximum > self.connection_limit
        ):
            raise ValueError(
                f"ClientOptions: adaptive.maximum ({self.adaptive.maximum}) must not exceed "
                f"connection_limit ({self.connection_limit}): each request in flight holds a "
                "connection"
            )

    @property
    def effective_burst(self) -> int:
        """``burst``, or ``1.5 * qps`` (at least 1) when it is 0."""
        return self.burst or max(1, math.ceil(self.qps * 1.5))


def request_kind(verb: str, path: str) -> str:
    """What a request does, for latency baselines: ``"POST pods"``, ``"LIST pytorchjobs"``,
    ``"PUT pytorchjobs/status"`` (names and namespaces left out; a GET of a collection is a LIST).
    """
    parts = path.split("?", 1)[0].split("/")
    i = 3 if len(parts) > 1 and parts[1] == "api" else 4  # after /api/v1 or /apis/group/version
    if len(parts) > i + 2 and parts[i] == "namespaces":
        i += 2
    rest = parts[i:]
    if not rest or not rest[0]:
        return verb
    if len(rest) == 1:
        return ("LIST " if verb == "GET" else verb + " ") + rest[0]
    if len(rest) >= 3:
        return f"{verb} {rest[0]}/{rest[2]}"
    return f"{verb} {rest[0]}"


deep_copy = json_copy
"""A deep copy of a JSON object (``base.objects.json_copy``; kept under this name for callers)."""


class ApiClient:
    """An API client over one pooled aiohttp session. Implements ``informers.Transport``.

    Use as ``async with ApiClient(config) as client:`` or call ``await client.close()``. The
    session is created on first use inside the running loop. Not thread-safe: one event loop.
    """

    def __init__(self, config: ClientConfig, options: ClientOptions | None = None) -> None:
        self.config = config
        self.options = options or ClientOptions()
        self._clock: Clock = self.options.clock
        self._metrics = ClientMetrics.for_registry(self.options.registry)
        self._host = config.host
        # (verb, HTTP status) -> the rest_client_* series of a completed request: looking a
        # labelled child up per request cost ~6% of the client's CPU per request.
        self._series: dict[tuple[str, int], tuple[Counter, Histogram, Histogram, Histogram]] = {}
        self._limiter = (
            TokenBucket(self.options.qps, self.options.effective_burst, clock=self._clock)
            if self.options.qps > 0
            else None
        )
        self._adaptive = (
            AdaptiveLimit(self.options.adaptive, clock=self._clock)
            if self.options.adaptive is not None
            else None
        )
        if self._adaptive is not None:
            AdaptiveLimitCollector.for_registry(self.options.registry).track(
                self._adaptive, self._host, self.options.name
            )
        self._ssl = config.ssl_context()
        # kubeconfig tls-server-name: verify the certificate against it, not the URL's host
        self._server_hostname = config.tls_server_name if config.is_https else None
        self._session: aiohttp.ClientSession | None = None
        self._pool: Http1Pool | None = None
        url = yarl.URL(config.server)
        self._base_path = url.path.rstrip("/")  # a proxy's prefix, e.g. /k8s/clusters/c-1
        self._origin = (url.host or "", url.port or (443 if config.is_https else 80))
        # Constant request headers, encoded once (http1 transport).
        self._fixed_headers = (
            f"User-Agent: {self.options.user_agent}\r\nAccept: application/json\r\n".encode()
        )
        self._credentials = config.new_credentials(clock=self._clock)

    # -- lifecycle -----------------------------------------------------------------------------

    async def __aenter__(self) -> ApiClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the pooled connections (open watches end). Idempotent."""
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    def _pool_now(self) -> Http1Pool:
        if self._pool is None:
            host, port = self._origin
            self._pool = Http1Pool(
                host,
                port,
                ssl_context=self._ssl if self.config.is_https else None,
                server_hostname=self._server_hostname or (host if self.config.is_https else None),
                limit=self.options.connection_limit,
                connect_timeout=self.options.connect_timeout,
            )
        return self._pool

    async def _exchange(
        self,
        method: str,
        path: str,
        query: Mapping[str, str] | None,
        data: bytes | None,
        ctype: str | None,
        per_try: float | None,
    ) -> tuple[int, str | None, bytes, bool]:
        """One request and its whole answer: (status, Retry-After, body, whether the server
        has API Priority and Fairness). No answer raises ``ConnectionError`` (http1),
        ``aiohttp.ClientError`` or ``TimeoutError``."""
        if self.options.transport == "http1":
            target = self._base_path + path
            if query:
                target += "?" + urlencode(query)
            lines = self._fixed_headers
            auth = await self._credentials.authorization()
            if auth:
                lines += b"Authorization: " + auth.encode("latin-1") + b"\r\n"
            if ctype:
                lines += b"Content-Type: " + ctype.encode("latin-1") + b"\r\n"
            answer = await self._pool_now().request(method, target, lines, data, timeout=per_try)
            return answer.status, answer.retry_after, answer.body, answer.fair_queuing
        headers = await self._headers(ctype)
        client_timeout = aiohttp.ClientTimeout(
            total=per_try, sock_connect=self.options.connect_timeout
        )
        async with self._session_now().request(
            method,
            self.config.server + path,
            params=query,
            data=data,
            headers=headers,
            timeout=client_timeout,
            ssl=self._ssl if self._ssl is not None else True,
            server_hostname=self._server_hostname,
        ) as resp:
            fair_queuing = "X-Kubernetes-PF-FlowSchema-UID" in resp.headers
            return resp.status, resp.headers.get("Retry-After"), await resp.read(), fair_queuing

    def _session_now(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self.options.connection_limit,
                ssl=self._ssl if self._ssl is not None else True,
                enable_cleanup_closed=self._ssl is not None,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                headers={"User-Agent": self.options.user_agent, "Accept": "application/json"},
                skip_auto_headers=("Content-Type",),
            )
        return self._session

    # -- Transport -----------------------------------------------------------------------------

    async def request_json(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str | None = None,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """One request; the answer parsed once with orjson (an empty body gives ``{}``).

        Non-2xx raises ``ApiStatusError``; no answer raises ``ApiConnectionError`` (a
        ``ConnectionError``) or ``TimeoutError``. ``timeout`` bounds each attempt end to end;
        ``None`` uses ``ClientOptions.request_timeout``.
        """
        raw = await self.request_bytes(
            method, path, query=query, body=body, content_type=content_type, timeout=timeout
        )
        if not raw:
            return {}
        parsed = orjson.loads(raw)
        if not isinstance(parsed, dict):
            raise ApiStatusError(
                500,
                reason="InternalError",
                message=f"{method} {path}: expected a JSON object, got {type(parsed).__name__}",
            )
        return parsed

    async def request_bytes(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str | None = None,
        timeout: float | None = None,
    ) -> bytes:
        """Like ``request_json`` but returns the raw body (pod logs, or to parse elsewhere)."""
        data, ctype = _encode(body, content_type)
        per_try = self.options.request_timeout if timeout is None else timeout
        method = method.upper()
        attempt = 0
        reauthenticated = False
        while True:
            ticket = await self._admit(method)
            status: int | None = None
            retry_after_header: str | None = None
            timed_out = False
            start = perf_counter()
            try:
                status, retry_after_header, raw, fair_queuing = await self._exchange(
                    method, path, query, data, ctype, per_try
                )
                if fair_queuing and self._adaptive is not None:
                    self._adaptive.note_fair_queuing()
            except (aiohttp.ClientError, ConnectionError) as e:
                self._observe_failure(method, start)
                if isinstance(e, TimeoutError):
                    timed_out = True
                    raise
                raise ApiConnectionError(f"{method} {path}: {e}") from e
            except TimeoutError:
                timed_out = True
                self._observe_failure(method, start)
                raise
            finally:
                retry_after = self._retry_after_seconds(retry_after_header)
                if ticket is not None:
                    self._settle(ticket, method, path, start, status, retry_after, timed_out)
            self._observe(method, status, start, len(data) if data else 0, len(raw))
            if 200 <= status < 300:
                return raw
            if status == 401 and not reauthenticated:
                reauthenticated = True  # the credential expired or was revoked: fetch, retry once
                self._credentials.invalidate()
                continue
            delay = self._retry_delay(status, retry_after)
            if delay is not None and attempt < self.options.max_retries:
                attempt += 1
                self._metrics.retries.labels(str(status), method, self._host).inc()
                await self._clock.sleep(delay)
                continue
            raise _status_error(method, path, status, raw, retry_after_header)

    def stream_lines(
        self,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        timeout: float | None = None,
        keep_blank: bool = False,
    ) -> contextlib.AbstractAsyncContextManager[AsyncIterator[bytes]]:
        """A watch: yields each newline-delimited JSON line as ``bytes``, unparsed.

        ``timeout`` bounds connecting plus the wait for each chunk (an idle stream), not the whole
        stream (use the server's ``timeoutSeconds`` for that). 429 on open is retried like other
        requests; other non-2xx raises ``ApiStatusError`` from ``__aenter__``. Lines of any length
        are supported (aiohttp's ``readline`` caps them at 128 KiB; we split ourselves). Blank
        lines are skipped unless ``keep_blank`` (a followed pod log, whose blank lines are text).
        """
        return self._stream(path, query, timeout, keep_blank)

    @contextlib.asynccontextmanager
    async def _stream(
        self,
        path: str,
        query: Mapping[str, str] | None,
        timeout: float | None,
        keep_blank: bool = False,
    ) -> AsyncIterator[AsyncIterator[bytes]]:
        client_timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=self.options.connect_timeout, sock_read=timeout
        )
        attempt = 0
        reauthenticated = False
        while True:
            await self._throttle("GET")  # a watch holds no in-flight slot: it is long-running
            headers = await self._headers(None)
            start = perf_counter()
            try:
                resp = await self._session_now().get(
                    self.config.server + path,
                    params=query,
                    headers=headers,
                    timeout=client_timeout,
                    ssl=self._ssl if self._ssl is not None else True,
                    server_hostname=self._server_hostname,
                )
            except aiohttp.ClientError as e:
                self._observe_failure("GET", start)
                if isinstance(e, TimeoutError):
                    raise
                raise ApiConnectionError(f"GET {path} (watch): {e}") from e
            self._metrics.requests.labels(str(resp.status), "GET", self._host).inc()
            self._metrics.request_duration.labels("GET", self._host).observe(perf_counter() - start)
            if 200 <= resp.status < 300:
                break
            try:
                raw = await resp.read()
            except aiohttp.ClientError:
                raw = b""
            finally:
                resp.release()
            if resp.status == 401 and not reauthenticated:
                reauthenticated = True
                self._credentials.invalidate()
                continue
            retry_after_header = resp.headers.get("Retry-After")
            retry_after = self._retry_after_seconds(retry_after_header)
            if self._adaptive is not None and retry_after is not None:
                self._adaptive.pause(retry_after)
            delay = self._retry_delay(resp.status, retry_after)
            if delay is not None and attempt < self.options.max_retries:
                attempt += 1
                self._metrics.retries.labels(str(resp.status), "GET", self._host).inc()
                await self._clock.sleep(delay)
                continue
            raise _status_error("GET", path, resp.status, raw, retry_after_header)
        try:
            yield _lines(resp, path, keep_blank)
        finally:
            resp.close()  # a watch cannot be drained; drop the connection

    # -- conveniences by ResourceRef -----------------------------------------------------------

    async def get(self, ref: ResourceRef, namespace: str | None, name: str) -> dict[str, Any]:
        """GET one object; ``ApiStatusError.is_not_found`` when it does not exist."""
        return await self.request_json("GET", ref.item_path(namespace, name))

    async def list(
        self,
        ref: ResourceRef,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int | None = None,
        continue_token: str | None = None,
        resource_version: str | None = None,
    ) -> dict[str, Any]:
        """One LIST page (the List object: ``items``, ``metadata.resourceVersion``/``continue``).

        ``namespace=None`` lists all namespaces. Use ``list_all`` to follow ``continue`` tokens.
        """
        query: dict[str, str] = {}
        if label_selector:
            query["labelSelector"] = label_selector
        if field_selector:
            query["fieldSelector"] = field_selector
        if limit:
            query["limit"] = str(limit)
        if continue_token:
            query["continue"] = continue_token
        if resource_version is not None:
            query["resourceVersion"] = resource_version
        return await self.request_json("GET", ref.collection_path(namespace), query=query)

    async def list_all(
        self,
        ref: ResourceRef,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        page_size: int = 500,
    ) -> builtins.list[dict[str, Any]]:
        """Every item, following ``continue`` pages of ``page_size`` (client-go's pager: 500)."""
        items: builtins.list[dict[str, Any]] = []
        token: str | None = None
        while True:
            page = await self.list(
                ref,
                namespace,
                label_selector=label_selector,
                field_selector=field_selector,
                limit=page_size,
                continue_token=token,
            )
            items.extend(page.get("items") or [])
            token = (page.get("metadata") or {}).get("continue") or None
            if not token:
                return items

    async def create(
        self,
        ref: ResourceRef,
        obj: Mapping[str, Any],
        *,
        namespace: str | None = None,
        field_manager: str | None = None,
        read_answer: bool = True,
    ) -> dict[str, Any]:
        """POST ``obj``; the namespace is ``namespace`` or ``obj.metadata.namespace``.

        Returns the created object, or ``{}`` with ``read_answer=False``: a controller that
        learns its children from an informer skips parsing an answer it would drop (a pod's is
        a few KB; parsing the creates' answers was 2 % of a burst's operator CPU)."""
        ns = (namespace or _meta(obj).get("namespace")) if ref.namespaced else None
        if ref.namespaced and not ns:
            raise ValueError(
                f"create {ref}: pass namespace= or set metadata.namespace on the object"
            )
        path, query = ref.collection_path(ns), _fm(field_manager)
        if not read_answer:
            await self.request_bytes("POST", path, body=obj, query=query)
            return {}
        return await self.request_json("POST", path, body=obj, query=query)

    async def create_if_absent(
        self, ref: ResourceRef, obj: Mapping[str, Any], *, namespace: str | None = None
    ) -> bool:
        """``create``, where an object of that name already existing is fine: True when this
        call created it. Other refusals raise as ``create``'s do."""
        try:
            await self.create(ref, obj, namespace=namespace)
        except ApiStatusError as e:
            if e.is_already_exists:
                return False
            raise
        return True

    async def update(
        self, ref: ResourceRef, obj: Mapping[str, Any], *, field_manager: str | None = None
    ) -> dict[str, Any]:
        """PUT ``obj`` at its own name/namespace; its ``metadata.resourceVersion`` guards the write
        (409 ``is_conflict`` when stale)."""
        return await self.request_json(
            "PUT", self._own_path(ref, obj, None), body=obj, query=_fm(field_manager)
        )

    async def update_status(
        self, ref: ResourceRef, obj: Mapping[str, Any], *, field_manager: str | None = None
    ) -> dict[str, Any]:
        """PUT ``obj`` to its ``/status`` subresource (only ``status`` changes server-side)."""
        return await self.request_json(
            "PUT", self._own_path(ref, obj, "status"), body=obj, query=_fm(field_manager)
        )

    async def patch(
        self,
        ref: ResourceRef,
        namespace: str | None,
        name: str,
        patch: Any,
        *,
        patch_type: PatchType = "merge",
        subresource: str | None = None,
        field_manager: str | None = None,
        force: bool | None = None,
    ) -> dict[str, Any]:
        """PATCH one object. ``patch`` is a dict (merge, strategic, apply) or a list of operations
        (``json``, RFC 6902). Server-side apply (``apply``) needs ``field_manager``; ``force``
        takes over conflicting fields."""
        if patch_type not in PATCH_CONTENT_TYPES:
            raise ValueError(
                f"patch_type {patch_type!r} is not one of {sorted(PATCH_CONTENT_TYPES)}"
            )
        if patch_type == "apply" and not field_manager:
            raise ValueError("patch_type='apply' needs field_manager= (server-side apply owner)")
        query = _fm(field_manager)
        if force is not None:
            query["force"] = "true" if force else "false"
        return await self.request_json(
            "PATCH",
            ref.item_path(namespace, name, subresource),
            body=patch,
            content_type=PATCH_CONTENT_TYPES[patch_type],
            query=query,
        )

    async def delete(
        self,
        ref: ResourceRef,
        namespace: str | None,
        name: str,
        *,
        propagation_policy: Literal["Foreground", "Background", "Orphan"] | None = None,
        grace_period_seconds: int | None = None,
        uid: str | None = None,
        resource_version: str | None = None,
    ) -> dict[str, Any]:
        """DELETE one object. ``uid``/``resource_version`` become preconditions (409 on mismatch).
        Returns the server's answer: the object (with deletionTimestamp) or a ``Status``."""
        options: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if propagation_policy:
            options["propagationPolicy"] = propagation_policy
        if grace_period_seconds is not None:
            options["gracePeriodSeconds"] = grace_period_seconds
        preconditions = {
            k: v for k, v in (("uid", uid), ("resourceVersion", resource_version)) if v
        }
        if preconditions:
            options["preconditions"] = preconditions
        body = options if len(options) > 2 else None
        return await self.request_json("DELETE", ref.item_path(namespace, name), body=body)

    async def update_status_with_retry(
        self,
        ref: ResourceRef,
        namespace: str | None,
        name: str,
        mutate: Callable[[dict[str, Any]], dict[str, Any] | None],
        *,
        current: Mapping[str, Any] | None = None,
        max_attempts: int = 5,
    ) -> dict[str, Any] | None:
        """Write ``mutate(object)`` to the status subresource, re-reading on conflict.

        ``mutate`` gets a private deep copy of the object and returns the object to write (it may
        change and return its argument), or ``None`` when nothing needs writing. A result equal
        to the object it was given is also not written (DESIGN: status is written only when it
        changed). ``current`` (e.g. the cached object) saves the first GET. On 409 the object is
        read fresh and ``mutate`` runs again, at most ``max_attempts`` writes in all; the last
        conflict is raised when they are spent. Returns the stored object after a write, or
        ``None`` when nothing was written. NotFound propagates.
        """
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {max_attempts}")
        base = dict(current) if current is not None else await self.get(ref, namespace, name)
        for attempt in range(1, max_attempts + 1):
            copy = deep_copy(base)
            desired = mutate(copy)
            if desired is None or desired == base:
                return None
            try:
                return await self.update_status(ref, desired)
            except ApiStatusError as e:
                if not e.is_conflict or attempt == max_attempts:
                    raise
            base = await self.get(ref, namespace, name)
        raise AssertionError("unreachable")  # pragma: no cover

    # -- internals -----------------------------------------------------------------------------

    def _own_path(self, ref: ResourceRef, obj: Mapping[str, Any], sub: str | None) -> str:
        meta = _meta(obj)
        name = str(meta.get("name") or "")
        if not name:
            raise ValueError(f"{ref}: the object has no metadata.name to address it by")
        return ref.item_path(meta.get("namespace") if ref.namespaced else None, name, sub)

    async def _headers(self, content_type: str | None) -> dict[str, str]:
        headers: dict[str, str] = {}
        auth = await self._credentials.authorization()
        if auth:
            headers["Authorization"] = auth
        if content_type:
            headers["Content-Type"] = content_type
        return headers

    async def _throttle(self, verb: str) -> None:
        """For watches: sit out a Retry-After pause and take a token of the fixed QPS cap."""
        waited = 0.0
        if self._adaptive is not None and self._adaptive.paused_for > 0:
            waited = self._adaptive.paused_for
            await self._adaptive.wait_out_pause()
        waited += await self._take_token()
        if self._limiter is not None or waited:
            self._metrics.rate_limiter_duration.labels(verb, self._host).observe(waited)

    async def _take_token(self) -> float:
        """Take a token of the fixed QPS cap, if one is set; the seconds waited for it."""
        if self._limiter is None:
            return 0.0
        delay = self._limiter.reserve()
        if delay > 0:
            await self._clock.sleep(delay)
        return max(delay, 0.0)

    async def _admit(self, verb: str) -> Ticket | None:
        """Wait for the fixed QPS cap (if set), then for an adaptive slot (if enabled); the ticket
        must go back through ``_settle``. The wait is observed as client-go's rate-limiter
        latency."""
        waited = await self._take_token()
        ticket = None
        if self._adaptive is not None:
            ticket = self._adaptive.try_acquire() or await self._adaptive.acquire(
                priority=current_request_priority()
            )
            waited += ticket.waited
        if waited or self._limiter is not None:
            self._metrics.rate_limiter_duration.labels(verb, self._host).observe(waited)
        return ticket

    def _settle(
        self,
        ticket: Ticket,
        verb: str,
        path: str,
        start: float,
        status: int | None,
        retry_after: float | None,
        timed_out: bool,
    ) -> None:
        """Give the adaptive limiter its slot back with what the answer says about the server."""
        assert self._adaptive is not None
        self._adaptive.observe(
            ticket,
            # the kind only matters where latency is read (no APF): skip parsing the path there
            kind="" if self._adaptive.fair_queuing else request_kind(verb, path),
            latency=perf_counter() - start,
            status=status,
            retry_after=retry_after,
            timed_out=timed_out,
        )

    def _retry_after_seconds(self, header: str | None) -> float | None:
        """A Retry-After header in seconds, capped at ``max_retry_after``; None when absent."""
        seconds = _parse_retry_after(header)
        return None if seconds is None else min(seconds, self.options.max_retry_after)

    def _retry_delay(self, status: int, seconds: float | None) -> float | None:
        """Seconds to wait before retrying (``seconds``: the answer's Retry-After), or None when
        the answer is final."""
        if status == 429:
            delay = seconds if seconds is not None else self.options.default_retry_after
        elif 500 <= status <= 504 and seconds is not None:
            delay = seconds
        else:
            return None
        return min(delay, self.options.max_retry_after)

    def _observe(self, verb: str, status: int, start: float, sent: int, received: int) -> None:
        series = self._series.get((verb, status))
        if series is None:
            m = self._metrics
            series = self._series[(verb, status)] = (
                m.requests.labels(str(status), verb, self._host),
                m.request_duration.labels(verb, self._host),
                m.request_size.labels(verb, self._host),
                m.response_size.labels(verb, self._host),
            )
        requests, duration, request_size, response_size = series
        requests.inc()
        duration.observe(perf_counter() - start)
        request_size.observe(sent)
        response_size.observe(received)

    def _observe_failure(self, verb: str, start: float) -> None:
        self._metrics.requests.labels(ERROR_CODE, verb, self._host).inc()
        self._metrics.request_duration.labels(verb, self._host).observe(perf_counter() - start)


async def _lines(
    resp: aiohttp.ClientResponse, path: str, keep_blank: bool = False
) -> AsyncIterator[bytes]:
    buffer = b""
    try:
        async for chunk in resp.content.iter_any():
            buffer += chunk
            if b"\n" not in chunk:
                continue
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                if keep_blank or line.strip():
                    yield line
    except aiohttp.ClientPayloadError as e:
        raise ApiConnectionError(f"GET {path} (watch): stream broken: {e}") from e
    except aiohttp.ClientError as e:
        if isinstance(e, TimeoutError):
            raise
        raise ApiConnectionError(f"GET {path} (watch): {e}") from e
    except RuntimeError as e:
        # aiohttp's StreamReader raises a bare RuntimeError("Connection closed.") when the
        # connection was lost (the server killed) before the payload was marked broken
        if not str(e).startswith("Connection closed"):
            raise
        raise ApiConnectionError(f"GET {path} (watch): stream broken: {e}") from e
    if buffer.strip():
        yield buffer


def _encode(body: Any, content_type: str | None) -> tuple[bytes | None, str | None]:
    if body is None:
        return None, content_type
    if isinstance(body, bytes):
        return body, content_type or "application/json"
    return orjson.dumps(body), content_type or "application/json"


def _fm(field_manager: str | None) -> dict[str, str]:
    return {"fieldManager": field_manager} if field_manager else {}


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def _parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header; client-go reads whole seconds, we accept decimals."""
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None  # an HTTP-date: the API server never sends one
    return seconds if seconds >= 0 else None


def _status_error(
    method: str, path: str, status: int, raw: bytes, retry_after_header: str | None
) -> ApiStatusError:
    retry_after = _parse_retry_after(retry_after_header)
    try:
        decoded = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        decoded = None
    if isinstance(decoded, dict) and decoded.get("kind") == "Status":
        return ApiStatusError.from_status(decoded, code=status, retry_after=retry_after)
    text = raw[:300].decode(errors="replace").strip()
    return ApiStatusError(
        status,
        reason=_REASONS.get(status, ""),
        message=f"{method} {path}: {text or 'no body'}",
        retry_after=retry_after,
    )
