"""Issue 15, "The API server killed and restarted during a burst": ``kubetrain cluster --data DIR
--port P`` with ``kubetrain operator`` (both subprocesses, as a user runs them), PyTorchJobs
created one after another, the cluster SIGKILLed right after the ``KILL_AFTER``-th create is
answered 201 and restarted on the same port and data, then the rest created.

Asserted:

- every acknowledged job is there after the restart, with its uid;
- resourceVersions never go backwards: every rv the harness saw before the kill (in answers and
  on its own pod watch, which sees changes before they are durable) is below every rv the
  restarted server hands out (create answers and watch events after the restart);
- no duplicate pod: the harness watches pods throughout (across the restart); each (job, replica
  type, index) has one pod uid ever, controlled by the job's uid (a pod the watch saw before the
  kill that is gone after the restart was never acknowledged to the operator: re-creating it is
  not a duplicate, and is counted apart), and no pod that survived the restart is re-created;
- every job Succeeded within a bound;
- the operator reconnects without a relist storm: from its ``/metrics``, at most one relist per
  informer after the restart (a watch from a resourceVersion of before the restart is answered
  410 once: the embedded server's watch history is in memory, and a restarted kube-apiserver's
  watch cache starts at etcd's current revision); the requests per second it sends during the
  outage are printed (they are the work queue's rate-limited retries of failed writes).

The default suite runs 30 jobs, killed after the 15th; ``KUBETRAIN_RESTART_JOBS=100
KUBETRAIN_RESTART_KILL_AFTER=50`` runs the issue's sizes.

``test_kube_apiserver_restart_mid_burst`` (``conformance``) is the same scenario against the real
control plane (``--apiserver=real``): kube-apiserver SIGKILLed and started again on the same port,
etcd keeping the data; the node simulator runs in this process as scheduler and kubelets.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from jobkit_e2e import CRDS, NAMESPACES, SERVICEACCOUNTS, has_condition, job_manifest, poll

from kubetrain.cluster.nodesim.options import NodeSimOptions
from kubetrain.cluster.nodesim.simulator import NodeSimulator
from kubetrain.engine.client import ApiClient, ApiConnectionError, ClientOptions
from kubetrain.engine.config import load_kubeconfig
from kubetrain.engine.metrics import new_registry
from kubetrain.informers.resource import PODS, ResourceRef, kubeflow
from kubetrain.informers.transport import ApiStatusError
from kubetrain.reconcilers.api.crds import all_crds

BIN = Path(sys.executable).parent
KUBETRAIN = shutil.which("kubetrain", path=str(BIN)) or ""
JOBS = int(os.environ.get("KUBETRAIN_RESTART_JOBS", "30"))
KILL_AFTER = int(os.environ.get("KUBETRAIN_RESTART_KILL_AFTER", "15"))
FINISH_TIMEOUT = float(os.environ.get("KUBETRAIN_RESTART_FINISH_TIMEOUT", "240"))
"""Seconds from the last create until every job must have Succeeded (the issue's 240 s)."""
RUN_SECONDS = 1.0
"""How long each simulated pod runs."""
NS = "restart"
KIND = "PyTorchJob"
LABEL = "training.kubeflow.org/"
MAX_RELISTS_PER_INFORMER = 1
"""A restarted server answers a watch from before the restart 410 once per informer (see the
module docstring); a second relist would mean the informer lost its place again."""

Obj = dict[str, Any]
Key = tuple[str, str, str]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pytorch(i: int) -> Obj:
    workers = 1 + i % 3  # 1 Master + 1-3 Workers
    return job_manifest(
        KIND, "pytorchReplicaSpecs", "pytorch", {"Master": 1, "Worker": workers},
        name=f"job-{i:03d}", namespace=NS, run_seconds=RUN_SECONDS,
    )  # fmt: skip


def pods_of(i: int) -> int:
    return 2 + i % 3


async def new_client(kubeconfig: str) -> ApiClient:
    config = await load_kubeconfig(kubeconfig)
    return ApiClient(
        config,
        ClientOptions(qps=0, registry=new_registry(process_metrics=False), user_agent="harness/1"),
    )


# -- the harness's own pod watch, across the restart ----------------------------------------------


@dataclass
class PodWatch:
    """Pods of ``NS`` as the harness sees them (list + watch; re-watch after a broken stream,
    relist after 410), tagged with the epoch (0: before the kill, 1: after) of the server that
    sent them: the epoch when their list or stream was opened, not when a line is read (lines
    the killed server sent before it died are still read after the kill)."""

    client_box: list[ApiClient]
    epoch: int = 0
    uids: dict[Key, list[tuple[str, int]]] = field(default_factory=dict)
    """(job, type, index) -> every distinct uid seen, with the epoch first seen in."""
    owners: dict[str, str] = field(default_factory=dict)
    """pod uid -> its controller owner's uid."""
    rvs: list[list[int]] = field(default_factory=lambda: [[], []])
    """Watch event rvs by epoch (list items are not events: an old object keeps its rv)."""
    relists: int = 0
    current: dict[str, str] = field(default_factory=dict)
    """pod name -> uid, as of the last list/event."""
    at_restart: set[str] | None = None
    """Pod uids of the first list after the restart."""

    def _record(self, pod: Obj, epoch: int) -> None:
        meta = pod["metadata"]
        labels = meta.get("labels") or {}
        key = (
            labels.get(LABEL + "job-name", "?"),
            labels.get(LABEL + "replica-type", "?"),
            labels.get(LABEL + "replica-index", "?"),
        )
        uid = meta["uid"]
        seen = self.uids.setdefault(key, [])
        if all(u != uid for u, _ in seen):
            seen.append((uid, epoch))
        for ref in meta.get("ownerReferences") or []:
            if ref.get("controller"):
                self.owners[uid] = ref["uid"]

    async def run(self) -> None:
        rv = ""
        while True:
            client = self.client_box[0]
            epoch = self.epoch  # the server this list or stream talks to
            if epoch == 1 and self.at_restart is None:
                rv = ""  # list what the restarted server has (a real one may keep history)
            try:
                if not rv:
                    listed = await client.list(PODS, NS)
                    self.relists += 1
                    self.current = {}
                    for pod in listed["items"]:
                        self._record(pod, epoch)
                        self.current[pod["metadata"]["name"]] = pod["metadata"]["uid"]
                    if epoch == 1 and self.at_restart is None:
                        self.at_restart = set(self.current.values())
                    rv = listed["metadata"]["resourceVersion"]
                query = {"watch": "true", "resourceVersion": rv, "allowWatchBookmarks": "true"}
                path = f"/api/v1/namespaces/{NS}/pods"
                async with client.stream_lines(path, query=query) as lines:
                    async for line in lines:
                        event = orjson.loads(line)
                        obj = event["object"]
                        if event["type"] == "ERROR":
                            if obj.get("code") == 410:
                                rv = ""  # history gone (a restarted server): relist
                            break
                        rv = obj["metadata"]["resourceVersion"]
                        if event["type"] == "BOOKMARK":
                            continue
                        self.rvs[epoch].append(int(rv))
                        self._record(obj, epoch)
                        name = obj["metadata"]["name"]
                        if event["type"] == "DELETED":
                            self.current.pop(name, None)
                        else:
                            self.current[name] = obj["metadata"]["uid"]
            except ApiStatusError as e:
                if e.status == 410:
                    rv = ""
                await asyncio.sleep(0.1)
            except (ApiConnectionError, aiohttp.ClientError, OSError, TimeoutError):
                await asyncio.sleep(0.1)


# -- what the scenario needs of an API server -----------------------------------------------------


@dataclass
class Plane:
    """An API server the scenario can SIGKILL and start again: ``kubeconfig`` (rewritten by a
    restart if it likes), ``kill`` (SIGKILL, returns at once) and ``start_again`` (same port and
    data; returns once it serves)."""

    kubeconfig: str
    kill: Callable[[], None]
    start_again: Callable[[], Awaitable[None]]
    operator_env: dict[str, str] = field(default_factory=dict)


@dataclass
class Figures:
    jobs: int
    kill_after: int
    lost_jobs: list[str]
    changed_uids: list[str]
    duplicate_pods: dict[Key, list[tuple[str, int]]]
    unacknowledged_recreated: dict[Key, list[tuple[str, int]]]
    recreated_survivors: list[str]
    foreign_owner: list[tuple[str, str | None, str | None]]
    rv_before_max: int
    rv_after_min: int
    relists: dict[str, float]
    watch_restarts: dict[str, float]
    outage_seconds: float
    outage_requests: float
    outage_by_method: dict[str, float]
    finished_seconds: float
    not_succeeded: list[str]

    def summary(self) -> str:
        rate = self.outage_requests / self.outage_seconds if self.outage_seconds else 0.0
        return (
            f"{self.jobs} jobs, SIGKILL after create #{self.kill_after}: lost acknowledged jobs "
            f"{len(self.lost_jobs)} {self.lost_jobs[:5]}, uid changed {len(self.changed_uids)}; "
            f"duplicate pods {len(self.duplicate_pods)}; unacknowledged pods re-created "
            f"{len(self.unacknowledged_recreated)}; surviving pods re-created "
            f"{len(self.recreated_survivors)}; rv max before kill {self.rv_before_max}, min after "
            f"{self.rv_after_min}; operator relists after restart {self.relists}; watch restarts "
            f"{self.watch_restarts}; outage {self.outage_seconds:.2f}s, operator requests during "
            f"it {self.outage_requests:.0f} ({rate:.1f}/s, {self.outage_by_method}); all jobs "
            f"Succeeded "
            f"{self.finished_seconds:.1f}s after the restart; not Succeeded "
            f"{len(self.not_succeeded)} {self.not_succeeded[:5]}"
        )


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\} (\S+)$")


