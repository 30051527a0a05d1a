"""The embedded Kubernetes API server: aiohttp app, routing and lifecycle.

``ApiServer`` wires the registry, store, watch hub, write path (``rest.ObjectService``) and
pod logs, and serves them over HTTP. Extension points, all to be set before ``start()``:

- ``admission``: ordered ``AdmissionPlugin`` list (see ``hooks.py``);
- ``middlewares``: aiohttp middlewares run outside the API error handling (faults, metrics);
- ``extra_routes``: aiohttp ``RouteDef``s served before the API routes (e.g. ``/metrics``);
- ``store.add_listener(cb)``: every committed change (GC, namespaces, metrics, pod logs);
- ``metrics`` (``/metrics``) and ``faults`` (``/kubetrain/faults``) are installed already;
- ``options.backend``: a ``StorageBackend`` loaded at start and appended to after commits.
"""

from __future__ import annotations

import asyncio
import functools
import socket
import ssl
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from kubetrain.base.clock import RealClock

from . import errors
from .admission import WebhookAdmission
from .authn import BearerTokenAuthenticator
from .builtins import DEFAULT_NAMESPACES, ClusterIPAllocator, builtin_resources
from .conversion import Converter
from .discovery import Discovery
from .fasthttp import FastServing, FastSite
from .faults import FaultInjector
from .gc import GarbageCollector
from .hooks import AdmissionPlugin
from .http_json import json_response
from .metrics import ApiMetrics
from .namespaces import NamespaceController
from .options import ApiServerOptions
from .podlogs import PodLogs
from .resource_handlers import handle_resource
from .resources import ResourceInfo, ResourceRegistry
from .rest import ObjectService
from .rest_common import WriteOptions
from .serving import ResourcePath
from .store import ObjectStore
from .watch import WatchHub

__all__ = ["ApiServer", "Middleware"]

Middleware = Callable[
    [web.Request, Callable[[web.Request], Awaitable[web.StreamResponse]]],
    Awaitable[web.StreamResponse],
]

_NS_SUBRESOURCES = frozenset({"status", "finalize"})


def page_not_found() -> web.Response:
    """kube-apiserver's answer outside ``/api`` and the served ``/apis/<group>`` trees: Go's
    ``http.NotFound`` (text/plain ``404 page not found``), not a Status. Inside a served group
    an unknown version, resource or subresource gets the JSON Status (``not_found_path``)."""
    return web.Response(status=404, text="404 page not found\n", content_type="text/plain")


