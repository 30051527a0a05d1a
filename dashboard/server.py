"""``Dashboard``: the aiohttp app of docs/dashboard.md over the dashboard's informers.

It owns what a dashboard runs: the informers (``sources.py``) or the factory it was given, the
row index, the live hub, the scraper of the operator's metrics, and an HTTP site on ``bind``.
Requests read the caches only; the one exception is an action (``actions.py``) or a pod's log,
which go to the API server with the user's client. Errors are JSON ``{message}`` with a 4xx that
names the problem; a handler's bug is a 500, never a crashed server.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import logging
import time
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from kubetrain.engine.client import ApiClient, ApiConnectionError
from kubetrain.informers.factory import SharedInformerFactory
from kubetrain.informers.transport import ApiStatusError
from kubetrain.reconcilers.jobview import KINDS

from .actions import ActionError, Actions
from .detail import JobDetails
from .index import MAX_LIMIT, JobIndex, JobQuery
from .live import LiveHub, ws_message
from .logs import log_query, stream_log
from .operator_metrics import MetricsScraper, OperatorSeries
from .options import DashboardOptions, parse_bind
from .pods import JOB_INDEX, job_key
from .sources import Sources, served_kinds

__all__ = ["ACTION_HEADER", "STATIC_DIR", "Dashboard"]

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
#: The header every action must carry (docs/dashboard.md: why it stops other sites).
ACTION_HEADER = "X-Kubetrain-Dashboard"
_ACTION_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_PLACEHOLDER = (
    b"<!doctype html><meta charset=utf-8><title>kubetrain dashboard</title>"
    b"<p>The dashboard page is not built (dashboard/static/index.html is missing). "
    b"The API is at <a href=/api/jobs>/api/jobs</a>.</p>"
)


_LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


def refused_host(bind: str, host_header: str) -> str:
    """Why a request's ``Host`` is refused, or ``""``.

    A dashboard bound to loopback answers only requests addressed to a loopback name: a web page
    elsewhere could otherwise point a DNS name of its own at 127.0.0.1 (DNS rebinding) and read
    the jobs, their YAML and logs as a same-origin page. Bound to another address, the operator
    of that address chose who reaches it; every Host is served."""
    bound = parse_bind(bind)[0]
    try:
        loopback = bound == "localhost" or ipaddress.ip_address(bound).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        return ""
    name = host_header.rsplit(":", 1)[0] if not host_header.startswith("[") else host_header
    name = name.split("]")[0].strip("[").lower()
    if name in _LOOPBACK_NAMES or name == bound or name.startswith("127."):
        return ""
    return (
        f"Host {host_header!r} refused: a dashboard bound to loopback ({bind}) answers only "
        "localhost, 127.0.0.1 or [::1] (a guard against DNS rebinding); bind it to another "
        "address to serve other names"
    )


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def _error(status: int, message: str, **extra: Any) -> web.Response:
    return _json({"message": message, **extra}, status)


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("kubetrain")
    except Exception:
        return "unknown"


class Dashboard:
    """The dashboard server (module docstring). ``start()`` returns its URL; ``stop()``."""

    def __init__(
        self,
        client: ApiClient,
        options: DashboardOptions,
        *,
        informers: SharedInformerFactory | None = None,
    ) -> None:
        self.client = client
        self.options = options
        self._factory = informers
        self._owns_factory = informers is None
        self.index = JobIndex()
        self.sources: Sources | None = None
        self.details: JobDetails | None = None
        self.hub = LiveHub(
            version=lambda: self.index.version,
            detail=self._detail,
            clock=options.clock,
            coalesce=options.coalesce_seconds,
            keepalive=options.keepalive_seconds,
            limit=options.client_queue,
        )
        self.index.add_listener(self.hub.row_changed)
        self.actions = Actions(client, default_namespace=options.namespace or "default")
        self.series = OperatorSeries(points=options.metrics_points)
        self.scraper: MetricsScraper | None = None
        self._runner: web.AppRunner | None = None
        self.url = ""
        self.fell_back = False
        """``bind``'s port was taken: the dashboard listens on a free port (``bind_fallback``)."""
        self.kinds: list[str] = []
        self.warnings: list[str] = []
        """What the dashboard cannot show and why (credentials refused a list), with the fix."""

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> str:
        """Discover the served kinds, listen, start the informers and wait for their first lists
        (at most ``sync_timeout``); the URL. Raises OSError when ``bind`` cannot be had."""
        opts = self.options
        host, port = parse_bind(opts.bind)
        self.kinds = await served_kinds(self.client)
        factory = self._factory
        if factory is None:
            factory = SharedInformerFactory(self.client, namespace=opts.namespace, clock=opts.clock)
            self._factory = factory
        self.sources = Sources(
            factory,
            kinds=self.kinds,
            namespace=opts.namespace,
            index=self.index,
            touch=self.hub.job_touched,
        )
        self.details = JobDetails(
            jobs=self.sources.jobs,
            pods=self.sources.pods,
            events=self.sources.events,
            index=self.index,
            now=time.time,
        )
        self.hub.start()
        self.url = await self._serve(host, port)  # first: a taken port fails before any list
        factory.start()
        await self._wait_synced_or_refused(opts.sync_timeout)
        if opts.metrics_url:
            self.scraper = MetricsScraper(
                opts.metrics_url,
                interval=opts.metrics_interval,
                series=self.series,
                clock=opts.clock,
                on_point=self.hub.metrics,
                wall=time.time,
            )
            self.scraper.start()
        return self.url

    async def _wait_synced_or_refused(self, timeout: float) -> None:
        """Until each informer has its first list, or was refused (401/403: the credentials may
        not list it, and retrying will not change that), at most ``timeout`` seconds. A refused
        informer is stopped, its kind no longer served, and the reason and the fix are kept in
        ``warnings`` (``/api/info``; ``kubetrain dashboard`` prints them): a dashboard of a
        namespace-scoped user starts at once and says what it cannot show, instead of waiting
        and showing nothing."""
        assert self.sources is not None
        clock = self.options.clock
        deadline = clock.monotonic() + timeout
        waiting = dict(self.sources.named_informers())
        while waiting:
            for what, informer in list(waiting.items()):
                if informer.has_synced:
                    del waiting[what]
                elif _refused(informer.last_error):
                    del waiting[what]
                    await informer.stop()
                    self.warnings.append(self._refusal(what, informer.last_error))
                    if what in self.kinds:
                        self.kinds.remove(what)
            if not waiting or clock.monotonic() >= deadline:
                break
            await clock.sleep(0.05)
        for warning in self.warnings:  # the command prints them; here for the log's reader
            log.info("dashboard: %s", warning)
        if waiting:
            names = ", ".join(waiting)
            log.warning("dashboard: still waiting for the first list of %s", names)

    def _refusal(self, what: str, err: Exception | None) -> str:
        """The warning for a refused informer: what is not shown, why, and the fix."""
        shown = {"pods": "pods, ready counts and logs", "events": "Events"}.get(what, f"{what}s")
        resource = KINDS[what].plural if what in KINDS else what
        namespace = self.options.namespace
        where = f"in namespace {namespace}" if namespace else "in all namespaces"
        fix = f"ask for list and watch on {resource}"
        if not namespace:
            fix = f"run with -n NAMESPACE for a namespace you may list, or {fix}"
        detail = err.message if isinstance(err, ApiStatusError) and err.message else str(err)
        return (
            f"{shown} are not shown: your credentials may not list {resource} {where} "
            f"({detail}); {fix}"
        )

    async def _serve(self, host: str, port: int) -> str:
        """Listen on ``host:port`` (a free port when it is taken and ``bind_fallback``)."""
        self._runner = web.AppRunner(self.app(), access_log=None, handler_cancellation=True)
        await self._runner.setup()
        try:
            await web.TCPSite(self._runner, host, port).start()
        except OSError as e:
            if not (self.options.bind_fallback and port and e.errno == errno.EADDRINUSE):
                raise
            await web.TCPSite(self._runner, host, 0).start()
            self.fell_back = True
        bound = self._runner.addresses[0]
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{bound[1]}/"

    async def stop(self) -> None:
        """Stop serving, the streams, the scraper and (when it made them) the informers."""
        await self.hub.stop()
        if self.scraper is not None:
            await self.scraper.stop()
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()
        if self._owns_factory and self._factory is not None:
            await self._factory.stop()

    # -- the app --------------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._guard], client_max_size=2 << 20)
        r = app.router
        r.add_get("/", self._page)
        r.add_get("/static/{path:.*}", self._static)
        r.add_get("/api/info", self._info)
        r.add_get("/api/jobs", self._jobs)
        r.add_post("/api/jobs", self._submit)
        r.add_get("/api/stream", self._stream)
        r.add_get("/api/ws", self._websocket)
        r.add_get("/api/operator", self._operator)
        r.add_get("/api/jobs/{kind}/{ns}/{name}", self._detail_handler)
        r.add_delete("/api/jobs/{kind}/{ns}/{name}", self._delete)
        r.add_get("/api/jobs/{kind}/{ns}/{name}/logs", self._logs)
        r.add_post("/api/jobs/{kind}/{ns}/{name}/suspend", self._suspend)
        r.add_post("/api/jobs/{kind}/{ns}/{name}/resume", self._resume)
        return app

    @web.middleware
    async def _guard(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """The Host rule, the action rule (header, read-only) and JSON errors for everything."""
        refused = refused_host(self.options.bind, request.host)
        if refused:
            return _error(403, refused)
        if request.method in _ACTION_METHODS:
            if self.options.read_only:
                return _error(403, "the dashboard is read-only (--read-only): no actions")
            if request.headers.get(ACTION_HEADER) != "1":
                return _error(403, f"actions need the header {ACTION_HEADER}: 1")
        try:
            response: web.StreamResponse = await handler(request)
            return response
        except web.HTTPException as e:
            if e.status < 400:
                raise
            return _error(e.status, e.reason)
        except ActionError as e:
            return _json(e.body(), e.status)
        except ApiStatusError as e:
            return _json(ActionError.from_api(e).body(), e.code if 400 <= e.code <= 599 else 502)
        except (ApiConnectionError, TimeoutError) as e:
            return _error(502, f"the API server did not answer: {e}")
        except (asyncio.CancelledError, ConnectionResetError):
            raise
        except Exception:
            log.exception("dashboard: %s %s failed", request.method, request.path)
            return _error(500, f"{request.method} {request.path} failed; see the dashboard's log")

    async def _page(self, request: web.Request) -> web.StreamResponse:
        index = STATIC_DIR / "index.html"
        if index.is_file():
            return web.FileResponse(index, headers={"Cache-Control": "no-cache"})
        return web.Response(body=_PLACEHOLDER, content_type="text/html")

    async def _static(self, request: web.Request) -> web.StreamResponse:
        relative = request.match_info["path"]
        root = STATIC_DIR.resolve()
        path = (root / relative).resolve()
        if not relative or not path.is_relative_to(root) or not path.is_file():
            return _error(404, f"no static file {relative!r}")
        return web.FileResponse(path)

    async def _info(self, request: web.Request) -> web.Response:
        return _json(
            {
                "version": _version(),
                "readOnly": self.options.read_only,
                "namespace": self.options.namespace,
                "kinds": self.kinds,
                "metrics": bool(self.options.metrics_url),
                "server": self.client.config.server,
                "warnings": self.warnings,
            }
        )

    async def _jobs(self, request: web.Request) -> web.Response:
        try:
            query = _job_query(request.query)
        except ValueError as e:
            return _error(400, str(e))
        return _json(self.index.query(query))

    def _job_key(self, request: web.Request) -> str:
        """``KIND/NS/NAME`` of the path; 404 for a kind not served."""
        kind = request.match_info["kind"]
        if kind not in self.kinds:
            known = ", ".join(self.kinds)
            raise web.HTTPNotFound(reason=f"no job kind {kind!r} here; one of {known}")
        return job_key(kind, request.match_info["ns"], request.match_info["name"])

    def _detail(self, key: str) -> dict[str, Any] | None:
        return self.details.detail(key) if self.details is not None else None

    async def _fetch_full(self, key: str) -> None:
        """GET the whole object of a job the store holds compacted (a finished one), once per
        resourceVersion, for its detail (``detail.py``); a job gone meanwhile is left alone."""
        if self.details is None or not self.details.needs_full(key):
            return
        kind, namespace, name = key.split("/", 2)
        try:
            job = await self.client.get(KINDS[kind], namespace, name)
        except ApiStatusError as e:
            if e.is_not_found:
                return
            raise
        self.details.remember_full(key, job)

    async def _detail_handler(self, request: web.Request) -> web.Response:
        key = self._job_key(request)
        await self._fetch_full(key)
        detail = self._detail(key)
        if detail is None:
            return _error(404, f"{key.replace('/', ' ', 1)} not found")
        return _json(detail)

    async def _logs(self, request: web.Request) -> web.StreamResponse:
        key = self._job_key(request)
        pod = request.query.get("pod", "")
        if not pod:
            return _error(400, "pod= is required: the name of one of the job's pods")
        assert self.sources is not None
        namespace = request.match_info["ns"]
        pods = self.sources.pods.lister.by_index(JOB_INDEX, key)
        if not any(p["metadata"].get("name") == pod for p in pods):
            return _error(404, f"pod {pod!r} is not a pod of {key}")
        try:
            query = log_query(request.query)
        except ValueError as e:
            return _error(400, str(e))
        return await stream_log(request, self.client, namespace, pod, query)

    async def _submit(self, request: web.Request) -> web.Response:
        body = await request.read()
        submitted = await self.actions.submit(body)
        return _json(
            {"kind": submitted.kind, "namespace": submitted.namespace, "name": submitted.name},
            201,
        )

    async def _set_suspended(self, request: web.Request, suspend: bool) -> web.Response:
        key = self._job_key(request)
        kind, ns, name = request.match_info["kind"], request.match_info["ns"], key.split("/", 2)[2]
        row = await self.actions.set_suspended(kind, ns, name, suspend)
        cached = self.index.row(key)
        if cached is not None:
            row["ready"] = cached["ready"]
        return _json({"row": row})

    async def _suspend(self, request: web.Request) -> web.Response:
        return await self._set_suspended(request, True)

    async def _resume(self, request: web.Request) -> web.Response:
        return await self._set_suspended(request, False)

    async def _delete(self, request: web.Request) -> web.Response:
        self._job_key(request)
        m = request.match_info
        await self.actions.delete(m["kind"], m["ns"], m["name"])
        return _json({})

    async def _operator(self, request: web.Request) -> web.Response:
        return _json(
            {
                "source": self.options.metrics_url,
                "interval": self.options.metrics_interval,
                "error": self.scraper.last_error if self.scraper is not None else None,
                **self.series.snapshot(),
            }
        )

    async def _followed_job(self, request: web.Request) -> str | None:
        """The ``job=KIND/NAMESPACE/NAME`` a stream follows (its whole object fetched when the
        store holds it compacted), or None; 400/404 for a bad one."""
        job = request.query.get("job") or None
        if job is not None:
            parts = job.split("/")
            if len(parts) != 3 or not all(parts):
                raise web.HTTPBadRequest(reason=f"job= must be KIND/NAMESPACE/NAME, got {job!r}")
            if parts[0] not in self.kinds:
                known = ", ".join(self.kinds)
                raise web.HTTPNotFound(reason=f"no job kind {parts[0]!r} here; one of {known}")
            await self._fetch_full(job)
        return job

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        """The stream's events as WebSocket messages (``ws_message``), for the page: a browser
        gives each host six HTTP/1.1 connections, shared by all its tabs, and every open
        ``/api/stream`` holds one, so the seventh tab of a dashboard would never load; WebSockets
        are counted apart. The socket only sends; pings keep it open through proxies."""
        job = await self._followed_job(request)
        ws = web.WebSocketResponse(heartbeat=self.options.keepalive_seconds, max_msg_size=4096)
        await ws.prepare(request)
        sub = self.hub.subscribe(job=job)
        if request.transport is not None:  # a dropped page's writer may be blocked: cut it
            sub.on_drop = request.transport.close
        reader = asyncio.ensure_future(ws.receive())  # a close from the page ends the loop
        try:
            while not ws.closed:
                item = asyncio.ensure_future(sub.next())
                await asyncio.wait({item, reader}, return_when=asyncio.FIRST_COMPLETED)
                if not item.done():
                    item.cancel()
                    break  # the page closed or sent something: it only listens
                data = item.result()
                if data is None:
                    break
                message = ws_message(data)
                if message is not None:
                    await ws.send_str(message.decode())
        except (ConnectionResetError, RuntimeError):
            pass  # the page went away
        finally:
            reader.cancel()
            self.hub.unsubscribe(sub)
            await ws.close()
        return ws

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        job = await self._followed_job(request)
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            }
        )
        await response.prepare(request)
        sub = self.hub.subscribe(job=job)
        transport = request.transport
        if transport is not None:
            sub.on_drop = transport.close
        try:
            while True:
                data = await sub.next()
                if data is None:
                    break
                await response.write(data)
        except (ConnectionResetError, RuntimeError):
            pass  # the page went away
        finally:
            self.hub.unsubscribe(sub)
        with contextlib.suppress(ConnectionResetError, RuntimeError):
            await response.write_eof()
        return response


def _refused(err: Exception | None) -> bool:
    return isinstance(err, ApiStatusError) and err.code in (401, 403)


def _job_query(params: Any) -> JobQuery:
    """A ``JobQuery`` from the query string; ValueError naming the bad parameter."""

    def number(name: str, default: int) -> int:
        text = params.get(name)
        if text is None or text == "":
            return default
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"{name} must be a whole number, got {text!r}") from None

    def words(name: str) -> frozenset[str]:
        return frozenset(w for w in (params.get(name) or "").split(",") if w)

    kinds = words("kind")
    unknown = kinds - KINDS.keys()
    if unknown:
        raise ValueError(f"kind {', '.join(sorted(unknown))}: not a job kind ({', '.join(KINDS)})")
    limit = number("limit", 50)
    if limit > MAX_LIMIT:
        raise ValueError(f"limit must be at most {MAX_LIMIT}, got {limit}")
    return JobQuery(
        offset=number("offset", 0),
        limit=limit,
        sort=params.get("sort") or "created",
        order=params.get("order") or "desc",
        kinds=kinds,
        states=words("state"),
        namespace=params.get("namespace") or "",
        q=params.get("q") or "",
    )