def parse_metrics(text: str, name: str, by: str) -> dict[str, float]:
    """``name``'s samples summed by the label ``by``."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        m = _SAMPLE.match(line)
        if not m or m.group(1) != name:
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2)))
        key = labels.get(by, "")
        out[key] = out.get(key, 0.0) + float(m.group(3))
    return out


def sub(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {k: v - before.get(k, 0.0) for k, v in sorted(after.items()) if v - before.get(k, 0.0)}


@contextlib.asynccontextmanager
async def operator_process(
    kubeconfig: str, metrics_port: int, log: Path, env: dict[str, str]
) -> AsyncIterator[asyncio.subprocess.Process]:
    with open(log, "wb") as out:  # noqa: ASYNC230 (a local file, opened once)
        proc = await asyncio.create_subprocess_exec(
            KUBETRAIN, "operator", "--kubeconfig", kubeconfig,
            "--enable-scheme", "pytorchjob",
            "--metrics-bind-address", f"127.0.0.1:{metrics_port}",
            "--health-probe-bind-address", "0", "--webhook-server-port", "0",
            stdout=out, stderr=out, env={**os.environ, **env},
        )  # fmt: skip
        try:
            yield proc
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(proc.wait(), 30)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()


async def run_scenario(
    plane: Plane, tmp_path: Path, jobs: int, kill_after: int, *, real: bool = False
) -> Figures:
    """The issue's scenario against ``plane``; ``real``: a real control plane (a new namespace
    serves pods only once its ``default`` ServiceAccount exists)."""
    client_box = [await new_client(plane.kubeconfig)]
    metrics_port = free_port()
    metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
    session = aiohttp.ClientSession()
    log = tmp_path / "operator.log"
    watch_task: asyncio.Task[None] | None = None
    try:
        client = client_box[0]
        for crd in all_crds():
            with contextlib.suppress(ApiStatusError):  # a real plane may have them already
                await client.create(CRDS, crd)
        await client.create(
            NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}
        )
        if real:
            await poll(
                lambda: _exists(client, SERVICEACCOUNTS, NS, "default"),
                timeout=30,
                what=f"ServiceAccount {NS}/default",
            )
        async with operator_process(plane.kubeconfig, metrics_port, log, plane.operator_env) as op:

            async def scrape() -> str:
                assert op.returncode is None, log.read_text()[-3000:]
                async with session.get(metrics_url) as resp:
                    assert resp.status == 200
                    return await resp.text()

            async def synced() -> bool:
                with contextlib.suppress(aiohttp.ClientError, OSError):
                    text = await scrape()
                    return "pytorchjobs" in text and "kubetrain_informer_relists_total" in text
                return False

            await poll(synced, timeout=60, interval=0.2, what="the operator's metrics")
            watch = PodWatch(client_box)
            watch_task = asyncio.create_task(watch.run())
            await poll(lambda: _true(watch.relists), timeout=30, what="the harness's pod watch")

            acked: dict[str, str] = {}  # job name -> uid
            rvs_before: list[int] = []
            rvs_after: list[int] = []
            outage_seconds = 0.0
            outage_requests = 0.0
            outage_by_method: dict[str, float] = {}
            metrics_before = ""
            restarted_at = 0.0
            for i in range(jobs):
                created = await client_box[0].create(kubeflow(KIND), pytorch(i))
                meta = created["metadata"]
                acked[meta["name"]] = meta["uid"]
                (rvs_after if i >= kill_after else rvs_before).append(int(meta["resourceVersion"]))
                if i + 1 != kill_after:
                    continue
                plane.kill()  # right after the answer
                killed_at = time.monotonic()
                watch.epoch = 1  # events from now on come from the restarted server
                with contextlib.suppress(aiohttp.ClientError, OSError):
                    metrics_before = await scrape()
                await plane.start_again()
                outage_seconds = time.monotonic() - killed_at
                restarted_at = time.monotonic()
                requests_at_restart = await scrape()
                outage_by_method = sub(
                    parse_metrics(requests_at_restart, "rest_client_requests_total", "method"),
                    parse_metrics(metrics_before, "rest_client_requests_total", "method"),
                )
                outage_requests = sum(outage_by_method.values())
                # a restart may re-key (a new kubeconfig); the old client stays open until the
                # end: closing it under a watch stream can leave the stream hanging
                client_box.insert(0, await new_client(plane.kubeconfig))
                # every acknowledged job survived, with its uid
                lost: list[str] = []
                changed: list[str] = []
                for name, uid in acked.items():
                    try:
                        got = await client_box[0].get(kubeflow(KIND), NS, name)
                    except ApiStatusError as e:
                        if not e.is_not_found:
                            raise
                        lost.append(name)
                        continue
                    if got["metadata"]["uid"] != uid:
                        changed.append(name)
            assert restarted_at, "the kill never happened"
            rvs_before += watch.rvs[0]
            client = client_box[0]

            pods_needed = sum(pods_of(i) for i in range(jobs))

            async def all_succeeded() -> bool:
                listed = await client.list_all(kubeflow(KIND), NS)
                return len(listed) == jobs and all(has_condition(j, "Succeeded") for j in listed)

            with contextlib.suppress(AssertionError):
                await poll(all_succeeded, timeout=FINISH_TIMEOUT, interval=0.5, what="")
            finished = time.monotonic() - restarted_at
            final = {j["metadata"]["name"]: j for j in await client.list_all(kubeflow(KIND), NS)}
            not_succeeded = sorted(n for n, j in final.items() if not has_condition(j, "Succeeded"))
            not_succeeded += sorted(set(acked) - set(final))
            await asyncio.sleep(0.5)  # the last pod events reach the watch
            metrics_after = await scrape()
            rvs_after += watch.rvs[1]
            survivors_at_restart = _survivors(watch)
            pods = await client.list_all(PODS, NS)
    finally:
        if watch_task is not None:
            watch_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watch_task
        await session.close()
        for c in client_box:
            await c.close()

    duplicates: dict[Key, list[tuple[str, int]]] = {}
    unacked: dict[Key, list[tuple[str, int]]] = {}
    recreated_survivors: list[str] = []
    for key, seen in watch.uids.items():
        if len(seen) == 1:
            continue
        # a pod seen before the kill and gone after it was never durable (never acknowledged)
        first_uid, first_epoch = seen[0]
        if len(seen) == 2 and first_epoch == 0 and first_uid not in survivors_at_restart:
            unacked[key] = seen
        else:
            duplicates[key] = seen
    live = {p["metadata"]["uid"] for p in pods}
    for uid in survivors_at_restart:
        if uid not in live:
            recreated_survivors.append(uid)
    foreign = [
        (
            p["metadata"]["name"],
            watch.owners.get(p["metadata"]["uid"]),
            acked.get(p["metadata"]["labels"][LABEL + "job-name"]),
        )
        for p in pods
        if watch.owners.get(p["metadata"]["uid"])
        != acked.get(p["metadata"]["labels"][LABEL + "job-name"])
    ]
    assert len(pods) == pods_needed, (len(pods), pods_needed)
    return Figures(
        jobs=jobs,
        kill_after=kill_after,
        lost_jobs=lost,
        changed_uids=changed,
        duplicate_pods=duplicates,
        unacknowledged_recreated=unacked,
        recreated_survivors=recreated_survivors,
        foreign_owner=foreign,
        rv_before_max=max(rvs_before),
        rv_after_min=min(rvs_after),
        relists=sub(
            parse_metrics(metrics_after, "kubetrain_informer_relists_total", "resource"),
            parse_metrics(metrics_before, "kubetrain_informer_relists_total", "resource"),
        ),
        watch_restarts=sub(
            parse_metrics(metrics_after, "kubetrain_informer_watch_restarts_total", "reason"),
            parse_metrics(metrics_before, "kubetrain_informer_watch_restarts_total", "reason"),
        ),
        outage_seconds=outage_seconds,
        outage_requests=outage_requests,
        outage_by_method=outage_by_method,
        finished_seconds=finished,
        not_succeeded=not_succeeded,
    )


async def _exists(client: ApiClient, ref: ResourceRef, ns: str, name: str) -> bool:
    try:
        await client.get(ref, ns, name)
    except ApiStatusError as e:
        if e.is_not_found:
            return False
        raise
    return True


async def _true(value: int) -> bool:
    return bool(value)


def _survivors(watch: PodWatch) -> set[str]:
    """Pod uids seen before the kill that the restarted server still had (its first list)."""
    before = {uid for seen in watch.uids.values() for uid, epoch in seen if epoch == 0}
    assert watch.at_restart is not None, "the harness's watch never relisted after the restart"
    return before & watch.at_restart


def check(figures: Figures) -> None:
    print("\n" + figures.summary())
    assert not figures.lost_jobs, figures.lost_jobs
    assert not figures.changed_uids, figures.changed_uids
    assert figures.rv_after_min > figures.rv_before_max, figures.summary()
    assert not figures.duplicate_pods, figures.duplicate_pods
    assert not figures.recreated_survivors, figures.recreated_survivors
    assert not figures.foreign_owner, figures.foreign_owner
    assert not figures.not_succeeded, figures.summary()
    assert all(v <= MAX_RELISTS_PER_INFORMER for v in figures.relists.values()), figures.relists


# -- the embedded cluster, as a user runs it ------------------------------------------------------


async def _start_cluster(data: Path, port: int, kubeconfig: Path) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        KUBETRAIN, "cluster", "--data", str(data), "--port", str(port),
        "--kubeconfig", str(kubeconfig),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 60)
    assert f":{port}" in line.decode(), line  # "kubetrain cluster serving at <url>"
    return proc


@pytest.mark.skipif(not KUBETRAIN, reason="kubetrain entry point not installed")
@pytest.mark.embedded_only("runs its own kubetrain cluster process")
async def test_embedded_cluster_killed_and_restarted_mid_burst(tmp_path: Path) -> None:
    data = tmp_path / "data"
    kubeconfig = tmp_path / "kubeconfig"
    port = free_port()
    procs = [await _start_cluster(data, port, kubeconfig)]

    def kill() -> None:
        procs[-1].kill()

    async def start_again() -> None:
        await procs[-1].wait()
        procs.append(await _start_cluster(data, port, kubeconfig))

    plane = Plane(str(kubeconfig), kill, start_again)
    try:
        figures = await run_scenario(plane, tmp_path, JOBS, KILL_AFTER)
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
                await asyncio.wait_for(proc.wait(), 30)
    check(figures)


# -- kube-apiserver (conformance tier): SIGKILLed and restarted, etcd keeping the data -------------


@pytest.mark.skipif(not KUBETRAIN, reason="kubetrain entry point not installed")
@pytest.mark.conformance
async def test_kube_apiserver_killed_and_restarted_mid_burst(tmp_path: Path) -> None:
    from conformance.controlplane import RealControlPlane  # only the real tier needs it

    async with RealControlPlane() as plane:
        config = await load_kubeconfig(plane.kubeconfig_path)
        sim = NodeSimulator.for_config(config, NodeSimOptions(nodes=4))
        await sim.start()
        try:
            async with await new_client(plane.kubeconfig_path) as client:
                for crd in all_crds():
                    await client.create(CRDS, crd)
                for crd in all_crds():  # served only once Established
                    await poll(
                        lambda name=crd["metadata"]["name"]: _established(client, name),
                        timeout=30,
                        what=f"CRD {crd['metadata']['name']} Established",
                    )
            figures = await run_scenario(
                Plane(plane.kubeconfig_path, plane.kill_apiserver, plane.start_apiserver_again),
                tmp_path,
                JOBS,
                KILL_AFTER,
                real=True,
            )
        finally:
            await sim.stop()
    check(figures)


async def _established(client: ApiClient, name: str) -> bool:
    crd = await client.get(CRDS, None, name)
    return any(
        c.get("type") == "Established" and c.get("status") == "True"
        for c in (crd.get("status") or {}).get("conditions") or []
    )