SIM_GROUP = "sim.kubetrain.dev"
_RESOURCE_PATHS_SIZE = 4096
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class ApiServer:
    """The API server. Construct, adjust the hooks, ``await start(host, port)``, ``await stop()``."""

    def __init__(self, options: ApiServerOptions | None = None) -> None:
        self.options = options or ApiServerOptions()
        self.registry = ResourceRegistry()
        for info in builtin_resources():
            self.registry.add(info)
        self.hub = WatchHub(history_size=self.options.watch_history_size)
        self.store = ObjectStore(hub=self.hub, backend=self.options.backend)
        self.admission: list[AdmissionPlugin] = []
        self.middlewares: list[Middleware] = []
        self.extra_routes: list[web.RouteDef] = []
        self.cluster_ips = ClusterIPAllocator(self.options.service_cidr)
        clock = self.options.clock

        def clock_time() -> float:
            return clock.utcnow().timestamp()

        # the real clock's utcnow() is time.time() wrapped in a datetime: skip the wrapping on
        # the write path (every create and delete stamps a time)
        wall_time: Callable[[], float] = time.time if type(clock) is RealClock else clock_time

        self.rest = ObjectService(
            store=self.store,
            registry=self.registry,
            admission=self.admission,
            cluster_ips=self.cluster_ips,
            clock=wall_time,
        )
        self.webhooks = WebhookAdmission(store=self.store, registry=self.registry)
        self.admission.extend([self.webhooks.mutating, self.webhooks.validating])
        self.rest.converter = Converter(client=self.webhooks.client)
        self.webhooks.convert = self.rest.converted  # Equivalent webhooks see converted objects
        self.gc = GarbageCollector(
            store=self.store, registry=self.registry, rest=self.rest, options=self.options.gc
        )
        self.namespace_controller = NamespaceController(
            store=self.store, registry=self.registry, rest=self.rest
        )
        self.pod_logs = PodLogs(clock=wall_time)
        self.discovery = Discovery(self.registry, git_version=self.options.git_version)
        self.store.add_listener(self._on_change)
        # request metrics outermost, so injected faults are counted too (metrics.py, faults.py)
        self.metrics = ApiMetrics(store=self.store, hub=self.hub, registry=self.registry)
        self.faults = FaultInjector(store=self.store, hub=self.hub, registry=self.registry)
        self.authn = (
            BearerTokenAuthenticator(self.options.tokens)
            if self.options.tokens is not None
            else None
        )
        self.middlewares.append(self.metrics.middleware)
        if self.authn is not None:
            self.middlewares.append(self.authn.middleware)
        self.middlewares.append(self.faults.middleware)
        self.extra_routes.extend([*self.metrics.routes(), *self.faults.routes()])
        self.url = ""
        self._runner: web.AppRunner | None = None
        self._fast: FastServing | None = None
        self._bootstrapped = False
        # URL path -> (registry generation, what it names): the routing of a resource request
        # depends on nothing else, and clients repeat paths (every create of a kind POSTs to one)
        self._resource_paths: dict[str, tuple[int, ResourcePath]] = {}

    # -- lifecycle ---------------------------------------------------------------------------

    async def bootstrap(self) -> None:
        """Load storage, serve stored CRDs and create the default namespaces (idempotent)."""
        if self._bootstrapped:
            return
        self._bootstrapped = True
        self.store.load()
        for _, svc in self.store.iter_range(("", "services"), None):
            ip = (svc.get("spec") or {}).get("clusterIP")
            if ip and ip != "None":
                self.cluster_ips.reserve(ip)
        self.rest.register_loaded_crds()
        ns_info = self.registry.lookup("", "v1", "namespaces")
        assert ns_info is not None
        for name in DEFAULT_NAMESPACES:
            if self.store.get(ns_info.storage_key, "", name) is None:
                await self.rest.create(
                    ns_info,
                    "",
                    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
                    WriteOptions(),
                )

    def _middleware_chain(self) -> list[Any]:
        # the durability wait only where there is something to wait for (--data): one
        # middleware less on every request of an in-memory server
        durable = [self._durable_middleware] if self.store.persistent else []
        return [*self.middlewares, *durable, self._error_middleware]

    def _api_handler(self) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        """``_dispatch`` inside the middlewares, as the app runs it for ``/api`` and ``/apis``
        (what ``fasthttp`` serves)."""
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]] = self._dispatch
        for middleware in reversed(self._middleware_chain()):
            if middleware == self.faults.middleware:
                handler = self.faults.around(handler)
            else:
                handler = functools.partial(middleware, handler=handler)
        return handler

    def _fast_path_applies(self) -> bool:
        """The fast path runs the server's own middlewares only, and needs ``/api/...`` and
        ``/apis/...`` to reach ``_dispatch``: off with any other middleware, or an extra route
        under ``/api``."""
        own = [self.metrics.middleware, self.faults.middleware]
        if self.authn is not None:
            own.append(self.authn.middleware)
        if any(m not in own for m in self.middlewares):
            return False
        for route in self.extra_routes:
            path = str(getattr(route, "path", getattr(route, "prefix", "/api")))
            if path.startswith("/api"):
                return False
        return True

    def make_app(self) -> web.Application:
        """The aiohttp application (middlewares and extra routes as set now)."""
        app = web.Application(
            middlewares=self._middleware_chain(),
            client_max_size=self.options.max_body_bytes,
        )
        app.add_routes(self.extra_routes)
        get = web.get
        app.add_routes(
            [
                get("/version", self._version),
                get("/healthz", self._ok),
                get("/livez", self._ok),
                get("/readyz", self._ok),
                get("/api", self._api),
                get("/apis", self._apis),
                get("/openapi/v3", self._openapi_index),
                get("/openapi/v3/{path:.*}", self._openapi_doc),
                web.route("*", "/api/{tail:(?s:.*)}", self._dispatch),
                web.route("*", "/apis/{tail:(?s:.*)}", self._dispatch),
                web.route("*", "/{tail:(?s:.*)}", self._not_found),
            ]
        )
        return app

    async def start(
        self, host: str = "127.0.0.1", port: int = 0, *, ssl_context: ssl.SSLContext | None = None
    ) -> str:
        """Bootstrap and serve on ``host:port`` (0: a free port); return the base URL:
        ``https://`` with ``ssl_context`` (its certificate loaded, TLS 1.2+), else ``http://``."""
        await self.bootstrap()
        self.webhooks.start()
        if self.options.controllers:
            self.gc.start()
            self.namespace_controller.start()
        app = self.make_app()
        self._runner = web.AppRunner(
            app, handler_cancellation=True, access_log=None, shutdown_timeout=0.5
        )
        await self._runner.setup()
        assert self._runner.server is not None
        self._fast = FastServing(
            self._api_handler(),
            self._runner.server,
            max_body_bytes=self.options.max_body_bytes,
            enabled=self._fast_path_applies(),
        )
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        site = FastSite(self._runner, sock, self._fast, ssl_context=ssl_context)
        await site.start()
        bound_port = sock.getsockname()[1]
        scheme = "https" if ssl_context is not None else "http"
        self.url = f"{scheme}://{host}:{bound_port}"
        return self.url

    async def stop(self) -> None:
        """Close watches, stop serving and flush the backend."""
        self.hub.close_all()
        await self.gc.stop()
        await self.namespace_controller.stop()
        if self._fast is not None:
            await self._fast.close()
            self._fast = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self.webhooks.close()
        self.store.flush()

    # -- store listener ----------------------------------------------------------------------

    def _on_change(
        self, event_type: str, info: ResourceInfo, obj: dict[str, Any], old: dict[str, Any] | None
    ) -> None:
        if info.storage_key == ("", "pods"):
            meta = obj["metadata"]
            if event_type == "DELETED":
                self.pod_logs.drop(meta.get("namespace", ""), meta["name"])
            else:
                self.pod_logs.notify(meta.get("namespace", ""), meta["name"])

    # -- middleware and small handlers -------------------------------------------------------

    @web.middleware
    async def _error_middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        try:
            return await handler(request)
        except errors.ApiError as exc:
            return json_response(exc.to_status(), status=exc.code, headers=exc.headers or None)
        except web.HTTPException:
            raise
        except (asyncio.CancelledError, ConnectionResetError):
            raise
        except Exception as exc:  # an internal error must still be a Status
            err = errors.internal(f"{type(exc).__name__}: {exc}")
            return json_response(err.to_status(), status=500)

    @web.middleware
    async def _durable_middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """Answer a mutating request only once what it committed is durable (the store's
        backend committed it: group commit, as kube-apiserver answers after etcd's commit);
        a success becomes a 500 Status when persistence failed. Reads, and writes during which
        nothing was committed (refused ones, the simulator's pod-log channel), pass through.
        Installed only with a persistent store (``make_app``)."""
        rv_before = self.store.rv
        response = await handler(request)
        if (
            request.method not in _READ_METHODS
            and self.store.rv != rv_before
            and not self.store.is_durable()
        ):
            try:
                await self.store.wait_durable()
            except errors.ApiError as exc:
                if response.status < 400:  # an error answer stays: it acknowledged nothing
                    return json_response(exc.to_status(), status=exc.code)
        return response

    async def _ok(self, request: web.Request) -> web.Response:
        return web.Response(text="ok", content_type="text/plain")

    async def _version(self, request: web.Request) -> web.Response:
        return json_response(self.discovery.version())

    async def _api(self, request: web.Request) -> web.Response:
        return web.Response(
            body=self.discovery.api_versions(request.host), content_type="application/json"
        )

    async def _apis(self, request: web.Request) -> web.Response:
        return web.Response(body=self.discovery.group_list(), content_type="application/json")

    async def _openapi_index(self, request: web.Request) -> web.Response:
        return web.Response(body=self.discovery.openapi_index(), content_type="application/json")

    async def _openapi_doc(self, request: web.Request) -> web.Response:
        parts = request.match_info["path"].strip("/").split("/")
        if len(parts) == 2 and parts[0] == "api":
            doc = self.discovery.openapi_doc("", parts[1])
        elif len(parts) == 3 and parts[0] == "apis":
            doc = self.discovery.openapi_doc(parts[1], parts[2])
        else:
            doc = None
        if doc is None:
            raise errors.not_found_path()
        return web.Response(body=doc, content_type="application/json")

    async def _not_found(self, request: web.Request) -> web.Response:
        return page_not_found()

    # -- routing -----------------------------------------------------------------------------

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        known = self._resource_paths.get(path)
        if known is not None and known[0] == self.registry.generation:
            return await handle_resource(self, request, known[1])
        parts = [p for p in path.split("/") if p]
        if parts[0] == "api":
            if len(parts) < 2:
                raise errors.not_found_path()
            group, version, rest = "", parts[1], parts[2:]
        else:
            if len(parts) >= 2 and parts[1] != SIM_GROUP and not self.registry.has_group(parts[1]):
                return page_not_found()
            if len(parts) < 3:
                if len(parts) == 2 and request.method == "GET":
                    doc = self.discovery.group(parts[1])
                    if doc is not None:
                        return web.Response(body=doc, content_type="application/json")
                raise errors.not_found_path()
            group, version, rest = parts[1], parts[2], parts[3:]
        if not rest:
            if request.method != "GET":
                raise errors.not_found_path()
            doc = self.discovery.resource_list(group, version)
            if doc is None:
                raise errors.not_found_path()
            return web.Response(body=doc, content_type="application/json")
        if group == SIM_GROUP:
            return await self._sim(request, rest)
        rp = self._resource_path(group, version, rest)
        paths = self._resource_paths
        if len(paths) >= _RESOURCE_PATHS_SIZE:
            paths.clear()
        paths[path] = (self.registry.generation, rp)
        return await handle_resource(self, request, rp)

    def _resource_path(self, group: str, version: str, rest: list[str]) -> ResourcePath:
        namespace: str | None = None
        if (
            rest[0] == "namespaces"
            and len(rest) >= 3
            and not (len(rest) == 3 and rest[2] in _NS_SUBRESOURCES and group == "")
        ):
            namespace, rest = rest[1], rest[2:]
        if len(rest) > 3:
            raise errors.not_found_path()
        info = self.registry.lookup(group, version, rest[0])
        if info is None:
            raise errors.not_found_path()
        if namespace is not None and not info.namespaced:
            raise errors.not_found_path()
        name = rest[1] if len(rest) > 1 else ""
        sub = rest[2] if len(rest) > 2 else ""
        return ResourcePath(info=info, namespace=namespace, name=name, subresource=sub)

    async def _sim(self, request: web.Request, rest: list[str]) -> web.Response:
        """``POST /apis/sim.kubetrain.dev/v1/namespaces/{ns}/pods/{pod}/log?container=c``:
        append the text/plain body to the container's log (the node simulator's channel)."""
        if (
            len(rest) != 5
            or rest[0] != "namespaces"
            or rest[2] != "pods"
            or rest[4] != "log"
            or request.method != "POST"
        ):
            raise errors.not_found_path()
        ns, pod = rest[1], rest[3]
        container = request.query.get("container", "")
        if not container:
            raise errors.bad_request("container is required")
        text = (await request.read()).decode("utf-8", "replace")
        count = self.pod_logs.append(ns, pod, container, text)
        return web.Response(
            body=orjson.dumps(
                {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "status": "Success",
                    "details": {"lines": count},
                }
            ),
            status=201,
            content_type="application/json",
        )
