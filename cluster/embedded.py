"""An embedded cluster in one asyncio process: the API server on a local port, a kubeconfig
pointing at it, and (when asked) simulated nodes.

Usage::

    async with EmbeddedCluster(nodes=2) as cluster:
        ...  # cluster.url, cluster.kubeconfig_path, cluster.api (the ApiServer)
"""

from __future__ import annotations

import base64
import importlib
import os
import tempfile
from dataclasses import replace
from types import TracebackType
from typing import Any

import yaml

from .apiserver.options import ApiServerOptions
from .apiserver.persistence import SqliteBackend
from .apiserver.rest_common import WriteOptions
from .apiserver.server import ApiServer
from .credentials import ADMIN_USER, ClusterCredentials
from .podgroups import DEFAULT_QUEUE, gang_crds

__all__ = ["KUBECONFIG_CONTEXT", "EmbeddedCluster", "write_kubeconfig"]

KUBECONFIG_CONTEXT = "kubetrain"
#: The kubeconfig token when the server authenticates nobody (any token is accepted).
DUMMY_TOKEN = "kubetrain-dummy-token"


def write_kubeconfig(
    path: str,
    url: str,
    *,
    context: str = KUBECONFIG_CONTEXT,
    token: str = DUMMY_TOKEN,
    ca_pem: bytes | None = None,
) -> None:
    """Write a kubeconfig for ``url`` (bearer ``token``; ``ca_pem``: the CA that signed an
    https server's certificate; current-context set), readable by its owner only: it holds a
    credential."""
    cluster: dict[str, str] = {"server": url}
    if ca_pem is not None:
        cluster["certificate-authority-data"] = base64.b64encode(ca_pem).decode()
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": context, "cluster": cluster}],
        "users": [{"name": context, "user": {"token": token}}],
        "contexts": [
            {
                "name": context,
                "context": {"cluster": context, "user": context, "namespace": "default"},
            }
        ],
        "current-context": context,
        "preferences": {},
    }
    tmp = f"{path}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        yaml.safe_dump(config, fh, sort_keys=False)
    os.chmod(tmp, 0o600)  # an existing file keeps its mode through O_CREAT
    os.replace(tmp, path)


