"""Fault injection: make the embedded API server slow, failing or forgetful on purpose.

Controllers are judged by how they behave when the API server misbehaves: throttling (429 with
Retry-After), 5xx, latency, watch streams that end, 410 Expired on re-watch, connection resets.
``FaultInjector`` holds ``FaultRule``s and applies them from an aiohttp middleware (request
faults) and from the store's change listener plus the watch hub's ``close_all``/``compact``
(watch faults). With no rule set, the middleware is one list check and no listener is
registered: zero cost for normal runs.

Python::

    cluster.api.faults.add(FaultRule(action="error", verb="create", resource="pods",
                                     code=429, retry_after_seconds=2, rate=0.5, count=10))
    cluster.api.faults.clear()

HTTP (for out-of-process benchmark harnesses; JSON keys are the ``FaultRule`` field names)::

    GET    /kubetrain/faults                  -> {"seed": 0, "rules": [{...rule, "fired": n,
                                                                         "active": bool}]}
    POST   /kubetrain/faults  [rule, ...]      add rules (or {"seed": n, "rules": [...]})  -> 201
    PUT    /kubetrain/faults  [rule, ...]      replace all rules                          -> 200
    DELETE /kubetrain/faults                   remove all rules                           -> 200

An invalid rule is refused with 400 (a Status naming the field); nothing of that request is
added. Only resource requests (``/api/...``, ``/apis/g/v/...``) are faulted: discovery,
``/metrics`` and ``/kubetrain/faults`` itself never are.
"""

from __future__ import annotations

import asyncio
import random
import socket
import struct
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import orjson
from aiohttp import web

from . import errors
from .http_json import json_response
from .requestinfo import RequestInfo, request_info
from .resources import ResourceInfo, ResourceRegistry, StorageKey
from .store import ObjectStore
from .watch import ERROR, WatchHub, event_line

__all__ = ["ACTIONS", "ActiveFault", "FaultInjector", "FaultRule", "FaultRuleError"]

ADMIN_PATH = "/kubetrain/faults"

ACTIONS = frozenset(
    {"latency", "error", "drop_watch", "force_410", "compact", "reset", "partition"}
)
"""- ``latency``: the request waits ``latency_seconds`` before it is served (other rules still apply).
- ``error``: the request is answered with ``code`` (403 Forbidden as RBAC refuses a client, 429
  with Retry-After ``retry_after_seconds``, 500, or 503 with Retry-After when
  ``retry_after_seconds`` > 0) as a kube Status.
- ``drop_watch``: ends open watch streams of the resource (the client sees a clean end of stream,
  as on a server-side watch timeout): with ``after_events`` 0 once, now, when the rule is added;
  with N > 0 each time N more events of the resource have been committed (each end is one firing).
- ``force_410``: a watch from an explicit resourceVersion gets an ERROR event 410 Expired and its
  stream ends; a list with a ``continue`` token or ``resourceVersionMatch=Exact`` gets 410. Other
  requests do not trigger it (nor use up its count).
- ``compact``: forgets the watch history of the resource now (when added): every later watch or
  continue from an older resourceVersion gets 410, as after an etcd compaction. One shot.
- ``reset``: the TCP connection is reset (RST) before any response byte.
- ``partition``: a network partition for ``duration_seconds``: when added, every open watch stream
  of the resource ends (of every client: the hub does not know who opened a stream; clients the
  rule does not match simply re-watch), and until the duration is over every matching request,
  watches included, has its connection reset (RST) before any response byte, as if the server
  were unreachable. Each refused request is one firing; the rule goes inactive when the duration
  is over. ``rate`` and ``count`` must keep their defaults (a partition is total).

``user_agent`` (any request action): only requests whose User-Agent header starts with it are
hit, so one client (the operator) can be cut off while others (a harness, simulated nodes) go on.
"""

VERBS = frozenset(
    {"*", "get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"}
)
ERROR_CODES = frozenset({403, 429, 500, 503})


class FaultRuleError(ValueError):
    """An invalid fault rule; the message names the field and what is allowed."""


