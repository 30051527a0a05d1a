"""The ``--apiserver=embedded|real`` switch of the test suite (env ``KUBETRAIN_APISERVER``).

Why this exists: tests that only talk HTTP to the API server (raw JSON, kubernetes-asyncio,
kubectl) should pass unchanged against a real kube-apiserver; that is how we learn where the
embedded server differs. ``tests/conftest.py`` imports the hooks below; its ``cluster`` fixture
yields an ``EmbeddedCluster`` by default and a ``RealClusterHandle`` under ``real``.

Markers (registered here):

- ``http_api``: the test talks to the API server over HTTP only; under ``real`` it runs against
  the session's real control plane. Under ``real`` every other test is skipped.
- ``embedded_only(reason)``: uses embedded-only internals (``cluster.api`` store/registry,
  faults, simulator logs, its own EmbeddedCluster); skipped under ``real`` with ``reason``.
- ``conformance`` (declared in pyproject): needs the real control plane; skipped under
  ``embedded``.

Under ``real`` one control plane serves the whole session; after each test every object the test
created is deleted (finalizers stripped first) and new namespaces and CRDs are waited out, so
tests stay independent as with a fresh embedded cluster per test.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
import pytest
from conformance.controlplane import (
    ControlPlaneUnavailable,
    RealControlPlane,
    parse_queue_metrics,
)

APISERVER_CHOICES = ("embedded", "real")
#: Namespaces the cleanup never deletes nor empties (besides ``default``, which it empties).
SYSTEM_NAMESPACES = frozenset({"kube-system", "kube-public", "kube-node-lease"})
#: Resources the cleanup leaves alone: server-owned or noise.
UNTOUCHED_RESOURCES = frozenset({"events", "apiservices", "leases", "endpoints", "endpointslices"})


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--apiserver",
        choices=APISERVER_CHOICES,
        default=None,
        help="API server the `cluster` fixture starts: embedded (default) or real "
        "(kube-apiserver from tools/conformance/build.sh; env KUBETRAIN_APISERVER)",
    )


def selected_apiserver(config: pytest.Config) -> str:
    """``embedded`` or ``real``: the option, else ``$KUBETRAIN_APISERVER``, else embedded."""
    value = config.getoption("--apiserver") or os.environ.get("KUBETRAIN_APISERVER") or "embedded"
    if value not in APISERVER_CHOICES:
        raise pytest.UsageError(
            f"KUBETRAIN_APISERVER={value!r}: expected one of {', '.join(APISERVER_CHOICES)}"
        )
    return value


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "http_api: talks to the API server over HTTP only; runs under --apiserver=real"
    )
    config.addinivalue_line(
        "markers", "embedded_only(reason): uses embedded-only internals; skipped under real"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    real = selected_apiserver(config) == "real"
    for item in items:
        if real:
            only = item.get_closest_marker("embedded_only")
            if only is not None:
                reason = only.kwargs.get("reason") or (only.args[0] if only.args else "")
                item.add_marker(pytest.mark.skip(reason=f"embedded only: {reason}"))
            elif not (
                item.get_closest_marker("http_api") or item.get_closest_marker("conformance")
            ):
                item.add_marker(
                    pytest.mark.skip(reason="not marked http_api: not run against a real server")
                )
        elif item.get_closest_marker("conformance"):
            item.add_marker(pytest.mark.skip(reason="needs --apiserver=real (make conformance)"))


@pytest.fixture(scope="session")
def real_control_plane() -> Iterator[RealControlPlane]:
    """One started RealControlPlane for the session (its processes outlive any one loop)."""
    plane = RealControlPlane()
    try:
        _run_in_own_loop(plane.start)
    except ControlPlaneUnavailable as err:
        pytest.fail(f"--apiserver=real: {err}", pytrace=False)
    try:
        yield plane
    finally:
        _run_in_own_loop(plane.stop)


def _run_in_own_loop(func: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run ``func()`` to completion on a fresh loop in a helper thread: the fixture may be
    set up from inside a test's running loop (requested lazily by ``cluster``)."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, func()).result()


# -- per-test handle ------------------------------------------------------------------------------


class QueueIdleProbe:
    """Stands in for an embedded controller's ``wait_idle()`` / ``queue.idle`` on the real KCM.

    ``wait_idle`` returns once the named kube-controller-manager work queues show depth 0 and no
    unfinished work in consecutive scrapes of its /metrics over ``quiet_seconds`` (the watch
    that feeds the KCM has a few ms of latency, and items in a delaying queue do not count in
    the depth, so this is a settle, not a proof). ``queue.idle`` is the result of the last
    scrape.
    """

    def __init__(self, handle: RealClusterHandle, queues: tuple[str, ...]) -> None:
        self._handle = handle
        self._queues = queues
        self.queue = self  # embedded tests read ``controller.queue.idle``
        self.idle = False

    async def wait_idle(self, *, quiet_seconds: float = 0.3, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        quiet_since: float | None = None
        while time.monotonic() < deadline:
            metrics = await self._handle.controller_manager_queues()
            self.idle = all(metrics.get(q, 0.0) == 0.0 for q in self._queues)
            now = time.monotonic()
            if not self.idle:
                quiet_since = None
            elif quiet_since is None:
                quiet_since = now
            elif now - quiet_since >= quiet_seconds:
                return
            await asyncio.sleep(0.05)
        raise TimeoutError(f"kube-controller-manager queues {self._queues} not idle in {timeout} s")


class RealControllers:
    """The ``cluster.api`` of a real handle: only the controllers' idle waits exist."""

    def __init__(self, handle: RealClusterHandle) -> None:
        self.gc = QueueIdleProbe(
            handle,
            (
                "garbage_collector_graph_changes",
                "garbage_collector_attempt_to_delete",
                "garbage_collector_attempt_to_orphan",
            ),
        )
        self.namespace_controller = QueueIdleProbe(handle, ("namespace",))

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(
            f"cluster.api.{name} is an embedded-only internal; mark the test "
            "@pytest.mark.embedded_only(reason=...) or use HTTP"
        )