class EmbeddedCluster:
    """API server + kubeconfig (+ node simulator) as an async context manager.

    ``port`` 0 picks a free port. ``secure``: serve HTTPS (TLS 1.2+) and require a bearer token
    (``credentials.ClusterCredentials``: a CA and an admin token, kept in ``data_dir`` when set),
    both written into the kubeconfig; what ``kubetrain cluster`` and ``kubetrain up`` run. Not
    secure (the default here, for tests and benchmarks in one process): plain http, and bearer
    tokens only when ``options.tokens`` is set; the kubeconfig then carries the first of them.
    ``data_dir`` keeps the objects in an SQLite database there (``apiserver.persistence``:
    loaded on start, written as they change, all of it on a clean stop); None keeps them in
    memory only. ``kubeconfig_path`` None writes
    a temporary file, removed on exit. ``nodes`` > 0 starts the node simulator
    (``kubetrain.cluster.nodesim``) with ``nodesim_options`` (a ``NodeSimOptions``; None: its
    defaults; its ``nodes`` field is replaced by ``nodes``). ``gang_crds``: serve the PodGroup
    CRDs of Volcano and scheduler-plugins and Volcano's Queue with its ``default`` queue
    (``podgroups.py``), installed before the first request, so the simulator gang-schedules and
    an operator with ``--gang-scheduler-name`` finds its CRD. ``kube_controllers``: run what a
    real cluster's kube-controller-manager does for batch/v1 Jobs (``kubetrain.cluster.kcm``: the
    Job controller and the TTL-after-finished controller, HTTP clients of the server like the
    simulated nodes) and JobSet (``kubetrain.cluster.jobset``: its CRD, its webhooks as
    admission plugins, its controller); off by default, as ``nodes`` is 0 (a bare server for
    tests: Jobs stored and never run); ``kubetrain cluster`` and ``kubetrain up`` turn it on.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        nodes: int = 0,
        data_dir: str | None = None,
        kubeconfig_path: str | None = None,
        options: ApiServerOptions | None = None,
        nodesim_options: Any = None,
        secure: bool = False,
        gang_crds: bool = True,
        kube_controllers: bool = False,
    ) -> None:
        if secure and (options is None or options.tokens is None):
            # authentication on from the first request; start() adds the admin token to this
            # (live) table. A copy: the caller's options are not changed.
            options = replace(options or ApiServerOptions(), tokens={})
        self.host = host
        self.secure = secure
        self.credentials: ClusterCredentials | None = None
        """The CA and admin token of a ``secure`` cluster (set by ``start``)."""
        self.port = port
        self.nodes = nodes
        self.data_dir = data_dir
        self.nodesim_options = nodesim_options
        self.gang_crds = gang_crds
        self.kube_controllers = kube_controllers
        self._kcm: Any = None
        self._jobset: Any = None
        self.api = ApiServer(options)
        self.url = ""
        self._kubeconfig_given = kubeconfig_path is not None
        self.kubeconfig_path = kubeconfig_path or ""
        self._nodesim: Any = None
        self._backend: SqliteBackend | None = None

    async def start(self) -> None:
        """Open the data directory, serve, write the kubeconfig, start the simulated nodes."""
        if self.data_dir is not None and self._backend is None:
            self._backend = SqliteBackend(self.data_dir)
            self.api.store.backend = self._backend
        ssl_context = None
        if self.secure:
            self.credentials = ClusterCredentials.load_or_create(
                host=self.host, data_dir=self.data_dir
            )
            assert self.api.options.tokens is not None  # set in __init__ (the live table)
            self.api.options.tokens.setdefault(self.credentials.token, ADMIN_USER)
            ssl_context = self.credentials.ssl_context()
        try:
            if self.gang_crds:
                await self.api.bootstrap()  # idempotent: start() does not load twice
                await _install_gang_crds(self.api)
            if self.kube_controllers:
                from .jobset import install_jobset  # the CRD and JobSet's webhooks

                await self.api.bootstrap()
                await install_jobset(self.api)
            self.url = await self.api.start(self.host, self.port, ssl_context=ssl_context)
        except BaseException:
            if self._backend is not None:
                self._backend.close()
                self._backend = None
            raise
        if not self._kubeconfig_given:
            fd, self.kubeconfig_path = tempfile.mkstemp(prefix="kubetrain-", suffix=".kubeconfig")
            os.close(fd)
        if self.credentials is not None:
            token, ca_pem = self.credentials.token, self.credentials.ca_pem
        else:
            token, ca_pem = next(iter(self.api.options.tokens or {DUMMY_TOKEN: ""})), None
        write_kubeconfig(self.kubeconfig_path, self.url, token=token, ca_pem=ca_pem)
        if self.kube_controllers:
            from .kcm import start_for_cluster  # imported only by clusters that run Jobs

            self._kcm = await start_for_cluster(self)
            from .jobset import start_for_cluster as start_jobset

            self._jobset = await start_jobset(self)
        # --- node simulator hook (kubetrain.cluster.nodesim) --------------------------------
        if self.nodes > 0:
            self._nodesim = await _start_nodesim(self)
        # ------------------------------------------------------------------------------------

    async def stop(self) -> None:
        """Stop the simulator and the server; remove a temporary kubeconfig."""
        if self._nodesim is not None:
            stop = getattr(self._nodesim, "stop", None)
            if stop is not None:
                await stop()
            self._nodesim = None
        if self._jobset is not None:
            jobset, self._jobset = self._jobset, None
            await jobset.stop()
        if self._kcm is not None:
            kcm, self._kcm = self._kcm, None
            await kcm.stop()
        await self.api.stop()
        if self._backend is not None:
            backend, self._backend = self._backend, None
            backend.close()  # writes what is still queued
        if not self._kubeconfig_given and self.kubeconfig_path:
            try:
                os.unlink(self.kubeconfig_path)
            except FileNotFoundError:
                pass

    async def __aenter__(self) -> EmbeddedCluster:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


async def _install_gang_crds(api: ApiServer) -> None:
    """Create the gang-scheduling CRDs and Volcano's default Queue where absent (in process,
    before the server serves: nobody sees a cluster without them)."""
    crds = api.registry.lookup("apiextensions.k8s.io", "v1", "customresourcedefinitions")
    assert crds is not None  # a built-in resource
    for crd in gang_crds():
        if api.store.get(crds.storage_key, "", crd["metadata"]["name"]) is None:
            await api.rest.create(crds, "", crd, WriteOptions())
    queues = api.registry.lookup("scheduling.volcano.sh", "v1beta1", "queues")
    if queues is not None and api.store.get(queues.storage_key, "", "default") is None:
        await api.rest.create(queues, "", DEFAULT_QUEUE, WriteOptions())


async def _start_nodesim(cluster: EmbeddedCluster) -> Any:
    """Start ``kubetrain.cluster.nodesim`` for ``cluster`` if that module offers a starter.

    The simulator's helper owns the contract: a coroutine ``start_for_cluster(cluster)``
    returning an object with ``async stop()``. Skipped (None) while it does not exist.
    """
    try:
        module = importlib.import_module("kubetrain.cluster.nodesim")
    except ImportError:
        return None
    starter = getattr(module, "start_for_cluster", None)
    if starter is None:
        return None
    return await starter(cluster)