@dataclass(frozen=True, kw_only=True)
class FaultRule:
    """One fault: which requests (or watches) it hits, what it does, how often.

    Matching: ``verb`` is kube's lowercase verb or "*"; ``resource`` is a plural ("pods" also
    hits its subresources), "plural/subresource" (only that subresource) or "*"; ``group`` None
    matches any API group ("" is the core group); ``namespace`` None matches any.
    Frequency: each matching request fires the rule with probability ``rate`` (drawn from the
    injector's seeded RNG); after ``count`` firings (None: unlimited) the rule goes inactive.
    Invariants (checked on construction): see ``ACTIONS`` for which fields each action uses.
    """

    action: str
    verb: str = "*"
    resource: str = "*"
    group: str | None = None
    namespace: str | None = None
    latency_seconds: float = 0.0
    code: int = 500
    retry_after_seconds: int = 1
    after_events: int = 0
    rate: float = 1.0
    count: int | None = None
    duration_seconds: float = 0.0
    user_agent: str | None = None

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise FaultRuleError(
                f"action: unsupported value {self.action!r}; use one of {sorted(ACTIONS)}"
            )
        if self.verb not in VERBS:
            raise FaultRuleError(
                f"verb: unsupported value {self.verb!r}; use one of {sorted(VERBS)}"
            )
        if not self.resource:
            raise FaultRuleError('resource: must not be empty; use a plural or "*"')
        if not (isinstance(self.rate, int | float) and 0.0 <= self.rate <= 1.0):
            raise FaultRuleError(f"rate: must be a number in 0..1, got {self.rate!r}")
        if self.count is not None and (not isinstance(self.count, int) or self.count < 1):
            raise FaultRuleError(f"count: must be an integer >= 1 or null, got {self.count!r}")
        action = self.action
        if action == "latency" and not self.latency_seconds > 0:
            raise FaultRuleError(
                f"latency_seconds: must be > 0 for action latency, got {self.latency_seconds!r}"
            )
        if action == "error" and self.code not in ERROR_CODES:
            raise FaultRuleError(f"code: must be one of 403, 429, 500, 503, got {self.code!r}")
        if not isinstance(self.retry_after_seconds, int) or self.retry_after_seconds < 0:
            raise FaultRuleError(
                f"retry_after_seconds: must be an integer >= 0, got {self.retry_after_seconds!r}"
            )
        if action == "error" and self.code == 429 and self.retry_after_seconds < 1:
            raise FaultRuleError("retry_after_seconds: must be >= 1 for code 429")
        if not isinstance(self.after_events, int) or self.after_events < 0:
            raise FaultRuleError(
                f"after_events: must be an integer >= 0, got {self.after_events!r}"
            )
        if action in ("drop_watch", "compact"):
            if self.verb not in ("*", "watch"):
                raise FaultRuleError(
                    f'verb: action {action} applies to watches; use "*" or "watch"'
                )
            if self.namespace is not None:
                raise FaultRuleError(
                    f"namespace: not supported for action {action} (watch history and streams "
                    "are per resource); remove it"
                )
            if "/" in self.resource:
                raise FaultRuleError(
                    f"resource: action {action} takes a plural or '*', not a subresource"
                )
        if action == "force_410" and self.verb not in ("*", "watch", "list"):
            raise FaultRuleError('verb: action force_410 applies to "watch", "list" or "*"')
        if not (
            isinstance(self.duration_seconds, int | float)
            and not isinstance(self.duration_seconds, bool)
            and self.duration_seconds >= 0
        ):
            raise FaultRuleError(
                f"duration_seconds: must be a number >= 0, got {self.duration_seconds!r}"
            )
        if action == "partition":
            if not self.duration_seconds > 0:
                raise FaultRuleError("duration_seconds: must be > 0 for action partition")
            if self.rate != 1.0 or self.count is not None:
                raise FaultRuleError(
                    "rate/count: action partition refuses every matching request for "
                    "duration_seconds; leave rate 1 and count null (use reset for partial loss)"
                )
            if "/" in self.resource:
                raise FaultRuleError(
                    "resource: action partition takes a plural or '*', not a subresource"
                )
        elif self.duration_seconds:
            raise FaultRuleError("duration_seconds: only action partition takes a duration")
        if self.user_agent is not None:
            if not isinstance(self.user_agent, str) or not self.user_agent:
                raise FaultRuleError(
                    f"user_agent: must be a non-empty string or null, got {self.user_agent!r}"
                )
            if action in ("drop_watch", "compact"):
                raise FaultRuleError(
                    f"user_agent: not supported for action {action} (it acts on the server's "
                    "watch streams and history, not on one client's requests); remove it"
                )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FaultRule:
        """A rule from its JSON form (keys are the field names); unknown keys are refused."""
        if not isinstance(data, Mapping):
            raise FaultRuleError(f"a fault rule must be a JSON object, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise FaultRuleError(f"unknown field(s) {unknown}; known fields: {sorted(known)}")
        if "action" not in data:
            raise FaultRuleError(f"action: required; use one of {sorted(ACTIONS)}")
        try:
            return cls(**data)
        except TypeError as exc:  # pragma: no cover - all keys are known fields
            raise FaultRuleError(str(exc)) from exc

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (all fields)."""
        return asdict(self)

    def matches_request(self, info: RequestInfo) -> bool:
        """Whether the request ``info`` is one this rule targets."""
        if self.verb != "*" and self.verb != info.verb:
            return False
        if self.group is not None and self.group != info.group:
            return False
        if self.namespace is not None and self.namespace != info.namespace:
            return False
        return self._matches_resource(info.resource, info.subresource)

    def matches_user_agent(self, user_agent: str) -> bool:
        """Whether a request with this User-Agent header is one this rule targets."""
        return self.user_agent is None or user_agent.startswith(self.user_agent)

    def matches_resource(self, info: ResourceInfo) -> bool:
        """Whether events of the resource ``info`` are this rule's (watch faults)."""
        if self.group is not None and self.group != info.group:
            return False
        return self._matches_resource(info.plural, "")

    def _matches_resource(self, plural: str, subresource: str) -> bool:
        if self.resource == "*":
            return True
        if "/" in self.resource:
            return self.resource == f"{plural}/{subresource}"
        return self.resource == plural


@dataclass(eq=False)
class ActiveFault:
    """A rule as the injector runs it: how often it fired, whether it is still in force.

    Invariant: ``active`` is False once ``fired`` reached ``rule.count`` (or the rule was
    one-shot, or the injector was cleared).
    """

    rule: FaultRule
    fired: int = 0
    active: bool = True
    events_seen: int = 0  # drop_watch: events counted since the last firing
    ends_at: float | None = None  # partition: time.monotonic() when it is over

    def to_dict(self) -> dict[str, Any]:
        return {**self.rule.to_dict(), "fired": self.fired, "active": self.active}


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class FaultInjector:
    """The server's fault rules and the machinery that applies them.

    ``seed`` seeds the RNG used for ``rate`` draws, so a run is reproducible for a given order
    of requests. Install ``middleware`` in the server's middlewares and ``routes()`` in its
    extra routes (``ApiServer`` does both).
    """

    def __init__(
        self, *, store: ObjectStore, hub: WatchHub, registry: ResourceRegistry, seed: int = 0
    ) -> None:
        self._store = store
        self._hub = hub
        self._registry = registry
        self._seed = seed
        self._rng = random.Random(seed)
        self._all: list[ActiveFault] = []
        # Invariant: these two hold exactly the active rules of ``_all`` of their kind.
        self._request_faults: list[ActiveFault] = []
        self._event_faults: list[ActiveFault] = []
        self._listening = False

    # -- configuration ----------------------------------------------------------------------

    @property
    def faults(self) -> list[ActiveFault]:
        """Every rule added since the last ``clear``, active or spent, in order."""
        self._end_partitions()
        return list(self._all)

    def seed(self, seed: int) -> None:
        """Restart the RNG from ``seed``."""
        self._seed = seed
        self._rng = random.Random(seed)

    def add(self, rule: FaultRule) -> ActiveFault:
        """Put ``rule`` in force; return its handle (``fired``, ``active``).

        One-shot rules (``compact``, ``drop_watch`` with ``after_events`` 0) act now.
        """
        fault = ActiveFault(rule)
        self._all.append(fault)
        if rule.action == "compact":
            if self._draw(fault):
                self._compact(rule)
            fault.active = False
        elif rule.action == "drop_watch" and rule.after_events == 0:
            if self._draw(fault):
                self._drop_watches(rule, None)
            fault.active = False
        elif rule.action == "drop_watch":
            self._event_faults.append(fault)
            self._sync_listener()
        elif rule.action == "partition":
            fault.ends_at = time.monotonic() + rule.duration_seconds
            self._drop_watches(rule, None)
            self._request_faults.append(fault)
        else:
            self._request_faults.append(fault)
        return fault

    def add_all(self, rules: Iterable[FaultRule]) -> list[ActiveFault]:
        """``add`` each rule, in order."""
        return [self.add(rule) for rule in rules]

    def clear(self) -> None:
        """Remove every rule (the server behaves normally again)."""
        for fault in self._all:
            fault.active = False
        self._all.clear()
        self._request_faults.clear()
        self._event_faults.clear()
        self._sync_listener()

    # -- firing -----------------------------------------------------------------------------

    def _draw(self, fault: ActiveFault) -> bool:
        """Whether ``fault`` fires now (rate, count); counts the firing."""
        rule = fault.rule
        if not fault.active:
            return False
        if rule.rate < 1.0 and self._rng.random() >= rule.rate:
            return False
        fault.fired += 1
        if rule.count is not None and fault.fired >= rule.count:
            self._retire(fault)
        return True

    def _retire(self, fault: ActiveFault) -> None:
        fault.active = False
        if fault in self._request_faults:
            self._request_faults.remove(fault)
        if fault in self._event_faults:
            self._event_faults.remove(fault)
            self._sync_listener()

    def _end_partitions(self) -> None:
        """Retire partitions whose duration is over."""
        now = time.monotonic()
        for fault in list(self._request_faults):
            if fault.ends_at is not None and now >= fault.ends_at:
                self._retire(fault)

    def _sync_listener(self) -> None:
        want = bool(self._event_faults)
        if want and not self._listening:
            self._store.add_listener(self._on_commit)
        elif not want and self._listening:
            self._store.remove_listener(self._on_commit)
        self._listening = want

    def _on_commit(
        self, event_type: str, info: ResourceInfo, obj: dict[str, Any], old: dict[str, Any] | None
    ) -> None:
        for fault in list(self._event_faults):
            rule = fault.rule
            if not rule.matches_resource(info):
                continue
            fault.events_seen += 1
            if fault.events_seen < rule.after_events:
                continue
            fault.events_seen = 0
            if self._draw(fault):
                # The event was already delivered to the watchers' buffers: each stream
                # ends right after it.
                self._drop_watches(rule, info.storage_key)

    def _drop_watches(self, rule: FaultRule, key: StorageKey | None) -> None:
        if rule.resource == "*" and rule.group is None:
            self._hub.close_all()
            return
        for k in self._keys_for(rule) if key is None else [key]:
            self._hub.close_all(k)

    def _compact(self, rule: FaultRule) -> None:
        rv = self._store.rv
        if rule.resource == "*" and rule.group is None:
            self._hub.compact(None, rv=rv)
        else:
            self._hub.compact(self._keys_for(rule), rv=rv)

    def _keys_for(self, rule: FaultRule) -> list[StorageKey]:
        """Storage keys (group, plural) the rule names: a scan of the served kinds, not objects."""
        return sorted(
            {info.storage_key for info in self._registry.all() if rule.matches_resource(info)}
        )

    # -- request faults ---------------------------------------------------------------------

    def around(self, handler: Handler) -> Handler:
        """``middleware`` around ``handler``, as one callable for a handler chain built by hand
        (the server's fast path): with no request rule active it calls ``handler`` itself, one
        coroutine less per request."""

        def call(request: web.Request) -> Awaitable[web.StreamResponse]:
            if not self._request_faults:
                return handler(request)
            return self.middleware(request, handler)

        return call

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Apply request faults; a pass-through when no request rule is active."""
        if not self._request_faults:
            return await handler(request)
        info = request_info(request)
        if info is None:
            return await handler(request)
        self._end_partitions()
        user_agent = request.headers.get("User-Agent", "")
        for fault in list(self._request_faults):
            rule = fault.rule
            if not rule.matches_request(info) or not rule.matches_user_agent(user_agent):
                continue
            if rule.action == "force_410" and not _from_old_version(info, request):
                continue
            if not self._draw(fault):
                continue
            if rule.action == "latency":
                await asyncio.sleep(rule.latency_seconds)
                continue
            if rule.action == "error":
                return _error_response(rule, info)
            if rule.action == "force_410":
                return await self._expired(request, info)
            if rule.action in ("reset", "partition"):
                _reset_connection(request)
                raise asyncio.CancelledError  # aiohttp drops the connection silently
        return await handler(request)

    async def _expired(self, request: web.Request, info: RequestInfo) -> web.StreamResponse:
        rv = self._store.rv
        if info.verb == "watch":
            given = request.query.get("resourceVersion", "")
            status = errors.expired(f"too old resource version: {given} ({rv})").to_status()
            response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
            await response.prepare(request)
            await response.write(event_line(ERROR, orjson.dumps(status)))
            await response.write_eof()
            return response
        err = errors.expired(
            "The provided continue parameter is too old to display a consistent list result. "
            "You can start a new list without the continue parameter."
            if request.query.get("continue")
            else f"too old resource version: {request.query.get('resourceVersion', '')} ({rv})"
        )
        return json_response(err.to_status(), status=410)

    # -- HTTP admin -------------------------------------------------------------------------

    def routes(self) -> list[web.RouteDef]:
        """``GET/POST/PUT/DELETE /kubetrain/faults`` (see the module docstring)."""
        return [
            web.get(ADMIN_PATH, self._http_list),
            web.post(ADMIN_PATH, self._http_add),
            web.put(ADMIN_PATH, self._http_replace),
            web.delete(ADMIN_PATH, self._http_clear),
        ]

    def _listing(self) -> dict[str, Any]:
        self._end_partitions()
        return {"seed": self._seed, "rules": [f.to_dict() for f in self._all]}

    async def _http_list(self, request: web.Request) -> web.Response:
        return json_response(self._listing())

    async def _parse_body(self, request: web.Request) -> tuple[int | None, list[FaultRule]]:
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError as exc:
            raise errors.bad_request(f"fault rules: invalid JSON: {exc}") from exc
        seed: int | None = None
        if isinstance(body, dict) and ("rules" in body or "seed" in body):
            seed = body.get("seed")
            if seed is not None and not isinstance(seed, int):
                raise errors.bad_request(f"seed: must be an integer, got {seed!r}")
            body = body.get("rules", [])
        if isinstance(body, dict):
            body = [body]
        if not isinstance(body, list):
            raise errors.bad_request('fault rules: send a JSON list of rules or {"rules": [...]}')
        rules: list[FaultRule] = []
        for i, item in enumerate(body):
            try:
                rules.append(FaultRule.from_dict(item))
            except (FaultRuleError, TypeError) as exc:
                raise errors.bad_request(f"fault rule [{i}]: {exc}") from exc
        return seed, rules

    async def _http_add(self, request: web.Request) -> web.Response:
        try:
            seed, rules = await self._parse_body(request)
        except errors.ApiError as exc:
            return json_response(exc.to_status(), status=exc.code)
        if seed is not None:
            self.seed(seed)
        self.add_all(rules)
        return json_response(self._listing(), status=201)

    async def _http_replace(self, request: web.Request) -> web.Response:
        try:
            seed, rules = await self._parse_body(request)
        except errors.ApiError as exc:
            return json_response(exc.to_status(), status=exc.code)
        self.clear()
        if seed is not None:
            self.seed(seed)
        self.add_all(rules)
        return json_response(self._listing())

    async def _http_clear(self, request: web.Request) -> web.Response:
        self.clear()
        return json_response(self._listing())


def _from_old_version(info: RequestInfo, request: web.Request) -> bool:
    """Whether a watch/list asks for a past resourceVersion (what force_410 refuses)."""
    query = request.query
    if info.verb == "watch":
        return query.get("resourceVersion", "") not in ("", "0")
    if info.verb == "list":
        return bool(query.get("continue")) or (
            query.get("resourceVersionMatch") == "Exact"
            and query.get("resourceVersion", "") not in ("", "0")
        )
    return False


def _error_response(rule: FaultRule, info: RequestInfo) -> web.Response:
    if rule.code == 403:
        # kube-apiserver's RBAC refusal, for a client whose credentials may not do this
        group = f' in API group "{info.group}"' if info.group else ' in API group ""'
        scope = (
            f' in the namespace "{info.namespace}"' if info.namespace else " at the cluster scope"
        )
        err = errors.ApiError(
            403,
            "Forbidden",
            f'{info.resource} is forbidden: User "kubetrain:injected" cannot {info.verb} resource '
            f'"{info.resource}"{group}{scope} (injected fault)',
            details={"kind": info.resource, "group": info.group},
        )
    elif rule.code == 429:
        err = errors.too_many_requests(
            "Too many requests, please try again later.", rule.retry_after_seconds
        )
    elif rule.code == 503:
        err = errors.ApiError(
            503,
            "ServiceUnavailable",
            "the server is currently unable to handle the request (injected fault)",
            details={"retryAfterSeconds": rule.retry_after_seconds}
            if rule.retry_after_seconds
            else None,
            headers={"Retry-After": str(rule.retry_after_seconds)}
            if rule.retry_after_seconds
            else None,
        )
    else:
        err = errors.internal("injected fault")
    return json_response(err.to_status(), status=err.code, headers=err.headers or None)


def _reset_connection(request: web.Request) -> None:
    """Abort the request's TCP connection with RST (SO_LINGER 0), not a FIN."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    transport.abort()