@dataclass
class RealClusterHandle:
    """What the ``cluster`` fixture yields under ``--apiserver=real``: like EmbeddedCluster,
    ``url`` and ``kubeconfig_path``; plus ``ssl_context`` (trusts the server's CA) and
    ``token`` for raw HTTP clients, and ``api`` (``RealControllers``)."""

    url: str
    kubeconfig_path: str
    ssl_context: Any
    token: str
    plane: RealControlPlane
    session: aiohttp.ClientSession

    def __post_init__(self) -> None:
        self.api = RealControllers(self)

    async def controller_manager_queues(self) -> dict[str, float]:
        async with self.session.get(
            self.plane.controller_manager_metrics_url,
            ssl=self.plane.controller_manager_ssl_context,
        ) as resp:
            assert resp.status == 200, await resp.text()
            queues: dict[str, float] = parse_queue_metrics(await resp.text())
            return queues


@asynccontextmanager
async def real_cluster(plane: RealControlPlane) -> AsyncIterator[RealClusterHandle]:
    """A per-test handle on the session's control plane; removes what the test created."""
    connector = aiohttp.TCPConnector(ssl=plane.ssl_context)
    headers = {"Authorization": f"Bearer {plane.token}"}
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
        baseline = await _snapshot_uids(session, plane.url)
        handle = RealClusterHandle(
            url=plane.url,
            kubeconfig_path=plane.kubeconfig_path,
            ssl_context=plane.ssl_context,
            token=plane.token,
            plane=plane,
            session=session,
        )
        try:
            yield handle
        finally:
            await _remove_new_objects(session, plane.url, baseline)


# -- cleanup ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Resource:
    path: str  # /api/v1 or /apis/g/v
    name: str
    namespaced: bool


async def _get(session: aiohttp.ClientSession, url: str) -> Any:
    async with session.get(url) as resp:
        if resp.status != 200:
            return None
        return orjson.loads(await resp.read())


async def _resources(session: aiohttp.ClientSession, base: str) -> list[_Resource]:
    """Every listable, deletable top-level resource at its group's preferred version."""
    paths = ["/api/v1"]
    groups = await _get(session, f"{base}/apis") or {"groups": []}
    paths += [f"/apis/{g['preferredVersion']['groupVersion']}" for g in groups["groups"]]
    lists = await asyncio.gather(*(_get(session, base + p) for p in paths))
    out: list[_Resource] = []
    for path, body in zip(paths, lists, strict=True):
        for res in (body or {}).get("resources", []):
            verbs = set(res.get("verbs", ()))
            if "/" in res["name"] or not {"list", "delete"} <= verbs:
                continue
            if res["name"] in UNTOUCHED_RESOURCES:
                continue
            out.append(_Resource(path, res["name"], bool(res.get("namespaced"))))
    return out


async def _list_all(
    session: aiohttp.ClientSession, base: str, resources: list[_Resource]
) -> list[tuple[_Resource, dict[str, Any]]]:
    bodies = await asyncio.gather(*(_get(session, f"{base}{r.path}/{r.name}") for r in resources))
    return [
        (res, item)
        for res, body in zip(resources, bodies, strict=True)
        for item in (body or {}).get("items", [])
    ]


async def _snapshot_uids(session: aiohttp.ClientSession, base: str) -> set[str]:
    return {
        item["metadata"]["uid"]
        for _, item in await _list_all(session, base, await _resources(session, base))
    }


def _object_url(base: str, res: _Resource, meta: dict[str, Any]) -> str:
    if res.namespaced:
        return f"{base}{res.path}/namespaces/{meta['namespace']}/{res.name}/{meta['name']}"
    return f"{base}{res.path}/{res.name}/{meta['name']}"


async def _remove_new_objects(
    session: aiohttp.ClientSession, base: str, baseline: set[str], *, timeout: float = 60.0
) -> None:
    """Delete every object whose UID is not in ``baseline``, then wait until they are gone."""
    deadline = time.monotonic() + timeout
    while True:
        resources = await _resources(session, base)
        new = [
            (res, item)
            for res, item in await _list_all(session, base, resources)
            if item["metadata"]["uid"] not in baseline
            and item["metadata"].get("namespace") not in SYSTEM_NAMESPACES
        ]
        if not new:
            return
        if time.monotonic() > deadline:
            left = [f"{r.name}/{i['metadata']['name']}" for r, i in new][:20]
            raise AssertionError(
                f"real cluster cleanup: objects still present after {timeout} s: {left}"
            )
        for res, item in new:
            meta = item["metadata"]
            url = _object_url(base, res, meta)
            if meta.get("finalizers"):
                async with session.patch(
                    url,
                    data=b'{"metadata":{"finalizers":null}}',
                    headers={"Content-Type": "application/merge-patch+json"},
                ):
                    pass
            if not meta.get("deletionTimestamp"):
                async with session.delete(
                    url, params={"propagationPolicy": "Background", "gracePeriodSeconds": "0"}
                ):
                    pass
        await asyncio.sleep(0.2)
