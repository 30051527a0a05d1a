"""The benchmark's job shape, the job kinds a run can submit, and how the harness submits jobs.

Default shape (BENCHMARKS.md): PyTorchJob, 1 Master + 3 Workers, simulated pods that run a set
time and exit 0. ``create_jobs`` submits them as fast as the API server accepts them, with a
bounded number of requests in flight.

``--job-kind`` (``JOB_KINDS``) picks what a burst submits: ``pytorchjob`` (the default, above) or
``mpijob-v2beta1``, mpi-operator's ``kubeflow.org/v2beta1`` MPIJob of the same shape (``masters``
is the one Launcher, ``workers`` the Workers), created through the CRD's conversion webhook and
run by kubetrain's v2beta1 controller with the launcher as a batch/v1 Job (``mpijob_v2beta1``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from kubetrain.engine.client import ApiClient
from kubetrain.informers.resource import NAMESPACES, ResourceRef, kubeflow

__all__ = [
    "JOB_KINDS",
    "MPIJOBS_V2BETA1",
    "MPIJOB_V2BETA1",
    "MPI_WORKER_RUN_SECONDS",
    "PYTORCHJOB",
    "BenchJobKind",
    "JobShape",
    "create_jobs",
    "create_namespace",
    "mpijob_v2beta1",
    "pytorchjob",
]

SIM = "sim.kubetrain.dev/"
PYTORCHJOBS = kubeflow("PyTorchJob")
MPIJOBS_V2BETA1 = ResourceRef("kubeflow.org", "v2beta1", "mpijobs", True, "MPIJob")
MPI_WORKER_RUN_SECONDS = 3600.0
"""An MPI worker runs ``sshd -De`` until it is deleted: its simulated run time is far longer than
any launcher's, so the workers run until the launcher finished and the job's
``cleanPodPolicy: Running`` deletes them (as in mpi-operator's examples)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class JobShape:
    """One benchmark job. Invariant: ``masters`` >= 1, ``workers`` >= 0, ``run_seconds`` >= 0."""

    masters: int = 1
    workers: int = 3
    run_seconds: float = 1.0
    """How long each simulated container runs (``sim.kubetrain.dev/run-seconds``)."""
    ttl_seconds_after_finished: int | None = None

    @property
    def pods(self) -> int:
        return self.masters + self.workers

    @property
    def services(self) -> int:
        """One headless service per pod (the reference operator's rule)."""
        return self.masters + self.workers


def pytorchjob(name: str, namespace: str, shape: JobShape) -> dict[str, Any]:
    """A PyTorchJob manifest of ``shape``."""

    def replica(n: int) -> dict[str, Any]:
        return {
            "replicas": n,
            "restartPolicy": "OnFailure",
            "template": {
                "metadata": {"annotations": {SIM + "run-seconds": str(shape.run_seconds)}},
                "spec": {"containers": [{"name": "pytorch", "image": "busybox:1"}]},
            },
        }

    specs = {"Master": replica(shape.masters)}
    if shape.workers:
        specs["Worker"] = replica(shape.workers)
    spec: dict[str, Any] = {"pytorchReplicaSpecs": specs}
    if shape.ttl_seconds_after_finished is not None:
        spec["runPolicy"] = {"ttlSecondsAfterFinished": shape.ttl_seconds_after_finished}
    return {
        "apiVersion": "kubeflow.org/v1",
        "kind": "PyTorchJob",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def mpijob_v2beta1(name: str, namespace: str, shape: JobShape) -> dict[str, Any]:
    """An MPIJob ``kubeflow.org/v2beta1`` of ``shape`` shaped like mpi-operator's
    ``examples/v2beta1/pi/pi.yaml``: one Launcher (``shape.masters`` must be 1) that runs
    ``shape.run_seconds`` and ``shape.workers`` Workers that run until they are deleted
    (``MPI_WORKER_RUN_SECONDS``, ``cleanPodPolicy: Running``)."""
    if shape.masters != 1:
        raise ValueError(f"an MPIJob has exactly one Launcher, got masters={shape.masters}")

    def template(container: str, seconds: float, command: list[str]) -> dict[str, Any]:
        return {
            "metadata": {"annotations": {SIM + "run-seconds": str(seconds)}},
            "spec": {
                "containers": [
                    {"name": container, "image": "mpioperator/mpi-pi:openmpi", "command": command}
                ]
            },
        }

    specs: dict[str, Any] = {
        "Launcher": {
            "replicas": 1,
            "template": template("mpi-launcher", shape.run_seconds, ["mpirun", "/home/pi"]),
        }
    }
    if shape.workers:
        specs["Worker"] = {
            "replicas": shape.workers,
            "template": template("mpi-worker", MPI_WORKER_RUN_SECONDS, ["/usr/sbin/sshd", "-De"]),
        }
    run_policy: dict[str, Any] = {"cleanPodPolicy": "Running"}
    if shape.ttl_seconds_after_finished is not None:
        run_policy["ttlSecondsAfterFinished"] = shape.ttl_seconds_after_finished
    return {
        "apiVersion": "kubeflow.org/v2beta1",
        "kind": "MPIJob",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"slotsPerWorker": 1, "runPolicy": run_policy, "mpiReplicaSpecs": specs},
    }


@dataclass(frozen=True, slots=True, kw_only=True)
class BenchJobKind:
    """What ``--job-kind`` selects: how jobs are written and watched, what a run needs, and the
    writes a job needs at the least (the burst's write amplification divides by them)."""

    name: str
    """The ``--job-kind`` value."""
    kind: str
    """The kind; the harness watches and reads it as ``kubeflow.org/v1`` (the storage version
    of every kind here, so the harness's own reads never need a conversion)."""
    api: ResourceRef
    """What the harness creates the jobs as."""
    manifest: Callable[[str, str, JobShape], dict[str, Any]]
    systems: tuple[str, ...]
    """The systems that can run it."""
    kube_controllers: bool = False
    """The cluster runs its Job controller (a batch/v1 Job is part of each job)."""
    webhooks: bool = False
    """The kubetrain operator serves its webhooks (here: the CRD's conversion) and the harness
    installs them before the jobs are created."""
    not_operator: tuple[tuple[str, str], ...] = ()
    """(verb or ``*``, resource) of more writes that are never the measured system's
    (``apimetrics.NOT_OPERATOR``'s rule), e.g. the Job controller's."""

    def pods_to_succeed(self, pods_per_job: int) -> int:
        """Of a job's ``pods_per_job`` pods, those that end Succeeded when it succeeds: all, but
        an MPIJob's launcher pod alone (its workers run until they are deleted)."""
        return 1 if self.name == MPIJOB_V2BETA1_NAME else pods_per_job

    def services(self, shape: JobShape) -> int:
        """Services a job gets: one per pod for v1 kinds, one headless Service for MPI v2beta1."""
        return 1 if self.name == MPIJOB_V2BETA1_NAME else shape.services

    def minimal_writes(self, shape: JobShape, *, status_writes: int) -> int:
        """The writes one job needs at the least, ``status_writes`` status changes included.

        PyTorchJob: one create per pod and per Service. MPIJob v2beta1 (what mpi-operator
        writes): the Service, the ConfigMap, the SSH Secret, one create per worker pod, the
        launcher Job, one update of the ConfigMap (its ``discover_hosts.sh`` lists the running
        workers, none when it was created), and one delete per worker once the launcher
        finished (``cleanPodPolicy: Running``). Not counted: the launcher's pod, its tracking
        finalizer, the Job's status and Events, which the cluster's Job controller writes, and
        the kubelets' final DELETEs (the harness leaves all of them out)."""
        if self.name == MPIJOB_V2BETA1_NAME:
            configmap_update = 1 if shape.workers else 0
            return 3 + shape.workers + 1 + configmap_update + shape.workers + status_writes
        return shape.pods + shape.services + status_writes


MPIJOB_V2BETA1_NAME = "mpijob-v2beta1"
PYTORCHJOB = BenchJobKind(
    name="pytorchjob",
    kind="PyTorchJob",
    api=PYTORCHJOBS,
    manifest=pytorchjob,
    systems=("kubetrain", "raw", "kopf", "reference"),
)
MPIJOB_V2BETA1 = BenchJobKind(
    name=MPIJOB_V2BETA1_NAME,
    kind="MPIJob",
    api=MPIJOBS_V2BETA1,
    manifest=mpijob_v2beta1,
    systems=("kubetrain",),
    kube_controllers=True,
    webhooks=True,
    not_operator=(
        ("POST", "mpijobs"),  # the harness creates the jobs
        ("*", "jobs/status"),  # the Job controller (kubetrain writes it only on a resume)
        ("PATCH", "pods"),  # the Job controller's tracking finalizer (kubetrain never patches)
    ),
)
JOB_KINDS: dict[str, BenchJobKind] = {k.name: k for k in (PYTORCHJOB, MPIJOB_V2BETA1)}
"""``--job-kind`` -> what it runs."""


async def create_namespace(client: ApiClient, name: str) -> None:
    await client.create(
        NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    )


async def create_jobs(
    client: ApiClient,
    manifests: list[dict[str, Any]],
    *,
    concurrency: int = 32,
    ref: ResourceRef = PYTORCHJOBS,
    on_created: Callable[[str, float], None] | None = None,
    before_each: Callable[[int], Awaitable[None]] | None = None,
) -> float:
    """Create every manifest (as ``ref``) with at most ``concurrency`` requests in flight;
    returns the seconds it took. ``on_created(name, when)`` is called as each create returns; ``before_each(i)``, when
    given, is awaited before the i-th create is sent (arrival schedules)."""
    gate = asyncio.Semaphore(concurrency)
    start = time.monotonic()

    async def one(i: int, manifest: dict[str, Any]) -> None:
        if before_each is not None:
            await before_each(i)
        async with gate:
            await client.create(ref, manifest)
        if on_created is not None:
            on_created(manifest["metadata"]["name"], time.time())

    await asyncio.gather(*(one(i, m) for i, m in enumerate(manifests)))
    return time.monotonic() - start
